/* SPDX-License-Identifier: MIT */
#include "jada/alert.h"
#include "jada/budget.h"
#include "jada/child.h"
#include "jada/control.h"
#include "jada/daemon.h"
#include "jada/db.h"
#include "jada/http.h"
#include "jada/log.h"
#include "jada/node.h"
#include "jada/pg.h"
#include "jada/notify.h"
#include "jada/oauth.h"
#include "jada/project.h"
#include "jada/queue.h"
#include "jada/session.h"
#include "jada/session-store.h"
#include "jada/sync.h"
#include "jada/transcript.h"
#include "jada/util.h"
#include "jada/web.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define EXIT_CONFIG 78 /* EX_CONFIG */

/* Timers may fire up to this late so the kernel can batch wakeups; nothing
 * in a 60 s poll needs better. A poll for a task falling due, or for the
 * budget's reset, is a promise of a time: it takes the fine accuracy. */
#define POLL_ACCURACY_USEC (1 * USEC_PER_SEC)
#define DUE_ACCURACY_USEC (10 * USEC_PER_MSEC)
/* Done and cancelled tasks past the retention are pruned this often. */
#define PRUNE_INTERVAL_USEC (86400 * USEC_PER_SEC)

/* Starts sessions for due tasks while concurrency and the budget allow. */
static void daemon_launch(struct jada_ctx *ctx)
{
        /* A fleet's budget is everyone's: the check, the claim and the
         * session's row are one transaction under the fleet's write lock,
         * so N daemons racing never start more than it allows. (On SQLite
         * the one daemon's claims cannot race.) */
        bool fleet = store_is_postgresql(ctx->db);
        char why[160];

        /* Another node may have parked the fleet on a usage limit. */
        if (fleet)
                (void)usage_load(ctx->db, &ctx->usage);
        /* While an outcome waits to be recorded, the db cannot take a
         * session's row either: the budget is only safe with the row. */
        while (!ctx->stopping && !ctx->launch_blocked && !ctx->no_credential && !daemon_usage_parked(ctx) &&
               !sessions_unrecorded(ctx->sessions) &&
               sessions_running(ctx->sessions) < ctx->config->claude.concurrency) {
                struct queue_task *task = NULL;
                /* A project with isolation = none runs one session at a time. */
                _cleanup_free_ const char **busy = sessions_busy_projects(ctx->sessions);
                int r = fleet ? store_begin(ctx->db) : 0;

                if (r < 0) {
                        daemon_db_failed(ctx, r, "claiming a task");
                        break;
                }
                if (!daemon_budget_allows(ctx, why, sizeof why)) {
                        store_rollback(ctx->db);
                        break;
                }
                r = queue_claim(ctx->db, (int64_t)(now_realtime_usec() / USEC_PER_SEC), busy, &task);
                if (r < 0) {
                        log_error_errno(r, "cannot claim a task");
                        daemon_db_failed(ctx, r, "claiming a task");
                        store_rollback(ctx->db);
                        break;
                }
                if (r == 0) {
                        /* Nothing to claim; what the claim did besides (a
                         * task whose after-task failed now needs you) stands. */
                        if (fleet && (r = store_commit(ctx->db)) < 0)
                                daemon_db_failed(ctx, r, "claiming a task");
                        break;
                }
                int64_t task_id = task->id;
                r = sessions_start(ctx->sessions, task);
                if (fleet) {
                        int c = store_commit(ctx->db);
                        if (c < 0) {
                                /* Not claimed after all: a session that
                                 * started must not run on (its task is
                                 * queued for anyone, and it has no row). */
                                log_error_errno(c, "cannot commit a claim");
                                daemon_db_failed(ctx, c, "claiming a task");
                                sessions_discard(ctx->sessions, task_id);
                                break;
                        }
                }
                if (r < 0)
                        break;
        }
}

/* Without any credential every session would fail (and count as a failed
 * attempt of its task): start none, and say exactly what to set. The
 * environment and systemd's credentials are fixed for a process's life, so
 * this is decided at start-up; a reload looks again (a `claude login`). */
static void daemon_check_credential(struct jada_ctx *ctx)
{
        _cleanup_free_ char *home = xasprintf("%s/home", ctx->config->daemon.state_dir);
        const char *source = child_credential_source(home);

        ctx->no_credential = source == NULL;
        if (source) {
                log_debug("claude's credential: %s", source);
                return;
        }
        health_set_problem(&ctx->health, PROBLEM_API_KEY,
                           "no Claude credential: set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (under "
                           "systemd: the credential anthropic-api-key or claude-oauth-token) and restart");
}

/* Each project's path, as the file system says now: a path that went
 * missing, or a unit that makes it read-only, is a problem with its fix.
 * Cheap (stat, access): every poll, so that a fix is seen without a reload. */
static void daemon_check_projects(struct jada_ctx *ctx)
{
        const struct jada_config *c = ctx->config;
        _cleanup_free_ char *first = NULL;
        size_t bad = 0;

        for (size_t i = 0; i < c->n_projects; i++) {
                char *why = NULL;
                if (project_check_path(&c->projects[i], &why) < 0) {
                        if (!first)
                                first = why;
                        else
                                free(why);
                        bad++;
                }
        }
        if (bad == 0)
                health_clear_problem(&ctx->health, PROBLEM_PROJECT);
        else if (bad == 1)
                health_set_problem(&ctx->health, PROBLEM_PROJECT, "%s", first);
        else
                health_set_problem(&ctx->health, PROBLEM_PROJECT, "%s (and %zu more projects)", first, bad - 1);
}

/* A regular poll may be late by POLL_ACCURACY_USEC so wakeups batch; a
 * poll asked for now (a wake from the command line, a session that ended)
 * must not wait for that. */
static int poll_arm_accuracy(struct jada_ctx *ctx, uint64_t delay, uint64_t accuracy)
{
        int r = sd_event_source_set_time_accuracy(ctx->poll_timer, delay == 0 ? 1 : accuracy);
        if (r >= 0)
                r = sd_event_source_set_time_relative(ctx->poll_timer, delay);
        if (r >= 0)
                r = sd_event_source_set_enabled(ctx->poll_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                return log_error_errno(r, "cannot arm the poll timer");
        return 0;
}

static int poll_arm(struct jada_ctx *ctx, uint64_t delay)
{
        return poll_arm_accuracy(ctx, delay, POLL_ACCURACY_USEC);
}

/* Sleeps until the earliest deadline, as beanstalkd does: the poll
 * interval, the next queued task's run_after (--after, a retry's backoff),
 * or the budget's reset at 00:00 UTC, whichever comes first. The db
 * counts whole seconds, so a due time is the start of its second. */
static int poll_arm_next(struct jada_ctx *ctx)
{
        uint64_t now_usec = now_realtime_usec(), delay = ctx->config->daemon.poll_interval;
        uint64_t accuracy = POLL_ACCURACY_USEC, until;
        int64_t now = (int64_t)(now_usec / USEC_PER_SEC), due = 0, deadline = budget_day_start(now) + 86400;
        /* Due after the second this poll claimed in, not after now: a poll
         * that began at 26.997 s and ends at 27.001 s has not claimed the
         * task due at 27 (a timer fires early by the time the loop took
         * before it was armed). Such a task is due already: a poll at once. */
        int64_t claimed = ctx->last_poll_realtime ? (int64_t)(ctx->last_poll_realtime / USEC_PER_SEC) : now;
        int r;

        r = queue_next_due(ctx->db, claimed < now ? claimed : now, &due);
        if (r < 0)
                log_warning_errno(r, "cannot read when the next task falls due; polling every interval");
        if (due > 0 && due < deadline)
                deadline = due;
        /* A park ends at its own time, not at the next poll. */
        if (ctx->usage.parked_until > now && ctx->usage.parked_until < deadline)
                deadline = ctx->usage.parked_until;
        until = (uint64_t)deadline * USEC_PER_SEC > now_usec ? (uint64_t)deadline * USEC_PER_SEC - now_usec : 0;
        if (until <= delay) {
                delay = until;
                accuracy = DUE_ACCURACY_USEC;
        }
        return poll_arm_accuracy(ctx, delay, accuracy);
}

void daemon_db_failed(struct jada_ctx *ctx, int r, const char *what)
{
        ctx->db_error = r;
        /* A fleet's database out of reach is the node's problem to tell
         * (fleet_database, with its cause), not a second one here. */
        if (ctx->fiber && r == -ENOTCONN) {
                log_debug("database: %s: not connected", what);
                return;
        }
        health_set_problem(&ctx->health, PROBLEM_DATABASE, "cannot write the database (%s): %s%s", what,
                           strerror(-r), r == -ENOSPC ? "; free space on the disk of the state directory" : "");
}

/* What a session's outcome means for launching and for health. */
static void on_session_ended(const struct session_result *result, void *userdata)
{
        struct jada_ctx *ctx = userdata;

        daemon_usage_session_ended(ctx, result);
        switch (result->kind) {
        case OUTCOME_AUTH_ERROR:
                ctx->launch_blocked = true;
                health_set_problem(&ctx->health, PROBLEM_API_KEY,
                                   "Anthropic API key rejected (HTTP %d): fix the credential anthropic-api-key, "
                                   "then systemctl reload jada-agent", result->api_error_status);
                break;
        case OUTCOME_LAUNCH_ERROR:
                ctx->launch_blocked = true;
                health_set_problem(&ctx->health, PROBLEM_CLAUDE_COMMAND,
                                   "cannot run '%s': %s; fix [claude] command, then reload",
                                   ctx->config->claude.command, strerror(result->exec_errno));
                break;
        default:
                break;
        }
        if (ctx->stopping) {
                daemon_publish(ctx);
                if (sessions_running(ctx->sessions) == 0)
                        daemon_exit(ctx);
                return;
        }
        /* The task moved: its notification is in the outbox. */
        notifier_kick(ctx->notifier);
        /* Look at the queue again now: the next task need not wait a poll
         * (and a task that ended may leave a worktree to clean up). */
        (void)poll_arm(ctx, 0);
}

static void on_sessions_changed(void *userdata)
{
        daemon_publish(userdata);
}

static void on_sessions_db_failed(int r, const char *what, void *userdata)
{
        daemon_db_failed(userdata, r, what);
}

/* The transcripts of sessions whose task was pruned go with it (the rows
 * stay: the budget's history). */
static void daemon_prune_transcripts(struct jada_ctx *ctx)
{
        int64_t *ids = NULL;
        size_t n = 0, gone = 0;

        if (session_store_ids(ctx->db, 0, &ids, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = transcript_path(ctx->config->daemon.state_dir, ids[i]);
                if (unlink(path) == 0)
                        gone++;
        }
        free(ids);
        if (gone > 0)
                log_info("pruned %zu transcript%s of pruned tasks", gone, gone == 1 ? "" : "s");
}

static bool daemon_holds_task(int64_t task_id, void *userdata)
{
        struct jada_ctx *ctx = userdata;
        return sessions_hold(ctx->sessions, task_id);
}

/* What the store must hear before the first claim: the sessions and the
 * tasks a previous run of this daemon left. On SQLite at start-up; on a
 * fleet's PostgreSQL at the first poll that reaches it. */
static int daemon_store_start(struct jada_ctx *ctx)
{
        int r;

        sessions_reap_orphans(ctx->sessions);
        project_clear_stale_locks(ctx->db, ctx->started_realtime);
        r = daemon_usage_start(ctx);
        if (r < 0)
                return r;
        r = queue_recover(ctx->db, (int64_t)(ctx->started_realtime / USEC_PER_SEC),
                          "recovered at start-up: the daemon that ran it is gone");
        if (r < 0)
                return log_error_errno(r, "cannot recover tasks left running");
        if (r > 0)
                log_notice("%d task%s left running by a daemon that is gone %s queued again", r,
                           r == 1 ? "" : "s", r == 1 ? "is" : "are");
        ctx->store_ready = true;
        return 0;
}

static void poll_job(void *userdata);

/* Done and cancelled tasks past the retention, every PRUNE_INTERVAL_USEC;
 * on a fleet by its leader alone. */
static void daemon_prune(struct jada_ctx *ctx, uint64_t now_mono)
{
        int64_t before = (int64_t)((now_realtime_usec() - ctx->config->daemon.retention) / USEC_PER_SEC);
        int r;

        if ((ctx->last_prune_monotonic != 0 && now_mono - ctx->last_prune_monotonic < PRUNE_INTERVAL_USEC) ||
            (ctx->node && !node_leads(ctx->node)))
                return;
        ctx->last_prune_monotonic = now_mono;
        r = queue_prune(ctx->db, before);
        if (r > 0)
                log_info("pruned %d done or cancelled task%s older than the retention", r, r == 1 ? "" : "s");
        daemon_prune_transcripts(ctx);
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct jada_ctx *ctx = userdata;

        /* The poll reads and writes the store: where it may wait for it. */
        store_run_once(ctx->db, &ctx->poll_job, poll_job, ctx);
        return 0;
}

void daemon_poll_soon(struct jada_ctx *ctx)
{
        if (!ctx->stopping && ctx->poll_timer)
                (void)poll_arm(ctx, 0);
}

static void poll_job(void *userdata)
{
        struct jada_ctx *ctx = userdata;

        uint64_t now_mono = now_monotonic_usec();
        int r;

        if (ctx->stopping)
                return;
        /* A fleet's database out of reach: the node tells, and its return
         * polls at once (daemon-fleet.c). */
        if (ctx->fiber && !pg_up(ctx->store_pg)) {
                (void)poll_arm(ctx, ctx->config->daemon.poll_interval);
                return;
        }
        if (!ctx->store_ready) {
                /* A fleet's database: once the node has joined (the schema
                 * is migrated). Until then, or while it cannot be reached
                 * (the node says so), again each second. */
                if (!node_ready(ctx->node) || daemon_store_start(ctx) < 0) {
                        (void)poll_arm(ctx, USEC_PER_SEC);
                        return;
                }
                /* A Google that cannot be set up is a health problem, not a
                 * reason to leave the task queue unserved. */
                (void)daemon_google_start(ctx);
        }
        ctx->polls++;
        ctx->last_poll_realtime = now_realtime_usec();
        ctx->db_error = 0;
        log_debug("poll #%" PRIu64, ctx->polls);

        sessions_retry_unrecorded(ctx->sessions);
        if (ctx->node)
                daemon_fleet_rescue(ctx);

        daemon_prune(ctx, now_mono);
        if (ctx->node && notifier_outbox_paused(ctx->notifier) && node_leads(ctx->node)) {
                notifier_set_outbox_paused(ctx->notifier, false);
                notifier_kick(ctx->notifier);
        }
        sessions_check_cancelled(ctx->sessions);
        daemon_usage_check(ctx);
        daemon_check_projects(ctx);
        daemon_launch(ctx);
        project_janitor_sweep(ctx->janitor, ctx->config);
        r = queue_counts(ctx->db, ctx->queue_counts);
        if (r < 0)
                log_warning_errno(r, "cannot count the queue");
        daemon_check_problems(ctx);
        daemon_publish(ctx);
        /* Cleared only by a poll that wrote all it had to. */
        if (ctx->db_error == 0 && !sessions_unrecorded(ctx->sessions) && health_has_problem(&ctx->health, PROBLEM_DATABASE)) {
                health_clear_problem(&ctx->health, PROBLEM_DATABASE);
                daemon_publish(ctx);
        }
        daemon_write_metrics(ctx, true);
        /* Moves the command line made (done, a reply's next session...), and
         * deliveries the db could not record before. */
        notifier_kick(ctx->notifier);
        (void)poll_arm_next(ctx);
}


struct control_call {
        struct jada_ctx *ctx;
        char message[64];
};

static void control_job(void *userdata);

/* What the command line asks may reach the store (a sync's row). */
static void on_control_message(const char *message, void *userdata)
{
        struct control_call *call = xcalloc(1, sizeof *call);

        call->ctx = userdata;
        snprintf(call->message, sizeof call->message, "%s", message);
        store_run(call->ctx->db, control_job, call);
}

static void control_job(void *userdata)
{
        _cleanup_free_ struct control_call *call = userdata;
        struct jada_ctx *ctx = call->ctx;
        const char *message = call->message;

        if (strcmp(message, CONTROL_WAKE) == 0) {
                log_debug("woken by the command line");
                if (!ctx->stopping)
                        (void)poll_arm(ctx, 0);
        } else if (strcmp(message, CONTROL_SYNC) == 0) {
                if (ctx->sync && !ctx->stopping) {
                        log_info("sync requested from the command line");
                        sync_run_now(ctx->sync);
                }
        } else if (strcmp(message, CONTROL_RELOAD_AUTH) == 0) {
                if (ctx->oauth) {
                        struct oauth_options o;
                        log_info("the Google token was renewed: reloading it");
                        daemon_oauth_options(ctx->config, &o);
                        oauth_reload(ctx->oauth, &o);
                        if (ctx->sync && !ctx->stopping)
                                sync_run_now(ctx->sync);
                }
        } else {
                log_debug("control socket: unknown message '%.32s'", message);
        }
}

static void stop_job(void *userdata);

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct jada_ctx *ctx = userdata;

        if (ctx->stopping)
                return 0;
        log_info("received %s, stopping", strsignal((int)si->ssi_signo));
        ctx->stopping = true;
        sd_notify(false, "STOPPING=1");
        /* A session still preparing is given back in the store. */
        store_run(ctx->db, stop_job, ctx);
        return 0;
}

static void stop_job(void *userdata)
{
        struct jada_ctx *ctx = userdata;

        if (sessions_running(ctx->sessions) == 0) {
                sd_notify(false, "STATUS=Stopping");
                daemon_exit(ctx);
                return;
        }
        /* Sessions get SIGTERM, then SIGKILL after the grace period; the
         * loop ends when the last one has been recorded as interrupted. */
        log_info("stopping %u running session%s", sessions_running(ctx->sessions),
                 sessions_running(ctx->sessions) == 1 ? "" : "s");
        sessions_stop_all(ctx->sessions, SESSION_STOP_SHUTDOWN);
        daemon_publish(ctx);
}

/* ---- the dashboard -------------------------------------------------------- */

static void on_web_changed(void *userdata)
{
        struct jada_ctx *ctx = userdata;

        /* A task added or moved from a page: as after the command line's wake. */
        sessions_check_cancelled(ctx->sessions);
        (void)poll_arm(ctx, 0);
}

static char *on_web_metrics(void *userdata)
{
        return daemon_metrics_text(userdata);
}

static size_t on_web_live(void *userdata, struct web_live_session *ret, size_t max)
{
        struct jada_ctx *ctx = userdata;
        int64_t ids[64];
        unsigned turns[64];
        size_t n = sessions_live(ctx->sessions, ids, turns, max < 64 ? max : 64);

        for (size_t i = 0; i < n; i++)
                ret[i] = (struct web_live_session){ .task_id = ids[i], .turns = turns[i] };
        return n;
}

/* Starts the dashboard if [web] listen asks for one. One that cannot start
 * is a health problem: the queue is served regardless. */
static void daemon_web_start(struct jada_ctx *ctx)
{
        char why[256];
        int r;

        if (!*ctx->config->web.listen) {
                health_clear_problem(&ctx->health, PROBLEM_WEB);
                return;
        }
        r = web_start(ctx->event, ctx->config, ctx->db,
                      &(struct web_hooks){ .changed = on_web_changed, .metrics = on_web_metrics, .live = on_web_live,
                                           .userdata = ctx },
                      &ctx->web, why, sizeof why);
        if (r < 0) {
                log_error("the dashboard cannot start: %s", why);
                health_set_problem(&ctx->health, PROBLEM_WEB, "the dashboard cannot start: %s", why);
                return;
        }
        health_clear_problem(&ctx->health, PROBLEM_WEB);
}

static void leader_job(void *userdata)
{
        struct jada_ctx *ctx = userdata;

        if (ctx->sync && !ctx->stopping && node_leads(ctx->node))
                sync_run_now(ctx->sync);
        /* What is past the retention goes before the outbox is delivered:
         * a pruned task's notifications go with it. */
        if (!ctx->stopping && daemon_store_usable(ctx)) {
                daemon_prune(ctx, now_monotonic_usec());
                notifier_kick(ctx->notifier);
        }
}

static void on_node_leader(struct node *node, bool leads, void *userdata)
{
        struct jada_ctx *ctx = userdata;

        /* The leader alone delivers the shared outbox, once its start-up
         * is done (and what is past the retention pruned, notifications
         * with it): poll_job lifts that pause. */
        notifier_set_outbox_paused(ctx->notifier, !leads || !ctx->store_ready);
        /* A new leader syncs at once: the last one may have died mid-interval. */
        if (leads)
                store_run(ctx->db, leader_job, ctx);
}

static void on_node_load(struct node *node, unsigned *sessions, char *task_ids, size_t size, void *userdata)
{
        struct jada_ctx *ctx = userdata;
        int64_t ids[16];
        unsigned turns[16];
        size_t n = sessions_live(ctx->sessions, ids, turns, 16), used = 0;

        *sessions = sessions_running(ctx->sessions);
        task_ids[0] = '\0';
        for (size_t i = 0; i < n && used < size; i++) {
                int w = snprintf(task_ids + used, size - used, "%s%lld", i ? "," : "", (long long)ids[i]);
                if (w < 0)
                        break;
                used += (size_t)w;
        }
}

static void on_node_lost(struct node *node, void *userdata)
{
        daemon_poll_soon(userdata);
}

static void on_node_health(struct node *node, void *userdata)
{
        daemon_publish(userdata);
}

/* The fleet ([database] url): a database that cannot be reached is a
 * health problem the node keeps trying to fix, never a reason not to start. */
static void daemon_node_start(struct jada_ctx *ctx)
{
        int r;

        if (!*ctx->config->database.url)
                return;
        r = node_start(ctx->event, ctx->config, &ctx->health,
                       &(struct node_callbacks){ .leader = on_node_leader, .load = on_node_load,
                                                 .lost = on_node_lost, .health_changed = on_node_health, .userdata = ctx },
                       &ctx->node);
        if (r < 0)
                health_set_problem(&ctx->health, PROBLEM_FLEET_DATABASE, "cannot join the fleet: %s", strerror(-r));
}

/* Takes what may change at run time from a new config; state_dir may not
 * (the db is open in the old one). */
static void daemon_apply_config(struct jada_ctx *ctx, struct jada_config *next)
{
        struct jada_config *old = ctx->config;

        if (strcmp(old->daemon.state_dir, next->daemon.state_dir) != 0) {
                log_warning("state_dir changed from %s to %s: this takes effect after a restart",
                            old->daemon.state_dir, next->daemon.state_dir);
                free(next->daemon.state_dir);
                next->daemon.state_dir = xstrdup(old->daemon.state_dir);
        }
        ctx->config = next;
        sessions_set_config(ctx->sessions, next);
        if (old->daemon.poll_interval != next->daemon.poll_interval)
                (void)poll_arm_next(ctx);
        daemon_google_reconfigure(ctx, old->sheets.enabled);
        if (ctx->alerter)
                alerter_set_url(ctx->alerter, next->alerts.webhook_url);
        /* The dashboard starts again on a new address (or a fixed one). */
        if (!ctx->web || strcmp(old->web.listen, next->web.listen) != 0) {
                ctx->web = web_stop(ctx->web);
                daemon_web_start(ctx);
        } else {
                web_set_config(ctx->web, next);
        }
        if (ctx->notifier) {
                notifier_set_config(ctx->notifier, next);
                notifier_kick(ctx->notifier);
        }
        if (strcmp(old->database.url, next->database.url) != 0 ||
            strcmp(old->database.node_name, next->database.node_name) != 0)
                log_warning("[database] url or node_name changed: this takes effect after a restart");
        if (ctx->node)
                node_set_config(ctx->node, next);
        config_free(old);
}

static void reload_job(void *userdata);

/* A reload starts and stops what uses the store (the sync, the dashboard). */
static int on_reload_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct jada_ctx *ctx = userdata;

        store_run(ctx->db, reload_job, ctx);
        return 0;
}

static void reload_job(void *userdata)
{
        struct jada_ctx *ctx = userdata;
        struct config_problems problems = { 0 };
        struct jada_config *next = NULL;

        /* MONOTONIC_USEC lets Type=notify-reload units (systemd ≥ 253) match
         * this reload to the signal; older managers ignore it. */
        sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=Reloading configuration",
                   now_monotonic_usec());
        log_info("reloading %s", ctx->config_path);

        if (config_load(ctx->config_path, &next, &problems) < 0) {
                config_problems_log(&problems);
                log_error("%s: reload refused (%zu problem%s); still running on the previous configuration",
                          ctx->config_path, problems.n, problems.n == 1 ? "" : "s");
                health_set_problem(&ctx->health, PROBLEM_CONFIG_RELOAD,
                                   "config reload failed, %zu problem%s in %s (see journal); running on the previous one",
                                   problems.n, problems.n == 1 ? "" : "s", ctx->config_path);
        } else {
                daemon_apply_config(ctx, next);
                health_clear_problem(&ctx->health, PROBLEM_CONFIG_RELOAD);
                /* A reload is how an operator says "fixed it": try again. */
                if (ctx->launch_blocked)
                        log_info("trying sessions again after the reload");
                ctx->launch_blocked = false;
                health_clear_problem(&ctx->health, PROBLEM_CLAUDE_COMMAND);
                /* Still no credential: the same problem, not a recovery and a new alert. */
                daemon_check_credential(ctx);
                if (!ctx->no_credential)
                        health_clear_problem(&ctx->health, PROBLEM_API_KEY);
                (void)poll_arm(ctx, 0);
                log_info("configuration reloaded");
        }
        config_problems_clear(&problems);
        daemon_publish(ctx);
        sd_notify(false, "READY=1");
}

static void daemon_free(struct jada_ctx *ctx)
{
        ctx->node = node_stop(ctx->node);
        ctx->web = web_stop(ctx->web);
        ctx->janitor = project_janitor_free(ctx->janitor);
        ctx->sessions = sessions_free(ctx->sessions);
        sync_free(ctx->sync);
        oauth_free(ctx->oauth);
        alerter_free(ctx->alerter);
        notifier_free(ctx->notifier);
        if (ctx->control)
                control_close(ctx->control, ctx->config->daemon.state_dir);
        sd_event_source_unref(ctx->poll_timer);
        sd_event_source_unref(ctx->sig_term);
        sd_event_source_unref(ctx->sig_int);
        sd_event_source_unref(ctx->sig_hup);
        http_client_free(ctx->http);
        if (ctx->fiber)
                daemon_fleet_close(ctx);
        else
                store_close(ctx->db);
        sd_event_unref(ctx->event);
        config_free(ctx->config);
        free(ctx->config_path);
        if (ctx->lock_fd >= 0)
                close(ctx->lock_fd);
}

/* One daemon per state dir: the lock makes start-up recovery safe (a task
 * found running belongs to a daemon that is gone) and the control socket ours. */
static int daemon_lock(struct jada_ctx *ctx)
{
        _cleanup_free_ char *path = xasprintf("%s/daemon.lock", ctx->config->daemon.state_dir);
        char pid[32] = "";
        int fd;

        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return log_error_errno(errno, "cannot open %s", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = -errno;
                ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
                pid[n > 0 ? n : 0] = '\0';
                pid[strcspn(pid, "\n")] = '\0';
                close(fd);
                if (r == -EWOULDBLOCK) {
                        r = -EBUSY;
                        log_error("another jada-agent (pid %s) is running on %s", *pid ? pid : "unknown",
                                  ctx->config->daemon.state_dir);
                } else {
                        log_error_errno(r, "cannot lock %s", path);
                }
                return r;
        }
        snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0)
                log_warning_errno(errno, "cannot write %s", path);
        ctx->lock_fd = fd;
        return 0;
}

static int daemon_setup(struct jada_ctx *ctx)
{
        _cleanup_free_ char *db_path = NULL;
        sigset_t mask;
        int r;

        r = mkdir_p(ctx->config->daemon.state_dir, 0700);
        if (r < 0)
                return log_error_errno(r, "cannot create the state directory %s", ctx->config->daemon.state_dir);
        r = daemon_lock(ctx);
        if (r < 0)
                return r;
        r = sd_event_default(&ctx->event);
        if (r < 0)
                return log_error_errno(r, "cannot create the event loop");
        if (*ctx->config->database.url) {
                r = daemon_fleet_open(ctx);
        } else {
                db_path = db_path_for(ctx->config->daemon.state_dir);
                r = store_open(db_path, &ctx->db);
        }
        if (r < 0)
                return r;
        r = sessions_new(ctx->event, ctx->db, ctx->config,
                         &(struct session_callbacks){ .changed = on_sessions_changed, .ended = on_session_ended,
                                                      .db_failed = on_sessions_db_failed, .userdata = ctx },
                         &ctx->sessions);
        if (r < 0)
                return log_error_errno(r, "cannot set up the sessions");
        r = project_janitor_new(ctx->event, ctx->db, daemon_holds_task, ctx, &ctx->janitor);
        if (r < 0)
                return log_error_errno(r, "cannot set up the projects");
        /* On SQLite now: a database that cannot recover is a reason not to
         * start. A fleet's may not be there yet: the first poll that
         * reaches it does this. */
        if (!ctx->fiber) {
                r = daemon_store_start(ctx);
                if (r < 0)
                        return r;
        }

        /* Feeds the watchdog from the loop when WATCHDOG_USEC is set: so
         * anything that blocks the loop gets the daemon restarted. */
        r = sd_event_set_watchdog(ctx->event, true);
        if (r < 0)
                return log_error_errno(r, "cannot enable the watchdog");
        if (r > 0)
                log_debug("watchdog enabled");

        /* sd-event takes signals through a signalfd: they must be blocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD); /* for sd_event_add_child() */
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "cannot block signals");
        if ((r = sd_event_add_signal(ctx->event, &ctx->sig_term, SIGTERM, on_stop_signal, ctx)) < 0 ||
            (r = sd_event_add_signal(ctx->event, &ctx->sig_int, SIGINT, on_stop_signal, ctx)) < 0 ||
            (r = sd_event_add_signal(ctx->event, &ctx->sig_hup, SIGHUP, on_reload_signal, ctx)) < 0)
                return log_error_errno(r, "cannot add signal sources");

        /* The first poll runs at once: tasks queued while we were down wait no longer. */
        r = sd_event_add_time_relative(ctx->event, &ctx->poll_timer, CLOCK_MONOTONIC, 0,
                                       POLL_ACCURACY_USEC, on_poll, ctx);
        if (r < 0)
                return log_error_errno(r, "cannot add the poll timer");

        /* Without it the command line cannot wake us; the poll still runs. */
        (void)control_listen(ctx->event, ctx->config->daemon.state_dir, on_control_message, ctx, &ctx->control);

        r = http_client_new(ctx->event, &ctx->http);
        if (r < 0)
                return log_error_errno(r, "cannot set up HTTP");
        r = alerter_new(ctx->event, ctx->http, &ctx->alerter);
        if (r < 0)
                return log_error_errno(r, "cannot set up alerts");
        alerter_set_url(ctx->alerter, ctx->config->alerts.webhook_url);
        r = notifier_new(ctx->event, ctx->db, ctx->http, ctx->config_path, &ctx->notifier);
        if (r < 0)
                return log_error_errno(r, "cannot set up notifications");
        /* What a previous run left undelivered goes at the first poll, at
         * once: after its prune, so a pruned task's are not sent. */
        notifier_set_config(ctx->notifier, ctx->config);
        ctx->health.on_alert = daemon_on_alert;
        ctx->health.alert_userdata = ctx;
        /* A fleet's outbox waits until this node leads. */
        notifier_set_outbox_paused(ctx->notifier, ctx->fiber != NULL);
        /* A Google that cannot be set up is a health problem, not a reason
         * to leave the task queue unserved. A fleet's: with the store. */
        if (!ctx->fiber)
                (void)daemon_google_start(ctx);
        daemon_check_credential(ctx);
        daemon_web_start(ctx);
        daemon_node_start(ctx);
        return 0;
}

int daemon_run(const char *config_path)
{
        struct jada_ctx ctx = { .config_path = xstrdup(config_path), .lock_fd = -1 };
        struct config_problems problems = { 0 };
        char every[32];
        int r;

        ctx.started_realtime = now_realtime_usec();
        ctx.started_monotonic = now_monotonic_usec();

        if (config_load(config_path, &ctx.config, &problems) < 0) {
                config_problems_log(&problems);
                log_error("%s: %zu problem%s; not starting", config_path, problems.n, problems.n == 1 ? "" : "s");
                config_problems_clear(&problems);
                sd_notifyf(false, "STATUS=Bad configuration in %s (see journal)", config_path);
                daemon_free(&ctx);
                return EXIT_CONFIG;
        }
        config_problems_clear(&problems);

        umask(0077); /* state, tokens and the db are the operator's alone */
        r = daemon_setup(&ctx);
        if (r < 0) {
                sd_notifyf(false, "STATUS=Failed to start: %s (see journal)", strerror(-r));
                daemon_free(&ctx);
                return 1;
        }

        log_info("jada-agent %s started: config %s, state %s, poll every %s", JADA_VERSION, config_path,
                 ctx.config->daemon.state_dir,
                 duration_format(every, sizeof every, ctx.config->daemon.poll_interval));
        ctx.set_up = true;
        daemon_publish(&ctx);           /* and READY=1, when the health row is written */

        r = sd_event_loop(ctx.event);
        if (r < 0)
                log_error_errno(r, "event loop failed");
        daemon_write_metrics(&ctx, false); /* up 0: a stale file must not say it runs */
        log_info("stopped");
        daemon_free(&ctx);
        return r < 0 ? 1 : 0;
}
