/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the queue module's files: queue.c (states, transitions,
 * claiming) and queue-project.c (a task's branch and worktree). */

#include "jada/queue.h"

/* The columns every task query returns, in struct order. */
#define TASK_COLUMNS \
        "id, title, prompt, state, priority, run_after, attempts, sessions_used, turns_used, " \
        "cost_usd, claude_session_id, needs_you_reason, reply, result, error, created_at, updated_at, " \
        "project, branch, base, base_commit, worktree, max_cost_usd"

extern const char *const queue_state_names[_TASK_STATE_MAX];

/* Fills a task from a row of TASK_COLUMNS; -EBADMSG for a state the db
 * should not hold. */
int queue_task_from_row(sqlite3_stmt *st, struct queue_task *t);
/* Within the caller's transaction. old_state -1: the task was created. */
int queue_add_event(sqlite3 *db, int64_t id, int old_state, enum task_state new_state, const char *reason,
                    int64_t now);
/* Every row of a prepared TASK_COLUMNS query. */
int queue_read_tasks(sqlite3 *db, sqlite3_stmt *st, struct queue_task **ret, size_t *n);
