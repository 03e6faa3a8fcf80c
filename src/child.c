/* SPDX-License-Identifier: MIT */
/*
 * The claude child's world: its arguments, its environment (the daemon's,
 * minus what belongs to the daemon, plus the credentials), the prompt on
 * stdin, and the fork + exec. Supervising it is session.c's job.
 */
#include "jada/child.h"
#include "jada/session.h"
#include "jada/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

extern char **environ;

/* A credential: $CREDENTIALS_DIRECTORY/name (systemd's LoadCredential=), else
 * the environment variable, for development. NULL if neither. Never logged. */
static char *read_credential(const char *name, const char *env)
{
        _cleanup_free_ char *path = credential_path(name);
        char *value = NULL;
        size_t size;

        if (path) {
                if (read_file_capped(path, 64 * 1024, &value, &size) == 0) {
                        value[strcspn(value, "\r\n")] = '\0';
                        if (*value)
                                return value;
                        free(value);
                }
        }
        value = getenv(env);
        return value && *value ? xstrdup(value) : NULL;
}

const char *child_credential_source(const char *home)
{
        static const char *const inherited[] = { "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_USE_BEDROCK",
                                                 "CLAUDE_CODE_USE_VERTEX", NULL };
        _cleanup_free_ char *login = xasprintf("%s/.claude/.credentials.json", home);
        char *key;

        if ((key = read_credential("anthropic-api-key", "ANTHROPIC_API_KEY"))) {
                explicit_bzero(key, strlen(key));
                free(key);
                return "the API key (credential anthropic-api-key or ANTHROPIC_API_KEY)";
        }
        if ((key = read_credential("claude-oauth-token", "CLAUDE_CODE_OAUTH_TOKEN"))) {
                explicit_bzero(key, strlen(key));
                free(key);
                return "the OAuth token (credential claude-oauth-token or CLAUDE_CODE_OAUTH_TOKEN)";
        }
        for (size_t i = 0; inherited[i]; i++) {
                const char *v = getenv(inherited[i]);
                if (v && *v)
                        return inherited[i];
        }
        if (access(login, R_OK) == 0)
                return "a claude login in the daemon's HOME";
        return NULL;
}

static bool env_dropped(const char *entry)
{
        static const char *const drop[] = {
                "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", "LISTEN_FDS=", "LISTEN_PID=",
                "LISTEN_FDNAMES=", "INVOCATION_ID=", "JOURNAL_STREAM=", "CREDENTIALS_DIRECTORY=",
                "STATE_DIRECTORY=", "RUNTIME_DIRECTORY=", "ANTHROPIC_API_KEY=", "CLAUDE_CODE_OAUTH_TOKEN=",
                "HOME=", "CLAUDE_CONFIG_DIR=", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=", "JADA_", NULL,
        };
        for (size_t i = 0; drop[i]; i++)
                if (strncmp(entry, drop[i], strlen(drop[i])) == 0)
                        return true;
        return false;
}

/* The daemon's environment without what belongs to the daemon (its notify
 * socket, watchdog, credentials, own variables), plus the child's own. */
static char **child_environment(const struct child_spec *spec)
{
        size_t n = strv_length(environ), k = 0;
        char **envp = xcalloc(n + 12, sizeof *envp);
        char *key;

        for (size_t i = 0; i < n; i++) {
                if (env_dropped(environ[i]))
                        continue;
                /* The jada-agent the session runs (to split its task) is this
                 * one: its directory first (a source tree's ./jada-agent under
                 * `make run`, never an older one installed elsewhere). */
                if (strncmp(environ[i], "PATH=", 5) == 0 && spec->self_dir) {
                        envp[k++] = xasprintf("PATH=%s:%s", spec->self_dir, environ[i] + 5);
                        continue;
                }
                envp[k++] = xstrdup(environ[i]);
        }
        envp[k++] = xasprintf("HOME=%s", spec->home);
        envp[k++] = xasprintf("CLAUDE_CONFIG_DIR=%s/.claude", spec->home);
        envp[k++] = xstrdup("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1");
        envp[k++] = xasprintf("JADA_TASK_ID=%lld", (long long)spec->task_id);
        /* `jada-agent task add --parent "$JADA_TASK_ID"` in the session must
         * find the daemon's config and db: the config's path, absolute (the
         * child's cwd is elsewhere), and the state dir it resolved (an
         * empty state_dir means $STATE_DIRECTORY, which is dropped above). */
        envp[k++] = xasprintf("JADA_AGENT_CONFIG=%s", spec->config_path);
        envp[k++] = xasprintf("STATE_DIRECTORY=%s", spec->config->daemon.state_dir);
        if (spec->project)
                envp[k++] = xasprintf("JADA_PROJECT=%s", spec->project);
        if (spec->branch)
                envp[k++] = xasprintf("JADA_BRANCH=%s", spec->branch);
        if ((key = read_credential("anthropic-api-key", "ANTHROPIC_API_KEY"))) {
                envp[k++] = xasprintf("ANTHROPIC_API_KEY=%s", key);
                explicit_bzero(key, strlen(key));
                free(key);
        }
        if ((key = read_credential("claude-oauth-token", "CLAUDE_CODE_OAUTH_TOKEN"))) {
                envp[k++] = xasprintf("CLAUDE_CODE_OAUTH_TOKEN=%s", key);
                explicit_bzero(key, strlen(key));
                free(key);
        }
        envp[k] = NULL;
        return envp;
}

static char **child_arguments(const struct child_spec *spec)
{
        const struct jada_config *c = spec->config;
        char **argv = xcalloc(24 + strv_length(c->claude.extra_args), sizeof *argv);
        size_t k = 0;

        argv[k++] = xstrdup(c->claude.command);
        argv[k++] = xstrdup("-p");
        argv[k++] = xstrdup("--output-format");
        argv[k++] = xstrdup("stream-json");
        argv[k++] = xstrdup("--verbose");       /* stream-json refuses to run without it */
        argv[k++] = xstrdup("--max-turns");
        argv[k++] = xasprintf("%u", c->claude.max_turns);
        argv[k++] = xstrdup(spec->resumed ? "--resume" : "--session-id");
        argv[k++] = xstrdup(spec->claude_id);
        argv[k++] = xstrdup("--permission-mode");
        argv[k++] = xstrdup(c->claude.permission_mode);
        argv[k++] = xstrdup("--allowedTools");
        argv[k++] = *c->claude.allowed_tools ? xasprintf("%s " SESSION_SPLIT_TOOL, c->claude.allowed_tools)
                                             : xstrdup(SESSION_SPLIT_TOOL);
        if (*c->claude.model) {
                argv[k++] = xstrdup("--model");
                argv[k++] = xstrdup(c->claude.model);
        }
        if (spec->max_budget_usd > 0) {
                argv[k++] = xstrdup("--max-budget-usd");
                argv[k++] = xasprintf("%.4f", spec->max_budget_usd);
        }
        argv[k++] = xstrdup("--append-system-prompt");
        {
                _cleanup_free_ char *split = xasprintf(SESSION_SPLIT_PROMPT, (long long)spec->task_id,
                                                       (long long)spec->task_id);
                if (spec->branch)
                        argv[k++] = xasprintf("%s %s " SESSION_PROJECT_PROMPT, SESSION_SYSTEM_PROMPT, split,
                                              spec->project, spec->branch);
                else if (spec->project)
                        argv[k++] = xasprintf("%s %s " SESSION_SHARED_PROMPT, SESSION_SYSTEM_PROMPT, split,
                                              spec->project);
                else
                        argv[k++] = xasprintf("%s %s", SESSION_SYSTEM_PROMPT, split);
        }
        for (size_t i = 0; c->claude.extra_args && c->claude.extra_args[i]; i++)
                argv[k++] = xstrdup(c->claude.extra_args[i]);
        argv[k] = NULL;
        return argv;
}

/* execve() does not search PATH, and execvpe() searches the daemon's PATH,
 * not the child's: resolve it here, before the fork. */
char *child_resolve_command(const char *command, char *const *envp)
{
        const char *path = NULL;

        if (strchr(command, '/'))
                return xstrdup(command);
        for (size_t i = 0; envp[i]; i++)
                if (strncmp(envp[i], "PATH=", 5) == 0)
                        path = envp[i] + 5;
        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin";
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, ":");
                _cleanup_free_ char *dir = n ? xstrndup(p, n) : xstrdup(".");
                char *candidate = xasprintf("%s/%s", dir, command);
                if (access(candidate, X_OK) == 0)
                        return candidate;
                free(candidate);
                p += n + (p[n] == ':');
        }
        return xstrdup(command); /* execve fails with ENOENT, reported like any exec failure */
}

/* The prompt goes to the child on stdin from a file (argv strings are
 * limited to 128 KiB; prompts may be 1 MiB). The file is unlinked at once:
 * the open descriptor is all the child needs. */
int child_prompt_fd(const char *dir, const char *prompt)
{
        _cleanup_free_ char *path = xasprintf("%s/.jada-prompt", dir);
        int r, fd;

        r = write_file_atomic(path, prompt, strlen(prompt), 0600);
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        r = fd < 0 ? -errno : fd;
        (void)unlink(path);
        return r;
}

/* The start time of a process in clock ticks since boot (/proc/PID/stat
 * field 22): with the pid, it names one process even after pid reuse. */
int64_t child_start_time(pid_t pid)
{
        _cleanup_free_ char *path = xasprintf("/proc/%d/stat", (int)pid), *data = NULL;
        unsigned long long start = 0;
        const char *p;
        size_t size;

        if (read_file_capped(path, 4096, &data, &size) < 0)
                return -1;
        p = strrchr(data, ')'); /* the command name may hold spaces and parentheses */
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                         &start) != 1)
                return -1;
        return (int64_t)start;
}

/* fork + exec, because the child needs PR_SET_PDEATHSIG (so a SIGKILLed
 * daemon takes its claude along) and posix_spawn cannot set it. Between fork
 * and exec only async-signal-safe calls. */
int child_exec(const char *path, char *const *argv, char *const *envp, const char *cwd, int stdin_fd,
               int stdout_fd, struct child *ret)
{
        int out[2] = { -1, -1 }, err[2] = { -1, -1 }, ex[2] = { -1, -1 };
        pid_t parent = getpid(), pid;

        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(ex, O_CLOEXEC | O_NONBLOCK) < 0) {
                int r = -errno;
                for (int i = 0; i < 2; i++) {
                        if (out[i] >= 0) close(out[i]);
                        if (err[i] >= 0) close(err[i]);
                        if (ex[i] >= 0) close(ex[i]);
                }
                return r;
        }
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(out[0]); close(out[1]); close(err[0]); close(err[1]); close(ex[0]); close(ex[1]);
                return r;
        }
        if (pid == 0) {
                sigset_t none;
                int e;

                (void)setpgid(0, 0);
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127); /* the daemon died before prctl took hold */
                for (int sig = 1; sig < NSIG; sig++)
                        if (sig != SIGKILL && sig != SIGSTOP)
                                (void)signal(sig, SIG_DFL);
                sigemptyset(&none);
                (void)sigprocmask(SIG_SETMASK, &none, NULL);
                if (dup2(stdin_fd, STDIN_FILENO) < 0 || dup2(stdout_fd >= 0 ? stdout_fd : out[1], STDOUT_FILENO) < 0 ||
                    dup2(err[1], STDERR_FILENO) < 0 || chdir(cwd) < 0)
                        goto fail;
                execve(path, argv, envp);
        fail:
                e = errno;
                (void)!write(ex[1], &e, sizeof e);
                _exit(127);
        }
        /* Both sides set the group: whichever runs first, the kill below finds it. */
        (void)setpgid(pid, pid);
        close(out[1]);
        close(err[1]);
        close(ex[1]);
        *ret = (struct child){ .pid = pid, .out_fd = out[0], .err_fd = err[0], .exec_fd = ex[0] };
        (void)fcntl(ret->out_fd, F_SETFL, O_NONBLOCK);
        (void)fcntl(ret->err_fd, F_SETFL, O_NONBLOCK);
        return 0;
}

int child_spawn(const struct child_spec *spec, struct child *ret)
{
        char **argv = child_arguments(spec), **envp = child_environment(spec);
        _cleanup_free_ char *path = child_resolve_command(spec->config->claude.command, envp);
        int r = child_exec(path, argv, envp, spec->work_dir, spec->stdin_fd, -1, ret);

        strv_free(argv);
        for (size_t i = 0; envp[i]; i++)
                explicit_bzero(envp[i], strlen(envp[i])); /* the API key */
        strv_free(envp);
        return r;
}
