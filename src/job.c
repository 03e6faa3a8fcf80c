/* SPDX-License-Identifier: MIT */
#include "jada/job.h"
#include "jada/child.h"
#include "jada/log.h"
#include "jada/store.h"
#include "jada/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define JOB_KILL_GRACE_USEC (5 * 1000000ULL)
#define JOB_LINE_MAX 1024
/* Reads per IO event: a chatty job must not starve the rest of the loop. */
#define JOB_READS_PER_EVENT 16

struct job_stream {
        int fd;
        sd_event_source *source;
        char line[JOB_LINE_MAX + 1];    /* log mode: the line being read */
        size_t line_len;
};

struct job {
        sd_event *event;
        pid_t pid;
        int exec_fd;
        struct job_stream out, err;
        sd_event_source *child_source, *timer;
        bool exited, timed_out, term_sent;
        int status;
        size_t capture_max;
        char *prefix;
        char **fields;
        struct job_result result;
        size_t err_len;
        job_done_t done;
        void *userdata;
        struct store *store;            /* done runs through store_run() */
        bool pending;                   /* ended; done waits for the store's fiber */
};

static void job_free(struct job *j)
{
        sd_event_source_disable_unref(j->out.source);
        sd_event_source_disable_unref(j->err.source);
        /* Owned: freeing it SIGKILLs and reaps a child still running. */
        sd_event_source_disable_unref(j->child_source);
        sd_event_source_disable_unref(j->timer);
        if (j->out.fd >= 0)
                close(j->out.fd);
        if (j->err.fd >= 0)
                close(j->err.fd);
        if (j->exec_fd >= 0)
                close(j->exec_fd);
        free(j->prefix);
        strv_free(j->fields);
        job_result_clear(&j->result);
        sd_event_unref(j->event);
        free(j);
}

void job_result_clear(struct job_result *r)
{
        free(r->out);
        free(r->err);
        *r = (struct job_result){ 0 };
}

const char *job_result_why(struct job_result *r)
{
        char *e = r->err, *line = NULL, *nl;

        if (r->timed_out)
                return "timed out";
        if (!e || !*e)
                return "no message";
        /* git says what went wrong on a "fatal:" or "error:" line, and may
         * add hints after it; else the first line will do. */
        for (char *p = e; p && *p; p = nl ? nl + 1 : NULL) {
                nl = strchr(p, '\n');
                if (strncmp(p, "fatal: ", 7) == 0 || strncmp(p, "error: ", 7) == 0) {
                        line = p;
                        break;
                }
        }
        if (!line)
                line = e;
        line[strcspn(line, "\n")] = '\0';
        return line;
}

static void log_line(struct job *j, struct job_stream *s)
{
        if (s->line_len == 0)
                return;
        s->line[s->line_len] = '\0';
        for (size_t i = 0; i < s->line_len; i++)
                if ((unsigned char)s->line[i] < 0x20 || s->line[i] == 0x7f)
                        s->line[i] = ' ';
        log_full(LOG_INFO, 0, (const char *const *)j->fields, "%s%s", j->prefix, s->line);
        s->line_len = 0;
}

static void take(struct job *j, struct job_stream *s, const char *buf, size_t n)
{
        if (j->prefix) {
                for (size_t i = 0; i < n; i++) {
                        if (buf[i] == '\n' || s->line_len == JOB_LINE_MAX)
                                log_line(j, s);
                        if (buf[i] != '\n')
                                s->line[s->line_len++] = buf[i];
                }
                return;
        }
        if (s == &j->err) {
                size_t room = JOB_STDERR_MAX - j->err_len, k = n < room ? n : room;
                memcpy(j->result.err + j->err_len, buf, k);
                j->err_len += k;
                j->result.err[j->err_len] = '\0';
                return;
        }
        if (j->result.out_len + n > j->capture_max) {
                j->result.out_truncated = true;
                n = j->capture_max - j->result.out_len;
        }
        if (n == 0)
                return;
        j->result.out = xreallocarray(j->result.out, j->result.out_len + n + 1, 1);
        memcpy(j->result.out + j->result.out_len, buf, n);
        j->result.out_len += n;
        j->result.out[j->result.out_len] = '\0';
}

/* Reads what is there now; false at EOF or on an error. */
static bool drain(struct job *j, struct job_stream *s)
{
        char buf[16384];

        if (s->fd < 0)
                return false;
        for (unsigned i = 0; i < JOB_READS_PER_EVENT; i++) {
                ssize_t n = read(s->fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return true;
                if (n <= 0) {
                        if (j->prefix)
                                log_line(j, s);
                        s->source = sd_event_source_disable_unref(s->source);
                        close(s->fd);
                        s->fd = -1;
                        return false;
                }
                take(j, s, buf, (size_t)n);
        }
        return true;
}

static void job_deliver(void *userdata)
{
        struct job *j = userdata;

        if (j->done)
                j->done(&j->result, j->userdata);
        job_free(j);
}

static void job_finish(struct job *j)
{
        int e = 0;

        /* Whatever it started may hold the pipes: the group goes too. */
        (void)kill(-j->pid, SIGKILL);
        while (drain(j, &j->out))
                ;
        while (drain(j, &j->err))
                ;
        if (read(j->exec_fd, &e, sizeof e) == (ssize_t)sizeof e && e > 0)
                j->result.status = -e;
        else
                j->result.status = j->status;
        j->result.timed_out = j->timed_out;
        /* A callback that uses the store runs where it may wait for it; the
         * job lives until then, and a cancel meanwhile only drops it. */
        if (j->store && store_waits(j->store)) {
                j->pending = true;
                store_run(j->store, job_deliver, j);
                return;
        }
        job_deliver(j);
}

static int on_output(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        struct job *j = userdata;
        (void)drain(j, fd == j->out.fd ? &j->out : &j->err);
        return 0;
}

static int on_exit_(sd_event_source *src, const siginfo_t *si, void *userdata)
{
        struct job *j = userdata;

        j->exited = true;
        j->status = si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;
        job_finish(j);
        return 0;
}

static int on_timeout(sd_event_source *src, uint64_t usec, void *userdata)
{
        struct job *j = userdata;

        if (!j->term_sent) {
                /* SIGTERM first: git removes its lock files on it. */
                j->timed_out = j->term_sent = true;
                (void)kill(-j->pid, SIGTERM);
                (void)sd_event_source_set_time_relative(src, JOB_KILL_GRACE_USEC);
                (void)sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
                return 0;
        }
        (void)kill(-j->pid, SIGKILL);
        return 0;
}

/* The job's stdin: /dev/null, or a memfd holding the input at offset 0.
 * Writing to memory never waits on the reader, as a pipe would once the
 * input is larger than its buffer; the inputs are small (a message). */
static int input_fd(const struct job_spec *spec)
{
        int fd;

        if (!spec->input) {
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                return fd < 0 ? -errno : fd;
        }
        fd = memfd_create("jada-job-input", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (size_t done = 0; done < spec->input_len;) {
                ssize_t n = write(fd, spec->input + done, spec->input_len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int r = n < 0 ? -errno : -EIO;
                        close(fd);
                        return r;
                }
                done += (size_t)n;
        }
        if (lseek(fd, 0, SEEK_SET) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int job_start(sd_event *event, const struct job_spec *spec, job_done_t done, void *userdata, struct job **ret)
{
        _cleanup_free_ char *path = child_resolve_command(spec->argv[0], (char *const *)spec->env);
        struct child child;
        struct job *j;
        int in_fd, r;

        in_fd = input_fd(spec);
        if (in_fd < 0)
                return in_fd;
        r = child_exec(path, (char *const *)spec->argv, (char *const *)spec->env, spec->cwd, in_fd,
                       spec->stdout_fd > 0 ? spec->stdout_fd : -1, &child);
        close(in_fd);
        if (r < 0)
                return r;

        j = xcalloc(1, sizeof *j);
        j->event = sd_event_ref(event);
        j->pid = child.pid;
        j->exec_fd = child.exec_fd;
        j->out.fd = child.out_fd;
        j->err.fd = child.err_fd;
        j->capture_max = spec->capture_max;
        j->done = done;
        j->userdata = userdata;
        j->store = spec->store;
        j->result.out = xstrdup("");
        j->result.err = xcalloc(1, JOB_STDERR_MAX + 1);
        if (spec->log_prefix) {
                j->prefix = xstrdup(spec->log_prefix);
                j->fields = xcalloc(strv_length((char *const *)spec->log_fields) + 1, sizeof(char *));
                for (size_t i = 0; spec->log_fields && spec->log_fields[i]; i++)
                        j->fields[i] = xstrdup(spec->log_fields[i]);
        }

        if ((r = sd_event_add_child(event, &j->child_source, j->pid, WEXITED, on_exit_, j)) < 0 ||
            (r = sd_event_source_set_child_process_own(j->child_source, true)) < 0 ||
            (r = sd_event_add_io(event, &j->out.source, j->out.fd, EPOLLIN, on_output, j)) < 0 ||
            (r = sd_event_add_io(event, &j->err.source, j->err.fd, EPOLLIN, on_output, j)) < 0 ||
            (spec->timeout > 0 &&
             (r = sd_event_add_time_relative(event, &j->timer, CLOCK_MONOTONIC, spec->timeout, 100 * 1000,
                                             on_timeout, j)) < 0)) {
                (void)kill(-j->pid, SIGKILL);
                if (!j->child_source)
                        (void)waitpid(j->pid, NULL, 0);
                job_free(j);
                return r;
        }
        if (ret)
                *ret = j;
        return 0;
}

void job_cancel(struct job *j)
{
        if (!j)
                return;
        if (j->pending) {
                j->done = NULL;
                return;
        }
        (void)kill(-j->pid, SIGKILL);
        job_free(j);
}

struct sync_wait {
        bool done;
        struct job_result *ret;
};

static void on_sync_done(struct job_result *result, void *userdata)
{
        struct sync_wait *w = userdata;

        *w->ret = *result;
        *result = (struct job_result){ 0 }; /* moved */
        w->done = true;
}

int job_run(const struct job_spec *spec, struct job_result *ret)
{
        struct sync_wait w = { .ret = ret };
        sigset_t mask, old;
        sd_event *event = NULL;
        int r;

        /* sd-event learns of the child through SIGCHLD, which must be blocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, &old) < 0)
                return -errno;
        r = sd_event_new(&event);
        if (r >= 0)
                r = job_start(event, spec, on_sync_done, &w, NULL);
        while (r >= 0 && !w.done)
                r = sd_event_run(event, UINT64_MAX);
        sd_event_unref(event);
        (void)sigprocmask(SIG_SETMASK, &old, NULL);
        return r < 0 ? r : 0;
}
