/* SPDX-License-Identifier: MIT */
/* Writing and reading transcripts (transcript.h); rendering is in
 * transcript-view.c. zstd's streaming API (libzstd): one frame per
 * session, a flushed block per write. */
#include "jada/transcript.h"
#include "jada/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#define TRANSCRIPT_LEVEL 3
#define TRANSCRIPT_WINDOW_LOG 20        /* 1 MiB: bounds the writer's and the reader's memory */
#define READER_LINE_MAX (64 * 1024 * 1024)

struct transcript {
        int fd;
        ZSTD_CCtx *cctx;
        char *out;
        size_t out_size;
        int error;
        uint64_t bytes_in, bytes_out;
};

char *transcript_path(const char *state_dir, int64_t session)
{
        return xasprintf("%s/transcripts/%lld.jsonl.zst", state_dir, (long long)session);
}

int transcript_open(const char *state_dir, int64_t session, struct transcript **ret)
{
        _cleanup_free_ char *dir = xasprintf("%s/transcripts", state_dir), *path = transcript_path(state_dir, session);
        struct transcript *t;
        int r, fd;

        r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        t = xcalloc(1, sizeof *t);
        t->fd = fd;
        t->cctx = ZSTD_createCCtx();
        t->out_size = ZSTD_CStreamOutSize();
        t->out = xmalloc(t->out_size);
        if (!t->cctx || ZSTD_isError(ZSTD_CCtx_setParameter(t->cctx, ZSTD_c_compressionLevel, TRANSCRIPT_LEVEL)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(t->cctx, ZSTD_c_windowLog, TRANSCRIPT_WINDOW_LOG)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(t->cctx, ZSTD_c_checksumFlag, 1))) {
                (void)transcript_close(t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

/* Compresses what is given (or, with end, closes the frame) and writes out
 * everything zstd has for it. */
static int pump(struct transcript *t, const void *data, size_t size, ZSTD_EndDirective mode)
{
        ZSTD_inBuffer in = { data, size, 0 };
        size_t left;

        if (t->error)
                return t->error;
        do {
                ZSTD_outBuffer out = { t->out, t->out_size, 0 };
                left = ZSTD_compressStream2(t->cctx, &out, &in, mode);
                if (ZSTD_isError(left))
                        return t->error = -EIO;
                if (out.pos > 0) {
                        int r = write_all(t->fd, t->out, out.pos);
                        if (r < 0)
                                return t->error = r;
                        t->bytes_out += out.pos;
                }
        } while (left > 0 || in.pos < in.size);
        return 0;
}

int transcript_write(struct transcript *t, const void *data, size_t size)
{
        if (!t)
                return -EINVAL;
        t->bytes_in += size;
        return pump(t, data, size, ZSTD_e_flush);
}

int transcript_close(struct transcript *t)
{
        int r = 0;

        if (!t)
                return 0;
        if (t->cctx && t->fd >= 0)
                r = pump(t, NULL, 0, ZSTD_e_end);
        if (t->fd >= 0 && close(t->fd) < 0 && r == 0)
                r = -errno;
        ZSTD_freeCCtx(t->cctx);
        free(t->out);
        free(t);
        return r;
}

uint64_t transcript_bytes_in(const struct transcript *t)
{
        return t ? t->bytes_in : 0;
}

uint64_t transcript_bytes_out(const struct transcript *t)
{
        return t ? t->bytes_out : 0;
}

/* ---- reading --------------------------------------------------------------- */

struct transcript_reader {
        int fd;
        ZSTD_DCtx *dctx;
        char *in;
        size_t in_size, in_len, in_pos;
        char *out;
        size_t out_size;
        char *line;                     /* the partial line */
        size_t line_len, line_alloc;
        bool skipping;                  /* a line past READER_LINE_MAX: dropped */
};

int transcript_reader_open(const char *path, struct transcript_reader **ret)
{
        struct transcript_reader *r;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        r = xcalloc(1, sizeof *r);
        r->fd = fd;
        r->dctx = ZSTD_createDCtx();
        if (!r->dctx) {
                transcript_reader_free(r);
                return -ENOMEM;
        }
        /* A window larger than the writer's is not one of ours. */
        (void)ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, TRANSCRIPT_WINDOW_LOG + 1);
        r->in_size = ZSTD_DStreamInSize();
        r->in = xmalloc(r->in_size);
        r->out_size = ZSTD_DStreamOutSize();
        r->out = xmalloc(r->out_size);
        *ret = r;
        return 0;
}

void transcript_reader_free(struct transcript_reader *r)
{
        if (!r)
                return;
        if (r->fd >= 0)
                close(r->fd);
        ZSTD_freeDCtx(r->dctx);
        free(r->in);
        free(r->out);
        free(r->line);
        free(r);
}

static int take(struct transcript_reader *r, const char *p, size_t n,
                void (*line)(const char *, size_t, void *), void *userdata)
{
        int lines = 0;

        while (n > 0) {
                const char *nl = memchr(p, '\n', n);
                size_t k = nl ? (size_t)(nl - p) : n;

                if (!r->skipping) {
                        if (r->line_len + k > READER_LINE_MAX) {
                                r->skipping = true;
                                r->line_len = 0;
                        } else {
                                if (r->line_len + k + 1 > r->line_alloc) {
                                        r->line_alloc = (r->line_len + k + 1) * 2;
                                        r->line = xreallocarray(r->line, r->line_alloc, 1);
                                }
                                memcpy(r->line + r->line_len, p, k);
                                r->line_len += k;
                        }
                }
                if (!nl)
                        break;
                if (!r->skipping) {
                        r->line[r->line_len] = '\0';
                        line(r->line, r->line_len, userdata);
                        lines++;
                }
                r->line_len = 0;
                r->skipping = false;
                p = nl + 1;
                n -= k + 1;
        }
        return lines;
}

int transcript_reader_next(struct transcript_reader *r, void (*line)(const char *, size_t, void *), void *userdata)
{
        int lines = 0;

        for (;;) {
                if (r->in_pos == r->in_len) {
                        ssize_t n = read(r->fd, r->in, r->in_size);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return -errno;
                        if (n == 0)
                                return lines; /* all there is now; more may come */
                        r->in_len = (size_t)n;
                        r->in_pos = 0;
                }
                /* Until the input is used and zstd holds nothing more: a
                 * full output buffer may leave some inside the decoder. */
                for (;;) {
                        ZSTD_inBuffer in = { r->in, r->in_len, r->in_pos };
                        ZSTD_outBuffer out = { r->out, r->out_size, 0 };
                        size_t ret = ZSTD_decompressStream(r->dctx, &out, &in);
                        if (ZSTD_isError(ret))
                                return -EBADMSG;
                        r->in_pos = in.pos;
                        lines += take(r, r->out, out.pos, line, userdata);
                        if (in.pos == in.size && out.pos < out.size)
                                break;
                }
        }
}
