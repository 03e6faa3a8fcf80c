/* SPDX-License-Identifier: MIT */
/* The dashboard's page of one task: its question and the reply form, its
 * actions, prompt and result, its events as a timeline, its sessions and
 * their transcripts. */
#include "web-private.h"
#include "jada/session-store.h"
#include "jada/task-action.h"
#include "jada/transcript.h"
#include "jada/util.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* A transcript shown on the page is cut to its last part past this; the
 * whole is `jada-agent transcript SESSION`. */
#define TRANSCRIPT_SHOWN (256 * 1024)
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

static void on_line(const char *text, size_t len, void *userdata)
{
        transcript_render(userdata, text, len);
}

/* One session's transcript, readable, escaped, its tail if it is long. */
static void transcript_block(struct web_request *req, int64_t session, bool open)
{
        _cleanup_free_ char *path = transcript_path(req->web->config->daemon.state_dir, session);
        struct transcript_reader *reader = NULL;
        struct transcript_view view = { 0 };
        char *buf = NULL;
        size_t len = 0;
        FILE *f = req->out;
        int r;

        fprintf(f, "<details%s><summary>Session %" PRId64 "</summary>", open ? " open" : "", session);
        r = transcript_reader_open(path, &reader);
        if (r == -ENOENT) {
                fputs("<p class=\"muted\">No transcript (the session never started).</p></details>", f);
                return;
        }
        if (r < 0) {
                fprintf(f, "<p class=\"problem\">Cannot read the transcript: %s</p></details>", strerror(-r));
                return;
        }
        view.out = open_memstream(&buf, &len);
        if (!view.out)
                abort();
        r = transcript_reader_next(reader, on_line, &view);
        fclose(view.out);
        transcript_reader_free(reader);
        if (r < 0)
                fprintf(f, "<p class=\"problem\">The transcript is damaged past this point: %s</p>",
                        r == -EBADMSG ? "not a zstd stream" : strerror(-r));
        if (len > TRANSCRIPT_SHOWN) {
                size_t cut = len - TRANSCRIPT_SHOWN;
                while (cut < len && buf[cut] != '\n') /* at a line, and so never inside a UTF-8 character */
                        cut++;
                fprintf(f, "<p class=\"muted\">The first %zu KiB are left out here: jada-agent transcript %" PRId64
                           "</p>",
                        cut / 1024, session);
                fputs("<pre>", f);
                web_hn(f, buf + cut, len - cut);
        } else {
                fputs("<pre>", f);
                web_hn(f, buf, len);
        }
        fputs("</pre></details>", f);
        free(buf);
}

static void sessions_block(struct web_request *req, const struct session_row *rows, size_t n)
{
        FILE *f = req->out;

        if (n == 0)
                return;
        fputs("<h2>Sessions</h2><div class=\"scroll\"><table><tr><th>ID</th><th>Started</th><th>Duration</th>"
              "<th>Outcome</th><th>Turns</th><th>Cost</th></tr>",
              f);
        for (size_t i = 0; i < n; i++) {
                char duration[32] = "running";
                if (rows[i].outcome && rows[i].ended_at >= rows[i].started_at)
                        duration_format(duration, sizeof duration,
                                        (uint64_t)(rows[i].ended_at - rows[i].started_at) * USEC_PER_SEC);
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
        for (size_t i = 0; i < n; i++)
                transcript_block(req, rows[i].id, i == n - 1);
}

enum MHD_Result web_page_task(struct web_request *req, int64_t id)
{
        struct web *w = req->web;
        struct queue_task *t = NULL;
        struct queue_event *events = NULL;
        struct session_row *rows = NULL;
        size_t n_events = 0, n_rows = 0;
        char buf[128];
        double cap;
        FILE *f = req->out;
        int r;

        r = queue_get(w->db, id, &t);
        if (r == -ENOENT)
                return web_reply_error(req, MHD_HTTP_NOT_FOUND, "There is no task %" PRId64 ".", id);
        if (r < 0)
                return web_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "Cannot read task %" PRId64 ": %s", id,
                                       strerror(-r));
        (void)queue_events(w->db, id, EVENTS_SHOWN, &events, &n_events);
        (void)session_store_list_task(w->db, id, &rows, &n_rows);
        cap = queue_cost_cap(t, w->config->claude.max_cost_per_task_usd);

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

        fputs("<div class=\"scroll\"><table>", f);
        fact(f, "project", t->project);
        fact(f, "branch", t->branch);
        fact(f, "base", t->base);
        fact(f, "worktree", t->worktree);
        if (t->branch) {
                snprintf(buf, sizeof buf, "jada-agent task diff %" PRId64 "   (or: git log %s)", id, t->branch);
                fact(f, "review", buf);
        }
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
        for (size_t i = 0; i < n_events; i++) {
                fputs("<li>", f);
                web_time(f, events[i].at);
                fprintf(f, " %s → <strong>%s</strong> ",
                        events[i].old_state >= 0 ? task_state_name(events[i].old_state) : "(new)",
                        task_state_name(events[i].new_state));
                web_h(f, events[i].reason);
                fputs("</li>", f);
        }
        fputs("</ol>", f);
        sessions_block(req, rows, n_rows);
        web_page_end(req);

        session_rows_free(rows, n_rows);
        queue_events_free(events, n_events);
        queue_task_free(t);
        return web_reply_page(req, MHD_HTTP_OK);
}
