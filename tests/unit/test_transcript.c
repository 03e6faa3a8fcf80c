/* SPDX-License-Identifier: MIT */
/* Unit tests: transcripts written in pieces and read back, also while the
 * frame is open (a running or killed session), and what is not ours. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jada/transcript.h"
#include "jada/util.h"

struct lines {
        char *all;
        size_t len;
        int n;
};

static void collect(const char *text, size_t len, void *userdata)
{
        struct lines *l = userdata;

        l->all = xreallocarray(l->all, l->len + len + 2, 1);
        memcpy(l->all + l->len, text, len);
        l->len += len;
        l->all[l->len++] = '\n';
        l->all[l->len] = '\0';
        l->n++;
}

static char *make_dir(void)
{
        char *dir = xstrdup("/tmp/jada-test-transcript-XXXXXX");
        assert_non_null(mkdtemp(dir));
        return dir;
}

static void remove_dir(char *dir)
{
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
        free(dir);
}

static void test_round_trip_in_pieces(void **state)
{
        char *dir = make_dir();
        _cleanup_free_ char *path = transcript_path(dir, 7);
        struct transcript *t = NULL;
        struct transcript_reader *r = NULL;
        struct lines got = { 0 };
        size_t size = 0;
        char *text;

        /* 2000 lines of varied length, some long; written in odd pieces. */
        text = xmalloc(4 * 1024 * 1024);
        for (int i = 0; i < 2000; i++)
                size += (size_t)sprintf(text + size, "{\"type\":\"line\",\"n\":%d,\"pad\":\"%0*d\"}\n", i,
                                        i % 97 == 0 ? 1000 : i % 13, 0);
        assert_int_equal(transcript_open(dir, 7, &t), 0);
        for (size_t off = 0, piece = 1; off < size; off += piece, piece = piece * 3 % 7919 + 1)
                assert_int_equal(transcript_write(t, text + off, off + piece > size ? size - off : piece), 0);
        assert_int_equal(transcript_bytes_in(t), size);
        assert_true(transcript_bytes_out(t) < size / 2); /* repetitive JSON compresses */
        assert_int_equal(transcript_close(t), 0);

        assert_int_equal(transcript_reader_open(path, &r), 0);
        assert_int_equal(transcript_reader_next(r, collect, &got), 2000);
        assert_int_equal(transcript_reader_next(r, collect, &got), 0); /* nothing more */
        assert_int_equal(got.len, size);
        assert_memory_equal(got.all, text, size);
        transcript_reader_free(r);
        free(got.all);
        free(text);
        remove_dir(dir);
}

/* A frame never ended (a session still running, or a daemon killed): every
 * flushed write is readable, and what comes later is read by the next call. */
static void test_open_frame_and_follow(void **state)
{
        char *dir = make_dir();
        _cleanup_free_ char *path = transcript_path(dir, 1);
        struct transcript *t = NULL;
        struct transcript_reader *r = NULL;
        struct lines got = { 0 };

        assert_int_equal(transcript_open(dir, 1, &t), 0);
        assert_int_equal(transcript_write(t, "{\"a\":1}\n{\"b\":", 13), 0);
        assert_int_equal(transcript_reader_open(path, &r), 0);
        assert_int_equal(transcript_reader_next(r, collect, &got), 1);
        assert_string_equal(got.all, "{\"a\":1}\n");
        assert_int_equal(transcript_write(t, "2}\n", 3), 0);
        assert_int_equal(transcript_reader_next(r, collect, &got), 1);
        assert_string_equal(got.all, "{\"a\":1}\n{\"b\":2}\n");
        /* Never closed: as a killed daemon leaves it. */
        transcript_reader_free(r);
        free(got.all);
        assert_int_equal(transcript_close(t), 0);
        remove_dir(dir);
}

static void test_not_ours(void **state)
{
        char *dir = make_dir();
        _cleanup_free_ char *path = xasprintf("%s/junk", dir);
        struct transcript_reader *r = NULL;
        struct lines got = { 0 };
        int fd = open(path, O_WRONLY | O_CREAT, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, "this is plain text, not zstd\n", 29), 29);
        close(fd);
        assert_int_equal(transcript_reader_open(path, &r), 0);
        assert_int_equal(transcript_reader_next(r, collect, &got), -EBADMSG);
        transcript_reader_free(r);
        assert_int_equal(transcript_reader_open("/nonexistent/x.jsonl.zst", &r), -ENOENT);
        free(got.all);
        remove_dir(dir);
}

static void test_render(void **state)
{
        static const char *const lines[] = {
                "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s-1\",\"model\":\"m\"}",
                "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[{\"type\":\"text\",\"text\":\"Let me look.\"},"
                "{\"type\":\"tool_use\",\"name\":\"Bash\",\"input\":{\"command\":\"ls -la\\n; rm x\"}}]}}",
                "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[]}}",
                "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"content\":\"a\\nb\\nc\\nd\\ne\"}]}}",
                "{\"type\":\"system\",\"subtype\":\"api_retry\",\"attempt\":2,\"error_status\":529,\"error\":\"overloaded\"}",
                "{\"type\":\"assistant\",\"message\":{\"id\":\"m2\",\"content\":[{\"type\":\"tool_use\",\"name\":\"Write\","
                "\"input\":{\"file_path\":\"/w/a.txt\",\"content\":\"x\"}}]}}",
                "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"is_error\":true,"
                "\"content\":[{\"type\":\"text\",\"text\":\"denied\\u0007\"}]}]}}",
                "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"num_turns\":2,\"total_cost_usd\":0.5,"
                "\"result\":\"Done.\"}",
                "not json at all",
        };
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        struct transcript_view v = { .out = f };

        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
                transcript_render(&v, lines[i], strlen(lines[i]));
        fclose(f);
        assert_string_equal(buf,
                            "== session s-1 (model m)\n"
                            "[turn 1]\n"
                            "  Let me look.\n"
                            "  → Bash: ls -la …\n"
                            "  ← a\n  ← b\n  ← c\n  ← …\n"
                            "  (retry 2: HTTP 529, overloaded)\n"
                            "[turn 2]\n"
                            "  → Write: /w/a.txt\n"
                            "  ← error: denied \n"
                            "== result: success, 2 turns, $0.5000\n"
                            "  Done.\n"
                            "?? not json at all\n");
        free(buf);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip_in_pieces),
                cmocka_unit_test(test_open_frame_and_follow),
                cmocka_unit_test(test_not_ours),
                cmocka_unit_test(test_render),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
