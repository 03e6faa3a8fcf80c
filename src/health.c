/* SPDX-License-Identifier: MIT */
#include "jada/health.h"
#include "jada/store.h"
#include "jada/log.h"
#include "jada/util.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

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
 * systemd/jada-agent.catalog has their texts. Never change a released one.
 * The severity and the fix are what `jada-agent status` shows. */
static const struct {
        const char *name;
        const char *problem_id;
        const char *recovered_id;
        enum health_severity severity;
        const char *fix;
} problem_kinds[_PROBLEM_MAX] = {
        [PROBLEM_API_KEY]        = { "api_key",        "3cffc81229714862b0213440807db794", "624b72ff957b4730b22d36dfb844365f",
                                     SEVERITY_CRITICAL,
                                     "put a working key in the credential anthropic-api-key (run by hand: ANTHROPIC_API_KEY "
                                     "or CLAUDE_CODE_OAUTH_TOKEN), then restart the daemon: systemctl restart jada-agent" },
        [PROBLEM_GOOGLE_TOKEN]   = { "google_token",   "031fdb3625a540adbabb2c328c4f102d", "e0f35a58938e41ba9c34baecf999758a",
                                     SEVERITY_CRITICAL, "jada-agent auth google" },
        [PROBLEM_CLAUDE_COMMAND] = { "claude_command", "6e40e08f5d2e49c1bbdf486570a0f093", "1bf26c55f3f64e3b887cf74afb3d06ab",
                                     SEVERITY_CRITICAL, "fix [claude] command, then: systemctl reload jada-agent" },
        [PROBLEM_DISK]           = { "disk",           "9a3a083fca2b40d5b0262412a3f57e7f", "05a9825f0482485f8fc514e8a6411ced",
                                     SEVERITY_WARNING, "free space there (df -h; old work directories under STATE/work)" },
        [PROBLEM_BUDGET]         = { "budget_spent",   "282caa9f20534b1f8a85ded7cd32ac48", "53aa6194c48b4f96b2b5a25f23d46e91",
                                     SEVERITY_WARNING,
                                     "they run after 00:00 UTC; raise [claude] sessions_per_day to run more" },
        [PROBLEM_MAX_TURNS]      = { "max_turns",      "539f47b8caf84ee28bbae2c493097824", "45b7e4361c494f11a0c10ef8f7ca87ce",
                                     SEVERITY_WARNING, "raise [claude] max_turns or split tasks (jada-agent sessions)" },
        [PROBLEM_NEEDS_YOU]      = { "needs_you",      "3d14176fe0c8445f82cbba86e0bfa005", "d281c77872ae4113b21289aaa5e90483",
                                     SEVERITY_WARNING,
                                     "jada-agent task list --state needs_you; jada-agent task reply ID TEXT" },
        [PROBLEM_SYNC]           = { "sync_failing",   "55dd449f7e57417baea4b476cea344eb", "6b5abc62e2da46a4be589a5fff26be90",
                                     SEVERITY_WARNING,
                                     "journalctl -u jada-agent -g sync; check spreadsheet_id, range and the sheet's sharing" },
        [PROBLEM_CONFIG_RELOAD]  = { "config_reload",  "2ef26d2ae91e45d8a7ce13f806dedc79", "f4913f1ad8ef4d1182faa91d130891d7",
                                     SEVERITY_WARNING, "jada-agent check-config, then: systemctl reload jada-agent" },
        [PROBLEM_PROJECT]        = { "project",        "83f0b4bcd15f4240b87fb8757a8d7c30", "b343536fa2a34058a213b3c7c866cfd4",
                                     SEVERITY_WARNING,
                                     "jada-agent check-config; fix the project's path, or add the ReadWritePaths= it names, "
                                     "then: systemctl restart jada-agent" },
        [PROBLEM_USAGE_LIMIT]    = { "usage_limit",    "5077ffa172a04f0b9a499cf7c6c70842", "bdbef3be5d374838add8a25d28440e51",
                                     SEVERITY_WARNING,
                                     "nothing to do: sessions start again after the reset (jada-agent status shows it); "
                                     "a plan with higher limits, or fewer sessions_per_day, avoids it" },
        [PROBLEM_USAGE_WARNING]  = { "usage_warning",  "243713e684a24291b24c3288ce0c94a0", "63f1ffac3e6f47bda9ce2af415038b1c",
                                     SEVERITY_WARNING,
                                     "expect a pause at the limit; lower sessions_per_day or concurrency to spread the work" },
        [PROBLEM_WEB]            = { "web",            "2255eac98927449d9a1092903ba54ddb", "563061df70934df6b6eeed6c0ad7d343",
                                     SEVERITY_WARNING,
                                     "fix [web] listen (a free port) or the credential web-token, then: systemctl reload jada-agent" },
        [PROBLEM_FLEET_DATABASE] = { "fleet_database", "9b77d09db9ae4513b9d006b82cdf371e", "2f2ce1d866674a339f557714a4f703d7",
                                     SEVERITY_CRITICAL,
                                     "check that the PostgreSQL server of [database] url runs and answers; "
                                     "journalctl -u jada-agent -g database" },
        [PROBLEM_NODE_LOST]      = { "node_lost",      "71ca0c7c3ac948c29b5ab9c8f3c7914d", "0b0f4f78e69d480b9f010c3bed171296",
                                     SEVERITY_WARNING,
                                     "jada-agent nodes; look at that machine (systemctl status jada-agent there)" },
        [PROBLEM_DATABASE]       = { "database",       "79e8e38ecf2249d68ba1d8ab7da85708", "9df0ec9cb9564a7b8518c89f541cb8b7",
                                     SEVERITY_CRITICAL, "check the disk and permissions of the state directory" },
};

int health_problem_from_name(const char *name)
{
        for (int i = 0; name && i < _PROBLEM_MAX; i++)
                if (strcmp(problem_kinds[i].name, name) == 0)
                        return i;
        return -EINVAL;
}

enum health_severity health_problem_severity(enum health_problem kind)
{
        return (unsigned)kind < _PROBLEM_MAX ? problem_kinds[kind].severity : SEVERITY_WARNING;
}

const char *health_problem_fix(enum health_problem kind)
{
        return (unsigned)kind < _PROBLEM_MAX ? problem_kinds[kind].fix : "journalctl -u jada-agent";
}

/* Thresholds of the problems that are states of the world. */
#define DISK_WARNING 0.10
#define DISK_CRITICAL 0.05
#define MAX_TURNS_SHARE 0.30
#define MAX_TURNS_MIN_SESSIONS 3

bool health_assessed(enum health_problem kind)
{
        return kind == PROBLEM_DISK || kind == PROBLEM_BUDGET || kind == PROBLEM_MAX_TURNS ||
               kind == PROBLEM_NEEDS_YOU;
}

static void found(struct health_assessment *a, enum health_problem kind, enum health_severity severity,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void found(struct health_assessment *a, enum health_problem kind, enum health_severity severity,
                  const char *fmt, ...)
{
        va_list ap;

        a->found[kind] = true;
        a->severity[kind] = severity;
        va_start(ap, fmt);
        vsnprintf(a->text[kind], sizeof a->text[kind], fmt, ap);
        va_end(ap);
}

void health_assess(const struct health_facts *f, struct health_assessment *ret)
{
        const int64_t *n = f->tasks;
        double share = f->week_finished ? (double)f->week_max_turns / (double)f->week_finished : 0;
        char why[160];

        *ret = (struct health_assessment){ 0 };
        if (f->disk_free_share >= 0 && f->disk_free_share < DISK_WARNING)
                found(ret, PROBLEM_DISK, f->disk_free_share < DISK_CRITICAL ? SEVERITY_CRITICAL : SEVERITY_WARNING,
                      "only %.1f%% free on the disk of %s", 100 * f->disk_free_share, f->state_dir);
        if (n[TASK_QUEUED] > 0 && !budget_allows(&f->budget, why, sizeof why))
                found(ret, PROBLEM_BUDGET, SEVERITY_WARNING, "%lld task%s wait: %s", (long long)n[TASK_QUEUED],
                      n[TASK_QUEUED] == 1 ? "" : "s", why);
        if (f->week_finished >= MAX_TURNS_MIN_SESSIONS && share > MAX_TURNS_SHARE)
                found(ret, PROBLEM_MAX_TURNS, SEVERITY_WARNING,
                      "%.0f%% of the week's sessions hit the turn limit: raise max_turns or split tasks", 100 * share);
        if (n[TASK_NEEDS_YOU] > 0)
                found(ret, PROBLEM_NEEDS_YOU, SEVERITY_WARNING,
                      "%lld task%s need%s you: jada-agent task list --state needs_you", (long long)n[TASK_NEEDS_YOU],
                      n[TASK_NEEDS_YOU] == 1 ? "" : "s", n[TASK_NEEDS_YOU] == 1 ? "s" : "");
}

bool health_has_problem(const struct health *health, enum health_problem kind)
{
        return (unsigned)kind < _PROBLEM_MAX && health->problems[kind][0] != '\0';
}

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
                if (health->on_alert)
                        health->on_alert(health->alert_userdata, false, problem_kinds[kind].name,
                                         health->problems[kind]);
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
                if (health->on_alert)
                        health->on_alert(health->alert_userdata, true, problem_kinds[kind].name,
                                         health->problems[kind]);
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

const char *health_problem_name(enum health_problem kind)
{
        return (unsigned)kind < _PROBLEM_MAX ? problem_kinds[kind].name : "unknown";
}

char *health_details_json(const struct health *health)
{
        json_t *problems = json_array(), *doc;
        char *out;

        for (int i = 0; i < _PROBLEM_MAX; i++)
                if (health->problems[i][0])
                        json_array_append_new(problems, json_pack("{s:s, s:s}", "kind", problem_kinds[i].name,
                                                                  "text", health->problems[i]));
        doc = json_pack("{s:o, s:{s:s, s:s, s:o, s:I, s:I}}", "problems", problems, "usage_limit",
                        "type", health->usage.type, "status", health->usage.status,
                        "utilization", health->usage.utilization >= 0 ? json_real(health->usage.utilization)
                                                                      : json_null(),
                        "resets_at", (json_int_t)health->usage.resets_at,
                        "parked_until", (json_int_t)health->usage.parked_until);
        out = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (!out)
                abort(); /* out of memory */
        return out;
}

int health_save(struct store *db, const struct health *health, int64_t pid, uint64_t started_realtime_usec)
{
        /* PostgreSQL-only: a fleet has a row per node. */
        const char *sql = store_is_postgresql(db)
                ? "INSERT INTO health (node, pid, started_at, updated_at, state, status, details) "
                  "VALUES (?7, ?1, ?2, ?3, ?4, ?5, ?6) "
                  "ON CONFLICT (node) DO UPDATE SET pid = ?1, started_at = ?2, updated_at = ?3, "
                  "state = ?4, status = ?5, details = ?6"
                : "INSERT INTO health (id, pid, started_at, updated_at, state, status, details) "
                  "VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6) "
                  "ON CONFLICT (id) DO UPDATE SET pid = ?1, started_at = ?2, updated_at = ?3, "
                  "state = ?4, status = ?5, details = ?6";
        _cleanup_free_ char *details = health_details_json(health);
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int rc;

        rc = store_prepare(db, sql, &st);
        if (rc < 0)
                return rc;
        store_bind_int64(st, 1, pid);
        store_bind_int64(st, 2, (int64_t)(started_realtime_usec / 1000000));
        store_bind_int64(st, 3, (int64_t)(now_realtime_usec() / 1000000));
        store_bind_text(st, 4, health_state_name(health->state));
        store_bind_text(st, 5, health->status);
        store_bind_text(st, 6, details);
        if (store_is_postgresql(db))
                store_bind_text(st, 7, store_node(db));
        rc = store_step(st);
        if (rc != STORE_DONE) {
                log_warning("cannot update the health row: %s", store_errmsg(db));
                return rc < 0 ? rc : -EIO;
        }
        return 0;
}

int health_load(struct store *db, struct health_row *ret)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int rc;

        *ret = (struct health_row){ 0 };
        rc = store_prepare(db, store_is_postgresql(db)
                                       ? "SELECT pid, started_at, updated_at, state, status, details FROM health "
                                         "WHERE node = ?1"
                                       : "SELECT pid, started_at, updated_at, state, status, details FROM health "
                                         "WHERE id = 1",
                           &st);
        if (rc < 0)
                return rc;
        if (store_is_postgresql(db))
                store_bind_text(st, 1, store_node(db));
        rc = store_step(st);
        if (rc == STORE_ROW) {
                const char *c;
                ret->pid = store_column_int64(st, 0);
                ret->started_at = store_column_int64(st, 1);
                ret->updated_at = store_column_int64(st, 2);
                ret->state = xstrdup((c = store_column_text(st, 3)) ? c : "");
                ret->status = xstrdup((c = store_column_text(st, 4)) ? c : "");
                ret->details = xstrdup((c = store_column_text(st, 5)) ? c : "{}");
        }
        if (rc == STORE_DONE)
                return -ENOENT;
        return rc == STORE_ROW ? 0 : rc;
}

void health_row_clear(struct health_row *row)
{
        free(row->state);
        free(row->status);
        free(row->details);
        *row = (struct health_row){ 0 };
}
