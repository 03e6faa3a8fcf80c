/* SPDX-License-Identifier: MIT */
#include "jada/sync-store.h"
#include "jada/store.h"
#include "jada/sheets.h"
#include "jada/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int sync_store_last_ok_at(struct store *db, int64_t *ret)
{
        struct store_stmt *st;
        int r = store_prepare(db, "SELECT max(ended_at) FROM sync_runs WHERE ok = 1", &st);

        if (r < 0)
                return *ret = 0, r;
        return store_read_int64(st, ret);
}

int sync_store_run_begin(struct store *db, int64_t started_at, int64_t *ret_row_id)
{
        struct store_stmt *st;
        int r = store_prepare(db, "INSERT INTO sync_runs (started_at) VALUES (?1) RETURNING id", &st);

        *ret_row_id = 0;
        if (r < 0)
                return r;
        store_bind_int64(st, 1, started_at);
        return store_read_int64(st, ret_row_id);
}

int sync_store_run_finish(struct store *db, const struct sync_store_run_end *e)
{
        struct store_stmt *st;
        int r = e->row_id > 0
                ? store_prepare(db,
                             "UPDATE sync_runs SET ended_at = ?1, ok = ?2, rows = ?3, changed = ?4, "
                             "http_status = ?5, error = ?6 WHERE id = ?7", &st)
                : store_prepare(db,
                             "INSERT INTO sync_runs (ended_at, ok, rows, changed, http_status, error, "
                             "started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &st);

        if (r < 0)
                return r;
        store_bind_int64(st, 1, e->ended_at);
        store_bind_int64(st, 2, e->ok);
        store_bind_int64(st, 3, (int64_t)e->rows);
        store_bind_int64(st, 4, e->changed);
        if (e->http_status > 0)
                store_bind_int64(st, 5, e->http_status);
        if (e->error)
                store_bind_text(st, 6, e->error);
        store_bind_int64(st, 7, e->row_id > 0 ? e->row_id : e->started_at);
        return store_step_done(st);
}

int sync_store_port_sheet_hash(struct store *db, char ret[65])
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r, rc;

        ret[0] = '\0';
        r = store_prepare(db, "SELECT content_hash FROM port_sheet_meta WHERE id = 1", &st);
        if (r < 0)
                return r;
        rc = store_step(st);
        if (rc == STORE_ROW && store_column_text(st, 0))
                snprintf(ret, 65, "%s", store_column_text(st, 0));
        return rc == STORE_ROW || rc == STORE_DONE ? 0 : rc;
}

struct replace {
        const struct sheets_values *values;
        const char *hash;
        int64_t now;
        int (*before_commit)(void *userdata);
        void *userdata;
        const char *what;
};

static int replace_in_db(struct store *db, void *userdata)
{
        struct replace *p = userdata;
        _cleanup_free_ char *header = sheets_header_json(p->values);
        struct store_stmt *st;
        int r;

        if (!header)
                return p->what = "building the header", -ENOMEM;
        r = store_exec(db, "DELETE FROM port_sheet");
        for (size_t i = 0; r == 0 && i < p->values->n_rows; i++) {
                _cleanup_free_ char *row = sheets_row_json(p->values, i);

                if (!row)
                        return -ENOMEM;
                r = store_prepare(db, "INSERT INTO port_sheet (row, data) VALUES (?1, ?2)", &st);
                if (r < 0)
                        break;
                store_bind_int64(st, 1, (int64_t)p->values->row_numbers[i]);
                store_bind_text(st, 2, row);
                r = store_step_done(st);
        }
        if (r == 0)
                r = store_prepare(db,
                               "INSERT INTO port_sheet_meta (id, header, content_hash, updated_at) "
                               "VALUES (1, ?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET header = excluded.header, "
                               "content_hash = excluded.content_hash, updated_at = excluded.updated_at", &st);
        if (r == 0) {
                store_bind_text(st, 1, header);
                store_bind_text(st, 2, p->hash);
                store_bind_int64(st, 3, p->now);
                r = store_step_done(st);
        }
        if (r == 0 && p->before_commit) {
                p->what = NULL; /* the caller's own words for its failure */
                r = p->before_commit(p->userdata);
                if (r == 0)
                        p->what = "the database"; /* the commit */
        }
        return r;
}

int sync_store_replace_port_sheet(struct store *db, const struct sheets_values *values, const char *hash, int64_t now,
                                  int (*before_commit)(void *userdata), void *userdata, const char **what)
{
        struct replace p = { .values = values, .hash = hash, .now = now, .before_commit = before_commit,
                             .userdata = userdata, .what = "the database" };
        int r = store_transaction(db, replace_in_db, &p);

        if (r < 0 && p.what)
                *what = p.what;
        return r;
}

int sync_store_history(struct store *db, struct sync_history *ret)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r, rc;

        *ret = (struct sync_history){ 0 };
        r = store_prepare(db,
                       "SELECT (SELECT count(*) FROM sync_runs), "
                       "       (SELECT max(started_at) FROM sync_runs), "
                       "       (SELECT max(ended_at) FROM sync_runs WHERE ok <> 0), "
                       /* A run still going (or cut off by a crash) is not a failed one. */
                       "       (SELECT count(*) FROM sync_runs WHERE ok = 0 AND ended_at IS NOT NULL AND id > "
                       "          coalesce((SELECT max(id) FROM sync_runs WHERE ok <> 0), 0)), "
                       "       r.http_status, r.error, r.ok "
                       "FROM (SELECT 1) AS one LEFT JOIN (SELECT * FROM sync_runs WHERE ended_at IS NOT NULL "
                       "                                  ORDER BY id DESC LIMIT 1) AS r ON 1 = 1",
                       &st);
        if (r < 0)
                return r;
        rc = store_step(st);
        if (rc != STORE_ROW)
                return rc;
        ret->runs = store_column_int64(st, 0);
        ret->last_run_at = store_column_int64(st, 1);
        ret->last_ok_at = store_column_int64(st, 2);
        ret->failing_runs = store_column_int64(st, 3);
        ret->last_http_status = (long)store_column_int64(st, 4);
        if (store_column_text(st, 5) && store_column_int64(st, 6) == 0)
                ret->last_error = store_column_strdup(st, 5);
        return 0;
}

void sync_history_clear(struct sync_history *history)
{
        free(history->last_error);
        *history = (struct sync_history){ 0 };
}
