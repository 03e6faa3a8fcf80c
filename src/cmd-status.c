/* SPDX-License-Identifier: MIT */
/*
 * jada-agent status: the whole health audit in one command, from the db and
 * /proc. Exit codes of monitoring plugins: 0 OK, 1 WARNING, 2 CRITICAL,
 * 3 UNKNOWN (the daemon is not running, or its health row is older than
 * three poll intervals).
 */
#include "jada/sync-store.h"
#include "jada/usage.h"
#include "jada/budget.h"
#include "jada/session-store.h"
#include "jada/cli.h"
#include "jada/node.h"
#include "jada/pg.h"
#include "jada/config.h"
#include "jada/store.h"
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

#include "jada/status-report.h"

static const char *ago(char *buf, size_t size, int64_t then, int64_t now)
{
        char d[32];
        if (then <= 0)
                return "never";
        duration_format(d, sizeof d, (uint64_t)(now > then ? now - then : 0) * USEC_PER_SEC);
        snprintf(buf, size, "%s ago", d);
        return buf;
}

static void fleet_print(const struct jada_config *config, const struct status_facts *f)
{
        char me[64];

        if (*f->fleet_error) {
                printf("  %-9s the database cannot be read: %s\n", "fleet", f->fleet_error);
                return;
        }
        config_node_name(config, me, sizeof me);
        printf("  %-9s %zu node%s:", "fleet", f->n_nodes, f->n_nodes == 1 ? "" : "s");
        for (size_t i = 0; i < f->n_nodes; i++) {
                const struct node_row *r = &f->nodes[i];
                printf("%s %s%s %s", i ? ";" : "", r->name, strcmp(r->name, me) == 0 ? " (this one)" : "",
                       node_row_state(r, config->database.lease));
                if (r->leader && !r->stopped_at)
                        printf(", leader");
                if (r->sessions)
                        printf(", %lld session%s", (long long)r->sessions, r->sessions == 1 ? "" : "s");
        }
        putchar('\n');
}

static void print_human(const struct status_facts *f, const struct report *rep)
{
        const struct jada_config *config = f->config;
        const int64_t *counts = f->health.tasks;
        double completion = f->week.finished ? (double)f->week.done / (double)f->week.finished : 0;
        double max_turns = f->week.finished ? (double)f->week.max_turns / (double)f->week.finished : 0;
        char buf[64];
        json_t *p;
        size_t i;

        printf("jada-agent: %s\n", status_verdict_names[rep->verdict]);
        if (f->running) {
                char up[32];
                duration_format(up, sizeof up, (uint64_t)(f->now - f->row.started_at) * USEC_PER_SEC);
                printf("  %-9s running, pid %lld, up %s, memory %.1f MB (own %.1f MB), CPU %.1f s\n", "service",
                       (long long)f->row.pid, up, f->rss_kb / 1024.0, f->anon_kb / 1024.0, f->cpu_s);
                printf("  %-9s %s\n", "status", f->row.status);
        } else {
                printf("  %-9s not running\n", "service");
        }
        printf("  %-9s %lld queued, %lld running, %lld waiting, %lld need you, %lld failed, %lld done\n", "queue",
               (long long)counts[TASK_QUEUED], (long long)counts[TASK_RUNNING], (long long)counts[TASK_WAITING],
               (long long)counts[TASK_NEEDS_YOU], (long long)counts[TASK_FAILED], (long long)counts[TASK_DONE]);
        printf("  %-9s %lld/%u sessions today, $%.2f", "budget", (long long)f->health.budget.sessions_today,
               config->claude.sessions_per_day, f->health.budget.cost_today_usd);
        if (config->claude.daily_cost_limit_usd > 0)
                printf(" of $%.2f", config->claude.daily_cost_limit_usd);
        printf("; resets 00:00 UTC\n");
        printf("  %-9s %lld in 7 days", "sessions", (long long)f->week.total);
        if (f->week.finished)
                printf(", %.0f%% done, %.0f%% hit the turn limit", 100 * completion, 100 * max_turns);
        putchar('\n');
        if (!config->sheets.enabled)
                printf("  %-9s disabled\n", "sheets");
        else
                printf("  %-9s %s, last good sync %s%s%s\n", "sheets",
                       f->sync.failing_runs ? "failing" : f->sync.runs ? "ok" : "not synced yet",
                       ago(buf, sizeof buf, f->sync.last_ok_at, f->now), f->sync.last_error ? "; last error: " : "",
                       f->sync.last_error ? f->sync.last_error : "");
        if (config->sheets.enabled) {
                const char *tok = json_string_value(json_object_get(f->oauth, "token"));
                json_t *age = json_object_get(f->oauth, "refresh_token_age_seconds");
                printf("  %-9s %s, token %s", "oauth", json_string_value(json_object_get(f->oauth, "auth")),
                       tok ? tok : "-");
                if (json_is_integer(age)) {
                        char a[32];
                        duration_format(a, sizeof a, (uint64_t)json_integer_value(age) * USEC_PER_SEC);
                        printf(", refresh token %s old%s", a,
                               json_integer_value(age) > 6 * 86400 ? " (Testing apps lose it at 7 days)" : "");
                }
                putchar('\n');
        }
        if (usage_parked(&f->usage, f->now) || f->usage.last.seen) {
                const struct stream_rate_limit *l = &f->usage.last;
                char reset[32], until[32];
                printf("  %-9s", "limits");
                if (usage_parked(&f->usage, f->now))
                        printf(" parked by the %s limit until %s;", usage_limit_name(f->usage.park_type),
                               format_utc(until, sizeof until, (uint64_t)f->usage.parked_until * USEC_PER_SEC));
                if (l->seen) {
                        printf(" %s limit %s", usage_limit_name(l->type), *l->status ? l->status : "?");
                        if (l->utilization >= 0)
                                printf(", %.0f%% used", usage_percent(l->utilization));
                        if (l->resets_at > 0)
                                printf(", resets %s", format_utc(reset, sizeof reset, (uint64_t)l->resets_at * USEC_PER_SEC));
                }
                putchar('\n');
        }
        if (f->health.disk_free_share >= 0)
                printf("  %-9s %s holds %.1f MB; %.0f%% free there\n", "disk", config->daemon.state_dir,
                       (double)f->dir_bytes / 1e6, 100 * f->health.disk_free_share);
        if (f->fleet)
                fleet_print(f->config, f);
        if (json_array_size(rep->problems))
                printf("problems:\n");
        json_array_foreach(rep->problems, i, p)
                printf("  %-8s %s\n           → %s\n", json_string_value(json_object_get(p, "severity")),
                       json_string_value(json_object_get(p, "text")), json_string_value(json_object_get(p, "fix")));
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = { CLI_COMMON_LONG, { "json", no_argument, NULL, 'j' }, {} };
        struct report rep = { .verdict = VERDICT_OK, .problems = json_array() };
        struct jada_config *config = NULL;
        struct status_facts facts;
        bool json = false;
        struct store *db = NULL;
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
        if (r == EXIT_CONFIG)
                return EXIT_CONFIG;
        if (r != 0) {
                /* A fleet's database that cannot be reached is a problem to
                 * report (fleet_database), with what is known without it. */
                if (cli_load_config(cli, &config) != 0)
                        return VERDICT_UNKNOWN;
                if (!*config->database.url) {
                        config = config_free(config);
                        return VERDICT_UNKNOWN;
                }
                db = NULL;
        }

        status_gather(config, db, true, &facts);
        if (db)
                store_close(db);
        else if (facts.fleet) {
                /* libpq's own words for why (one more try, as short). */
                PGconn *conn = pg_connect_blocking(config->database.url, "jada-agent status", facts.fleet_error,
                                                   sizeof facts.fleet_error);
                if (conn) {
                        PQfinish(conn);
                        snprintf(facts.fleet_error, sizeof facts.fleet_error,
                                 "the fleet's database could not be used (see the message above)");
                }
        }
        status_assess(&facts, cli->config_path, &rep);
        if (json) {
                json_t *doc = status_report_json(&facts, &rep);
                if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII) < 0)
                        abort();
                putchar('\n');
                json_decref(doc);
        } else {
                print_human(&facts, &rep);
        }
        status_facts_clear(&facts);
        json_decref(rep.problems);
        config_free(config);
        return (int)rep.verdict;
}
