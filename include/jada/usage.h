/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jada/stream.h"

/*
 * A plan's usage limits (a subscription's 5-hour and weekly limits, an API
 * key's rate limits): one gate for the whole daemon. A session refused by a
 * limit parks the daemon until the limit resets (plus a margin); with no
 * reset known, 30 min, doubling, at most 5 h. The gate and the last limit
 * state the CLI reported live in the db (table usage_limit), so a restart
 * keeps them; the budget's midnight reset does not lift a park.
 */

#define USAGE_PARK_MARGIN 60                    /* seconds after the reported reset */
#define USAGE_UNKNOWN_FIRST (30 * 60)           /* a park with no known reset */
#define USAGE_UNKNOWN_MAX (5 * 3600)

struct usage_state {
        int64_t parked_until;                   /* UTC seconds; 0: not parked */
        int64_t unknown_streak;                 /* parks in a row without a known reset */
        char park_type[32];                     /* the limit that parked it ("five_hour"), "" unknown */
        int64_t park_reset;                     /* its reset as reported; 0 unknown */
        struct stream_rate_limit last;          /* the last limit state the CLI reported */
        int64_t last_at;                        /* when it was seen; 0 never */
};

/* Until when a refusal at now parks the daemon (reset: the reported reset,
 * 0 if unknown; one so far past that its margin is over counts as
 * unknown); updates the streak. A
 * park already longer is kept: a second refusal only moves the gate out. */
void usage_park(struct usage_state *state, const char *type, int64_t reset, int64_t now);
bool usage_parked(const struct usage_state *state, int64_t now);
/* A reported utilization in percent: the CLI gives a share (0..1); a value
 * above 1 is taken as percent already. */
double usage_percent(double utilization);
/* "5-hour", "weekly", "weekly Opus", ...; "usage" when unknown. */
const char *usage_limit_name(const char *type);
/* "Parked: 5-hour usage limit, resets ...; sessions start again at ...":
 * the one text of a park, for the daemon's health and for `status`, which
 * rules on a park from the db itself. */
const char *usage_park_text(const struct usage_state *state, char *buf, size_t size);
/* "2026-12-03 08:00 UTC", or "an unknown time" for 0. */
const char *usage_time_text(char *buf, size_t size, int64_t t);

int usage_load(struct store *db, struct usage_state *ret);
int usage_save(struct store *db, const struct usage_state *state);
