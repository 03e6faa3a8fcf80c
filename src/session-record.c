/* SPDX-License-Identifier: MIT */
/* Sessions' outcomes in the db: the sessions row and the task's next state,
 * written at once or kept until the db can take them; and at start-up the
 * rows (and processes) a dead daemon's sessions left behind. */
#include "session-private.h"
#include "jada/child.h"
#include "jada/log.h"
#include "jada/queue.h"
#include "jada/util.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

void session_record_free(struct session_record *rec)
{
        free(rec->reason);
        free(rec->result);
        free(rec->error);
        free(rec->needs_you_reason);
        free(rec->uncounted);
        free(rec->reply);
        free(rec);
}

/* Writes what is left of a record: 0 when all of it is in the db. */
static int record_write(struct sessions *m, struct session_record *rec)
{
        int r;

        if (rec->row > 0) {
                r = session_store_finish(m->db, rec->row, rec->now, &rec->end);
                if (r < 0)
                        return r;
                rec->row = 0;
        }
        if (rec->transition) {
                enum task_state from;

                r = queue_transition(m->db, rec->task_id, rec->to, &rec->change, rec->now, &from);
                if (r == -EPERM)
                        log_notice("task %lld became %s while its session ran; left as it is",
                                   (long long)rec->task_id, task_state_name(from));
                else if (r == -ENOENT)
                        log_notice("task %lld was deleted while its session ran", (long long)rec->task_id);
                else if (r < 0)
                        return r;
                rec->transition = false;
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

/* A session that never reached the model gives back what its start took
 * from the task: the slot in sessions_used and the operator's reply (the
 * start cleared it), so the next session asks the same question. */
void session_record_release(const struct session *s, struct session_record *rec)
{
        if (!rec->uncounted)
                return;
        rec->change.release_session = true;
        if (s->task->reply) {
                rec->reply = xstrdup(s->task->reply);
                rec->change.reply = rec->reply;
        }
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
