/* SPDX-License-Identifier: MIT */
/*
 * The project module's git commands and checks that need no loop: the
 * environment and arguments every git command gets, the file-system checks
 * of a project's path, and what the command line shows of a task's branch.
 */
#include "jada/project.h"
#include "jada/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *project_branch_name(int64_t task_id)
{
        return xasprintf(PROJECT_BRANCH_PREFIX "%lld", (long long)task_id);
}

char *project_work_dir(const struct jada_config *c, int64_t task_id)
{
        return xasprintf("%s/work/task-%lld", c->daemon.state_dir, (long long)task_id);
}

char **project_git_env(const struct jada_config *c, const struct project_config *p)
{
        const char *path = getenv("PATH");
        char **env = xcalloc(16, sizeof *env);
        size_t k = 0;

        env[k++] = xasprintf("PATH=%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
        env[k++] = xasprintf("HOME=%s/home", c->daemon.state_dir);
        env[k++] = xstrdup("LC_ALL=C");
        env[k++] = xstrdup("GIT_TERMINAL_PROMPT=0");
        env[k++] = xstrdup("GIT_PAGER=cat");
        env[k++] = xstrdup("PAGER=cat");
        /* A push over ssh must fail, not ask for a password nobody types. */
        env[k++] = xstrdup("GIT_SSH_COMMAND=ssh -o BatchMode=yes");
        env[k++] = xasprintf("GIT_CEILING_DIRECTORIES=%s/work", c->daemon.state_dir);
        if (p) {
                env[k++] = xasprintf("GIT_AUTHOR_NAME=%s", p->author_name);
                env[k++] = xasprintf("GIT_AUTHOR_EMAIL=%s", p->author_email);
                env[k++] = xasprintf("GIT_COMMITTER_NAME=%s", p->author_name);
                env[k++] = xasprintf("GIT_COMMITTER_EMAIL=%s", p->author_email);
        }
        env[k] = NULL;
        return env;
}

char **project_git_argv(const char *dir, const char *const *args)
{
        /* safe.directory: the repository may belong to another user than
         * the daemon's; the operator named it in the config. gpgsign: a
         * repository that signs commits would fail the daemon's, which
         * have no key. */
        static const char *const head[] = { "git", "-c", "safe.directory=*", "-c", "commit.gpgsign=false", "-C" };
        size_t nh = sizeof head / sizeof head[0], n = strv_length((char *const *)args);
        char **argv = xcalloc(nh + 1 + n + 1, sizeof *argv);

        for (size_t i = 0; i < nh; i++)
                argv[i] = xstrdup(head[i]);
        argv[nh] = xstrdup(dir);
        for (size_t i = 0; i < n; i++)
                argv[nh + 1 + i] = xstrdup(args[i]);
        return argv;
}

static char *writable_fix(const struct project_config *p, const char *what, int err)
{
        if (err == EROFS)
                return xasprintf("project %s: cannot write %s (read-only file system): under the systemd unit, "
                                 "add ReadWritePaths=%s in a drop-in (systemctl edit jada-agent), then restart",
                                 p->name, what, p->path);
        return xasprintf("project %s: cannot write %s (%s): the daemon's user needs write access to it",
                         p->name, what, strerror(err));
}

int project_check_path(const struct project_config *p, char **ret_why)
{
        _cleanup_free_ char *git = xasprintf("%s/.git", p->path);
        struct stat st;

        *ret_why = NULL;
        if (stat(p->path, &st) < 0) {
                int e = errno;
                *ret_why = xasprintf("project %s: path %s: %s", p->name, p->path, strerror(e));
                return -e;
        }
        if (!S_ISDIR(st.st_mode)) {
                *ret_why = xasprintf("project %s: path %s is not a directory", p->name, p->path);
                return -ENOTDIR;
        }
        if (p->isolation == PROJECT_NONE) {
                if (access(p->path, W_OK) < 0) {
                        int e = errno;
                        *ret_why = writable_fix(p, p->path, e);
                        return -e;
                }
                return 0;
        }
        /* A worktree project: the branch and the worktree's metadata go
         * into the repository's .git (a directory; a .git file means the
         * path is itself a worktree or a submodule, whose git dir is elsewhere). */
        if (stat(git, &st) < 0 || !S_ISDIR(st.st_mode)) {
                *ret_why = xasprintf("project %s: %s is not a git repository (no .git directory; "
                                     "run git init there, or set isolation = none)", p->name, p->path);
                return -ENOENT;
        }
        if (access(git, W_OK) < 0) {
                int e = errno;
                *ret_why = writable_fix(p, git, e);
                return -e;
        }
        return 0;
}

/* Runs git in dir and waits: for the command line. */
static int git_wait(const struct jada_config *c, const struct project_config *p, const char *dir,
                    const char *const *args, int out_fd, struct job_result *ret)
{
        char **env = project_git_env(c, p), **argv = project_git_argv(dir, args);
        int r = job_run(&(struct job_spec){ .argv = (const char *const *)argv, .env = (const char *const *)env,
                                            .cwd = "/", .timeout = c->daemon.git_timeout,
                                            .capture_max = 1024 * 1024, .stdout_fd = out_fd }, ret);
        strv_free(env);
        strv_free(argv);
        return r;
}

int project_check(const struct jada_config *c, const struct project_config *p, char **ret_why)
{
        struct job_result res = { 0 };
        _cleanup_free_ char *ref = NULL;
        int r = project_check_path(p, ret_why);

        if (r < 0 || p->isolation == PROJECT_NONE || !*p->base)
                return r;
        ref = xasprintf("refs/heads/%s^{commit}", p->base);
        r = git_wait(c, p, p->path, (const char *const[]){ "rev-parse", "--verify", "-q", ref, NULL }, -1, &res);
        if (r < 0) {
                *ret_why = xasprintf("project %s: cannot run git: %s", p->name, strerror(-r));
        } else if (res.status != 0) {
                *ret_why = xasprintf("project %s: base branch '%s' does not exist in %s", p->name, p->base, p->path);
                r = -ENOENT;
        }
        job_result_clear(&res);
        return r;
}

/* "BASE...BRANCH" (sep "...") : the branch's changes since its merge base
 * with its base branch; the commit it started from if it has no base name. */
static char *range_of(const struct queue_task *t, const char *sep)
{
        if (t->base)
                return xasprintf("refs/heads/%s%srefs/heads/%s", t->base, sep, t->branch);
        return xasprintf("%s%srefs/heads/%s", t->base_commit ? t->base_commit : "HEAD", sep, t->branch);
}

void project_branch_info(const struct jada_config *c, const struct queue_task *t, struct project_branch_info *ret)
{
        const struct project_config *p = config_project(c, t->project);
        _cleanup_free_ char *range = NULL, *count_range = NULL;
        struct job_result res = { 0 };

        *ret = (struct project_branch_info){ .commits = -1, .diffstat = xstrdup("") };
        if (!t->branch)
                return;
        if (!p) {
                ret->problem = xasprintf("project %s is not in the configuration", t->project);
                return;
        }
        count_range = range_of(t, "..");
        if (git_wait(c, p, p->path, (const char *const[]){ "rev-list", "--count", count_range, NULL }, -1, &res) < 0 ||
            res.status != 0) {
                ret->problem = xasprintf("git rev-list: %s", job_result_why(&res));
                job_result_clear(&res);
                return;
        }
        ret->commits = strtol(res.out, NULL, 10);
        job_result_clear(&res);
        range = range_of(t, "...");
        if (git_wait(c, p, p->path, (const char *const[]){ "diff", "--stat", range, "--", NULL }, -1, &res) == 0 &&
            res.status == 0) {
                free(ret->diffstat);
                ret->diffstat = res.out;
                res.out = NULL;
        }
        job_result_clear(&res);
}

void project_branch_info_clear(struct project_branch_info *info)
{
        free(info->diffstat);
        free(info->problem);
        *info = (struct project_branch_info){ 0 };
}

int project_diff(const struct jada_config *c, const struct queue_task *t, bool stat, int out_fd, char **ret_why)
{
        const struct project_config *p = config_project(c, t->project);
        _cleanup_free_ char *range = NULL;
        struct job_result res = { 0 };
        int r;

        *ret_why = NULL;
        if (!t->project) {
                *ret_why = xasprintf("task %lld has no project", (long long)t->id);
                return -ENOENT;
        }
        if (!t->branch) {
                *ret_why = xasprintf("task %lld has no branch yet (its first session has not started)",
                                     (long long)t->id);
                return -ENOENT;
        }
        if (!p) {
                *ret_why = xasprintf("project %s is not in the configuration", t->project);
                return -ENOENT;
        }
        range = range_of(t, "...");
        r = git_wait(c, p, p->path, (const char *const[]){ "diff", stat ? "--stat" : "--no-color", range, "--", NULL },
                     out_fd, &res);
        if (r < 0)
                *ret_why = xasprintf("cannot run git: %s", strerror(-r));
        else if (res.status != 0) {
                *ret_why = xasprintf("git diff %s: %s", range, job_result_why(&res));
                r = -EIO;
        }
        job_result_clear(&res);
        return r;
}
