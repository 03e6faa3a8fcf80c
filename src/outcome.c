/* SPDX-License-Identifier: MIT */
#include "jada/outcome.h"
#include "jada/budget.h"
#include "jada/config.h"
#include "jada/usage.h"
#include "jada/http.h"
#include "jada/util.h"

#include <string.h>

/* A failed attempt or a failing API: 1 min, doubling, at most 1 h. */
static const struct http_backoff task_backoff = { .base_usec = 60 * USEC_PER_SEC, .max_usec = 3600 * USEC_PER_SEC };

int64_t outcome_backoff(int64_t n)
{
        return (int64_t)(http_backoff_delay(&task_backoff, n < 1 ? 1 : n > 64 ? 64 : (unsigned)n, 0, 0) /
                         USEC_PER_SEC);
}

void outcome_clear(struct outcome *out)
{
        free(out->reason);
        free(out->result);
        free(out->uncounted);
        *out = (struct outcome){ 0 };
}

static const char *stop_name(enum session_stop stop)
{
        switch (stop) {
        case SESSION_STOP_TIMEOUT:  return "timeout";
        case SESSION_STOP_IDLE:     return "idle_timeout";
        case SESSION_STOP_TURNS:    return "turn_overrun";
        case SESSION_STOP_PROTOCOL: return "protocol_error";
        default:                    return "crashed";
        }
}

static char *stop_reason(const struct outcome_facts *f)
{
        switch (f->stop) {
        case SESSION_STOP_TIMEOUT:
                return xstrdup("stopped: session_timeout reached");
        case SESSION_STOP_IDLE:
                return xstrdup("stopped: no output for idle_timeout");
        case SESSION_STOP_TURNS:
                return xasprintf("stopped: %u turns, past max_turns %u", f->stats->turns, f->max_turns);
        case SESSION_STOP_PROTOCOL:
                return xstrdup("stopped: an output line longer than the limit");
        default:
                break;
        }
        if (f->exit_status > 128)
                return xasprintf("claude was killed by signal %d without a result", f->exit_status - 128);
        if (f->stats->bad_lines > 0 && !f->result->seen)
                return xasprintf("claude exited %d with a malformed stream (%llu bad lines) and no result",
                                 f->exit_status, (unsigned long long)f->stats->bad_lines);
        return xasprintf("claude exited %d without a result", f->exit_status);
}

/* A failure that retries with backoff until max_attempts, then fails the task. */
static void failed_attempt(const struct outcome_facts *f, struct outcome *out, const char *name, char *reason)
{
        int64_t n = f->attempts + 1;

        out->kind = OUTCOME_FAILED_ATTEMPT;
        out->name = name;
        out->count_attempt = true;
        if (n >= f->max_attempts) {
                out->next = TASK_FAILED;
                out->reason = xasprintf("%s (attempt %lld of %u: giving up)", reason, (long long)n, f->max_attempts);
        } else {
                out->next = TASK_QUEUED;
                out->retry_delay = outcome_backoff(n);
                out->reason = xasprintf("%s (attempt %lld of %u: retry in %llds)", reason, (long long)n,
                                        f->max_attempts, (long long)out->retry_delay);
        }
        free(reason);
}

/* Nothing reached the model: this run cost nothing and used no tokens. */
static bool no_turn_ran(const struct outcome_facts *f)
{
        const struct stream_result *r = f->result;

        return f->session_cost_usd <= 0 && r->input_tokens <= 0 && r->output_tokens <= 0 &&
               r->cache_creation_input_tokens <= 0 && r->cache_read_input_tokens <= 0;
}

static bool str_eq(const char *a, const char *b)
{
        return a && b && strcmp(a, b) == 0;
}

/* A plan's usage limit refused the session: the CLI's api_error, a
 * rejected rate-limit state, or an older CLI's text. A plain 429 or 529
 * without them is a transient API error, not this. */
static bool usage_limited(const struct outcome_facts *f, int64_t *reset)
{
        const struct stream_result *r = f->result;
        const struct stream_rate_limit *rl = &f->stats->rate_limit;
        int64_t t = 0;

        *reset = rl->seen ? rl->resets_at : 0;
        if (!r->is_error)
                return false;
        if (str_eq(f->stats->api_error, "usage_limit_reached") || (rl->seen && str_eq(rl->status, "rejected")))
                return true;
        if (stream_usage_limit_text(r->result, f->now, &t) || stream_usage_limit_text(r->errors, f->now, &t)) {
                if (t > 0)
                        *reset = t;
                return true;
        }
        return false;
}

void outcome_decide(const struct outcome_facts *f, struct outcome *out)
{
        const struct stream_result *r = f->result;
        int status = f->stats->last_api_error_status;

        *out = (struct outcome){ 0 };

        if (f->stop == SESSION_STOP_CANCELLED) {
                out->kind = OUTCOME_CANCELLED;
                out->name = "cancelled";
                out->next = TASK_CANCELLED;
                out->reason = xstrdup("cancelled while it ran");
                return;
        }
        if (f->exec_failed) {
                out->kind = OUTCOME_LAUNCH_ERROR;
                out->name = "launch_error";
                out->next = TASK_QUEUED;
                out->reason = xstrdup("the claude command could not be run");
                out->uncounted = xstrdup("never started: the claude command could not be run");
                return;
        }
        /* A stop by the daemon wins over what the child said after SIGTERM. */
        if (f->stop == SESSION_STOP_SHUTDOWN) {
                out->kind = OUTCOME_INTERRUPTED;
                out->name = "interrupted";
                out->next = TASK_QUEUED;
                out->reason = xstrdup("interrupted: the daemon stopped; resumes next session");
                return;
        }
        if (f->stop != SESSION_STOP_NONE) {
                failed_attempt(f, out, stop_name(f->stop), stop_reason(f));
                return;
        }
        if (!r->seen) {
                failed_attempt(f, out, f->stats->bad_lines ? "protocol_error" : "crashed", stop_reason(f));
                return;
        }

        if (str_eq(r->subtype, "error_max_turns") || str_eq(r->terminal_reason, "max_turns")) {
                out->kind = OUTCOME_MAX_TURNS;
                out->name = "max_turns";
                if (f->task_cap_usd > 0 && f->task_cost_before_usd + f->session_cost_usd >= f->task_cap_usd) {
                        out->next = TASK_NEEDS_YOU;
                        out->reason = xasprintf("hit the turn limit; cost cap of $%.2f reached after $%.2f: raise it "
                                                "with jada-agent task budget, then reply", f->task_cap_usd,
                                                f->task_cost_before_usd + f->session_cost_usd);
                } else if (f->sessions_used >= f->max_sessions_per_task) {
                        out->next = TASK_NEEDS_YOU;
                        out->reason = xasprintf("hit the turn limit %lld times: split the task or raise max_turns",
                                                (long long)f->sessions_used);
                } else {
                        out->next = TASK_QUEUED;
                        out->reason = xasprintf("hit the turn limit (%u turns): resumes next session", f->max_turns);
                }
                return;
        }
        if (r->is_error && r->errors && strstr(r->errors, "No conversation found")) {
                if (f->resumed) {
                        out->kind = OUTCOME_NO_CONVERSATION;
                        out->name = "no_conversation";
                        out->next = TASK_QUEUED;
                        out->clear_session_id = true;
                        out->reason = xstrdup("the conversation to resume is gone: one fresh session");
                        return;
                }
                failed_attempt(f, out, "error", xstrdup("claude found no conversation for a new session"));
                return;
        }
        if (usage_limited(f, &out->limit_reset)) {
                char when[40] = "an unknown time";
                out->kind = OUTCOME_USAGE_LIMIT;
                out->name = "usage_limit";
                out->next = TASK_QUEUED;
                out->limit_type = f->stats->rate_limit.seen ? f->stats->rate_limit.type : "";
                if (out->limit_reset > 0)
                        format_utc(when, sizeof when, (uint64_t)out->limit_reset * USEC_PER_SEC);
                out->reason = xasprintf("refused by the %s limit (resets %s): resumes after it, not a failure",
                                        usage_limit_name(out->limit_type), when);
                if (no_turn_ran(f))
                        out->uncounted = xstrdup("refused by a usage limit before its first turn");
                return;
        }
        if (r->is_error && (str_eq(r->terminal_reason, "api_error") || status != 0)) {
                if (status == 401 || status == 403) {
                        out->kind = OUTCOME_AUTH_ERROR;
                        out->name = "auth_error";
                        out->next = TASK_QUEUED;
                        out->reason = xasprintf("the API key was rejected (HTTP %d)%s%s", status,
                                                r->result ? ": " : "", r->result ? r->result : "");
                        if (no_turn_ran(f))
                                out->uncounted = xasprintf("refused by the API (HTTP %d) before its first turn",
                                                           status);
                        return;
                }
                if (status > 0 && http_status_transient(status)) {
                        out->kind = OUTCOME_API_ERROR;
                        out->name = "api_error";
                        out->next = TASK_QUEUED;
                        out->retry_delay = outcome_backoff((int64_t)f->api_error_streak + 1);
                        out->reason = xasprintf("the API kept failing (HTTP %d): retry in %llds", status,
                                                (long long)out->retry_delay);
                        if (no_turn_ran(f))
                                out->uncounted = xasprintf("refused by the API (HTTP %d) before its first turn",
                                                           status);
                        return;
                }
        }
        if (str_eq(r->subtype, "error_max_budget_usd")) {
                double spent = f->task_cost_before_usd + f->session_cost_usd;
                out->name = "max_budget";
                if (f->budget_from_day) {
                        out->kind = OUTCOME_DAY_COST;
                        out->next = TASK_QUEUED;
                        /* What the day had left is spent (or a sliver is): not before 00:00 UTC. */
                        out->retry_delay = budget_day_start(f->now) + 86400 - f->now;
                        out->reason = xstrdup("stopped at the day's cost limit (daily_cost_limit_usd): resumes "
                                              "after 00:00 UTC");
                        return;
                }
                out->kind = OUTCOME_NEEDS_YOU;
                out->next = TASK_NEEDS_YOU;
                out->reason = f->task_cap_usd > 0
                        ? xasprintf("cost cap of $%.2f reached after $%.2f: raise it with jada-agent task budget, "
                                    "then reply", f->task_cap_usd, spent)
                        : xstrdup("hit the per-session cost limit (--max-budget-usd)");
                return;
        }
        if (r->is_error) {
                failed_attempt(f, out, "error",
                               xasprintf("claude reported an error (%s%s%s)", r->subtype ? r->subtype : "?",
                                         r->errors ? ": " : "", r->errors ? r->errors : ""));
                return;
        }

        /* Success: done, unless the agent asked for a person. */
        out->result = r->result ? xstrdup(r->result) : NULL;
        out->reason = r->result ? stream_find_needs_you(r->result) : NULL;
        if (out->reason) {
                out->kind = OUTCOME_NEEDS_YOU;
                out->name = "needs_you";
                out->next = TASK_NEEDS_YOU;
                return;
        }
        if (r->permission_denials && r->permission_denials[0]) {
                char *tools = strv_join((const char *const *)r->permission_denials, ", ");
                out->kind = OUTCOME_NEEDS_YOU;
                out->name = "needs_you";
                out->next = TASK_NEEDS_YOU;
                out->reason = xasprintf("tools were denied: %s (allow them in allowed_tools, or reply)", tools);
                free(tools);
                return;
        }
        out->kind = OUTCOME_DONE;
        out->name = "done";
        out->next = TASK_DONE;
        out->reason = xstrdup("done");
}
