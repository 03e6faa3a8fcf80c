/* SPDX-License-Identifier: MIT */
/*
 * jada-agent status: the whole health audit in one command, from the db and
 * /proc. Exit codes of monitoring plugins: 0 OK, 1 WARNING, 2 CRITICAL,
 * 3 UNKNOWN (the daemon is not running, or its health row is older than
 * three poll intervals).
 */
#include "jada/sync-store.h"
#include "jada/budget.h"
#include "jada/session-store.h"
#include "jada/cli.h"
#include "jada/config.h"
#include "jada/db.h"
#include "jada/health.h"
#include "jada/oauth.h"
#include "jada/oauth-token.h"
#include "jada/queue.h"
#include "jada/sync.h"
#include "jada/util.h"

#include <errno.h>
#include <fts.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

enum verdict { VERDICT_OK, VERDICT_WARNING, VERDICT_CRITICAL, VERDICT_UNKNOWN };
static const char *const verdict_names[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };

#define MAX_TURNS_WARNING 0.30
#define DISK_WARNING 0.10
#define DISK_CRITICAL 0.05

struct report {
        enum verdict verdict;
        json_t *problems;               /* [{severity, kind, text, fix}] */
};

static void add_problem(struct report *r, enum verdict severity, const char *kind, const char *text,
                        const char *fix)
{
        if (severity > r->verdict)
                r->verdict = severity;
        json_array_append_new(r->problems, json_pack("{s:s, s:s, s:s, s:s}", "severity", verdict_names[severity],
                                                     "kind", kind, "text", text, "fix", fix));
}

/* The fix for each problem the daemon reports, and how bad it is. */
static void daemon_problem(struct report *r, const char *kind, const char *text, const char *config_path)
{
        static const struct {
                const char *kind;
                enum verdict severity;
                const char *fix;
        } fixes[] = {
                { "api_key", VERDICT_CRITICAL,
                  "put a working key in the credential anthropic-api-key (run by hand: ANTHROPIC_API_KEY or "
                  "CLAUDE_CODE_OAUTH_TOKEN), then restart the daemon: systemctl restart jada-agent" },
                { "google_token", VERDICT_CRITICAL, "jada-agent auth google" },
                { "claude_command", VERDICT_CRITICAL, "fix [claude] command, then: systemctl reload jada-agent" },
                { "database", VERDICT_CRITICAL, "check the disk and permissions of the state directory" },
                { "sync_failing", VERDICT_WARNING,
                  "journalctl -u jada-agent -g sync; check spreadsheet_id, range and the sheet's sharing" },
                { "config_reload", VERDICT_WARNING, "jada-agent check-config, then: systemctl reload jada-agent" },
        };
        for (size_t i = 0; i < sizeof fixes / sizeof fixes[0]; i++)
                if (strcmp(fixes[i].kind, kind) == 0) {
                        _cleanup_free_ char *fix = strcmp(kind, "config_reload") == 0
                                ? xasprintf("jada-agent check-config -c %s, then: systemctl reload jada-agent",
                                            config_path)
                                : xstrdup(fixes[i].fix);
                        add_problem(r, fixes[i].severity, kind, text, fix);
                        return;
                }
        add_problem(r, VERDICT_WARNING, kind, text, "journalctl -u jada-agent");
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

static const char *ago(char *buf, size_t size, int64_t then, int64_t now)
{
        char d[32];
        if (then <= 0)
                return "never";
        duration_format(d, sizeof d, (uint64_t)(now > then ? now - then : 0) * USEC_PER_SEC);
        snprintf(buf, size, "%s ago", d);
        return buf;
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = { CLI_COMMON_LONG, { "json", no_argument, NULL, 'j' }, {} };
        struct report rep = { .verdict = VERDICT_OK, .problems = json_array() };
        struct jada_config *config = NULL;
        struct health_row row = { 0 };
        struct session_outcomes week = { 0 };
        struct sync_history sync = { 0 };
        int64_t counts[_TASK_STATE_MAX] = { 0 }, now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);
        int64_t day = budget_day_start(now), sessions_today = 0;
        double cost_today = 0, max_turns_rate = 0, completion = 0;
        long rss = 0, anon = 0;
        double cpu = 0, free_share = -1;
        int64_t dir_bytes;
        bool running = false, json = false;
        char buf[128], buf2[64], resets[32];
        uint64_t stale_after;
        struct statvfs vfs;
        sqlite3 *db = NULL;
        json_t *doc;
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "j", opts, NULL)) != -1) {
                if (c == 'j')
                        json = true;
                else if (cli_common_option(cli, c) < 0)
                        return cli_usage("status");
        }
        if (optind != argc)
                return cli_usage("status");
        r = cli_open_db(cli, &config, &db);
        if (r != 0)
                return r == EXIT_CONFIG ? EXIT_CONFIG : VERDICT_UNKNOWN;

        /* The daemon: its row, and whether that pid is still a jada-agent. */
        r = health_load(db, &row);
        stale_after = 3 * config->daemon.poll_interval / USEC_PER_SEC;
        if (r == 0 && row.pid > 0 && process_facts(row.pid, &rss, &anon, &cpu) && process_is_daemon(row.pid) &&
            strcmp(row.state, "stopping") != 0)
                running = true;
        if (r == -ENOENT || !running)
                add_problem(&rep, VERDICT_UNKNOWN, "not_running", "the daemon is not running",
                            "systemctl start jada-agent; journalctl -u jada-agent -n 50");
        else if (r < 0)
                add_problem(&rep, VERDICT_UNKNOWN, "database", "cannot read the health row", "jada-agent check-config");
        else if ((uint64_t)(now - row.updated_at) > stale_after)
                add_problem(&rep, VERDICT_UNKNOWN, "stale",
                            "the daemon has not reported for more than 3 poll intervals (hung?)",
                            "journalctl -u jada-agent -n 50; systemctl restart jada-agent");

        if (running && r == 0) {
                json_t *details = json_loads(row.details, 0, NULL), *p;
                size_t i;
                json_array_foreach(json_object_get(details, "problems"), i, p) {
                        const char *kind = json_string_value(json_object_get(p, "kind")) ?: "unknown";
                        /* These this command works out from the db itself, below. */
                        if (strcmp(kind, "disk") == 0 || strcmp(kind, "budget_spent") == 0 ||
                            strcmp(kind, "max_turns") == 0 || strcmp(kind, "needs_you") == 0)
                                continue;
                        daemon_problem(&rep, kind, json_string_value(json_object_get(p, "text")) ?: "",
                                       cli->config_path);
                }
                json_decref(details);
        }

        (void)queue_counts(db, counts);
        (void)session_store_count_since(db, day, &sessions_today);
        (void)session_store_cost_since(db, day, &cost_today);
        (void)session_store_outcomes_since(db, now - 7 * 86400, &week);
        (void)sync_store_history(db, &sync);
        if (week.finished > 0) {
                completion = (double)week.done / (double)week.finished;
                max_turns_rate = (double)week.max_turns / (double)week.finished;
        }

        if (counts[TASK_QUEUED] > 0 && sessions_today >= (int64_t)config->claude.sessions_per_day) {
                snprintf(buf, sizeof buf, "the day's %u sessions are spent while %lld tasks wait",
                         config->claude.sessions_per_day, (long long)counts[TASK_QUEUED]);
                add_problem(&rep, VERDICT_WARNING, "budget_spent", buf,
                            "they run after 00:00 UTC; raise [claude] sessions_per_day to run more");
        }
        if (week.finished >= 3 && max_turns_rate > MAX_TURNS_WARNING) {
                snprintf(buf, sizeof buf, "%.0f%% of sessions in 7 days hit the turn limit", 100 * max_turns_rate);
                add_problem(&rep, VERDICT_WARNING, "max_turns", buf,
                            "raise [claude] max_turns or split tasks (jada-agent sessions)");
        }
        if (counts[TASK_NEEDS_YOU] > 0) {
                snprintf(buf, sizeof buf, "%lld task%s need%s you", (long long)counts[TASK_NEEDS_YOU],
                         counts[TASK_NEEDS_YOU] == 1 ? "" : "s", counts[TASK_NEEDS_YOU] == 1 ? "s" : "");
                add_problem(&rep, VERDICT_WARNING, "needs_you", buf,
                            "jada-agent task list --state needs_you; jada-agent task reply ID TEXT");
        }
        if (counts[TASK_FAILED] > 0) {
                snprintf(buf, sizeof buf, "%lld task%s failed", (long long)counts[TASK_FAILED],
                         counts[TASK_FAILED] == 1 ? "" : "s");
                add_problem(&rep, VERDICT_WARNING, "failed", buf, "jada-agent task show ID; jada-agent task retry ID");
        }
        dir_bytes = state_dir_bytes(config->daemon.state_dir);
        if (statvfs(config->daemon.state_dir, &vfs) == 0 && vfs.f_blocks > 0) {
                free_share = (double)vfs.f_bavail / (double)vfs.f_blocks;
                if (free_share < DISK_WARNING) {
                        snprintf(buf, sizeof buf, "%.1f%% free on the state directory's filesystem", 100 * free_share);
                        add_problem(&rep, free_share < DISK_CRITICAL ? VERDICT_CRITICAL : VERDICT_WARNING, "disk",
                                    buf, "free space there (df -h; old work directories under STATE/work)");
                }
        }

        /* OAuth: what the token file says (the daemon's own view is in its
         * problems: google_token). */
        json_t *oauth = json_pack("{s:b}", "enabled", config->sheets.enabled);
        if (config->sheets.enabled) {
                _cleanup_free_ char *path = xasprintf("%s/%s", config->daemon.state_dir, OAUTH_TOKEN_FILE);
                struct oauth_token tok = { 0 };
                char *reason = NULL;
                json_object_set_new(oauth, "auth", json_string(config->sheets.auth == SHEETS_AUTH_OAUTH
                                                               ? "oauth" : "service_account"));
                if (config->sheets.auth == SHEETS_AUTH_OAUTH) {
                        if (oauth_token_load(path, true, &tok, &reason, NULL) == 0) {
                                json_object_set_new(oauth, "token", json_string(tok.needs_reauth ? "needs_reauth" : "ok"));
                                json_object_set_new(oauth, "refresh_token_age_seconds",
                                                    tok.obtained_at ? json_integer(now - tok.obtained_at) : json_null());
                                json_object_set_new(oauth, "access_token_expires_at",
                                                    tok.expires_at ? json_string(format_utc(buf, sizeof buf,
                                                                     (uint64_t)tok.expires_at * USEC_PER_SEC)) : json_null());
                                json_object_set_new(oauth, "last_error", tok.last_error ? json_string(tok.last_error)
                                                                                        : json_null());
                        } else {
                                json_object_set_new(oauth, "token", json_string("none"));
                                json_object_set_new(oauth, "reason", json_string(reason ? reason : "unreadable"));
                        }
                        oauth_token_clear(&tok);
                        free(reason);
                }
        }

        doc = json_pack("{s:s, s:i, s:{s:b, s:o, s:o, s:o, s:I, s:I, s:f, s:s}, "
                        "s:{s:I, s:I, s:I, s:I, s:I, s:I}, "
                        "s:{s:I, s:i, s:f, s:f, s:s}, "
                        "s:{s:I, s:I, s:f, s:f}, "
                        "s:{s:b, s:o, s:o, s:I, s:o}, "
                        "s:o, s:{s:s, s:I, s:f}, s:o}",
                        "verdict", verdict_names[rep.verdict], "exit_code", (int)rep.verdict,
                        "service", "running", running,
                        "pid", running ? json_integer(row.pid) : json_null(),
                        "started_at", running ? json_string(format_utc(buf, sizeof buf, (uint64_t)row.started_at * USEC_PER_SEC)) : json_null(),
                        "updated_at", row.updated_at ? json_string(format_utc(buf2, sizeof buf2, (uint64_t)row.updated_at * USEC_PER_SEC)) : json_null(),
                        "rss_kb", (json_int_t)rss, "rss_anon_kb", (json_int_t)anon, "cpu_seconds", cpu,
                        "status", row.status ? row.status : "",
                        "queue", "queued", (json_int_t)counts[TASK_QUEUED], "running", (json_int_t)counts[TASK_RUNNING],
                        "needs_you", (json_int_t)counts[TASK_NEEDS_YOU], "failed", (json_int_t)counts[TASK_FAILED],
                        "done", (json_int_t)counts[TASK_DONE], "cancelled", (json_int_t)counts[TASK_CANCELLED],
                        "budget", "sessions_today", (json_int_t)sessions_today,
                        "sessions_per_day", (int)config->claude.sessions_per_day,
                        "cost_today_usd", cost_today, "daily_cost_limit_usd", config->claude.daily_cost_limit_usd,
                        "resets_at", format_utc(resets, sizeof resets, (uint64_t)(day + 86400) * USEC_PER_SEC),
                        "sessions_7d", "total", (json_int_t)week.total, "finished", (json_int_t)week.finished,
                        "completion_rate", completion, "max_turns_rate", max_turns_rate,
                        "sheets", "enabled", config->sheets.enabled,
                        "last_ok_at", sync.last_ok_at ? json_string(format_utc(buf2, sizeof buf2, (uint64_t)sync.last_ok_at * USEC_PER_SEC)) : json_null(),
                        "last_run_at", sync.last_run_at ? json_integer(sync.last_run_at) : json_null(),
                        "failing_runs", (json_int_t)sync.failing_runs,
                        "last_error", sync.last_error ? json_string(sync.last_error) : json_null(),
                        "oauth", oauth,
                        "disk", "state_dir", config->daemon.state_dir, "state_dir_bytes", (json_int_t)dir_bytes,
                        "free_share", free_share,
                        "problems", rep.problems);
        if (!doc)
                abort();
        /* last_run_at as an ISO time too, like every other time here. */
        if (sync.last_run_at)
                json_object_set_new(json_object_get(doc, "sheets"), "last_run_at",
                                    json_string(format_utc(buf, sizeof buf, (uint64_t)sync.last_run_at * USEC_PER_SEC)));

        if (json) {
                if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII) < 0)
                        abort();
                putchar('\n');
        } else {
                json_t *p;
                size_t i;
                printf("jada-agent: %s\n", verdict_names[rep.verdict]);
                if (running) {
                        char up[32];
                        duration_format(up, sizeof up, (uint64_t)(now - row.started_at) * USEC_PER_SEC);
                        printf("  %-9s running, pid %lld, up %s, memory %.1f MB (own %.1f MB), CPU %.1f s\n", "service",
                               (long long)row.pid, up, rss / 1024.0, anon / 1024.0, cpu);
                        printf("  %-9s %s\n", "status", row.status);
                } else {
                        printf("  %-9s not running\n", "service");
                }
                printf("  %-9s %lld queued, %lld running, %lld need you, %lld failed, %lld done\n", "queue",
                       (long long)counts[TASK_QUEUED], (long long)counts[TASK_RUNNING],
                       (long long)counts[TASK_NEEDS_YOU], (long long)counts[TASK_FAILED], (long long)counts[TASK_DONE]);
                printf("  %-9s %lld/%u sessions today, $%.2f", "budget", (long long)sessions_today,
                       config->claude.sessions_per_day, cost_today);
                if (config->claude.daily_cost_limit_usd > 0)
                        printf(" of $%.2f", config->claude.daily_cost_limit_usd);
                printf("; resets 00:00 UTC\n");
                printf("  %-9s %lld in 7 days", "sessions", (long long)week.total);
                if (week.finished)
                        printf(", %.0f%% done, %.0f%% hit the turn limit", 100 * completion, 100 * max_turns_rate);
                putchar('\n');
                if (!config->sheets.enabled)
                        printf("  %-9s disabled\n", "sheets");
                else
                        printf("  %-9s %s, last good sync %s%s%s\n", "sheets",
                               sync.failing_runs ? "failing" : sync.runs ? "ok" : "not synced yet",
                               ago(buf, sizeof buf, sync.last_ok_at, now), sync.last_error ? "; last error: " : "",
                               sync.last_error ? sync.last_error : "");
                if (config->sheets.enabled) {
                        const char *tok = json_string_value(json_object_get(oauth, "token"));
                        json_t *age = json_object_get(oauth, "refresh_token_age_seconds");
                        printf("  %-9s %s, token %s", "oauth", json_string_value(json_object_get(oauth, "auth")),
                               tok ? tok : "-");
                        if (json_is_integer(age)) {
                                char a[32];
                                duration_format(a, sizeof a, (uint64_t)json_integer_value(age) * USEC_PER_SEC);
                                printf(", refresh token %s old%s", a,
                                       json_integer_value(age) > 6 * 86400 ? " (Testing apps lose it at 7 days)" : "");
                        }
                        putchar('\n');
                }
                if (free_share >= 0)
                        printf("  %-9s %s holds %.1f MB; %.0f%% free there\n", "disk", config->daemon.state_dir,
                               (double)dir_bytes / 1e6, 100 * free_share);
                if (json_array_size(rep.problems))
                        printf("problems:\n");
                json_array_foreach(rep.problems, i, p)
                        printf("  %-8s %s\n           → %s\n", json_string_value(json_object_get(p, "severity")),
                               json_string_value(json_object_get(p, "text")),
                               json_string_value(json_object_get(p, "fix")));
        }
        json_decref(doc);
        sync_history_clear(&sync);
        health_row_clear(&row);
        db_close(db);
        config_free(config);
        return (int)rep.verdict;
}
