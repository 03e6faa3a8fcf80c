/* SPDX-License-Identifier: MIT */
/* The --json documents, shared by the command line and the dashboard. */
#include "jada/report.h"
#include "jada/util.h"

#include <stdlib.h>
#include <string.h>

json_t *report_time(int64_t t)
{
        char buf[32];
        return t > 0 ? json_string(format_utc(buf, sizeof buf, (uint64_t)t * USEC_PER_SEC)) : json_null();
}

json_t *report_text(const char *s)
{
        json_t *j;
        char *ascii;

        if (!s)
                return json_null();
        j = json_string(s);
        if (j)
                return j;
        /* jansson takes only valid UTF-8; a git message or an old row may
         * hold other bytes: those become '?' and the document still goes. */
        ascii = xstrdup(s);
        for (char *p = ascii; *p; p++)
                if ((unsigned char)*p >= 0x80)
                        *p = '?';
        j = json_string(ascii);
        free(ascii);
        return j ? j : json_string("");
}

static json_t *json_text(const char *s)
{
        return report_text(s);
}

json_t *report_task(const struct queue_task *t)
{
        return json_pack("{s:I, s:o, s:o, s:s, s:I, s:o, s:I, s:I, s:I, s:f, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
                         "s:o, s:o, s:o, s:o, s:o, s:o}",
                         "id", (json_int_t)t->id,
                         "title", json_text(t->title),
                         "prompt", json_text(t->prompt),
                         "state", task_state_name(t->state),
                         "priority", (json_int_t)t->priority,
                         "run_after", report_time(t->run_after),
                         "attempts", (json_int_t)t->attempts,
                         "sessions_used", (json_int_t)t->sessions_used,
                         "turns_used", (json_int_t)t->turns_used,
                         "cost_usd", t->cost_usd,
                         "claude_session_id", json_text(t->claude_session_id),
                         "needs_you_reason", json_text(t->needs_you_reason),
                         "reply", json_text(t->reply),
                         "result", json_text(t->result),
                         "error", json_text(t->error),
                         "created_at", report_time(t->created_at),
                         "updated_at", report_time(t->updated_at),
                         "project", json_text(t->project),
                         "branch", json_text(t->branch),
                         "base", json_text(t->base),
                         "worktree", json_text(t->worktree),
                         "max_cost_usd", t->max_cost_usd > 0 ? json_real(t->max_cost_usd) : json_null(),
                         "parent", t->parent_id > 0 ? json_integer(t->parent_id) : json_null());
}

int report_family_load(struct store *db, int64_t id, struct report_family *ret)
{
        int r;

        *ret = (struct report_family){ 0 };
        r = queue_children(db, id, &ret->children, &ret->n_children);
        if (r == 0)
                r = queue_after_tasks(db, id, &ret->after, &ret->n_after);
        if (r < 0)
                report_family_clear(ret);
        return r;
}

void report_family_clear(struct report_family *f)
{
        queue_tasks_free(f->children, f->n_children);
        queue_tasks_free(f->after, f->n_after);
        *f = (struct report_family){ 0 };
}

static json_t *report_task_refs(const struct queue_task *tasks, size_t n)
{
        json_t *arr = json_array();

        for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, json_pack("{s:I, s:o, s:s}", "id", (json_int_t)tasks[i].id,
                                                     "title", json_text(tasks[i].title),
                                                     "state", task_state_name(tasks[i].state)));
        return arr;
}

json_t *report_task_detail(const struct queue_task *t, const struct queue_event *events, size_t n,
                           const struct project_branch_info *info, double cap, const struct report_family *family)
{
        json_t *j = report_task(t), *arr = json_array();

        for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, json_pack("{s:o, s:o, s:s, s:o}",
                        "at", report_time(events[i].at),
                        "old_state", events[i].old_state >= 0 ? json_string(task_state_name(events[i].old_state)) : json_null(),
                        "new_state", task_state_name(events[i].new_state),
                        "reason", report_text(events[i].reason)));
        json_object_set_new(j, "events", arr);
        json_object_set_new(j, "commits", info->commits >= 0 ? json_integer(info->commits) : json_null());
        json_object_set_new(j, "cost_cap_usd", cap > 0 ? json_real(cap) : json_null());
        json_object_set_new(j, "diffstat", t->branch && !info->problem && info->diffstat ? report_text(info->diffstat) : json_null());
        json_object_set_new(j, "children", report_task_refs(family ? family->children : NULL,
                                                             family ? family->n_children : 0));
        json_object_set_new(j, "after", report_task_refs(family ? family->after : NULL, family ? family->n_after : 0));
        return j;
}


struct session_summary report_summarize(const struct session_row *rows, size_t n)
{
        struct session_summary s = { 0 };

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

size_t report_task_costs(struct store *db, const struct session_row *rows, size_t n, double default_cap,
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

json_t *report_sessions(const struct session_row *rows, size_t n, const struct session_summary *s, int64_t since,
                        const struct task_cost *costs, size_t n_costs)
{
        json_t *arr = json_array(), *doc;

        for (size_t i = 0; i < n; i++) {
                const struct session_row *r = &rows[i];
                json_array_append_new(arr, json_pack(
                        "{s:I, s:o, s:o, s:o, s:o, s:o, s:I, s:{s:I, s:I, s:I, s:I}, s:f, s:o, s:b, s:o, s:b, s:o}",
                        "id", (json_int_t)r->id,
                        "task_id", r->task_id ? json_integer(r->task_id) : json_null(),
                        "started_at", report_time(r->started_at),
                        "ended_at", report_time(r->ended_at),
                        "outcome", report_text(r->outcome),
                        "exit_status", r->exit_status >= 0 ? json_integer(r->exit_status) : json_null(),
                        "turns", (json_int_t)r->turns,
                        "tokens", "input", (json_int_t)r->input_tokens, "output", (json_int_t)r->output_tokens,
                        "cache_creation", (json_int_t)r->cache_creation_tokens,
                        "cache_read", (json_int_t)r->cache_read_tokens,
                        "cost_usd", r->cost_usd,
                        "claude_session_id", report_text(r->claude_session_id),
                        "resumed", r->resumed,
                        "error", report_text(r->error),
                        "counted", r->uncounted == NULL,
                        "not_counted_why", report_text(r->uncounted)));
        }
        double completion = s->finished ? (double)s->done / (double)s->finished : 0;
        double max_turns = s->finished ? (double)s->max_turns / (double)s->finished : 0;
        doc = json_pack("{s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:o}}",
                        "since", report_time(since),
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
        return doc;
}
