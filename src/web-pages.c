/* SPDX-License-Identifier: MIT */
/* The dashboard's overview, task list and sessions pages. */
#include "web-private.h"
#include "jada/budget.h"
#include "jada/report.h"
#include "jada/session-store.h"
#include "jada/status-report.h"
#include "jada/util.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A page lists at most this many tasks; filters find the rest. */
#define TASKS_SHOWN 500
#define SESSIONS_SHOWN 100
#define CHART_DAYS 30

static void state_badge(FILE *f, enum task_state s)
{
        fprintf(f, "<span class=\"state state-%s\">%s</span>", task_state_name(s), task_state_name(s));
}

static void add_form(struct web_request *req)
{
        const struct jada_config *c = req->web->config;
        FILE *f = req->out;

        fputs("<h2>Add a task</h2><form method=\"post\" action=\"/tasks\">", f);
        web_csrf_field(req);
        fprintf(f, "<label>Title (optional)<input type=\"text\" name=\"title\" maxlength=\"%d\"></label>",
                QUEUE_TITLE_MAX);
        fputs("<label>Prompt<textarea name=\"prompt\" required></textarea></label>", f);
        if (c->n_projects > 0) {
                fputs("<label>Project<select name=\"project\"><option value=\"\">(none)</option>", f);
                for (size_t i = 0; i < c->n_projects; i++) {
                        bool def = strcmp(c->projects[i].name, c->daemon.default_project) == 0;
                        fputs("<option", f);
                        if (def)
                                fputs(" selected", f);
                        fputs(">", f);
                        web_h(f, c->projects[i].name);
                        fputs("</option>", f);
                }
                fputs("</select></label>", f);
        }
        fputs("<label>Priority (a higher number runs first)<input type=\"text\" name=\"priority\" value=\"0\" "
              "inputmode=\"numeric\"></label><button type=\"submit\">Add</button></form>",
              f);
}

enum MHD_Result web_page_overview(struct web_request *req)
{
        struct web *w = req->web;
        struct report rep = { .verdict = VERDICT_OK, .problems = json_array() };
        struct web_live_session live[64];
        struct status_facts facts;
        size_t n_live = 0, i;
        json_t *p;
        FILE *f = req->out;

        status_gather(w->config, w->db, false, &facts);
        status_assess(&facts, w->config->path, &rep);
        web_page_begin(req, "Overview", "Overview");
        fprintf(f, "<h1>Overview <span class=\"muted\">%s</span></h1>", status_verdict_names[rep.verdict]);

        if (json_array_size(rep.problems) == 0)
                fputs("<p class=\"ok\">No problems.</p>", f);
        json_array_foreach(rep.problems, i, p) {
                const char *sev = json_string_value(json_object_get(p, "severity"));
                fprintf(f, "<div class=\"problem%s\"><strong>", sev && strcmp(sev, "WARNING") == 0 ? " warning" : "");
                web_h(f, json_string_value(json_object_get(p, "kind")));
                fputs("</strong>: ", f);
                web_h(f, json_string_value(json_object_get(p, "text")));
                fputs("<span class=\"fix\">", f);
                web_h(f, json_string_value(json_object_get(p, "fix")));
                fputs("</span></div>", f);
        }

        fputs("<h2>Budget today</h2><p>", f);
        fprintf(f, "%" PRId64 " of %u sessions", facts.health.budget.sessions_today, w->config->claude.sessions_per_day);
        if (w->config->claude.daily_cost_limit_usd > 0)
                fprintf(f, ", $%.2f of $%.2f", facts.health.budget.cost_today_usd, w->config->claude.daily_cost_limit_usd);
        else
                fprintf(f, ", $%.2f spent", facts.health.budget.cost_today_usd);
        fputs("; resets ", f);
        web_time(f, budget_day_start(facts.now) + 86400);
        fputs(" UTC.</p>", f);
        if (usage_parked(&facts.usage, facts.now)) {
                fputs("<p class=\"problem warning\">Parked by the plan's usage limit (", f);
                web_h(f, facts.usage.park_type);
                fputs(") until ", f);
                web_time(f, facts.usage.parked_until);
                fputs(" UTC.</p>", f);
        }

        fputs("<h2>Queue</h2><div class=\"cards\">", f);
        for (int s = 0; s < _TASK_STATE_MAX; s++)
                fprintf(f, "<a class=\"card\" href=\"/tasks?state=%s\"><b>%" PRId64 "</b>%s</a>", task_state_name(s),
                        facts.health.tasks[s], task_state_name(s));
        fputs("</div>", f);

        fputs("<h2>Running sessions</h2>", f);
        if (w->hooks.live)
                n_live = w->hooks.live(w->hooks.userdata, live, sizeof live / sizeof live[0]);
        if (n_live == 0)
                fputs("<p class=\"muted\">None.</p>", f);
        else
                fputs("<div class=\"scroll\"><table><tr><th>Task</th><th>Title</th><th>Turn</th></tr>", f);
        for (size_t k = 0; k < n_live; k++) {
                struct queue_task *t = NULL;
                fprintf(f, "<tr><td><a href=\"/tasks/%" PRId64 "\">%" PRId64 "</a></td><td>", live[k].task_id,
                        live[k].task_id);
                if (queue_get(w->db, live[k].task_id, &t) == 0)
                        web_h(f, t->title);
                queue_task_free(t);
                fprintf(f, "</td><td class=\"num\">%u / %u</td></tr>", live[k].turns, w->config->claude.max_turns);
        }
        if (n_live > 0)
                fputs("</table></div>", f);
        add_form(req);
        web_page_end(req);
        status_facts_clear(&facts);
        json_decref(rep.problems);
        return web_reply_page(req, MHD_HTTP_OK);
}

static bool task_matches(const struct queue_task *t, const char *q)
{
        return !q || !*q || strcasestr(t->title, q) || strcasestr(t->prompt, q) ||
               (t->result && strcasestr(t->result, q));
}

static size_t index_of(const struct queue_task *tasks, size_t n, int64_t id)
{
        size_t lo = 0, hi = n;

        while (lo < hi) { /* tasks are ordered by id */
                size_t mid = lo + (hi - lo) / 2;
                if (tasks[mid].id == id)
                        return mid;
                if (tasks[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return SIZE_MAX;
}

/* The order to show tasks in (indexes into tasks, ordered by id): newest
 * first; as a tree, each top-level task followed by its sub-tasks, depth
 * first, oldest first, with their depth. A sub-task whose parent is not in
 * the list stands at the top. Returns how many. */
static size_t task_order(const struct queue_task *tasks, size_t n, bool tree, size_t *order, unsigned *depth)
{
        _cleanup_free_ size_t *first = NULL, *next = NULL, *stack = NULL, *parent = NULL;
        _cleanup_free_ unsigned *level = NULL;
        size_t k = 0, top;

        if (!tree) {
                for (size_t i = n; i-- > 0;) {
                        order[k] = i;
                        depth[k++] = 0;
                }
                return k;
        }
        first = xcalloc(n + 1, sizeof *first);
        next = xcalloc(n + 1, sizeof *next);
        parent = xcalloc(n + 1, sizeof *parent);
        stack = xcalloc(n + 1, sizeof *stack);
        level = xcalloc(n + 1, sizeof *level);
        for (size_t i = 0; i < n; i++)
                first[i] = next[i] = SIZE_MAX;
        /* Children lists, oldest first: pushed newest to oldest at the head. */
        for (size_t i = n; i-- > 0;) {
                parent[i] = tasks[i].parent_id ? index_of(tasks, n, tasks[i].parent_id) : SIZE_MAX;
                if (parent[i] != SIZE_MAX) {
                        next[i] = first[parent[i]];
                        first[parent[i]] = i;
                }
        }
        for (size_t i = n; i-- > 0;) {
                if (parent[i] != SIZE_MAX)
                        continue;
                top = 0;
                stack[top] = i;
                level[top++] = 0;
                while (top > 0 && k < n) {
                        size_t j = stack[--top];
                        unsigned d = level[top];
                        size_t from = top;
                        order[k] = j;
                        depth[k++] = d;
                        /* Push the children, then turn them round: the oldest comes out first. */
                        for (size_t c = first[j]; c != SIZE_MAX && top < n; c = next[c]) {
                                stack[top] = c;
                                level[top++] = d + 1;
                        }
                        for (size_t a = from, b = top; a + 1 < b; a++, b--) {
                                size_t tmp = stack[a];
                                stack[a] = stack[b - 1];
                                stack[b - 1] = tmp;
                        }
                }
        }
        return k;
}

enum MHD_Result web_page_tasks(struct web_request *req)
{
        struct web *w = req->web;
        const char *state_arg = web_query(req, "state"), *q = web_query(req, "q"), *project = web_query(req, "project");
        struct queue_task *tasks = NULL;
        size_t n = 0, shown = 0, matched = 0, n_order, *order;
        unsigned *depth;
        int state = -1, r;
        FILE *f = req->out;

        if (state_arg && *state_arg) {
                state = task_state_from_name(state_arg);
                if (state < 0)
                        return web_reply_error(req, MHD_HTTP_BAD_REQUEST, "'%s' is not a task state.", state_arg);
        }
        if (project && !*project)
                project = NULL;
        r = queue_list(w->db, state, project, &tasks, &n);
        if (r < 0)
                return web_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "Cannot read the tasks: %s", strerror(-r));

        web_page_begin(req, "Tasks", "Tasks");
        fputs("<h1>Tasks</h1><form class=\"filters\" method=\"get\" action=\"/tasks\"><label>State<select name=\"state\">"
              "<option value=\"\">all</option>",
              f);
        for (int s = 0; s < _TASK_STATE_MAX; s++)
                fprintf(f, "<option%s>%s</option>", s == state ? " selected" : "", task_state_name(s));
        fputs("</select></label><label>Search<input type=\"search\" name=\"q\" value=\"", f);
        web_h(f, q);
        fputs("\"></label><button type=\"submit\">Show</button></form>", f);

        fputs("<div class=\"scroll\"><table><tr><th>ID</th><th>State</th><th>Title</th><th>Project</th>"
              "<th>Sessions</th><th>Turns</th><th>Cost</th><th>Updated</th></tr>",
              f);
        /* Newest first: what a person looks for is mostly recent. Unfiltered,
         * each task is followed by its sub-tasks (oldest first), indented. */
        order = xcalloc(n ? n : 1, sizeof *order);
        depth = xcalloc(n ? n : 1, sizeof *depth);
        n_order = task_order(tasks, n, !(state >= 0 || (q && *q) || project), order, depth);
        for (size_t k = 0; k < n_order; k++) {
                const struct queue_task *t = &tasks[order[k]];
                if (!task_matches(t, q))
                        continue;
                matched++;
                if (shown == TASKS_SHOWN)
                        continue;
                shown++;
                fprintf(f, "<tr><td><a href=\"/tasks/%" PRId64 "\">%" PRId64 "</a></td><td>", t->id, t->id);
                state_badge(f, t->state);
                fprintf(f, "</td><td class=\"depth-%u\">", depth[k] < 4 ? depth[k] : 4);
                if (t->parent_id)
                        fputs("↳ ", f);
                fprintf(f, "<a href=\"/tasks/%" PRId64 "\">", t->id);
                web_h(f, t->title);
                fputs("</a>", f);
                if (t->parent_id && depth[k] == 0)
                        fprintf(f, " <span class=\"muted\">(of %" PRId64 ")</span>", t->parent_id);
                fputs("</td><td>", f);
                web_h(f, t->project);
                fprintf(f, "</td><td class=\"num\">%" PRId64 "</td><td class=\"num\">%" PRId64
                           "</td><td class=\"num\">$%.2f</td><td>",
                        t->sessions_used, t->turns_used, t->cost_usd);
                web_time(f, t->updated_at);
                fputs("</td></tr>", f);
        }
        free(order);
        free(depth);
        fputs("</table></div>", f);
        if (matched == 0)
                fputs("<p class=\"muted\">No tasks.</p>", f);
        else if (matched > shown)
                fprintf(f, "<p class=\"muted\">%zu of %zu shown: narrow the filter.</p>", shown, matched);
        add_form(req);
        web_page_end(req);
        queue_tasks_free(tasks, n);
        return web_reply_page(req, MHD_HTTP_OK);
}

enum MHD_Result web_page_sessions(struct web_request *req)
{
        struct web *w = req->web;
        int64_t now = web_now(), since = budget_day_start(now) - (CHART_DAYS - 1) * 86400;
        struct session_row *rows = NULL;
        struct session_summary s;
        size_t n = 0;
        FILE *f = req->out;
        int r;

        r = session_store_list(w->db, since, &rows, &n);
        if (r < 0)
                return web_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "Cannot read the sessions: %s", strerror(-r));
        s = report_summarize(rows, n);
        web_page_begin(req, "Sessions", "Sessions");
        fprintf(f, "<h1>Sessions, last %d days</h1>", CHART_DAYS);
        web_chart_sessions(f, rows, n, now, CHART_DAYS);
        fprintf(f, "<p>%zu sessions, %zu finished", s.total, s.finished);
        if (s.finished)
                fprintf(f, ": %.0f%% done, <strong>%.0f%% hit the turn limit</strong>",
                        100.0 * (double)s.done / (double)s.finished, 100.0 * (double)s.max_turns / (double)s.finished);
        fprintf(f, "; cost $%.2f.", s.cost);
        if (s.uncounted)
                fprintf(f, " %zu more never reached the model (not counted).", s.uncounted);
        fputs("</p>", f);
        if (s.finished && (double)s.max_turns / (double)s.finished > MAX_TURNS_WARNING)
                fputs("<p class=\"problem warning\">More than 30% of sessions hit the turn limit: raise max_turns or "
                      "split tasks.</p>",
                      f);

        fputs("<h2>Latest</h2><div class=\"scroll\"><table><tr><th>ID</th><th>Task</th><th>Started</th>"
              "<th>Duration</th><th>Outcome</th><th>Turns</th><th>Cost</th></tr>",
              f);
        for (size_t k = n, shown = 0; k-- > 0 && shown < SESSIONS_SHOWN; shown++) {
                const struct session_row *row = &rows[k];
                char duration[32] = "running";
                web_duration(duration, sizeof duration, row->outcome, row->started_at, row->ended_at);
                fprintf(f, "<tr><td>%" PRId64 "</td><td>", row->id);
                if (row->task_id)
                        fprintf(f, "<a href=\"/tasks/%" PRId64 "\">%" PRId64 "</a>", row->task_id, row->task_id);
                fputs("</td><td>", f);
                web_time(f, row->started_at);
                fprintf(f, "</td><td>%s</td><td>", duration);
                web_h(f, row->outcome ? row->outcome : "running");
                if (row->uncounted)
                        fputs(" <span class=\"muted\">(not counted)</span>", f);
                fprintf(f, "</td><td class=\"num\">%" PRId64 "</td><td class=\"num\">$%.4f</td></tr>", row->turns,
                        row->cost_usd);
        }
        fputs("</table></div>", f);
        web_page_end(req);
        session_rows_free(rows, n);
        return web_reply_page(req, MHD_HTTP_OK);
}
