/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <syslog.h>

/*
 * Logging: native journal entries with structured fields when running under
 * systemd, readable lines on stderr otherwise.
 *
 * Extra fields are a NULL-terminated array of "KEY=value" strings, KEY in
 * upper case (journal field rules), e.g. (const char *[]){ "JADA_TASK_ID=7", NULL }.
 * The *_errno variants add ERRNO= and ": strerror" and return the negative
 * errno they were given, so "return log_error_errno(r, ...)" reads naturally.
 */

enum log_target {
        LOG_TARGET_AUTO,    /* journal if stderr is the journal or INVOCATION_ID is set */
        LOG_TARGET_JOURNAL,
        LOG_TARGET_STDERR,
};

void log_setup(enum log_target target, bool verbose);
bool log_to_journal(void);
void log_set_verbose(bool verbose);
/* Messages less important than this are dropped (LOG_INFO by default;
 * LOG_DEBUG with -v; the command line uses LOG_WARNING). */
void log_set_max_priority(int priority);

int log_emit(int priority, int errnum, const char *file, int line, const char *func,
             const char *const *fields, const char *fmt, ...)
        __attribute__((format(printf, 7, 8)));

#define log_full(prio, err, fields, ...) \
        log_emit((prio), (err), __FILE__, __LINE__, __func__, (fields), __VA_ARGS__)

#define log_debug(...)   log_full(LOG_DEBUG, 0, NULL, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, 0, NULL, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, 0, NULL, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, 0, NULL, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, 0, NULL, __VA_ARGS__)

#define log_warning_errno(err, ...) log_full(LOG_WARNING, (err), NULL, __VA_ARGS__)
#define log_error_errno(err, ...)   log_full(LOG_ERR, (err), NULL, __VA_ARGS__)

/* With structured fields: log_fields(LOG_INFO, JADA_FIELDS("JADA_TASK_ID=7"), "...") */
#define JADA_FIELDS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define log_fields(prio, fields, ...) log_full((prio), 0, (fields), __VA_ARGS__)
