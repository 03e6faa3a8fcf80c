/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "jada/store.h"
#include <systemd/sd-event.h>

#include "jada/config.h"
#include "jada/outcome.h"
#include "jada/queue.h"
#include "jada/stream.h"


/* The longest stream-json line accepted from claude (DESIGN.md: lines can be large). */
#define SESSION_MAX_LINE (16 * 1024 * 1024)
/* SIGTERM, then SIGKILL after this; the unit's TimeoutStopSec must be longer. */
#define SESSION_KILL_GRACE_USEC (10 * 1000000ULL)

/* What the daemon teaches the agent with --append-system-prompt. */
#define SESSION_SYSTEM_PROMPT \
        "You run unattended as jada-agent's worker; nobody watches this session. " \
        "If you cannot go on without a decision or information only a person can give, " \
        "stop and end your final message with one line: NEEDS-YOU: <what you need>."
/* Appended with the task's id (printf: the id, twice). The id is written
 * out rather than "$JADA_TASK_ID": Claude Code (2.1.112, measured) denies
 * a command with a shell expansion under a prefix rule, and the daemon
 * allows exactly that command (SESSION_SPLIT_TOOL). */
#define SESSION_SPLIT_PROMPT \
        "If the task is too big for one session, split it: add each part as a sub-task with " \
        "`jada-agent task add --parent %lld --title TITLE -` and the part's prompt on stdin (a heredoc; it must " \
        "say all the sub-task needs to know), then end this session. Once every sub-task of task %lld has " \
        "ended, this conversation is resumed with their results."
/* Always in --allowedTools, beside [claude] allowed_tools: splitting works
 * under any permission mode. */
#define SESSION_SPLIT_TOOL "Bash(jada-agent task add:*)"
/* Appended for a task of a project (printf: the project, the branch). */
#define SESSION_PROJECT_PROMPT \
        "You work in a git worktree of project %s, on branch %s. Commit as you see fit; " \
        "whatever you leave uncommitted is committed to this branch for you when the session ends. " \
        "Stay on this branch."
#define SESSION_SHARED_PROMPT \
        "You work in the directory of project %s, which is not a branch of its own: what you change " \
        "there is changed in place."
#define SESSION_CONTINUE_PROMPT \
        "Continue the task where you left off (the previous session ended at its turn limit). " \
        "When it is done, say so."

/*
 * The Claude Code sessions: each `claude -p` a child in its own process
 * group, supervised from the loop (child source, IO sources on its stdout
 * and stderr, deadline and idle timers), its outcome recorded (the sessions
 * row and the task's next state) before anyone is told. What an outcome
 * means for launching more and for health is the daemon's: it hears of it
 * through the ended callback. Nothing here knows the daemon.
 */
struct sessions;

/* What a session's end meant, for the daemon. */
struct session_result {
        int64_t task_id;
        enum outcome_kind kind;
        int api_error_status;           /* the last HTTP status the CLI reported; 0 if none */
        int exec_errno;                 /* OUTCOME_LAUNCH_ERROR: why the command could not run */
        /* The last usage-limit state the CLI reported (rate_limit.seen), and
         * for OUTCOME_USAGE_LIMIT the limit and its reset (0: unknown). */
        struct stream_rate_limit rate_limit;
        char limit_type[32];
        int64_t limit_reset;
};

struct session_callbacks {
        /* A session started, or its turns moved: the status line may change. */
        void (*changed)(void *userdata);
        /* A session ended; its outcome is recorded, or kept to be written
         * at the next sessions_retry_unrecorded(). May start sessions. */
        void (*ended)(const struct session_result *result, void *userdata);
        /* A write the sessions needed failed (r: a negative errno). */
        void (*db_failed)(int r, const char *what, void *userdata);
        void *userdata;
};

int sessions_new(sd_event *event, struct store *db, const struct jada_config *config,
                 const struct session_callbacks *callbacks, struct sessions **ret);
/* SIGKILLs what still runs (its tasks stay running in the db and are
 * recovered at the next start), tries once more to record what waits. */
struct sessions *sessions_free(struct sessions *sessions);
/* After a reload: the config must outlive the sessions until the next call. */
void sessions_set_config(struct sessions *sessions, const struct jada_config *config);

/* Starts a session for a claimed (running) task, and takes the task. On
 * failure the task is given back (queued, run_after in a minute) and a
 * negative errno returned. A task that cannot run as it is (its cost cap
 * spent, its project gone) goes to needs_you, and 0 is returned. */
int sessions_start(struct sessions *sessions, struct queue_task *task);

/* SIGTERM to every session's process group, SIGKILL after the grace period. */
void sessions_stop_all(struct sessions *sessions, enum session_stop why);
/* Stops the sessions whose task was cancelled by hand. */
void sessions_check_cancelled(struct sessions *sessions);
/* A fleet's claim that could not be committed: the db has neither the
 * claim nor the session's row, so the session started in it is killed
 * at once (or its preparation cancelled) and nothing is recorded for it. */
void sessions_discard(struct sessions *sessions, int64_t task_id);

/* At start-up: kills what a dead daemon's sessions left running and closes
 * their rows. */
void sessions_reap_orphans(struct sessions *sessions);

/* Outcomes the db could not take when their session ended are kept and
 * written again here (each poll), in order. */
void sessions_retry_unrecorded(struct sessions *sessions);
bool sessions_unrecorded(const struct sessions *sessions);

unsigned sessions_running(const struct sessions *sessions);
/* A session (starting, running, or committing what it left) holds the task. */
bool sessions_hold(const struct sessions *sessions, int64_t task_id);
/* The projects with isolation = none that a session works in now (their
 * other tasks wait), NULL-terminated; free with free() (one block). */
const char **sessions_busy_projects(const struct sessions *sessions);
/* The first running session's task and turns (for STATUS=); false if none. */
bool sessions_first(const struct sessions *sessions, int64_t *ret_task_id, unsigned *ret_turns);
/* Each running session's task and its turns so far, at most max; returns how many. */
size_t sessions_live(const struct sessions *sessions, int64_t *task_ids, unsigned *turns, size_t max);
