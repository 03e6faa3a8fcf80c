/* SPDX-License-Identifier: MIT */
/* The sync's record, read by the command line as well as the daemon. */
#include "jada/db.h"
#include "jada/sync.h"
#include "jada/util.h"

#include <string.h>

int sync_history_load(sqlite3 *db, struct sync_history *ret)
{
        sqlite3_stmt *st;
        int rc;

        *ret = (struct sync_history){ 0 };
        rc = sqlite3_prepare_v2(db,
                                "SELECT (SELECT count(*) FROM sync_runs), "
                                "       (SELECT max(started_at) FROM sync_runs), "
                                "       (SELECT max(ended_at) FROM sync_runs WHERE ok), "
                                /* A run still going (or cut off by a crash) is not a failed one. */
                                "       (SELECT count(*) FROM sync_runs WHERE NOT ok AND ended_at IS NOT NULL AND id > "
                                "          coalesce((SELECT max(id) FROM sync_runs WHERE ok), 0)), "
                                "       r.http_status, r.error, r.ok "
                                "FROM (SELECT 1) LEFT JOIN (SELECT * FROM sync_runs WHERE ended_at IS NOT NULL "
                                "                           ORDER BY id DESC LIMIT 1) AS r",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return db_errno(rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *err = (const char *)sqlite3_column_text(st, 5);
                ret->runs = sqlite3_column_int64(st, 0);
                ret->last_run_at = sqlite3_column_int64(st, 1);
                ret->last_ok_at = sqlite3_column_int64(st, 2);
                ret->failing_runs = sqlite3_column_int64(st, 3);
                ret->last_http_status = (long)sqlite3_column_int64(st, 4);
                if (err && sqlite3_column_int(st, 6) == 0)
                        ret->last_error = xstrdup(err);
        }
        sqlite3_finalize(st);
        return rc == SQLITE_ROW ? 0 : db_errno(rc);
}

void sync_history_clear(struct sync_history *history)
{
        free(history->last_error);
        *history = (struct sync_history){ 0 };
}
