/* SPDX-License-Identifier: MIT */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The budget: sessions per UTC day and cost per UTC day, counted over the
 * sessions table. A session's row is written before its child starts, so a
 * crash can never hide a session from the day's count.
 */

/* The start of the UTC day holding t (seconds since the epoch). */
int64_t budget_day_start(int64_t t);

/* What a finished session did, for its row. */
struct budget_session_end {
        const char *outcome;            /* done, needs_you, max_turns, api_error, ... */
        int exit_status;                /* exit code, 128+signal, or -1 if unknown */
        int64_t turns;
        int64_t input_tokens;
        int64_t output_tokens;
        int64_t cache_creation_tokens;
        int64_t cache_read_tokens;
        double cost_usd;                /* this session's own cost */
        double reported_cost_usd;       /* total_cost_usd as the CLI reported it; < 0 if none */
        const char *error;              /* NULL if none */
        const char *uncounted;          /* why it takes no slot of the budget; NULL: it counts */
};

/* Writes the row of a session about to start, and counts it against the
 * task (sessions_used, claude_session_id), in one transaction. */
int budget_session_begin(sqlite3 *db, int64_t task_id, int64_t now, const char *claude_session_id,
                         bool resumed, int64_t *ret_session);
/* Records the child's pid and its start time (from /proc), so that a later
 * daemon can find and kill it if this one dies. */
int budget_session_set_pid(sqlite3 *db, int64_t session, int64_t pid, int64_t pid_start);
int budget_session_finish(sqlite3 *db, int64_t session, int64_t now, const struct budget_session_end *end);

/* Sessions left unfinished by a daemon that died: each is returned (pid and
 * pid start time) to the caller to kill if still alive, then closed as
 * "interrupted". Returns how many, or a negative errno. */
typedef void (*budget_orphan_fn)(int64_t pid, int64_t pid_start, void *userdata);
int budget_close_orphans(sqlite3 *db, int64_t now, budget_orphan_fn fn, void *userdata);

/* Sessions that count against the budget (not those marked uncounted). */
int budget_sessions_since(sqlite3 *db, int64_t since, int64_t *ret);
int budget_cost_since(sqlite3 *db, int64_t since, double *ret);

/* What the CLI reported earlier for the same Claude conversation (the
 * largest total_cost_usd of this task's sessions with that id), or 0. */
int budget_previous_reported_cost(sqlite3 *db, int64_t task_id, const char *claude_session_id,
                                  int64_t before_session, double *ret);

/* The cost of one session from what the CLI reported. total_cost_usd is
 * per run in older CLIs and cumulative across --resume in newer ones; the
 * result's modelUsage counts tokens the same way as its cost while usage
 * counts this run only, so model tokens above usage tokens mean cumulative.
 * Without those, a resumed total below the previous total can only be per run. */
double budget_session_cost(double reported, double previous_reported, bool resumed,
                           int64_t usage_input_tokens, int64_t model_usage_input_tokens);

/* Outcomes over a window, for `jada-agent status` and the turn-limit alert;
 * sessions that never reached the model are left out. */
struct budget_outcomes {
        int64_t total, finished, done, max_turns;
        double cost_usd;
};
int budget_outcomes_since(sqlite3 *db, int64_t since, struct budget_outcomes *ret);

/* History for `jada-agent sessions`. */
struct budget_session_row {
        int64_t id;
        int64_t task_id;                /* 0 if the task was pruned */
        int64_t started_at, ended_at;   /* ended_at 0 while running */
        char *outcome;                  /* NULL while running */
        int exit_status;
        int64_t turns;
        int64_t input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens;
        double cost_usd;
        char *claude_session_id;
        bool resumed;
        char *error;
        char *uncounted;                /* NULL: counted against the budget */
};
int budget_list_sessions(sqlite3 *db, int64_t since, struct budget_session_row **ret, size_t *n);
void budget_session_rows_free(struct budget_session_row *rows, size_t n);
