/* SPDX-License-Identifier: MIT */
/* Unit tests: a session's outcome from its result line, and the budget's
 * arithmetic (UTC days, per-session cost from per-run or cumulative totals). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "jada/budget.h"
#include "jada/outcome.h"
#include "jada/usage.h"

#include <stdio.h>

static char *no_denials[] = { NULL };

static struct stream_result success(const char *text)
{
        return (struct stream_result){ .seen = true, .subtype = (char *)"success",
                                       .terminal_reason = (char *)"completed", .result = (char *)text,
                                       .permission_denials = no_denials, .model_usage_input_tokens = -1 };
}

static struct outcome_facts facts(const struct stream_result *r, const struct stream_stats *st)
{
        return (struct outcome_facts){ .result = r, .stats = st, .exit_status = 0, .sessions_used = 1,
                                       .attempts = 0, .max_sessions_per_task = 3, .max_attempts = 5,
                                       .max_turns = 30 };
}

static void test_done(void **state)
{
        struct stream_result r = success("All done.");
        struct stream_stats st = { .turns = 3 };
        struct outcome o;

        struct outcome_facts f = facts(&r, &st);

        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_DONE);
        assert_int_equal(o.next, TASK_DONE);
        assert_string_equal(o.name, "done");
        assert_string_equal(o.result, "All done.");
        assert_false(o.count_attempt);
        outcome_clear(&o);
}

static void test_needs_you_marker(void **state)
{
        struct stream_result r = success("I looked.\nNEEDS-YOU: which database should I use?\n");
        struct stream_stats st = { 0 };
        struct outcome_facts f = facts(&r, &st);
        struct outcome o;

        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_NEEDS_YOU);
        assert_int_equal(o.next, TASK_NEEDS_YOU);
        assert_string_equal(o.reason, "which database should I use?");
        outcome_clear(&o);
}

static void test_permission_denials(void **state)
{
        char *denied[] = { (char *)"Bash", (char *)"WebFetch", NULL };
        struct stream_result r = success("Could not run it.");
        struct stream_stats st = { 0 };
        struct outcome_facts f = facts(&r, &st);
        struct outcome o;

        r.permission_denials = denied;
        outcome_decide(&f, &o);
        assert_int_equal(o.next, TASK_NEEDS_YOU);
        assert_non_null(strstr(o.reason, "Bash, WebFetch"));
        outcome_clear(&o);
}

static void test_max_turns(void **state)
{
        struct stream_result r = { .seen = true, .is_error = true, .subtype = (char *)"error_max_turns",
                                   .terminal_reason = (char *)"max_turns", .permission_denials = no_denials };
        struct stream_stats st = { .turns = 31 };
        struct outcome_facts f = facts(&r, &st);
        struct outcome o;

        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_MAX_TURNS);
        assert_int_equal(o.next, TASK_QUEUED);
        assert_false(o.count_attempt);
        assert_false(o.clear_session_id);
        assert_int_equal(o.retry_delay, 0);
        outcome_clear(&o);

        /* The third session of the task hits it too: a person must look. */
        f.sessions_used = 3;
        outcome_decide(&f, &o);
        assert_int_equal(o.next, TASK_NEEDS_YOU);
        assert_string_equal(o.reason, "hit the turn limit 3 times: split the task or raise max_turns");
        outcome_clear(&o);

        /* Older CLIs: only the subtype says it. */
        r.terminal_reason = NULL;
        f.sessions_used = 1;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_MAX_TURNS);
        outcome_clear(&o);
}

static void test_api_errors(void **state)
{
        /* The CLI reports API failures as subtype success with is_error true. */
        struct stream_result r = { .seen = true, .is_error = true, .subtype = (char *)"success",
                                   .terminal_reason = (char *)"api_error", .result = (char *)"Invalid API key",
                                   .permission_denials = no_denials };
        struct stream_stats st = { .last_api_error_status = 401 };
        struct outcome_facts f = facts(&r, &st);
        struct outcome o;

        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_AUTH_ERROR);
        assert_int_equal(o.next, TASK_QUEUED);
        assert_false(o.count_attempt); /* the task is not burnt */
        outcome_clear(&o);

        st.last_api_error_status = 403;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_AUTH_ERROR);
        outcome_clear(&o);

        static const int transient[] = { 429, 529, 500, 503 };
        for (size_t i = 0; i < 4; i++) {
                st.last_api_error_status = transient[i];
                f.api_error_streak = 2;
                outcome_decide(&f, &o);
                assert_int_equal(o.kind, OUTCOME_API_ERROR);
                assert_int_equal(o.next, TASK_QUEUED);
                assert_false(o.count_attempt);
                assert_int_equal(o.retry_delay, 240); /* the third in a row: 60 * 2^2 */
                outcome_clear(&o);
        }

        /* An API error with no status: a failed attempt. */
        st.last_api_error_status = 0;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_FAILED_ATTEMPT);
        assert_true(o.count_attempt);
        outcome_clear(&o);
}

static void test_no_conversation(void **state)
{
        struct stream_result r = { .seen = true, .is_error = true, .subtype = (char *)"error_during_execution",
                                   .errors = (char *)"No conversation found with session ID: 9999",
                                   .permission_denials = no_denials };
        struct stream_stats st = { 0 };
        struct outcome_facts f = facts(&r, &st);
        struct outcome o;

        f.resumed = true;
        f.exit_status = 1;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_NO_CONVERSATION);
        assert_int_equal(o.next, TASK_QUEUED);
        assert_true(o.clear_session_id);
        assert_false(o.count_attempt);
        outcome_clear(&o);

        f.resumed = false;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_FAILED_ATTEMPT);
        outcome_clear(&o);
}

static void test_crashes_retry_then_fail(void **state)
{
        struct stream_result r = { .permission_denials = no_denials };
        struct stream_stats st = { .lines = 4 };
        struct outcome_facts f = facts(&r, &st);
        struct outcome o;

        f.exit_status = 128 + 9;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_FAILED_ATTEMPT);
        assert_string_equal(o.name, "crashed");
        assert_int_equal(o.next, TASK_QUEUED);
        assert_true(o.count_attempt);
        assert_int_equal(o.retry_delay, 60);
        assert_non_null(strstr(o.reason, "signal 9"));
        outcome_clear(&o);

        f.attempts = 4; /* the fifth failure of max_attempts 5 */
        outcome_decide(&f, &o);
        assert_int_equal(o.next, TASK_FAILED);
        assert_non_null(strstr(o.reason, "giving up"));
        outcome_clear(&o);

        f.attempts = 0;
        st.bad_lines = 2;
        f.exit_status = 0;
        outcome_decide(&f, &o);
        assert_string_equal(o.name, "protocol_error");
        outcome_clear(&o);
}

static void test_daemon_stops(void **state)
{
        struct stream_result r = { .permission_denials = no_denials };
        struct stream_stats st = { .turns = 40 };
        struct outcome_facts f = facts(&r, &st);
        struct outcome o;
        static const struct {
                enum session_stop stop;
                const char *name;
        } cases[] = {
                { SESSION_STOP_TIMEOUT, "timeout" }, { SESSION_STOP_IDLE, "idle_timeout" },
                { SESSION_STOP_TURNS, "turn_overrun" }, { SESSION_STOP_PROTOCOL, "protocol_error" },
        };

        f.exit_status = 143;
        for (size_t i = 0; i < 4; i++) {
                f.stop = cases[i].stop;
                outcome_decide(&f, &o);
                assert_int_equal(o.kind, OUTCOME_FAILED_ATTEMPT);
                assert_string_equal(o.name, cases[i].name);
                assert_true(o.count_attempt);
                outcome_clear(&o);
        }

        /* Shutdown: resumable, not a failure, whatever the child printed. */
        struct stream_result done = success("done anyway");
        f.result = &done;
        f.stop = SESSION_STOP_SHUTDOWN;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_INTERRUPTED);
        assert_int_equal(o.next, TASK_QUEUED);
        assert_false(o.count_attempt);
        assert_false(o.clear_session_id);
        outcome_clear(&o);

        f.stop = SESSION_STOP_CANCELLED;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_CANCELLED);
        outcome_clear(&o);

        f.stop = SESSION_STOP_NONE;
        f.exec_failed = true;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_LAUNCH_ERROR);
        assert_int_equal(o.next, TASK_QUEUED);
        assert_false(o.count_attempt);
        outcome_clear(&o);
}

/* Only a session that never reached the model leaves the budget alone:
 * one that could not start, or an API refusal with no cost and no tokens
 * (the CLI still says num_turns 1 for its own "<synthetic>" message). */
static void test_uncounted(void **state)
{
        struct stream_result r = success("Overloaded");
        struct stream_stats st = { .turns = 1, .last_api_error_status = 529 };
        struct outcome_facts f = facts(&r, &st);
        struct outcome o;

        r.is_error = true;
        r.terminal_reason = (char *)"api_error";
        r.num_turns = 1;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_API_ERROR);
        assert_string_equal(o.uncounted, "refused by the API (HTTP 529) before its first turn");
        outcome_clear(&o);

        st.last_api_error_status = 401;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_AUTH_ERROR);
        assert_string_equal(o.uncounted, "refused by the API (HTTP 401) before its first turn");
        outcome_clear(&o);

        /* Work was done before the API gave up: it counts. */
        st.last_api_error_status = 529;
        r.output_tokens = 12;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_API_ERROR);
        assert_null(o.uncounted);
        outcome_clear(&o);
        r.output_tokens = 0;
        r.cache_read_input_tokens = 3000;
        outcome_decide(&f, &o);
        assert_null(o.uncounted);
        outcome_clear(&o);
        r.cache_read_input_tokens = 0;
        f.session_cost_usd = 0.01;
        outcome_decide(&f, &o);
        assert_null(o.uncounted);
        outcome_clear(&o);
        f.session_cost_usd = 0;

        /* An error that is not the API's refusal counts, cost or not. */
        st.last_api_error_status = 0;
        r.terminal_reason = (char *)"completed";
        r.subtype = (char *)"error_during_execution";
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_FAILED_ATTEMPT);
        assert_null(o.uncounted);
        outcome_clear(&o);

        /* Nothing ran at all. */
        f.exec_failed = true;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_LAUNCH_ERROR);
        assert_non_null(o.uncounted);
        assert_non_null(strstr(o.uncounted, "never started"));
        outcome_clear(&o);

        /* A done session never is uncounted, even at no cost. */
        struct stream_result done = success("ok");
        f.exec_failed = false;
        f.result = &done;
        st.last_api_error_status = 0;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_DONE);
        assert_null(o.uncounted);
        outcome_clear(&o);
}

static void test_backoff(void **state)
{
        assert_int_equal(outcome_backoff(1), 60);
        assert_int_equal(outcome_backoff(2), 120);
        assert_int_equal(outcome_backoff(6), 1920);
        assert_int_equal(outcome_backoff(7), 3600);
        assert_int_equal(outcome_backoff(1000), 3600);
}

static void test_budget_day(void **state)
{
        /* Today's UTC midnight, by the C library, from the real clock. */
        time_t now = time(NULL);
        struct tm tm;
        int64_t midnight;

        assert_non_null(gmtime_r(&now, &tm));
        midnight = (int64_t)now - tm.tm_hour * 3600 - tm.tm_min * 60 - tm.tm_sec;
        assert_int_equal(budget_day_start((int64_t)now), midnight);
        assert_int_equal(budget_day_start(midnight), midnight);
        assert_int_equal(budget_day_start(midnight - 1), midnight - 86400);  /* 23:59:59 the day before */
        assert_int_equal(budget_day_start(midnight + 86399), midnight);
        assert_int_equal(budget_day_start(midnight + 86400), midnight + 86400);
        assert_int_equal(budget_day_start(0), 0);
        assert_int_equal(budget_day_start(-1), -86400);
}

static void test_session_cost(void **state)
{
        /* A first session: what it reports is its cost. */
        assert_true(budget_session_cost(0.149808, 0, false, 37152, 37152) == 0.149808);
        /* 2.1.332 after --resume: cumulative (modelUsage 75090 > usage 37938). */
        double c = budget_session_cost(0.30276, 0.149808, true, 37938, 75090);
        assert_true(c > 0.152951 && c < 0.152953);
        /* A per-run CLI: modelUsage equals usage, the total is this run's alone,
         * even when it is above the previous run's. */
        assert_true(budget_session_cost(0.2, 0.1, true, 5000, 5000) == 0.2);
        /* No modelUsage: a total below the previous can only be per run. */
        assert_true(budget_session_cost(0.05, 0.1, true, 5000, -1) == 0.05);
        c = budget_session_cost(0.3, 0.1, true, 5000, -1);
        assert_true(c > 0.19999 && c < 0.20001);
        /* Nothing reported: nothing counted. */
        assert_true(budget_session_cost(0, 0.1, true, 0, -1) == 0);
        assert_true(budget_session_cost(-1, 0, false, 0, -1) == 0);
}

static struct stream_result refused(const char *text)
{
        struct stream_result r = success(text);
        r.is_error = true;
        r.terminal_reason = (char *)"api_error";
        return r;
}

static void test_usage_limit(void **state)
{
        int64_t now = (int64_t)time(NULL);
        struct stream_result r = refused("Claude AI usage limit reached");
        struct stream_stats st = { .turns = 1, .last_api_error_status = 429, .api_error = "usage_limit_reached",
                                    .rate_limit = { .seen = true, .status = "rejected", .type = "five_hour",
                                                    .resets_at = now + 3600, .utilization = 1 } };
        struct outcome_facts f = facts(&r, &st);
        struct outcome o;

        f.now = now;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_USAGE_LIMIT);
        assert_string_equal(o.name, "usage_limit");
        assert_int_equal(o.next, TASK_QUEUED);
        assert_false(o.count_attempt);
        assert_int_equal(o.retry_delay, 0);
        assert_int_equal(o.limit_reset, now + 3600);
        assert_string_equal(o.limit_type, "five_hour");
        assert_non_null(o.uncounted);                   /* no turn ran: no slot */
        assert_non_null(strstr(o.reason, "5-hour limit"));
        outcome_clear(&o);

        /* A rejected state alone, with the API error a rate_limit. */
        memset(st.api_error, 0, sizeof st.api_error);
        snprintf(st.api_error, sizeof st.api_error, "rate_limit");
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_USAGE_LIMIT);
        outcome_clear(&o);

        /* The old text, no structured facts: the reset from the text. */
        st = (struct stream_stats){ .turns = 1 };
        r = refused("Claude AI usage limit reached|1900000000");
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_USAGE_LIMIT);
        assert_int_equal(o.limit_reset, 1900000000);
        outcome_clear(&o);

        /* After real turns: still a usage limit, but the session counts. */
        r = refused("Claude AI usage limit reached|1900000000");
        r.input_tokens = 5000;
        f.session_cost_usd = 0.12;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_USAGE_LIMIT);
        assert_null(o.uncounted);
        outcome_clear(&o);
        f.session_cost_usd = 0;

        /* A plain 429 without limit facts stays a transient API error. */
        r = refused("API Error: 429 too many requests");
        st = (struct stream_stats){ .turns = 1, .last_api_error_status = 429 };
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_API_ERROR);
        assert_true(o.retry_delay > 0);
        assert_non_null(o.uncounted);
        outcome_clear(&o);

        /* A warning on a session that succeeded is not a refusal. */
        r = success("All done.");
        st = (struct stream_stats){ .turns = 3, .rate_limit = { .seen = true, .status = "allowed_warning" } };
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_DONE);
        outcome_clear(&o);
}

static void test_cost_caps(void **state)
{
        struct stream_result r = success("stopped");
        struct stream_stats st = { .turns = 2 };
        struct outcome_facts f = facts(&r, &st);
        struct outcome o;

        r.is_error = true;
        r.subtype = (char *)"error_max_budget_usd";
        f.task_cap_usd = 0.40;
        f.task_cost_before_usd = 0.30;
        f.session_cost_usd = 0.12;
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_NEEDS_YOU);
        assert_int_equal(o.next, TASK_NEEDS_YOU);
        assert_string_equal(o.reason, "cost cap of $0.40 reached after $0.42: raise it with jada-agent task budget, "
                                      "then reply");
        outcome_clear(&o);

        /* The day's limit gave the budget: resumable tomorrow, not a person's matter. */
        f.budget_from_day = true;
        f.now = (int64_t)time(NULL);
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_DAY_COST);
        assert_int_equal(o.next, TASK_QUEUED);
        assert_int_equal((f.now + o.retry_delay) % 86400, 0);
        assert_true(o.retry_delay > 0 && o.retry_delay <= 86400);
        assert_false(o.count_attempt);
        outcome_clear(&o);

        /* A turn limit past the cap (one turn can overshoot): needs you, not another session. */
        f.budget_from_day = false;
        r = success(NULL);
        r.is_error = true;
        r.subtype = (char *)"error_max_turns";
        outcome_decide(&f, &o);
        assert_int_equal(o.kind, OUTCOME_MAX_TURNS);
        assert_int_equal(o.next, TASK_NEEDS_YOU);
        assert_non_null(strstr(o.reason, "cost cap of $0.40"));
        outcome_clear(&o);
        f.session_cost_usd = 0.05;
        outcome_decide(&f, &o);
        assert_int_equal(o.next, TASK_QUEUED);
        outcome_clear(&o);
}

static void test_usage_park(void **state)
{
        int64_t now = (int64_t)time(NULL);
        struct usage_state u = { 0 };

        usage_park(&u, "five_hour", now + 3600, now);
        assert_int_equal(u.parked_until, now + 3600 + USAGE_PARK_MARGIN);
        assert_string_equal(u.park_type, "five_hour");
        assert_true(usage_parked(&u, now + 3660 - 1));
        assert_false(usage_parked(&u, now + 3660));
        /* A second, shorter refusal does not bring the gate in. */
        usage_park(&u, "seven_day", now + 60, now);
        assert_int_equal(u.parked_until, now + 3660);
        assert_string_equal(u.park_type, "five_hour");
        /* No reset known (or one in the past): 30 min, doubling, at most 5 h. */
        u = (struct usage_state){ 0 };
        static const int64_t waits[] = { 1800, 3600, 7200, 14400, 18000, 18000 };
        for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++) {
                u.parked_until = 0;
                usage_park(&u, "", i % 2 ? now - USAGE_PARK_MARGIN : 0, now);
                assert_int_equal(u.parked_until, now + waits[i]);
                assert_int_equal(u.park_reset, 0);
        }
        /* A reset just past still counts, with its margin. */
        u = (struct usage_state){ 0 };
        usage_park(&u, "five_hour", now - 57, now);
        assert_int_equal(u.parked_until, now + 3);
        /* A known reset ends the streak. */
        u.unknown_streak = 2;
        u.parked_until = 0;
        usage_park(&u, "five_hour", now + 100, now);
        assert_int_equal(u.unknown_streak, 0);
        assert_string_equal(usage_limit_name("seven_day_opus"), "weekly Opus");
        assert_string_equal(usage_limit_name(""), "usage");
        assert_string_equal(usage_limit_name("something_new"), "something_new");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_done),
                cmocka_unit_test(test_needs_you_marker),
                cmocka_unit_test(test_permission_denials),
                cmocka_unit_test(test_max_turns),
                cmocka_unit_test(test_api_errors),
                cmocka_unit_test(test_no_conversation),
                cmocka_unit_test(test_crashes_retry_then_fail),
                cmocka_unit_test(test_daemon_stops),
                cmocka_unit_test(test_uncounted),
                cmocka_unit_test(test_backoff),
                cmocka_unit_test(test_budget_day),
                cmocka_unit_test(test_session_cost),
                cmocka_unit_test(test_usage_limit),
                cmocka_unit_test(test_cost_caps),
                cmocka_unit_test(test_usage_park),
        };
        return cmocka_run_group_tests_name("outcome", tests, NULL, NULL);
}
