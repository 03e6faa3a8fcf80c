/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The budget's arithmetic: the UTC day that sessions_per_day and
 * daily_cost_limit_usd count over, and a session's own cost. Pure
 * functions; the rows they count are session-store.h's.
 */

/* The start of the UTC day holding t (seconds since the epoch). */
int64_t budget_day_start(int64_t t);

/* What the day's budget is measured against (UTC day of now). */
struct budget_facts {
        int64_t now;                    /* UTC seconds */
        int64_t sessions_today;         /* counted sessions since 00:00 UTC */
        unsigned sessions_per_day;
        double cost_today_usd;
        double daily_cost_limit_usd;    /* 0: no limit */
};
/* Whether another session may start today; why not (or the day's count) in
 * why: "budget spent: 5/5 sessions today, resets 00:00 UTC (in 3h12min)". */
bool budget_allows(const struct budget_facts *facts, char *why, size_t size);

/* The cost of one session from what the CLI reported. total_cost_usd is
 * per run in older CLIs and cumulative across --resume in newer ones; the
 * result's modelUsage counts tokens the same way as its cost while usage
 * counts this run only, so model tokens above usage tokens mean cumulative.
 * Without those, a resumed total below the previous total can only be per run. */
double budget_session_cost(double reported, double previous_reported, bool resumed,
                           int64_t usage_input_tokens, int64_t model_usage_input_tokens);
