/* SPDX-License-Identifier: MIT */
#include "jada/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
/* We send CODE_FILE/LINE/FUNC of the caller ourselves, not of this file. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

/* Logging state is process-wide: the one global besides signal handling. */
static bool use_journal;
static int max_priority = LOG_INFO;

/* JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected to our
 * stderr; it only counts when stderr is still that stream (a child that
 * redirected stderr must not log to the journal behind its caller's back). */
static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(enum log_target target, bool verbose)
{
        max_priority = verbose ? LOG_DEBUG : LOG_INFO;
        switch (target) {
        case LOG_TARGET_JOURNAL:
                use_journal = true;
                break;
        case LOG_TARGET_STDERR:
                use_journal = false;
                break;
        case LOG_TARGET_AUTO:
        default:
                use_journal = stderr_is_journal() || getenv("INVOCATION_ID");
                break;
        }
}

bool log_to_journal(void)
{
        return use_journal;
}

void log_set_verbose(bool verbose)
{
        if (verbose)
                max_priority = LOG_DEBUG;
        else if (max_priority == LOG_DEBUG)
                max_priority = LOG_INFO;
}

void log_set_max_priority(int priority)
{
        max_priority = priority;
}

static const char *priority_name(int priority)
{
        static const char *const names[] = {
                "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
        };
        if (priority < 0 || priority > LOG_DEBUG)
                return "info";
        return names[priority];
}

static void emit_journal(int priority, int errnum, const char *file, int line, const char *func,
                         const char *const *fields, const char *msg)
{
        char prio[16], code_line[32], errno_field[32];
        char *code_file = NULL, *code_func = NULL, *message = NULL;
        struct iovec iov[32];
        size_t n = 0;

        if (asprintf(&message, "MESSAGE=%s", msg) < 0 ||
            asprintf(&code_file, "CODE_FILE=%s", file) < 0 ||
            asprintf(&code_func, "CODE_FUNC=%s", func) < 0)
                goto out;
        snprintf(prio, sizeof prio, "PRIORITY=%d", priority);
        snprintf(code_line, sizeof code_line, "CODE_LINE=%d", line);

#define PUSH(s) do { iov[n].iov_base = (void *)(s); iov[n].iov_len = strlen(s); n++; } while (0)
        PUSH(message);
        PUSH(prio);
        PUSH(code_file);
        PUSH(code_line);
        PUSH(code_func);
        PUSH("SYSLOG_IDENTIFIER=jada-agent");
        if (errnum > 0) {
                snprintf(errno_field, sizeof errno_field, "ERRNO=%d", errnum);
                PUSH(errno_field);
        }
        for (size_t i = 0; fields && fields[i] && n < sizeof iov / sizeof iov[0]; i++)
                PUSH(fields[i]);
#undef PUSH

        if (sd_journal_sendv(iov, (int)n) < 0)
                fprintf(stderr, "<%d>%s\n", priority, msg); /* journal gone: keep the line */
out:
        free(message);
        free(code_file);
        free(code_func);
}

/* Fields stay out of stderr lines: the message already says what a reader
 * needs, and the journal is where fields are searched. */
static void emit_stderr(int priority, const char *msg)
{
        char stamp[32];
        struct timespec ts;
        struct tm tm;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

        flockfile(stderr);
        fprintf(stderr, "%s.%03ldZ %-7s %s\n", stamp, ts.tv_nsec / 1000000, priority_name(priority), msg);
        funlockfile(stderr);
}

int log_emit(int priority, int errnum, const char *file, int line, const char *func,
             const char *const *fields, const char *fmt, ...)
{
        int saved_errno = errno;
        char buf[2048], *msg = buf;
        size_t len;
        va_list ap;

        if (errnum < 0)
                errnum = -errnum;
        if (priority > max_priority)
                goto out;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);

        /* Append ": strerror" the way perror and ntpd's log_warn do. */
        len = strlen(buf);
        if (errnum > 0 && len + 3 < sizeof buf)
                snprintf(buf + len, sizeof buf - len, ": %s", strerror(errnum));

        if (use_journal)
                emit_journal(priority, errnum, file, line, func, fields, msg);
        else
                emit_stderr(priority, msg);
out:
        errno = saved_errno;
        return -errnum;
}
