/* SPDX-License-Identifier: MIT */
#include "jada/metrics.h"
#include "jada/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct text {
        char *buf;
        size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) put(struct text *t, const char *fmt, ...)
{
        va_list ap;
        int n;

        for (;;) {
                va_start(ap, fmt);
                n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
                va_end(ap);
                if (n < 0)
                        abort();
                if ((size_t)n < t->cap - t->len) {
                        t->len += (size_t)n;
                        return;
                }
                t->cap = t->cap * 2 + (size_t)n;
                t->buf = xreallocarray(t->buf, t->cap, 1);
        }
}

/* One metric family: HELP and TYPE once, then its samples. */
static void family(struct text *t, const char *name, const char *type, const char *help)
{
        put(t, "# HELP jada_agent_%s %s\n# TYPE jada_agent_%s %s\n", name, help, name, type);
}

char *metrics_format(const struct metrics_facts *f)
{
        struct text t = { .buf = xmalloc(4096), .cap = 4096 };

        t.buf[0] = '\0';
        family(&t, "up", "gauge", "1 while the daemon runs, 0 once it stopped cleanly.");
        put(&t, "jada_agent_up %d\n", f->up ? 1 : 0);
        family(&t, "start_time_seconds", "gauge", "When the daemon started, in seconds since the epoch.");
        put(&t, "jada_agent_start_time_seconds %lld\n", (long long)f->start_time);
        family(&t, "last_poll_timestamp_seconds", "gauge", "When the daemon last looked at the queue.");
        put(&t, "jada_agent_last_poll_timestamp_seconds %lld\n", (long long)f->last_poll);
        family(&t, "tasks", "gauge", "Tasks by state.");
        for (int s = 0; s < _TASK_STATE_MAX; s++)
                put(&t, "jada_agent_tasks{state=\"%s\"} %lld\n", task_state_name(s), (long long)f->tasks[s]);
        family(&t, "running_sessions", "gauge", "Claude sessions running now.");
        put(&t, "jada_agent_running_sessions %u\n", f->running_sessions);
        family(&t, "sessions_today", "gauge", "Sessions started since 00:00 UTC.");
        put(&t, "jada_agent_sessions_today %lld\n", (long long)f->sessions_today);
        family(&t, "sessions_per_day", "gauge", "The configured budget of sessions per UTC day.");
        put(&t, "jada_agent_sessions_per_day %u\n", f->sessions_per_day);
        family(&t, "cost_today_usd", "gauge", "Cost of today's sessions in USD.");
        put(&t, "jada_agent_cost_today_usd %.6f\n", f->cost_today_usd);
        family(&t, "daily_cost_limit_usd", "gauge", "The configured daily cost limit in USD; 0 is none.");
        put(&t, "jada_agent_daily_cost_limit_usd %.6f\n", f->daily_cost_limit_usd);
        family(&t, "sessions_7d", "gauge", "Finished sessions of the last 7 days by outcome.");
        put(&t, "jada_agent_sessions_7d{outcome=\"done\"} %lld\n", (long long)f->sessions_7d_done);
        put(&t, "jada_agent_sessions_7d{outcome=\"max_turns\"} %lld\n", (long long)f->sessions_7d_max_turns);
        put(&t, "jada_agent_sessions_7d{outcome=\"other\"} %lld\n",
            (long long)(f->sessions_7d_finished - f->sessions_7d_done - f->sessions_7d_max_turns));
        family(&t, "sheets_enabled", "gauge", "1 if the port-sheet sync is on.");
        put(&t, "jada_agent_sheets_enabled %d\n", f->sheets_enabled ? 1 : 0);
        family(&t, "sheets_last_success_timestamp_seconds", "gauge", "The last good sync; 0 if none.");
        put(&t, "jada_agent_sheets_last_success_timestamp_seconds %lld\n", (long long)f->sheets_last_success);
        family(&t, "sheets_failing_runs", "gauge", "Failed syncs since the last good one.");
        put(&t, "jada_agent_sheets_failing_runs %lld\n", (long long)f->sheets_failing_runs);
        family(&t, "problem", "gauge", "1 while a problem of this kind is current (see jada-agent status).");
        for (int k = 0; k < _PROBLEM_MAX; k++)
                put(&t, "jada_agent_problem{kind=\"%s\"} %d\n", health_problem_name(k), f->problems[k] ? 1 : 0);
        family(&t, "resident_memory_bytes", "gauge", "The daemon's resident memory (VmRSS).");
        put(&t, "jada_agent_resident_memory_bytes %lld\n", (long long)f->resident_bytes);
        family(&t, "cpu_seconds_total", "counter", "CPU time the daemon used, user and system.");
        put(&t, "jada_agent_cpu_seconds_total %.3f\n", f->cpu_seconds);
        if (f->disk_free_ratio >= 0) {
                family(&t, "state_dir_free_ratio", "gauge", "Free share of the state directory's filesystem.");
                put(&t, "jada_agent_state_dir_free_ratio %.4f\n", f->disk_free_ratio);
        }
        family(&t, "parked_until_timestamp_seconds", "gauge",
               "While a usage limit parks the daemon: when sessions start again; else 0.");
        put(&t, "jada_agent_parked_until_timestamp_seconds %lld\n", (long long)f->parked_until);
        /* Named as issue "usage limits" asks, outside the jada_agent_ prefix. */
        if (f->usage_type && *f->usage_type) {
                if (f->usage_reset > 0) {
                        put(&t, "# HELP jada_usage_limit_reset_timestamp_seconds When the last reported usage "
                                "limit resets.\n# TYPE jada_usage_limit_reset_timestamp_seconds gauge\n");
                        put(&t, "jada_usage_limit_reset_timestamp_seconds{type=\"%s\"} %lld\n", f->usage_type,
                            (long long)f->usage_reset);
                }
                if (f->usage_utilization >= 0) {
                        put(&t, "# HELP jada_usage_limit_utilization The last reported use of a usage limit.\n"
                                "# TYPE jada_usage_limit_utilization gauge\n");
                        put(&t, "jada_usage_limit_utilization{type=\"%s\"} %.4f\n", f->usage_type,
                            f->usage_utilization);
                }
        }
        return t.buf;
}

int metrics_write(const char *path, const struct metrics_facts *f)
{
        char *text = metrics_format(f);
        int r = write_file_atomic(path, text, strlen(text), 0644);

        free(text);
        return r;
}
