/* SPDX-License-Identifier: MIT */
#include "jada/session-store.h"
#include "jada/store.h"
#include "jada/util.h"

#include <errno.h>
#include <string.h>

int session_store_begin(struct store *db, int64_t task_id, int64_t now, const char *claude_session_id, bool resumed,
                        int64_t *ret_session)
{
        struct store_stmt *st;
        /* PostgreSQL-only: a fleet's row says whose it is, and under which
         * claim of its task (the fencing of session-record.c). */
        int r = store_prepare(db,
                           store_is_postgresql(db)
                           ? "INSERT INTO sessions (task_id, started_at, claude_session_id, resumed, node, "
                             "claim_generation) VALUES (?1, ?2, ?3, ?4, ?5, "
                             "(SELECT claim_generation FROM tasks WHERE id = ?1)) RETURNING id"
                           : "INSERT INTO sessions (task_id, started_at, claude_session_id, resumed) "
                             "VALUES (?1, ?2, ?3, ?4) RETURNING id",
                           &st);
        int64_t id;

        if (r < 0)
                return r;
        if (store_is_postgresql(db))
                store_bind_text(st, 5, store_node(db));
        store_bind_int64(st, 1, task_id);
        store_bind_int64(st, 2, now);
        store_bind_text(st, 3, claude_session_id);
        store_bind_int64(st, 4, resumed);
        r = store_read_int64(st, &id);
        if (r == 0)
                *ret_session = id;
        return r;
}

int session_store_set_pid(struct store *db, int64_t session, int64_t pid, int64_t pid_start)
{
        struct store_stmt *st;
        int r = store_prepare(db, "UPDATE sessions SET pid = ?2, pid_start = ?3 WHERE id = ?1", &st);

        if (r < 0)
                return r;
        store_bind_int64(st, 1, session);
        store_bind_int64(st, 2, pid);
        store_bind_int64(st, 3, pid_start);
        return store_step_done(st);
}

int session_store_finish(struct store *db, int64_t session, int64_t now, const struct session_end *e)
{
        struct store_stmt *st;
        int r = store_prepare(db,
                           "UPDATE sessions SET ended_at = ?2, outcome = ?3, exit_status = ?4, turns = ?5, "
                           "input_tokens = ?6, output_tokens = ?7, cache_creation_tokens = ?8, "
                           "cache_read_tokens = ?9, cost_usd = ?10, reported_cost_usd = ?11, error = ?12, "
                           "uncounted = ?13 WHERE id = ?1",
                           &st);

        if (r < 0)
                return r;
        store_bind_int64(st, 1, session);
        store_bind_int64(st, 2, now);
        store_bind_text(st, 3, e->outcome);
        if (e->exit_status >= 0)
                store_bind_int64(st, 4, e->exit_status);
        store_bind_int64(st, 5, e->turns);
        store_bind_int64(st, 6, e->input_tokens);
        store_bind_int64(st, 7, e->output_tokens);
        store_bind_int64(st, 8, e->cache_creation_tokens);
        store_bind_int64(st, 9, e->cache_read_tokens);
        store_bind_double(st, 10, e->cost_usd);
        if (e->reported_cost_usd >= 0)
                store_bind_double(st, 11, e->reported_cost_usd);
        store_bind_text(st, 12, e->error);
        store_bind_text(st, 13, e->uncounted);
        return store_step_done(st);
}

int session_store_close_orphans(struct store *db, int64_t now, session_orphan_fn fn, void *userdata)
{
        _cleanup_stmt_ struct store_stmt *rows = NULL;
        struct store_stmt *st;
        int r, rc;

        /* PostgreSQL-only: the fleet's other nodes' sessions are theirs. */
        bool fleet = store_is_postgresql(db);

        r = store_prepare(db, fleet ? "SELECT pid, pid_start FROM sessions WHERE ended_at IS NULL AND pid IS NOT NULL "
                                      "AND node = ?1"
                                    : "SELECT pid, pid_start FROM sessions WHERE ended_at IS NULL AND pid IS NOT NULL",
                          &rows);
        if (r < 0)
                return r;
        if (fleet)
                store_bind_text(rows, 1, store_node(db));
        while ((rc = store_step(rows)) == STORE_ROW)
                if (fn)
                        fn(store_column_int64(rows, 0), store_column_int64(rows, 1), userdata);
        if (rc != STORE_DONE)
                return rc;

        r = store_prepare(db,
                       fleet ? "UPDATE sessions SET ended_at = ?1, outcome = 'interrupted', "
                               "error = 'the daemon stopped while it ran' WHERE ended_at IS NULL AND node = ?2"
                             : "UPDATE sessions SET ended_at = ?1, outcome = 'interrupted', "
                               "error = 'the daemon stopped while it ran' WHERE ended_at IS NULL",
                       &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, now);
        if (fleet)
                store_bind_text(st, 2, store_node(db));
        r = store_step_done(st);
        return r < 0 ? r : store_changes(db);
}

int session_store_close_lost(struct store *db, int64_t task_id, const char *node, int64_t now, const char *error)
{
        struct store_stmt *st;
        int r = store_prepare(db,
                           "UPDATE sessions SET ended_at = ?2, outcome = 'node_lost', error = ?4 "
                           "WHERE task_id = ?1 AND ended_at IS NULL AND (CAST(?3 AS TEXT) IS NULL OR node = ?3)",
                           &st);

        if (r < 0)
                return r;
        store_bind_int64(st, 1, task_id);
        store_bind_int64(st, 2, now);
        store_bind_text(st, 3, node);
        store_bind_text(st, 4, error);
        r = store_step_done(st);
        return r < 0 ? r : store_changes(db);
}

int session_store_fence(struct store *db, int64_t session, enum session_fence *ret)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r, rc;

        *ret = SESSION_FENCE_OURS;
        if (!store_is_postgresql(db))
                return 0;
        /* PostgreSQL-only: the claim generation (a deleted task fences nothing). */
        r = store_prepare(db,
                          "SELECT s.ended_at IS NOT NULL, COALESCE(s.outcome, ''), "
                          "       COALESCE(t.claim_generation <> s.claim_generation, false) "
                          "FROM sessions s LEFT JOIN tasks t ON t.id = s.task_id WHERE s.id = ?1",
                          &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, session);
        rc = store_step(st);
        if (rc == STORE_DONE)
                return -ENOENT;
        if (rc != STORE_ROW)
                return rc;
        if (strcmp(store_column_text(st, 1), "node_lost") == 0 || store_column_int64(st, 2))
                *ret = SESSION_FENCE_RESCUED;
        else if (store_column_int64(st, 0))
                *ret = SESSION_FENCE_ENDED;
        return 0;
}

int session_store_spent_since(struct store *db, int64_t since, int64_t *ret_sessions, double *ret_cost_usd)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r, rc;

        *ret_sessions = 0;
        *ret_cost_usd = 0;
        r = store_prepare(db,
                       "SELECT count(*) FILTER (WHERE uncounted IS NULL), coalesce(sum(cost_usd), 0.0) FROM sessions "
                       "WHERE started_at >= ?1",
                       &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, since);
        rc = store_step(st);
        if (rc != STORE_ROW)
                return rc;
        *ret_sessions = store_column_int64(st, 0);
        *ret_cost_usd = store_column_double(st, 1);
        return 0;
}

int session_store_previous_reported_cost(struct store *db, int64_t task_id, const char *claude_session_id,
                                         int64_t before_session, double *ret)
{
        struct store_stmt *st;
        int r = store_prepare(db,
                           "SELECT max(reported_cost_usd) FROM sessions "
                           "WHERE task_id = ?1 AND claude_session_id = ?2 AND id < ?3",
                           &st);

        if (r < 0)
                return *ret = 0, r;
        store_bind_int64(st, 1, task_id);
        store_bind_text(st, 2, claude_session_id);
        store_bind_int64(st, 3, before_session);
        return store_read_double(st, ret); /* NULL reads as 0 */
}

int session_store_last_outcome(struct store *db, int64_t task_id, int64_t before_session, char **ret)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r = store_prepare(db,
                           "SELECT outcome FROM sessions WHERE task_id = ?1 AND id < ?2 AND outcome IS NOT NULL "
                           "AND outcome NOT IN ('launch_error', 'project_error') ORDER BY id DESC LIMIT 1",
                           &st), rc;

        *ret = NULL;
        if (r < 0)
                return r;
        store_bind_int64(st, 1, task_id);
        store_bind_int64(st, 2, before_session);
        rc = store_step(st);
        if (rc == STORE_ROW)
                *ret = store_column_strdup(st, 0);
        return rc == STORE_ROW || rc == STORE_DONE ? 0 : rc;
}

int session_store_ids(struct store *db, int64_t task_id, int64_t **ret, size_t *n)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int64_t *ids = NULL;
        size_t k = 0;
        int r = store_prepare(db,
                           task_id > 0 ? "SELECT id FROM sessions WHERE task_id = ?1 ORDER BY id"
                                       : "SELECT id FROM sessions WHERE task_id IS NULL ORDER BY id",
                           &st), rc;

        if (r < 0)
                return r;
        if (task_id > 0)
                store_bind_int64(st, 1, task_id);
        while ((rc = store_step(st)) == STORE_ROW) {
                ids = xreallocarray(ids, k + 1, sizeof *ids);
                ids[k++] = store_column_int64(st, 0);
        }
        if (rc != STORE_DONE) {
                free(ids);
                return rc;
        }
        *ret = ids;
        *n = k;
        return 0;
}

int session_store_ended(struct store *db, int64_t session, bool *ret)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r = store_prepare(db, "SELECT CASE WHEN ended_at IS NOT NULL THEN 1 ELSE 0 END FROM sessions WHERE id = ?1", &st), rc;

        if (r < 0)
                return r;
        store_bind_int64(st, 1, session);
        rc = store_step(st);
        if (rc == STORE_DONE)
                return -ENOENT;
        if (rc != STORE_ROW)
                return rc;
        *ret = store_column_int64(st, 0) != 0;
        return 0;
}

int session_store_outcomes_since(struct store *db, int64_t since, struct session_outcomes *ret)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r, rc;

        *ret = (struct session_outcomes){ 0 };
        r = store_prepare(db,
                       "SELECT count(*), count(outcome), count(*) FILTER (WHERE outcome = 'done'), "
                       "count(*) FILTER (WHERE outcome = 'max_turns'), coalesce(sum(cost_usd), 0.0) "
                       "FROM sessions WHERE started_at >= ?1 AND uncounted IS NULL",
                       &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, since);
        rc = store_step(st);
        if (rc != STORE_ROW)
                return rc;
        *ret = (struct session_outcomes){
                .total = store_column_int64(st, 0),
                .finished = store_column_int64(st, 1),
                .done = store_column_int64(st, 2),
                .max_turns = store_column_int64(st, 3),
                .cost_usd = store_column_double(st, 4),
        };
        return 0;
}

void session_rows_free(struct session_row *rows, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(rows[i].outcome);
                free(rows[i].claude_session_id);
                free(rows[i].error);
                free(rows[i].uncounted);
        }
        free(rows);
}

#define ROW_COLUMNS                                                                              \
        "SELECT id, task_id, started_at, ended_at, outcome, exit_status, turns, input_tokens, "        \
        "output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, claude_session_id, "      \
        "resumed, error, uncounted FROM sessions "

static int list_rows(struct store *db, bool of_task, int64_t value, struct session_row **ret, size_t *n)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        struct session_row *rows = NULL;
        size_t count = 0;
        int r, rc;

        r = store_prepare(db,
                       of_task ? ROW_COLUMNS "WHERE task_id = ?1 ORDER BY id"
                               : ROW_COLUMNS "WHERE started_at >= ?1 ORDER BY id",
                       &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, value);
        while ((rc = store_step(st)) == STORE_ROW) {
                rows = xreallocarray(rows, count + 1, sizeof *rows);
                rows[count++] = (struct session_row){
                        .id = store_column_int64(st, 0),
                        .task_id = store_column_int64(st, 1),
                        .started_at = store_column_int64(st, 2),
                        .ended_at = store_column_int64(st, 3),
                        .outcome = store_column_strdup(st, 4),
                        .exit_status = store_column_is_null(st, 5) ? -1 : store_column_int64(st, 5),
                        .turns = store_column_int64(st, 6),
                        .input_tokens = store_column_int64(st, 7),
                        .output_tokens = store_column_int64(st, 8),
                        .cache_creation_tokens = store_column_int64(st, 9),
                        .cache_read_tokens = store_column_int64(st, 10),
                        .cost_usd = store_column_double(st, 11),
                        .claude_session_id = store_column_strdup(st, 12),
                        .resumed = store_column_int64(st, 13) != 0,
                        .error = store_column_strdup(st, 14),
                        .uncounted = store_column_strdup(st, 15),
                };
        }
        if (rc != STORE_DONE) {
                session_rows_free(rows, count);
                return rc;
        }
        *ret = rows;
        *n = count;
        return 0;
}

int session_store_list(struct store *db, int64_t since, struct session_row **ret, size_t *n)
{
        return list_rows(db, false, since, ret, n);
}

int session_store_list_task(struct store *db, int64_t task_id, struct session_row **ret, size_t *n)
{
        return list_rows(db, true, task_id, ret, n);
}
