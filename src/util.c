/* SPDX-License-Identifier: MIT */
#include "jada/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void *check(void *p)
{
        if (!p)
                abort();
        return p;
}

void *xmalloc(size_t size)
{
        return check(malloc(size ? size : 1));
}

void *xcalloc(size_t n, size_t size)
{
        return check(calloc(n ? n : 1, size ? size : 1));
}

void *xreallocarray(void *p, size_t n, size_t size)
{
        return check(reallocarray(p, n ? n : 1, size ? size : 1));
}

char *xstrdup(const char *s)
{
        return check(strdup(s));
}

char *xstrndup(const char *s, size_t n)
{
        return check(strndup(s, n));
}

char *xasprintf(const char *fmt, ...)
{
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                abort();
        return s;
}

char *xgetcwd(void)
{
        char *cwd = getcwd(NULL, 0);
        return cwd ? cwd : xstrdup("/");
}

void strv_free(char **strv)
{
        for (size_t i = 0; strv && strv[i]; i++)
                free(strv[i]);
        free(strv);
}

size_t strv_length(char *const *strv)
{
        size_t n = 0;
        while (strv && strv[n])
                n++;
        return n;
}

char *strv_join(const char *const *strv, const char *sep)
{
        size_t len = 1, seplen = strlen(sep);
        char *out, *p;

        for (size_t i = 0; strv && strv[i]; i++)
                len += strlen(strv[i]) + seplen;
        out = p = xmalloc(len);
        *p = '\0';
        for (size_t i = 0; strv && strv[i]; i++) {
                if (i > 0)
                        p = stpcpy(p, sep);
                p = stpcpy(p, strv[i]);
        }
        return out;
}

int read_fd_capped(int fd, size_t max, char **ret, size_t *size)
{
        size_t len = 0, cap = 4096;
        char *buf = xmalloc(cap);

        for (;;) {
                ssize_t n;
                if (len + 1 >= cap) {
                        if (len > max) /* one byte past max tells "too big" */
                                break;
                        cap = cap * 2 > max + 2 ? max + 2 : cap * 2;
                        buf = xreallocarray(buf, cap, 1);
                }
                n = read(fd, buf + len, cap - len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;
                        free(buf);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        if (len > max) {
                free(buf);
                return -EFBIG;
        }
        buf[len] = '\0';
        *ret = buf;
        if (size)
                *size = len;
        return 0;
}

int read_file_capped(const char *path, size_t max, char **ret, size_t *size)
{
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        r = read_fd_capped(fd, max, ret, size);
        close(fd);
        return r;
}

int write_file_atomic(const char *path, const void *data, size_t size, unsigned mode)
{
        _cleanup_free_ char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
        _cleanup_free_ char *dir = xstrdup(path);
        const char *p = data;
        char *slash;
        int fd, r = 0;

        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, mode) < 0) /* O_CREAT's mode passes through the umask */
                r = -errno;
        while (r == 0 && size > 0) {
                ssize_t n = write(fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                p += n;
                size -= (size_t)n;
        }
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        slash = strrchr(dir, '/');
        if (slash) {
                *(slash == dir ? slash + 1 : slash) = '\0';
                fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd >= 0) {
                        (void)fsync(fd);
                        close(fd);
                }
        }
        return 0;
}

int mkdir_p(const char *path, unsigned mode)
{
        _cleanup_free_ char *copy = xstrdup(path);

        for (char *p = copy + 1; ; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char c = *p;
                *p = '\0';
                if (mkdir(copy, mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = c;
                if (c == '\0')
                        break;
        }
        return 0;
}

uint64_t now_realtime_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int64_t now_seconds(void)
{
        return (int64_t)(now_realtime_usec() / 1000000);
}

char *credential_path(const char *name)
{
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        char *path;

        if (!dir || !*dir)
                return NULL;
        path = xasprintf("%s/%s", dir, name);
        if (access(path, F_OK) == 0)
                return path;
        free(path);
        return NULL;
}

uint64_t now_monotonic_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

const char *format_utc(char *buf, size_t size, uint64_t usec)
{
        time_t t = (time_t)(usec / 1000000);
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "?");
        return buf;
}

int parse_int64(const char *s, int64_t *ret)
{
        char *end;
        long long v;

        if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (*end)
                return -EINVAL;
        if (errno == ERANGE)
                return -ERANGE;
        *ret = v;
        return 0;
}

char *path_join_normalize(const char *dir, const char *path)
{
        _cleanup_free_ char *joined = path[0] == '/' ? xstrdup(path) : xasprintf("%s/%s", dir, path);
        _cleanup_free_ size_t *starts = xcalloc(strlen(joined) + 1, sizeof *starts);
        char *out = xmalloc(strlen(joined) + 2);
        size_t depth = 0, len = 0;
        bool absolute = joined[0] == '/';

        /* out holds the components kept so far, each followed by '/';
         * starts[i] is where component i begins, so ".." pops one. */
        for (char *s = joined, *e; *s; s = e) {
                while (*s == '/')
                        s++;
                if (!*s)
                        break;
                e = strchrnul(s, '/');
                size_t n = (size_t)(e - s);
                if (n == 1 && s[0] == '.')
                        continue;
                if (n == 2 && s[0] == '.' && s[1] == '.' && depth > 0 &&
                    strncmp(out + starts[depth - 1], "../", 3) != 0) {
                        len = starts[--depth];
                        continue;
                }
                if (n == 2 && s[0] == '.' && s[1] == '.' && absolute)
                        continue; /* "/.." is "/" */
                starts[depth++] = len;
                memcpy(out + len, s, n);
                len += n;
                out[len++] = '/';
        }
        if (len > 0)
                len--; /* the last '/' */
        out[len] = '\0';
        if (absolute) {
                memmove(out + 1, out, len + 1);
                out[0] = '/';
        } else if (!*out) {
                strcpy(out, ".");
        }
        return out;
}
