/* SPDX-License-Identifier: MIT */
#include "jada/health.h"
#include "jada/db.h"
#include "jada/log.h"
#include "jada/util.h"

#include <stdarg.h>
#include <stdio.h>

const char *health_state_name(enum health_state state)
{
        switch (state) {
        case HEALTH_STARTING: return "starting";
        case HEALTH_OK:       return "ok";
        case HEALTH_DEGRADED: return "degraded";
        case HEALTH_STOPPING: return "stopping";
        }
        return "unknown";
}

void health_set_problem(struct health *health, enum health_problem kind, const char *fmt, ...)
{
        va_list ap;

        if ((unsigned)kind >= _PROBLEM_MAX)
                return;
        va_start(ap, fmt);
        vsnprintf(health->problems[kind], sizeof health->problems[kind], fmt, ap);
        va_end(ap);
}

void health_clear_problem(struct health *health, enum health_problem kind)
{
        if ((unsigned)kind < _PROBLEM_MAX)
                health->problems[kind][0] = '\0';
}

const char *health_worst_problem(const struct health *health)
{
        for (int i = 0; i < _PROBLEM_MAX; i++)
                if (health->problems[i][0])
                        return health->problems[i];
        return NULL;
}

int health_save(sqlite3 *db, const struct health *health, int64_t pid, uint64_t started_realtime_usec)
{
        static const char sql[] =
                "INSERT INTO health (id, pid, started_at, updated_at, state, status) "
                "VALUES (1, ?1, ?2, ?3, ?4, ?5) "
                "ON CONFLICT (id) DO UPDATE SET pid = ?1, started_at = ?2, updated_at = ?3, "
                "state = ?4, status = ?5";
        sqlite3_stmt *st;
        int rc;

        rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, pid);
                sqlite3_bind_int64(st, 2, (int64_t)(started_realtime_usec / 1000000));
                sqlite3_bind_int64(st, 3, (int64_t)(now_realtime_usec() / 1000000));
                sqlite3_bind_text(st, 4, health_state_name(health->state), -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 5, health->status, -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
                sqlite3_finalize(st);
        }
        if (rc != SQLITE_DONE && rc != SQLITE_OK) {
                log_warning("cannot update the health row: %s", sqlite3_errstr(rc));
                return db_errno(rc);
        }
        return 0;
}
