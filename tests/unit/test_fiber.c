/* SPDX-License-Identifier: MIT */
/* Unit tests: the database fiber (fiber.c): jobs in order, one at a time,
 * waiting without the caller waiting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "jada/fiber.h"

struct trace {
        struct fiber *f;
        char log[128];
        unsigned yields; /* how many times the job waits */
};

static void note(struct trace *t, const char *what)
{
        strncat(t->log, what, sizeof t->log - strlen(t->log) - 1);
}

static void job_a(void *userdata)
{
        struct trace *t = userdata;

        assert_true(fiber_active(t->f));
        note(t, "a1 ");
        for (unsigned i = 0; i < t->yields; i++) {
                fiber_yield(t->f);
                note(t, "a+ ");
        }
        note(t, "a2 ");
}

static void job_b(void *userdata)
{
        note(userdata, "b ");
}

static void test_job_runs_at_once_when_idle(void **state)
{
        struct trace t = { .yields = 0 };

        assert_int_equal(fiber_new(&t.f), 0);
        assert_false(fiber_active(t.f));
        fiber_run(t.f, job_a, &t);
        /* It never waited: it ended before fiber_run returned. */
        assert_string_equal(t.log, "a1 a2 ");
        assert_false(fiber_busy(t.f));
        assert_false(fiber_active(t.f));
        /* And the fiber takes the next one as well. */
        fiber_run(t.f, job_b, &t);
        assert_string_equal(t.log, "a1 a2 b ");
        t.f = fiber_free(t.f);
}

static void test_waiting_job_holds_the_next(void **state)
{
        struct trace t = { .yields = 2 };

        assert_int_equal(fiber_new(&t.f), 0);
        fiber_run(t.f, job_a, &t);
        assert_string_equal(t.log, "a1 ");
        assert_true(fiber_busy(t.f));
        assert_false(fiber_active(t.f));
        /* Queued behind the waiting job: jobs never interleave. */
        fiber_run(t.f, job_b, &t);
        assert_string_equal(t.log, "a1 ");
        fiber_resume(t.f);
        assert_string_equal(t.log, "a1 a+ ");
        fiber_resume(t.f);
        assert_string_equal(t.log, "a1 a+ a+ a2 b ");
        assert_false(fiber_busy(t.f));
        /* A resume with nothing waiting does nothing. */
        fiber_resume(t.f);
        assert_string_equal(t.log, "a1 a+ a+ a2 b ");
        t.f = fiber_free(t.f);
}

static void job_queues_another(void *userdata)
{
        struct trace *t = userdata;

        note(t, "outer1 ");
        fiber_run(t->f, job_b, t); /* from the fiber: after this job */
        note(t, "outer2 ");
}

static void test_job_run_from_a_job_runs_after_it(void **state)
{
        struct trace t = { 0 };

        assert_int_equal(fiber_new(&t.f), 0);
        fiber_run(t.f, job_queues_another, &t);
        assert_string_equal(t.log, "outer1 outer2 b ");
        t.f = fiber_free(t.f);
}

/* Deep frames (the sanitizers make frames larger still): the stack holds
 * what the daemon's code needs and more. */
static void job_deep(void *userdata)
{
        struct trace *t = userdata;
        char big[256 * 1024];

        memset(big, 'x', sizeof big);
        big[sizeof big - 1] = '\0';
        fiber_yield(t->f);
        note(t, strlen(big) == sizeof big - 1 ? "deep " : "broken ");
}

static void test_deep_stack_survives_a_wait(void **state)
{
        struct trace t = { 0 };

        assert_int_equal(fiber_new(&t.f), 0);
        for (int i = 0; i < 3; i++) {
                fiber_run(t.f, job_deep, &t);
                fiber_resume(t.f);
        }
        assert_string_equal(t.log, "deep deep deep ");
        t.f = fiber_free(t.f);
}

/* The fiber runs with the loop's signal mask as it is now, not as it was
 * when the fiber was made (sd-event needs SIGCHLD blocked to watch a child). */
static void job_mask(void *userdata)
{
        sigset_t now;
        int *blocked = userdata;

        pthread_sigmask(SIG_SETMASK, NULL, &now);
        *blocked = sigismember(&now, SIGCHLD);
}

static void test_fiber_has_the_loops_signal_mask(void **state)
{
        struct fiber *f;
        sigset_t mask, old;
        int blocked = -1;

        pthread_sigmask(SIG_SETMASK, NULL, &old);
        sigemptyset(&mask);
        pthread_sigmask(SIG_SETMASK, &mask, NULL);
        assert_int_equal(fiber_new(&f), 0);
        sigaddset(&mask, SIGCHLD);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        fiber_run(f, job_mask, &blocked);
        assert_int_equal(blocked, 1);
        sigemptyset(&mask);
        pthread_sigmask(SIG_SETMASK, &mask, NULL);
        fiber_run(f, job_mask, &blocked);
        assert_int_equal(blocked, 0);
        f = fiber_free(f);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Many jobs each waiting once, the loop resuming them: all run, in order. */
struct counter {
        struct fiber *f;
        int next, order_ok;
};

struct numbered {
        struct counter *c;
        int n;
};

static void job_numbered(void *userdata)
{
        struct numbered *j = userdata;

        fiber_yield(j->c->f);
        if (j->n == j->c->next)
                j->c->order_ok++;
        j->c->next++;
}

static void test_many_jobs_in_order(void **state)
{
        struct counter c = { 0 };
        struct numbered jobs[100];

        assert_int_equal(fiber_new(&c.f), 0);
        for (int i = 0; i < 100; i++) {
                jobs[i] = (struct numbered){ .c = &c, .n = i };
                fiber_run(c.f, job_numbered, &jobs[i]);
        }
        for (int i = 0; i < 1000 && fiber_busy(c.f); i++)
                fiber_resume(c.f);
        assert_false(fiber_busy(c.f));
        assert_int_equal(c.next, 100);
        assert_int_equal(c.order_ok, 100);
        c.f = fiber_free(c.f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_job_runs_at_once_when_idle),
                cmocka_unit_test(test_waiting_job_holds_the_next),
                cmocka_unit_test(test_job_run_from_a_job_runs_after_it),
                cmocka_unit_test(test_deep_stack_survives_a_wait),
                cmocka_unit_test(test_many_jobs_in_order),
                cmocka_unit_test(test_fiber_has_the_loops_signal_mask),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
