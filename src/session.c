/* SPDX-License-Identifier: MIT */
#include "jada/session.h"
#include "session-private.h"
#include "jada/conversation.h"
#include "jada/budget.h"
#include "jada/store.h"
#include "jada/queue.h"
#include "jada/session-store.h"
#include "jada/child.h"
#include "jada/config.h"
#include "jada/log.h"
#include "jada/project.h"
#include "jada/stream.h"
#include "jada/transcript.h"
#include "jada/util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-id128.h>
#include <unistd.h>

/* Reads per IO callback: a chatty child must not starve the rest of the loop. */
#define READS_PER_EVENT 16
#define READ_CHUNK (64 * 1024)

void sessions_changed(struct sessions *m)
{
        if (m->callbacks.changed)
                m->callbacks.changed(m->callbacks.userdata);
}

void sessions_db_failed(struct sessions *m, int r, const char *what)
{
        if (m->callbacks.db_failed)
                m->callbacks.db_failed(r, what, m->callbacks.userdata);
}

unsigned sessions_running(const struct sessions *m)
{
        return m->n;
}

bool sessions_hold(const struct sessions *m, int64_t task_id)
{
        for (const struct session *s = m->list; s; s = s->next)
                if (s->task->id == task_id)
                        return true;
        return false;
}

const char **sessions_busy_projects(const struct sessions *m)
{
        const char **names = xcalloc(m->n + 1, sizeof *names);
        size_t k = 0;

        for (const struct session *s = m->list; s; s = s->next)
                if (s->shared)
                        names[k++] = s->project;
        return names;
}

bool sessions_unrecorded(const struct sessions *m)
{
        return m->unrecorded != NULL;
}

bool sessions_first(const struct sessions *m, int64_t *ret_task_id, unsigned *ret_turns)
{
        if (!m->list)
                return false;
        *ret_task_id = m->list->task->id;
        *ret_turns = stream_parser_stats(m->list->parser)->turns;
        return true;
}

size_t sessions_live(const struct sessions *m, int64_t *task_ids, unsigned *turns, size_t max)
{
        size_t n = 0;

        for (const struct session *s = m->list; s && n < max; s = s->next) {
                task_ids[n] = s->task->id;
                turns[n] = stream_parser_stats(s->parser)->turns;
                n++;
        }
        return n;
}

/* ---- supervision --------------------------------------------------------- */


static void kill_group(struct session *s, int sig)
{
        if (s->pid > 0 && kill(-s->pid, sig) < 0 && errno == ESRCH && !s->exited)
                (void)kill(s->pid, sig);
}

static int on_kill_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
        struct session *s = userdata;

        session_log(s, LOG_WARNING, "task %lld: claude did not stop within %llus of SIGTERM: SIGKILL",
                    (long long)s->task->id, (unsigned long long)(SESSION_KILL_GRACE_USEC / USEC_PER_SEC));
        kill_group(s, SIGKILL);
        return 0;
}

static void session_abandon(struct session *s);

/* May free s (a session still preparing its worktree has no child to wait for). */
static void session_stop(struct session *s, enum session_stop why)
{
        if (s->stop != SESSION_STOP_NONE || s->exited)
                return;
        s->stop = why;
        if (s->pid == 0) {
                session_abandon(s);
                return;
        }
        kill_group(s, SIGTERM);
        if (sd_event_add_time_relative(s->m->event, &s->kill_timer, CLOCK_MONOTONIC, SESSION_KILL_GRACE_USEC,
                                       100 * USEC_PER_MSEC, on_kill_timer, s) < 0)
                kill_group(s, SIGKILL); /* cannot wait for it: do not leave it running */
}

void sessions_stop_all(struct sessions *m, enum session_stop why)
{
        for (struct session *s = m->list, *next; s; s = next) {
                next = s->next;
                session_stop(s, why);
        }
}

void sessions_check_cancelled(struct sessions *m)
{
        for (struct session *s = m->list, *next; s; s = next) {
                struct queue_task *t = NULL;
                next = s->next;
                if (queue_get(m->db, s->task->id, &t) == 0 && t->state == TASK_CANCELLED) {
                        session_log(s, LOG_NOTICE, "task %lld was cancelled: stopping its session",
                                    (long long)s->task->id);
                        session_stop(s, SESSION_STOP_CANCELLED);
                }
                queue_task_free(t);
        }
}

static int on_deadline(sd_event_source *src, uint64_t usec, void *userdata)
{
        struct session *s = userdata;
        session_log(s, LOG_WARNING, "task %lld: session_timeout reached: stopping claude", (long long)s->task->id);
        session_stop(s, SESSION_STOP_TIMEOUT);
        return 0;
}

static int on_idle(sd_event_source *src, uint64_t usec, void *userdata)
{
        struct session *s = userdata;
        session_log(s, LOG_WARNING, "task %lld: no output for idle_timeout: stopping claude", (long long)s->task->id);
        session_stop(s, SESSION_STOP_IDLE);
        return 0;
}

static void output_seen(struct session *s)
{
        if (s->idle)
                (void)sd_event_source_set_time_relative(s->idle, s->m->config->claude.idle_timeout);
}

/* Reads what is in the stdout pipe now; returns 0 at EOF, 1 if more may come. */
static int drain_stdout(struct session *s)
{
        char buf[READ_CHUNK];

        for (unsigned i = 0; i < READS_PER_EVENT; i++) {
                ssize_t n = read(s->out_fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN ? 1 : 0;
                if (n == 0)
                        return 0;
                output_seen(s);
                if (s->transcript && transcript_write(s->transcript, buf, (size_t)n) < 0) {
                        session_log(s, LOG_WARNING, "task %lld: cannot write the session's transcript: %s; "
                                    "the session goes on without it", (long long)s->task->id,
                                    strerror(errno ? errno : EIO));
                        (void)transcript_close(s->transcript);
                        s->transcript = NULL;
                }
                if (stream_parser_feed(s->parser, buf, (size_t)n) == -E2BIG) {
                        session_log(s, LOG_ERR, "task %lld: claude wrote a line longer than %d bytes: stopping it",
                                    (long long)s->task->id, SESSION_MAX_LINE);
                        session_stop(s, SESSION_STOP_PROTOCOL);
                        return 0;
                }
        }
        return 1;
}

static void check_turns(struct session *s)
{
        unsigned turns = stream_parser_stats(s->parser)->turns, max = s->m->config->claude.max_turns;

        /* --max-turns N allows N requests and reports N+1; more than that
         * means the limit did not hold: stop it ourselves. */
        if (turns > max + 1) {
                session_log(s, LOG_ERR, "task %lld: %u turns, past max_turns %u: stopping claude",
                            (long long)s->task->id, turns, max);
                session_stop(s, SESSION_STOP_TURNS);
        }
        if (turns != s->turns_published) {
                s->turns_published = turns;
                sessions_changed(s->m);
        }
}

static int on_stdout(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        struct session *s = userdata;

        if (drain_stdout(s) == 0)
                (void)sd_event_source_set_enabled(src, SD_EVENT_OFF);
        check_turns(s);
        return 0;
}

/* claude's stderr goes to the journal, a line at a time, with the task's
 * fields; control characters are replaced, long lines cut. */
static void stderr_flush(struct session *s)
{
        if (s->err_len == 0)
                return;
        s->err_line[s->err_len] = '\0';
        for (size_t i = 0; i < s->err_len; i++)
                if ((unsigned char)s->err_line[i] < 0x20 || s->err_line[i] == 0x7f)
                        s->err_line[i] = ' ';
        session_log(s, LOG_NOTICE, "task %lld: claude: %s", (long long)s->task->id, s->err_line);
        s->err_len = 0;
}

static int on_stderr(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        struct session *s = userdata;
        char buf[4096];

        for (unsigned i = 0; i < READS_PER_EVENT; i++) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (n == 0 || errno != EAGAIN) {
                                stderr_flush(s);
                                (void)sd_event_source_set_enabled(src, SD_EVENT_OFF);
                        }
                        break;
                }
                output_seen(s);
                for (ssize_t j = 0; j < n; j++) {
                        if (buf[j] == '\n' || s->err_len == STDERR_LINE_MAX)
                                stderr_flush(s);
                        if (buf[j] != '\n')
                                s->err_line[s->err_len++] = buf[j];
                }
        }
        return 0;
}

/* A discarded session's row was rolled back: its transcript names a row
 * that does not exist, and no pruning would ever find it. */
static void discard_transcript(struct session *s)
{
        _cleanup_free_ char *path = NULL;

        if (!s->transcript)
                return;
        (void)transcript_close(s->transcript);
        s->transcript = NULL;
        path = transcript_path(s->m->config->daemon.state_dir, s->row);
        if (unlink(path) < 0 && errno != ENOENT)
                log_warning_errno(-errno, "cannot remove %s", path);
}

static void finish_job(void *userdata)
{
        struct session *s = userdata;

        if (s->discarded) {
                struct sessions *m = s->m;
                discard_transcript(s);
                session_free(s);
                sessions_changed(m);
                return;
        }
        session_finish(s);
}

void sessions_discard(struct sessions *m, int64_t task_id)
{
        for (struct session *s = m->list; s; s = s->next) {
                if (s->task->id != task_id || s->discarded)
                        continue;
                session_log(s, LOG_WARNING, "task %lld: its claim was not committed: the session just started "
                            "is killed and forgotten (the task is still queued)", (long long)task_id);
                s->discarded = true;
                if (s->pid > 0 && !s->exited)
                        kill_group(s, SIGKILL);         /* on_child frees it */
                else if (s->pid == 0) {
                        discard_transcript(s);
                        session_free(s);                /* still preparing: cancels that */
                        sessions_changed(m);
                }
                return;
        }
}

static int on_child(sd_event_source *src, const siginfo_t *si, void *userdata)
{
        struct session *s = userdata;

        s->exited = true;
        s->exit_status = si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;
        /* Tools the agent started may still hold the pipes: the group goes too. */
        (void)kill(-s->pid, SIGKILL);
        while (drain_stdout(s) == 1)
                ;
        /* The outcome is recorded in the store: where it may wait for it. */
        store_run_once(s->m->db, &s->finish_job, finish_job, s);
        return 0;
}

/* ---- start and finish ---------------------------------------------------- */

void session_free(struct session *s)
{
        struct session **p;

        for (p = &s->m->list; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        s->m->n--;
                        break;
                }
        project_op_cancel(s->op);
        store_job_cancel(&s->finish_job);
        if (s->finished)
                session_record_free(s->finished);
        sd_event_source_disable_unref(s->child_source);
        sd_event_source_disable_unref(s->out_source);
        sd_event_source_disable_unref(s->err_source);
        sd_event_source_disable_unref(s->deadline);
        sd_event_source_disable_unref(s->idle);
        sd_event_source_disable_unref(s->kill_timer);
        if (s->out_fd >= 0)
                close(s->out_fd);
        if (s->err_fd >= 0)
                close(s->err_fd);
        if (s->exec_fd >= 0)
                close(s->exec_fd);
        stream_parser_free(s->parser);
        (void)transcript_close(s->transcript);
        queue_task_free(s->task);
        free(s->work_dir);
        free(s->project);
        free(s->branch);
        free(s);
}

/* The session's row and the task's count of it, in one transaction. */
static int begin_in_db(struct store *db, void *userdata)
{
        struct session *s = userdata;
        int64_t now = now_seconds();
        int r = session_store_begin(db, s->task->id, now, s->claude_id, s->resumed, &s->row);

        if (r == 0)
                r = queue_note_session_start(db, s->task->id, s->claude_id, now);
        if (r < 0)
                s->row = 0;
        return r;
}

/* A session that did not start: the task was claimed, so it is given back
 * (queued again, or to needs_you, or failed past max_attempts), and a row
 * already written is closed without taking a slot of the budget. */
static void session_not_started(struct session *s, enum task_state to, const char *outcome, const char *reason,
                                int64_t delay, bool count_attempt)
{
        struct sessions *m = s->m;
        struct session_record *rec = xcalloc(1, sizeof *rec);
        int64_t now = now_seconds();

        rec->task_id = s->task->id;
        rec->row = s->row;
        rec->now = now;
        rec->error = xstrdup(reason);
        rec->uncounted = xstrdup("never started");
        rec->end = (struct session_end){ .outcome = outcome, .exit_status = -1, .reported_cost_usd = -1,
                                         .error = rec->error, .uncounted = rec->uncounted };
        if (count_attempt && s->task->attempts + 1 >= m->config->claude.max_attempts)
                to = TASK_FAILED;
        rec->transition = s->stop != SESSION_STOP_CANCELLED;
        rec->to = to;
        rec->reason = xstrdup(reason);
        rec->needs_you_reason = to == TASK_NEEDS_YOU ? xstrdup(reason) : NULL;
        rec->change = (struct queue_change){ .reason = rec->reason, .run_after = to == TASK_QUEUED ? now + delay : 0,
                                             .only_from = 1u << TASK_RUNNING, .count_attempt = count_attempt,
                                             .error = to == TASK_FAILED ? rec->reason : NULL,
                                             .needs_you_reason = rec->needs_you_reason };
        /* Only once the row exists did the task give up its slot and reply. */
        if (s->row > 0)
                session_record_release(s, rec);
        session_log(s, to == TASK_QUEUED ? LOG_WARNING : LOG_ERR, "task %lld: no session: %s → %s",
                    (long long)s->task->id, reason, task_state_name(to));
        session_record_commit(m, rec);
}

static int session_spawn(struct session *s);

/* Stopped while its worktree was being prepared: given back unstarted. */
static void session_abandon(struct session *s)
{
        struct sessions *m = s->m;
        struct session_result result = { .task_id = s->task->id, .kind = OUTCOME_NOT_STARTED };

        project_op_cancel(s->op);
        s->op = NULL;
        session_not_started(s, TASK_QUEUED, "interrupted", "stopped before claude started", 0, false);
        session_free(s);
        if (m->callbacks.ended)
                m->callbacks.ended(&result, m->callbacks.userdata);
}

static void on_prepared(enum project_verdict verdict, const char *reason, void *userdata)
{
        struct session *s = userdata;
        struct sessions *m = s->m;
        struct session_result result = { .task_id = s->task->id, .kind = OUTCOME_NOT_STARTED };

        s->op = NULL;
        if (verdict == PROJECT_OK && session_spawn(s) == 0)
                return;
        if (verdict == PROJECT_NEEDS_YOU)
                session_not_started(s, TASK_NEEDS_YOU, "project_error", reason, 0, false);
        else if (verdict == PROJECT_RETRY)
                session_not_started(s, TASK_QUEUED, "project_error", reason,
                                    outcome_backoff(s->task->attempts + 1), true);
        /* (session_spawn recorded its own failure) */
        session_free(s);
        if (m->callbacks.ended)
                m->callbacks.ended(&result, m->callbacks.userdata);
}

/* A fleet's resume: the conversation the last session left, from whichever
 * node ran it, where this node's CLI looks for it. Without it the CLI says
 * it has no such conversation, and the outcome starts a new one. */
static void session_restore_conversation(struct session *s, const char *home)
{
        _cleanup_free_ char *config_dir = xasprintf("%s/.claude", home), *text = NULL, *node = NULL;
        _cleanup_free_ char *path = conversation_path(config_dir, s->work_dir, s->claude_id);
        int r = conversation_store_load(s->m->db, s->task->id, s->claude_id, &text, &node);

        if (r == -ENOENT)
                return;
        if (r < 0) {
                session_log(s, LOG_WARNING, "task %lld: cannot read its conversation from the database: %s",
                            (long long)s->task->id, strerror(-r));
                return;
        }
        /* Ours, and still here: the file may be newer than the row (a
         * session whose end was not stored). */
        if (strcmp(node, store_node(s->m->db)) == 0 && access(path, F_OK) == 0)
                return;
        r = conversation_unpack(text, path);
        if (r < 0)
                session_log(s, LOG_WARNING, "task %lld: cannot restore its conversation from node %s to %s: %s",
                            (long long)s->task->id, node, path, strerror(-r));
        else
                session_log(s, LOG_INFO, "task %lld: its conversation from node %s is restored for the resume",
                            (long long)s->task->id, node);
}

/* From the prompt to a supervised child. On failure the start is
 * recorded as not made; the caller frees the session. */
static int session_spawn(struct session *s)
{
        struct sessions *m = s->m;
        const struct jada_config *c = m->config;
        struct queue_task *task = s->task;
        _cleanup_free_ char *home = xasprintf("%s/home", c->daemon.state_dir);
        _cleanup_free_ char *work_root = xasprintf("%s/work", c->daemon.state_dir);
        _cleanup_free_ char *why = NULL, *config_path = NULL, *self_dir = NULL;
        struct child child;
        int r, in_fd;

        /* The transcript is a record, not a condition: without it the session still runs. */
        r = transcript_open(c->daemon.state_dir, s->row, &s->transcript);
        if (r < 0)
                log_warning_errno(r, "task %lld: cannot create the session's transcript", (long long)task->id);
        in_fd = child_prompt_fd(work_root, s->resumed ? (task->reply ? task->reply : SESSION_CONTINUE_PROMPT)
                                                      : task->prompt);
        if (in_fd < 0) {
                r = log_error_errno(in_fd, "task %lld: cannot write its prompt file", (long long)task->id);
                goto fail;
        }
        if (s->resumed && store_is_postgresql(m->db))
                session_restore_conversation(s, home);
        config_path = c->path ? realpath(c->path, NULL) : NULL;
        self_dir = realpath("/proc/self/exe", NULL);
        if (self_dir && strrchr(self_dir, '/'))
                *strrchr(self_dir, '/') = '\0';
        r = child_spawn(&(struct child_spec){ .config = c, .task_id = task->id, .claude_id = s->claude_id,
                                              .resumed = s->resumed, .home = home, .work_dir = s->work_dir,
                                              .stdin_fd = in_fd, .project = s->project, .branch = s->branch,
                                              .max_budget_usd = s->max_budget_usd,
                                              .config_path = config_path ? config_path : c->path ? c->path : "",
                                              .self_dir = self_dir && *self_dir ? self_dir : NULL },
                        &child);
        close(in_fd);
        if (r < 0) {
                log_error_errno(r, "task %lld: cannot start claude", (long long)task->id);
                goto fail; /* counted, not run: the row is closed below */
        }
        s->pid = child.pid;
        s->out_fd = child.out_fd;
        s->err_fd = child.err_fd;
        s->exec_fd = child.exec_fd;
        (void)session_store_set_pid(m->db, s->row, s->pid, child_start_time(s->pid));

        if ((r = sd_event_add_child(m->event, &s->child_source, s->pid, WEXITED, on_child, s)) < 0 ||
            (r = sd_event_add_io(m->event, &s->out_source, s->out_fd, EPOLLIN, on_stdout, s)) < 0 ||
            (r = sd_event_add_io(m->event, &s->err_source, s->err_fd, EPOLLIN, on_stderr, s)) < 0 ||
            (r = sd_event_add_time_relative(m->event, &s->deadline, CLOCK_MONOTONIC, c->claude.session_timeout,
                                            USEC_PER_SEC, on_deadline, s)) < 0 ||
            (r = sd_event_add_time_relative(m->event, &s->idle, CLOCK_MONOTONIC, c->claude.idle_timeout,
                                            USEC_PER_SEC, on_idle, s)) < 0) {
                /* Cannot supervise it: it must not run unsupervised. */
                log_error_errno(r, "task %lld: cannot watch claude; killing it", (long long)task->id);
                kill_group(s, SIGKILL);
                if (!s->child_source) {
                        (void)waitpid(s->pid, NULL, 0); /* SIGKILLed: returns at once */
                        s->exited = true;
                        s->exit_status = 128 + SIGKILL;
                        session_finish(s);
                }
                return 0; /* recorded by session_finish, now or when the child is reaped */
        }
        /* Should the source ever be freed before the child exits, sd-event
         * kills the child rather than leave it unsupervised. */
        (void)sd_event_source_set_child_process_own(s->child_source, true);
        session_log(s, LOG_INFO, "task %lld: session started (%s %s, pid %d%s%s)", (long long)task->id,
                    s->resumed ? "resuming" : "new conversation", s->claude_id, (int)s->pid,
                    s->branch ? ", branch " : "", s->branch ? s->branch : "");
        sessions_changed(m);
        return 0;
fail:
        why = xasprintf("could not start: %s", strerror(-r));
        session_not_started(s, TASK_QUEUED, "launch_error", why, 60, false);
        return r;
}

int sessions_start(struct sessions *m, struct queue_task *task)
{
        const struct jada_config *c = m->config;
        const struct project_config *p = NULL;
        _cleanup_free_ char *home = xasprintf("%s/home", c->daemon.state_dir);
        _cleanup_free_ char *work_root = xasprintf("%s/work", c->daemon.state_dir);
        _cleanup_free_ char *why = NULL;
        struct session *s = xcalloc(1, sizeof *s);
        int r;

        *s = (struct session){ .m = m, .task = task, .out_fd = -1, .err_fd = -1, .exec_fd = -1 };
        /* Resume the task's conversation if it has one; else a new one. */
        s->resumed = task->claude_session_id && task->sessions_used > 0;
        if (s->resumed) {
                snprintf(s->claude_id, sizeof s->claude_id, "%s", task->claude_session_id);
        } else {
                sd_id128_t id;
                r = sd_id128_randomize(&id);
                if (r < 0)
                        goto fail;
                sd_id128_to_uuid_string(id, s->claude_id);
        }
        snprintf(s->task_field, sizeof s->task_field, "JADA_TASK_ID=%lld", (long long)task->id);
        snprintf(s->claude_field, sizeof s->claude_field, "JADA_CLAUDE_SESSION_ID=%s", s->claude_id);

        /* What may still be spent: the task's cap and the day's limit, the
         * smaller to the CLI as --max-budget-usd (checked between turns: a
         * turn can overshoot it, so the end of a session checks again). */
        s->cost_cap_usd = queue_cost_cap(task, c->claude.max_cost_per_task_usd);
        if (s->cost_cap_usd > 0 && task->cost_usd >= s->cost_cap_usd) {
                why = xasprintf("cost cap of $%.2f reached after $%.2f: raise it with jada-agent task budget, then "
                                "reply", s->cost_cap_usd, task->cost_usd);
                session_not_started(s, TASK_NEEDS_YOU, "cost_cap", why, 0, false);
                r = 0; /* the task is dealt with: the next may start */
                goto fail_recorded;
        }
        {
                double task_left = s->cost_cap_usd > 0 ? s->cost_cap_usd - task->cost_usd : 0, day_left = 0;
                if (c->claude.daily_cost_limit_usd > 0) {
                        int64_t sessions_today = 0;
                        double spent = 0;
                        if (session_store_spent_since(m->db, budget_day_start(now_seconds()), &sessions_today,
                                                      &spent) == 0 && spent < c->claude.daily_cost_limit_usd)
                                day_left = c->claude.daily_cost_limit_usd - spent;
                }
                s->budget_from_day = day_left > 0 && (task_left <= 0 || day_left < task_left);
                s->max_budget_usd = s->budget_from_day ? day_left : task_left;
        }

        if (task->project) {
                p = config_project(c, task->project);
                if (!p) {
                        why = xasprintf("project %s is not in the configuration: add its [project %s] section "
                                        "and reload, then reply", task->project, task->project);
                        session_not_started(s, TASK_NEEDS_YOU, "project_error", why, 0, false);
                        r = 0; /* the task is dealt with: the next may start */
                        goto fail_recorded;
                }
                s->project = xstrdup(p->name);
                s->shared = p->isolation == PROJECT_NONE;
                if (!s->shared)
                        s->branch = project_branch_name(task->id);
        }
        s->work_dir = p && s->shared ? xstrdup(p->path) : project_work_dir(c, task->id);
        /* A worktree is git's to create; a plain work dir is ours. */
        if ((r = mkdir_p(work_root, 0700)) < 0 || (r = mkdir_p(home, 0700)) < 0 ||
            (!p && (r = mkdir_p(s->work_dir, 0700)) < 0)) {
                log_error_errno(r, "task %lld: cannot create its directories", (long long)task->id);
                goto fail;
        }
        r = stream_parser_new(SESSION_MAX_LINE, &s->parser);
        if (r < 0)
                goto fail;

        /* The row comes first: a crash from here on can never hide this
         * session from the day's budget. */
        r = store_transaction(m->db, begin_in_db, s);
        if (r < 0) {
                log_error_errno(r, "task %lld: cannot record the session", (long long)task->id);
                goto fail;
        }
        /* From here it counts: for concurrency, and as its project's one session. */
        s->next = m->list;
        m->list = s;
        m->n++;

        if (s->branch) {
                /* Named after the session that left it: interrupted when a
                 * daemon died under it (its row was closed so at start-up). */
                _cleanup_free_ char *last = NULL, *message = NULL;
                (void)session_store_last_outcome(m->db, task->id, s->row, &last);
                message = xasprintf("jada-agent: task %lld, session %lld (%s)", (long long)task->id,
                                    (long long)task->sessions_used, last ? last : "interrupted");
                r = project_prepare(m->event, m->db, c, task, message, on_prepared, s, &s->op);
                if (r < 0)
                        goto fail;
                sessions_changed(m);
                return 0;
        }
        r = session_spawn(s);
        if (r < 0)
                goto fail_recorded;
        return 0;

fail:
        why = xasprintf("could not start: %s", strerror(-r));
        session_not_started(s, TASK_QUEUED, "launch_error", why, 60, false);
fail_recorded:
        session_free(s);
        return r;
}

static void kill_all(struct sessions *m)
{
        while (m->list) {
                struct session *s = m->list;
                kill_group(s, SIGKILL);
                session_log(s, LOG_WARNING, "task %lld: session killed; the task resumes at the next start",
                            (long long)s->task->id);
                session_free(s);
        }
}

int sessions_new(sd_event *event, struct store *db, const struct jada_config *config,
                 const struct session_callbacks *callbacks, struct sessions **ret)
{
        struct sessions *m;

        if (!event || !db || !config || !ret)
                return -EINVAL;
        m = xcalloc(1, sizeof *m);
        m->event = sd_event_ref(event);
        m->db = db;
        m->config = config;
        if (callbacks)
                m->callbacks = *callbacks;
        *ret = m;
        return 0;
}

struct sessions *sessions_free(struct sessions *m)
{
        if (!m)
                return NULL;
        kill_all(m);
        /* A last try, when the store can answer without the loop (the
         * fleet's cannot, the loop having ended: its node's tasks are given
         * back at its next start). */
        if (!store_waits(m->db))
                sessions_retry_unrecorded(m);
        sessions_free_unrecorded(m);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

void sessions_set_config(struct sessions *m, const struct jada_config *config)
{
        m->config = config;
}
