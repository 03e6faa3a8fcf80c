/* SPDX-License-Identifier: MIT */
/* jada-agent task show|diff: one task, its events, and its branch. */
#include "jada/cli.h"
#include "cmd-task-private.h"
#include "jada/report.h"
#include "jada/config.h"
#include "jada/store.h"
#include "jada/project.h"
#include "jada/queue.h"
#include "jada/util.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define EVENTS_SHOWN 20

static void print_field(const char *name, const char *value)
{
        if (value && *value)
                printf("%-18s %s\n", name, value);
}

static void print_family(const char *what, const struct queue_task *tasks, size_t n)
{
        if (n == 0)
                return;
        printf("\n%s:\n", what);
        for (size_t i = 0; i < n; i++)
                printf("  %6lld  %-9s  %s\n", (long long)tasks[i].id, task_state_name(tasks[i].state), tasks[i].title);
}

int task_show(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = { CLI_COMMON_LONG, { "json", no_argument, NULL, 'j' }, {} };
        struct jada_config *config = NULL;
        struct queue_task *t = NULL;
        struct queue_event *events = NULL;
        struct project_branch_info info = { .commits = -1 };
        struct report_family family = { 0 };
        double cap = 0;
        size_t n = 0;
        struct store *db = NULL;
        bool json = false;
        int64_t id;
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "j", opts, NULL)) != -1) {
                if (c == 'j')
                        json = true;
                else if (cli_common_option(cli, c) < 0)
                        return task_usage();
        }
        if (optind + 1 != argc)
                return task_usage();
        r = load_task(cli, argv[optind], &config, &db, &t, &id);
        if (r != 0)
                return r;
        r = queue_events(db, id, EVENTS_SHOWN, &events, &n);
        if (r == 0)
                r = report_family_load(db, id, &family);
        store_close(db);
        if (r == 0 && t->branch)
                project_branch_info(config, t, &info);
        cap = queue_cost_cap(t, config->claude.max_cost_per_task_usd);
        config_free(config);
        if (r < 0) {
                fprintf(stderr, "jada-agent: cannot read the events of task %lld: %s\n", (long long)id, cli_db_error(r));
                queue_task_free(t);
                return EXIT_ERROR;
        }

        if (json) {
                print_json(report_task_detail(t, events, n, &info, cap, &family));
        } else {
                char buf[32], num[64];
                snprintf(num, sizeof num, "%lld", (long long)t->id);
                print_field("id", num);
                print_field("title", t->title);
                print_field("state", task_state_name(t->state));
                print_field("needs you", t->needs_you_reason);
                snprintf(num, sizeof num, "%lld", (long long)t->priority);
                print_field("priority", num);
                print_field("run after", format_utc(buf, sizeof buf, (uint64_t)t->run_after * USEC_PER_SEC));
                snprintf(num, sizeof num, "%lld sessions, %lld turns, $%.4f, %lld failed attempts",
                         (long long)t->sessions_used, (long long)t->turns_used, t->cost_usd, (long long)t->attempts);
                print_field("used", num);
                if (cap > 0) {
                        snprintf(num, sizeof num, "$%.2f of $%.2f (%s)", t->cost_usd, cap,
                                 t->max_cost_usd > 0 ? "its own" : "max_cost_per_task_usd");
                        print_field("cost cap", num);
                }
                print_field("claude session", t->claude_session_id);
                print_field("project", t->project);
                print_field("branch", t->branch);
                print_field("base", t->base);
                print_field("worktree", t->worktree);
                if (t->parent_id > 0) {
                        snprintf(num, sizeof num, "task %lld", (long long)t->parent_id);
                        print_field("sub-task of", num);
                }
                if (info.commits >= 0) {
                        snprintf(num, sizeof num, "%ld ahead of %s", info.commits, t->base ? t->base : "its base");
                        print_field("commits", num);
                }
                print_field("branch problem", info.problem);
                print_field("created", format_utc(buf, sizeof buf, (uint64_t)t->created_at * USEC_PER_SEC));
                print_field("updated", format_utc(buf, sizeof buf, (uint64_t)t->updated_at * USEC_PER_SEC));
                print_field("error", t->error);
                printf("\nprompt:\n%s\n", t->prompt);
                if (t->reply)
                        printf("\nreply:\n%s\n", t->reply);
                if (t->result)
                        printf("\nresult:\n%s\n", t->result);
                print_family("sub-tasks", family.children, family.n_children);
                print_family("runs after", family.after, family.n_after);
                if (info.diffstat && *info.diffstat)
                        printf("\nchanges (task diff %lld):\n%s", (long long)t->id, info.diffstat);
                printf("\nevents:\n");
                for (size_t i = 0; i < n; i++)
                        printf("  %s  %-9s → %-9s  %s\n", format_utc(buf, sizeof buf, (uint64_t)events[i].at * USEC_PER_SEC),
                               events[i].old_state >= 0 ? task_state_name(events[i].old_state) : "(new)",
                               task_state_name(events[i].new_state), events[i].reason);
        }
        project_branch_info_clear(&info);
        report_family_clear(&family);
        queue_events_free(events, n);
        queue_task_free(t);
        return EXIT_OK;
}

int task_diff(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = { CLI_COMMON_LONG, { "stat", no_argument, NULL, 's' }, {} };
        struct jada_config *config = NULL;
        struct queue_task *t = NULL;
        _cleanup_free_ char *why = NULL;
        struct store *db = NULL;
        bool stat = false;
        int64_t id;
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "s", opts, NULL)) != -1) {
                if (c == 's')
                        stat = true;
                else if (cli_common_option(cli, c) < 0)
                        return task_usage();
        }
        if (optind + 1 != argc)
                return task_usage();
        r = load_task(cli, argv[optind], &config, &db, &t, &id);
        if (r != 0)
                return r;
        store_close(db);
        fflush(stdout);
        r = project_diff(config, t, stat, STDOUT_FILENO, &why);
        if (r < 0)
                fprintf(stderr, "jada-agent: task %lld: %s\n", (long long)id, why);
        queue_task_free(t);
        config_free(config);
        return r < 0 ? EXIT_ERROR : EXIT_OK;
}
