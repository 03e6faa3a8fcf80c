/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The sessions table: one row per session launch, written before the child
 * starts, so that a crash can never hide a session from the day's budget.
 * All of that table's SQL is here; what the rows mean for the budget (the
 * UTC day, a session's own cost) is budget.h's pure arithmetic.
 */

/* What a finished session did, for its row. */
struct session_end {
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

/* The row of a session about to start. Within the caller's transaction
 * when it has one (the task's own count goes with it: queue). */
int session_store_begin(struct store *db, int64_t task_id, int64_t now, const char *claude_session_id, bool resumed,
                        int64_t *ret_session);
/* The child's pid and its start time (from /proc), so that a later daemon
 * can find and kill it if this one dies. */
int session_store_set_pid(struct store *db, int64_t session, int64_t pid, int64_t pid_start);
int session_store_finish(struct store *db, int64_t session, int64_t now, const struct session_end *end);

/* Sessions left unfinished by a daemon that died: each is returned (pid and
 * pid start time) to the caller to kill if still alive, then closed as
 * "interrupted". Returns how many, or a negative errno. */
typedef void (*session_orphan_fn)(int64_t pid, int64_t pid_start, void *userdata);
int session_store_close_orphans(struct store *db, int64_t now, session_orphan_fn fn, void *userdata);

/* A fleet's (PostgreSQL): the open sessions of a rescued task that ran on
 * the lost node (NULL: on any), closed as "node_lost" with error. Within
 * the rescue's transaction. Returns how many, or a negative errno. */
int session_store_close_lost(struct store *db, int64_t task_id, const char *node, int64_t now, const char *error);

/* Whether a session's end may still be written (fencing). On a fleet a
 * node presumed lost may come back and find that another node closed its
 * session as node_lost, and claimed the task again; on SQLite a session is
 * always its daemon's. */
enum session_fence {
        SESSION_FENCE_OURS,             /* open, and its task's claim is the session's */
        SESSION_FENCE_RESCUED,          /* closed as node_lost, or its task claimed again */
        SESSION_FENCE_ENDED,            /* ended already (an earlier write of this end) */
};
int session_store_fence(struct store *db, int64_t session, enum session_fence *ret);

/* What the budget counts since a time, in one query: the sessions that
 * count (not those marked uncounted), and the cost of all. Both 0 on error. */
int session_store_spent_since(struct store *db, int64_t since, int64_t *ret_sessions, double *ret_cost_usd);

/* What the CLI reported earlier for the same Claude conversation (the
 * largest total_cost_usd of this task's sessions with that id), or 0. */
int session_store_previous_reported_cost(struct store *db, int64_t task_id, const char *claude_session_id,
                                         int64_t before_session, double *ret);

/* The outcome of the task's last session before this one that ran (not a
 * launch or project error), or NULL (*ret) if none; free() it. */
int session_store_last_outcome(struct store *db, int64_t task_id, int64_t before_session, char **ret);

/* The ids of a task's sessions, oldest first (task_id 0: of the sessions
 * whose task was pruned). */
int session_store_ids(struct store *db, int64_t task_id, int64_t **ret, size_t *n);
/* Whether the session has ended (its row has an end); -ENOENT if no such row. */
int session_store_ended(struct store *db, int64_t session, bool *ret);

/* Outcomes over a window, for `jada-agent status` and the turn-limit alert;
 * sessions that never reached the model are left out. */
struct session_outcomes {
        int64_t total, finished, done, max_turns;
        double cost_usd;
};
int session_store_outcomes_since(struct store *db, int64_t since, struct session_outcomes *ret);

/* History for `jada-agent sessions`. */
struct session_row {
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
int session_store_list(struct store *db, int64_t since, struct session_row **ret, size_t *n);
/* A task's sessions, oldest first. */
int session_store_list_task(struct store *db, int64_t task_id, struct session_row **ret, size_t *n);
void session_rows_free(struct session_row *rows, size_t n);
