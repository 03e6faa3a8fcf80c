/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "jada/health.h"
#include "jada/queue.h"

/*
 * The Prometheus textfile ([metrics] textfile) for node_exporter's textfile
 * collector: the daemon's facts in text format 0.0.4, replaced atomically
 * so the collector never reads half a file.
 */
struct metrics_facts {
        bool up;
        int64_t start_time;             /* UTC seconds */
        int64_t last_poll;
        int64_t tasks[_TASK_STATE_MAX];
        unsigned running_sessions;
        int64_t sessions_today;
        unsigned sessions_per_day;
        double cost_today_usd;
        double daily_cost_limit_usd;
        int64_t sessions_7d_finished, sessions_7d_done, sessions_7d_max_turns;
        bool sheets_enabled;
        int64_t sheets_last_success;    /* 0 if never */
        int64_t sheets_failing_runs;
        bool problems[_PROBLEM_MAX];
        int64_t resident_bytes;
        double cpu_seconds;
        double disk_free_ratio;         /* < 0 if unknown */
        /* The last usage-limit state the CLI reported (usage.h): its type,
         * reset (0: unknown) and utilization (< 0: unknown); type "" if none. */
        const char *usage_type;
        int64_t usage_reset;
        double usage_utilization;
        int64_t parked_until;           /* 0: not parked */
};

/* The file's text; the caller frees it. */
char *metrics_format(const struct metrics_facts *facts);
int metrics_write(const char *path, const struct metrics_facts *facts);
