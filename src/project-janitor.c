/* SPDX-License-Identifier: MIT */
/* The worktrees of done and cancelled tasks: what is left committed and
 * pushed, on_done run (done tasks), the worktree removed and the branch kept;
 * and at start-up, the lock files a killed daemon's git left. */
#include "jada/project.h"
#include "project-private.h"
#include "jada/log.h"
#include "jada/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A janitor's operation that failed is tried again after this. */
#define JANITOR_RETRY_USEC (10 * 60 * USEC_PER_SEC)

struct janitor_retry {
        int64_t task_id;
        uint64_t after;                 /* monotonic usec */
};

struct project_janitor {
        sd_event *event;
        struct store *db;
        bool (*in_session)(int64_t task_id, void *userdata);
        void *userdata;
        struct project_op *ops;
        struct janitor_retry *retry;
        size_t n_retry;
};

static void after_remove(struct project_op *op, struct job_result *res)
{
        if (res->status != 0)
                project_op_note(op, "could not remove the worktree %s (%s); the branch %s has the work; remove it with "
                        "git worktree remove", op->worktree, project_job_why(res), op->branch);
        if (queue_set_worktree(op->db, op->task_id, NULL) < 0)
                op_log(op, LOG_WARNING, "task %lld: cannot record that its worktree is gone", (long long)op->task_id);
        else
                op_log(op, LOG_INFO, "task %lld: worktree removed; branch %s kept", (long long)op->task_id, op->branch);
        project_op_finish(op, PROJECT_OK, NULL);
}

static void janitor_remove(struct project_op *op)
{
        if (project_has_git_file(op->worktree))
                /* Twice: a lock (a person's `git worktree lock`, a killed add) does not keep it. */
                GIT(op, op->path, J_REMOVED, "worktree", "remove", "--force", "--force", op->worktree);
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
                project_op_note(op, "on_done not run: cannot write the result file: %s", strerror(-r));
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
                                                     .log_fields = JADA_FIELDS(op->task_field), .store = op->db },
                      project_op_job_done, op, &op->job);
        strv_free(env);
        if (r < 0) {
                project_op_note(op, "on_done could not run: %s", strerror(-r));
                janitor_remove(op);
        }
}

void project_janitor_go_on(struct project_op *op)
{
        if (op->task_state == TASK_DONE && *op->on_done)
                start_on_done(op);
        else
                janitor_remove(op);
}

void project_janitor_step(struct project_op *op, struct job_result *res)
{
        switch (op->step) {
        case J_ON_DONE:
                (void)unlink(op->result_file);
                op->result_file = mfree(op->result_file);
                if (res->status == 0)
                        (void)queue_note(op->db, op->task_id, "on_done ran (exit 0)", now_seconds());
                else if (res->timed_out)
                        project_op_note(op, "on_done timed out after %llus and was stopped",
                                (unsigned long long)(PROJECT_ON_DONE_TIMEOUT_USEC / USEC_PER_SEC));
                else if (res->status < 0)
                        project_op_note(op, "on_done could not run: %s", strerror(-res->status));
                else
                        project_op_note(op, "on_done failed: exit status %d", res->status);
                janitor_remove(op);
                return;
        case J_REMOVED:
                after_remove(op, res);
                return;
        default:
                break;
        }
}

/* ---- the janitor --------------------------------------------------------- */

int project_janitor_new(sd_event *event, struct store *db, bool (*in_session)(int64_t task_id, void *userdata),
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
                project_op_free(op);
        }
        free(j->retry);
        sd_event_unref(j->event);
        free(j);
        return NULL;
}

void project_janitor_forget(struct project_op *op)
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
                const struct project_config *p = project_worktree_config(config, t);
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
                op = project_op_new(j->event, j->db, config, p, t, OP_JANITOR);
                op->message = xasprintf("jada-agent: task %lld, left in its worktree (%s)", (long long)t->id,
                                        task_state_name(t->state));
                op->janitor = j;
                op->next = j->ops;
                j->ops = op;
                project_commit_start(op);
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

void project_clear_stale_locks(struct store *db, uint64_t before_usec)
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
