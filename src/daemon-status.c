/* SPDX-License-Identifier: MIT */
/* The daemon's health, from facts: the STATUS= line, the problems that are
 * states of the world (disk, budget, turn-limit share, tasks that need you)
 * and the Prometheus textfile. */
#include "jada/sync-store.h"
#include "jada/budget.h"
#include "jada/session-store.h"
#include "jada/daemon.h"
#include "jada/pg.h"
#include "jada/log.h"
#include "jada/metrics.h"
#include "jada/queue.h"
#include "jada/session.h"
#include "jada/sync.h"
#include "jada/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

/* The queue in a few words: "3 queued, 1 needs you". */
static void describe_queue(const struct jada_ctx *ctx, char *buf, size_t size)
{
        const int64_t *n = ctx->queue_counts;
        int len = snprintf(buf, size, "queue: %lld queued", (long long)n[TASK_QUEUED]);

        if (n[TASK_RUNNING] && len >= 0 && (size_t)len < size)
                len += snprintf(buf + len, size - (size_t)len, ", %lld running", (long long)n[TASK_RUNNING]);
        if (n[TASK_WAITING] && len >= 0 && (size_t)len < size)
                len += snprintf(buf + len, size - (size_t)len, ", %lld waiting", (long long)n[TASK_WAITING]);
        if (n[TASK_NEEDS_YOU] && len >= 0 && (size_t)len < size)
                len += snprintf(buf + len, size - (size_t)len, ", %lld needs you", (long long)n[TASK_NEEDS_YOU]);
        if (n[TASK_FAILED] && len >= 0 && (size_t)len < size)
                snprintf(buf + len, size - (size_t)len, ", %lld failed", (long long)n[TASK_FAILED]);
}

static void budget_facts_now(struct jada_ctx *ctx, struct budget_facts *f)
{
        const struct jada_config *c = ctx->config;
        int64_t now = now_seconds(), day = budget_day_start(now);

        *f = (struct budget_facts){ .now = now, .sessions_per_day = c->claude.sessions_per_day,
                                    .daily_cost_limit_usd = c->claude.daily_cost_limit_usd };
        if (session_store_spent_since(ctx->db, day, &f->sessions_today, &f->cost_today_usd) < 0) {
                /* Cannot count: do not risk going over. */
                f->sessions_today = c->claude.sessions_per_day;
                f->cost_today_usd = c->claude.daily_cost_limit_usd;
        }
}

/* Whether the day's budget lets another session start; if not, why. */
bool daemon_budget_allows(struct jada_ctx *ctx, char *why, size_t size)
{
        struct budget_facts f;

        budget_facts_now(ctx, &f);
        return budget_allows(&f, why, size);
}

/* A fleet's store before the start-up's recovery (its database not
 * reached yet) is not read or written: the node says why. */
bool daemon_store_usable(const struct jada_ctx *ctx)
{
        return ctx->db && (!ctx->fiber || (ctx->store_ready && pg_up(ctx->store_pg)));
}

static void publish_job(void *userdata)
{
        daemon_publish(userdata);
}

void daemon_publish(struct jada_ctx *ctx)
{
        /* It reads the budget and writes the health row: where the store may wait. */
        if (ctx->db && store_waits(ctx->db)) {
                store_run_once(ctx->db, &ctx->publish_job, publish_job, ctx);
                return;
        }
        struct health *h = &ctx->health;
        const char *problem = health_worst_problem(h);
        char every[32], queue[128], budget[160], running[96] = "";
        bool allowed;

        duration_format(every, sizeof every, ctx->config->daemon.poll_interval);
        describe_queue(ctx, queue, sizeof queue);
        if (daemon_store_usable(ctx))
                allowed = daemon_budget_allows(ctx, budget, sizeof budget);
        else {
                allowed = true;
                snprintf(budget, sizeof budget, "budget: not known yet");
        }
        unsigned n = ctx->sessions ? sessions_running(ctx->sessions) : 0, turns = 0;
        int64_t task_id = 0;

        if (n == 1 && sessions_first(ctx->sessions, &task_id, &turns))
                snprintf(running, sizeof running, "Running task %lld (turn %u/%u)", (long long)task_id, turns,
                         ctx->config->claude.max_turns);
        else if (n > 1)
                snprintf(running, sizeof running, "Running %u sessions", n);

        if (ctx->stopping) {
                h->state = HEALTH_STOPPING;
                snprintf(h->status, sizeof h->status, "Stopping: waiting for %u session%s to end",
                         n, n == 1 ? "" : "s");
        } else if (problem) {
                h->state = HEALTH_DEGRADED;
                /* A park is the daemon waiting as it should: said as such. */
                snprintf(h->status, sizeof h->status, "%s%s · %s · %s",
                         strncmp(problem, "Parked:", 7) == 0 ? "" : "DEGRADED: ", problem, queue, budget);
        } else {
                h->state = HEALTH_OK;
                if (*running)
                        snprintf(h->status, sizeof h->status, "%s · %s · %s", running, queue, budget);
                else if (!allowed && ctx->queue_counts[TASK_QUEUED] > 0)
                        snprintf(h->status, sizeof h->status, "Waiting: %s · %s", budget, queue);
                else
                        snprintf(h->status, sizeof h->status, "Idle · %s · %s · poll every %s", queue, budget, every);
        }
        sd_notifyf(false, "STATUS=%s", h->status);
        snprintf(h->usage.type, sizeof h->usage.type, "%s", ctx->usage.last.seen ? ctx->usage.last.type : "");
        snprintf(h->usage.status, sizeof h->usage.status, "%s", ctx->usage.last.seen ? ctx->usage.last.status : "");
        h->usage.utilization = ctx->usage.last.seen ? ctx->usage.last.utilization : -1;
        h->usage.resets_at = ctx->usage.last.seen ? ctx->usage.last.resets_at : 0;
        h->usage.parked_until = ctx->usage.parked_until;
        if (daemon_store_usable(ctx)) {
                int r = health_save(ctx->db, h, (int64_t)getpid(), ctx->started_realtime);
                if (r == 0)
                        daemon_ready(ctx);
                /* (A fleet's database out of reach is the node's problem:
                 * daemon_db_failed sets none, and once more would loop.) */
                if (r < 0 && !health_has_problem(h, PROBLEM_DATABASE) && !(ctx->fiber && r == -ENOTCONN)) {
                        daemon_db_failed(ctx, r, "saving the health row");
                        daemon_publish(ctx); /* once more, for STATUS=: the problem is set now */
                } else if (r < 0)
                        ctx->db_error = r;
        }
        /* A fleet's node that cannot reach its database is up all the
         * same, and says why; on SQLite the start is ready in any case. */
        if (!ctx->fiber || health_has_problem(h, PROBLEM_FLEET_DATABASE))
                daemon_ready(ctx);
}

/* READY=1 once, at start-up: when `status` can find the health row that
 * says this daemon runs (a fleet's first one is written on the fiber,
 * after the node has joined), so that `systemctl start` returning means
 * what it says. */
void daemon_ready(struct jada_ctx *ctx)
{
        if (!ctx->set_up || ctx->ready_sent || ctx->stopping)
                return;
        ctx->ready_sent = true;
        sd_notify(false, "READY=1");
}

static double disk_free_ratio(const char *dir)
{
        struct statvfs v;

        if (statvfs(dir, &v) < 0 || v.f_blocks == 0)
                return -1;
        return (double)v.f_bavail / (double)v.f_blocks;
}

/* The problems that are states of the world: assessed (health.c) and
 * raised or cleared here on every poll, so each is one alert in and one
 * out. An unknown fact (statvfs failed, the db unreadable) changes nothing. */
void daemon_check_problems(struct jada_ctx *ctx)
{
        struct health_facts f = { .state_dir = ctx->config->daemon.state_dir,
                                  .disk_free_share = disk_free_ratio(ctx->config->daemon.state_dir) };
        struct session_outcomes week = { 0 };
        struct health_assessment a;
        bool week_known;

        memcpy(f.tasks, ctx->queue_counts, sizeof f.tasks);
        budget_facts_now(ctx, &f.budget);
        week_known = session_store_outcomes_since(ctx->db, f.budget.now - 7 * 86400, &week) == 0;
        f.week_finished = week.finished;
        f.week_max_turns = week.max_turns;
        health_assess(&f, &a);
        for (int k = 0; k < _PROBLEM_MAX; k++) {
                if (!health_assessed((enum health_problem)k) || (k == PROBLEM_DISK && f.disk_free_share < 0) ||
                    (k == PROBLEM_MAX_TURNS && !week_known))
                        continue;
                if (a.found[k])
                        health_set_problem(&ctx->health, (enum health_problem)k, "%s", a.text[k]);
                else
                        health_clear_problem(&ctx->health, (enum health_problem)k);
        }
}

/* [metrics] textfile: the facts for node_exporter, replaced atomically. */
static void metrics_store_facts(struct jada_ctx *ctx, int64_t day, int64_t now, struct metrics_facts *f,
                                struct session_outcomes *week, struct sync_history *sync)
{
        (void)session_store_spent_since(ctx->db, day, &f->sessions_today, &f->cost_today_usd);
        if (session_store_outcomes_since(ctx->db, now - 7 * 86400, week) == 0) {
                f->sessions_7d_finished = week->finished;
                f->sessions_7d_done = week->done;
                f->sessions_7d_max_turns = week->max_turns;
        }
        if (sync_store_history(ctx->db, sync) == 0) {
                f->sheets_last_success = sync->last_ok_at;
                f->sheets_failing_runs = sync->failing_runs;
        }
        sync_history_clear(sync);
}

static void metrics_facts(struct jada_ctx *ctx, bool up, struct metrics_facts *ret)
{
        int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC), day = budget_day_start(now);
        struct metrics_facts f = {
                .up = up,
                .start_time = (int64_t)(ctx->started_realtime / USEC_PER_SEC),
                .last_poll = (int64_t)(ctx->last_poll_realtime / USEC_PER_SEC),
                .running_sessions = ctx->sessions ? sessions_running(ctx->sessions) : 0,
                .sessions_per_day = ctx->config->claude.sessions_per_day,
                .daily_cost_limit_usd = ctx->config->claude.daily_cost_limit_usd,
                .sheets_enabled = ctx->config->sheets.enabled,
                .disk_free_ratio = disk_free_ratio(ctx->config->daemon.state_dir),
                .usage_type = ctx->usage.last.seen ? ctx->usage.last.type : "",
                .usage_reset = ctx->usage.last.resets_at,
                .usage_utilization = ctx->usage.last.utilization,
                .parked_until = ctx->usage.parked_until > now ? ctx->usage.parked_until : 0,
        };
        struct session_outcomes week = { 0 };
        struct sync_history sync = { 0 };
        struct rusage ru;
        long pages = 0;
        FILE *statm;

        memcpy(f.tasks, ctx->queue_counts, sizeof f.tasks);
        /* A fleet's store cannot answer once the loop has ended (the last
         * file, up 0): its figures are the fleet's anyway, not this node's. */
        if (!store_waits(ctx->db) && daemon_store_usable(ctx))
                metrics_store_facts(ctx, day, now, &f, &week, &sync);
        for (int k = 0; k < _PROBLEM_MAX; k++)
                f.problems[k] = ctx->health.problems[k][0] != '\0';
        if ((statm = fopen("/proc/self/statm", "re"))) {
                if (fscanf(statm, "%*d %ld", &pages) != 1)
                        pages = 0;
                fclose(statm);
        }
        f.resident_bytes = (int64_t)pages * sysconf(_SC_PAGESIZE);
        if (getrusage(RUSAGE_SELF, &ru) == 0)
                f.cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                                ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
        *ret = f;
}

void daemon_write_metrics(struct jada_ctx *ctx, bool up)
{
        const char *path = ctx->config->metrics.textfile;
        struct metrics_facts f;
        int r;

        if (!path || !*path)
                return;
        metrics_facts(ctx, up, &f);
        r = metrics_write(path, &f);
        if (r < 0)
                log_warning_errno(r, "cannot write the metrics file %s", path);
}

char *daemon_metrics_text(struct jada_ctx *ctx)
{
        struct metrics_facts f;

        metrics_facts(ctx, true, &f);
        return metrics_format(&f);
}
