/* SPDX-License-Identifier: MIT */
/* The daemon's health, from facts: the STATUS= line, the problems that are
 * states of the world (disk, budget, turn-limit share, tasks that need you)
 * and the Prometheus textfile. */
#include "jada/sync-store.h"
#include "jada/budget.h"
#include "jada/session-store.h"
#include "jada/daemon.h"
#include "jada/log.h"
#include "jada/metrics.h"
#include "jada/queue.h"
#include "jada/session.h"
#include "jada/sync.h"
#include "jada/util.h"

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
        if (n[TASK_NEEDS_YOU] && len >= 0 && (size_t)len < size)
                len += snprintf(buf + len, size - (size_t)len, ", %lld needs you", (long long)n[TASK_NEEDS_YOU]);
        if (n[TASK_FAILED] && len >= 0 && (size_t)len < size)
                snprintf(buf + len, size - (size_t)len, ", %lld failed", (long long)n[TASK_FAILED]);
}

/* "3h12min" until the next 00:00 UTC. */
static void until_midnight(char *buf, size_t size)
{
        int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);
        duration_format(buf, size, (uint64_t)(budget_day_start(now) + 86400 - now) * USEC_PER_SEC);
}

/* Whether the day's budget lets another session start; if not, why. */
bool daemon_budget_allows(struct jada_ctx *ctx, char *why, size_t size)
{
        const struct jada_config *c = ctx->config;
        int64_t day = budget_day_start((int64_t)(now_realtime_usec() / USEC_PER_SEC)), sessions = 0;
        double cost = 0;
        char reset[32];

        if (session_store_count_since(ctx->db, day, &sessions) < 0)
                sessions = c->claude.sessions_per_day; /* cannot count: do not risk going over */
        until_midnight(reset, sizeof reset);
        if (sessions >= (int64_t)c->claude.sessions_per_day) {
                snprintf(why, size, "budget spent: %lld/%u sessions today, resets 00:00 UTC (in %s)",
                         (long long)sessions, c->claude.sessions_per_day, reset);
                return false;
        }
        if (c->claude.daily_cost_limit_usd > 0 && session_store_cost_since(ctx->db, day, &cost) == 0 &&
            cost >= c->claude.daily_cost_limit_usd) {
                snprintf(why, size, "budget spent: $%.2f of $%.2f today, resets 00:00 UTC (in %s)", cost,
                         c->claude.daily_cost_limit_usd, reset);
                return false;
        }
        snprintf(why, size, "sessions %lld/%u today", (long long)sessions, c->claude.sessions_per_day);
        return true;
}

void daemon_publish(struct jada_ctx *ctx)
{
        struct health *h = &ctx->health;
        const char *problem = health_worst_problem(h);
        char every[32], queue[128], budget[160], running[96] = "";
        bool allowed;

        duration_format(every, sizeof every, ctx->config->daemon.poll_interval);
        describe_queue(ctx, queue, sizeof queue);
        allowed = ctx->db ? daemon_budget_allows(ctx, budget, sizeof budget) : true;
        if (ctx->n_sessions == 1)
                snprintf(running, sizeof running, "Running task %lld (turn %u/%u)",
                         (long long)session_task_id(ctx->sessions), session_turns(ctx->sessions),
                         ctx->config->claude.max_turns);
        else if (ctx->n_sessions > 1)
                snprintf(running, sizeof running, "Running %u sessions", ctx->n_sessions);

        if (ctx->stopping) {
                h->state = HEALTH_STOPPING;
                snprintf(h->status, sizeof h->status, "Stopping: waiting for %u session%s to end",
                         ctx->n_sessions, ctx->n_sessions == 1 ? "" : "s");
        } else if (problem) {
                h->state = HEALTH_DEGRADED;
                snprintf(h->status, sizeof h->status, "DEGRADED: %s · %s · %s", problem, queue, budget);
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
        if (ctx->db) {
                int r = health_save(ctx->db, h, (int64_t)getpid(), ctx->started_realtime);
                if (r < 0 && !health_has_problem(h, PROBLEM_DATABASE)) {
                        daemon_db_failed(ctx, r, "saving the health row");
                        daemon_publish(ctx); /* once more, for STATUS=: the problem is set now */
                } else if (r < 0)
                        ctx->db_error = r;
        }
}

/* Thresholds of the alerts that come from facts rather than events. */
#define DISK_FREE_ALERT 0.10
#define MAX_TURNS_ALERT 0.30
#define MAX_TURNS_MIN_SESSIONS 3

static double disk_free_ratio(const char *dir)
{
        struct statvfs v;

        if (statvfs(dir, &v) < 0 || v.f_blocks == 0)
                return -1;
        return (double)v.f_bavail / (double)v.f_blocks;
}

/* The problems that are states of the world: raised and cleared here, on
 * every poll, so each is one alert in and one out (health.c). */
void daemon_check_problems(struct jada_ctx *ctx)
{
        const int64_t *n = ctx->queue_counts;
        int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);
        struct session_outcomes week = { 0 };
        double free_ratio = disk_free_ratio(ctx->config->daemon.state_dir);
        char why[160];

        if (free_ratio >= 0 && free_ratio < DISK_FREE_ALERT)
                health_set_problem(&ctx->health, PROBLEM_DISK, "only %.1f%% free on the disk of %s",
                                   100 * free_ratio, ctx->config->daemon.state_dir);
        else if (free_ratio >= 0)
                health_clear_problem(&ctx->health, PROBLEM_DISK);

        if (n[TASK_QUEUED] > 0 && !daemon_budget_allows(ctx, why, sizeof why))
                health_set_problem(&ctx->health, PROBLEM_BUDGET, "%lld task%s wait: %s", (long long)n[TASK_QUEUED],
                                   n[TASK_QUEUED] == 1 ? "" : "s", why);
        else
                health_clear_problem(&ctx->health, PROBLEM_BUDGET);

        if (session_store_outcomes_since(ctx->db, now - 7 * 86400, &week) == 0) {
                double share = week.finished ? (double)week.max_turns / (double)week.finished : 0;
                if (week.finished >= MAX_TURNS_MIN_SESSIONS && share > MAX_TURNS_ALERT)
                        health_set_problem(&ctx->health, PROBLEM_MAX_TURNS,
                                           "%.0f%% of the week's sessions hit the turn limit: raise max_turns or "
                                           "split tasks", 100 * share);
                else
                        health_clear_problem(&ctx->health, PROBLEM_MAX_TURNS);
        }

        if (n[TASK_NEEDS_YOU] > 0)
                health_set_problem(&ctx->health, PROBLEM_NEEDS_YOU,
                                   "%lld task%s need%s you: jada-agent task list --state needs_you",
                                   (long long)n[TASK_NEEDS_YOU], n[TASK_NEEDS_YOU] == 1 ? "" : "s",
                                   n[TASK_NEEDS_YOU] == 1 ? "s" : "");
        else
                health_clear_problem(&ctx->health, PROBLEM_NEEDS_YOU);
}

/* [metrics] textfile: the facts for node_exporter, replaced atomically. */
void daemon_write_metrics(struct jada_ctx *ctx, bool up)
{
        const char *path = ctx->config->metrics.textfile;
        int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC), day = budget_day_start(now);
        struct metrics_facts f = {
                .up = up,
                .start_time = (int64_t)(ctx->started_realtime / USEC_PER_SEC),
                .last_poll = (int64_t)(ctx->last_poll_realtime / USEC_PER_SEC),
                .running_sessions = ctx->n_sessions,
                .sessions_per_day = ctx->config->claude.sessions_per_day,
                .daily_cost_limit_usd = ctx->config->claude.daily_cost_limit_usd,
                .sheets_enabled = ctx->config->sheets.enabled,
                .disk_free_ratio = disk_free_ratio(ctx->config->daemon.state_dir),
        };
        struct session_outcomes week = { 0 };
        struct sync_history sync = { 0 };
        struct rusage ru;
        long pages = 0;
        FILE *statm;
        int r;

        if (!path || !*path)
                return;
        memcpy(f.tasks, ctx->queue_counts, sizeof f.tasks);
        (void)session_store_count_since(ctx->db, day, &f.sessions_today);
        (void)session_store_cost_since(ctx->db, day, &f.cost_today_usd);
        if (session_store_outcomes_since(ctx->db, now - 7 * 86400, &week) == 0) {
                f.sessions_7d_finished = week.finished;
                f.sessions_7d_done = week.done;
                f.sessions_7d_max_turns = week.max_turns;
        }
        if (sync_store_history(ctx->db, &sync) == 0) {
                f.sheets_last_success = sync.last_ok_at;
                f.sheets_failing_runs = sync.failing_runs;
        }
        sync_history_clear(&sync);
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
        r = metrics_write(path, &f);
        if (r < 0)
                log_warning_errno(r, "cannot write the metrics file %s", path);
}
