/* SPDX-License-Identifier: MIT */
/* jada-agent sessions: the history of Claude sessions, with completion and
 * turn-limit rates over a window. */
#include "jada/budget.h"
#include "jada/session-store.h"
#include "jada/cli.h"
#include "jada/queue.h"
#include "jada/config.h"
#include "jada/db.h"
#include "jada/util.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Above this share of sessions hitting max_turns, tasks are too big for it. */
#define MAX_TURNS_WARNING 0.30

/* Rates are over the sessions that count against the budget; those that
 * never reached the model are listed, and counted apart. */
struct summary {
        size_t total, finished, done, max_turns, uncounted;
        double cost;
};

static struct summary summarize(const struct session_row *rows, size_t n)
{
        struct summary s = { 0 };

        for (size_t i = 0; i < n; i++) {
                if (rows[i].uncounted) {
                        s.uncounted++;
                        continue;
                }
                s.total++;
                s.cost += rows[i].cost_usd;
                if (!rows[i].outcome)
                        continue;
                s.finished++;
                if (strcmp(rows[i].outcome, "done") == 0)
                        s.done++;
                else if (strcmp(rows[i].outcome, "max_turns") == 0)
                        s.max_turns++;
        }
        return s;
}

static json_t *time_or_null(int64_t t)
{
        char buf[32];
        return t > 0 ? json_string(format_utc(buf, sizeof buf, (uint64_t)t * USEC_PER_SEC)) : json_null();
}

/* The tasks of the listed sessions: what each cost in all, against its cap. */
struct task_cost {
        int64_t id;
        double cost_usd, cap_usd;       /* cap 0: none */
};

static size_t task_costs(sqlite3 *db, const struct session_row *rows, size_t n, double default_cap,
                         struct task_cost **ret)
{
        struct task_cost *costs = NULL;
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                struct queue_task *t = NULL;
                bool seen = false;
                for (size_t j = 0; j < k && !seen; j++)
                        seen = costs[j].id == rows[i].task_id;
                if (!rows[i].task_id || seen || queue_get(db, rows[i].task_id, &t) < 0)
                        continue;
                costs = xreallocarray(costs, k + 1, sizeof *costs);
                costs[k++] = (struct task_cost){ .id = t->id, .cost_usd = t->cost_usd,
                                                 .cap_usd = queue_cost_cap(t, default_cap) };
                queue_task_free(t);
        }
        *ret = costs;
        return k;
}

static void print_json(const struct session_row *rows, size_t n, const struct summary *s, int64_t since,
                       const struct task_cost *costs, size_t n_costs)
{
        json_t *arr = json_array(), *doc;

        for (size_t i = 0; i < n; i++) {
                const struct session_row *r = &rows[i];
                json_array_append_new(arr, json_pack(
                        "{s:I, s:o, s:o, s:o, s:o, s:o, s:I, s:{s:I, s:I, s:I, s:I}, s:f, s:o, s:b, s:o, s:b, s:o}",
                        "id", (json_int_t)r->id,
                        "task_id", r->task_id ? json_integer(r->task_id) : json_null(),
                        "started_at", time_or_null(r->started_at),
                        "ended_at", time_or_null(r->ended_at),
                        "outcome", r->outcome ? json_string(r->outcome) : json_null(),
                        "exit_status", r->exit_status >= 0 ? json_integer(r->exit_status) : json_null(),
                        "turns", (json_int_t)r->turns,
                        "tokens", "input", (json_int_t)r->input_tokens, "output", (json_int_t)r->output_tokens,
                        "cache_creation", (json_int_t)r->cache_creation_tokens,
                        "cache_read", (json_int_t)r->cache_read_tokens,
                        "cost_usd", r->cost_usd,
                        "claude_session_id", r->claude_session_id ? json_string(r->claude_session_id) : json_null(),
                        "resumed", r->resumed,
                        "error", r->error ? json_string(r->error) : json_null(),
                        "counted", r->uncounted == NULL,
                        "not_counted_why", r->uncounted ? json_string(r->uncounted) : json_null()));
        }
        double completion = s->finished ? (double)s->done / (double)s->finished : 0;
        double max_turns = s->finished ? (double)s->max_turns / (double)s->finished : 0;
        doc = json_pack("{s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:o}}",
                        "since", time_or_null(since),
                        "sessions", arr,
                        "summary",
                        "total", (json_int_t)s->total, "finished", (json_int_t)s->finished,
                        "done", (json_int_t)s->done, "max_turns", (json_int_t)s->max_turns,
                        "not_counted", (json_int_t)s->uncounted,
                        "completion_rate", completion, "max_turns_rate", max_turns, "cost_usd", s->cost,
                        "warning", max_turns > MAX_TURNS_WARNING
                                ? json_string("more than 30% of sessions hit the turn limit: raise max_turns or split tasks")
                                : json_null());
        if (!doc)
                abort();
        {
                json_t *tasks = json_array();
                for (size_t i = 0; i < n_costs; i++)
                        json_array_append_new(tasks, json_pack("{s:I, s:f, s:o}", "id", (json_int_t)costs[i].id,
                                                               "cost_usd", costs[i].cost_usd, "cost_cap_usd",
                                                               costs[i].cap_usd > 0 ? json_real(costs[i].cap_usd)
                                                                                    : json_null()));
                json_object_set_new(doc, "tasks", tasks);
        }
        if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII) < 0)
                abort();
        putchar('\n');
        json_decref(doc);
}

static void print_human(const struct session_row *rows, size_t n, const struct summary *s,
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
        sqlite3 *db = NULL;
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
                n_costs = task_costs(db, rows, n, config->claude.max_cost_per_task_usd, &costs);
        db_close(db);
        config_free(config);
        if (r < 0) {
                fprintf(stderr, "jada-agent: cannot read the sessions: %s\n", cli_db_error(r));
                return EXIT_ERROR;
        }
        struct summary s = summarize(rows, n);
        if (json)
                print_json(rows, n, &s, since, costs, n_costs);
        else
                print_human(rows, n, &s, window, costs, n_costs);
        session_rows_free(rows, n);
        free(costs);
        return EXIT_OK;
}
