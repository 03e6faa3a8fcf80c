/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the session module's two files: session.c (starting and
 * supervising claude, deciding the outcome) and session-record.c (writing
 * outcomes to the db, keeping those it cannot take, closing the rows of a
 * dead daemon's sessions). Not part of the module's face. */

#include "jada/session-store.h"
#include "jada/session.h"
#include "jada/log.h"
#include "jada/stream.h"

#include <sys/types.h>

struct project_op;
struct transcript;
#include <systemd/sd-id128.h>

#define STDERR_LINE_MAX 1024

struct session {
        struct sessions *m;
        struct session *next;
        struct queue_task *task;
        int64_t row;                            /* sessions table */
        struct store_job *finish_job;           /* its end, waiting for the store's fiber */
        char claude_id[SD_ID128_UUID_STRING_MAX];
        bool resumed;
        bool discarded;                         /* the db never learnt of it: nothing to record */

        pid_t pid;                              /* also the process group id */
        int out_fd, err_fd, exec_fd;            /* exec_fd: errno from a failed exec */
        sd_event_source *child_source, *out_source, *err_source;
        sd_event_source *deadline, *idle, *kill_timer;
        struct stream_parser *parser;
        struct transcript *transcript;          /* NULL if it could not be written */
        unsigned turns_published;

        enum session_stop stop;
        bool exited;
        int exit_status;                        /* code, or 128 + signal */

        /* Projects: the directory claude runs in (a worktree, a shared
         * project's path, or a plain STATE/work/task-ID). */
        char *work_dir;
        char *project;                          /* NULL: none */
        char *branch;                           /* a worktree project's jada/task-ID */
        bool shared;                            /* isolation = none: its project runs nothing else */
        /* Cost caps: the task's (0: none), and what --max-budget-usd was
         * given (0: none) and whether the day's rest set it. */
        double cost_cap_usd;
        double max_budget_usd;
        bool budget_from_day;
        struct project_op *op;                  /* preparing the worktree, or committing after */
        /* Between the child's exit and the commit of what it left: the
         * outcome to record, and what to tell the daemon. */
        struct session_record *finished;
        struct session_result result;

        char err_line[STDERR_LINE_MAX + 1];
        size_t err_len;
        char task_field[40];                    /* JADA_TASK_ID=... for the journal */
        char claude_field[64];                  /* JADA_CLAUDE_SESSION_ID=... */
};

/* What a session's end (or a failed start) must write: the sessions row and
 * the task's transition. When the db cannot take it (a full disk), it is
 * kept here and written again at each poll, so an outcome is never lost
 * while the daemon runs; the task stays "running" in the db meanwhile, so
 * nothing claims it twice. Both writes are idempotent until they succeed. */
struct session_record {
        struct session_record *next;
        int64_t task_id;
        int64_t row;                            /* 0: no sessions row to close */
        struct session_end end;          /* .error points at error below */
        bool transition;                        /* false: leave the task as it is */
        enum task_state to;
        struct queue_change change;             /* strings point at the copies below */
        int64_t now;
        char *reason, *result, *error, *needs_you_reason, *uncounted;
        /* A fleet's: the CLI's conversation file, packed (conversation.h). */
        char *claude_id, *conversation;
        size_t conversation_size;
};

/* The running sessions and what they need from the daemon. */
struct sessions {
        sd_event *event;
        struct store *db;
        const struct jada_config *config;       /* the daemon's; replaced on reload */
        struct session_callbacks callbacks;
        struct session *list;
        unsigned n;
        /* Outcomes the db could not take yet (a full disk): written again
         * at each poll; no session starts while any waits. */
        struct session_record *unrecorded;
        unsigned api_error_streak;              /* transient API errors in a row */
};

#define session_log(s, prio, ...) \
        log_fields((prio), JADA_FIELDS((s)->task_field, (s)->claude_field), __VA_ARGS__)

void sessions_changed(struct sessions *m);
/* Unlinks it from the running list and frees it (its op cancelled, its
 * sources gone; a child still running is killed by its owned source). */
void session_free(struct session *s);
/* The child exited (or could not be watched): decides the outcome, commits
 * what the session left (a worktree project), records it, tells the daemon.
 * session-record.c. */
void session_finish(struct session *s);
void sessions_db_failed(struct sessions *m, int r, const char *what);

/* Writes a record now, or keeps it for the next sessions_retry_unrecorded(). */
void session_record_commit(struct sessions *m, struct session_record *rec);
void session_record_free(struct session_record *rec);
/* A session that reached the model used up the reply; one that never did gives back its slot. */
void session_record_release(const struct session *s, struct session_record *rec);
/* At exit: what could not be written is dropped (the next start recovers it). */
void sessions_free_unrecorded(struct sessions *m);
