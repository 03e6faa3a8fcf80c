/* SPDX-License-Identifier: MIT */
/* Sub-tasks and after-tasks: a task's parent (tasks.parent_id) and the
 * tasks it runs after (task_after). Each move here happens inside the
 * transaction of the move that caused it (queue.c), with its events. */
#include "jada/queue.h"
#include "queue-private.h"
#include "jada/store.h"
#include "jada/log.h"
#include "jada/notify-store.h"
#include "jada/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Neither running, queued, waiting nor needs_you: a sub-task in one of
 * these no longer holds its parent. */
#define FINISHED "('done', 'failed', 'cancelled')"

static int read_int64(struct store *db, const char *sql, int64_t a, int64_t *ret)
{
        struct store_stmt *st;
        int r = store_prepare(db, sql, &st);

        if (r < 0)
                return r;
        store_bind_int64(st, 1, a);
        return store_read_int64(st, ret);
}

int queue_family_unfinished(struct store *db, int64_t id, int64_t *ret)
{
        return read_int64(db, "SELECT count(*) FROM tasks WHERE parent_id = ?1 AND state NOT IN " FINISHED, id, ret);
}

/* Whether `from`, through its after-tasks and its sub-tasks (a parent
 * cannot end before them), waits for `target`. */
static int waits_for(struct store *db, int64_t from, int64_t target, bool *ret)
{
        struct store_stmt *st;
        int64_t found = 0;
        int r = store_prepare(db,
                           /* One recursive term over both kinds of edge:
                            * PostgreSQL allows no more. */
                           "WITH RECURSIVE w (id) AS (SELECT CAST(?1 AS BIGINT) UNION "
                           "  SELECT e.dst FROM (SELECT task_id AS src, after_id AS dst FROM task_after "
                           "                     UNION ALL SELECT parent_id, id FROM tasks "
                           "                     WHERE parent_id IS NOT NULL) AS e "
                           "  JOIN w ON e.src = w.id) "
                           "SELECT count(*) FROM w WHERE id = ?2",
                           &st);

        if (r < 0)
                return r;
        store_bind_int64(st, 1, from);
        store_bind_int64(st, 2, target);
        r = store_read_int64(st, &found);
        *ret = found > 0;
        return r;
}

int queue_family_check(struct store *db, const struct queue_new *n, struct queue_inherited *ret, char *why, size_t size)
{
        struct queue_task *parent = NULL;
        int64_t depth = 0, children = 0;
        int r;

        if (n->parent_id > 0) {
                r = queue_get(db, n->parent_id, &parent);
                if (r == -ENOENT)
                        snprintf(why, size, "no task %lld to be the parent; nothing was added", (long long)n->parent_id);
                if (r < 0)
                        return r;
                if (parent->state == TASK_DONE || parent->state == TASK_CANCELLED) {
                        snprintf(why, size, "task %lld is %s: a done or cancelled task takes no sub-tasks; nothing was added",
                                 (long long)parent->id, task_state_name(parent->state));
                        r = -EPERM;
                        goto out;
                }
                /* The parent's depth: 1 for a top-level task. Bounded by the
                 * chain of parents, which has no cycle (a parent is older). */
                r = read_int64(db,
                               "WITH RECURSIVE up (id, depth) AS (SELECT CAST(?1 AS BIGINT), 1 UNION ALL "
                               "  SELECT t.parent_id, up.depth + 1 FROM tasks t JOIN up ON t.id = up.id "
                               "  WHERE t.parent_id IS NOT NULL AND up.depth < 1000) "
                               "SELECT max(depth) FROM up",
                               parent->id, &depth);
                if (r == 0 && n->max_depth > 0 && depth + 1 > n->max_depth) {
                        snprintf(why, size, "task %lld is at depth %lld, and [claude] max_task_depth is %u: a sub-task "
                                 "of it would be too deep; nothing was added", (long long)parent->id, (long long)depth,
                                 n->max_depth);
                        r = -E2BIG;
                }
                if (r == 0)
                        r = read_int64(db, "SELECT count(*) FROM tasks WHERE parent_id = ?1", parent->id, &children);
                if (r == 0 && n->max_children > 0 && children >= n->max_children) {
                        snprintf(why, size, "task %lld has %lld sub-tasks already, and [claude] max_children_per_task "
                                 "is %u; nothing was added", (long long)parent->id, (long long)children, n->max_children);
                        r = -E2BIG;
                }
                if (r < 0)
                        goto out;
        }
        for (size_t i = 0; i < n->n_after; i++) {
                int64_t exists = 0;
                bool cycle = false;

                r = read_int64(db, "SELECT count(*) FROM tasks WHERE id = ?1", n->after[i], &exists);
                if (r == 0 && !exists) {
                        snprintf(why, size, "no task %lld to run after; nothing was added", (long long)n->after[i]);
                        r = -ENOENT;
                }
                /* The new task is new: only its ancestors, which wait for it,
                 * can close a cycle. */
                for (int64_t up = n->parent_id; r == 0 && up > 0 && !cycle;) {
                        struct queue_task *t = NULL;
                        r = waits_for(db, n->after[i], up, &cycle);
                        if (r == 0 && cycle) {
                                snprintf(why, size, "task %lld waits for task %lld, which would wait for this sub-task: "
                                         "--after-task %lld makes a cycle; nothing was added", (long long)n->after[i],
                                         (long long)up, (long long)n->after[i]);
                                r = -EDEADLK;
                        }
                        if (r == 0 && (r = queue_get(db, up, &t)) == 0)
                                up = t->parent_id;
                        queue_task_free(t);
                }
                if (r < 0)
                        goto out;
        }
        r = 0;
        if (parent) {
                ret->project = parent->project ? xstrdup(parent->project) : NULL;
                ret->base = parent->branch ? xstrdup(parent->branch) : NULL;
                ret->priority = parent->priority;
        }
out:
        queue_task_free(parent);
        return r;
}

int queue_family_add_after(struct store *db, int64_t id, const int64_t *after, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                struct store_stmt *st;
                int r = store_prepare(db, 
                                          "INSERT INTO task_after (task_id, after_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING", &st);
                if (r < 0)
                        return r;
                store_bind_int64(st, 1, id);
                store_bind_int64(st, 2, after[i]);
                r = store_step_done(st);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int list_tasks(struct store *db, const char *sql, int64_t id, struct queue_task **ret, size_t *n)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r = store_prepare(db, sql, &st);

        if (r < 0)
                return r;
        store_bind_int64(st, 1, id);
        return queue_read_tasks(db, st, ret, n);
}

int queue_children(struct store *db, int64_t id, struct queue_task **ret, size_t *n)
{
        return list_tasks(db, "SELECT " TASK_COLUMNS " FROM tasks WHERE parent_id = ?1 ORDER BY id", id, ret, n);
}

int queue_after_tasks(struct store *db, int64_t id, struct queue_task **ret, size_t *n)
{
        return list_tasks(db,
                          "SELECT " TASK_COLUMNS " FROM tasks WHERE id IN "
                          "(SELECT after_id FROM task_after WHERE task_id = ?1) ORDER BY id",
                          id, ret, n);
}

static void append(char **buf, size_t *len, const char *s)
{
        size_t n = strlen(s);

        *buf = xreallocarray(*buf, *len + n + 1, 1);
        memcpy(*buf + *len, s, n + 1);
        *len += n;
}

char *queue_children_report(const struct queue_task *children, size_t n)
{
        char *buf = NULL;
        size_t len = 0;

        append(&buf, &len, "Your sub-tasks have all ended. Here is what each one left:\n");
        for (size_t i = 0; i < n; i++) {
                const struct queue_task *c = &children[i];
                const char *text = c->state == TASK_DONE ? c->result : c->error ? c->error : c->needs_you_reason;
                _cleanup_free_ char *head = notify_cut(text ? text : "", QUEUE_CHILD_HEAD_MAX, 0);
                _cleanup_free_ char *title = notify_cut(c->title, QUEUE_TITLE_MAX, 1);
                _cleanup_free_ char *line = xasprintf("\n## Sub-task %lld: %s\nstate: %s\n", (long long)c->id, title,
                                                      task_state_name(c->state));
                append(&buf, &len, line);
                if (c->branch) {
                        _cleanup_free_ char *b = xasprintf("branch: %s\n", c->branch);
                        append(&buf, &len, b);
                }
                append(&buf, &len, c->state == TASK_DONE ? "result:\n" : "error:\n");
                append(&buf, &len, *head ? head : "(none)");
                append(&buf, &len, "\n");
        }
        append(&buf, &len, "\nGo on with your task with these results. A sub-task that did not end done may be "
                           "retried or replaced by a new one.\n");
        return buf;
}

/* The parent is waiting and its last sub-task just ended: queued again,
 * to resume its conversation with what they left (after a person's reply
 * that waited with it). */
static int resume_parent(struct store *db, int64_t parent, int64_t now)
{
        struct queue_task *children = NULL;
        size_t n = 0;
        _cleanup_free_ char *reply = NULL;
        char reason[96];
        int r = queue_children(db, parent, &children, &n);

        if (r < 0)
                return r;
        reply = queue_children_report(children, n);
        queue_tasks_free(children, n);
        /* A person's reply given while the sub-tasks ran comes first. */
        {
                struct queue_task *t = NULL;
                if (queue_get(db, parent, &t) == 0 && t->reply && *t->reply) {
                        char *both = xasprintf("%s\n\n%s", t->reply, reply);
                        free(reply);
                        reply = both;
                }
                queue_task_free(t);
        }
        snprintf(reason, sizeof reason, "its %zu sub-task%s ended; resumed with their results", n, n == 1 ? "" : "s");
        return queue_transition_locked(db, parent, TASK_QUEUED,
                                       &(struct queue_change){ .reason = reason, .reply = reply, .run_after = now,
                                                               .only_from = 1u << TASK_WAITING },
                                       now, NULL);
}

int queue_family_moved(struct store *db, int64_t id, enum task_state from, enum task_state to, int64_t now)
{
        int64_t parent = 0, unfinished = 0;
        int parent_state = -1;
        struct store_stmt *st;
        int r, rc;

        if (!(to == TASK_DONE || to == TASK_FAILED || to == TASK_CANCELLED || (from == TASK_FAILED && to == TASK_QUEUED)))
                return 0;
        r = store_prepare(db, "SELECT p.id, p.state FROM tasks t JOIN tasks p ON p.id = t.parent_id WHERE t.id = ?1", &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, id);
        rc = store_step(st);
        if (rc == STORE_ROW) {
                parent = store_column_int64(st, 0);
                parent_state = task_state_from_name(store_column_text(st, 1));
        }
        store_finalize(st);
        if (rc != STORE_ROW)
                return rc == STORE_DONE ? 0 : rc;

        if (to == TASK_QUEUED) {
                /* A failed sub-task retried: a parent queued with its results
                 * but not started yet waits for it again. A parent that runs
                 * already waits when its session ends (queue_transition). */
                char reason[96];
                if (parent_state != TASK_QUEUED)
                        return 0;
                snprintf(reason, sizeof reason, "its sub-task %lld was retried", (long long)id);
                return queue_transition_locked(db, parent, TASK_WAITING,
                                               &(struct queue_change){ .reason = reason }, now, NULL);
        }
        if (parent_state != TASK_WAITING)
                return 0;
        r = queue_family_unfinished(db, parent, &unfinished);
        if (r < 0 || unfinished > 0)
                return r;
        return resume_parent(db, parent, now);
}

/* Rows of (task, after-task) read first, moved after: no write under an open read. */
int queue_family_block_broken(struct store *db, int64_t now)
{
        struct broken {
                int64_t id;
                char *reason;
        } *list = NULL;
        size_t n = 0;
        struct store_stmt *st;
        int r, rc;

        r = store_prepare(db,
                       /* Driven from the few failed or cancelled tasks that
                        * others run after, each queued task looked up by its
                        * id: the join from the queued side read the whole
                        * queue on every claim (about 16 ms on a 100,000-task
                        * queue, bench/claims). */
                       "SELECT a.task_id, d.id, d.state, d.title, COALESCE(d.error, d.needs_you_reason, '') "
                       "FROM tasks d JOIN task_after a ON a.after_id = d.id "
                       "WHERE d.state IN ('failed', 'cancelled') "
                       "AND EXISTS (SELECT 1 FROM tasks t WHERE t.id = a.task_id AND t.state = 'queued' "
                       "            AND t.run_after <= ?1) "
                       "ORDER BY a.task_id, d.id",
                       &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, now);
        while ((rc = store_step(st)) == STORE_ROW) {
                int64_t id = store_column_int64(st, 0);
                _cleanup_free_ char *error = notify_cut(store_column_text(st, 4), 500, 3);
                if (n > 0 && list[n - 1].id == id)
                        continue; /* one reason is enough */
                list = xreallocarray(list, n + 1, sizeof *list);
                list[n].id = id;
                list[n].reason = xasprintf("task %lld (%s) that it runs after is %s%s%s: it does not run on a "
                                           "broken premise. Retry that task and reply, or mark this one done",
                                           (long long)store_column_int64(st, 1),
                                           store_column_text(st, 3),
                                           store_column_text(st, 2), *error ? ": " : "", error);
                n++;
        }
        store_finalize(st);
        r = rc == STORE_DONE ? 0 : rc;
        for (size_t i = 0; i < n; i++) {
                if (r == 0) {
                        log_notice("task %lld: %s", (long long)list[i].id, list[i].reason);
                        r = queue_transition_locked(db, list[i].id, TASK_NEEDS_YOU,
                                                    &(struct queue_change){ .reason = list[i].reason,
                                                                            .needs_you_reason = list[i].reason },
                                                    now, NULL);
                }
                free(list[i].reason);
        }
        free(list);
        return r;
}

int queue_family_sweep(struct store *db, int64_t now, int *moved)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int64_t *ids = NULL;
        size_t n = 0;
        int r, rc;

        r = store_prepare(db,
                       "SELECT id FROM tasks p WHERE state = 'waiting' AND NOT EXISTS "
                       "(SELECT 1 FROM tasks c WHERE c.parent_id = p.id AND c.state NOT IN " FINISHED ")",
                       &st);
        if (r < 0)
                return r;
        while ((rc = store_step(st)) == STORE_ROW) {
                ids = xreallocarray(ids, n + 1, sizeof *ids);
                ids[n++] = store_column_int64(st, 0);
        }
        r = rc == STORE_DONE ? 0 : rc;
        for (size_t i = 0; r == 0 && i < n; i++) {
                r = resume_parent(db, ids[i], now);
                if (r == 0)
                        (*moved)++;
        }
        free(ids);
        return r;
}

int queue_cancel_tree(struct store *db, int64_t id, const char *reason, int64_t now, enum task_state *ret_from,
                      unsigned *ret_children)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        _cleanup_free_ char *child_reason = xasprintf("its parent task %lld was cancelled", (long long)id);
        int64_t *ids = NULL;
        size_t n = 0;
        int r, rc;

        *ret_children = 0;
        r = store_begin(db);
        if (r < 0)
                return r;
        /* The task first: if it cannot be cancelled, nothing is. Its
         * sub-tasks then find their parent cancelled, not waiting. */
        r = queue_transition_locked(db, id, TASK_CANCELLED, &(struct queue_change){ .reason = reason }, now, ret_from);
        if (r == 0)
                r = store_prepare(db,
                               "WITH RECURSIVE d (id) AS (SELECT id FROM tasks WHERE parent_id = ?1 "
                               "  UNION SELECT t.id FROM tasks t JOIN d ON t.parent_id = d.id) "
                               "SELECT t.id FROM tasks t JOIN d ON d.id = t.id "
                               "WHERE t.state NOT IN " FINISHED " ORDER BY t.id",
                               &st);
        if (r == 0) {
                store_bind_int64(st, 1, id);
                while ((rc = store_step(st)) == STORE_ROW) {
                        ids = xreallocarray(ids, n + 1, sizeof *ids);
                        ids[n++] = store_column_int64(st, 0);
                }
                r = rc == STORE_DONE ? 0 : rc;
                store_finalizep(&st);
        }
        for (size_t i = 0; r == 0 && i < n; i++) {
                r = queue_transition_locked(db, ids[i], TASK_CANCELLED, &(struct queue_change){ .reason = child_reason },
                                            now, NULL);
                if (r == 0)
                        (*ret_children)++;
        }
        free(ids);
        if (r == 0)
                r = store_commit(db);
        if (r < 0) {
                store_rollback(db);
                *ret_children = 0;
        }
        return r;
}
