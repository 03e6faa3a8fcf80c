/* SPDX-License-Identifier: MIT */
/*
 * A task's branch and worktree, driven from the loop: each step is one git
 * command run as a job; its result picks the next step. Three operations
 * share the steps: prepare (before a session), commit (after one), and the
 * janitor's (a done or cancelled task: commit, push, on_done, remove the
 * worktree). An operation copies what it needs from the config: a reload
 * may free the config while it runs.
 */
#include "jada/project.h"
#include "project-private.h"
#include "jada/store.h"
#include "jada/log.h"
#include "jada/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void project_op_free(struct project_op *op)
{
        if (!op)
                return;
        job_cancel(op->job);
        sd_event_source_disable_unref(op->defer);
        if (op->result_file)
                (void)unlink(op->result_file);
        free(op->name);
        free(op->path);
        free(op->base);
        free(op->push);
        free(op->on_done);
        free(op->state_dir);
        free(op->branch);
        free(op->worktree);
        free(op->base_commit);
        free(op->existing);
        free(op->message);
        free(op->title);
        free(op->result);
        free(op->result_file);
        free(op->reason);
        strv_free(op->env);
        sd_event_unref(op->event);
        free(op);
}

static void op_deliver(void *userdata)
{
        struct project_op *op = userdata;

        if (op->done)
                op->done(op->verdict, op->reason, op->userdata);
        project_janitor_forget(op);
        project_op_free(op);
}

static int on_defer(sd_event_source *src, void *userdata)
{
        struct project_op *op = userdata;

        /* done records in the store: where it may wait for it. Until then
         * a cancel only drops done (project_op_cancel). */
        op->defer = sd_event_source_disable_unref(op->defer);
        op->pending = true;
        store_run(op->db, op_deliver, op);
        return 0;
}

/* Ends the operation: done runs from the loop, never from a caller's frame. */
void project_op_finish(struct project_op *op, enum project_verdict verdict, const char *fmt, ...)
{
        va_list ap;

        op->verdict = verdict;
        if (fmt) {
                va_start(ap, fmt);
                if (vasprintf(&op->reason, fmt, ap) < 0)
                        abort();
                va_end(ap);
        }
        if (sd_event_add_defer(op->event, &op->defer, on_defer, op) < 0)
                on_defer(NULL, op); /* cannot defer: at once is better than never */
}

/* A warning the task's history keeps, besides the journal. */
void project_op_note(struct project_op *op, const char *fmt, ...)
{
        _cleanup_free_ char *text = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&text, fmt, ap) < 0)
                abort();
        va_end(ap);
        op_log(op, LOG_WARNING, "task %lld: %s", (long long)op->task_id, text);
        (void)queue_note(op->db, op->task_id, text, now_seconds());
}

static void op_step(struct project_op *op, struct job_result *res);

void project_op_job_done(struct job_result *res, void *userdata)
{
        struct project_op *op = userdata;

        op->job = NULL; /* job.c frees it after this returns */
        op_step(op, res);
}

/* Runs git in dir; its result comes to op_step as `next`. */
void project_op_git(struct project_op *op, const char *dir, enum op_step next, const char *const *args)
{
        char **argv = project_git_argv(dir, args);
        int r;

        op->step = next;
        r = job_start(op->event, &(struct job_spec){ .argv = (const char *const *)argv,
                                                     .env = (const char *const *)op->env, .cwd = "/",
                                                     .timeout = op->git_timeout, .capture_max = 64 * 1024,
                                                     .stdout_fd = -1, .store = op->db },
                      project_op_job_done, op, &op->job);
        strv_free(argv);
        if (r < 0)
                project_op_finish(op, PROJECT_RETRY, "cannot run git: %s", strerror(-r));
}

#define GIT(op, dir, next, ...) project_op_git((op), (dir), (next), (const char *const[]){ __VA_ARGS__, NULL })

static char *project_trimmed(const struct job_result *res)
{
        size_t n = res->out_len;

        while (n > 0 && (res->out[n - 1] == '\n' || res->out[n - 1] == ' '))
                n--;
        return xstrndup(res->out, n);
}

/* What a failed git said, for a reason. */
const char *project_job_why(struct job_result *res)
{
        if (res->status < 0)
                return strerror(-res->status);
        return job_result_why(res);
}

bool project_has_git_file(const char *dir)
{
        _cleanup_free_ char *git = xasprintf("%s/.git", dir);
        struct stat st;
        return lstat(git, &st) == 0;
}

/* A `git worktree add` that never finished (the daemon, and with it git,
 * was killed in it): git locks the new worktree "initializing" until its
 * checkout is done. Its files are not the branch's: committing "what is
 * left" there would commit the deletion of everything not checked out yet.
 * The lock is dropped (so that git may prune or remove it) and true returned. */
bool project_worktree_unfinished(const char *worktree)
{
        _cleanup_free_ char *dotgit = xasprintf("%s/.git", worktree), *data = NULL, *locked = NULL, *reason = NULL;
        size_t size;

        if (read_file_capped(dotgit, 4096, &data, &size) < 0 || strncmp(data, "gitdir: ", 8) != 0)
                return false;
        data[8 + strcspn(data + 8, "\n")] = '\0';
        locked = xasprintf("%s/locked", data + 8);
        if (read_file_capped(locked, 4096, &reason, &size) < 0 || strncmp(reason, "initializing", 12) != 0)
                return false;
        (void)unlink(locked);
        return true;
}

static void move_aside(struct project_op *op);

/* ---- the commit sequence ------------------------------------------------- */

/* After the commit (or nothing to commit): what the operation does next. */
static void commit_then(struct project_op *op)
{
        switch (op->kind) {
        case OP_PREPARE:
        case OP_COMMIT:
                project_op_finish(op, PROJECT_OK, NULL);
                return;
        case OP_JANITOR:
                project_janitor_go_on(op);
                return;
        }
}

static void after_commit(struct project_op *op)
{
        _cleanup_free_ char *refspec = NULL;

        /* After a session, always (an earlier push may have failed);
         * otherwise only what is new. */
        if (!*op->push || (op->kind != OP_COMMIT && !op->committed)) {
                commit_then(op);
                return;
        }
        refspec = xasprintf("refs/heads/%s:refs/heads/%s", op->branch, op->branch);
        GIT(op, op->worktree, C_PUSHED, "push", "-q", "--", op->push, refspec);
}

/* The commit could not be made: nothing is lost (it stays in the worktree). */
static void commit_failed(struct project_op *op, const char *what, struct job_result *res)
{
        switch (op->kind) {
        case OP_PREPARE:
                project_op_finish(op, PROJECT_RETRY, "project %s: cannot commit what the last session left (%s: %s)",
                          op->name, what, project_job_why(res));
                return;
        case OP_COMMIT:
                project_op_note(op, "warning: what the session left is not committed yet (%s: %s); it stays in %s and is "
                        "committed before the next session", what, project_job_why(res), op->worktree);
                project_op_finish(op, PROJECT_OK, NULL);
                return;
        case OP_JANITOR:
                project_op_note(op, "warning: cannot commit what is left in %s (%s: %s); the worktree is kept, tried again later",
                        op->worktree, what, project_job_why(res));
                project_op_finish(op, PROJECT_RETRY, NULL);
                return;
        }
}

void project_commit_start(struct project_op *op)
{
        if (!project_has_git_file(op->worktree)) {
                after_commit(op);
                return;
        }
        if (project_worktree_unfinished(op->worktree)) {
                project_op_note(op, "warning: the worktree %s was left half made by a daemon that was killed: "
                                "nothing there to commit", op->worktree);
                if (op->kind == OP_PREPARE)
                        move_aside(op);
                else
                        after_commit(op);
                return;
        }
        GIT(op, op->worktree, C_HEAD, "symbolic-ref", "-q", "HEAD");
}

static bool commit_step(struct project_op *op, struct job_result *res)
{
        _cleanup_free_ char *head = NULL, *want = NULL;

        switch (op->step) {
        case C_HEAD:
                head = project_trimmed(res);
                want = xasprintf("refs/heads/%s", op->branch);
                if (res->status == 0 && strcmp(head, want) == 0) {
                        GIT(op, op->worktree, C_ADD, "add", "-A");
                        return true;
                }
                if (op->kind == OP_PREPARE) {
                        project_op_finish(op, PROJECT_NEEDS_YOU,
                                  "project %s: the worktree %s is not on branch %s (HEAD: %s); check the branch out "
                                  "there again, then reply", op->name, op->worktree, op->branch,
                                  res->status == 0 ? head : "detached");
                        return true;
                }
                project_op_note(op, "warning: not committed: the worktree %s is not on branch %s (HEAD: %s)", op->worktree,
                        op->branch, res->status == 0 ? head : "detached");
                project_op_finish(op, op->kind == OP_JANITOR ? PROJECT_RETRY : PROJECT_OK, NULL);
                return true;
        case C_ADD:
                if (res->status != 0)
                        commit_failed(op, "git add", res);
                else
                        GIT(op, op->worktree, C_DIFF, "diff", "--cached", "--quiet");
                return true;
        case C_DIFF:
                if (res->status == 0)
                        after_commit(op);
                else if (res->status == 1)
                        GIT(op, op->worktree, C_COMMIT, "commit", "--no-verify", "-q", "-m", op->message);
                else
                        commit_failed(op, "git diff", res);
                return true;
        case C_COMMIT:
                if (res->status != 0) {
                        commit_failed(op, "git commit", res);
                        return true;
                }
                op->committed = true;
                op_log(op, LOG_INFO, "task %lld: committed to %s: %s", (long long)op->task_id, op->branch, op->message);
                after_commit(op);
                return true;
        case C_PUSHED:
                if (res->status != 0)
                        project_op_note(op, "warning: git push %s %s failed: %s", op->push, op->branch, project_job_why(res));
                else
                        op_log(op, LOG_INFO, "task %lld: pushed %s to %s", (long long)op->task_id, op->branch, op->push);
                commit_then(op);
                return true;
        case J_ON_DONE:
        case J_REMOVED:
                project_janitor_step(op, res);
                return true;
        default:
                return false;
        }
}

/* ---- prepare ------------------------------------------------------------- */

static void prepare_absent(struct project_op *op)
{
        if (op->recorded) {
                GIT(op, op->path, S_PRUNED, "worktree", "prune");
                return;
        }
        if (*op->base) {
                _cleanup_free_ char *ref = xasprintf("refs/heads/%s^{commit}", op->base);
                GIT(op, op->path, S_BASE, "rev-parse", "--verify", "-q", ref);
                return;
        }
        GIT(op, op->path, S_CURRENT, "symbolic-ref", "-q", "--short", "HEAD");
}

/* STATE/work/task-ID is there but not a worktree (a crash inside `git
 * worktree add`, a work dir from before the task had a project): moved
 * aside, never deleted. */
static void move_aside(struct project_op *op)
{
        _cleanup_free_ char *aside = xasprintf("%s.orphan-%lld", op->worktree, (long long)now_seconds());

        if (rename(op->worktree, aside) < 0) {
                project_op_finish(op, PROJECT_RETRY, "cannot move %s aside: %s", op->worktree, strerror(errno));
                return;
        }
        project_op_note(op, "warning: %s was not a worktree of the task; moved to %s", op->worktree, aside);
        prepare_absent(op);
}

static void record_and_add(struct project_op *op, bool new_branch)
{
        int r = queue_set_branch(op->db, op->task_id, op->branch, op->base, op->base_commit, op->worktree);

        if (r < 0) {
                project_op_finish(op, PROJECT_RETRY, "cannot record the task's branch: %s", strerror(-r));
                return;
        }
        op->recorded = true;
        if (new_branch)
                op->existing = mfree(op->existing);
        GIT(op, op->path, S_PRUNED_NEW, "worktree", "prune");
}

static void prepare_step(struct project_op *op, struct job_result *res)
{
        _cleanup_free_ char *ref = NULL;

        switch (op->step) {
        case S_START:
                if (project_has_git_file(op->worktree) && project_worktree_unfinished(op->worktree)) {
                        project_op_note(op, "warning: the worktree %s was left half made by a daemon that was "
                                        "killed: made again", op->worktree);
                        move_aside(op);
                        return;
                }
                if (project_has_git_file(op->worktree)) {
                        GIT(op, op->worktree, S_HEAD, "symbolic-ref", "-q", "HEAD");
                        return;
                }
                if (access(op->worktree, F_OK) == 0) {
                        move_aside(op);
                        return;
                }
                prepare_absent(op);
                return;
        case S_HEAD:
                if (res->status == 128) { /* not a repository: a broken worktree */
                        move_aside(op);
                        return;
                }
                /* On its branch or not: the commit sequence checks and says. */
                project_commit_start(op);
                return;
        case S_PRUNED:
                ref = xasprintf("refs/heads/%s", op->branch);
                GIT(op, op->path, S_HAVE_BRANCH, "rev-parse", "--verify", "-q", ref);
                return;
        case S_HAVE_BRANCH:
                if (res->status == 0)
                        GIT(op, op->path, S_ADDED, "worktree", "add", "-q", op->worktree, op->branch);
                else if (res->status == 1 && op->base_commit)
                        /* Recorded, then the daemon died before git made it. */
                        GIT(op, op->path, S_ADDED, "worktree", "add", "-q", "-b", op->branch, op->worktree,
                            op->base_commit);
                else if (res->status == 1)
                        project_op_finish(op, PROJECT_NEEDS_YOU, "project %s: branch %s is gone from %s", op->name, op->branch,
                                  op->path);
                else
                        project_op_finish(op, PROJECT_RETRY, "project %s: git rev-parse: %s", op->name, project_job_why(res));
                return;
        case S_CURRENT:
                if (res->status != 0) {
                        if (res->status == 1)
                                project_op_finish(op, PROJECT_NEEDS_YOU,
                                          "project %s: %s is on a detached HEAD and the project has no base: set "
                                          "base = in [project %s], reload, then reply", op->name, op->path, op->name);
                        else
                                project_op_finish(op, PROJECT_RETRY, "project %s: git symbolic-ref: %s", op->name, project_job_why(res));
                        return;
                }
                free(op->base);
                op->base = project_trimmed(res);
                ref = xasprintf("refs/heads/%s^{commit}", op->base);
                GIT(op, op->path, S_BASE, "rev-parse", "--verify", "-q", ref);
                return;
        case S_BASE:
                if (res->status == 1 || (res->status == 128 && !res->timed_out)) {
                        project_op_finish(op, PROJECT_NEEDS_YOU, "project %s: base branch '%s' does not exist in %s",
                                  op->name, op->base, op->path);
                        return;
                }
                if (res->status != 0) {
                        project_op_finish(op, PROJECT_RETRY, "project %s: git rev-parse: %s", op->name, project_job_why(res));
                        return;
                }
                op->base_commit = project_trimmed(res);
                ref = xasprintf("refs/heads/%s", op->branch);
                GIT(op, op->path, S_EXISTING, "rev-parse", "--verify", "-q", ref);
                return;
        case S_EXISTING:
                if (res->status == 1) {
                        record_and_add(op, true);
                        return;
                }
                if (res->status != 0) {
                        project_op_finish(op, PROJECT_RETRY, "project %s: git rev-parse: %s", op->name, project_job_why(res));
                        return;
                }
                op->existing = project_trimmed(res);
                GIT(op, op->path, S_ANCESTOR, "merge-base", "--is-ancestor", op->existing, op->base_commit);
                return;
        case S_ANCESTOR:
                if (res->status == 0) /* nothing on it that its base lacks: ours to use */
                        record_and_add(op, false);
                else if (res->status == 1)
                        project_op_finish(op, PROJECT_NEEDS_YOU,
                                  "project %s: branch %s already exists in %s with commits not made for this task "
                                  "(another daemon's, or a person's): rename or delete it, then reply", op->name,
                                  op->branch, op->path);
                else
                        project_op_finish(op, PROJECT_RETRY, "project %s: git merge-base: %s", op->name, project_job_why(res));
                return;
        case S_PRUNED_NEW:
                if (op->existing)
                        GIT(op, op->path, S_ADDED, "worktree", "add", "-q", op->worktree, op->branch);
                else
                        GIT(op, op->path, S_ADDED, "worktree", "add", "-q", "-b", op->branch, op->worktree,
                            op->base_commit);
                return;
        case S_ADDED:
                if (res->status != 0) {
                        project_op_finish(op, PROJECT_RETRY, "project %s: git worktree add: %s", op->name, project_job_why(res));
                        return;
                }
                op_log(op, LOG_INFO, "task %lld: worktree %s on branch %s (from %s)", (long long)op->task_id,
                       op->worktree, op->branch, op->base ? op->base : "?");
                project_op_finish(op, PROJECT_OK, NULL);
                return;
        default:
                break;
        }
}

/* ---- a fleet's prepare: the branch the last node pushed -------------------
 *
 * The task's last session may have run on another machine, which pushed the
 * branch to the project's push remote (the config requires one on a fleet).
 * Before the usual prepare: fetch it into refs/jada/fetched/BRANCH, then
 * make the local branch (and its worktree, if this node has one) the
 * fetched one when ours is behind it or missing; ours ahead of it (its push
 * failed) stays; both moved on is for a person. */

/* The usual prepare, from its first step. */
static void prepare_from_start(struct project_op *op)
{
        op->step = S_START;
        prepare_step(op, NULL);
}

static bool fetch_step(struct project_op *op, struct job_result *res)
{
        _cleanup_free_ char *remote_ref = xasprintf("refs/heads/%s", op->branch);
        _cleanup_free_ char *fetched = xasprintf("refs/jada/fetched/%s", op->branch), *refspec = NULL;

        switch (op->step) {
        case F_LISTED:
                if (res->status == 2) {         /* not there: no session pushed it yet */
                        prepare_from_start(op);
                        return true;
                }
                if (res->status != 0) {
                        project_op_finish(op, PROJECT_RETRY, "project %s: cannot reach the push remote %s: %s",
                                          op->name, op->push, project_job_why(res));
                        return true;
                }
                refspec = xasprintf("+%s:%s", remote_ref, fetched);
                GIT(op, op->path, F_FETCHED, "fetch", "-q", "--no-tags", "--", op->push, refspec);
                return true;
        case F_FETCHED:
                if (res->status != 0) {
                        project_op_finish(op, PROJECT_RETRY, "project %s: cannot fetch %s from %s: %s", op->name,
                                          op->branch, op->push, project_job_why(res));
                        return true;
                }
                GIT(op, op->path, F_LOCAL, "rev-parse", "--verify", "-q", remote_ref);
                return true;
        case F_LOCAL:
                if (res->status == 1) {
                        op_log(op, LOG_INFO, "task %lld: branch %s fetched from %s (the last session ran on "
                               "another node)", (long long)op->task_id, op->branch, op->push);
                        GIT(op, op->path, F_FORWARDED, "branch", "--", op->branch, fetched);
                } else if (res->status == 0)
                        GIT(op, op->path, F_BEHIND, "merge-base", "--is-ancestor", remote_ref, fetched);
                else
                        project_op_finish(op, PROJECT_RETRY, "project %s: git rev-parse: %s", op->name,
                                          project_job_why(res));
                return true;
        case F_BEHIND:
                if (res->status == 1) {
                        GIT(op, op->path, F_AHEAD, "merge-base", "--is-ancestor", fetched, remote_ref);
                        return true;
                }
                if (res->status != 0) {
                        project_op_finish(op, PROJECT_RETRY, "project %s: git merge-base: %s", op->name,
                                          project_job_why(res));
                        return true;
                }
                /* Behind (or even): moved up, in the worktree if there is one. */
                if (project_has_git_file(op->worktree))
                        GIT(op, op->worktree, F_FORWARDED, "merge", "--ff-only", "-q", fetched);
                else
                        GIT(op, op->path, F_FORWARDED, "update-ref", remote_ref, fetched);
                return true;
        case F_AHEAD:
                if (res->status == 0)           /* ours has more: its push failed, the next one sends it */
                        prepare_from_start(op);
                else if (res->status == 1)
                        project_op_finish(op, PROJECT_NEEDS_YOU,
                                          "project %s: branch %s here and on %s have both moved on (two nodes "
                                          "worked on the task): merge them on %s, then reply", op->name,
                                          op->branch, op->push, op->push);
                else
                        project_op_finish(op, PROJECT_RETRY, "project %s: git merge-base: %s", op->name,
                                          project_job_why(res));
                return true;
        case F_FORWARDED:
                if (res->status != 0)
                        project_op_finish(op, PROJECT_NEEDS_YOU,
                                          "project %s: cannot bring branch %s up to the one fetched from %s (%s): "
                                          "look at %s, then reply", op->name, op->branch, op->push,
                                          project_job_why(res), op->worktree);
                else
                        prepare_from_start(op);
                return true;
        default:
                return false;
        }
}

static void op_step(struct project_op *op, struct job_result *res)
{
        if (commit_step(op, res))
                return;
        if (op->kind == OP_PREPARE && fetch_step(op, res))
                return;
        if (op->kind == OP_PREPARE) {
                prepare_step(op, res);
                return;
        }
        project_op_finish(op, PROJECT_RETRY, "internal error: step %d", (int)op->step);
}

/* ---- starting operations ------------------------------------------------- */

struct project_op *project_op_new(sd_event *event, struct store *db, const struct jada_config *config,
                                 const struct project_config *p, const struct queue_task *t, enum op_kind kind)
{
        struct project_op *op = xcalloc(1, sizeof *op);

        op->event = sd_event_ref(event);
        op->db = db;
        op->kind = kind;
        op->step = S_START;
        op->task_id = t->id;
        op->task_state = t->state;
        op->name = xstrdup(p->name);
        op->path = xstrdup(p->path);
        /* A task keeps the base it started from, whatever the config says now. */
        op->base = xstrdup(t->base ? t->base : p->base);
        op->base_commit = t->base_commit ? xstrdup(t->base_commit) : NULL;
        op->push = xstrdup(p->push);
        op->on_done = xstrdup(p->on_done);
        op->state_dir = xstrdup(config->daemon.state_dir);
        op->branch = project_branch_name(t->id);
        op->worktree = project_work_dir(config, t->id);
        op->recorded = t->branch != NULL;
        op->title = xstrdup(t->title ? t->title : "");
        op->result = t->result ? xstrdup(t->result) : NULL;
        op->env = project_git_env(config, p);
        op->git_timeout = config->daemon.git_timeout;
        snprintf(op->task_field, sizeof op->task_field, "JADA_TASK_ID=%lld", (long long)t->id);
        return op;
}

const struct project_config *project_worktree_config(const struct jada_config *config, const struct queue_task *t)
{
        const struct project_config *p = config_project(config, t->project);
        return p && p->isolation == PROJECT_WORKTREE ? p : NULL;
}

int project_prepare(sd_event *event, struct store *db, const struct jada_config *config, const struct queue_task *t,
                    const char *leftover_message, project_done_t done, void *userdata, struct project_op **ret)
{
        const struct project_config *p = project_worktree_config(config, t);
        struct project_op *op;
        _cleanup_free_ char *why_not = NULL;

        if (!p)
                return -ENOENT;
        op = project_op_new(event, db, config, p, t, OP_PREPARE);
        op->done = done;
        op->userdata = userdata;
        op->message = xstrdup(leftover_message);
        *ret = op;
        if (project_check_path(p, &why_not) < 0)
                project_op_finish(op, PROJECT_RETRY, "%s", why_not);
        else if (store_is_postgresql(db) && *p->push && t->branch) {
                /* A fleet's task that ran before, maybe elsewhere. */
                _cleanup_free_ char *ref = xasprintf("refs/heads/%s", op->branch);
                GIT(op, op->path, F_LISTED, "ls-remote", "--exit-code", "-q", "--", op->push, ref);
        } else
                prepare_step(op, NULL);
        return 0;
}

int project_commit(sd_event *event, struct store *db, const struct jada_config *config, const struct queue_task *t,
                   const char *message, project_done_t done, void *userdata, struct project_op **ret)
{
        const struct project_config *p = project_worktree_config(config, t);
        struct project_op *op;

        if (!p)
                return -ENOENT;
        op = project_op_new(event, db, config, p, t, OP_COMMIT);
        op->done = done;
        op->userdata = userdata;
        op->message = xstrdup(message);
        *ret = op;
        project_commit_start(op);
        return 0;
}

void project_op_cancel(struct project_op *op)
{
        if (op && op->pending) {
                op->done = NULL;
                return;
        }
        project_op_free(op);
}

