/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

/*
 * A short command the daemon runs beside its sessions (git, a project's
 * on_done), supervised from the loop like claude: its own process group, the
 * environment it is given and nothing else, a timeout (SIGTERM, then SIGKILL),
 * its output read from non-blocking pipes. The loop never waits for it.
 * Its stdin is /dev/null, or the input given, from a memfd filled before the
 * fork: no pipe for the loop to feed, so a child that never reads cannot
 * make the daemon wait either.
 */
struct job;
struct store;

struct job_spec {
        const char *const *argv;        /* argv[0] is looked up in env's PATH */
        const char *const *env;         /* the whole environment */
        const char *cwd;
        uint64_t timeout;               /* usec; 0: none */
        size_t capture_max;             /* bytes of stdout kept (stderr: JOB_STDERR_MAX); the rest is counted, not kept */
        int stdout_fd;                  /* >= 0: stdout goes there and is not captured (0 is stdin: not allowed) */
        const char *input;              /* NULL: stdin is /dev/null; else these input_len bytes */
        size_t input_len;
        /* Set: each line of output goes to the journal as it comes, with
         * these fields, after this prefix; nothing is captured. */
        const char *log_prefix;
        const char *const *log_fields;
        /* Set: done uses this store, and runs through store_run(). */
        struct store *store;
};

#define JOB_STDERR_MAX 4096

struct job_result {
        int status;                     /* exit code, 128 + signal, or a negative errno: it could not run */
        bool timed_out;
        char *out;                      /* NUL-terminated, at most capture_max bytes; never NULL */
        size_t out_len;
        bool out_truncated;
        char *err;                      /* the first JOB_STDERR_MAX bytes of stderr, NUL-terminated */
};

typedef void (*job_done_t)(struct job_result *result, void *userdata);

/* Starts it; done runs from the loop once it exited and its pipes are read
 * (and never from within job_start). The job frees itself after done. */
int job_start(sd_event *event, const struct job_spec *spec, job_done_t done, void *userdata, struct job **ret);
/* Kills its process group now; done is not called. */
void job_cancel(struct job *job);
/* Runs it on a loop of its own and waits: for the command line. */
int job_run(const struct job_spec *spec, struct job_result *ret);
void job_result_clear(struct job_result *result);
/* What a failed job said, in one line (its "fatal:" or "error:" line, else
 * the first), for a message; cuts result->err there. Never NULL. */
const char *job_result_why(struct job_result *result);
