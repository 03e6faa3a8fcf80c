/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Allocation that never returns NULL: out of memory on the small objects a
 * daemon like this allocates is not recoverable, so it aborts (tmux's xmalloc). */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xgetcwd(void);

static inline void freep(void *p)
{
        free(*(void **)p);
}
#define _cleanup_free_ __attribute__((cleanup(freep)))

/* free() that returns NULL, for "p = mfree(p)". */
static inline void *mfree(void *p)
{
        free(p);
        return NULL;
}

void strv_free(char **strv);
size_t strv_length(char *const *strv);
char *strv_join(const char *const *strv, const char *sep);

/* Reads all of fd, at most max bytes (-EFBIG past it). NUL-terminated;
 * *size counts every byte read. */
int read_fd_capped(int fd, size_t max, char **ret, size_t *size);

/* Reads a whole file, refusing one larger than max (-EFBIG). The buffer is
 * NUL-terminated; *size excludes the NUL. */
int read_file_capped(const char *path, size_t max, char **ret, size_t *size);

/* Replaces path atomically: writes a temporary file beside it with the given
 * mode, fsyncs it, renames it over path and fsyncs the directory, so a crash
 * leaves either the old or the new content, never a mix. */
int write_file_atomic(const char *path, const void *data, size_t size, unsigned mode);

/* mkdir -p with the given mode for the directories it creates. */
int mkdir_p(const char *path, unsigned mode);

/* Clocks in microseconds; the wall clock also in whole seconds (UTC, as
 * the db keeps times). */
uint64_t now_realtime_usec(void);
uint64_t now_monotonic_usec(void);
int64_t now_seconds(void);

/* Where systemd put the credential name ($CREDENTIALS_DIRECTORY/name, from
 * LoadCredential=), or NULL when there is none: the caller then falls back
 * to what development uses (an environment variable, a file). */
char *credential_path(const char *name);

/* ISO 8601 UTC ("2026-11-29T18:16:16Z") of a realtime usec value. */
const char *format_utc(char *buf, size_t size, uint64_t usec);

int parse_int64(const char *s, int64_t *ret);

/* Joins dir and a relative path and removes "." and ".." lexically
 * ("/a/config" + "../var" → "/a/var"). An absolute path is only normalized. */
char *path_join_normalize(const char *dir, const char *path);
