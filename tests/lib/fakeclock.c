/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim for tests: shifts the wall clock (CLOCK_REALTIME, time(),
 * gettimeofday()) so that it reads FAKE_REALTIME_START (seconds since the
 * epoch) when the process starts, then runs at real speed. The monotonic
 * clocks and timers are left alone.
 *
 * Why not libfaketime: it rewrites timerfd_settime() even with
 * FAKETIME_DONT_FAKE_MONOTONIC=1, so sd-event's CLOCK_MONOTONIC timers get
 * negative expiry times and the loop fails with EINVAL.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static long long offset;

__attribute__((constructor)) static void fakeclock_init(void)
{
        const char *start = getenv("FAKE_REALTIME_START");
        struct timespec now;

        real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
        if (!start || !real_clock_gettime)
                return;
        real_clock_gettime(CLOCK_REALTIME, &now);
        offset = atoll(start) - (long long)now.tv_sec;
}

int clock_gettime(clockid_t clock, struct timespec *ts)
{
        int r;

        if (!real_clock_gettime)
                fakeclock_init();
        r = real_clock_gettime(clock, ts);
        if (r == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE))
                ts->tv_sec += offset;
        return r;
}

time_t time(time_t *t)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (t)
                *t = ts.tv_sec;
        return ts.tv_sec;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
        struct timespec ts;

        (void)tz;
        clock_gettime(CLOCK_REALTIME, &ts);
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
        return 0;
}
