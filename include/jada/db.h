/* SPDX-License-Identifier: MIT */
#pragma once

struct sqlite3;

/* The state database: one SQLite file in the state dir. Its users go
 * through store.h; this is the file itself: opening, pragmas, migrations. */
#define DB_FILE_NAME "jada-agent.db"
/* PRAGMA application_id of our files: "JADA". Tells our db from any other. */
#define DB_APPLICATION_ID 0x4A414441

/* Opens (creating if needed) the db at path: WAL, busy_timeout, synchronous
 * FULL (a lost commit could let a 6th session through the day's budget),
 * foreign keys; then migrates the schema by PRAGMA user_version.
 * Refuses, with a logged reason: a file that is not SQLite or is corrupt
 * (-EBADMSG), a SQLite file that is not ours (-EMEDIUMTYPE), a schema newer
 * than this binary knows (-EPROTO). */
int db_open(const char *path, struct sqlite3 **ret);
struct sqlite3 *db_close(struct sqlite3 *db);

/* The schema version this binary migrates to. */
int db_schema_version(void);

/* Maps a SQLite result code to a negative errno (SQLITE_BUSY → -EBUSY,
 * SQLITE_FULL → -ENOSPC, ...). */
int db_errno(int sqlite_code);

/* The db path for a state dir; the caller frees it. */
char *db_path_for(const char *state_dir);
