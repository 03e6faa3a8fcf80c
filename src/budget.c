/* SPDX-License-Identifier: MIT */
#include "jada/budget.h"
#include "jada/duration.h"

#include <stdio.h>

int64_t budget_day_start(int64_t t)
{
        int64_t r = t % 86400;
        return t - (r < 0 ? r + 86400 : r);
}

bool budget_allows(const struct budget_facts *f, char *why, size_t size)
{
        char reset[32];

        duration_format(reset, sizeof reset, (uint64_t)(budget_day_start(f->now) + 86400 - f->now) * USEC_PER_SEC);
        if (f->sessions_today >= (int64_t)f->sessions_per_day) {
                snprintf(why, size, "budget spent: %lld/%u sessions today, resets 00:00 UTC (in %s)",
                         (long long)f->sessions_today, f->sessions_per_day, reset);
                return false;
        }
        if (f->daily_cost_limit_usd > 0 && f->cost_today_usd >= f->daily_cost_limit_usd) {
                snprintf(why, size, "budget spent: $%.2f of $%.2f today, resets 00:00 UTC (in %s)", f->cost_today_usd,
                         f->daily_cost_limit_usd, reset);
                return false;
        }
        snprintf(why, size, "sessions %lld/%u today", (long long)f->sessions_today, f->sessions_per_day);
        return true;
}

double budget_session_cost(double reported, double previous_reported, bool resumed,
                           int64_t usage_input_tokens, int64_t model_usage_input_tokens)
{
        bool cumulative;

        if (reported <= 0)
                return 0;
        if (!resumed || previous_reported <= 0)
                return reported;
        if (model_usage_input_tokens >= 0 && usage_input_tokens >= 0)
                cumulative = model_usage_input_tokens > usage_input_tokens;
        else
                cumulative = reported >= previous_reported;
        if (!cumulative)
                return reported;
        return reported > previous_reported ? reported - previous_reported : 0;
}
