/* SPDX-License-Identifier: MIT */
#include "jada/queue.h"
#include "queue-private.h"
#include "jada/store.h"
#include "jada/log.h"
#include "jada/notify-store.h"
#include "jada/util.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

const char *const queue_state_names[_TASK_STATE_MAX] = {
        [TASK_QUEUED] = "queued",       [TASK_RUNNING] = "running",
        [TASK_DONE] = "done",           [TASK_NEEDS_YOU] = "needs_you",
        [TASK_FAILED] = "failed",       [TASK_CANCELLED] = "cancelled",
        [TASK_WAITING] = "waiting",
};

/* allowed[from] is the set of states a task may move to (DESIGN.md §4). */
static const unsigned allowed[_TASK_STATE_MAX] = {
        [TASK_QUEUED]    = 1u << TASK_RUNNING | 1u << TASK_CANCELLED | 1u << TASK_WAITING |
                           1u << TASK_NEEDS_YOU, /* an after-task failed: queue-family.c */
        [TASK_RUNNING]   = 1u << TASK_DONE | 1u << TASK_NEEDS_YOU | 1u << TASK_FAILED |
                           1u << TASK_QUEUED | 1u << TASK_CANCELLED | 1u << TASK_WAITING,
        [TASK_WAITING]   = 1u << TASK_QUEUED | 1u << TASK_CANCELLED,
        [TASK_NEEDS_YOU] = 1u << TASK_QUEUED | 1u << TASK_DONE | 1u << TASK_CANCELLED,
        [TASK_FAILED]    = 1u << TASK_QUEUED | 1u << TASK_CANCELLED,
        [TASK_DONE]      = 0,
        [TASK_CANCELLED] = 0,
};

const char *task_state_name(enum task_state state)
{
        return (unsigned)state < _TASK_STATE_MAX ? queue_state_names[state] : "invalid";
}

int task_state_from_name(const char *name)
{
        for (int i = 0; i < _TASK_STATE_MAX; i++)
                if (name && strcmp(name, queue_state_names[i]) == 0)
                        return i;
        return -EINVAL;
}

bool queue_transition_allowed(enum task_state from, enum task_state to)
{
        if ((unsigned)from >= _TASK_STATE_MAX || (unsigned)to >= _TASK_STATE_MAX)
                return false;
        return allowed[from] & (1u << to);
}

/* Fills a task from a row of TASK_COLUMNS. A state the db should not hold
 * (someone edited it by hand) is -EBADMSG, never a crash. */
int queue_task_from_row(struct store_stmt *st, struct queue_task *t)
{
        int state = task_state_from_name(store_column_text(st, 3));

        *t = (struct queue_task){
                .id = store_column_int64(st, 0),
                .title = store_column_strdup(st, 1),
                .prompt = store_column_strdup(st, 2),
                .state = state < 0 ? TASK_FAILED : (enum task_state)state,
                .priority = store_column_int64(st, 4),
                .run_after = store_column_int64(st, 5),
                .attempts = store_column_int64(st, 6),
                .sessions_used = store_column_int64(st, 7),
                .turns_used = store_column_int64(st, 8),
                .cost_usd = store_column_double(st, 9),
                .claude_session_id = store_column_strdup(st, 10),
                .needs_you_reason = store_column_strdup(st, 11),
                .reply = store_column_strdup(st, 12),
                .result = store_column_strdup(st, 13),
                .error = store_column_strdup(st, 14),
                .created_at = store_column_int64(st, 15),
                .updated_at = store_column_int64(st, 16),
                .project = store_column_strdup(st, 17),
                .branch = store_column_strdup(st, 18),
                .base = store_column_strdup(st, 19),
                .base_commit = store_column_strdup(st, 20),
                .worktree = store_column_strdup(st, 21),
                .max_cost_usd = store_column_is_null(st, 22) ? -1 : store_column_double(st, 22),
                .parent_id = store_column_int64(st, 23),
        };
        if (!t->title)
                t->title = xstrdup("");
        if (!t->prompt)
                t->prompt = xstrdup("");
        if (state < 0) {
                log_error("task %lld has an unknown state in the database", (long long)t->id);
                return -EBADMSG;
        }
        return 0;
}

static void task_clear(struct queue_task *t)
{
        free(t->title);
        free(t->prompt);
        free(t->claude_session_id);
        free(t->needs_you_reason);
        free(t->reply);
        free(t->result);
        free(t->error);
        free(t->project);
        free(t->branch);
        free(t->base);
        free(t->base_commit);
        free(t->worktree);
}

void queue_task_free(struct queue_task *task)
{
        if (!task)
                return;
        task_clear(task);
        free(task);
}

void queue_tasks_free(struct queue_task *tasks, size_t n)
{
        for (size_t i = 0; i < n; i++)
                task_clear(&tasks[i]);
        free(tasks);
}

void queue_events_free(struct queue_event *events, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(events[i].reason);
        free(events);
}


/* Steps a statement that returns no rows, then finalizes it. */

int queue_add_event(struct store *db, int64_t id, int old_state, enum task_state new_state, const char *reason,
                     int64_t now)
{
        struct store_stmt *st;
        int r = store_prepare(db,
                        "INSERT INTO task_events (task_id, at, old_state, new_state, reason) "
                        "VALUES (?1, ?2, ?3, ?4, ?5)",
                        &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, id);
        store_bind_int64(st, 2, now);
        if (old_state >= 0)
                store_bind_text(st, 3, queue_state_names[old_state]);
        store_bind_text(st, 4, queue_state_names[new_state]);
        store_bind_text(st, 5, reason ? reason : "");
        r = store_step_done(st);
        /* A task that may be claimed now wakes the fleet (at the commit). */
        if (r == 0 && new_state == TASK_QUEUED)
                r = store_notify(db, STORE_CHANNEL_TASKS);
        return r;
}

/* A title from the prompt's first non-empty line, cut at a character boundary. */
static char *title_from_prompt(const char *prompt)
{
        const char *s = prompt + strspn(prompt, " \t\r\n");
        size_t n = strcspn(s, "\r\n");

        if (n > 60) {
                n = 60;
                while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
                        n--; /* do not split a UTF-8 sequence */
        }
        return xstrndup(s, n);
}

int queue_add(struct store *db, const struct queue_new *n, int64_t now, int64_t *ret_id)
{
        return queue_add_why(db, n, now, ret_id, NULL, 0);
}

int queue_add_why(struct store *db, const struct queue_new *n, int64_t now, int64_t *ret_id, char *why, size_t size)
{
        _cleanup_free_ char *auto_title = NULL;
        const char *title = n->title, *prompt = n->prompt;
        struct queue_inherited from_parent = { 0 };
        char scratch[256];
        struct store_stmt *st;
        int64_t id = 0;
        int r;

        if (!why) {
                why = scratch;
                size = sizeof scratch;
        }
        if (!prompt || !prompt[strspn(prompt, " \t\r\n")] || strlen(prompt) > QUEUE_PROMPT_MAX)
                return -EINVAL;
        if (title && strlen(title) > QUEUE_TITLE_MAX)
                return -EINVAL;
        if (!title || !*title)
                title = auto_title = title_from_prompt(prompt);

        r = store_begin(db);
        if (r < 0)
                return r;
        /* The parent's checks and what it gives, in the transaction that
         * adds the task: two sessions adding sub-tasks at once cannot both
         * take the last place under max_children. */
        r = queue_family_check(db, n, &from_parent, why, size);
        if (r == 0)
                r = store_prepare(db,
                            "INSERT INTO tasks (title, prompt, state, priority, run_after, created_at, updated_at, project, "
                            "max_cost_usd, parent_id, base) VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9) RETURNING id",
                            &st);
        if (r == 0) {
                const char *project = n->project && *n->project ? n->project : from_parent.project;
                store_bind_text(st, 1, title);
                store_bind_text(st, 2, prompt);
                store_bind_int64(st, 3, n->parent_id > 0 && !n->priority_given ? from_parent.priority : n->priority);
                store_bind_int64(st, 4, n->run_after);
                store_bind_int64(st, 5, now);
                store_bind_text(st, 6, project);
                if (n->max_cost_usd > 0)
                        store_bind_double(st, 7, n->max_cost_usd);
                if (n->parent_id > 0)
                        store_bind_int64(st, 8, n->parent_id);
                /* The parent's branch is the base of the sub-task's own, in the same project. */
                if (from_parent.base && project && from_parent.project && strcmp(project, from_parent.project) == 0)
                        store_bind_text(st, 9, from_parent.base);
                r = store_read_int64(st, &id);
                if (r < 0)
                        snprintf(why, size, "cannot add the task: the database refused it");
        }
        if (r == 0)
                r = queue_family_add_after(db, id, n->after, n->n_after);
        if (r == 0) {
                char reason[64];
                if (n->parent_id > 0)
                        snprintf(reason, sizeof reason, "added as a sub-task of task %lld", (long long)n->parent_id);
                else
                        snprintf(reason, sizeof reason, "added");
                r = queue_add_event(db, id, -1, TASK_QUEUED, reason, now);
        }
        if (r == 0)
                r = store_commit(db);
        free(from_parent.project);
        free(from_parent.base);
        if (r < 0) {
                store_rollback(db);
                return r;
        }
        *ret_id = id;
        return 0;
}

/* A JSON array of the names, for json_each() in SQL; NULL if there are none. */
static char *names_json(const char *const *names)
{
        json_t *a;
        char *s;

        if (!names || !names[0])
                return NULL;
        a = json_array();
        for (size_t i = 0; names[i]; i++)
                json_array_append_new(a, json_string(names[i]));
        s = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        if (!s)
                abort(); /* out of memory on a short string */
        return s;
}

int queue_claim(struct store *db, int64_t now, const char *const *busy_projects, struct queue_task **ret)
{
        _cleanup_free_ char *busy = names_json(busy_projects);
        struct queue_task *task = NULL;
        struct store_stmt *st;
        int r, rc;

        r = store_begin(db);
        if (r < 0)
                return r;
        /* A task must not run on a broken premise: one of its after-tasks
         * failed or was cancelled. It needs a person instead. A sub-task
         * waits for its parent's session to end (the parent then waits for
         * it): with concurrency > 1 it could otherwise end first, and the
         * parent would never hear of its result. */
        r = queue_family_block_broken(db, now);
        if (r < 0)
                goto fail;
#define CLAIMABLE \
        "state = 'queued' AND run_after <= ?1 " \
        "AND NOT EXISTS (SELECT 1 FROM task_after a JOIN tasks d ON d.id = a.after_id " \
        "                WHERE a.task_id = tasks.id AND d.state <> 'done') " \
        "AND NOT EXISTS (SELECT 1 FROM tasks p WHERE p.id = tasks.parent_id AND p.state = 'running') "
        if (store_is_postgresql(db))
                /* PostgreSQL-only: the fleet's claim. It runs in the claim's
                 * transaction (store_begin, the daemon's launch), which
                 * already makes claims one at a time; SKIP LOCKED also lets
                 * a claim pass a row another transaction holds, and the claim
                 * is marked with the node and a new generation (fencing). */
                r = store_prepare(db,
                            "UPDATE tasks SET state = 'running', updated_at = ?1, claimed_by = ?3, "
                            "                 claim_generation = claim_generation + 1 "
                            "WHERE id = (SELECT id FROM tasks WHERE " CLAIMABLE
                            "            AND (CAST(?2 AS TEXT) IS NULL OR project IS NULL OR project NOT IN "
                            "                 (SELECT jsonb_array_elements_text(CAST(?2 AS JSONB)))) "
                            "            ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
                            "AND state = 'queued' "
                            "RETURNING " TASK_COLUMNS,
                            &st);
        else
                /* SQLite-only: json_each() over the busy projects. */
                r = store_prepare(db,
                            "UPDATE tasks SET state = 'running', updated_at = ?1 "
                            "WHERE id = (SELECT id FROM tasks WHERE " CLAIMABLE
                            "            AND (CAST(?2 AS TEXT) IS NULL OR project IS NULL "
                            "                 OR project NOT IN (SELECT value FROM json_each(?2))) "
                            "            ORDER BY priority DESC, id LIMIT 1) "
                            "RETURNING " TASK_COLUMNS,
                            &st);
#undef CLAIMABLE
        if (r < 0)
                goto fail;
        store_bind_int64(st, 1, now);
        store_bind_text(st, 2, busy);
        if (store_is_postgresql(db))
                store_bind_text(st, 3, store_node(db));
        rc = store_step(st);
        if (rc == STORE_ROW) {
                task = xcalloc(1, sizeof *task);
                r = queue_task_from_row(st, task);
                /* RETURNING rows are only final once the statement is done. */
                if (store_step(st) != STORE_DONE && r == 0)
                        r = -EIO;
        } else if (rc != STORE_DONE) {
                log_error("database: claim: %s", store_errmsg(db));
                r = rc;
        }
        store_finalizep(&st); /* before the commit */
        if (r == 0 && task)
                r = queue_add_event(db, task->id, TASK_QUEUED, TASK_RUNNING, "claimed", now);
        if (r == 0)
                r = store_commit(db);
        if (r < 0)
                goto fail;
        *ret = task;
        return task ? 1 : 0;
fail:
        store_rollback(db);
        queue_task_free(task);
        return r;
}

static int read_state(struct store *db, int64_t id, int *ret)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r, rc;

        r = store_prepare(db, "SELECT state FROM tasks WHERE id = ?1", &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, id);
        rc = store_step(st);
        if (rc == STORE_ROW)
                *ret = task_state_from_name(store_column_text(st, 0));
        if (rc == STORE_DONE)
                return -ENOENT;
        if (rc != STORE_ROW)
                return rc;
        return *ret < 0 ? -EBADMSG : 0;
}

int queue_transition(struct store *db, int64_t id, enum task_state to, const struct queue_change *change,
                     int64_t now, enum task_state *ret_from)
{
        int r = store_begin(db);

        if (r < 0)
                return r;
        r = queue_transition_locked(db, id, to, change, now, ret_from);
        if (r == 0)
                r = store_commit(db);
        if (r < 0)
                store_rollback(db);
        return r;
}

int queue_transition_locked(struct store *db, int64_t id, enum task_state to, const struct queue_change *change,
                            int64_t now, enum task_state *ret_from)
{
        static const struct queue_change none = { 0 };
        _cleanup_free_ char *waiting_reason = NULL;
        const char *reason;
        struct store_stmt *st;
        int from = -1, r;

        if (!change)
                change = &none;
        reason = change->reason;
        r = read_state(db, id, &from);
        if (r < 0)
                return r;
        if (ret_from)
                *ret_from = (enum task_state)from;
        if (!queue_transition_allowed((enum task_state)from, to) ||
            (change->only_from && !(change->only_from & (1u << from))))
                return -EPERM;
        /* A session's end (or its start given back) while sub-tasks of the
         * task have not finished: it waits for them, whatever the outcome
         * said; a question for a person still goes to the person. */
        if ((from == TASK_RUNNING && (to == TASK_DONE || to == TASK_FAILED || to == TASK_QUEUED)) ||
            (from == TASK_NEEDS_YOU && to == TASK_QUEUED)) {
                /* ... and a reply to a task whose sub-tasks still run: it
                 * waits with the reply, and resumes with both. */
                int64_t unfinished = 0;
                r = queue_family_unfinished(db, id, &unfinished);
                if (r < 0)
                        return r;
                if (unfinished > 0) {
                        waiting_reason = xasprintf("%s; waits for %lld sub-task%s", reason && *reason ? reason : task_state_name(to),
                                                   (long long)unfinished, unfinished == 1 ? "" : "s");
                        reason = waiting_reason;
                        to = TASK_WAITING;
                }
        }
        r = store_prepare(db,
                    "UPDATE tasks SET state = ?2, updated_at = ?3, "
                    "  run_after = CASE WHEN ?4 > 0 THEN ?4 ELSE run_after END, "
                    "  reply = CASE WHEN ?15 <> 0 THEN NULL ELSE COALESCE(?5, reply) END, "
                    "  result = COALESCE(?6, result), "
                    "  error = COALESCE(?7, error), "
                    "  needs_you_reason = CASE WHEN ?2 = 'needs_you' THEN COALESCE(?8, needs_you_reason) END, "
                    "  attempts = CASE WHEN ?9 <> 0 THEN 0 ELSE attempts END + ?10, "
                    "  claude_session_id = CASE WHEN ?11 <> 0 THEN NULL ELSE claude_session_id END, "
                    "  turns_used = turns_used + ?12, "
                    "  cost_usd = cost_usd + ?13, "
                    "  sessions_used = CASE WHEN sessions_used > ?14 THEN sessions_used - ?14 ELSE 0 END "
                    "WHERE id = ?1",
                    &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, id);
        store_bind_text(st, 2, queue_state_names[to]);
        store_bind_int64(st, 3, now);
        store_bind_int64(st, 4, change->run_after);
        store_bind_text(st, 5, change->reply);
        store_bind_text(st, 6, change->result);
        store_bind_text(st, 7, change->error);
        store_bind_text(st, 8, change->needs_you_reason);
        store_bind_int64(st, 9, change->reset_attempts);
        store_bind_int64(st, 10, change->count_attempt);
        store_bind_int64(st, 11, change->clear_claude_session_id);
        store_bind_int64(st, 12, change->add_turns);
        store_bind_double(st, 13, change->add_cost_usd);
        store_bind_int64(st, 15, change->clear_reply);
        store_bind_int64(st, 14, change->release_session);
        r = store_step_done(st);
        if (r == 0)
                r = queue_add_event(db, id, from, to, reason, now);
        /* Its notification (needs_you, failed, done) in the same
         * transaction: a crash can neither lose it nor send it for a move
         * that did not happen. Whether anyone wants it is the notifier's
         * business, at delivery. */
        if (r == 0)
                r = notify_store_add(db, id, to, now);
        /* And what it means for its parent, in the same transaction too:
         * no parent can be left waiting on sub-tasks that all ended. */
        if (r == 0)
                r = queue_family_moved(db, id, (enum task_state)from, to, now);
        return r;
}

int queue_note_session_start(struct store *db, int64_t id, const char *claude_session_id, int64_t now)
{
        struct store_stmt *st;
        int r = store_prepare(db,
                           "UPDATE tasks SET sessions_used = sessions_used + 1, claude_session_id = ?2, "
                           "updated_at = ?3 WHERE id = ?1",
                           &st);

        if (r < 0)
                return r;
        store_bind_int64(st, 1, id);
        store_bind_text(st, 2, claude_session_id);
        store_bind_int64(st, 3, now);
        return store_step_done(st);
}

int queue_recover(struct store *db, int64_t now, const char *reason)
{
        struct store_stmt *st;
        int r, n;

        r = store_begin(db);
        if (r < 0)
                return r;
        /* A task with unfinished sub-tasks waits for them instead. */
#define RECOVERED_STATE \
        "CASE WHEN EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id " \
        "                  AND c.state NOT IN ('done', 'failed', 'cancelled')) THEN 'waiting' ELSE 'queued' END"
        /* PostgreSQL-only: in a fleet, only this node's tasks; the
         * others' run on. */
        bool fleet = store_is_postgresql(db);
#define RECOVERED_WHERE(fleet) ((fleet) ? "WHERE state = 'running' AND claimed_by = ?3" : "WHERE state = 'running'")
        _cleanup_free_ char *events = xasprintf(
                    "INSERT INTO task_events (task_id, at, old_state, new_state, reason) "
                    "SELECT id, CAST(?1 AS BIGINT), 'running', " RECOVERED_STATE ", CAST(?2 AS TEXT) FROM tasks %s",
                    RECOVERED_WHERE(fleet));
        _cleanup_free_ char *update = xasprintf(
                    "UPDATE tasks SET state = " RECOVERED_STATE ", updated_at = ?1 %s", RECOVERED_WHERE(fleet));
#undef RECOVERED_WHERE
        r = store_prepare(db, events, &st);
        if (r == 0) {
                store_bind_int64(st, 1, now);
                store_bind_text(st, 2, reason ? reason : "");
                if (fleet)
                        store_bind_text(st, 3, store_node(db));
                r = store_step_done(st);
        }
        if (r == 0)
                r = store_prepare(db, update, &st);
        if (r == 0) {
                store_bind_int64(st, 1, now);
                if (fleet) {
                        store_bind_text(st, 2, ""); /* unused here, but typed: $3 follows it */
                        store_bind_text(st, 3, store_node(db));
                }
                r = store_step_done(st);
        }
        n = store_changes(db);
        if (r == 0)
                r = queue_family_sweep(db, now, &n);
        if (r == 0)
                r = store_commit(db);
        if (r < 0) {
                store_rollback(db);
                return r;
        }
        return n;
}

int queue_prune(struct store *db, int64_t before)
{
        struct store_stmt *st;
        int r;

        /* task_events go with their task: ON DELETE CASCADE. A whole tree
         * (a top-level task and its sub-tasks) goes, or none of it: each of
         * them ended before the cutoff, and none is an after-task of a task
         * that has not ended. */
        r = store_prepare(db,
                    "WITH RECURSIVE tree (id, root) AS ("
                    "  SELECT id, id FROM tasks WHERE parent_id IS NULL AND state IN ('done', 'cancelled') "
                    "    AND updated_at < ?1"
                    "  UNION ALL SELECT t.id, tree.root FROM tasks t JOIN tree ON t.parent_id = tree.id), "
                    "kept (root) AS (SELECT tree.root FROM tree JOIN tasks t ON t.id = tree.id "
                    "  WHERE t.state NOT IN ('done', 'cancelled') OR t.updated_at >= ?1 "
                    "     OR EXISTS (SELECT 1 FROM task_after a JOIN tasks d ON d.id = a.task_id "
                    "                WHERE a.after_id = t.id AND d.state NOT IN ('done', 'cancelled'))) "
                    "DELETE FROM tasks WHERE id IN (SELECT id FROM tree WHERE root NOT IN (SELECT root FROM kept))",
                    &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, before);
        r = store_step_done(st);
        return r < 0 ? r : store_changes(db);
}

int queue_get(struct store *db, int64_t id, struct queue_task **ret)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        struct queue_task *task;
        int r, rc;

        r = store_prepare(db, "SELECT " TASK_COLUMNS " FROM tasks WHERE id = ?1", &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, id);
        rc = store_step(st);
        if (rc != STORE_ROW)
                return rc == STORE_DONE ? -ENOENT : rc;
        task = xcalloc(1, sizeof *task);
        r = queue_task_from_row(st, task);
        if (r < 0) {
                queue_task_free(task);
                return r;
        }
        *ret = task;
        return 0;
}

int queue_read_tasks(struct store *db, struct store_stmt *st, struct queue_task **ret, size_t *n)
{
        struct queue_task *tasks = NULL;
        size_t count = 0;
        int r = 0, rc;

        while ((rc = store_step(st)) == STORE_ROW) {
                tasks = xreallocarray(tasks, count + 1, sizeof *tasks);
                r = queue_task_from_row(st, &tasks[count++]);
                if (r < 0)
                        break;
        }
        if (r == 0 && rc != STORE_DONE)
                r = rc;
        if (r < 0) {
                queue_tasks_free(tasks, count);
                return r;
        }
        *ret = tasks;
        *n = count;
        return 0;
}

int queue_list(struct store *db, int state, const char *project, struct queue_task **ret, size_t *n)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r;

        if (state >= _TASK_STATE_MAX)
                return -EINVAL;
        r = store_prepare(db,
                    "SELECT " TASK_COLUMNS " FROM tasks WHERE (CAST(?1 AS TEXT) IS NULL OR state = ?1) "
                    "AND (CAST(?2 AS TEXT) IS NULL OR project = ?2) ORDER BY id",
                    &st);
        if (r < 0)
                return r;
        store_bind_text(st, 2, project);
        if (state >= 0 && state < _TASK_STATE_MAX)
                store_bind_text(st, 1, queue_state_names[state]);
        return queue_read_tasks(db, st, ret, n);
}

int queue_events(struct store *db, int64_t id, size_t limit, struct queue_event **ret, size_t *n)
{
        struct queue_event *events = NULL;
        size_t count = 0;
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r, rc;

        r = store_prepare(db,
                    "SELECT id, at, old_state, new_state, reason FROM "
                    "  (SELECT * FROM task_events WHERE task_id = ?1 ORDER BY id DESC LIMIT ?2) AS e "
                    "ORDER BY id",
                    &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, id);
        store_bind_int64(st, 2, (int64_t)limit);
        while ((rc = store_step(st)) == STORE_ROW) {
                const char *old = store_column_text(st, 2);
                int new_state = task_state_from_name(store_column_text(st, 3));
                events = xreallocarray(events, count + 1, sizeof *events);
                events[count++] = (struct queue_event){
                        .id = store_column_int64(st, 0),
                        .at = store_column_int64(st, 1),
                        .old_state = old ? task_state_from_name(old) : -1,
                        .new_state = new_state < 0 ? TASK_FAILED : (enum task_state)new_state,
                        .reason = store_column_strdup(st, 4),
                };
                if (!events[count - 1].reason)
                        events[count - 1].reason = xstrdup("");
        }
        if (rc != STORE_DONE) {
                queue_events_free(events, count);
                return rc;
        }
        *ret = events;
        *n = count;
        return 0;
}

int queue_counts(struct store *db, int64_t counts[_TASK_STATE_MAX])
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r, rc;

        memset(counts, 0, sizeof(int64_t) * _TASK_STATE_MAX);
        r = store_prepare(db, "SELECT state, count(*) FROM tasks GROUP BY state", &st);
        if (r < 0)
                return r;
        while ((rc = store_step(st)) == STORE_ROW) {
                int s = task_state_from_name(store_column_text(st, 0));
                if (s >= 0)
                        counts[s] = store_column_int64(st, 1);
        }
        return rc == STORE_DONE ? 0 : rc;
}

int queue_next_due(struct store *db, int64_t after, int64_t *ret)
{
        struct store_stmt *st;
        int r = store_prepare(db, "SELECT min(run_after) FROM tasks WHERE state = 'queued' AND run_after > ?1", &st);

        if (r < 0)
                return *ret = 0, r;
        store_bind_int64(st, 1, after);
        return store_read_int64(st, ret); /* NULL (none queued) reads as 0 */
}
