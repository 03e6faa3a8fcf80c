/* SPDX-License-Identifier: MIT */
/* The health audit behind `jada-agent status` and /api/status. */
#include "jada/status-report.h"
#include "jada/report.h"
#include "jada/budget.h"
#include "jada/oauth.h"
#include "jada/oauth-token.h"
#include "jada/queue.h"
#include "jada/sync.h"
#include "jada/util.h"

#include <errno.h>
#include <fts.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

const char *const status_verdict_names[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };

static void add_problem(struct report *r, enum verdict severity, const char *kind, const char *text,
                        const char *fix)
{
        if (severity > r->verdict)
                r->verdict = severity;
        json_array_append_new(r->problems, json_pack("{s:s, s:o, s:o, s:o}", "severity", status_verdict_names[severity],
                                                     "kind", report_text(kind), "text", report_text(text),
                                                     "fix", report_text(fix)));
}

/* A problem the daemon reported in its health row: how bad it is and the
 * fix come from health.c's one table. */
static void daemon_problem(struct report *r, const char *kind, const char *text, const char *config_path)
{
        int k = health_problem_from_name(kind);
        _cleanup_free_ char *fix = NULL;

        if (k < 0) { /* a newer daemon's kind */
                add_problem(r, VERDICT_WARNING, kind, text, "journalctl -u jada-agent");
                return;
        }
        fix = k == PROBLEM_CONFIG_RELOAD
                ? xasprintf("jada-agent check-config -c %s, then: systemctl reload jada-agent", config_path)
                : xstrdup(health_problem_fix((enum health_problem)k));
        add_problem(r, (enum verdict)health_problem_severity((enum health_problem)k), kind, text, fix);
}

/* VmRSS and RssAnon in kB, CPU seconds, of a process; false if it is gone. */
static bool process_facts(int64_t pid, long *rss_kb, long *anon_kb, double *cpu_s)
{
        _cleanup_free_ char *status_path = xasprintf("/proc/%lld/status", (long long)pid);
        _cleanup_free_ char *stat_path = xasprintf("/proc/%lld/stat", (long long)pid);
        _cleanup_free_ char *status = NULL, *stat = NULL;
        unsigned long long utime = 0, stime = 0;
        const char *p;
        size_t size;

        *rss_kb = *anon_kb = 0;
        *cpu_s = 0;
        if (read_file_capped(status_path, 65536, &status, &size) < 0 ||
            read_file_capped(stat_path, 4096, &stat, &size) < 0)
                return false;
        if ((p = strstr(status, "VmRSS:")))
                *rss_kb = strtol(p + 6, NULL, 10);
        if ((p = strstr(status, "RssAnon:")))
                *anon_kb = strtol(p + 8, NULL, 10);
        p = strrchr(stat, ')');
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) == 2)
                *cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
        return true;
}

/* Whether a pid is `jada-agent run` (the health row's pid may have been
 * reused). By its command line rather than its name, so that the daemon
 * under a wrapper that keeps the arguments (valgrind, in `make valgrind`)
 * is still itself. */
static bool process_is_daemon(int64_t pid)
{
        _cleanup_free_ char *path = xasprintf("/proc/%lld/cmdline", (long long)pid);
        _cleanup_free_ char *cmdline = NULL;
        size_t size;

        if (read_file_capped(path, 65536, &cmdline, &size) < 0)
                return false;
        for (size_t i = 0; i < size; i += strlen(cmdline + i) + 1) {
                const char *arg = cmdline + i, *base = strrchr(arg, '/');
                size_t next = i + strlen(arg) + 1;

                base = base ? base + 1 : arg;
                if (strcmp(base, "jada-agent") == 0 && next < size && strcmp(cmdline + next, "run") == 0)
                        return true;
        }
        return false;
}

/* The state dir's size as du counts it (allocated blocks), not crossing
 * into other filesystems. */
static int64_t state_dir_bytes(const char *dir)
{
        char *const paths[] = { (char *)dir, NULL };
        uint64_t bytes = 0;
        FTSENT *e;
        FTS *fts;

        fts = fts_open(paths, FTS_PHYSICAL | FTS_XDEV | FTS_NOCHDIR, NULL);
        if (!fts)
                return -1;
        while ((e = fts_read(fts)))
                if (e->fts_info != FTS_DP && e->fts_statp && e->fts_info != FTS_NS && e->fts_info != FTS_ERR &&
                    e->fts_info != FTS_DNR)
                        bytes += (uint64_t)e->fts_statp->st_blocks * 512;
        fts_close(fts);
        return (int64_t)bytes;
}


static json_t *oauth_facts(const struct jada_config *config, int64_t now)
{
        json_t *oauth = json_pack("{s:b}", "enabled", config->sheets.enabled);
        _cleanup_free_ char *path = xasprintf("%s/%s", config->daemon.state_dir, OAUTH_TOKEN_FILE);
        struct oauth_token tok = { 0 };
        char *reason = NULL, buf[32];

        if (!config->sheets.enabled)
                return oauth;
        json_object_set_new(oauth, "auth", json_string(config->sheets.auth == SHEETS_AUTH_OAUTH ? "oauth"
                                                                                                 : "service_account"));
        if (config->sheets.auth != SHEETS_AUTH_OAUTH)
                return oauth;
        if (oauth_token_load(path, true, &tok, &reason, NULL) == 0) {
                json_object_set_new(oauth, "token", json_string(tok.needs_reauth ? "needs_reauth" : "ok"));
                json_object_set_new(oauth, "refresh_token_age_seconds",
                                    tok.obtained_at ? json_integer(now - tok.obtained_at) : json_null());
                json_object_set_new(oauth, "access_token_expires_at",
                                    tok.expires_at ? json_string(format_utc(buf, sizeof buf,
                                                                            (uint64_t)tok.expires_at * USEC_PER_SEC))
                                                   : json_null());
                json_object_set_new(oauth, "last_error", tok.last_error ? json_string(tok.last_error) : json_null());
        } else {
                json_object_set_new(oauth, "token", json_string("none"));
                json_object_set_new(oauth, "reason", json_string(reason ? reason : "unreadable"));
        }
        oauth_token_clear(&tok);
        free(reason);
        return oauth;
}

void status_gather(const struct jada_config *config, struct store *db, bool walk_state_dir, struct status_facts *f)
{
        int64_t day;
        struct statvfs vfs;

        *f = (struct status_facts){ .config = config, .now = now_seconds() };
        day = budget_day_start(f->now);
        /* The daemon: its row, and whether that pid is still a jada-agent. */
        f->row_r = db ? health_load(db, &f->row) : -ENOTCONN;
        if (!db) {
                /* A fleet's database that cannot be reached: the daemon's
                 * own lock file still says whether it runs. */
                _cleanup_free_ char *lock = xasprintf("%s/daemon.lock", config->daemon.state_dir), *text = NULL;
                int64_t pid = 0;
                if (read_file_capped(lock, 64, &text, NULL) == 0) {
                        text[strcspn(text, "\n")] = '\0';
                        if (parse_int64(text, &pid) == 0 && pid > 0 && pid < INT32_MAX) {
                                f->row.pid = pid;
                                f->row.state = xstrdup("unknown");
                                f->row.updated_at = f->now; /* alive, as far as the lock says */
                                f->row.status = xstrdup("");
                                f->row.details = xstrdup("{}");
                                f->row_r = 0;
                        }
                }
        }
        f->running = f->row_r == 0 && f->row.pid > 0 &&
                     process_facts(f->row.pid, &f->rss_kb, &f->anon_kb, &f->cpu_s) &&
                     process_is_daemon(f->row.pid) && strcmp(f->row.state, "stopping") != 0;

        f->health = (struct health_facts){
                .state_dir = config->daemon.state_dir, .disk_free_share = -1,
                .budget = { .now = f->now, .sessions_per_day = config->claude.sessions_per_day,
                            .daily_cost_limit_usd = config->claude.daily_cost_limit_usd },
        };
        if (db) {
                (void)queue_counts(db, f->health.tasks);
                (void)session_store_spent_since(db, day, &f->health.budget.sessions_today,
                                                &f->health.budget.cost_today_usd);
                (void)session_store_outcomes_since(db, f->now - 7 * 86400, &f->week);
                f->health.week_finished = f->week.finished;
                f->health.week_max_turns = f->week.max_turns;
                (void)sync_store_history(db, &f->sync);
        }
        f->dir_bytes = walk_state_dir ? state_dir_bytes(config->daemon.state_dir) : -1;
        if (statvfs(config->daemon.state_dir, &vfs) == 0 && vfs.f_blocks > 0)
                f->health.disk_free_share = (double)vfs.f_bavail / (double)vfs.f_blocks;
        f->oauth = oauth_facts(config, f->now);
        if (db)
                (void)usage_load(db, &f->usage);
        f->fleet = *config->database.url != '\0';
        if (f->fleet && !db)
                snprintf(f->fleet_error, sizeof f->fleet_error, "the fleet's database cannot be reached");
        else if (f->fleet)
                (void)node_rows_load(db, &f->nodes, &f->n_nodes, f->fleet_error, sizeof f->fleet_error);
}

void status_facts_clear(struct status_facts *f)
{
        health_row_clear(&f->row);
        sync_history_clear(&f->sync);
        json_decref(f->oauth);
        node_rows_free(f->nodes, f->n_nodes);
}

void status_add_health_problem(struct report *rep, enum health_problem kind, const char *text)
{
        json_t *p;
        size_t i;

        json_array_foreach(rep->problems, i, p)
                if (strcmp(json_string_value(json_object_get(p, "kind")) ?: "", health_problem_name(kind)) == 0)
                        return;
        add_problem(rep, (enum verdict)health_problem_severity(kind), health_problem_name(kind), text,
                    health_problem_fix(kind));
}

/* The nodes that missed their heartbeat past the lease, by the database's
 * clock; a database that cannot be read is the fleet's problem. */
static void assess_fleet(const struct status_facts *f, struct report *rep)
{
        char text[192] = "";
        size_t used = 0;

        if (*f->fleet_error) {
                status_add_health_problem(rep, PROBLEM_FLEET_DATABASE, f->fleet_error);
                return;
        }
        for (size_t i = 0; i < f->n_nodes && used < sizeof text; i++) {
                const struct node_row *r = &f->nodes[i];
                if (strcmp(node_row_state(r, f->config->database.lease), "lost") != 0)
                        continue;
                int w = snprintf(text + used, sizeof text - used, "%snode %s (%s) missed its heartbeat for %lld s",
                                 used ? "; " : "", r->name, r->host, (long long)r->heartbeat_age);
                if (w < 0)
                        break;
                used += (size_t)w;
        }
        if (*text)
                status_add_health_problem(rep, PROBLEM_NODE_LOST, text);
}

void status_assess(const struct status_facts *f, const char *config_path, struct report *rep)
{
        uint64_t stale_after = 3 * f->config->daemon.poll_interval / USEC_PER_SEC;
        const int64_t *counts = f->health.tasks;
        struct health_assessment a;
        char buf[256];

        if (f->row_r == -ENOENT || !f->running)
                add_problem(rep, VERDICT_UNKNOWN, "not_running", "the daemon is not running",
                            "systemctl start jada-agent; journalctl -u jada-agent -n 50");
        else if (f->row_r < 0)
                add_problem(rep, VERDICT_UNKNOWN, "database", "cannot read the health row", "jada-agent check-config");
        else if ((uint64_t)(f->now - f->row.updated_at) > stale_after)
                add_problem(rep, VERDICT_UNKNOWN, "stale",
                            "the daemon has not reported for more than 3 poll intervals (hung?)",
                            "journalctl -u jada-agent -n 50; systemctl restart jada-agent");

        /* What the daemon reported, but for the states of the world: those
         * this command rules on itself, from the db, by the same rule. */
        if (f->running && f->row_r == 0) {
                json_t *details = json_loads(f->row.details, 0, NULL), *p;
                size_t i;
                json_array_foreach(json_object_get(details, "problems"), i, p) {
                        const char *kind = json_string_value(json_object_get(p, "kind")) ?: "unknown";
                        int k = health_problem_from_name(kind);
                        if (k >= 0 && health_assessed((enum health_problem)k))
                                continue;
                        daemon_problem(rep, kind, json_string_value(json_object_get(p, "text")) ?: "", config_path);
                }
                json_decref(details);
        }
        if (f->fleet)
                assess_fleet(f, rep);
        /* A park is the db's fact, written before the daemon next publishes
         * its health row: rule on it from the db, as for the budget. */
        if (usage_parked(&f->usage, f->now))
                status_add_health_problem(rep, PROBLEM_USAGE_LIMIT, usage_park_text(&f->usage, buf, sizeof buf));
        health_assess(&f->health, &a);
        for (int k = 0; k < _PROBLEM_MAX; k++)
                if (a.found[k])
                        add_problem(rep, (enum verdict)a.severity[k], health_problem_name((enum health_problem)k),
                                    a.text[k], health_problem_fix((enum health_problem)k));
        /* Only this audit reports failed tasks: they are not an alert. */
        if (counts[TASK_FAILED] > 0) {
                snprintf(buf, sizeof buf, "%lld task%s failed", (long long)counts[TASK_FAILED],
                         counts[TASK_FAILED] == 1 ? "" : "s");
                add_problem(rep, VERDICT_WARNING, "failed", buf, "jada-agent task show ID; jada-agent task retry ID");
        }
}

static json_t *time_or_null(int64_t t)
{
        char buf[32];
        return t > 0 ? json_string(format_utc(buf, sizeof buf, (uint64_t)t * USEC_PER_SEC)) : json_null();
}

static json_t *usage_json(const struct usage_state *u, int64_t now)
{
        const struct stream_rate_limit *l = &u->last;

        return json_pack("{s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                         "parked", usage_parked(u, now),
                         "parked_until", usage_parked(u, now) ? time_or_null(u->parked_until) : json_null(),
                         "parked_by", usage_parked(u, now) ? json_string(u->park_type) : json_null(),
                         "type", l->seen ? json_string(l->type) : json_null(),
                         "status", l->seen ? json_string(l->status) : json_null(),
                         "utilization", l->seen && l->utilization >= 0 ? json_real(l->utilization) : json_null(),
                         "resets_at", l->seen ? time_or_null(l->resets_at) : json_null(),
                         "seen_at", time_or_null(u->last_at));
}

json_t *status_report_json(const struct status_facts *f, const struct report *rep)
{
        const struct jada_config *config = f->config;
        const int64_t *counts = f->health.tasks;
        double completion = f->week.finished ? (double)f->week.done / (double)f->week.finished : 0;
        double max_turns = f->week.finished ? (double)f->week.max_turns / (double)f->week.finished : 0;
        int64_t day = budget_day_start(f->now);
        json_t *doc;

        doc = json_pack("{s:s, s:i, s:{s:b, s:o, s:o, s:o, s:I, s:I, s:f, s:o}, "
                        "s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, "
                        "s:{s:I, s:i, s:f, s:f, s:o}, "
                        "s:{s:I, s:I, s:f, s:f}, "
                        "s:{s:b, s:o, s:o, s:I, s:o}, "
                        "s:O, s:{s:s, s:o, s:f}, s:o, s:O}",
                        "verdict", status_verdict_names[rep->verdict], "exit_code", (int)rep->verdict,
                        "service", "running", f->running,
                        "pid", f->running ? json_integer(f->row.pid) : json_null(),
                        "started_at", f->running ? time_or_null(f->row.started_at) : json_null(),
                        "updated_at", time_or_null(f->row.updated_at),
                        "rss_kb", (json_int_t)f->rss_kb, "rss_anon_kb", (json_int_t)f->anon_kb, "cpu_seconds", f->cpu_s,
                        "status", report_text(f->row.status ? f->row.status : ""),
                        "queue", "queued", (json_int_t)counts[TASK_QUEUED], "running", (json_int_t)counts[TASK_RUNNING],
                        "needs_you", (json_int_t)counts[TASK_NEEDS_YOU], "failed", (json_int_t)counts[TASK_FAILED],
                        "done", (json_int_t)counts[TASK_DONE], "cancelled", (json_int_t)counts[TASK_CANCELLED],
                        "waiting", (json_int_t)counts[TASK_WAITING],
                        "budget", "sessions_today", (json_int_t)f->health.budget.sessions_today,
                        "sessions_per_day", (int)config->claude.sessions_per_day,
                        "cost_today_usd", f->health.budget.cost_today_usd,
                        "daily_cost_limit_usd", config->claude.daily_cost_limit_usd,
                        "resets_at", time_or_null(day + 86400),
                        "sessions_7d", "total", (json_int_t)f->week.total, "finished", (json_int_t)f->week.finished,
                        "completion_rate", completion, "max_turns_rate", max_turns,
                        "sheets", "enabled", config->sheets.enabled,
                        "last_ok_at", time_or_null(f->sync.last_ok_at),
                        "last_run_at", time_or_null(f->sync.last_run_at),
                        "failing_runs", (json_int_t)f->sync.failing_runs,
                        "last_error", f->sync.last_error ? json_string(f->sync.last_error) : json_null(),
                        "oauth", f->oauth,
                        "disk", "state_dir", config->daemon.state_dir,
                        "state_dir_bytes", f->dir_bytes >= 0 ? json_integer(f->dir_bytes) : json_null(),
                        "free_share", f->health.disk_free_share,
                        "usage_limit", usage_json(&f->usage, f->now),
                        "problems", rep->problems);
        if (!doc)
                abort();
        if (f->fleet)
                json_object_set_new(doc, "fleet",
                                    json_pack("{s:o, s:o}", "nodes",
                                              *f->fleet_error ? json_array()
                                                              : node_rows_json(f->nodes, f->n_nodes,
                                                                               config->database.lease),
                                              "error", *f->fleet_error ? json_string(f->fleet_error) : json_null()));
        return doc;
}

