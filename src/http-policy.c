/* SPDX-License-Identifier: MIT */
/* The daemon's one retry policy: what is transient, and the backoff. */
#include "jada/http.h"

#define RETRY_AFTER_MAX_USEC (UINT64_C(3600) * 1000000)

bool http_status_transient(long status)
{
        return status == 0 || status == 408 || status == 429 || status >= 500;
}

uint64_t http_backoff_delay(const struct http_backoff *p, unsigned n, uint64_t retry_after_usec, unsigned random)
{
        unsigned shift = n > 1 ? n - 1 : 0;
        uint64_t delay;

        if (shift > 40)
                shift = 40;
        delay = p->base_usec > p->max_usec >> shift ? p->max_usec : p->base_usec << shift;
        if (delay > p->max_usec)
                delay = p->max_usec;
        delay += delay / 100 * p->jitter_percent * (random % 1000) / 1000;
        if (retry_after_usec > RETRY_AFTER_MAX_USEC)
                retry_after_usec = RETRY_AFTER_MAX_USEC;
        return delay > retry_after_usec ? delay : retry_after_usec;
}
