/* SPDX-License-Identifier: MIT */
/* The statement API (store.h) on SQLite: a thin layer over sqlite3_*, which
 * db.c opens and migrates. */
#include "jada/store.h"
#include "jada/db.h"
#include "jada/log.h"
#include "jada/util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>

struct store {
        sqlite3 *db;
};

struct store_stmt {
        struct store *store;
        sqlite3_stmt *st;
};

int store_open(const char *path, struct store **ret)
{
        sqlite3 *db;
        int r = db_open(path, &db);

        if (r < 0)
                return r;
        *ret = xcalloc(1, sizeof **ret);
        (*ret)->db = db;
        return 0;
}

struct store *store_close(struct store *store)
{
        if (store) {
                db_close(store->db);
                free(store);
        }
        return NULL;
}

sqlite3 *store_sqlite(struct store *store)
{
        return store->db;
}

const char *store_errmsg(struct store *store)
{
        return sqlite3_errmsg(store->db);
}

int store_changes(struct store *store)
{
        return sqlite3_changes(store->db);
}

bool store_in_transaction(struct store *store)
{
        return !sqlite3_get_autocommit(store->db);
}

int store_exec(struct store *store, const char *sql)
{
        char *err = NULL;
        int rc = sqlite3_exec(store->db, sql, NULL, NULL, &err);

        if (rc != SQLITE_OK) {
                log_error("database: %s", err ? err : sqlite3_errstr(rc));
                sqlite3_free(err);
                return db_errno(rc);
        }
        return 0;
}

int store_prepare(struct store *store, const char *sql, struct store_stmt **ret)
{
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(store->db, sql, -1, &st, NULL);

        if (rc != SQLITE_OK) {
                log_error("database: %s", sqlite3_errmsg(store->db));
                *ret = NULL;
                return db_errno(rc);
        }
        *ret = xcalloc(1, sizeof **ret);
        (*ret)->store = store;
        (*ret)->st = st;
        return 0;
}

int store_bind_int64(struct store_stmt *st, int idx, int64_t value)
{
        return db_errno(sqlite3_bind_int64(st->st, idx, value));
}

int store_bind_double(struct store_stmt *st, int idx, double value)
{
        return db_errno(sqlite3_bind_double(st->st, idx, value));
}

int store_bind_text(struct store_stmt *st, int idx, const char *value)
{
        return db_errno(sqlite3_bind_text(st->st, idx, value, -1, SQLITE_TRANSIENT));
}

int store_bind_null(struct store_stmt *st, int idx)
{
        return db_errno(sqlite3_bind_null(st->st, idx));
}

int store_step(struct store_stmt *st)
{
        int rc = sqlite3_step(st->st);

        if (rc == SQLITE_ROW)
                return STORE_ROW;
        if (rc == SQLITE_DONE)
                return STORE_DONE;
        rc = db_errno(rc);
        return rc < 0 ? rc : -EIO;
}

void store_reset(struct store_stmt *st)
{
        sqlite3_reset(st->st);
}

struct store_stmt *store_finalize(struct store_stmt *st)
{
        if (st) {
                sqlite3_finalize(st->st);
                free(st);
        }
        return NULL;
}

void store_finalizep(struct store_stmt **st)
{
        *st = store_finalize(*st);
}

int store_column_count(struct store_stmt *st)
{
        return sqlite3_column_count(st->st);
}

bool store_column_is_null(struct store_stmt *st, int col)
{
        return sqlite3_column_type(st->st, col) == SQLITE_NULL;
}

int64_t store_column_int64(struct store_stmt *st, int col)
{
        return sqlite3_column_int64(st->st, col);
}

double store_column_double(struct store_stmt *st, int col)
{
        return sqlite3_column_double(st->st, col);
}

const char *store_column_text(struct store_stmt *st, int col)
{
        return (const char *)sqlite3_column_text(st->st, col);
}

char *store_column_strdup(struct store_stmt *st, int col)
{
        const char *s = store_column_text(st, col);
        return s ? xstrdup(s) : NULL;
}

int store_step_done(struct store_stmt *st)
{
        struct store *store = st->store;
        int r = store_step(st);

        /* The message before the finalize, which may reset it. */
        if (r != STORE_DONE)
                log_error("database: %s", sqlite3_errmsg(store->db));
        store_finalize(st);
        return r == STORE_DONE ? 0 : r < 0 ? r : -EIO;
}

static int read_one(struct store_stmt *st, bool real, int64_t *ret_int, double *ret_real)
{
        struct store *store = st->store;
        int r = store_step(st);

        if (r == STORE_ROW) {
                if (real)
                        *ret_real = store_column_double(st, 0);
                else
                        *ret_int = store_column_int64(st, 0);
        } else
                log_error("database: %s", r == STORE_DONE ? "a query returned no row" : sqlite3_errmsg(store->db));
        store_finalize(st);
        return r == STORE_ROW ? 0 : r == STORE_DONE ? -ENODATA : r;
}

int store_read_int64(struct store_stmt *st, int64_t *ret)
{
        *ret = 0;
        return read_one(st, false, ret, NULL);
}

int store_read_double(struct store_stmt *st, double *ret)
{
        *ret = 0;
        return read_one(st, true, NULL, ret);
}

int store_begin(struct store *store)
{
        return store_exec(store, "BEGIN IMMEDIATE");
}

int store_commit(struct store *store)
{
        return store_exec(store, "COMMIT");
}

void store_rollback(struct store *store)
{
        if (store_in_transaction(store))
                (void)sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_transaction(struct store *store, int (*fn)(struct store *store, void *userdata), void *userdata)
{
        int r = store_begin(store);

        if (r < 0)
                return r;
        r = fn(store, userdata);
        if (r >= 0) {
                int c = store_commit(store);
                if (c < 0)
                        r = c;
        }
        if (r < 0)
                store_rollback(store);
        return r;
}
