/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include "jada/store.h"
#include <stddef.h>
#include <stdint.h>

#include "jada/project.h"
#include "jada/queue.h"
#include "jada/session-store.h"

/*
 * The JSON documents of the command line's --json, built in one place so
 * that the dashboard's API (/api/tasks, /api/tasks/ID, /api/sessions) gives
 * exactly the same shapes.
 */

/* A string for a document: null for NULL; bytes that are not UTF-8 become '?'. */
json_t *report_text(const char *s);
/* UTC seconds as "2026-12-02T14:00:00Z", or null for 0. */
json_t *report_time(int64_t t);
/* A task, as `task list --json` lists it. */
json_t *report_task(const struct queue_task *t);
/* A task's sub-tasks and the tasks it runs after. */
struct report_family {
        struct queue_task *children, *after;
        size_t n_children, n_after;
};
int report_family_load(struct store *db, int64_t id, struct report_family *ret);
void report_family_clear(struct report_family *f);
/* `task show --json`: the task, its events, its branch (info: commits < 0
 * when unknown), its cost cap (0: none), and its family: "children" and
 * "after" (each {id, title, state}). */
json_t *report_task_detail(const struct queue_task *t, const struct queue_event *events, size_t n,
                           const struct project_branch_info *info, double cap, const struct report_family *family);

/* Above this share of sessions hitting max_turns, tasks are too big for it. */
#define MAX_TURNS_WARNING 0.30

/* Rates are over the sessions that count against the budget; those that
 * never reached the model are listed, and counted apart. */
struct session_summary {
        size_t total, finished, done, max_turns, uncounted;
        double cost;
};
struct session_summary report_summarize(const struct session_row *rows, size_t n);

/* The tasks of the listed sessions: what each cost in all, against its cap. */
struct task_cost {
        int64_t id;
        double cost_usd, cap_usd;       /* cap 0: none */
};
size_t report_task_costs(struct store *db, const struct session_row *rows, size_t n, double default_cap,
                         struct task_cost **ret);
/* `sessions --json`. */
json_t *report_sessions(const struct session_row *rows, size_t n, const struct session_summary *s, int64_t since,
                        const struct task_cost *costs, size_t n_costs);
