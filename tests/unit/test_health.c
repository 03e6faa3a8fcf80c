/* SPDX-License-Identifier: MIT */
/* Unit tests: the one rule for the problems that are states of the world
 * (health_assess), the budget's rule, and the problem table both the
 * daemon and `jada-agent status` read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "jada/health.h"

static struct health_facts calm(void)
{
        return (struct health_facts){
                .state_dir = "/var/lib/jada-agent", .disk_free_share = 0.5,
                .budget = { .now = (int64_t)time(NULL), .sessions_per_day = 5 },
        };
}

static void test_calm_is_no_problem(void **state)
{
        struct health_facts f = calm();
        struct health_assessment a;

        health_assess(&f, &a);
        for (int k = 0; k < _PROBLEM_MAX; k++)
                assert_false(a.found[k]);
}

static void test_each_rule(void **state)
{
        struct health_facts f = calm();
        struct health_assessment a;

        f.disk_free_share = 0.08;
        health_assess(&f, &a);
        assert_true(a.found[PROBLEM_DISK]);
        assert_int_equal(a.severity[PROBLEM_DISK], SEVERITY_WARNING);
        assert_string_equal(a.text[PROBLEM_DISK], "only 8.0% free on the disk of /var/lib/jada-agent");
        f.disk_free_share = 0.04;
        health_assess(&f, &a);
        assert_int_equal(a.severity[PROBLEM_DISK], SEVERITY_CRITICAL);
        f.disk_free_share = -1; /* unknown: no verdict */
        health_assess(&f, &a);
        assert_false(a.found[PROBLEM_DISK]);

        f = calm();
        f.budget.sessions_today = 5;
        health_assess(&f, &a);
        assert_false(a.found[PROBLEM_BUDGET]); /* spent, but nothing waits */
        f.tasks[TASK_QUEUED] = 2;
        health_assess(&f, &a);
        assert_true(a.found[PROBLEM_BUDGET]);
        assert_non_null(strstr(a.text[PROBLEM_BUDGET], "2 tasks wait: budget spent: 5/5 sessions today"));
        f.budget.sessions_today = 1;
        f.budget.daily_cost_limit_usd = 1.0;
        f.budget.cost_today_usd = 1.25;
        health_assess(&f, &a);
        assert_non_null(strstr(a.text[PROBLEM_BUDGET], "budget spent: $1.25 of $1.00 today"));

        f = calm();
        f.week_finished = 10;
        f.week_max_turns = 3;
        health_assess(&f, &a);
        assert_false(a.found[PROBLEM_MAX_TURNS]); /* 30% is not more than 30% */
        f.week_max_turns = 4;
        health_assess(&f, &a);
        assert_true(a.found[PROBLEM_MAX_TURNS]);
        f.week_finished = 2;
        f.week_max_turns = 2;
        health_assess(&f, &a);
        assert_false(a.found[PROBLEM_MAX_TURNS]); /* too few sessions to tell */

        f = calm();
        f.tasks[TASK_NEEDS_YOU] = 1;
        health_assess(&f, &a);
        assert_string_equal(a.text[PROBLEM_NEEDS_YOU], "1 task needs you: jada-agent task list --state needs_you");
}

static void test_budget_allows(void **state)
{
        struct budget_facts f = { .now = (int64_t)time(NULL), .sessions_per_day = 5, .sessions_today = 4 };
        char why[160];

        assert_true(budget_allows(&f, why, sizeof why));
        assert_string_equal(why, "sessions 4/5 today");
        f.sessions_today = 5;
        assert_false(budget_allows(&f, why, sizeof why));
        assert_non_null(strstr(why, "resets 00:00 UTC (in "));
}

static void test_problem_table(void **state)
{
        int assessed = 0;

        for (int k = 0; k < _PROBLEM_MAX; k++) {
                const char *name = health_problem_name((enum health_problem)k);
                assert_int_equal(health_problem_from_name(name), k);
                assert_true(strlen(health_problem_fix((enum health_problem)k)) > 0);
                assessed += health_assessed((enum health_problem)k);
        }
        assert_int_equal(assessed, 4);
        assert_int_equal(health_problem_from_name("from_a_newer_daemon"), -22);
        assert_int_equal(health_problem_severity(PROBLEM_API_KEY), SEVERITY_CRITICAL);
        assert_int_equal(health_problem_severity(PROBLEM_NEEDS_YOU), SEVERITY_WARNING);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_calm_is_no_problem),
                cmocka_unit_test(test_each_rule),
                cmocka_unit_test(test_budget_allows),
                cmocka_unit_test(test_problem_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
