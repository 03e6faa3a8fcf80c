/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"
#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "jada/config.h"
#include "jada/job.h"
#include "jada/queue.h"

/*
 * Projects: a task of a project works in a git worktree of the project's
 * repository, on branch jada/task-ID, and whatever a session leaves is
 * committed there. git runs as the `git` command, as jobs supervised from
 * the loop (job.h), each with a timeout and a clean environment; the
 * command line runs the same commands and waits.
 */

#define PROJECT_BRANCH_PREFIX "jada/task-"
#define PROJECT_ON_DONE_TIMEOUT_USEC (600 * USEC_PER_SEC)

/* "jada/task-ID" */
char *project_branch_name(int64_t task_id);
/* STATE/work/task-ID: the task's worktree, or its plain work dir. */
char *project_work_dir(const struct jada_config *config, int64_t task_id);

/* The environment of every git command: PATH, HOME under the state dir,
 * LC_ALL=C, no prompts, no pager, the author (if p is not NULL), and a
 * ceiling at STATE/work, so that git never walks up out of a work dir into a
 * repository around the state dir. */
char **project_git_env(const struct jada_config *config, const struct project_config *p);
/* git -c safe.directory=* -c commit.gpgsign=false -C dir ARGS... (NULL-terminated). */
char **project_git_argv(const char *dir, const char *const *args);

/* What the file system says about a project, without git: the path exists,
 * is a git work tree (or, for isolation = none, a directory), and the
 * daemon can write what it must (its .git, or the directory). 0, or a
 * negative errno and *ret_why: a sentence naming the project, the cause and
 * the fix (the ReadWritePaths= the unit needs, when the file system is
 * read-only). */
int project_check_path(const struct project_config *p, char **ret_why);
/* check-config: the path, then (with git, waiting) that base exists. */
int project_check(const struct jada_config *config, const struct project_config *p, char **ret_why);

/* For `task show`: commits on the branch ahead of the merge base with its
 * base, and the diffstat against it. */
struct project_branch_info {
        long commits;                   /* -1: unknown */
        char *diffstat;                 /* "" when none; never NULL */
        char *problem;                  /* why the rest is unknown, or NULL */
};
void project_branch_info(const struct jada_config *config, const struct queue_task *task,
                         struct project_branch_info *ret);
void project_branch_info_clear(struct project_branch_info *info);
/* `task diff`: the branch against the merge base with its base, to out_fd. */
int project_diff(const struct jada_config *config, const struct queue_task *task, bool stat, int out_fd,
                 char **ret_why);

/* ---- in the daemon ------------------------------------------------------- */

enum project_verdict {
        PROJECT_OK,
        PROJECT_RETRY,                  /* a git command failed: retry the task later */
        PROJECT_NEEDS_YOU,              /* only a person can resolve it (reason says what) */
};

typedef void (*project_done_t)(enum project_verdict verdict, const char *reason, void *userdata);
struct project_op;

/* Before a session of a task of a worktree project: creates the branch and
 * worktree (recorded in the db first), or finds them, committing what an
 * earlier session left (a dead daemon's, or one whose commit failed) with
 * leftover_message. done runs from the loop, never from within. */
int project_prepare(sd_event *event, struct store *db, const struct jada_config *config, const struct queue_task *task,
                    const char *leftover_message, project_done_t done, void *userdata, struct project_op **ret);
/* After a session: commits what it left with this message, then pushes.
 * A failure is a warning (journal and task event), never the session's
 * loss: what is not committed stays in the worktree for the next try. */
int project_commit(sd_event *event, struct store *db, const struct jada_config *config, const struct queue_task *task,
                   const char *message, project_done_t done, void *userdata, struct project_op **ret);
/* Stops it (its git is killed); done is not called. */
void project_op_cancel(struct project_op *op);

/* Done and cancelled tasks' worktrees: commit what is left, push, run
 * on_done (done tasks), remove the worktree and keep the branch. */
struct project_janitor;
/* in_session(task_id, userdata): a session holds the task (its own commit
 * comes first); the janitor leaves it alone until it ends. */
int project_janitor_new(sd_event *event, struct store *db, bool (*in_session)(int64_t task_id, void *userdata),
                        void *userdata, struct project_janitor **ret);
struct project_janitor *project_janitor_free(struct project_janitor *janitor);
/* Starts the work for every ended task with a worktree not yet in hand. */
void project_janitor_sweep(struct project_janitor *janitor, const struct jada_config *config);

/* At start-up: the lock files (index.lock, the branch's ref lock) that a
 * killed daemon's git left in its tasks' worktrees, older than before_usec
 * (realtime), are removed; else the next commit there would fail. */
void project_clear_stale_locks(struct store *db, uint64_t before_usec);
