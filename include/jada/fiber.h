/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

/*
 * One coroutine that runs the daemon's database work, so that code written
 * as plain calls ("claim a task, then start its session") can wait for a
 * PostgreSQL answer without the loop waiting with it: a store call made on
 * the fiber sends its query, then fiber_yield() goes back to the loop; the
 * query's callback calls fiber_resume(), and the call returns its rows.
 *
 * Jobs run one at a time, in the order given, each to its end before the
 * next begins: two jobs never interleave, which keeps the atomicity the
 * code had when every call returned at once. While a job waits, the loop
 * runs everything else (the watchdog, sessions' output, HTTP, signals).
 *
 * Single-threaded, like the loop. Built on ucontext, with the switches told
 * to AddressSanitizer when it is on.
 */

struct fiber;

typedef void (*fiber_job_fn)(void *userdata);

int fiber_new(struct fiber **ret);
/* Only when no job is left (fiber_busy() false): a job stopped half-way
 * would leak what its frames hold. */
struct fiber *fiber_free(struct fiber *f);

/* Runs fn(userdata) on the fiber. If the fiber is idle and the caller is
 * not on it, the job starts at once and fiber_run returns when it ends or
 * first waits; otherwise it runs after the jobs before it. */
void fiber_run(struct fiber *f, fiber_job_fn fn, void *userdata);

/* Whether the caller is running on the fiber now. */
bool fiber_active(const struct fiber *f);
/* Whether a job is running, waiting or queued. */
bool fiber_busy(const struct fiber *f);

/* On the fiber: back to the loop, until fiber_resume(). */
void fiber_yield(struct fiber *f);
/* Off the fiber (from a callback of the loop): continues the waiting job
 * until it waits again or the queue is empty. */
void fiber_resume(struct fiber *f);
