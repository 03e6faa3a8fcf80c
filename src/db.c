/* SPDX-License-Identifier: MIT */
#include "jada/db.h"
#include "jada/log.h"
#include "jada/util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* How long a writer waits for another (the daemon, the CLI, a second daemon)
 * before SQLITE_BUSY: long enough for any of our short transactions. */
#define DB_BUSY_TIMEOUT_MS 10000

/*
 * Schema migrations. Entry i brings user_version from i to i+1; each runs in
 * one transaction with the version bump. Never edit an entry that has been
 * released: add a new one. Times are UTC, seconds since the epoch.
 */
static const char *const migrations[] = {
        /* 1: the health row the daemon keeps current for `jada-agent status`. */
        "CREATE TABLE health ("
        "  id INTEGER PRIMARY KEY CHECK (id = 1),"
        "  pid INTEGER NOT NULL,"
        "  started_at INTEGER NOT NULL,"
        "  updated_at INTEGER NOT NULL,"
        "  state TEXT NOT NULL,"
        "  status TEXT NOT NULL,"
        "  details TEXT NOT NULL DEFAULT '{}'"
        ") STRICT;",

        /* 2: the task queue and its audit trail. */
        "CREATE TABLE tasks ("
        "  id INTEGER PRIMARY KEY,"
        "  title TEXT NOT NULL,"
        "  prompt TEXT NOT NULL,"
        "  state TEXT NOT NULL CHECK (state IN"
        "    ('queued', 'running', 'done', 'needs_you', 'failed', 'cancelled')),"
        "  priority INTEGER NOT NULL DEFAULT 0,"
        "  run_after INTEGER NOT NULL,"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  sessions_used INTEGER NOT NULL DEFAULT 0,"
        "  turns_used INTEGER NOT NULL DEFAULT 0,"
        "  cost_usd REAL NOT NULL DEFAULT 0,"
        "  claude_session_id TEXT,"
        "  needs_you_reason TEXT,"
        "  reply TEXT,"
        "  result TEXT,"
        "  error TEXT,"
        "  created_at INTEGER NOT NULL,"
        "  updated_at INTEGER NOT NULL"
        ") STRICT;"
        /* The claim walks this in order and stops at the first due task: no
         * sort, however long the queue (a partial index on state lost to
         * tasks_state_updated plus a temp B-tree in the planner). */
        "CREATE INDEX tasks_claim ON tasks (state, priority DESC, id);"
        "CREATE INDEX tasks_state_updated ON tasks (state, updated_at);"
        "CREATE TABLE task_events ("
        "  id INTEGER PRIMARY KEY,"
        "  task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,"
        "  at INTEGER NOT NULL,"
        "  old_state TEXT CHECK (old_state IN"    /* NULL: the task was created */
        "    ('queued', 'running', 'done', 'needs_you', 'failed', 'cancelled')),"
        "  new_state TEXT NOT NULL CHECK (new_state IN"
        "    ('queued', 'running', 'done', 'needs_you', 'failed', 'cancelled')),"
        "  reason TEXT NOT NULL"
        ") STRICT;"
        "CREATE INDEX task_events_task ON task_events (task_id, id);",

        /* 3: one row per session launch, written before the child starts. */
        "CREATE TABLE sessions ("
        "  id INTEGER PRIMARY KEY,"
        "  task_id INTEGER REFERENCES tasks (id) ON DELETE SET NULL,"
        "  started_at INTEGER NOT NULL,"
        "  ended_at INTEGER,"                     /* NULL while it runs */
        "  outcome TEXT,"                         /* NULL while it runs */
        "  exit_status INTEGER,"
        "  pid INTEGER,"
        "  pid_start INTEGER,"                    /* /proc/PID/stat starttime: tells PID reuse */
        "  turns INTEGER NOT NULL DEFAULT 0,"
        "  input_tokens INTEGER NOT NULL DEFAULT 0,"
        "  output_tokens INTEGER NOT NULL DEFAULT 0,"
        "  cache_creation_tokens INTEGER NOT NULL DEFAULT 0,"
        "  cache_read_tokens INTEGER NOT NULL DEFAULT 0,"
        "  cost_usd REAL NOT NULL DEFAULT 0,"     /* this session's own cost */
        "  reported_cost_usd REAL,"               /* total_cost_usd as the CLI said it */
        "  claude_session_id TEXT,"
        "  resumed INTEGER NOT NULL DEFAULT 0,"
        "  error TEXT"
        ") STRICT;"
        "CREATE INDEX sessions_started ON sessions (started_at);"
        "CREATE INDEX sessions_task ON sessions (task_id, id);",

        /* 4: the port-sheet sync: every run, and the mirrored rows. */
        "CREATE TABLE sync_runs ("
        "  id INTEGER PRIMARY KEY,"
        "  started_at INTEGER NOT NULL,"
        "  ended_at INTEGER,"
        "  ok INTEGER NOT NULL DEFAULT 0,"
        "  rows INTEGER NOT NULL DEFAULT 0,"
        "  changed INTEGER NOT NULL DEFAULT 0,"
        "  http_status INTEGER,"
        "  error TEXT"
        ") STRICT;"
        "CREATE INDEX sync_runs_started ON sync_runs (started_at);"
        /* One row per sheet row below the header; data is a JSON object
         * keyed by the header's column names. */
        "CREATE TABLE port_sheet ("
        "  row INTEGER PRIMARY KEY,"
        "  data TEXT NOT NULL"
        ") STRICT;"
        "CREATE TABLE port_sheet_meta ("
        "  id INTEGER PRIMARY KEY CHECK (id = 1),"
        "  header TEXT NOT NULL,"                 /* JSON array of the column names */
        "  content_hash TEXT NOT NULL,"           /* SHA-256 of the values as fetched */
        "  updated_at INTEGER NOT NULL"
        ") STRICT;",

        /* 5: a session that never reached the model (the command could not
         * run, or the API refused it before its first turn) takes no slot
         * of the day's budget; the row stays, saying why. NULL: it counts. */
        "ALTER TABLE sessions ADD COLUMN uncounted TEXT;",

        /* 6: projects. A task of a project runs on branch jada/task-ID
         * (branch, from base at base_commit) in a worktree, which is set
         * while the worktree exists: a done or cancelled task with one
         * still has it removed by the daemon. */
        "ALTER TABLE tasks ADD COLUMN project TEXT;"
        "ALTER TABLE tasks ADD COLUMN branch TEXT;"
        "ALTER TABLE tasks ADD COLUMN base TEXT;"
        "ALTER TABLE tasks ADD COLUMN base_commit TEXT;"
        "ALTER TABLE tasks ADD COLUMN worktree TEXT;"
        "CREATE INDEX tasks_worktree ON tasks (state) WHERE worktree IS NOT NULL;",

        /* 7: usage limits and cost caps. One row: the gate a usage limit
         * closed (parked_until) and the last limit state the CLI reported.
         * A task's own cost cap (NULL: [claude] max_cost_per_task_usd). */
        "CREATE TABLE usage_limit ("
        "  id INTEGER PRIMARY KEY CHECK (id = 1),"
        "  parked_until INTEGER NOT NULL DEFAULT 0,"  /* 0: not parked */
        "  unknown_streak INTEGER NOT NULL DEFAULT 0,"
        "  park_type TEXT NOT NULL DEFAULT '',"
        "  park_reset INTEGER NOT NULL DEFAULT 0,"
        "  status TEXT NOT NULL DEFAULT '',"
        "  type TEXT NOT NULL DEFAULT '',"
        "  resets_at INTEGER NOT NULL DEFAULT 0,"
        "  utilization REAL,"
        "  seen_at INTEGER NOT NULL DEFAULT 0"
        ") STRICT;"
        "ALTER TABLE tasks ADD COLUMN max_cost_usd REAL;",

        /* 8: the outbox of per-task notifications (notify-store.c). A row
         * is written in the transaction that moves its task, holding what
         * the message says as it was then (bounded); each channel is done
         * once it delivered the row or gave up on it, and the row goes when
         * every channel it is wanted on is done. Pruning a task prunes them. */
        "CREATE TABLE notifications ("
        "  id INTEGER PRIMARY KEY,"
        "  task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,"
        "  event TEXT NOT NULL CHECK (event IN ('needs_you', 'failed', 'done')),"
        "  created_at INTEGER NOT NULL,"
        "  title TEXT NOT NULL,"
        "  detail TEXT NOT NULL,"                 /* the question, the error, or the result's head */
        "  branch TEXT,"                          /* a project's jada/task-ID; NULL: none */
        "  webhook_done INTEGER NOT NULL DEFAULT 0,"
        "  command_done INTEGER NOT NULL DEFAULT 0"
        ") STRICT;"
        "CREATE INDEX notifications_task ON notifications (task_id);",

        /* 9: sub-tasks and dependencies. The state 'waiting' (a parent whose
         * sub-tasks are not all finished) needs a wider CHECK, which SQLite
         * cannot alter: tasks and task_events are rebuilt (with foreign keys
         * off, see migrate(), so that dropping the old tables cascades to
         * nothing). parent_id: the task this one is a sub-task of. task_after:
         * task_id runs only once after_id is done (`--after-task`). */
        "CREATE TABLE tasks_new ("
        "  id INTEGER PRIMARY KEY,"
        "  title TEXT NOT NULL,"
        "  prompt TEXT NOT NULL,"
        "  state TEXT NOT NULL CHECK (state IN"
        "    ('queued', 'running', 'done', 'needs_you', 'failed', 'cancelled', 'waiting')),"
        "  priority INTEGER NOT NULL DEFAULT 0,"
        "  run_after INTEGER NOT NULL,"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  sessions_used INTEGER NOT NULL DEFAULT 0,"
        "  turns_used INTEGER NOT NULL DEFAULT 0,"
        "  cost_usd REAL NOT NULL DEFAULT 0,"
        "  claude_session_id TEXT,"
        "  needs_you_reason TEXT,"
        "  reply TEXT,"
        "  result TEXT,"
        "  error TEXT,"
        "  created_at INTEGER NOT NULL,"
        "  updated_at INTEGER NOT NULL,"
        "  project TEXT,"
        "  branch TEXT,"
        "  base TEXT,"
        "  base_commit TEXT,"
        "  worktree TEXT,"
        "  max_cost_usd REAL,"
        "  parent_id INTEGER REFERENCES tasks (id) ON DELETE SET NULL"
        ") STRICT;"
        "INSERT INTO tasks_new (id, title, prompt, state, priority, run_after, attempts, sessions_used, turns_used,"
        "  cost_usd, claude_session_id, needs_you_reason, reply, result, error, created_at, updated_at, project,"
        "  branch, base, base_commit, worktree, max_cost_usd)"
        "  SELECT id, title, prompt, state, priority, run_after, attempts, sessions_used, turns_used,"
        "  cost_usd, claude_session_id, needs_you_reason, reply, result, error, created_at, updated_at, project,"
        "  branch, base, base_commit, worktree, max_cost_usd FROM tasks;"
        "DROP TABLE tasks;"
        "ALTER TABLE tasks_new RENAME TO tasks;"
        "CREATE INDEX tasks_claim ON tasks (state, priority DESC, id);"
        "CREATE INDEX tasks_state_updated ON tasks (state, updated_at);"
        "CREATE INDEX tasks_worktree ON tasks (state) WHERE worktree IS NOT NULL;"
        "CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;"
        "CREATE TABLE task_events_new ("
        "  id INTEGER PRIMARY KEY,"
        "  task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,"
        "  at INTEGER NOT NULL,"
        "  old_state TEXT CHECK (old_state IN"
        "    ('queued', 'running', 'done', 'needs_you', 'failed', 'cancelled', 'waiting')),"
        "  new_state TEXT NOT NULL CHECK (new_state IN"
        "    ('queued', 'running', 'done', 'needs_you', 'failed', 'cancelled', 'waiting')),"
        "  reason TEXT NOT NULL"
        ") STRICT;"
        "INSERT INTO task_events_new SELECT id, task_id, at, old_state, new_state, reason FROM task_events;"
        "DROP TABLE task_events;"
        "ALTER TABLE task_events_new RENAME TO task_events;"
        "CREATE INDEX task_events_task ON task_events (task_id, id);"
        "CREATE TABLE task_after ("
        "  task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,"
        "  after_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,"
        "  PRIMARY KEY (task_id, after_id)"
        ") STRICT, WITHOUT ROWID;"
        "CREATE INDEX task_after_after ON task_after (after_id);",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int db_schema_version(void)
{
        return N_MIGRATIONS;
}

int db_errno(int code)
{
        switch (code & 0xff) {
        case SQLITE_OK: case SQLITE_ROW: case SQLITE_DONE:
                return 0;
        case SQLITE_BUSY: case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY: case SQLITE_PERM: case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_CORRUPT: case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_IOERR:
                return -EIO;
        default:
                return -EIO;
        }
}

static int db_exec(sqlite3 *db, const char *sql)
{
        char *err = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

        if (rc != SQLITE_OK) {
                log_error("database: %s", err ? err : sqlite3_errstr(rc));
                sqlite3_free(err);
                return db_errno(rc);
        }
        return 0;
}

static int db_begin_immediate(sqlite3 *db)
{
        return db_exec(db, "BEGIN IMMEDIATE");
}

static int db_commit(sqlite3 *db)
{
        return db_exec(db, "COMMIT");
}

static void db_rollback(sqlite3 *db)
{
        if (!sqlite3_get_autocommit(db))
                (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

static int pragma_int(sqlite3 *db, const char *sql, long long *ret)
{
        sqlite3_stmt *st;
        int rc;

        rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return rc;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret = sqlite3_column_int64(st, 0);
                rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        return rc;
}

/* Reads what tells our db from any other file. The first read of a file
 * that is not SQLite, or is corrupt, fails here with SQLITE_NOTADB. */
static int read_identity(sqlite3 *db, long long *version, long long *app_id, long long *objects)
{
        int rc;

        if ((rc = pragma_int(db, "PRAGMA user_version", version)) != SQLITE_OK ||
            (rc = pragma_int(db, "PRAGMA application_id", app_id)) != SQLITE_OK ||
            (rc = pragma_int(db, "SELECT count(*) FROM sqlite_master", objects)) != SQLITE_OK)
                return rc;
        return SQLITE_OK;
}

/* Refuses what is not ours: 0, or a negative errno having logged why. */
static int check_identity(sqlite3 *db, const char *path, long long *version)
{
        long long app_id, objects;
        int rc = read_identity(db, version, &app_id, &objects);

        if (rc != SQLITE_OK) {
                log_error("%s: not a usable SQLite database: %s", path, sqlite3_errmsg(db));
                return db_errno(rc);
        }
        /* A new, empty file is ours to initialise. */
        if (app_id != DB_APPLICATION_ID && !(app_id == 0 && *version == 0 && objects == 0)) {
                log_error("%s: not a jada-agent database (application_id %lld)", path, app_id);
                return -EMEDIUMTYPE;
        }
        if (*version > N_MIGRATIONS) {
                log_error("%s: schema version %lld was written by a newer jada-agent; this one knows up to %d",
                          path, *version, N_MIGRATIONS);
                return -EPROTO;
        }
        return 0;
}

static int migrate_locked(sqlite3 *db, const char *path);

static int migrate(sqlite3 *db, const char *path)
{
        int r;

        /* Rebuilding a table (migration 9) drops the old one: with foreign
         * keys on, that would cascade to every row that refers to it. Off
         * for the migration (it cannot change inside a transaction), and the
         * references checked before the commit instead. */
        r = db_exec(db, "PRAGMA foreign_keys = OFF");
        if (r < 0)
                return r;
        r = migrate_locked(db, path);
        if (db_exec(db, "PRAGMA foreign_keys = ON") < 0 && r == 0)
                r = -EIO;
        return r;
}

/* No row may refer to a row that is not there. */
static int foreign_keys_hold(sqlite3 *db)
{
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL);

        if (rc != SQLITE_OK)
                return db_errno(rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                log_error("database: a row of %s refers to a row that is not there",
                          (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : rc == SQLITE_ROW ? -EBADMSG : db_errno(rc);
}

static int migrate_locked(sqlite3 *db, const char *path)
{
        long long version;
        char sql[128];
        int r;

        r = db_begin_immediate(db);
        if (r < 0)
                return r;
        /* Again inside the write transaction: a second process opening the
         * same new file at the same moment must not migrate it twice. */
        r = check_identity(db, path, &version);
        if (r < 0 || version == N_MIGRATIONS) {
                db_rollback(db);
                return r;
        }
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d", DB_APPLICATION_ID);
        r = db_exec(db, sql);
        for (long long v = version; r == 0 && v < N_MIGRATIONS; v++) {
                r = db_exec(db, migrations[v]);
                if (r == 0) {
                        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", v + 1);
                        r = db_exec(db, sql);
                }
        }
        if (r == 0)
                r = foreign_keys_hold(db);
        if (r == 0)
                r = db_commit(db);
        if (r < 0) {
                db_rollback(db);
                log_error("%s: schema migration failed; the database is unchanged", path);
                return r;
        }
        log_info("%s: schema migrated from version %lld to %d", path, version, N_MIGRATIONS);
        return 0;
}

int db_open(const char *path, sqlite3 **ret)
{
        sqlite3 *db = NULL;
        long long version;
        int rc, r;

        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, NULL);
        if (rc != SQLITE_OK) {
                log_error("%s: cannot open the database: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
                sqlite3_close(db);
                return db_errno(rc);
        }
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);

        /* Look before touching: a foreign file must not even be switched to WAL. */
        r = check_identity(db, path, &version);
        if (r == 0) {
                sqlite3_stmt *st;
                rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
                if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                        const char *mode = (const char *)sqlite3_column_text(st, 0);
                        rc = mode && strcmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
                }
                if (rc != SQLITE_OK) {
                        log_error("%s: cannot switch to WAL journaling: %s", path, sqlite3_errmsg(db));
                        r = db_errno(rc);
                }
                sqlite3_finalize(st);
        }
        if (r == 0)
                r = db_exec(db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
        /* Only a db behind this binary's schema needs the write lock. */
        if (r == 0 && version < N_MIGRATIONS)
                r = migrate(db, path);
        if (r < 0) {
                sqlite3_close(db);
                return r;
        }
        *ret = db;
        return 0;
}

sqlite3 *db_close(sqlite3 *db)
{
        if (db && sqlite3_close(db) != SQLITE_OK)
                log_warning("database: close: %s (unfinalized statements?)", sqlite3_errmsg(db));
        return NULL;
}

char *db_path_for(const char *state_dir)
{
        return xasprintf("%s/%s", state_dir, DB_FILE_NAME);
}
