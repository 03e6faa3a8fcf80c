/* SPDX-License-Identifier: MIT */
/* The dashboard's JSON API (the command line's --json shapes), /metrics,
 * and the actions of its forms (the command line's code). */
#include "web-private.h"
#include "jada/duration.h"
#include "jada/log.h"
#include "jada/report.h"
#include "jada/session-store.h"
#include "jada/status-report.h"
#include "jada/task-action.h"
#include "jada/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static enum MHD_Result api_status(struct web_request *req)
{
        struct report rep = { .verdict = VERDICT_OK, .problems = json_array() };
        struct status_facts facts;
        json_t *doc;

        /* Not the state dir's size: that walk is the command line's to do. */
        status_gather(req->web->config, req->web->db, false, &facts);
        status_assess(&facts, req->web->config->path, &rep);
        doc = status_report_json(&facts, &rep);
        status_facts_clear(&facts);
        json_decref(rep.problems);
        return web_reply_json(req, MHD_HTTP_OK, doc);
}

static enum MHD_Result api_tasks(struct web_request *req)
{
        const char *state_arg = web_query(req, "state"), *project = web_query(req, "project");
        struct queue_task *tasks = NULL;
        size_t n = 0;
        int state = -1, r;
        json_t *arr;

        if (state_arg && *state_arg && (state = task_state_from_name(state_arg)) < 0)
                return web_reply_error(req, MHD_HTTP_BAD_REQUEST, "'%s' is not a task state", state_arg);
        r = queue_list(req->web->db, state, project && *project ? project : NULL, &tasks, &n);
        if (r < 0)
                return web_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot list tasks: %s", strerror(-r));
        arr = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, report_task(&tasks[i]));
        queue_tasks_free(tasks, n);
        return web_reply_json(req, MHD_HTTP_OK, arr);
}

static enum MHD_Result api_task(struct web_request *req, int64_t id)
{
        struct queue_task *t = NULL;
        struct queue_event *events = NULL;
        /* commits and diffstat stay null: they take git, which the loop
         * does not wait for (jada-agent task show and task diff run it). */
        struct project_branch_info info = { .commits = -1 };
        struct report_family family = { 0 };
        size_t n = 0;
        json_t *doc;
        int r;

        r = queue_get(req->web->db, id, &t);
        if (r == -ENOENT)
                return web_reply_error(req, MHD_HTTP_NOT_FOUND, "no task %" PRId64, id);
        if (r < 0)
                return web_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot read task %" PRId64 ": %s", id,
                                       strerror(-r));
        r = queue_events(req->web->db, id, 50, &events, &n);
        if (r == 0) {
                r = report_family_load(req->web->db, id, &family);
                if (r < 0)
                        queue_events_free(events, n);
        }
        if (r < 0) {
                queue_task_free(t);
                return web_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot read the events of task %" PRId64, id);
        }
        doc = report_task_detail(t, events, n, &info, queue_cost_cap(t, req->web->config->claude.max_cost_per_task_usd),
                                 &family);
        report_family_clear(&family);
        queue_events_free(events, n);
        queue_task_free(t);
        return web_reply_json(req, MHD_HTTP_OK, doc);
}

static enum MHD_Result api_sessions(struct web_request *req)
{
        const char *since_arg = web_query(req, "since");
        uint64_t usec = 7 * 86400 * USEC_PER_SEC, now = now_realtime_usec();
        struct session_row *rows = NULL;
        struct task_cost *costs = NULL;
        struct session_summary s;
        size_t n = 0, n_costs;
        int64_t since;
        json_t *doc;
        int r;

        if (since_arg && duration_parse(since_arg, &usec) < 0)
                return web_reply_error(req, MHD_HTTP_BAD_REQUEST, "since '%s' is not a duration (e.g. 7d, 24h)",
                                       since_arg);
        since = (int64_t)((now - (usec < now ? usec : 0)) / USEC_PER_SEC);
        r = session_store_list(req->web->db, since, &rows, &n);
        if (r < 0)
                return web_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot read the sessions: %s", strerror(-r));
        n_costs = report_task_costs(req->web->db, rows, n, req->web->config->claude.max_cost_per_task_usd, &costs);
        s = report_summarize(rows, n);
        doc = report_sessions(rows, n, &s, since, costs, n_costs);
        session_rows_free(rows, n);
        free(costs);
        return web_reply_json(req, MHD_HTTP_OK, doc);
}

enum MHD_Result web_api(struct web_request *req, const char *path)
{
        char *end;
        long long id;

        if (strcmp(path, "/status") == 0)
                return api_status(req);
        if (strcmp(path, "/tasks") == 0)
                return api_tasks(req);
        if (strcmp(path, "/sessions") == 0)
                return api_sessions(req);
        if (strncmp(path, "/tasks/", 7) == 0 && path[7] >= '1' && path[7] <= '9') {
                errno = 0;
                id = strtoll(path + 7, &end, 10);
                if (!errno && !*end)
                        return api_task(req, id);
        }
        return web_reply_error(req, MHD_HTTP_NOT_FOUND, "no such API: /api%s", path);
}

enum MHD_Result web_metrics(struct web_request *req)
{
        char *text = req->web->hooks.metrics ? req->web->hooks.metrics(req->web->hooks.userdata) : NULL;

        if (!text)
                return web_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no metrics");
        return web_reply(req, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
}

static void changed(struct web_request *req)
{
        if (req->web->hooks.changed)
                req->web->hooks.changed(req->web->hooks.userdata);
}

enum MHD_Result web_post_action(struct web_request *req, int64_t id, const char *name)
{
        int action = task_action_from_name(name);
        char why[512], location[64];
        int r;

        if (action < 0)
                return web_reply_error(req, MHD_HTTP_NOT_FOUND, "'%s' is not an action of a task.", name);
        r = task_action_apply(req->web->db, id, (enum task_action)action, web_field(req, "text"), web_now(), NULL, why,
                              sizeof why);
        if (r < 0)
                return web_reply_error(req, r == -ENOENT ? MHD_HTTP_NOT_FOUND
                                            : r == -EPERM ? MHD_HTTP_CONFLICT
                                            : r == -EINVAL ? MHD_HTTP_BAD_REQUEST
                                                           : MHD_HTTP_SERVICE_UNAVAILABLE,
                                       "%s", why);
        log_info("task %" PRId64 ": %s from the dashboard", id, name);
        changed(req);
        snprintf(location, sizeof location, "/tasks/%" PRId64, id);
        return web_redirect(req, location);
}

enum MHD_Result web_post_add(struct web_request *req)
{
        const char *title = web_field(req, "title"), *priority_arg = web_field(req, "priority");
        int64_t priority = 0, id, now = web_now();
        char why[512], location[64];
        _cleanup_free_ char *prompt = NULL;
        int r;

        if (priority_arg && *priority_arg &&
            (parse_int64(priority_arg, &priority) < 0 || priority < -1000 || priority > 1000))
                return web_reply_error(req, MHD_HTTP_BAD_REQUEST, "The priority must be a number from -1000 to 1000.");
        /* Browsers send CR LF in a textarea; the prompt is the text. */
        if (web_field(req, "prompt")) {
                const char *src = web_field(req, "prompt");
                char *dst = prompt = xmalloc(strlen(src) + 1);
                for (; *src; src++)
                        if (!(src[0] == '\r' && src[1] == '\n'))
                                *dst++ = *src;
                *dst = '\0';
        }
        r = task_add_checked(req->web->db, req->web->config,
                             &(struct queue_new){ .title = title && *title ? title : NULL, .prompt = prompt,
                                                  .project = web_field(req, "project"), .priority = priority,
                                                  .run_after = now },
                             now, &id, why, sizeof why);
        if (r < 0)
                return web_reply_error(req, r == -EINVAL ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_SERVICE_UNAVAILABLE, "%s",
                                       why);
        log_info("task %" PRId64 " added from the dashboard", id);
        changed(req);
        snprintf(location, sizeof location, "/tasks/%" PRId64, id);
        return web_redirect(req, location);
}
