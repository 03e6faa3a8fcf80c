/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the project module's files: project.c (an operation's steps:
 * prepare, commit) and project-janitor.c (the worktrees of ended tasks,
 * on_done, and the locks a killed daemon's git left). Not its face. */

#include "jada/project.h"

#include <stdarg.h>

enum op_kind { OP_PREPARE, OP_COMMIT, OP_JANITOR };

enum op_step {
        S_START,
        S_HEAD,                 /* prepare: is the worktree on its branch? */
        S_PRUNED,               /* prepare: stale worktrees pruned; does the branch exist? */
        S_HAVE_BRANCH,
        S_CURRENT,              /* the repository's current branch, when base is not set */
        S_BASE,                 /* base resolved to a commit */
        S_EXISTING,             /* does jada/task-ID exist already? */
        S_ANCESTOR,             /* ... and is it no more than its base? */
        S_PRUNED_NEW,
        S_ADDED,
        F_LISTED,               /* a fleet's prepare: is the branch on the push remote? */
        F_FETCHED,
        F_LOCAL,                /* ... is it here too? */
        F_BEHIND,               /* ... is ours behind the fetched one? */
        F_AHEAD,                /* ... or ahead of it? */
        F_FORWARDED,            /* ours moved up to the fetched one */
        C_HEAD,                 /* the commit sequence */
        C_ADD,
        C_DIFF,
        C_COMMIT,
        C_PUSHED,
        J_ON_DONE,              /* the janitor's */
        J_REMOVED,
};

struct project_op {
        sd_event *event;
        struct store *db;
        enum op_kind kind;
        enum op_step step;
        int64_t task_id;
        enum task_state task_state;
        char *name, *path, *base, *push, *on_done, *state_dir;
        char *branch, *worktree, *base_commit, *existing, *message, *title, *result, *result_file;
        bool recorded;                  /* the db already has the branch */
        uint64_t git_timeout;
        bool committed;
        char **env;
        struct job *job;
        sd_event_source *defer;
        bool pending;                   /* done waits for the store's fiber */
        enum project_verdict verdict;
        char *reason;
        project_done_t done;
        void *userdata;
        struct project_janitor *janitor;
        struct project_op *next;
        char task_field[40];
};

#define op_log(op, prio, ...) log_fields((prio), JADA_FIELDS((op)->task_field), __VA_ARGS__)


#define GIT(op, dir, next, ...) project_op_git((op), (dir), (next), (const char *const[]){ __VA_ARGS__, NULL })

/* Ends the operation: done runs from the loop, never from a caller's frame. */
void project_op_finish(struct project_op *op, enum project_verdict verdict, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* A warning the task's history keeps, besides the journal. */
void project_op_note(struct project_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs git in dir; its result comes to the operation's next step. */
void project_op_git(struct project_op *op, const char *dir, enum op_step next, const char *const *args);
void project_op_free(struct project_op *op);
/* A job of the operation ended: its next step runs. */
void project_op_job_done(struct job_result *res, void *userdata);
struct project_op *project_op_new(sd_event *event, struct store *db, const struct jada_config *config,
                                  const struct project_config *p, const struct queue_task *t, enum op_kind kind);
/* The commit sequence: HEAD checked, add -A, commit if anything, push. */
void project_commit_start(struct project_op *op);
/* The task's project if it is a worktree project of this config, else NULL. */
const struct project_config *project_worktree_config(const struct jada_config *config, const struct queue_task *t);
bool project_has_git_file(const char *dir);
/* The worktree's `git worktree add` never finished (a kill): its lock is
 * dropped and true returned. */
bool project_worktree_unfinished(const char *worktree);
/* What a failed git said, in one line. */
const char *project_job_why(struct job_result *res);

/* project-janitor.c: after the janitor's commit (on_done, then removal);
 * the steps J_ON_DONE and J_REMOVED; an operation that ended. */
void project_janitor_go_on(struct project_op *op);
void project_janitor_step(struct project_op *op, struct job_result *res);
void project_janitor_forget(struct project_op *op);
