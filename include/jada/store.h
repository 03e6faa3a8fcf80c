/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/fiber.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * The state database behind one backend-neutral statement API: every SQL
 * statement of the queue, the sessions, the sync, the outbox, usage and
 * health goes through here, so that their logic is one code path whatever
 * the backend: SQLite (db.c opens and migrates the file; store-sqlite.c),
 * or a fleet's PostgreSQL (store-pg.c; pg-schema.c migrates it).
 *
 * SQL text handed to store_prepare must be portable: parameters as ?N (the
 * PostgreSQL executor rewrites them to $N), INSERT ... RETURNING id rather
 * than a last-rowid call, ON CONFLICT rather than INSERT OR ..., a parameter
 * tested for NULL cast to its type (CAST(?N AS TEXT) IS NULL), booleans as
 * 0/1 integers. What cannot be portable is marked "SQLite-only" where it is.
 *
 * Errors are negative errnos, as db_errno() maps SQLite's codes: -EBUSY
 * (locked past the busy timeout), -ENOSPC, -EACCES, -EBADMSG, -EEXIST (a
 * constraint), -EIO.
 */

struct store;
struct store_stmt;
struct sqlite3;

/* What store_step found: a row to read, or the statement's end. */
enum {
        STORE_DONE = 0,
        STORE_ROW = 1,
};

/* Opens (creating and migrating if needed) the db at path, as db_open()
 * does, refusing what db_open() refuses. */
int store_open(const char *path, struct store **ret);
struct store *store_close(struct store *store);

/* The SQLite handle, for what only SQLite has (migrations, PRAGMAs, tests
 * of SQLite's own behaviour), NULL on PostgreSQL. Every caller says why in
 * a comment. */
struct sqlite3 *store_sqlite(struct store *store);
/* Whether this is a fleet's PostgreSQL: for the few statements that must
 * differ, each marked "SQLite-only" or "PostgreSQL-only". */
bool store_is_postgresql(const struct store *store);

/* This daemon's node name in a fleet (NULL on SQLite): what its claims,
 * sessions and health row are marked with. */
void store_set_node(struct store *store, const char *node);
const char *store_node(const struct store *store);

/* Where the daemon's store work runs. On SQLite every call returns at once,
 * and store_run calls fn before it returns. On a fleet's PostgreSQL the
 * store waits for the server on the database fiber (fiber.h): store_run
 * hands fn to the fiber (at once if it is idle, else after the work before
 * it), and a callback of the loop that reaches the store goes through it. */
void store_set_fiber(struct store *store, struct fiber *fiber);
void store_run(struct store *store, fiber_job_fn fn, void *userdata);
/* store_run for an owner that may be freed first, and that needs its work
 * done once however often it is asked for: while a job waits in the queue,
 * *slot holds it and more asks add nothing; store_job_cancel (the owner's
 * free) drops it. At once, as store_run, when nothing waits. */
struct store_job;
void store_run_once(struct store *store, struct store_job **slot, fiber_job_fn fn, void *userdata);
void store_job_cancel(struct store_job **slot);
/* Whether store work from here would have to go through store_run: a
 * fiber is set and the caller is not on it. */
bool store_waits(const struct store *store);

/* The last error's text, for a log line. */
const char *store_errmsg(struct store *store);
/* Rows the last INSERT, UPDATE or DELETE changed. */
int store_changes(struct store *store);
/* Whether a transaction is open (begun and not yet committed or rolled back;
 * transactions nest, see store_begin). */
bool store_in_transaction(struct store *store);

/* Runs SQL with no parameters and no result rows (several statements may
 * be separated by ';'); logs and returns a negative errno on error. */
int store_exec(struct store *store, const char *sql);

/* Prepares a statement; logs and returns a negative errno on error. */
int store_prepare(struct store *store, const char *sql, struct store_stmt **ret);
/* Binds parameter ?idx (from 1). Text and blobs are copied: the value need
 * not outlive the call. A NULL text binds SQL NULL; an unbound parameter is
 * NULL too. 0 or a negative errno. */
int store_bind_int64(struct store_stmt *st, int idx, int64_t value);
int store_bind_double(struct store_stmt *st, int idx, double value);
int store_bind_text(struct store_stmt *st, int idx, const char *value);
int store_bind_null(struct store_stmt *st, int idx);
/* STORE_ROW, STORE_DONE, or a negative errno; does not log (the caller
 * knows what was being done: store_errmsg() says why). */
int store_step(struct store_stmt *st);
/* Makes the statement ready to run again, keeping its bindings. */
void store_reset(struct store_stmt *st);
struct store_stmt *store_finalize(struct store_stmt *st);

/* Columns of the current row, from 0. A text column is NULL for SQL NULL
 * and valid until the next step, reset or finalize; numbers read SQL NULL
 * as 0. */
int store_column_count(struct store_stmt *st);
bool store_column_is_null(struct store_stmt *st, int col);
int64_t store_column_int64(struct store_stmt *st, int col);
double store_column_double(struct store_stmt *st, int col);
const char *store_column_text(struct store_stmt *st, int col);
/* A text column as a new string, or NULL for SQL NULL. */
char *store_column_strdup(struct store_stmt *st, int col);

/* Steps a statement that returns no rows, then finalizes it; logs and
 * returns a negative errno on error. */
int store_step_done(struct store_stmt *st);
/* Steps a statement that returns one row and reads its first column (SQL
 * NULL reads as 0), then finalizes it. 0 or a negative errno (-ENODATA: no
 * row), logged; *ret is 0 on error. */
int store_read_int64(struct store_stmt *st, int64_t *ret);
int store_read_double(struct store_stmt *st, double *ret);

/* For a statement that a function steps through many rows:
 * `_cleanup_stmt_ struct store_stmt *st = NULL;` finalizes it on every return. */
void store_finalizep(struct store_stmt **st);
#define _cleanup_stmt_ __attribute__((cleanup(store_finalizep)))

/* A write transaction: SQLite's BEGIN IMMEDIATE takes the write lock at
 * once, so that a transaction that reads then writes cannot fail half-way
 * on another writer; on PostgreSQL every transaction takes the fleet's
 * write lock (pg_advisory_xact_lock) for the same reason, and so that a
 * claim's budget read and its session's row are exact across daemons.
 * store_rollback does nothing outside a transaction.
 * Inside one, a begin and its commit join it, and a rollback makes the
 * outermost commit roll back and fail. */
int store_begin(struct store *store);
int store_commit(struct store *store);
void store_rollback(struct store *store);

/* Tells the fleet's other daemons that a task may be claimable (NOTIFY,
 * sent at the commit); nothing on SQLite, whose one daemon the command line
 * wakes itself. */
int store_notify(struct store *store, const char *channel);
#define STORE_CHANNEL_TASKS "jada_tasks"

/* Runs fn in one store_begin transaction: committed if fn returns 0 or more,
 * rolled back if it returns a negative errno (which is returned). */
int store_transaction(struct store *store, int (*fn)(struct store *store, void *userdata), void *userdata);
