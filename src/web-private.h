/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the dashboard's files: web.c (the server, access, routing),
 * web-html.c (escaping, the layout), web-pages.c (the pages), web-chart.c
 * (the SVG chart), web-api.c (JSON, /metrics, the actions). */

#include "jada/queue.h"
#include "jada/web.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>

/* A form's body: the add-task form carries a prompt of up to 1 MiB. */
#define WEB_BODY_MAX (QUEUE_PROMPT_MAX + 64 * 1024)
#define WEB_FIELDS_MAX 16

struct web {
        sd_event *event;
        const struct jada_config *config;
        struct store *db;
        struct web_hooks hooks;
        struct MHD_Daemon *mhd;
        sd_event_source *io, *timer, *defer;
        struct store_job *run_job;      /* a run of MHD waiting for the store's fiber */
        char *token;                    /* NULL: no login (a loopback address) */
        char cookie[65];                /* hex HMAC of the token: the login cookie's value */
        char csrf[65];                  /* hex HMAC of the state dir's secret: every form carries it */
        char *socket_path;              /* a unix socket to unlink at the stop */
        char *exe;                      /* this binary: its transcript and task diff run as children */
        char *config_path;              /* absolute: the children run in / */
        uint64_t requests;
        struct web_request *waiting;    /* suspended until their children end */
        unsigned children;              /* running, for all requests */
        bool stopping;
};

/* A task's page waits for what takes a child: its transcripts rendered
 * (`jada-agent transcript --task ID`) and its branch's diff (`task diff`). */
#define WEB_CHILDREN_MAX 4
struct web_task_page;

struct web_field {
        char *name;
        char *value;
        size_t len, size;               /* size: allocated */
};

/* One request, from its headers to its answer. */
struct web_request {
        struct web *web;
        struct MHD_Connection *conn;
        const char *method, *url;
        bool post;
        struct MHD_PostProcessor *pp;
        struct web_field fields[WEB_FIELDS_MAX];
        size_t n_fields, body_bytes;
        bool too_large, bad_form;
        /* A page that waits for children (web-task.c). */
        struct web_task_page *page;
        struct web_request *next_waiting;
        bool suspended, ready;
        /* The answer being built. */
        FILE *out;
        char *buf;
        size_t len;
};

/* Answers. Each queues a response and returns MHD's verdict. */
enum MHD_Result web_reply(struct web_request *req, unsigned status, const char *type, char *body, size_t len);
/* The page built in req->out, as text/html. */
enum MHD_Result web_reply_page(struct web_request *req, unsigned status);
enum MHD_Result web_reply_json(struct web_request *req, unsigned status, json_t *doc);
enum MHD_Result web_reply_error(struct web_request *req, unsigned status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
enum MHD_Result web_redirect(struct web_request *req, const char *location);

/* Request facts. */
const char *web_query(struct web_request *req, const char *name);      /* NULL if absent */
const char *web_field(struct web_request *req, const char *name);      /* a POST form field, or NULL */
int64_t web_now(void);

/* HTML (web-html.c). Text from a task, a transcript or the db goes out
 * only through web_h(), never as markup. */
void web_h(FILE *f, const char *s);
void web_hn(FILE *f, const char *s, size_t len);
void web_page_begin(struct web_request *req, const char *title, const char *active);
void web_page_end(struct web_request *req);
void web_csrf_field(struct web_request *req);
/* A one-button POST form: an action of a task. */
void web_action_button(struct web_request *req, int64_t id, const char *action, const char *label, bool danger);
extern const char web_css[];
void web_time(FILE *f, int64_t t);         /* UTC, in a <time> element */
/* A session's duration in words ("running" while outcome is NULL). */
const char *web_duration(char *buf, size_t size, const char *outcome, int64_t started, int64_t ended);

/* Pages (web-pages.c) and the task's page (web-task.c). */
enum MHD_Result web_page_overview(struct web_request *req);
enum MHD_Result web_page_tasks(struct web_request *req);
enum MHD_Result web_page_task(struct web_request *req, int64_t id);
/* Called again once the page's children ended (the connection resumed). */
enum MHD_Result web_page_task_finish(struct web_request *req);
void web_task_page_free(struct web_task_page *page);
/* Wakes MHD for a resumed connection. */
void web_kick(struct web *web);
enum MHD_Result web_page_sessions(struct web_request *req);

/* The chart of the last days' sessions (web-chart.c). */
struct session_row;
void web_chart_sessions(FILE *f, const struct session_row *rows, size_t n, int64_t now, unsigned days);

/* JSON, metrics and actions (web-api.c). */
enum MHD_Result web_api(struct web_request *req, const char *path);
enum MHD_Result web_metrics(struct web_request *req);
enum MHD_Result web_post_action(struct web_request *req, int64_t id, const char *action);
enum MHD_Result web_post_add(struct web_request *req);
