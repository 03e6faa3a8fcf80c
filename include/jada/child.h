/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "jada/config.h"

/* What a claude child is started with (DESIGN.md §4): `claude -p
 * --output-format stream-json --verbose --max-turns N` with `--session-id`
 * for a new conversation or `--resume` for a later session, its own process
 * group, PR_SET_PDEATHSIG, cwd the task's work dir, HOME and
 * CLAUDE_CONFIG_DIR under the state dir, the credentials and none of the
 * daemon's own variables (NOTIFY_SOCKET above all). */
struct child_spec {
        const struct jada_config *config;
        int64_t task_id;
        const char *claude_id;          /* the conversation's UUID */
        bool resumed;
        const char *home, *work_dir;
        int stdin_fd;                   /* the prompt (child_prompt_fd) */
        const char *project;            /* NULL: none */
        const char *branch;             /* with a worktree project: jada/task-ID */
        double max_budget_usd;          /* > 0: --max-budget-usd, what remains of a cap */
        const char *config_path;        /* absolute: JADA_AGENT_CONFIG of the session */
        const char *self_dir;           /* this binary's directory, first on the session's PATH; NULL: none */
};

struct child {
        pid_t pid;                      /* also its process group id */
        int out_fd, err_fd;             /* non-blocking read ends of its stdout and stderr */
        int exec_fd;                    /* holds the errno of a failed exec, else EOF */
};

/* Writes the prompt to a file in dir (not the work dir: with isolation =
 * none that is the user's repository) and returns a descriptor of it
 * (unlinked at once), or a negative errno. argv strings are limited to
 * 128 KiB; prompts may be 1 MiB. */
int child_prompt_fd(const char *dir, const char *prompt);

/* Where the child's credential comes from, or NULL if it has none and no
 * session can succeed: the credential anthropic-api-key or claude-oauth-token
 * (or ANTHROPIC_API_KEY / CLAUDE_CODE_OAUTH_TOKEN), ANTHROPIC_AUTH_TOKEN or a
 * Bedrock/Vertex switch in the environment the child inherits, or a
 * `claude login` kept in its config dir (home/.claude/.credentials.json).
 * A static string; the secret itself is never read into the answer. */
const char *child_credential_source(const char *home);

/* Forks and execs claude. 0 or a negative errno; an exec failure shows
 * later, on exec_fd. */
int child_spawn(const struct child_spec *spec, struct child *ret);

/* A process's start time in clock ticks since boot (/proc/PID/stat field
 * 22), or -1 if it is gone: with the pid, it names one process even after
 * the pid is reused. */
int64_t child_start_time(pid_t pid);

/* The command's path: execve() does not search PATH, and execvpe() searches
 * the daemon's PATH, not the child's: looked up in envp's PATH here. */
char *child_resolve_command(const char *command, char *const *envp);

/* fork + exec of path in its own process group, with PR_SET_PDEATHSIG, the
 * signals reset, stdin from stdin_fd, stdout to stdout_fd (or, if it is -1,
 * a pipe: ret->out_fd) and stderr to a pipe. An exec failure shows on
 * ret->exec_fd. */
int child_exec(const char *path, char *const *argv, char *const *envp, const char *cwd, int stdin_fd,
               int stdout_fd, struct child *ret);
