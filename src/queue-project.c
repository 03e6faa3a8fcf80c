/* SPDX-License-Identifier: MIT */
/* The tasks table's per-task settings: a project task's branch and worktree,
 * and a task's cost cap. */
#include "jada/queue.h"
#include "queue-private.h"
#include "jada/store.h"
#include "jada/util.h"

#include <errno.h>

int queue_set_branch(struct store *db, int64_t id, const char *branch, const char *base, const char *base_commit,
                     const char *worktree)
{
        struct store_stmt *st;
        int r = store_prepare(db,
                           "UPDATE tasks SET branch = ?2, base = ?3, base_commit = ?4, worktree = ?5 WHERE id = ?1",
                           &st);

        if (r < 0)
                return r;
        store_bind_int64(st, 1, id);
        store_bind_text(st, 2, branch);
        store_bind_text(st, 3, base);
        store_bind_text(st, 4, base_commit);
        store_bind_text(st, 5, worktree);
        r = store_step_done(st);
        return r < 0 ? r : store_changes(db) == 1 ? 0 : -ENOENT;
}

int queue_set_worktree(struct store *db, int64_t id, const char *worktree)
{
        struct store_stmt *st;
        int r = store_prepare(db, "UPDATE tasks SET worktree = ?2 WHERE id = ?1", &st);

        if (r < 0)
                return r;
        store_bind_int64(st, 1, id);
        store_bind_text(st, 2, worktree);
        r = store_step_done(st);
        return r < 0 ? r : store_changes(db) == 1 ? 0 : -ENOENT;
}

int queue_set_max_cost(struct store *db, int64_t id, double usd, int64_t now)
{
        _cleanup_free_ char *reason = xasprintf("cost cap set to $%.2f", usd);
        struct store_stmt *st;
        int r;

        if (!(usd > 0))
                return -EINVAL;
        r = store_begin(db);
        if (r < 0)
                return r;
        r = store_prepare(db, "UPDATE tasks SET max_cost_usd = ?2, updated_at = ?3 WHERE id = ?1", &st);
        if (r == 0) {
                store_bind_int64(st, 1, id);
                store_bind_double(st, 2, usd);
                store_bind_int64(st, 3, now);
                r = store_step_done(st);
                if (r == 0 && store_changes(db) != 1)
                        r = -ENOENT;
        }
        if (r == 0)
                r = queue_note(db, id, reason, now);
        if (r == 0)
                r = store_commit(db);
        if (r < 0)
                store_rollback(db);
        return r;
}

double queue_cost_cap(const struct queue_task *t, double default_usd)
{
        return t->max_cost_usd > 0 ? t->max_cost_usd : default_usd > 0 ? default_usd : 0;
}

int queue_note(struct store *db, int64_t id, const char *reason, int64_t now)
{
        struct store_stmt *st;
        int r = store_prepare(db,
                           "INSERT INTO task_events (task_id, at, old_state, new_state, reason) "
                           "SELECT id, CAST(?2 AS BIGINT), state, state, CAST(?3 AS TEXT) FROM tasks WHERE id = ?1",
                           &st);

        if (r < 0)
                return r;
        store_bind_int64(st, 1, id);
        store_bind_int64(st, 2, now);
        store_bind_text(st, 3, reason ? reason : "");
        r = store_step_done(st);
        return r < 0 ? r : store_changes(db) == 1 ? 0 : -ENOENT;
}

int queue_worktrees(struct store *db, bool ended_only, struct queue_task **ret, size_t *n)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        /* PostgreSQL-only: a fleet's task is the worktree of the node that
         * claimed it last (another node's worktree of it is that node's
         * leftover: its commit, push and on_done are not for the task). */
        bool fleet = store_is_postgresql(db);
        int r = store_prepare(db,
                           fleet ? "SELECT " TASK_COLUMNS " FROM tasks WHERE worktree IS NOT NULL "
                                   "AND (?1 = 0 OR state IN ('done', 'cancelled')) AND claimed_by = ?2 ORDER BY id"
                                 : "SELECT " TASK_COLUMNS " FROM tasks WHERE worktree IS NOT NULL "
                                   "AND (?1 = 0 OR state IN ('done', 'cancelled')) ORDER BY id",
                           &st);

        if (r < 0)
                return r;
        store_bind_int64(st, 1, ended_only);
        if (fleet)
                store_bind_text(st, 2, store_node(db));
        return queue_read_tasks(db, st, ret, n);
}
