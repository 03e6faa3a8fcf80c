/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The task queue: task states and their transitions, claiming, recovery and
 * pruning, each in one transaction with its audit event in task_events.
 *
 *   queued → running → done | needs_you | failed | queued (resume, retry)
 *   running → waiting (its sub-tasks are not all finished) → queued (they are)
 *   needs_you → queued (reply) | done (by hand);  failed → queued (retry)
 *   queued → waiting (a sub-task of it was retried before it resumed)
 *   queued → needs_you (a task it runs after failed or was cancelled)
 *   anything but done → cancelled;  done and cancelled are final.
 *
 * Sub-tasks (queue-family.c): a task with parent_id is a sub-task of it.
 * A session of a task with unfinished sub-tasks (not done, failed or
 * cancelled) ends in waiting, whatever its outcome said, but needs_you;
 * when the last one ends, the parent is queued again with a reply that
 * lists them (the next session resumes its conversation with it). A task
 * added with after-tasks is claimed only once all of them are done; one
 * of them failed or cancelled sends it to needs_you at the claim instead.
 *
 * Priority: a higher number runs first; equal priorities run oldest first.
 * Times are UTC seconds since the epoch.
 */

enum task_state {
        TASK_QUEUED,
        TASK_RUNNING,
        TASK_DONE,
        TASK_NEEDS_YOU,
        TASK_FAILED,
        TASK_CANCELLED,
        TASK_WAITING,                   /* for its sub-tasks; never claimed */
        _TASK_STATE_MAX,
};

#define QUEUE_PROMPT_MAX (1024 * 1024) /* bytes; DESIGN.md: prompts up to 1 MiB */
#define QUEUE_TITLE_MAX 200

struct queue_task {
        int64_t id;
        char *title;
        char *prompt;
        enum task_state state;
        int64_t priority;
        int64_t run_after;
        int64_t attempts;
        int64_t sessions_used;
        int64_t turns_used;
        double cost_usd;
        char *claude_session_id;        /* NULL until a session started */
        char *needs_you_reason;
        char *reply;                    /* the operator's answer, the next session's prompt */
        char *result;
        char *error;
        int64_t created_at;
        int64_t updated_at;
        /* Projects: NULL when the task has none, or before its first session. */
        char *project;
        char *branch;                   /* jada/task-ID, once created */
        char *base, *base_commit;       /* what the branch started from */
        char *worktree;                 /* while it exists */
        double max_cost_usd;            /* its cost cap; < 0: none of its own ([claude] max_cost_per_task_usd) */
        int64_t parent_id;              /* 0: not a sub-task */
};

/* A new task. */
struct queue_new {
        const char *title;              /* NULL or "": the prompt's first line */
        const char *prompt;
        const char *project;            /* NULL: none */
        int64_t priority;
        int64_t run_after;
        double max_cost_usd;            /* > 0: its own cost cap */
        /* Sub-tasks: the parent (0: none). A sub-task takes its parent's
         * project (project NULL), priority (priority_given false), and the
         * parent's branch as its base. */
        int64_t parent_id;
        bool priority_given;
        unsigned max_depth;             /* a top-level task is at depth 1; 0: no limit */
        unsigned max_children;          /* sub-tasks of one task; 0: no limit */
        const int64_t *after;           /* runs once all of these are done */
        size_t n_after;
};

struct queue_event {
        int64_t id;
        int64_t at;
        int old_state;                  /* -1 when the task was created */
        enum task_state new_state;
        char *reason;
};

/* What a transition changes besides the state. NULL/0 fields are left alone. */
struct queue_change {
        const char *reason;             /* for the audit trail */
        int64_t run_after;              /* 0: unchanged */
        const char *reply;
        const char *result;
        const char *error;
        const char *needs_you_reason;   /* cleared whenever the task leaves needs_you */
        bool reset_attempts;
        bool count_attempt;             /* one more failed attempt */
        bool clear_claude_session_id;   /* the next session starts a new conversation */
        int64_t add_turns;              /* a session's turns and cost, added to the task's */
        double add_cost_usd;
        bool release_session;           /* the session never reached the model: sessions_used - 1 */
        bool clear_reply;               /* a session that reached the model read the reply: it is used up */
        unsigned only_from;             /* if not 0: a mask of 1 << state the task must be in */
};

const char *task_state_name(enum task_state state);
int task_state_from_name(const char *name);    /* -EINVAL if unknown */
bool queue_transition_allowed(enum task_state from, enum task_state to);

void queue_task_free(struct queue_task *task);
void queue_tasks_free(struct queue_task *tasks, size_t n);
void queue_events_free(struct queue_event *events, size_t n);

/* Adds a queued task. */
int queue_add(struct store *db, const struct queue_new *task, int64_t now, int64_t *ret_id);
/* The same, saying in why (if not NULL) what was refused: -ENOENT (no such
 * parent or after-task), -EPERM (the parent is done or cancelled), -E2BIG
 * (max_depth or max_children), -EDEADLK (an after-task that waits, through
 * after-tasks and sub-tasks, for the new task's parent: a cycle), -EINVAL. */
int queue_add_why(struct store *db, const struct queue_new *task, int64_t now, int64_t *ret_id, char *why, size_t size);

/* Claims the most urgent due task (run_after <= now) in one BEGIN IMMEDIATE
 * transaction, so that no two processes ever claim the same task. Tasks of
 * the projects named in busy_projects (NULL-terminated, or NULL) stay
 * unclaimed. Returns 1 and *ret, 0 when nothing is due, or a negative errno. */
int queue_claim(struct store *db, int64_t now, const char *const *busy_projects, struct queue_task **ret);

/* Moves a task to a new state if the transition is legal. Returns 0,
 * -ENOENT (no such task) or -EPERM (illegal from its current state; nothing
 * changed). *ret_from, if not NULL, gets the state the task was in. A move
 * to needs_you, failed or done writes its notification to the outbox in
 * the same transaction (notify-store.h). */
int queue_transition(struct store *db, int64_t id, enum task_state to, const struct queue_change *change,
                     int64_t now, enum task_state *ret_from);

/* queue_transition within the caller's transaction: a session's end is
 * recorded with its row (session-record.c) in one, so that a kill between
 * the two cannot leave a finished session's task running (and run it again). */
int queue_transition_locked(struct store *db, int64_t id, enum task_state to, const struct queue_change *change,
                            int64_t now, enum task_state *ret_from);

/* A session of a running task is about to start: counts it in
 * sessions_used, records its conversation, and takes the reply it answers.
 * Within the caller's transaction (with the session's row: session-store). */
int queue_note_session_start(struct store *db, int64_t id, const char *claude_session_id, int64_t now);

/* Returns tasks left running by a daemon that is gone to queued (waiting
 * if they have unfinished sub-tasks), keeping their Claude session id, and
 * queues again a waiting task whose sub-tasks have all finished. Returns
 * how many tasks it moved, or a negative errno. */
int queue_recover(struct store *db, int64_t now, const char *reason);

/* A fleet's (PostgreSQL; on SQLite it finds none): the running tasks of
 * nodes other than this store's whose heartbeat is older than the lease,
 * that stopped, or that are gone from the fleet, queued again (waiting if
 * their sub-tasks have not finished) with their Claude session id, in one
 * transaction. *ret: which tasks, and whose they were (NULL: nobody's). */
struct queue_rescued {
        int64_t task_id;
        char *node;
};
int queue_rescue_lost(struct store *db, int64_t now, uint64_t lease_seconds, struct queue_rescued **ret, size_t *n);
void queue_rescued_free(struct queue_rescued *rescued, size_t n);

/* Deletes done and cancelled tasks (and their events) last updated before
 * the given time. A parent and its sub-tasks go together, once all of them
 * can; a task another one that has not ended runs after stays. Returns how
 * many, or a negative errno. */
int queue_prune(struct store *db, int64_t before);

int queue_get(struct store *db, int64_t id, struct queue_task **ret);       /* -ENOENT if none */
/* state < 0: all states; project NULL: all tasks. Ordered by id. */
int queue_list(struct store *db, int state, const char *project, struct queue_task **ret, size_t *n);
/* The last `limit` events of a task, oldest first. */
int queue_events(struct store *db, int64_t id, size_t limit, struct queue_event **ret, size_t *n);
/* counts[state] for every state. */
int queue_counts(struct store *db, int64_t counts[_TASK_STATE_MAX]);
/* The earliest run_after later than `after` among queued tasks, or 0 if
 * there is none: when the next task falls due. Tasks due already are the
 * claim's business (they wait for the budget or a free slot, not a time). */
int queue_next_due(struct store *db, int64_t after, int64_t *ret);

/* Sub-tasks and after-tasks (queue-family.c). */
/* Cancels a task and its unfinished sub-tasks (at any depth) in one
 * transaction; *ret_children: how many of those. As queue_transition. */
int queue_cancel_tree(struct store *db, int64_t id, const char *reason, int64_t now, enum task_state *ret_from,
                      unsigned *ret_children);
/* A task's sub-tasks, and the tasks it runs after; ordered by id. */
int queue_children(struct store *db, int64_t id, struct queue_task **ret, size_t *n);
int queue_after_tasks(struct store *db, int64_t id, struct queue_task **ret, size_t *n);
/* What a parent's resume is told of its sub-tasks: each one's id, title,
 * final state, the head of its result or error (QUEUE_CHILD_HEAD_MAX
 * bytes) and its branch. */
#define QUEUE_CHILD_HEAD_MAX 2048
char *queue_children_report(const struct queue_task *children, size_t n);

/* Projects (queue-project.c). */
/* The task's branch is about to be created (or adopted) and its worktree
 * added: recorded first, so that a crash in between finds both its own. */
int queue_set_branch(struct store *db, int64_t id, const char *branch, const char *base, const char *base_commit,
                     const char *worktree);
/* The worktree exists at path, or (NULL) is gone. */
int queue_set_worktree(struct store *db, int64_t id, const char *worktree);
/* Sets a task's cost cap (USD, > 0), with an event. -ENOENT if no such task. */
int queue_set_max_cost(struct store *db, int64_t id, double usd, int64_t now);
/* The cap that applies to a task: its own, else the default (0: none). */
double queue_cost_cap(const struct queue_task *task, double default_usd);

/* An event that changes no state: a warning the task's history must keep
 * (a failed push, on_done's exit). */
int queue_note(struct store *db, int64_t id, const char *reason, int64_t now);
/* Tasks whose worktree is there; ended_only: only done and cancelled ones.
 * On a fleet, only those this node claimed last. */
int queue_worktrees(struct store *db, bool ended_only, struct queue_task **ret, size_t *n);
