/* SPDX-License-Identifier: MIT */
#include "jada/budget.h"

int64_t budget_day_start(int64_t t)
{
        int64_t r = t % 86400;
        return t - (r < 0 ? r + 86400 : r);
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
