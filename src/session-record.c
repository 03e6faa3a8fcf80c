/* SPDX-License-Identifier: MIT */
/* Sessions' outcomes: decided when a session ends, committed to the task's
 * branch (projects), then written to the db (the sessions row and the task's
 * next state) at once or kept until the db can take them; and at start-up
 * the rows (and processes) a dead daemon's sessions left behind. */
#include "session-private.h"
#include "jada/budget.h"
#include "jada/child.h"
#include "jada/conversation.h"
#include "jada/store.h"
#include "jada/project.h"
#include "jada/log.h"
#include "jada/queue.h"
#include "jada/transcript.h"
#include "jada/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void session_record_free(struct session_record *rec)
{
        free(rec->reason);
        free(rec->result);
        free(rec->error);
        free(rec->needs_you_reason);
        free(rec->uncounted);
        free(rec->claude_id);
        free(rec->conversation);
        free(rec);
}

struct record_tx {
        struct session_record *rec;
        enum task_state from;
        int transition;                 /* queue_transition's answer */
        enum session_fence fence;
};

static int record_in_tx(struct store *db, void *userdata)
{
        struct record_tx *tx = userdata;
        struct session_record *rec = tx->rec;
        int r;

        if (rec->row > 0) {
                /* A fleet's node that was presumed lost writes nothing over
                 * the node that took its task over. */
                r = session_store_fence(db, rec->row, &tx->fence);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (tx->fence != SESSION_FENCE_OURS)
                        return 0;
                r = session_store_finish(db, rec->row, rec->now, &rec->end);
                if (r < 0)
                        return r;
        }
        if (rec->transition) {
                r = queue_transition_locked(db, rec->task_id, rec->to, &rec->change, rec->now, &tx->from);
                tx->transition = r;
                /* A task moved by hand, or deleted, meanwhile: the row is
                 * still recorded; the task is left as it is. */
                if (r < 0 && r != -EPERM && r != -ENOENT)
                        return r;
        }
        if (rec->conversation) {
                r = conversation_store_save(db, rec->task_id, rec->claude_id, rec->conversation,
                                            rec->conversation_size, rec->now);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Writes what is left of a record: 0 when all of it is in the db. The
 * session's row and its task's move are one transaction: a kill between
 * two would leave a finished session's task running, and start-up
 * recovery would queue it to run again. */
static int record_write(struct sessions *m, struct session_record *rec)
{
        struct record_tx tx = { .rec = rec };
        int r;

        if (rec->row == 0 && !rec->transition)
                return 0;
        r = store_transaction(m->db, record_in_tx, &tx);
        if (r < 0)
                return r;
        if (tx.fence == SESSION_FENCE_RESCUED)
                log_warning("task %lld: session %lld ended (%s), but this node missed its heartbeat for longer "
                            "than the lease and another node took the task over (its session is recorded as "
                            "node_lost): this outcome is not recorded", (long long)rec->task_id,
                            (long long)rec->row, rec->end.outcome);
        else if (tx.fence == SESSION_FENCE_ENDED)
                log_notice("task %lld: session %lld's end was recorded already", (long long)rec->task_id,
                           (long long)rec->row);
        rec->row = 0;
        if (tx.fence != SESSION_FENCE_OURS)
                rec->transition = false;
        if (rec->transition) {
                rec->transition = false;
                if (tx.transition == -EPERM)
                        log_notice("task %lld became %s while its session ran; left as it is",
                                   (long long)rec->task_id, task_state_name(tx.from));
                else if (tx.transition == -ENOENT)
                        log_notice("task %lld was deleted while its session ran", (long long)rec->task_id);
                /* The journal's "session ended" line named the outcome's
                 * state; a task with sub-tasks still to finish waits instead. */
                else if (rec->to != TASK_WAITING && rec->to != TASK_NEEDS_YOU) {
                        struct queue_task *t = NULL;
                        if (queue_get(m->db, rec->task_id, &t) == 0 && t->state == TASK_WAITING)
                                log_info("task %lld waits for its sub-tasks (not %s)", (long long)rec->task_id,
                                         task_state_name(rec->to));
                        queue_task_free(t);
                }
        }
        return 0;
}

/* Writes a record now, or keeps it for the next poll. */
void session_record_commit(struct sessions *m, struct session_record *rec)
{
        struct session_record **p;
        int r = record_write(m, rec);

        if (r == 0) {
                session_record_free(rec);
                return;
        }
        log_error_errno(r, "task %lld: cannot record the session's outcome (%s); kept until the database "
                        "can be written", (long long)rec->task_id, rec->end.outcome);
        for (p = &m->unrecorded; *p; p = &(*p)->next)
                ;
        *p = rec;
        sessions_db_failed(m, r, "recording a session's outcome");
}

void sessions_retry_unrecorded(struct sessions *m)
{
        struct session_record **p = &m->unrecorded;

        while (*p) {
                struct session_record *rec = *p;
                int r = record_write(m, rec);
                if (r < 0) {
                        sessions_db_failed(m, r, "recording a session's outcome");
                        return; /* in order: the next would fail the same way */
                }
                *p = rec->next;
                log_info("task %lld: the outcome kept in memory (%s) is recorded", (long long)rec->task_id,
                         rec->end.outcome);
                session_record_free(rec);
        }
}

void sessions_free_unrecorded(struct sessions *m)
{
        unsigned n = 0;

        while (m->unrecorded) {
                struct session_record *rec = m->unrecorded;
                m->unrecorded = rec->next;
                session_record_free(rec);
                n++;
        }
        if (n > 0)
                log_warning("%u session outcome%s could not be recorded before the stop; the next start "
                            "recovers the task%s as interrupted", n, n == 1 ? "" : "s", n == 1 ? "" : "s");
}

/* The reply (a person's answer, or the report of the sub-tasks) stays in
 * the task until a session that reached the model ends: a session that
 * never did gives back its slot in sessions_used and leaves the reply for
 * the next one, and a kill at any moment before the end leaves it too (the
 * next session sends it again rather than losing it). */
void session_record_release(const struct session *s, struct session_record *rec)
{
        if (!rec->uncounted) {
                rec->change.clear_reply = true;
                return;
        }
        rec->change.release_session = true;
}

static void kill_orphan(int64_t pid, int64_t pid_start, void *userdata)
{
        int64_t now_start;

        if (pid <= 1)
                return;
        now_start = child_start_time((pid_t)pid);
        /* Gone (its group may live on: a pgid is not reused while it has
         * members), or still the same process: kill the group. A different
         * start time is an unrelated process that got the pid: leave it. */
        if (now_start >= 0 && now_start != pid_start)
                return;
        if (kill(-(pid_t)pid, SIGKILL) == 0)
                log_notice("killed the process group %lld left by a session of a daemon that is gone",
                           (long long)pid);
}

void sessions_reap_orphans(struct sessions *m)
{
        int r = session_store_close_orphans(m->db, now_seconds(), kill_orphan, m);

        if (r < 0)
                log_error_errno(r, "cannot close the sessions of a daemon that is gone");
        else if (r > 0)
                log_notice("%d session%s of a daemon that is gone recorded as interrupted", r, r == 1 ? "" : "s");
}

/* ---- a session's end ------------------------------------------------------ */

/* Records the outcome (its commit, if any, is made) and tells the daemon. */
static void session_complete(struct session *s)
{
        struct sessions *m = s->m;
        struct session_result result = s->result;
        struct session_record *rec = s->finished;

        s->finished = NULL;
        session_record_commit(m, rec);
        session_free(s);
        /* Last: what the outcome means for launching and for health is the
         * daemon's, and it may start the next session from here. */
        if (m->callbacks.ended)
                m->callbacks.ended(&result, m->callbacks.userdata);
}

static void on_committed(enum project_verdict verdict, const char *reason, void *userdata)
{
        struct session *s = userdata;

        s->op = NULL;
        session_complete(s);
}

/* A fleet's next session of the task may run on another node: the CLI's
 * conversation goes to the database with the outcome. */
static void session_pack_conversation(struct session *s, struct session_record *rec)
{
        _cleanup_free_ char *config_dir = xasprintf("%s/home/.claude", s->m->config->daemon.state_dir);
        _cleanup_free_ char *path = conversation_path(config_dir, s->work_dir, s->claude_id);
        int r = conversation_pack(path, &rec->conversation, &rec->conversation_size);

        if (r == -ENOENT)
                return; /* the CLI never got so far */
        if (r < 0) {
                session_log(s, LOG_WARNING, "task %lld: its conversation (%s) cannot be stored for another node: %s",
                            (long long)s->task->id, path, strerror(-r));
                return;
        }
        rec->claude_id = xstrdup(s->claude_id);
}

void session_finish(struct session *s)
{
        struct sessions *m = s->m;
        const struct stream_result *res;
        const struct stream_stats *stats;
        struct outcome out;
        int64_t now = now_seconds();
        struct session_record *rec;
        double previous = 0, cost;
        int exec_errno = 0;

        stream_parser_finish(s->parser);
        if (s->transcript) {
                int tr = transcript_close(s->transcript);
                s->transcript = NULL;
                if (tr < 0)
                        session_log(s, LOG_WARNING, "task %lld: the transcript's end could not be written: %s",
                                    (long long)s->task->id, strerror(-tr));
        }
        res = stream_parser_result(s->parser);
        stats = stream_parser_stats(s->parser);
        if (read(s->exec_fd, &exec_errno, sizeof exec_errno) != (ssize_t)sizeof exec_errno)
                exec_errno = 0;

        (void)session_store_previous_reported_cost(m->db, s->task->id, s->claude_id, s->row, &previous);
        cost = budget_session_cost(res->seen ? res->total_cost_usd : 0, previous, s->resumed,
                                   res->input_tokens, res->model_usage_input_tokens);

        outcome_decide(&(struct outcome_facts){
                .result = res,
                .stats = stats,
                .stop = s->stop,
                .exit_status = s->exit_status,
                .exec_failed = exec_errno != 0,
                .resumed = s->resumed,
                .sessions_used = s->task->sessions_used + 1,
                .attempts = s->task->attempts,
                .max_sessions_per_task = m->config->claude.max_sessions_per_task,
                .max_attempts = m->config->claude.max_attempts,
                .max_turns = m->config->claude.max_turns,
                .api_error_streak = m->api_error_streak,
                .session_cost_usd = cost,
                .now = now,
                .task_cap_usd = s->cost_cap_usd,
                .task_cost_before_usd = s->task->cost_usd,
                .budget_from_day = s->budget_from_day,
        }, &out);

        if (exec_errno)
                session_log(s, LOG_ERR, "cannot run the claude command '%s': %s", m->config->claude.command,
                            strerror(exec_errno));

        rec = xcalloc(1, sizeof *rec);
        rec->task_id = s->task->id;
        rec->row = s->row;
        rec->now = now;
        rec->error = out.kind == OUTCOME_DONE || !out.reason ? NULL : xstrdup(out.reason);
        rec->uncounted = out.uncounted ? xstrdup(out.uncounted) : NULL;
        rec->end = (struct session_end){
                .outcome = out.name,
                .exit_status = s->exit_status,
                .turns = stats->turns,
                .input_tokens = res->input_tokens,
                .output_tokens = res->output_tokens,
                .cache_creation_tokens = res->cache_creation_input_tokens,
                .cache_read_tokens = res->cache_read_input_tokens,
                .cost_usd = cost,
                .reported_cost_usd = res->seen ? res->total_cost_usd : -1,
                .error = rec->error,
                .uncounted = rec->uncounted,
        };
        if (out.kind != OUTCOME_CANCELLED) {
                rec->transition = true;
                rec->to = out.next;
                rec->reason = out.reason ? xstrdup(out.reason) : NULL;
                rec->result = out.kind == OUTCOME_DONE && out.result ? xstrdup(out.result) : NULL;
                rec->needs_you_reason = out.next == TASK_NEEDS_YOU && out.reason ? xstrdup(out.reason) : NULL;
                rec->change = (struct queue_change){
                        .reason = rec->reason,
                        .run_after = now + out.retry_delay,
                        .result = rec->result,
                        .error = out.next == TASK_FAILED ? rec->reason : NULL,
                        .needs_you_reason = rec->needs_you_reason,
                        .count_attempt = out.count_attempt,
                        .clear_claude_session_id = out.clear_session_id,
                        .add_turns = stats->turns,
                        .add_cost_usd = cost,
                };
                session_record_release(s, rec);
        }

        switch (out.kind) {
        case OUTCOME_API_ERROR:
                m->api_error_streak++;
                break;
        case OUTCOME_DONE: case OUTCOME_NEEDS_YOU: case OUTCOME_MAX_TURNS:
                m->api_error_streak = 0;
                break;
        default:
                break;
        }

        {
                char outcome_field[64], cost_field[48];
                snprintf(outcome_field, sizeof outcome_field, "JADA_OUTCOME=%s", out.name);
                snprintf(cost_field, sizeof cost_field, "JADA_COST_USD=%.6f", cost);
                log_fields(out.kind == OUTCOME_DONE || out.kind == OUTCOME_MAX_TURNS ? LOG_INFO
                           : out.kind == OUTCOME_FAILED_ATTEMPT || out.kind == OUTCOME_AUTH_ERROR ||
                             out.kind == OUTCOME_LAUNCH_ERROR ? LOG_ERR : LOG_NOTICE,
                           JADA_FIELDS(s->task_field, s->claude_field, outcome_field, cost_field),
                           "task %lld: session ended: %s, %u turns, $%.4f → %s (%s)", (long long)s->task->id,
                           out.name, stats->turns, cost, task_state_name(out.next), out.reason ? out.reason : "");
        }
        s->result = (struct session_result){ .task_id = s->task->id, .kind = out.kind,
                                             .api_error_status = stats->last_api_error_status,
                                             .exec_errno = exec_errno, .rate_limit = stats->rate_limit,
                                             .limit_reset = out.limit_reset };
        snprintf(s->result.limit_type, sizeof s->result.limit_type, "%s", out.limit_type ? out.limit_type : "");
        s->finished = rec;
        if (store_is_postgresql(m->db) && s->claude_id[0] && !out.clear_session_id)
                session_pack_conversation(s, rec);

        /* What the session left is committed before its outcome is
         * recorded: until then the task stays running, so no next session
         * can start on a worktree that is not committed yet. */
        if (s->branch && !exec_errno) {
                _cleanup_free_ char *message = xasprintf("jada-agent: task %lld, session %lld (%s)",
                                                         (long long)s->task->id, (long long)s->task->sessions_used + 1,
                                                         out.name);
                /* Its process group is gone: nothing may signal that pgid again. */
                s->pid = 0;
                if (project_commit(m->event, m->db, m->config, s->task, message, on_committed, s, &s->op) == 0) {
                        outcome_clear(&out);
                        return;
                }
                session_log(s, LOG_WARNING, "task %lld: project %s is gone from the configuration: the session's "
                            "work stays uncommitted in %s", (long long)s->task->id, s->project, s->work_dir);
        }
        outcome_clear(&out);
        session_complete(s);
}
