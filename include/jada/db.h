/* SPDX-License-Identifier: MIT */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

/* The state database: one SQLite file in the state dir. */
#define DB_FILE_NAME "jada-agent.db"
/* PRAGMA application_id of our files: "JADA". Tells our db from any other. */
#define DB_APPLICATION_ID 0x4A414441

/* Opens (creating if needed) the db at path: WAL, busy_timeout, synchronous
 * FULL (a lost commit could let a 6th session through the day's budget),
 * foreign keys; then migrates the schema by PRAGMA user_version.
 * Refuses, with a logged reason: a file that is not SQLite or is corrupt
 * (-EBADMSG), a SQLite file that is not ours (-EMEDIUMTYPE), a schema newer
 * than this binary knows (-EPROTO). */
int db_open(const char *path, sqlite3 **ret);
sqlite3 *db_close(sqlite3 *db);

/* The schema version this binary migrates to. */
int db_schema_version(void);

/* Runs SQL with no result rows; logs and returns a negative errno on error. */
int db_exec(sqlite3 *db, const char *sql);

/* Prepares a statement; logs and returns a negative errno on error. */
int db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st);
/* Steps a statement that returns no rows, then finalizes it. */
int db_step_done(sqlite3 *db, sqlite3_stmt *st);
/* Steps a statement that returns one row and reads its first column (SQL
 * NULL reads as 0), then finalizes it. 0 or a negative errno; *ret is 0 on
 * error. */
int db_read_int64(sqlite3 *db, sqlite3_stmt *st, int64_t *ret);
int db_read_double(sqlite3 *db, sqlite3_stmt *st, double *ret);

/* For a statement that a function steps through many rows:
 * `_cleanup_stmt_ sqlite3_stmt *st = NULL;` finalizes it on every return. */
void db_finalizep(sqlite3_stmt **st);
#define _cleanup_stmt_ __attribute__((cleanup(db_finalizep)))

/* Runs fn in one BEGIN IMMEDIATE transaction: committed if fn returns 0 or
 * more, rolled back if it returns a negative errno (which is returned). */
int db_transaction(sqlite3 *db, int (*fn)(sqlite3 *db, void *userdata), void *userdata);

/* A text column as a new string, or NULL for SQL NULL. */
char *db_column_strdup(sqlite3_stmt *st, int column);

int db_begin_immediate(sqlite3 *db);
int db_commit(sqlite3 *db);
void db_rollback(sqlite3 *db);

/* Maps a SQLite result code to a negative errno (SQLITE_BUSY → -EBUSY,
 * SQLITE_FULL → -ENOSPC, ...). */
int db_errno(int sqlite_code);

/* The db path for a state dir; the caller frees it. */
char *db_path_for(const char *state_dir);
