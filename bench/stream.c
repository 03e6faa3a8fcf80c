/* SPDX-License-Identifier: MIT */
/*
 * Throughput of the stream-json parser: a ~100 MB stream made of the real
 * captures repeated, with a 1 MB tool result ("user" line) and a 1 MB Write
 * tool call ("assistant" line) every ~2 MB, fed in 64 KiB pieces as the pipe
 * would deliver them. Prints MB/s (median of 5 runs) for the mix and for
 * each kind of line alone, and the parser's peak heap use.
 *
 * Run from the repository root (it reads tests/fake/scenarios/samples/).
 * "mix+transcript" is the mix with the transcript writer (zstd, a flushed
 * block per 64 KiB piece, to a file) as every session has it.
 * Peak heap is measured by interposing malloc: every allocation made while
 * the parser runs (its line buffer, jansson's trees) is counted.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jada/stream.h"
#include "jada/transcript.h"
#include "jada/util.h"

#define CHUNK (64 * 1024)
#define TARGET (100u * 1000 * 1000)
#define BIG (1024 * 1024)
#define RUNS 5

void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void __libc_free(void *);

static long long heap_now, heap_peak;

static void heap_add(void *p, long long sign)
{
        if (!p)
                return;
        heap_now += sign * (long long)malloc_usable_size(p);
        if (heap_now > heap_peak)
                heap_peak = heap_now;
}

void *malloc(size_t n)
{
        void *p = __libc_malloc(n);
        heap_add(p, 1);
        return p;
}

void *calloc(size_t n, size_t size)
{
        void *p = __libc_calloc(n, size);
        heap_add(p, 1);
        return p;
}

void *realloc(void *old, size_t n)
{
        void *p;
        heap_add(old, -1);
        p = __libc_realloc(old, n);
        heap_add(p ? p : old, 1);
        return p;
}

void *reallocarray(void *old, size_t n, size_t size)
{
        if (size && n > SIZE_MAX / size)
                return NULL;
        return realloc(old, n * size);
}

void free(void *p)
{
        heap_add(p, -1);
        __libc_free(p);
}

struct text {
        char *data;
        size_t len, alloc;
};

static void append(struct text *t, const char *s, size_t n)
{
        if (t->len + n > t->alloc) {
                t->alloc = (t->len + n) * 2;
                t->data = xreallocarray(t->data, t->alloc, 1);
        }
        memcpy(t->data + t->len, s, n);
        t->len += n;
}

static void append_str(struct text *t, const char *s)
{
        append(t, s, strlen(s));
}

/* ~1 MB of JSON string content with the escapes real file text has. */
static void append_body(struct text *t, char fill)
{
        char line[81];

        memset(line, fill, sizeof line);
        for (size_t n = 0; n < BIG; n += sizeof line + 4) {
                append(t, line, sizeof line);
                append(t, "\\n\\\"", 4);
        }
}

static void append_big_user(struct text *t, unsigned i)
{
        char head[256];
        int n = snprintf(head, sizeof head,
                         "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"tool_use_id\":"
                         "\"toolu_bench_%u\",\"type\":\"tool_result\",\"content\":\"", i);
        append(t, head, (size_t)n);
        append_body(t, 'u');
        append_str(t, "\",\"is_error\":false}]},\"parent_tool_use_id\":null,\"session_id\":\"s\"}\n");
}

static void append_big_assistant(struct text *t, unsigned i)
{
        char head[256];
        int n = snprintf(head, sizeof head,
                         "{\"type\":\"assistant\",\"message\":{\"id\":\"msg_bench_%u\",\"type\":\"message\","
                         "\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_%u\","
                         "\"name\":\"Write\",\"input\":{\"file_path\":\"/w/f.c\",\"content\":\"", i, i);
        append(t, head, (size_t)n);
        append_body(t, 'a');
        append_str(t, "\"}}]},\"parent_tool_use_id\":null,\"session_id\":\"s\"}\n");
}

static struct text load_samples(void)
{
        static const char *const files[] = {
                "v2.1.332_success", "v2.1.332_401", "v2.1.332_529x2_then_ok", "v2.1.332_max_budget",
                "v2.1.332_max_turns", "v2.1.332_resume_after_max_turns", "v2.1.332_resume_unknown_id",
                "v2.1.112_max_turns",
        };
        struct text t = { 0 };

        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                char *path = xasprintf("tests/fake/scenarios/samples/%s.stream.jsonl", files[i]), *data;
                size_t size;
                if (read_file_capped(path, 1 << 20, &data, &size) < 0) {
                        fprintf(stderr, "%s: not found (run from the repository root)\n", path);
                        exit(1);
                }
                append(&t, data, size);
                free(data);
                free(path);
        }
        return t;
}

enum mix { MIX, SMALL, BIG_USER, BIG_ASSISTANT };

static struct text build(const struct text *samples, enum mix mix)
{
        struct text t = { 0 };
        unsigned i = 0;

        while (t.len < TARGET) {
                if (mix == MIX || mix == SMALL)
                        for (int k = 0; k < (mix == MIX ? 16 : 1); k++)
                                append(&t, samples->data, samples->len);
                if (mix == MIX || mix == BIG_USER)
                        append_big_user(&t, i);
                if (mix == MIX || mix == BIG_ASSISTANT)
                        append_big_assistant(&t, i);
                i++;
        }
        return t;
}

static double seconds(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int compare(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

/* With a transcript: each piece is also compressed (zstd) and written to a
 * file, as the daemon does for every session. */
static const char *transcript_dir;

static void run(const char *name, const struct text *t)
{
        double mbs[RUNS];
        long long peak = 0;
        const struct stream_stats *st = NULL;

        for (int r = 0; r < RUNS; r++) {
                struct stream_parser *p;
                struct transcript *tr = NULL;
                long long base = heap_now;
                double start;

                heap_peak = heap_now;
                start = seconds();
                if (stream_parser_new(16u << 20, &p) < 0)
                        abort();
                if (transcript_dir && transcript_open(transcript_dir, 1, &tr) < 0)
                        abort();
                for (size_t off = 0; off < t->len; off += CHUNK) {
                        size_t n = t->len - off < CHUNK ? t->len - off : CHUNK;
                        if (tr && transcript_write(tr, t->data + off, n) < 0)
                                abort();
                        if (stream_parser_feed(p, t->data + off, n) < 0)
                                abort();
                }
                stream_parser_finish(p);
                if (tr) {
                        uint64_t out = transcript_bytes_out(tr);
                        if (transcript_close(tr) < 0)
                                abort();
                        if (r == RUNS - 1)
                                printf("(transcript %.1f MB, ratio %.1f:1) ", (double)out / 1e6, (double)t->len / (double)out);
                }
                mbs[r] = (double)t->len / 1e6 / (seconds() - start);
                st = stream_parser_stats(p);
                if (st->bad_lines != 0 || st->bytes != t->len)
                        abort();
                if (r == RUNS - 1)
                        printf("%-14s %6.1f MB in %7llu lines, %u turns: ", name, (double)t->len / 1e6,
                               (unsigned long long)st->lines, st->turns);
                stream_parser_free(p);
                if (heap_peak - base > peak)
                        peak = heap_peak - base;
        }
        qsort(mbs, RUNS, sizeof mbs[0], compare);
        printf("median %7.1f MB/s (min %.1f, max %.1f), peak heap %.2f MiB\n", mbs[RUNS / 2], mbs[0],
               mbs[RUNS - 1], (double)peak / (1 << 20));
}

int main(void)
{
        static const char *const names[] = { "mix", "samples only", "1 MB user", "1 MB assistant" };
        struct text samples = load_samples();

        char dir[] = "/tmp/jada-bench-transcript-XXXXXX";

        for (enum mix m = MIX; m <= BIG_ASSISTANT; m++) {
                struct text t = build(&samples, m);
                run(names[m], &t);
                if (m == MIX) {
                        /* The same with the transcript writer (the aim: >= 80% of the above). */
                        if (!mkdtemp(dir))
                                abort();
                        transcript_dir = dir;
                        run("mix+transcript", &t);
                        transcript_dir = NULL;
                        {
                                char *cmd = xasprintf("rm -rf '%s'", dir);
                                if (system(cmd) != 0)
                                        abort();
                                free(cmd);
                        }
                }
                free(t.data);
        }
        free(samples.data);
        return 0;
}
