/* SPDX-License-Identifier: MIT */
/* The database fiber (fiber.h): ucontext, one stack, a queue of jobs. */
#include "jada/fiber.h"
#include "jada/log.h"
#include "jada/util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#define FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIBER_ASAN 1
#endif
#endif
#ifdef FIBER_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

/* The fiber runs the daemon's own code (queue, sessions, JSON, the
 * journal), not a parser of deep input: 1 MiB is ample, and only the pages
 * it touches are memory. A guard page below catches an overflow. */
#define FIBER_STACK_SIZE (1024 * 1024)
#define FIBER_GUARD_SIZE 4096

struct fiber_job {
        struct fiber_job *next;
        fiber_job_fn fn;
        void *userdata;
};

struct fiber {
        ucontext_t loop, self;
        void *mapping;
        void *stack;                    /* the usable part, above the guard */
        struct fiber_job *head, *tail;
        bool active;                    /* running on it now */
        bool in_job;                    /* a job is running or waiting */
        /* AddressSanitizer's bookkeeping of the two stacks. */
        void *fake_loop, *fake_self;
        const void *loop_bottom;
        size_t loop_size;
};

static void switch_to_fiber(struct fiber *f)
{
#ifdef FIBER_ASAN
        __sanitizer_start_switch_fiber(&f->fake_loop, f->stack, FIBER_STACK_SIZE);
#endif
        /* swapcontext() restores the mask saved with a context: the fiber
         * runs with the loop's own (sd-event wants SIGCHLD and the stop
         * signals blocked, and blocks them after the fiber was made). */
        (void)pthread_sigmask(SIG_SETMASK, NULL, &f->self.uc_sigmask);
        f->active = true;
        if (swapcontext(&f->loop, &f->self) < 0)
                abort(); /* only EINVAL-like misuse: a broken invariant */
#ifdef FIBER_ASAN
        __sanitizer_finish_switch_fiber(f->fake_loop, NULL, NULL);
#endif
}

static void switch_to_loop(struct fiber *f)
{
#ifdef FIBER_ASAN
        __sanitizer_start_switch_fiber(&f->fake_self, f->loop_bottom, f->loop_size);
#endif
        f->active = false;
        if (swapcontext(&f->self, &f->loop) < 0)
                abort();
#ifdef FIBER_ASAN
        __sanitizer_finish_switch_fiber(f->fake_self, &f->loop_bottom, &f->loop_size);
#endif
}

static void fiber_main(unsigned hi, unsigned lo)
{
        struct fiber *f = (struct fiber *)(((uintptr_t)hi << 32) | (uintptr_t)lo);

#ifdef FIBER_ASAN
        __sanitizer_finish_switch_fiber(NULL, &f->loop_bottom, &f->loop_size);
#endif
        for (;;) {
                struct fiber_job *job;
                while ((job = f->head)) {
                        f->head = job->next;
                        if (!f->head)
                                f->tail = NULL;
                        f->in_job = true;
                        job->fn(job->userdata);
                        f->in_job = false;
                        free(job);
                }
                /* Idle: parked here until fiber_run has a job. */
                switch_to_loop(f);
        }
}

int fiber_new(struct fiber **ret)
{
        struct fiber *f = xcalloc(1, sizeof *f);
        uintptr_t p = (uintptr_t)f;

        f->mapping = mmap(NULL, FIBER_STACK_SIZE + FIBER_GUARD_SIZE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (f->mapping == MAP_FAILED) {
                int r = -errno;
                free(f);
                return log_error_errno(r, "cannot map the database fiber's stack");
        }
        if (mprotect(f->mapping, FIBER_GUARD_SIZE, PROT_NONE) < 0) {
                int r = -errno;
                munmap(f->mapping, FIBER_STACK_SIZE + FIBER_GUARD_SIZE);
                free(f);
                return log_error_errno(r, "cannot guard the database fiber's stack");
        }
        f->stack = (char *)f->mapping + FIBER_GUARD_SIZE;
        if (getcontext(&f->self) < 0) {
                int r = -errno;
                munmap(f->mapping, FIBER_STACK_SIZE + FIBER_GUARD_SIZE);
                free(f);
                return log_error_errno(r, "cannot make the database fiber");
        }
        f->self.uc_stack.ss_sp = f->stack;
        f->self.uc_stack.ss_size = FIBER_STACK_SIZE;
        f->self.uc_link = NULL; /* fiber_main never returns */
        makecontext(&f->self, (void (*)(void))fiber_main, 2, (unsigned)(p >> 32), (unsigned)(p & 0xffffffffu));
        *ret = f;
        return 0;
}

struct fiber *fiber_free(struct fiber *f)
{
        if (!f)
                return NULL;
        if (f->in_job || f->head)
                log_warning("the database fiber is freed with work left: that work is dropped");
        while (f->head) {
                struct fiber_job *next = f->head->next;
                free(f->head);
                f->head = next;
        }
        munmap(f->mapping, FIBER_STACK_SIZE + FIBER_GUARD_SIZE);
        free(f);
        return NULL;
}

bool fiber_active(const struct fiber *f)
{
        return f && f->active;
}

bool fiber_busy(const struct fiber *f)
{
        return f && (f->in_job || f->head);
}

void fiber_run(struct fiber *f, fiber_job_fn fn, void *userdata)
{
        struct fiber_job *job = xcalloc(1, sizeof *job);

        job->fn = fn;
        job->userdata = userdata;
        if (f->tail)
                f->tail->next = job;
        else
                f->head = job;
        f->tail = job;
        /* On the fiber, or a job waiting: the queue is worked through in turn. */
        if (f->active || f->in_job)
                return;
        switch_to_fiber(f);
}

void fiber_yield(struct fiber *f)
{
        if (!f->active)
                abort(); /* a wait off the fiber would return at once: a broken invariant */
        switch_to_loop(f);
}

void fiber_resume(struct fiber *f)
{
        if (f->active || !f->in_job)
                return;
        switch_to_fiber(f);
}
