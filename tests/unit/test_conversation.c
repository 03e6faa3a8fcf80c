/* SPDX-License-Identifier: MIT */
/* Unit tests: a Claude Code conversation file packed for the fleet's
 * database and written back (conversation.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jada/conversation.h"
#include "jada/util.h"

static char dir[] = "/tmp/jada-conv-XXXXXX";

static int setup(void **state)
{
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
        char *cmd = xasprintf("rm -rf '%s'", dir);
        int r = system(cmd);
        free(cmd);
        return r == 0 ? 0 : -1;
}

static void test_path_key(void **state)
{
        char *p = conversation_path("/s/home/.claude", "/var/lib/jada-agent/work/task-7", "abc");
        /* The CLI's key: every character but [A-Za-z0-9] becomes '-'. */
        assert_string_equal(p, "/s/home/.claude/projects/-var-lib-jada-agent-work-task-7/abc.jsonl");
        free(p);
        /* One '-' per UTF-16 unit: é is one, U+1F600 two. */
        p = conversation_path("/c", "/a.b_c d/\xc3\xa9/\xf0\x9f\x98\x80", "x");
        assert_string_equal(p, "/c/projects/-a-b-c-d-----/x.jsonl");
        free(p);
}

static void round_trip(size_t size)
{
        char *src = xasprintf("%s/src-%zu.jsonl", dir, size);
        char *dst = xasprintf("%s/deep/er/dst-%zu.jsonl", dir, size);
        char *data = xmalloc(size + 1), *text = NULL, *back = NULL;
        size_t packed_size = 0, back_size = 0;
        struct stat st;

        /* Lines of JSON with every byte value somewhere, some repetition. */
        for (size_t i = 0; i < size; i++)
                data[i] = i % 97 == 96 ? '\n' : (char)(i * 7 + i / 13);
        assert_int_equal(write_file_atomic(src, data, size, 0600), 0);
        assert_int_equal(conversation_pack(src, &text, &packed_size), 0);
        assert_int_equal(packed_size, size);
        assert_int_equal(strlen(text) % 4, 0);
        assert_int_equal(conversation_unpack(text, dst), 0);
        assert_int_equal(read_file_capped(dst, size + 1, &back, &back_size), 0);
        assert_int_equal(back_size, size);
        assert_memory_equal(back, data, size);
        assert_int_equal(stat(dst, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        free(src);
        free(dst);
        free(data);
        free(text);
        free(back);
}

static void test_round_trips(void **state)
{
        /* Sizes that leave base64 zero, one and two bytes of padding. */
        round_trip(0);
        round_trip(1);
        round_trip(2);
        round_trip(3);
        round_trip(1000);
        round_trip(1u << 20);
}

static void test_missing_file(void **state)
{
        char *path = xasprintf("%s/none.jsonl", dir), *text = NULL;
        size_t size = 0;

        assert_int_equal(conversation_pack(path, &text, &size), -ENOENT);
        assert_null(text);
        free(path);
}

static void test_hostile_text(void **state)
{
        char *path = xasprintf("%s/bad.jsonl", dir);
        static const char *const bad[] = {
                "", "abc", "!!!!", "AAAA", "AAAAAAAA",
                /* a zstd frame header that claims 2^40 bytes */
                "KLUv/WAAAAAAAAAAAAAA",
        };

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                assert_int_equal(conversation_unpack(bad[i], path), -EBADMSG);
        assert_int_equal(access(path, F_OK), -1);
        free(path);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_path_key),
                cmocka_unit_test(test_round_trips),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_hostile_text),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
