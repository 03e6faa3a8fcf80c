/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the queue module's files: queue.c (states, transitions,
 * claiming) and queue-project.c (a task's branch and worktree). */

#include "jada/queue.h"

/* The columns every task query returns, in struct order. */
#define TASK_COLUMNS \
        "id, title, prompt, state, priority, run_after, attempts, sessions_used, turns_used, " \
        "cost_usd, claude_session_id, needs_you_reason, reply, result, error, created_at, updated_at, " \
        "project, branch, base, base_commit, worktree, max_cost_usd, parent_id"

extern const char *const queue_state_names[_TASK_STATE_MAX];

/* Fills a task from a row of TASK_COLUMNS; -EBADMSG for a state the db
 * should not hold. */
int queue_task_from_row(struct store_stmt *st, struct queue_task *t);
/* Within the caller's transaction. old_state -1: the task was created. */
int queue_add_event(struct store *db, int64_t id, int old_state, enum task_state new_state, const char *reason,
                    int64_t now);
/* Every row of a prepared TASK_COLUMNS query. */
int queue_read_tasks(struct store *db, struct store_stmt *st, struct queue_task **ret, size_t *n);

/* queue-family.c, each within the caller's transaction. */
/* What a new task takes from its parent (NULL/0: nothing). */
struct queue_inherited {
        char *project, *base;
        int64_t priority;
};
/* Checks a new task's parent and after-tasks against the limits. */
int queue_family_check(struct store *db, const struct queue_new *n, struct queue_inherited *ret, char *why, size_t size);
int queue_family_add_after(struct store *db, int64_t id, const int64_t *after, size_t n);
/* How many sub-tasks of id are not done, failed or cancelled. */
int queue_family_unfinished(struct store *db, int64_t id, int64_t *ret);
/* After id moved from `from` to `to`: its parent is queued again (its
 * last sub-tasks ended) or back to waiting (one was retried). */
int queue_family_moved(struct store *db, int64_t id, enum task_state from, enum task_state to, int64_t now);
/* Queued, due tasks with a failed or cancelled after-task go to needs_you. */
int queue_family_block_broken(struct store *db, int64_t now);
/* Waiting tasks whose sub-tasks have all finished are queued again. */
int queue_family_sweep(struct store *db, int64_t now, int *moved);
