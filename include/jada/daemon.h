/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "jada/config.h"
#include "jada/health.h"
#include "jada/queue.h"
#include "jada/usage.h"

struct alerter;
struct fiber;
struct http_client;
struct pg;
struct store_job;
struct node;
struct notifier;
struct oauth;
struct project_janitor;
struct sessions;
struct sync;
struct web;

/*
 * The one context of the daemon: everything it knows and holds is here and
 * passed explicitly. Only signal handling and logging keep process globals.
 */
struct jada_ctx {
        char *config_path;
        struct jada_config *config;
        struct store *db;
        sd_event *event;
        struct http_client *http;
        struct alerter *alerter;        /* the webhook of [alerts] */
        struct notifier *notifier;      /* per-task notifications; [alerts] command */
        struct oauth *oauth;            /* NULL unless [sheets] enabled */
        struct sync *sync;
        struct web *web;                /* the dashboard; NULL when [web] listen is empty or it failed */
        struct node *node;              /* this daemon in the fleet; NULL without [database] url */
        /* A fleet's store: its connection, and the fiber its work runs on
         * (store_run); NULL on SQLite. */
        struct pg *store_pg;
        struct fiber *fiber;
        bool store_ready;               /* the start-up's recovery is done */
        bool set_up;                    /* daemon_setup() is done: READY=1 may be told */
        bool ready_sent;                /* READY=1 told: the health row says it runs */
        struct store_job *poll_job, *publish_job;
        sd_event_source *exit_check, *exit_soon; /* the loop ends once the fiber is idle */

        sd_event_source *poll_timer;
        sd_event_source *sig_term, *sig_int, *sig_hup;
        sd_event_source *control;       /* wake-ups from the command line */
        int lock_fd;                    /* flock on state_dir/daemon.lock: one daemon per state dir */

        uint64_t started_realtime;      /* usec, for uptime and the health row */
        uint64_t started_monotonic;
        uint64_t polls;                 /* count, since start */
        uint64_t last_poll_realtime;    /* usec; 0 before the first */
        uint64_t last_prune_monotonic;  /* usec; 0 before the first */
        int64_t queue_counts[_TASK_STATE_MAX]; /* by enum task_state, as of the last poll */

        struct sessions *sessions;      /* the running claude sessions */
        struct project_janitor *janitor; /* worktrees of ended tasks */
        int db_error;                   /* the last failed db write of this poll, or 0 */
        bool launch_blocked;            /* API key rejected or claude missing: until reload */
        bool no_credential;             /* no key or token for claude at all: checked at start and reload */

        struct usage_state usage;       /* the usage-limit gate, as in the db */

        struct health health;
        bool stopping;
};

/* `jada-agent run`: returns the process exit code (0, 1, or 78 for a bad config). */
int daemon_run(const char *config_path);

/* A poll now (a wake-up). */
void daemon_poll_soon(struct jada_ctx *ctx);
/* Ends the loop, once the store's work is done. */
void daemon_exit(struct jada_ctx *ctx);
/* A fleet's store (daemon-fleet.c). */
int daemon_fleet_open(struct jada_ctx *ctx);
void daemon_fleet_close(struct jada_ctx *ctx);
void daemon_fleet_rescue(struct jada_ctx *ctx);

/* Whether the store may be used: always on SQLite; a fleet's once the
 * start-up's recovery is done. */
bool daemon_store_usable(const struct jada_ctx *ctx);
/* Republishes STATUS= and the health row. */
void daemon_publish(struct jada_ctx *ctx);
/* READY=1, once: see daemon-status.c. */
void daemon_ready(struct jada_ctx *ctx);
/* A write the daemon needed failed (r: negative errno): the database
 * problem, until a poll writes what it must. */
void daemon_db_failed(struct jada_ctx *ctx, int r, const char *what);

/* Between the daemon's own files (daemon-status.c, daemon-google.c). */
struct oauth_options;
bool daemon_budget_allows(struct jada_ctx *ctx, char *why, size_t size);
void daemon_check_problems(struct jada_ctx *ctx);
void daemon_write_metrics(struct jada_ctx *ctx, bool up);
/* The metrics as /metrics serves them (malloc'ed). */
char *daemon_metrics_text(struct jada_ctx *ctx);
void daemon_on_alert(void *userdata, bool recovered, const char *kind, const char *text);
void daemon_oauth_options(const struct jada_config *config, struct oauth_options *options);
int daemon_google_start(struct jada_ctx *ctx);
void daemon_google_stop(struct jada_ctx *ctx);
void daemon_google_reconfigure(struct jada_ctx *ctx, bool was_enabled);
struct session_result;
int daemon_usage_start(struct jada_ctx *ctx);
bool daemon_usage_parked(struct jada_ctx *ctx);
void daemon_usage_check(struct jada_ctx *ctx);
void daemon_usage_session_ended(struct jada_ctx *ctx, const struct session_result *result);
