/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "jada/outcome.h"
#include "jada/queue.h"

struct jada_ctx;
struct session;

/* The longest stream-json line accepted from claude (DESIGN.md: lines can be large). */
#define SESSION_MAX_LINE (16 * 1024 * 1024)
/* SIGTERM, then SIGKILL after this; the unit's TimeoutStopSec must be longer. */
#define SESSION_KILL_GRACE_USEC (10 * 1000000ULL)

/* What the daemon teaches the agent with --append-system-prompt. */
#define SESSION_SYSTEM_PROMPT \
        "You run unattended as jada-agent's worker; nobody watches this session. " \
        "If you cannot go on without a decision or information only a person can give, " \
        "stop and end your final message with one line: NEEDS-YOU: <what you need>."
#define SESSION_CONTINUE_PROMPT \
        "Continue the task where you left off (the previous session ended at its turn limit). " \
        "When it is done, say so."

/*
 * One Claude Code session: `claude -p` as a child in its own process group,
 * supervised from the loop (child source, IO sources on its stdout and
 * stderr, deadline and idle timers), its outcome turned into the task's next
 * state. Takes ownership of the claimed (running) task.
 */
int session_start(struct jada_ctx *ctx, struct queue_task *task);

/* SIGTERM to a session's process group, SIGKILL after the grace period. */
void session_stop(struct session *s, enum session_stop why);
void session_stop_all(struct jada_ctx *ctx, enum session_stop why);
/* Last resort when the loop is gone: SIGKILL every session's group and
 * forget them; their tasks stay running in the db and are recovered at the
 * next start. */
void session_kill_all(struct jada_ctx *ctx);
/* Stops the sessions whose task was cancelled by hand. */
void session_check_cancelled(struct jada_ctx *ctx);

/* At start-up: kills what a dead daemon's sessions left running and closes
 * their rows. */
void session_reap_orphans(struct jada_ctx *ctx);

/* Outcomes the db could not take when their session ended are kept and
 * written again here (each poll), in order; freed at exit, unwritten. */
void session_retry_unrecorded(struct jada_ctx *ctx);
void session_free_unrecorded(struct jada_ctx *ctx);

int64_t session_task_id(const struct session *s);
unsigned session_turns(const struct session *s);
