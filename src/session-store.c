/* SPDX-License-Identifier: MIT */
#include "jada/session-store.h"
#include "jada/db.h"
#include "jada/util.h"

#include <errno.h>
#include <string.h>

int session_store_begin(sqlite3 *db, int64_t task_id, int64_t now, const char *claude_session_id, bool resumed,
                        int64_t *ret_session)
{
        sqlite3_stmt *st;
        int r = db_prepare(db,
                           "INSERT INTO sessions (task_id, started_at, claude_session_id, resumed) "
                           "VALUES (?1, ?2, ?3, ?4)",
                           &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, task_id);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, claude_session_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, resumed);
        r = db_step_done(db, st);
        if (r == 0)
                *ret_session = sqlite3_last_insert_rowid(db);
        return r;
}

int session_store_set_pid(sqlite3 *db, int64_t session, int64_t pid, int64_t pid_start)
{
        sqlite3_stmt *st;
        int r = db_prepare(db, "UPDATE sessions SET pid = ?2, pid_start = ?3 WHERE id = ?1", &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, session);
        sqlite3_bind_int64(st, 2, pid);
        sqlite3_bind_int64(st, 3, pid_start);
        return db_step_done(db, st);
}

int session_store_finish(sqlite3 *db, int64_t session, int64_t now, const struct session_end *e)
{
        sqlite3_stmt *st;
        int r = db_prepare(db,
                           "UPDATE sessions SET ended_at = ?2, outcome = ?3, exit_status = ?4, turns = ?5, "
                           "input_tokens = ?6, output_tokens = ?7, cache_creation_tokens = ?8, "
                           "cache_read_tokens = ?9, cost_usd = ?10, reported_cost_usd = ?11, error = ?12, "
                           "uncounted = ?13 WHERE id = ?1",
                           &st);

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, session);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, e->outcome, -1, SQLITE_STATIC);
        if (e->exit_status >= 0)
                sqlite3_bind_int(st, 4, e->exit_status);
        sqlite3_bind_int64(st, 5, e->turns);
        sqlite3_bind_int64(st, 6, e->input_tokens);
        sqlite3_bind_int64(st, 7, e->output_tokens);
        sqlite3_bind_int64(st, 8, e->cache_creation_tokens);
        sqlite3_bind_int64(st, 9, e->cache_read_tokens);
        sqlite3_bind_double(st, 10, e->cost_usd);
        if (e->reported_cost_usd >= 0)
                sqlite3_bind_double(st, 11, e->reported_cost_usd);
        sqlite3_bind_text(st, 12, e->error, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 13, e->uncounted, -1, SQLITE_STATIC);
        return db_step_done(db, st);
}

int session_store_close_orphans(sqlite3 *db, int64_t now, session_orphan_fn fn, void *userdata)
{
        _cleanup_stmt_ sqlite3_stmt *rows = NULL;
        sqlite3_stmt *st;
        int r, rc;

        r = db_prepare(db, "SELECT pid, pid_start FROM sessions WHERE ended_at IS NULL AND pid IS NOT NULL", &rows);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(rows)) == SQLITE_ROW)
                if (fn)
                        fn(sqlite3_column_int64(rows, 0), sqlite3_column_int64(rows, 1), userdata);
        if (rc != SQLITE_DONE)
                return db_errno(rc);

        r = db_prepare(db,
                       "UPDATE sessions SET ended_at = ?1, outcome = 'interrupted', "
                       "error = 'the daemon stopped while it ran' WHERE ended_at IS NULL",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, now);
        r = db_step_done(db, st);
        return r < 0 ? r : sqlite3_changes(db);
}

int session_store_spent_since(sqlite3 *db, int64_t since, int64_t *ret_sessions, double *ret_cost_usd)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r, rc;

        *ret_sessions = 0;
        *ret_cost_usd = 0;
        r = db_prepare(db,
                       "SELECT count(*) FILTER (WHERE uncounted IS NULL), total(cost_usd) FROM sessions "
                       "WHERE started_at >= ?1",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, since);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return db_errno(rc);
        *ret_sessions = sqlite3_column_int64(st, 0);
        *ret_cost_usd = sqlite3_column_double(st, 1);
        return 0;
}

int session_store_previous_reported_cost(sqlite3 *db, int64_t task_id, const char *claude_session_id,
                                         int64_t before_session, double *ret)
{
        sqlite3_stmt *st;
        int r = db_prepare(db,
                           "SELECT max(reported_cost_usd) FROM sessions "
                           "WHERE task_id = ?1 AND claude_session_id = ?2 AND id < ?3",
                           &st);

        if (r < 0)
                return *ret = 0, r;
        sqlite3_bind_int64(st, 1, task_id);
        sqlite3_bind_text(st, 2, claude_session_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, before_session);
        return db_read_double(db, st, ret); /* NULL reads as 0 */
}

int session_store_last_outcome(sqlite3 *db, int64_t task_id, int64_t before_session, char **ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r = db_prepare(db,
                           "SELECT outcome FROM sessions WHERE task_id = ?1 AND id < ?2 AND outcome IS NOT NULL "
                           "AND outcome NOT IN ('launch_error', 'project_error') ORDER BY id DESC LIMIT 1",
                           &st), rc;

        *ret = NULL;
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, task_id);
        sqlite3_bind_int64(st, 2, before_session);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = db_column_strdup(st, 0);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int session_store_ids(sqlite3 *db, int64_t task_id, int64_t **ret, size_t *n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int64_t *ids = NULL;
        size_t k = 0;
        int r = db_prepare(db,
                           task_id > 0 ? "SELECT id FROM sessions WHERE task_id = ?1 ORDER BY id"
                                       : "SELECT id FROM sessions WHERE task_id IS NULL ORDER BY id",
                           &st), rc;

        if (r < 0)
                return r;
        if (task_id > 0)
                sqlite3_bind_int64(st, 1, task_id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                ids = xreallocarray(ids, k + 1, sizeof *ids);
                ids[k++] = sqlite3_column_int64(st, 0);
        }
        if (rc != SQLITE_DONE) {
                free(ids);
                return db_errno(rc);
        }
        *ret = ids;
        *n = k;
        return 0;
}

int session_store_ended(sqlite3 *db, int64_t session, bool *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r = db_prepare(db, "SELECT ended_at IS NOT NULL FROM sessions WHERE id = ?1", &st), rc;

        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, session);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return db_errno(rc);
        *ret = sqlite3_column_int(st, 0) != 0;
        return 0;
}

int session_store_outcomes_since(sqlite3 *db, int64_t since, struct session_outcomes *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r, rc;

        *ret = (struct session_outcomes){ 0 };
        r = db_prepare(db,
                       "SELECT count(*), count(outcome), count(*) FILTER (WHERE outcome = 'done'), "
                       "count(*) FILTER (WHERE outcome = 'max_turns'), total(cost_usd) "
                       "FROM sessions WHERE started_at >= ?1 AND uncounted IS NULL",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, since);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return db_errno(rc);
        *ret = (struct session_outcomes){
                .total = sqlite3_column_int64(st, 0),
                .finished = sqlite3_column_int64(st, 1),
                .done = sqlite3_column_int64(st, 2),
                .max_turns = sqlite3_column_int64(st, 3),
                .cost_usd = sqlite3_column_double(st, 4),
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

static int list_rows(sqlite3 *db, bool of_task, int64_t value, struct session_row **ret, size_t *n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        struct session_row *rows = NULL;
        size_t count = 0;
        int r, rc;

        r = db_prepare(db,
                       of_task ? ROW_COLUMNS "WHERE task_id = ?1 ORDER BY id"
                               : ROW_COLUMNS "WHERE started_at >= ?1 ORDER BY id",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, value);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                rows = xreallocarray(rows, count + 1, sizeof *rows);
                rows[count++] = (struct session_row){
                        .id = sqlite3_column_int64(st, 0),
                        .task_id = sqlite3_column_int64(st, 1),
                        .started_at = sqlite3_column_int64(st, 2),
                        .ended_at = sqlite3_column_int64(st, 3),
                        .outcome = db_column_strdup(st, 4),
                        .exit_status = sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 5),
                        .turns = sqlite3_column_int64(st, 6),
                        .input_tokens = sqlite3_column_int64(st, 7),
                        .output_tokens = sqlite3_column_int64(st, 8),
                        .cache_creation_tokens = sqlite3_column_int64(st, 9),
                        .cache_read_tokens = sqlite3_column_int64(st, 10),
                        .cost_usd = sqlite3_column_double(st, 11),
                        .claude_session_id = db_column_strdup(st, 12),
                        .resumed = sqlite3_column_int(st, 13) != 0,
                        .error = db_column_strdup(st, 14),
                        .uncounted = db_column_strdup(st, 15),
                };
        }
        if (rc != SQLITE_DONE) {
                session_rows_free(rows, count);
                return db_errno(rc);
        }
        *ret = rows;
        *n = count;
        return 0;
}

int session_store_list(sqlite3 *db, int64_t since, struct session_row **ret, size_t *n)
{
        return list_rows(db, false, since, ret, n);
}

int session_store_list_task(sqlite3 *db, int64_t task_id, struct session_row **ret, size_t *n)
{
        return list_rows(db, true, task_id, ret, n);
}
