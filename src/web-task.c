/* SPDX-License-Identifier: MIT */
/* The dashboard's page of one task: its question and the reply form, its
 * actions, prompt and result, its events as a timeline, its sessions and
 * their transcripts. */
#include "web-private.h"
#include "jada/job.h"
#include "jada/session-store.h"
#include "jada/task-action.h"
#include "jada/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A transcript shown on the page is cut to its last part past this; the
 * whole is `jada-agent transcript SESSION`. */
#define TRANSCRIPT_SHOWN (256 * 1024)
/* What the children may print: the readable transcripts of all a task's
 * sessions (a 10 MB stream reads as ~0.1 MB), and its diff. */
#define TRANSCRIPT_CAPTURE (8 * 1024 * 1024)
#define DIFF_CAPTURE (1024 * 1024)
#define EVENTS_SHOWN 200

static void fact(FILE *f, const char *name, const char *value)
{
        if (!value || !*value)
                return;
        fprintf(f, "<tr><th>%s</th><td>", name);
        web_h(f, value);
        fputs("</td></tr>", f);
}

static void text_block(FILE *f, const char *title, const char *text)
{
        if (!text || !*text)
                return;
        fprintf(f, "<h2>%s</h2><pre>", title);
        web_h(f, text);
        fputs("</pre>", f);
}

/* What the page waits for. */
struct web_task_page {
        struct web_request *req;
        struct queue_task *task;
        struct queue_event *events;
        size_t n_events;
        struct session_row *rows;
        size_t n_rows;
        struct queue_task *parent, *children, *after;   /* parent NULL: none */
        size_t n_children, n_after;
        struct job *transcript_job, *diff_job;
        struct job_result transcript, diff;
        bool transcript_busy, diff_busy;       /* its child could not start now: "reload in a moment" */
};

void web_task_page_free(struct web_task_page *p)
{
        if (!p)
                return;
        if (p->transcript_job)
                job_cancel(p->transcript_job);
        if (p->diff_job)
                job_cancel(p->diff_job);
        job_result_clear(&p->transcript);
        job_result_clear(&p->diff);
        session_rows_free(p->rows, p->n_rows);
        queue_task_free(p->parent);
        queue_tasks_free(p->children, p->n_children);
        queue_tasks_free(p->after, p->n_after);
        queue_events_free(p->events, p->n_events);
        queue_task_free(p->task);
        free(p);
}

/* The part of the --task output that belongs to one session: after its
 * "### session N" line, up to the next. */
static void session_part(const char *out, int64_t session, const char **ret, size_t *len)
{
        char marker[48];
        const char *p, *end;

        *ret = NULL;
        *len = 0;
        snprintf(marker, sizeof marker, "### session %" PRId64 "\n", session);
        for (p = out; (p = strstr(p, marker)); p += strlen(marker))
                if (p == out || p[-1] == '\n')
                        break;
        if (!p)
                return;
        p += strlen(marker);
        end = strstr(p, "\n### session ");
        *ret = p;
        *len = end ? (size_t)(end - p + 1) : strlen(p);
}

/* One session's transcript, readable, escaped, its tail if it is long. */
static void transcript_block(struct web_request *req, const struct web_task_page *page, int64_t session, bool open)
{
        const char *text;
        size_t len;
        FILE *f = req->out;

        fprintf(f, "<details%s><summary>Session %" PRId64 "</summary>", open ? " open" : "", session);
        if (page->transcript_busy) {
                fputs("<p class=\"muted\">The dashboard is rendering other transcripts: reload in a moment.</p>"
                      "</details>",
                      f);
                return;
        }
        session_part(page->transcript.out, session, &text, &len);
        if (!text) {
                fputs("<p class=\"muted\">No transcript (the session never started, or it cannot be read).</p>", f);
                if (*page->transcript.err) {
                        fputs("<pre>", f);
                        web_h(f, page->transcript.err);
                        fputs("</pre>", f);
                }
                fputs("</details>", f);
                return;
        }
        if (len > TRANSCRIPT_SHOWN) {
                size_t cut = len - TRANSCRIPT_SHOWN;
                while (cut < len && text[cut - 1] != '\n') /* at a line: never inside a UTF-8 character */
                        cut++;
                fprintf(f, "<p class=\"muted\">The first %zu KiB are left out here: jada-agent transcript %" PRId64
                           "</p>",
                        cut / 1024, session);
                text += cut;
                len -= cut;
        }
        fputs("<pre>", f);
        web_hn(f, text, len);
        fputs("</pre></details>", f);
}

static void sessions_block(struct web_request *req, const struct web_task_page *page)
{
        const struct session_row *rows = page->rows;
        size_t n = page->n_rows;
        FILE *f = req->out;

        if (n == 0)
                return;
        fputs("<h2>Sessions</h2><div class=\"scroll\"><table><tr><th>ID</th><th>Started</th><th>Duration</th>"
              "<th>Outcome</th><th>Turns</th><th>Cost</th></tr>",
              f);
        for (size_t i = 0; i < n; i++) {
                char duration[32] = "running";
                web_duration(duration, sizeof duration, rows[i].outcome, rows[i].started_at, rows[i].ended_at);
                fprintf(f, "<tr><td>%" PRId64 "</td><td>", rows[i].id);
                web_time(f, rows[i].started_at);
                fprintf(f, "</td><td>%s</td><td>", duration);
                web_h(f, rows[i].outcome ? rows[i].outcome : "running");
                if (rows[i].error) {
                        fputs(": ", f);
                        web_h(f, rows[i].error);
                }
                fprintf(f, "</td><td class=\"num\">%" PRId64 "</td><td class=\"num\">$%.4f</td></tr>", rows[i].turns,
                        rows[i].cost_usd);
        }
        fputs("</table></div><h2>Transcripts</h2>", f);
        if (page->transcript.out_truncated)
                fprintf(f, "<p class=\"muted\">Longer than the page holds: jada-agent transcript --task %" PRId64 "</p>",
                        page->task->id);
        for (size_t i = 0; i < n; i++)
                transcript_block(req, page, rows[i].id, i == n - 1);
}

/* A list of tasks (sub-tasks, after-tasks), each linked with its state. */
static void task_links(FILE *f, const char *title, const struct queue_task *tasks, size_t n)
{
        if (n == 0)
                return;
        fprintf(f, "<h2>%s</h2><ul>", title);
        for (size_t i = 0; i < n; i++) {
                fprintf(f, "<li><a href=\"/tasks/%" PRId64 "\">%" PRId64 ": ", tasks[i].id, tasks[i].id);
                web_h(f, tasks[i].title);
                fprintf(f, "</a> <span class=\"state state-%s\">%s</span></li>", task_state_name(tasks[i].state),
                        task_state_name(tasks[i].state));
        }
        fputs("</ul>", f);
}

static void diff_block(struct web_request *req, const struct web_task_page *page)
{
        FILE *f = req->out;

        if (!page->task->branch)
                return;
        fprintf(f, "<h2>Changes on %s</h2>", "its branch");
        if (page->diff_busy) {
                fputs("<p class=\"muted\">Busy: reload in a moment.</p>", f);
                return;
        }
        if (page->diff.status != 0) {
                fputs("<p class=\"muted\">No diff: ", f);
                web_h(f, job_result_why(&((struct web_task_page *)page)->diff));
                fputs("</p>", f);
                return;
        }
        if (page->diff.out_len == 0) {
                fputs("<p class=\"muted\">No changes yet.</p>", f);
                return;
        }
        if (page->diff.out_truncated)
                fprintf(f, "<p class=\"muted\">Cut at %zu KiB: jada-agent task diff %" PRId64 "</p>",
                        page->diff.out_len / 1024, page->task->id);
        fputs("<pre>", f);
        web_hn(f, page->diff.out, page->diff.out_len);
        fputs("</pre>", f);
}

enum MHD_Result web_page_task_finish(struct web_request *req)
{
        struct web *w = req->web;
        struct web_task_page *page = req->page;
        const struct queue_task *t = page->task;
        int64_t id = t->id;
        char buf[160];
        double cap = queue_cost_cap(t, w->config->claude.max_cost_per_task_usd);
        FILE *f = req->out;

        snprintf(buf, sizeof buf, "Task %" PRId64, id);
        web_page_begin(req, buf, "Tasks");
        fprintf(f, "<h1>Task %" PRId64 ": ", id);
        web_h(f, t->title);
        fprintf(f, " <span class=\"state state-%s\">%s</span></h1>", task_state_name(t->state),
                task_state_name(t->state));

        if (t->state == TASK_NEEDS_YOU) {
                fputs("<div class=\"question\"><strong>The agent asks:</strong> ", f);
                web_h(f, t->needs_you_reason ? t->needs_you_reason : "(no question given)");
                fprintf(f, "</div><form method=\"post\" action=\"/tasks/%" PRId64 "/reply\">", id);
                web_csrf_field(req);
                fputs("<label>Your reply (the next session resumes the conversation with it)"
                      "<textarea name=\"text\" required></textarea></label>"
                      "<button type=\"submit\">Reply</button></form>",
                      f);
        }
        fputs("<p>", f);
        if (task_action_applies(TASK_ACTION_RETRY, t->state))
                web_action_button(req, id, "retry", "Retry", false);
        if (task_action_applies(TASK_ACTION_DONE, t->state))
                web_action_button(req, id, "done", "Mark done", false);
        if (task_action_applies(TASK_ACTION_CANCEL, t->state))
                web_action_button(req, id, "cancel", "Cancel", true);
        fputs("</p>", f);
        text_block(f, "Error", t->error);

        if (page->parent) {
                fprintf(f, "<p>A sub-task of <a href=\"/tasks/%" PRId64 "\">task %" PRId64 ": ", page->parent->id,
                        page->parent->id);
                web_h(f, page->parent->title);
                fputs("</a></p>", f);
        }
        task_links(f, "Sub-tasks", page->children, page->n_children);
        task_links(f, "Runs after", page->after, page->n_after);

        fputs("<div class=\"scroll\"><table>", f);
        fact(f, "project", t->project);
        fact(f, "branch", t->branch);
        fact(f, "base", t->base);
        fact(f, "worktree", t->worktree);
        snprintf(buf, sizeof buf, "%" PRId64, t->priority);
        fact(f, "priority", buf);
        snprintf(buf, sizeof buf, "%" PRId64 " sessions, %" PRId64 " turns, $%.4f, %" PRId64 " failed attempts",
                 t->sessions_used, t->turns_used, t->cost_usd, t->attempts);
        fact(f, "used", buf);
        if (cap > 0) {
                snprintf(buf, sizeof buf, "$%.2f of $%.2f", t->cost_usd, cap);
                fact(f, "cost cap", buf);
        }
        fputs("<tr><th>created</th><td>", f);
        web_time(f, t->created_at);
        fputs("</td></tr><tr><th>updated</th><td>", f);
        web_time(f, t->updated_at);
        fputs("</td></tr></table></div>", f);

        text_block(f, "Prompt", t->prompt);
        text_block(f, "Reply", t->reply);
        text_block(f, "Result", t->result);

        fputs("<h2>Events</h2><ol class=\"timeline\">", f);
        for (size_t i = 0; i < page->n_events; i++) {
                fputs("<li>", f);
                web_time(f, page->events[i].at);
                fprintf(f, " %s → <strong>%s</strong> ",
                        page->events[i].old_state >= 0 ? task_state_name(page->events[i].old_state) : "(new)",
                        task_state_name(page->events[i].new_state));
                web_h(f, page->events[i].reason);
                fputs("</li>", f);
        }
        fputs("</ol>", f);
        diff_block(req, page);
        sessions_block(req, page);
        web_page_end(req);
        return web_reply_page(req, MHD_HTTP_OK);
}

static void page_child_done(struct web_task_page *page)
{
        struct web_request *req = page->req;

        if ((page->transcript_job || page->diff_job) || req->ready)
                return;
        req->ready = true;
        if (req->suspended) {
                req->suspended = false;
                MHD_resume_connection(req->conn);
                web_kick(req->web);
        }
}

static void on_transcript(struct job_result *result, void *userdata)
{
        struct web_task_page *page = userdata;

        page->transcript = *result;
        *result = (struct job_result){ 0 };
        page->transcript_job = NULL;
        page->req->web->children--;
        page_child_done(page);
}

static void on_diff(struct job_result *result, void *userdata)
{
        struct web_task_page *page = userdata;

        page->diff = *result;
        *result = (struct job_result){ 0 };
        page->diff_job = NULL;
        page->req->web->children--;
        page_child_done(page);
}

/* `jada-agent -c CONFIG ARGS...` as a child: rendering a 10 MB transcript
 * takes ~100 ms of CPU that the loop must not spend. */
static int start_child(struct web_request *req, const char *const *args, size_t capture, job_done_t done,
                       struct job **ret)
{
        struct web *w = req->web;
        const char *path = getenv("PATH"), *state = getenv("STATE_DIRECTORY");
        _cleanup_free_ char *path_env = xasprintf("PATH=%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
        /* The child finds the same state dir: the config names it, or systemd does. */
        _cleanup_free_ char *state_env = state ? xasprintf("STATE_DIRECTORY=%s", state) : NULL;
        const char *env[] = { path_env, "LC_ALL=C.UTF-8", state_env, NULL };
        const char *argv[8];
        size_t k = 0;
        int r;

        argv[k++] = w->exe;
        argv[k++] = "-c";
        argv[k++] = w->config_path;
        for (; *args && k < 7; args++)
                argv[k++] = *args;
        argv[k] = NULL;
        r = job_start(w->event, &(struct job_spec){ .argv = argv, .env = env, .cwd = "/", .timeout = 60 * USEC_PER_SEC,
                                                    .capture_max = capture, .stdout_fd = -1,
                                                    /* Its end resumes an MHD connection: never in
                                                     * the middle of a run of MHD (web_run_job). */
                                                    .store = w->db },
                      done, req->page, ret);
        if (r >= 0)
                w->children++;
        return r;
}

enum MHD_Result web_page_task(struct web_request *req, int64_t id)
{
        struct web *w = req->web;
        struct web_task_page *page;
        char id_arg[24];
        int r;

        page = xcalloc(1, sizeof *page);
        page->req = req;
        req->page = page;
        r = queue_get(w->db, id, &page->task);
        if (r == -ENOENT)
                return web_reply_error(req, MHD_HTTP_NOT_FOUND, "There is no task %" PRId64 ".", id);
        if (r < 0)
                return web_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "Cannot read task %" PRId64 ": %s", id,
                                       strerror(-r));
        (void)queue_events(w->db, id, EVENTS_SHOWN, &page->events, &page->n_events);
        (void)session_store_list_task(w->db, id, &page->rows, &page->n_rows);
        (void)queue_children(w->db, id, &page->children, &page->n_children);
        (void)queue_after_tasks(w->db, id, &page->after, &page->n_after);
        if (page->task->parent_id && queue_get(w->db, page->task->parent_id, &page->parent) < 0)
                page->parent = NULL;

        snprintf(id_arg, sizeof id_arg, "%" PRId64, id);
        if (w->children + 2 > WEB_CHILDREN_MAX || !w->exe || !w->config_path) {
                page->transcript_busy = page->n_rows > 0;
                page->diff_busy = page->task->branch != NULL;
        } else {
                if (page->n_rows > 0 &&
                    start_child(req, (const char *const[]){ "transcript", "--task", id_arg, NULL }, TRANSCRIPT_CAPTURE,
                                on_transcript, &page->transcript_job) < 0)
                        page->transcript_busy = true;
                if (page->task->branch &&
                    start_child(req, (const char *const[]){ "task", "diff", id_arg, NULL }, DIFF_CAPTURE, on_diff,
                                &page->diff_job) < 0)
                        page->diff_busy = true;
        }
        if (!page->transcript_job && !page->diff_job)
                return web_page_task_finish(req);
        /* Until the children end: MHD answers this connection later, and
         * serves the others meanwhile. */
        req->suspended = true;
        req->next_waiting = w->waiting;
        w->waiting = req;
        MHD_suspend_connection(req->conn);
        return MHD_YES;
}
