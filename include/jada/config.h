/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jada/duration.h"

#define JADA_DEFAULT_CONFIG "/etc/jada-agent.conf"
#define JADA_DEV_CONFIG "config/jada-agent.dev.conf"   /* in a source tree, for `make run` */
#define JADA_DEFAULT_STATE_DIR "/var/lib/jada-agent"


enum project_isolation {
        PROJECT_WORKTREE,               /* a branch jada/task-ID and a worktree per task */
        PROJECT_NONE,                   /* sessions run in path itself, one at a time */
};

#define PROJECT_NAME_MAX 64

/* One [project NAME] section. */
struct project_config {
        char *name;                     /* [a-z0-9_-]+ */
        char *path;                     /* absolute */
        char *base;                     /* "": the repository's current branch */
        enum project_isolation isolation;
        char *push;                     /* a remote name; "": no push */
        char *author_name, *author_email;
        char *on_done;                  /* a /bin/sh -c command; "": none */
        unsigned line;                  /* of its section header */
};

/* [alerts] notify: which task events become notifications. */
enum {
        NOTIFY_NEEDS_YOU = 1u << 0,
        NOTIFY_FAILED = 1u << 1,
        NOTIFY_DONE = 1u << 2,
};

enum sheets_auth {
        SHEETS_AUTH_OAUTH,
        SHEETS_AUTH_SERVICE_ACCOUNT,
};

/*
 * The whole configuration, as /etc/jada-agent.conf gives it (DESIGN.md §4).
 * Durations are in microseconds. Strings are never NULL ("" when unset),
 * except argv-like lists, which are NULL-terminated arrays.
 */
struct jada_config {
        char *path;                     /* the file it came from */

        struct {
                char *state_dir;        /* absolute after loading */
                uint64_t poll_interval;
                uint64_t retention;
                char *default_project;  /* "": tasks without --project have none */
                uint64_t git_timeout;   /* each git command of a project, then it is stopped */
        } daemon;

        struct {
                char *command;
                unsigned max_turns;
                unsigned sessions_per_day;
                unsigned max_sessions_per_task;
                unsigned max_task_depth;       /* a top-level task is at depth 1 */
                unsigned max_children_per_task;
                unsigned max_attempts;
                uint64_t session_timeout;
                uint64_t idle_timeout;
                double daily_cost_limit_usd;   /* 0: no limit */
                double max_cost_per_task_usd;  /* a task's cost cap when it has none of its own; 0: none */
                unsigned concurrency;
                char *permission_mode;
                char *allowed_tools;
                char *model;
                char **extra_args;             /* split like a shell would, no expansion */
        } claude;

        struct {
                bool enabled;
                char *spreadsheet_id;
                char *range;
                uint64_t interval;
                enum sheets_auth auth;
                char *client_id;
                char *client_secret_file;      /* development only; else a credential */
                char *progress_range;
                char *token_url;
                char *api_url;
        } sheets;

        struct {
                char *webhook_url;
                char *notify;                  /* the words, as written */
                unsigned notify_mask;          /* NOTIFY_* bits of those words */
                char *command;                 /* /bin/sh -c, the message on stdin; "": none */
        } alerts;

        struct {
                char *listen;                  /* "": off; HOST:PORT, [V6]:PORT or an absolute socket path */
                char *url;                     /* the dashboard as people reach it, for links; "": from listen */
                unsigned listen_line;          /* where listen was set (0: not in the file) */
        } web;

        struct {
                char *textfile;
        } metrics;

        /* The fleet (issue 19): "" keeps the queue in SQLite in the state dir. */
        struct {
                char *url;                     /* postgresql://USER@HOST:PORT/DB?...; never a password */
                char *node_name;               /* "": the host name (config_node_name) */
                uint64_t lease;                /* a node whose heartbeat is older is presumed dead */
        } database;

        struct project_config *projects;
        size_t n_projects;
};

/* [web] listen, parsed: *loopback tells whether only this machine can
 * connect (127.0.0.0/8, ::1, or a unix socket). Returns 0, or -EINVAL and
 * a message in why (size bytes). */
struct sockaddr_storage;
int config_parse_listen(const char *listen, struct sockaddr_storage *ret, unsigned *ret_len, bool *loopback,
                        char *why, size_t size);
/* The dashboard's base URL for links ("" when [web] is off), no trailing '/'. */
const char *config_web_url(const struct jada_config *config, char *buf, size_t size);

/* This daemon's name in the fleet: [database] node_name, else the host
 * name (cut at its first dot). */
const char *config_node_name(const struct jada_config *config, char *buf, size_t size);
/* How often a node writes its heartbeat: 10 s, or a third of a shorter lease. */
uint64_t config_heartbeat_interval(const struct jada_config *config);

/* The project of that name, or NULL. */
const struct project_config *config_project(const struct jada_config *config, const char *name);

/* One problem found in a config file, reported as "FILE:LINE: message".
 * LINE is 0 when the problem is the file itself (unreadable, too large). */
struct config_problem {
        unsigned line;
        char *message;
};

struct config_problems {
        char *file;
        struct config_problem *items;
        size_t n;
};

/* Parses a config from memory; "name" is used in messages and to resolve
 * relative paths (against its directory). Returns 0 and sets *ret when there
 * were no problems; otherwise -EINVAL, and every problem is in *problems. */
int config_parse_buffer(const char *name, const char *data, size_t size,
                        struct jada_config **ret, struct config_problems *problems);
/* The same from a file; an unreadable file is a problem at line 0. */
int config_load(const char *path, struct jada_config **ret, struct config_problems *problems);

struct jada_config *config_free(struct jada_config *config);
void config_problems_clear(struct config_problems *problems);
/* Logs each problem as "FILE:LINE: message" at LOG_ERR, or prints it to stderr. */
void config_problems_log(const struct config_problems *problems);
void config_problems_print(const struct config_problems *problems);

/* The config path when -c is not given: $JADA_AGENT_CONFIG, else the
 * source tree's config/jada-agent.dev.conf for the ./jada-agent that `make`
 * builds (a binary next to a Makefile and that file: the daemon of `make
 * run` uses it), else /etc/jada-agent.conf. */
const char *config_default_path(void);

