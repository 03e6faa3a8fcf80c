/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "jada/queue.h"
#include "jada/stream.h"

/*
 * What a finished session means for its task, decided from the result line
 * (is_error, subtype, terminal_reason), never from the exit code alone:
 * the CLI reports API failures as subtype "success" with is_error true.
 * A pure function, so every case is a unit test.
 */

/* Why the daemon stopped a session itself, if it did. */
enum session_stop {
        SESSION_STOP_NONE,
        SESSION_STOP_TIMEOUT,           /* session_timeout, wall clock */
        SESSION_STOP_IDLE,              /* idle_timeout without output */
        SESSION_STOP_TURNS,             /* more turns than max_turns + 1 */
        SESSION_STOP_PROTOCOL,          /* a line past the cap */
        SESSION_STOP_SHUTDOWN,          /* the daemon is stopping */
        SESSION_STOP_CANCELLED,         /* the task was cancelled by hand */
};

struct outcome_facts {
        const struct stream_result *result;
        const struct stream_stats *stats;
        enum session_stop stop;
        int exit_status;                /* exit code, 128+signal, -1 unknown */
        bool exec_failed;               /* the command could not be run at all */
        bool resumed;
        int64_t sessions_used;          /* by the task, this one included */
        int64_t attempts;               /* failed attempts before this one */
        unsigned max_sessions_per_task;
        unsigned max_attempts;
        unsigned max_turns;
        unsigned api_error_streak;      /* transient API errors in a row, before this one */
        double session_cost_usd;        /* this session's own cost (budget_session_cost) */
        int64_t now;                    /* UTC seconds: for a limit text's reset time */
        /* Cost caps: the task's cap (0: none) and its cost before this
         * session; whether the --max-budget-usd given was the day's rest
         * (daily_cost_limit_usd) rather than the task's. */
        double task_cap_usd;
        double task_cost_before_usd;
        bool budget_from_day;
};

enum outcome_kind {
        OUTCOME_DONE,
        OUTCOME_NEEDS_YOU,
        OUTCOME_MAX_TURNS,              /* resumable: queued, or needs_you past the cap */
        OUTCOME_AUTH_ERROR,             /* 401/403: launch nothing more; the task is not burnt */
        OUTCOME_API_ERROR,              /* 429/529/5xx: re-queued with backoff, not a failure */
        OUTCOME_NO_CONVERSATION,        /* --resume of an unknown id: one fresh session */
        OUTCOME_FAILED_ATTEMPT,         /* crash, kill, timeout, malformed: retry, then failed */
        OUTCOME_INTERRUPTED,            /* daemon stop: resumable, not a failure */
        OUTCOME_CANCELLED,              /* cancelled while it ran: nothing to change */
        OUTCOME_LAUNCH_ERROR,           /* the command cannot run: not the task's fault */
        OUTCOME_NOT_STARTED,            /* its project's worktree could not be made ready */
        OUTCOME_USAGE_LIMIT,            /* refused by a plan's usage limit: park, not a failure */
        OUTCOME_DAY_COST,               /* stopped at the day's cost limit: resumes tomorrow */
};

struct outcome {
        enum outcome_kind kind;
        const char *name;               /* for the sessions table: "done", "max_turns", "timeout", ... */
        enum task_state next;           /* the task's next state */
        char *reason;                   /* for the event, needs_you_reason or error */
        char *result;                   /* the final text, for a done task */
        bool count_attempt;
        bool clear_session_id;
        int64_t retry_delay;            /* seconds until the task may run again */
        /* Why this session takes no slot of the day's budget, or NULL when
         * it counts: it never started, or the API refused it before any
         * turn ran (no cost, no tokens). The CLI reports such a refusal
         * with num_turns 1 (a "<synthetic>" message of its own), so the
         * evidence is this run's cost and usage, not the turn count. */
        char *uncounted;
        /* OUTCOME_USAGE_LIMIT: the limit and its reset (UTC seconds; 0 unknown). */
        const char *limit_type;
        int64_t limit_reset;
};

void outcome_decide(const struct outcome_facts *facts, struct outcome *out);
void outcome_clear(struct outcome *out);

/* min(60 s * 2^(n-1), 1 h) for the n-th failure in a row (n >= 1). */
int64_t outcome_backoff(int64_t n);
