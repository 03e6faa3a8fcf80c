/* SPDX-License-Identifier: MIT */
/* jada-agent sessions: the history of Claude sessions, with completion and
 * turn-limit rates over a window. */
#include "jada/budget.h"
#include "jada/session-store.h"
#include "jada/cli.h"
#include "jada/queue.h"
#include "jada/config.h"
#include "jada/store.h"
#include "jada/report.h"
#include "jada/util.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>






static void print_human(const struct session_row *rows, size_t n, const struct session_summary *s,
                        const char *window, const struct task_cost *costs, size_t n_costs)
{
        if (n > 0)
                printf("%6s  %6s  %-20s  %8s  %-15s  %5s  %9s\n", "ID", "TASK", "STARTED", "DURATION", "OUTCOME",
                       "TURNS", "COST");
        for (size_t i = 0; i < n; i++) {
                const struct session_row *r = &rows[i];
                char started[32], duration[32] = "running", task[24] = "-";
                if (r->ended_at >= r->started_at && r->outcome)
                        duration_format(duration, sizeof duration,
                                               (uint64_t)(r->ended_at - r->started_at) * USEC_PER_SEC);
                if (r->task_id)
                        snprintf(task, sizeof task, "%lld", (long long)r->task_id);
                printf("%6lld  %6s  %-20s  %8s  %-15s  %5lld  %9.4f%s", (long long)r->id, task,
                       format_utc(started, sizeof started, (uint64_t)r->started_at * USEC_PER_SEC), duration,
                       r->outcome ? r->outcome : "running", (long long)r->turns, r->cost_usd,
                       r->resumed ? "  (resumed)" : "");
                if (r->uncounted)
                        printf("  (not counted: %s)", r->uncounted);
                putchar('\n');
        }
        if (n > 0)
                putchar('\n');
        printf("%zu session%s in the last %s, %zu finished", s->total, s->total == 1 ? "" : "s", window, s->finished);
        if (s->finished)
                printf(": %.0f%% done, %.0f%% hit the turn limit", 100.0 * (double)s->done / (double)s->finished,
                       100.0 * (double)s->max_turns / (double)s->finished);
        printf("; cost $%.4f\n", s->cost);
        if (s->uncounted)
                printf("%zu more never reached the model and took no slot of the budget (marked \"not counted\")\n",
                       s->uncounted);
        if (s->finished && (double)s->max_turns / (double)s->finished > MAX_TURNS_WARNING)
                printf("warning: more than 30%% of sessions hit the turn limit: raise max_turns or split tasks\n");
        for (size_t i = 0; i < n_costs; i++)
                if (costs[i].cap_usd > 0)
                        printf("task %lld: $%.4f of its $%.2f cost cap%s\n", (long long)costs[i].id,
                               costs[i].cost_usd, costs[i].cap_usd,
                               costs[i].cost_usd >= costs[i].cap_usd ? " (reached: jada-agent task budget ID USD)" : "");
}

int cmd_sessions(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
                CLI_COMMON_LONG,
                { "since", required_argument, NULL, 's' },
                { "json", no_argument, NULL, 'j' },
                {}
        };
        struct session_row *rows = NULL;
        struct task_cost *costs = NULL;
        size_t n_costs = 0;
        struct jada_config *config = NULL;
        const char *window = "7d";
        uint64_t usec = 7 * 86400 * USEC_PER_SEC;
        struct store *db = NULL;
        bool json = false;
        size_t n = 0;
        int64_t since;
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "s:j", opts, NULL)) != -1) {
                switch (c) {
                case 's':
                        if (duration_parse(optarg, &usec) < 0) {
                                fprintf(stderr, "jada-agent: --since '%s' is not a duration (e.g. 7d, 24h)\n", optarg);
                                return EXIT_USAGE;
                        }
                        window = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                default:
                        if (cli_common_option(cli, c) < 0)
                                return cli_usage("sessions");
                }
        }
        if (optind != argc)
                return cli_usage("sessions");
        r = cli_open_db(cli, &config, &db);
        if (r != 0)
                return r;
        since = (int64_t)((now_realtime_usec() - (usec < now_realtime_usec() ? usec : 0)) / USEC_PER_SEC);
        r = session_store_list(db, since, &rows, &n);
        if (r == 0)
                n_costs = report_task_costs(db, rows, n, config->claude.max_cost_per_task_usd, &costs);
        store_close(db);
        config_free(config);
        if (r < 0) {
                fprintf(stderr, "jada-agent: cannot read the sessions: %s\n", cli_db_error(r));
                return EXIT_ERROR;
        }
        struct session_summary s = report_summarize(rows, n);
        if (json) {
                json_t *doc = report_sessions(rows, n, &s, since, costs, n_costs);
                if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII) < 0)
                        abort();
                putchar('\n');
                json_decref(doc);
        }
        else
                print_human(rows, n, &s, window, costs, n_costs);
        session_rows_free(rows, n);
        free(costs);
        return EXIT_OK;
}
