/* SPDX-License-Identifier: MIT */
#include "jada/health.h"
#include "jada/db.h"
#include "jada/log.h"
#include "jada/util.h"

#include <stdarg.h>
#include <stdbool.h>
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

/* MESSAGE_IDs of the alerts, one for a problem and one for its recovery;
 * systemd/jada-agent.catalog has their texts. Never change a released one. */
static const struct {
        const char *name;
        const char *problem_id;
        const char *recovered_id;
} problem_kinds[_PROBLEM_MAX] = {
        [PROBLEM_API_KEY]        = { "api_key",        "3cffc81229714862b0213440807db794", "624b72ff957b4730b22d36dfb844365f" },
        [PROBLEM_GOOGLE_TOKEN]   = { "google_token",   "031fdb3625a540adbabb2c328c4f102d", "e0f35a58938e41ba9c34baecf999758a" },
        [PROBLEM_CLAUDE_COMMAND] = { "claude_command", "6e40e08f5d2e49c1bbdf486570a0f093", "1bf26c55f3f64e3b887cf74afb3d06ab" },
        [PROBLEM_SYNC]           = { "sync_failing",   "55dd449f7e57417baea4b476cea344eb", "6b5abc62e2da46a4be589a5fff26be90" },
        [PROBLEM_CONFIG_RELOAD]  = { "config_reload",  "2ef26d2ae91e45d8a7ce13f806dedc79", "f4913f1ad8ef4d1182faa91d130891d7" },
        [PROBLEM_DATABASE]       = { "database",       "79e8e38ecf2249d68ba1d8ab7da85708", "9df0ec9cb9564a7b8518c89f541cb8b7" },
};

void health_set_problem(struct health *health, enum health_problem kind, const char *fmt, ...)
{
        bool was_set;
        va_list ap;

        if ((unsigned)kind >= _PROBLEM_MAX)
                return;
        was_set = health->problems[kind][0] != '\0';
        va_start(ap, fmt);
        vsnprintf(health->problems[kind], sizeof health->problems[kind], fmt, ap);
        va_end(ap);
        if (!was_set) {
                _cleanup_free_ char *id = xasprintf("MESSAGE_ID=%s", problem_kinds[kind].problem_id);
                _cleanup_free_ char *alert = xasprintf("JADA_ALERT=%s", problem_kinds[kind].name);
                log_fields(LOG_ERR, JADA_FIELDS(id, alert), "ALERT: %s", health->problems[kind]);
        }
}

void health_clear_problem(struct health *health, enum health_problem kind)
{
        if ((unsigned)kind >= _PROBLEM_MAX || health->problems[kind][0] == '\0')
                return;
        {
                _cleanup_free_ char *id = xasprintf("MESSAGE_ID=%s", problem_kinds[kind].recovered_id);
                _cleanup_free_ char *alert = xasprintf("JADA_ALERT=%s", problem_kinds[kind].name);
                log_fields(LOG_NOTICE, JADA_FIELDS(id, alert), "RECOVERED: %s", health->problems[kind]);
        }
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
