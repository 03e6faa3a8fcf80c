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
#include "jada/db.h"
#include "jada/log.h"
#include "jada/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A janitor's operation that failed is tried again after this. */
#define JANITOR_RETRY_USEC (10 * 60 * USEC_PER_SEC)

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
        sqlite3 *db;
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
        enum project_verdict verdict;
        char *reason;
        project_done_t done;
        void *userdata;
        struct project_janitor *janitor;
        struct project_op *next;
        char task_field[40];
};

struct janitor_retry {
        int64_t task_id;
        uint64_t after;                 /* monotonic usec */
};

struct project_janitor {
        sd_event *event;
        sqlite3 *db;
        bool (*in_session)(int64_t task_id, void *userdata);
        void *userdata;
        struct project_op *ops;
        struct janitor_retry *retry;
        size_t n_retry;
};

#define op_log(op, prio, ...) log_fields((prio), JADA_FIELDS((op)->task_field), __VA_ARGS__)

static void op_free(struct project_op *op)
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

static void janitor_forget(struct project_op *op);

static int on_defer(sd_event_source *src, void *userdata)
{
        struct project_op *op = userdata;

        if (op->done)
                op->done(op->verdict, op->reason, op->userdata);
        janitor_forget(op);
        op_free(op);
        return 0;
}

/* Ends the operation: done runs from the loop, never from a caller's frame. */
static void op_finish(struct project_op *op, enum project_verdict verdict, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void op_finish(struct project_op *op, enum project_verdict verdict, const char *fmt, ...)
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
static void op_note(struct project_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void op_note(struct project_op *op, const char *fmt, ...)
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

static void on_job_done(struct job_result *res, void *userdata)
{
        struct project_op *op = userdata;

        op->job = NULL; /* job.c frees it after this returns */
        op_step(op, res);
}

/* Runs git in dir; its result comes to op_step as `next`. */
static void op_git(struct project_op *op, const char *dir, enum op_step next, const char *const *args)
{
        char **argv = project_git_argv(dir, args);
        int r;

        op->step = next;
        r = job_start(op->event, &(struct job_spec){ .argv = (const char *const *)argv,
                                                     .env = (const char *const *)op->env, .cwd = "/",
                                                     .timeout = op->git_timeout, .capture_max = 64 * 1024,
                                                     .stdout_fd = -1 },
                      on_job_done, op, &op->job);
        strv_free(argv);
        if (r < 0)
                op_finish(op, PROJECT_RETRY, "cannot run git: %s", strerror(-r));
}

#define GIT(op, dir, next, ...) op_git((op), (dir), (next), (const char *const[]){ __VA_ARGS__, NULL })

static char *trimmed(const struct job_result *res)
{
        size_t n = res->out_len;

        while (n > 0 && (res->out[n - 1] == '\n' || res->out[n - 1] == ' '))
                n--;
        return xstrndup(res->out, n);
}

/* What a failed git said, for a reason. */
static const char *why(struct job_result *res)
{
        if (res->status < 0)
                return strerror(-res->status);
        return job_result_why(res);
}

static bool has_git_file(const char *dir)
{
        _cleanup_free_ char *git = xasprintf("%s/.git", dir);
        struct stat st;
        return lstat(git, &st) == 0;
}

/* ---- the commit sequence ------------------------------------------------- */

static void commit_start(struct project_op *op);

static void after_remove(struct project_op *op, struct job_result *res)
{
        if (res->status != 0)
                op_note(op, "could not remove the worktree %s (%s); the branch %s has the work; remove it with "
                        "git worktree remove", op->worktree, why(res), op->branch);
        if (queue_set_worktree(op->db, op->task_id, NULL) < 0)
                op_log(op, LOG_WARNING, "task %lld: cannot record that its worktree is gone", (long long)op->task_id);
        else
                op_log(op, LOG_INFO, "task %lld: worktree removed; branch %s kept", (long long)op->task_id, op->branch);
        op_finish(op, PROJECT_OK, NULL);
}

static void janitor_remove(struct project_op *op)
{
        if (has_git_file(op->worktree))
                GIT(op, op->path, J_REMOVED, "worktree", "remove", "--force", op->worktree);
        else
                GIT(op, op->path, J_REMOVED, "worktree", "prune");
}

static void start_on_done(struct project_op *op)
{
        _cleanup_free_ char *prefix = xasprintf("task %lld: on_done: ", (long long)op->task_id);
        size_t n = strv_length(op->env);
        char **env = xcalloc(n + 8, sizeof *env);
        const char *argv[] = { "/bin/sh", "-c", op->on_done, NULL };
        int r;

        op->result_file = xasprintf("%s/work/.result-task-%lld", op->state_dir, (long long)op->task_id);
        r = write_file_atomic(op->result_file, op->result ? op->result : "", op->result ? strlen(op->result) : 0, 0600);
        if (r < 0) {
                op_note(op, "on_done not run: cannot write the result file: %s", strerror(-r));
                janitor_remove(op);
                strv_free(env);
                return;
        }
        for (size_t i = 0; i < n; i++)
                env[i] = xstrdup(op->env[i]);
        env[n++] = xasprintf("JADA_TASK_ID=%lld", (long long)op->task_id);
        env[n++] = xasprintf("JADA_TASK_TITLE=%s", op->title ? op->title : "");
        env[n++] = xasprintf("JADA_PROJECT=%s", op->name);
        env[n++] = xasprintf("JADA_BRANCH=%s", op->branch);
        env[n++] = xasprintf("JADA_BASE=%s", op->base ? op->base : "");
        env[n++] = xasprintf("JADA_WORKTREE=%s", op->worktree);
        env[n++] = xasprintf("JADA_RESULT=%s", op->result_file);
        op->step = J_ON_DONE;
        op_log(op, LOG_INFO, "task %lld: running on_done of project %s", (long long)op->task_id, op->name);
        r = job_start(op->event, &(struct job_spec){ .argv = argv, .env = (const char *const *)env,
                                                     .cwd = op->worktree, .timeout = PROJECT_ON_DONE_TIMEOUT_USEC,
                                                     .stdout_fd = -1, .log_prefix = prefix,
                                                     .log_fields = JADA_FIELDS(op->task_field) },
                      on_job_done, op, &op->job);
        strv_free(env);
        if (r < 0) {
                op_note(op, "on_done could not run: %s", strerror(-r));
                janitor_remove(op);
        }
}

/* After the commit (or nothing to commit): what the operation does next. */
static void commit_then(struct project_op *op)
{
        switch (op->kind) {
        case OP_PREPARE:
        case OP_COMMIT:
                op_finish(op, PROJECT_OK, NULL);
                return;
        case OP_JANITOR:
                if (op->task_state == TASK_DONE && *op->on_done)
                        start_on_done(op);
                else
                        janitor_remove(op);
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
                op_finish(op, PROJECT_RETRY, "project %s: cannot commit what the last session left (%s: %s)",
                          op->name, what, why(res));
                return;
        case OP_COMMIT:
                op_note(op, "warning: what the session left is not committed yet (%s: %s); it stays in %s and is "
                        "committed before the next session", what, why(res), op->worktree);
                op_finish(op, PROJECT_OK, NULL);
                return;
        case OP_JANITOR:
                op_note(op, "warning: cannot commit what is left in %s (%s: %s); the worktree is kept, tried again later",
                        op->worktree, what, why(res));
                op_finish(op, PROJECT_RETRY, NULL);
                return;
        }
}

static void commit_start(struct project_op *op)
{
        if (!has_git_file(op->worktree)) {
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
                head = trimmed(res);
                want = xasprintf("refs/heads/%s", op->branch);
                if (res->status == 0 && strcmp(head, want) == 0) {
                        GIT(op, op->worktree, C_ADD, "add", "-A");
                        return true;
                }
                if (op->kind == OP_PREPARE) {
                        op_finish(op, PROJECT_NEEDS_YOU,
                                  "project %s: the worktree %s is not on branch %s (HEAD: %s); check the branch out "
                                  "there again, then reply", op->name, op->worktree, op->branch,
                                  res->status == 0 ? head : "detached");
                        return true;
                }
                op_note(op, "warning: not committed: the worktree %s is not on branch %s (HEAD: %s)", op->worktree,
                        op->branch, res->status == 0 ? head : "detached");
                op_finish(op, op->kind == OP_JANITOR ? PROJECT_RETRY : PROJECT_OK, NULL);
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
                        op_note(op, "warning: git push %s %s failed: %s", op->push, op->branch, why(res));
                else
                        op_log(op, LOG_INFO, "task %lld: pushed %s to %s", (long long)op->task_id, op->branch, op->push);
                commit_then(op);
                return true;
        case J_ON_DONE:
                (void)unlink(op->result_file);
                op->result_file = mfree(op->result_file);
                if (res->status == 0)
                        (void)queue_note(op->db, op->task_id, "on_done ran (exit 0)", now_seconds());
                else if (res->timed_out)
                        op_note(op, "on_done timed out after %llus and was stopped",
                                (unsigned long long)(PROJECT_ON_DONE_TIMEOUT_USEC / USEC_PER_SEC));
                else if (res->status < 0)
                        op_note(op, "on_done could not run: %s", strerror(-res->status));
                else
                        op_note(op, "on_done failed: exit status %d", res->status);
                janitor_remove(op);
                return true;
        case J_REMOVED:
                after_remove(op, res);
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
                op_finish(op, PROJECT_RETRY, "cannot move %s aside: %s", op->worktree, strerror(errno));
                return;
        }
        op_note(op, "warning: %s was not a worktree of the task; moved to %s", op->worktree, aside);
        prepare_absent(op);
}

static void record_and_add(struct project_op *op, bool new_branch)
{
        int r = queue_set_branch(op->db, op->task_id, op->branch, op->base, op->base_commit, op->worktree);

        if (r < 0) {
                op_finish(op, PROJECT_RETRY, "cannot record the task's branch: %s", strerror(-r));
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
                if (has_git_file(op->worktree)) {
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
                commit_start(op);
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
                        op_finish(op, PROJECT_NEEDS_YOU, "project %s: branch %s is gone from %s", op->name, op->branch,
                                  op->path);
                else
                        op_finish(op, PROJECT_RETRY, "project %s: git rev-parse: %s", op->name, why(res));
                return;
        case S_CURRENT:
                if (res->status != 0) {
                        if (res->status == 1)
                                op_finish(op, PROJECT_NEEDS_YOU,
                                          "project %s: %s is on a detached HEAD and the project has no base: set "
                                          "base = in [project %s], reload, then reply", op->name, op->path, op->name);
                        else
                                op_finish(op, PROJECT_RETRY, "project %s: git symbolic-ref: %s", op->name, why(res));
                        return;
                }
                free(op->base);
                op->base = trimmed(res);
                ref = xasprintf("refs/heads/%s^{commit}", op->base);
                GIT(op, op->path, S_BASE, "rev-parse", "--verify", "-q", ref);
                return;
        case S_BASE:
                if (res->status == 1 || (res->status == 128 && !res->timed_out)) {
                        op_finish(op, PROJECT_NEEDS_YOU, "project %s: base branch '%s' does not exist in %s",
                                  op->name, op->base, op->path);
                        return;
                }
                if (res->status != 0) {
                        op_finish(op, PROJECT_RETRY, "project %s: git rev-parse: %s", op->name, why(res));
                        return;
                }
                op->base_commit = trimmed(res);
                ref = xasprintf("refs/heads/%s", op->branch);
                GIT(op, op->path, S_EXISTING, "rev-parse", "--verify", "-q", ref);
                return;
        case S_EXISTING:
                if (res->status == 1) {
                        record_and_add(op, true);
                        return;
                }
                if (res->status != 0) {
                        op_finish(op, PROJECT_RETRY, "project %s: git rev-parse: %s", op->name, why(res));
                        return;
                }
                op->existing = trimmed(res);
                GIT(op, op->path, S_ANCESTOR, "merge-base", "--is-ancestor", op->existing, op->base_commit);
                return;
        case S_ANCESTOR:
                if (res->status == 0) /* nothing on it that its base lacks: ours to use */
                        record_and_add(op, false);
                else if (res->status == 1)
                        op_finish(op, PROJECT_NEEDS_YOU,
                                  "project %s: branch %s already exists in %s with commits not made for this task "
                                  "(another daemon's, or a person's): rename or delete it, then reply", op->name,
                                  op->branch, op->path);
                else
                        op_finish(op, PROJECT_RETRY, "project %s: git merge-base: %s", op->name, why(res));
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
                        op_finish(op, PROJECT_RETRY, "project %s: git worktree add: %s", op->name, why(res));
                        return;
                }
                op_log(op, LOG_INFO, "task %lld: worktree %s on branch %s (from %s)", (long long)op->task_id,
                       op->worktree, op->branch, op->base ? op->base : "?");
                op_finish(op, PROJECT_OK, NULL);
                return;
        default:
                break;
        }
}

static void op_step(struct project_op *op, struct job_result *res)
{
        if (commit_step(op, res))
                return;
        if (op->kind == OP_PREPARE) {
                prepare_step(op, res);
                return;
        }
        op_finish(op, PROJECT_RETRY, "internal error: step %d", (int)op->step);
}

/* ---- starting operations ------------------------------------------------- */

static struct project_op *op_new(sd_event *event, sqlite3 *db, const struct jada_config *config,
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

static const struct project_config *task_project(const struct jada_config *config, const struct queue_task *t)
{
        const struct project_config *p = config_project(config, t->project);
        return p && p->isolation == PROJECT_WORKTREE ? p : NULL;
}

int project_prepare(sd_event *event, sqlite3 *db, const struct jada_config *config, const struct queue_task *t,
                    const char *leftover_message, project_done_t done, void *userdata, struct project_op **ret)
{
        const struct project_config *p = task_project(config, t);
        struct project_op *op;
        _cleanup_free_ char *why_not = NULL;

        if (!p)
                return -ENOENT;
        op = op_new(event, db, config, p, t, OP_PREPARE);
        op->done = done;
        op->userdata = userdata;
        op->message = xstrdup(leftover_message);
        *ret = op;
        if (project_check_path(p, &why_not) < 0)
                op_finish(op, PROJECT_RETRY, "%s", why_not);
        else
                prepare_step(op, NULL);
        return 0;
}

int project_commit(sd_event *event, sqlite3 *db, const struct jada_config *config, const struct queue_task *t,
                   const char *message, project_done_t done, void *userdata, struct project_op **ret)
{
        const struct project_config *p = task_project(config, t);
        struct project_op *op;

        if (!p)
                return -ENOENT;
        op = op_new(event, db, config, p, t, OP_COMMIT);
        op->done = done;
        op->userdata = userdata;
        op->message = xstrdup(message);
        *ret = op;
        commit_start(op);
        return 0;
}

void project_op_cancel(struct project_op *op)
{
        op_free(op);
}

/* ---- the janitor --------------------------------------------------------- */

int project_janitor_new(sd_event *event, sqlite3 *db, bool (*in_session)(int64_t task_id, void *userdata),
                        void *userdata, struct project_janitor **ret)
{
        struct project_janitor *j = xcalloc(1, sizeof *j);

        j->in_session = in_session;
        j->userdata = userdata;
        j->event = sd_event_ref(event);
        j->db = db;
        *ret = j;
        return 0;
}

struct project_janitor *project_janitor_free(struct project_janitor *j)
{
        if (!j)
                return NULL;
        /* What is cut short here is done again at the next start: the db
         * still names the worktree. */
        while (j->ops) {
                struct project_op *op = j->ops;
                j->ops = op->next;
                op->janitor = NULL;
                op_free(op);
        }
        free(j->retry);
        sd_event_unref(j->event);
        free(j);
        return NULL;
}

static void janitor_forget(struct project_op *op)
{
        struct project_janitor *j = op->janitor;

        if (!j)
                return;
        for (struct project_op **p = &j->ops; *p; p = &(*p)->next)
                if (*p == op) {
                        *p = op->next;
                        break;
                }
        if (op->verdict != PROJECT_OK) {
                j->retry = xreallocarray(j->retry, j->n_retry + 1, sizeof *j->retry);
                j->retry[j->n_retry++] = (struct janitor_retry){ .task_id = op->task_id,
                                                                 .after = now_monotonic_usec() + JANITOR_RETRY_USEC };
        }
}

static bool janitor_has(struct project_janitor *j, int64_t id)
{
        uint64_t now = now_monotonic_usec();

        for (struct project_op *op = j->ops; op; op = op->next)
                if (op->task_id == id)
                        return true;
        for (size_t i = 0; i < j->n_retry; i++)
                if (j->retry[i].task_id == id) {
                        if (j->retry[i].after > now)
                                return true;
                        j->retry[i] = j->retry[--j->n_retry];
                        return false;
                }
        return false;
}

void project_janitor_sweep(struct project_janitor *j, const struct jada_config *config)
{
        struct queue_task *tasks = NULL;
        size_t n = 0;
        int r = queue_worktrees(j->db, true, &tasks, &n);

        if (r < 0) {
                log_warning_errno(r, "cannot list the worktrees of ended tasks");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                const struct queue_task *t = &tasks[i];
                const struct project_config *p = task_project(config, t);
                struct project_op *op;

                if (janitor_has(j, t->id) || (j->in_session && j->in_session(t->id, j->userdata)))
                        continue;
                if (!p || !t->branch) {
                        log_warning("task %lld: its worktree %s stays: project %s is not in the configuration "
                                    "as a worktree project", (long long)t->id, t->worktree,
                                    t->project ? t->project : "(none)");
                        j->retry = xreallocarray(j->retry, j->n_retry + 1, sizeof *j->retry);
                        j->retry[j->n_retry++] = (struct janitor_retry){
                                .task_id = t->id, .after = now_monotonic_usec() + JANITOR_RETRY_USEC };
                        continue;
                }
                op = op_new(j->event, j->db, config, p, t, OP_JANITOR);
                op->message = xasprintf("jada-agent: task %lld, left in its worktree (%s)", (long long)t->id,
                                        task_state_name(t->state));
                op->janitor = j;
                op->next = j->ops;
                j->ops = op;
                commit_start(op);
        }
        queue_tasks_free(tasks, n);
}

/* ---- start-up ------------------------------------------------------------ */

/* A lock file git left when the daemon (and with it its git) was killed,
 * older than this daemon: no git of ours holds it any more, and no one
 * else's git works in a task's worktree. */
static void unlink_stale(const char *path, uint64_t before_usec, int64_t task_id)
{
        struct stat st;

        if (lstat(path, &st) < 0 || (uint64_t)st.st_mtim.tv_sec * USEC_PER_SEC >= before_usec)
                return;
        if (unlink(path) == 0)
                log_notice("task %lld: removed %s, left by a git of a daemon that is gone", (long long)task_id, path);
}

void project_clear_stale_locks(sqlite3 *db, uint64_t before_usec)
{
        struct queue_task *tasks = NULL;
        size_t n = 0;

        if (queue_worktrees(db, false, &tasks, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *dotgit = xasprintf("%s/.git", tasks[i].worktree), *data = NULL;
                size_t size;
                char *gitdir, *common;

                /* A worktree's .git is a file: "gitdir: REPO/.git/worktrees/NAME". */
                if (read_file_capped(dotgit, 4096, &data, &size) < 0 || strncmp(data, "gitdir: ", 8) != 0)
                        continue;
                gitdir = data + 8;
                gitdir[strcspn(gitdir, "\n")] = '\0';
                {
                        _cleanup_free_ char *index = xasprintf("%s/index.lock", gitdir);
                        _cleanup_free_ char *head = xasprintf("%s/HEAD.lock", gitdir);
                        unlink_stale(index, before_usec, tasks[i].id);
                        unlink_stale(head, before_usec, tasks[i].id);
                }
                /* The branch's ref lives in the common dir, two levels up. */
                common = strstr(gitdir, "/worktrees/");
                if (common && tasks[i].branch) {
                        _cleanup_free_ char *ref = NULL;
                        *common = '\0';
                        ref = xasprintf("%s/refs/heads/%s.lock", gitdir, tasks[i].branch);
                        unlink_stale(ref, before_usec, tasks[i].id);
                }
        }
        queue_tasks_free(tasks, n);
}
