/* SPDX-License-Identifier: MIT */
/* The statement API (store.h) on SQLite: a thin layer over sqlite3_*, which
 * db.c opens and migrates. */
#include "jada/db.h"
#include "jada/log.h"
#include "jada/store-backend.h"
#include "jada/util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>

struct sqlite_store {
        struct store base;
        sqlite3 *db;
};

struct sqlite_stmt {
        struct store_stmt base;
        sqlite3_stmt *st;
};

static sqlite3 *db_of(struct store *store)
{
        return ((struct sqlite_store *)store)->db;
}

static sqlite3_stmt *st_of(struct store_stmt *st)
{
        return ((struct sqlite_stmt *)st)->st;
}

static void sq_close(struct store *store)
{
        db_close(db_of(store));
        free(store);
}

static const char *sq_errmsg(struct store *store)
{
        return sqlite3_errmsg(db_of(store));
}

static int sq_changes(struct store *store)
{
        return sqlite3_changes(db_of(store));
}

static bool sq_in_transaction(struct store *store)
{
        return !sqlite3_get_autocommit(db_of(store));
}

static int sq_exec(struct store *store, const char *sql)
{
        char *err = NULL;
        int rc = sqlite3_exec(db_of(store), sql, NULL, NULL, &err);

        if (rc != SQLITE_OK) {
                log_error("database: %s", err ? err : sqlite3_errstr(rc));
                sqlite3_free(err);
                return db_errno(rc);
        }
        return 0;
}

static int sq_prepare(struct store *store, const char *sql, struct store_stmt **ret)
{
        struct sqlite_stmt *s;
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(db_of(store), sql, -1, &st, NULL);

        if (rc != SQLITE_OK) {
                log_error("database: %s", sqlite3_errmsg(db_of(store)));
                *ret = NULL;
                return db_errno(rc);
        }
        s = xcalloc(1, sizeof *s);
        s->base.store = store;
        s->st = st;
        *ret = &s->base;
        return 0;
}

static int sq_bind(struct store_stmt *st, int idx, char type, const char *text, int64_t i, double d)
{
        switch (type) {
        case STORE_BIND_INT:
                return db_errno(sqlite3_bind_int64(st_of(st), idx, i));
        case STORE_BIND_REAL:
                return db_errno(sqlite3_bind_double(st_of(st), idx, d));
        case STORE_BIND_TEXT:
                return db_errno(sqlite3_bind_text(st_of(st), idx, text, -1, SQLITE_TRANSIENT));
        default:
                return db_errno(sqlite3_bind_null(st_of(st), idx));
        }
}

static int sq_step(struct store_stmt *st)
{
        int rc = sqlite3_step(st_of(st));

        if (rc == SQLITE_ROW)
                return STORE_ROW;
        if (rc == SQLITE_DONE)
                return STORE_DONE;
        rc = db_errno(rc);
        return rc < 0 ? rc : -EIO;
}

static void sq_reset(struct store_stmt *st)
{
        sqlite3_reset(st_of(st));
}

static void sq_finalize(struct store_stmt *st)
{
        sqlite3_finalize(st_of(st));
        free(st);
}

static int sq_column_count(struct store_stmt *st)
{
        return sqlite3_column_count(st_of(st));
}

static bool sq_column_is_null(struct store_stmt *st, int col)
{
        return sqlite3_column_type(st_of(st), col) == SQLITE_NULL;
}

static int64_t sq_column_int64(struct store_stmt *st, int col)
{
        return sqlite3_column_int64(st_of(st), col);
}

static double sq_column_double(struct store_stmt *st, int col)
{
        return sqlite3_column_double(st_of(st), col);
}

static const char *sq_column_text(struct store_stmt *st, int col)
{
        return (const char *)sqlite3_column_text(st_of(st), col);
}

/* BEGIN IMMEDIATE takes the write lock at once: a transaction that reads
 * then writes cannot fail half-way on another writer. One process per
 * state dir claims, so the claim needs nothing more. */
static int sq_begin(struct store *store)
{
        return sq_exec(store, "BEGIN IMMEDIATE");
}

static int sq_commit(struct store *store)
{
        return sq_exec(store, "COMMIT");
}

static void sq_rollback(struct store *store)
{
        if (sq_in_transaction(store))
                (void)sqlite3_exec(db_of(store), "ROLLBACK", NULL, NULL, NULL);
}

/* One daemon per SQLite state: the command line wakes it through the
 * control socket instead. */
static int sq_notify(struct store *store, const char *channel)
{
        return 0;
}

static const struct store_ops sqlite_ops = {
        .name = "SQLite",
        .close = sq_close,
        .errmsg = sq_errmsg,
        .changes = sq_changes,
        .in_transaction = sq_in_transaction,
        .exec = sq_exec,
        .prepare = sq_prepare,
        .bind = sq_bind,
        .step = sq_step,
        .reset = sq_reset,
        .finalize = sq_finalize,
        .column_count = sq_column_count,
        .column_is_null = sq_column_is_null,
        .column_int64 = sq_column_int64,
        .column_double = sq_column_double,
        .column_text = sq_column_text,
        .begin = sq_begin,
        .commit = sq_commit,
        .rollback = sq_rollback,
        .notify = sq_notify,
};

int store_open(const char *path, struct store **ret)
{
        struct sqlite_store *s;
        sqlite3 *db;
        int r = db_open(path, &db);

        if (r < 0)
                return r;
        s = xcalloc(1, sizeof *s);
        s->base.ops = &sqlite_ops;
        s->db = db;
        *ret = &s->base;
        return 0;
}

sqlite3 *store_sqlite(struct store *store)
{
        return store->ops == &sqlite_ops ? db_of(store) : NULL;
}
