/* SPDX-License-Identifier: MIT */
/* The fleet's schema: what each migration step sends (pg-schema.h). The
 * SQL itself runs against a real PostgreSQL in tests/blackbox/test_fleet.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jada/pg-schema.h"

static void test_upgrade_from_nothing(void **state)
{
        char *sql = pg_schema_upgrade_sql(0), want[64];

        assert_non_null(sql);
        assert_non_null(strstr(sql, "CREATE TABLE tasks ("));
        assert_non_null(strstr(sql, "CREATE TABLE nodes ("));
        /* One simple-protocol string, one implicit transaction: no explicit
         * BEGIN or COMMIT, which would keep a failed one open. */
        assert_null(strstr(sql, "BEGIN"));
        assert_null(strstr(sql, "COMMIT"));
        /* It records the version last. */
        snprintf(want, sizeof want, "INSERT INTO jada_schema VALUES (%d)", pg_schema_version());
        assert_non_null(strstr(sql, want));
        assert_string_equal(sql + strlen(sql) - strlen(want), want);
        free(sql);
}

static void test_nothing_to_do_and_too_new(void **state)
{
        int v = pg_schema_version();

        assert_true(v >= 1);
        assert_null(pg_schema_upgrade_sql(v));
        assert_null(pg_schema_upgrade_sql(v + 1));
        assert_null(pg_schema_upgrade_sql(-1));
        assert_false(pg_schema_too_new(v));
        assert_true(pg_schema_too_new(v + 1));
        assert_false(pg_schema_too_new(0));
}

static void test_copy_tables_respect_foreign_keys(void **state)
{
        /* tasks before everything that references it. */
        assert_string_equal(pg_schema_copy_tables[0], "tasks");
        size_t n = 0;
        while (pg_schema_copy_tables[n])
                n++;
        assert_true(n >= 5);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_upgrade_from_nothing),
                cmocka_unit_test(test_nothing_to_do_and_too_new),
                cmocka_unit_test(test_copy_tables_respect_foreign_keys),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
