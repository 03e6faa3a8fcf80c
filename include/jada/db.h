/* SPDX-License-Identifier: MIT */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>

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
