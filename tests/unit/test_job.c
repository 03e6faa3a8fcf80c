/* SPDX-License-Identifier: MIT */
/* Unit tests: jobs (job.c), short commands supervised from a loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "jada/job.h"
#include "jada/util.h"

static const char *const env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };

static int run(const char *script, uint64_t timeout, size_t cap, struct job_result *res)
{
        const char *argv[] = { "/bin/sh", "-c", script, NULL };
        return job_run(&(struct job_spec){ .argv = argv, .env = env, .cwd = "/", .timeout = timeout,
                                           .capture_max = cap, .stdout_fd = -1 }, res);
}

static void test_output_and_status(void **state)
{
        struct job_result res = { 0 };

        assert_int_equal(run("echo out; echo err >&2; exit 3", 0, 1024, &res), 0);
        assert_int_equal(res.status, 3);
        assert_false(res.timed_out);
        assert_string_equal(res.out, "out\n");
        assert_int_equal(res.out_len, 4);
        assert_string_equal(res.err, "err\n");
        job_result_clear(&res);

        /* Only its own environment: nothing of ours leaks in. */
        setenv("JADA_TEST_SECRET", "leak", 1);
        assert_int_equal(run("echo \"[$JADA_TEST_SECRET]\" \"$LC_ALL\"; pwd", 0, 1024, &res), 0);
        assert_string_equal(res.out, "[] C\n/\n");
        job_result_clear(&res);
}

static void test_capture_is_capped(void **state)
{
        struct job_result res = { 0 };

        assert_int_equal(run("head -c 100000 /dev/zero | tr '\\0' x; head -c 10000 /dev/zero >&2", 0, 1000, &res), 0);
        assert_int_equal(res.status, 0);
        assert_int_equal(res.out_len, 1000);
        assert_true(res.out_truncated);
        assert_int_equal(strlen(res.err), 0); /* NULs: the string ends at once, the buffer is bounded */
        job_result_clear(&res);
}

static void test_timeout_stops_the_group(void **state)
{
        struct job_result res = { 0 };

        /* The child's own child holds the pipes: the group goes, not just sh. */
        assert_int_equal(run("sleep 30 & sleep 30; echo never", 200 * 1000, 1024, &res), 0);
        assert_true(res.timed_out);
        assert_int_equal(res.status, 128 + SIGTERM);
        assert_string_equal(res.out, "");
        assert_string_equal(job_result_why(&res), "timed out");
        job_result_clear(&res);
}

static void test_cannot_run(void **state)
{
        const char *argv[] = { "no-such-command-jada", NULL };
        struct job_result res = { 0 };

        assert_int_equal(job_run(&(struct job_spec){ .argv = argv, .env = env, .cwd = "/", .capture_max = 16,
                                                     .stdout_fd = -1 }, &res), 0);
        assert_int_equal(res.status, -ENOENT);
        job_result_clear(&res);

        argv[0] = "/bin/true";
        assert_int_equal(job_run(&(struct job_spec){ .argv = argv, .env = env, .cwd = "/nonexistent-dir",
                                                     .capture_max = 16, .stdout_fd = -1 }, &res), 0);
        assert_int_equal(res.status, -ENOENT);
        job_result_clear(&res);
}

static void test_input_on_stdin(void **state)
{
        const char *argv[] = { "/bin/sh", "-c", "cat; echo", NULL };
        size_t big = 256 * 1024; /* past a pipe's buffer: a memfd never makes the loop wait */
        char *input = xmalloc(big);
        struct job_result res = { 0 };

        assert_int_equal(job_run(&(struct job_spec){ .argv = argv, .env = env, .cwd = "/", .capture_max = 1024,
                                                     .stdout_fd = -1, .input = "hello\nthere", .input_len = 11 },
                                 &res), 0);
        assert_int_equal(res.status, 0);
        assert_string_equal(res.out, "hello\nthere\n");
        job_result_clear(&res);

        /* A child that never reads its input still runs and ends. */
        memset(input, 'x', big);
        argv[2] = "exit 0";
        assert_int_equal(job_run(&(struct job_spec){ .argv = argv, .env = env, .cwd = "/", .capture_max = 16,
                                                     .stdout_fd = -1, .input = input, .input_len = big },
                                 &res), 0);
        assert_int_equal(res.status, 0);
        job_result_clear(&res);
        argv[2] = "wc -c";
        assert_int_equal(job_run(&(struct job_spec){ .argv = argv, .env = env, .cwd = "/", .capture_max = 16,
                                                     .stdout_fd = -1, .input = input, .input_len = big },
                                 &res), 0);
        assert_int_equal(atoi(res.out), (int)big);
        job_result_clear(&res);
        free(input);
}

static void test_why(void **state)
{
        struct job_result res = { 0 };

        assert_int_equal(run("echo 'hint: first' >&2; echo 'fatal: the reason' >&2; echo 'hint: after' >&2; exit 128",
                             0, 16, &res), 0);
        assert_string_equal(job_result_why(&res), "fatal: the reason");
        job_result_clear(&res);
        assert_int_equal(run("echo 'just this' >&2; echo 'and that' >&2; exit 1", 0, 16, &res), 0);
        assert_string_equal(job_result_why(&res), "just this");
        job_result_clear(&res);
        assert_int_equal(run("exit 1", 0, 16, &res), 0);
        assert_string_equal(job_result_why(&res), "no message");
        job_result_clear(&res);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_output_and_status),
                cmocka_unit_test(test_capture_is_capped),
                cmocka_unit_test(test_timeout_stops_the_group),
                cmocka_unit_test(test_cannot_run),
                cmocka_unit_test(test_input_on_stdin),
                cmocka_unit_test(test_why),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
