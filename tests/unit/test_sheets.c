/* SPDX-License-Identifier: MIT */
/* src/sheets.c: the Sheets API's pure parts, with hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jada/sheets.h"
#include "jada/util.h"

/* ISO 8601 UTC of t, by the C library (not the code under test). */
static const char *utc(char buf[32], int64_t t)
{
        time_t tt = (time_t)t;
        struct tm tm;

        assert_non_null(gmtime_r(&tt, &tm));
        assert_true(strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);
        return buf;
}

static int parse(const char *body, struct sheets_values *v, char *error)
{
        return sheets_values_parse(body, strlen(body), v, error, 256);
}

static void test_parse_ragged_rows(void **state)
{
        struct sheets_values v;
        char error[256] = "";

        assert_int_equal(parse("{\"range\":\"Ports!A1:Z1000\",\"majorDimension\":\"ROWS\",\"values\":"
                               "[[\"port\",\"city\",\"note\"],[\"Hamburg\",\"DE\"],[\"Rotterdam\"],"
                               "[\"Antwerp\",\"BE\",\"big\"]]}", &v, error), 0);
        assert_int_equal(v.n_columns, 3);
        assert_int_equal(v.n_rows, 3);
        assert_int_equal(v.n_renamed, 0);
        assert_string_equal(v.columns[2], "note");
        assert_string_equal(sheets_cell(&v, 0, 1), "DE");
        assert_string_equal(sheets_cell(&v, 0, 2), "");         /* padded */
        assert_string_equal(sheets_cell(&v, 1, 1), "");
        assert_string_equal(sheets_cell(&v, 2, 2), "big");
        assert_string_equal(sheets_cell(&v, 9, 9), "");         /* out of range is empty, not a crash */
        assert_int_equal(v.row_numbers[0], 1);
        assert_int_equal(v.row_numbers[2], 3);
        sheets_values_clear(&v);
        sheets_values_clear(&v);                                /* idempotent */
}

static void test_parse_empty_range(void **state)
{
        struct sheets_values v;
        char error[256] = "";

        /* Google leaves "values" out for an empty range. */
        assert_int_equal(parse("{\"range\":\"Ports!A1:Z1000\",\"majorDimension\":\"ROWS\"}", &v, error), 0);
        assert_int_equal(v.n_columns, 0);
        assert_int_equal(v.n_rows, 0);
        sheets_values_clear(&v);
        assert_int_equal(parse("{\"values\":[]}", &v, error), 0);
        assert_int_equal(v.n_rows, 0);
        sheets_values_clear(&v);
        /* Only a header: columns, no rows. */
        assert_int_equal(parse("{\"values\":[[\"a\",\"b\"]]}", &v, error), 0);
        assert_int_equal(v.n_columns, 2);
        assert_int_equal(v.n_rows, 0);
        sheets_values_clear(&v);
}

static void test_parse_blank_rows_skipped(void **state)
{
        struct sheets_values v;
        char error[256] = "";

        assert_int_equal(parse("{\"values\":[[\"a\"],[],[\"x\"],[\"\",\"\"],[null],[\"y\"]]}", &v, error), 0);
        assert_int_equal(v.n_rows, 2);
        assert_int_equal(v.row_numbers[0], 2);
        assert_int_equal(v.row_numbers[1], 5);
        assert_string_equal(sheets_cell(&v, 1, 0), "y");
        sheets_values_clear(&v);
}

static void test_parse_numbers_and_bools(void **state)
{
        struct sheets_values v;
        char error[256] = "";

        assert_int_equal(parse("{\"values\":[[\"n\",\"r\",\"t\",\"f\",\"z\"],[42,2.5,true,false,null],"
                               "[-7,1e3]]}", &v, error), 0);
        assert_string_equal(sheets_cell(&v, 0, 0), "42");
        assert_string_equal(sheets_cell(&v, 0, 1), "2.5");
        assert_string_equal(sheets_cell(&v, 0, 2), "TRUE");
        assert_string_equal(sheets_cell(&v, 0, 3), "FALSE");
        assert_string_equal(sheets_cell(&v, 0, 4), "");
        assert_string_equal(sheets_cell(&v, 1, 0), "-7");
        assert_string_equal(sheets_cell(&v, 1, 1), "1000");
        sheets_values_clear(&v);
}

static void test_parse_header_names(void **state)
{
        struct sheets_values v;
        char error[256] = "";

        /* Empty names, repeats, a data cell beyond the header, and a repeat
         * that collides with a name made up for an earlier one. */
        assert_int_equal(parse("{\"values\":[[\"port\",\"\",\"port\",\" \",\"port_2\",\"port\"],"
                               "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\"]]}", &v, error), 0);
        assert_int_equal(v.n_columns, 7);
        assert_string_equal(v.columns[0], "port");
        assert_string_equal(v.columns[1], "column_2");
        assert_string_equal(v.columns[2], "port_2");
        assert_string_equal(v.columns[3], "column_4");
        assert_string_equal(v.columns[4], "port_2_2");
        assert_string_equal(v.columns[5], "port_3");
        assert_string_equal(v.columns[6], "column_7");
        assert_int_equal(v.n_renamed, 6);
        for (size_t i = 0; i < v.n_columns; i++)
                for (size_t j = i + 1; j < v.n_columns; j++)
                        assert_string_not_equal(v.columns[i], v.columns[j]);
        sheets_values_clear(&v);
}

static void test_parse_missing_header(void **state)
{
        struct sheets_values v;
        char error[256] = "";

        assert_int_equal(parse("{\"values\":[[],[\"Hamburg\"]]}", &v, error), -EBADMSG);
        assert_non_null(strstr(error, "header"));
        assert_int_equal(parse("{\"values\":[[\"\",null],[\"Hamburg\"]]}", &v, error), -EBADMSG);
        assert_non_null(strstr(error, "header"));
        /* Blank rows only: nothing, not an error. */
        assert_int_equal(parse("{\"values\":[[],[]]}", &v, error), 0);
        assert_int_equal(v.n_rows + v.n_columns, 0);
        sheets_values_clear(&v);
}

static void test_parse_unicode(void **state)
{
        struct sheets_values v;
        char error[256] = "";
        char *json;

        assert_int_equal(parse("{\"values\":[[\"Hafen\",\"\\u6e2f\"],[\"G\\u00f6teborg\",\"\\ud83d\\udea2\"]]}",
                               &v, error), 0);
        assert_string_equal(v.columns[1], "\xe6\xb8\xaf");
        assert_string_equal(sheets_cell(&v, 0, 0), "G\xc3\xb6teborg");
        assert_string_equal(sheets_cell(&v, 0, 1), "\xf0\x9f\x9a\xa2");
        json = sheets_row_json(&v, 0);
        assert_string_equal(json, "{\"Hafen\":\"G\xc3\xb6teborg\",\"\xe6\xb8\xaf\":\"\xf0\x9f\x9a\xa2\"}");
        free(json);
        sheets_values_clear(&v);
        /* Invalid UTF-8 and \u0000 are not JSON jansson accepts. */
        assert_int_equal(parse("{\"values\":[[\"\xff\"]]}", &v, error), -EBADMSG);
        assert_int_equal(parse("{\"values\":[[\"a\\u0000b\"]]}", &v, error), -EBADMSG);
}

static void test_parse_hostile(void **state)
{
        static const char *const bad[] = {
                "",
                "not json",
                "<html><body>502 Bad Gateway</body></html>",
                "{\"values\": [[\"a\"], [\"b\"",               /* truncated */
                "[]",
                "null",
                "{\"values\": {}}",
                "{\"values\": \"a,b\"}",
                "{\"values\": null}",
                "{\"values\": [[\"a\"], \"b\"]}",
                "{\"values\": [[\"a\"], [{\"x\": 1}]]}",       /* object cell */
                "{\"values\": [[\"a\"], [[\"nested\"]]]}",      /* array cell */
                "{\"values\": [[{\"x\": 1}]]}",                 /* object in the header */
                "{\"majorDimension\": \"COLUMNS\", \"values\": [[\"a\"]]}",
                "{\"majorDimension\": 1}",
        };
        struct sheets_values v;

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                char error[256] = "";

                assert_int_equal(parse(bad[i], &v, error), -EBADMSG);
                assert_true(strlen(error) > 0);
                assert_int_equal(v.n_rows + v.n_columns, 0);
                assert_null(v.cells);
        }
        /* A NULL body, a body with a NUL inside, a tiny error buffer. */
        assert_int_equal(sheets_values_parse(NULL, 0, &v, NULL, 0), -EBADMSG);
        assert_int_equal(sheets_values_parse("{\"values\":[]}\0junk", 19, &v, NULL, 0), -EBADMSG);
        {
                char tiny[4];

                assert_int_equal(sheets_values_parse("nope", 4, &v, tiny, sizeof tiny), -EBADMSG);
                assert_int_equal(strlen(tiny), 3);
        }
}

static void test_parse_limits(void **state)
{
        struct sheets_values v;
        char error[256] = "";
        size_t cap = 64 * 1024 * 1024, n = 0;
        char *body = malloc(cap);

        assert_non_null(body);
        /* A wide header over many one-cell rows: padding would explode. */
        n += (size_t)sprintf(body + n, "{\"values\":[[");
        for (int i = 0; i < 10000; i++)
                n += (size_t)sprintf(body + n, "%s\"c%d\"", i ? "," : "", i);
        n += (size_t)sprintf(body + n, "]");
        for (int i = 0; i < 100; i++)
                n += (size_t)sprintf(body + n, ",[\"x\"]");
        n += (size_t)sprintf(body + n, "]}");
        assert_int_equal(sheets_values_parse(body, n, &v, error, sizeof error), -E2BIG);
        assert_non_null(strstr(error, "cells"));

        n = (size_t)sprintf(body, "{\"values\":[[");
        for (int i = 0; i < SHEETS_MAX_COLUMNS + 1; i++)
                n += (size_t)sprintf(body + n, "%s\"\"", i ? "," : "");
        n += (size_t)sprintf(body + n, ",\"x\"]]}");
        assert_int_equal(sheets_values_parse(body, n, &v, error, sizeof error), -E2BIG);

        /* Thousands of equal names stay fast (no quadratic renaming). */
        n = (size_t)sprintf(body, "{\"values\":[[");
        for (int i = 0; i < 18000; i++)
                n += (size_t)sprintf(body + n, "%s\"a\"", i ? "," : "");
        n += (size_t)sprintf(body + n, "]]}");
        assert_int_equal(sheets_values_parse(body, n, &v, error, sizeof error), 0);
        assert_string_equal(v.columns[17999], "a_18000");
        sheets_values_clear(&v);
        free(body);
}

static void test_hash(void **state)
{
        struct sheets_values a, b, c;
        char ha[65], hb[65], hc[65], h2[65];
        char error[256];

        /* Same table, different body: trailing empties, whitespace, a null. */
        assert_int_equal(parse("{\"values\":[[\"p\",\"q\"],[\"x\",\"\"]]}", &a, error), 0);
        assert_int_equal(parse("{ \"majorDimension\": \"ROWS\", \"values\" : [ [\"p\",\"q\"], [\"x\", null] ] }",
                               &b, error), 0);
        assert_int_equal(parse("{\"values\":[[\"p\",\"q\"],[\"\",\"x\"]]}", &c, error), 0);
        assert_int_equal(sheets_values_hash(&a, "S", "R", ha), 0);
        assert_int_equal(sheets_values_hash(&b, "S", "R", hb), 0);
        assert_int_equal(sheets_values_hash(&c, "S", "R", hc), 0);
        assert_int_equal(strlen(ha), 64);
        assert_string_equal(ha, hb);
        assert_string_not_equal(ha, hc);
        /* Where it came from counts: another sheet with equal cells is a change. */
        assert_int_equal(sheets_values_hash(&a, "S2", "R", h2), 0);
        assert_string_not_equal(ha, h2);
        /* Length prefixes: "ab"+"" differs from "a"+"b". */
        sheets_values_clear(&a);
        sheets_values_clear(&c);
        assert_int_equal(parse("{\"values\":[[\"p\",\"q\"],[\"ab\",\"\"]]}", &a, error), 0);
        assert_int_equal(parse("{\"values\":[[\"p\",\"q\"],[\"a\",\"b\"]]}", &c, error), 0);
        assert_int_equal(sheets_values_hash(&a, "S", "R", ha), 0);
        assert_int_equal(sheets_values_hash(&c, "S", "R", hc), 0);
        assert_string_not_equal(ha, hc);
        sheets_values_clear(&a);
        sheets_values_clear(&b);
        sheets_values_clear(&c);
}

static void test_port_json(void **state)
{
        struct sheets_values v;
        char error[256], synced_at[32];
        char *s, *h;
        json_t *j;

        utc(synced_at, now_seconds());
        assert_int_equal(parse("{\"values\":[[\"port\",\"city\"],[\"Hamburg\"],[\"Kiel\",\"DE\"]]}", &v, error), 0);
        s = sheets_port_json(&v, "SHEET", "Ports!A1:Z", synced_at);
        assert_non_null(s);
        assert_int_equal(s[strlen(s) - 1], '\n');
        j = json_loads(s, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "synced_at")), synced_at);
        assert_string_equal(json_string_value(json_object_get(j, "spreadsheet_id")), "SHEET");
        assert_string_equal(json_string_value(json_object_get(j, "range")), "Ports!A1:Z");
        assert_int_equal(json_array_size(json_object_get(j, "columns")), 2);
        assert_int_equal(json_array_size(json_object_get(j, "rows")), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "rows"), 0), "city")),
                            "");
        json_decref(j);
        free(s);
        h = sheets_header_json(&v);
        assert_string_equal(h, "[\"port\",\"city\"]");
        free(h);
        sheets_values_clear(&v);
        /* An empty table is a valid file. */
        s = sheets_port_json(&v, "SHEET", "R", synced_at);
        j = json_loads(s, 0, NULL);
        assert_int_equal(json_array_size(json_object_get(j, "rows")), 0);
        json_decref(j);
        free(s);
}

static void test_url(void **state)
{
        char *u;

        u = sheets_values_url("https://sheets.googleapis.com", "1AbC-x_9", "'Port list'!A1:Z", "majorDimension=ROWS");
        assert_string_equal(u, "https://sheets.googleapis.com/v4/spreadsheets/1AbC-x_9/values/"
                               "%27Port%20list%27%21A1%3AZ?majorDimension=ROWS");
        free(u);
        u = sheets_values_url("http://127.0.0.1:8080//", "id", "Ports!A1:Z", NULL);
        assert_string_equal(u, "http://127.0.0.1:8080/v4/spreadsheets/id/values/Ports%21A1%3AZ");
        free(u);
        /* Nothing may escape the path segment: / ? # % & + and UTF-8. */
        u = sheets_values_url("http://h", "a/b", "x/../?#%&+=\xc3\xa4", "");
        assert_string_equal(u, "http://h/v4/spreadsheets/a%2Fb/values/x%2F..%2F%3F%23%25%26%2B%3D%C3%A4");
        free(u);
        assert_null(sheets_values_url("", "id", "R", NULL));
        assert_null(sheets_values_url("http://h", "", "R", NULL));
        assert_null(sheets_values_url("http://h", "id", "", NULL));
        assert_null(sheets_values_url("///", "id", "R", NULL));
        assert_null(sheets_values_url(NULL, "id", "R", NULL));
}

static void test_progress_body(void **state)
{
        int64_t now = now_seconds();
        char updated[32];
        struct queue_task tasks[2] = {
                { .id = 3, .title = (char *)"Check \"Kiel\" \xc3\xa4", .state = TASK_RUNNING, .sessions_used = 2,
                  .turns_used = 41, .cost_usd = 1.23456789, .updated_at = now },
                { .id = 9, .title = NULL, .state = TASK_NEEDS_YOU, .cost_usd = 0.1, .updated_at = 0, .parent_id = 3 },
        };
        char *s = sheets_progress_body("Progress!A1", tasks, 2, 4);
        json_t *j, *values, *row;

        assert_non_null(s);
        j = json_loads(s, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "range")), "Progress!A1");
        assert_string_equal(json_string_value(json_object_get(j, "majorDimension")), "ROWS");
        values = json_object_get(j, "values");
        assert_int_equal(json_array_size(values), 1 + 4);       /* header, 2 tasks, 2 blanking rows */
        row = json_array_get(values, 0);
        assert_int_equal(json_array_size(row), SHEETS_PROGRESS_COLUMNS);
        assert_string_equal(json_string_value(json_array_get(row, 0)), "id");
        assert_string_equal(json_string_value(json_array_get(row, 6)), "updated");
        assert_string_equal(json_string_value(json_array_get(row, 7)), "parent");
        row = json_array_get(values, 1);
        assert_int_equal(json_integer_value(json_array_get(row, 0)), 3);
        assert_string_equal(json_string_value(json_array_get(row, 1)), "Check \"Kiel\" \xc3\xa4");
        assert_string_equal(json_string_value(json_array_get(row, 2)), "running");
        assert_int_equal(json_integer_value(json_array_get(row, 3)), 2);
        assert_int_equal(json_integer_value(json_array_get(row, 4)), 41);
        assert_true(json_real_value(json_array_get(row, 5)) == 1.2346);
        assert_string_equal(json_string_value(json_array_get(row, 6)), utc(updated, now));
        assert_string_equal(json_string_value(json_array_get(row, 7)), "");   /* not a sub-task */
        row = json_array_get(values, 2);
        assert_string_equal(json_string_value(json_array_get(row, 1)), "");
        assert_string_equal(json_string_value(json_array_get(row, 2)), "needs_you");
        assert_int_equal(json_integer_value(json_array_get(row, 7)), 3);
        row = json_array_get(values, 4);
        for (size_t i = 0; i < SHEETS_PROGRESS_COLUMNS; i++)
                assert_string_equal(json_string_value(json_array_get(row, i)), "");
        /* Prints without binary noise. */
        assert_non_null(strstr(s, "1.2346,"));
        assert_non_null(strstr(s, "0.1,"));
        json_decref(j);
        free(s);

        /* A title that is not UTF-8 still gives valid JSON. */
        tasks[0].title = (char *)"bad \xff title";
        s = sheets_progress_body("P", tasks, 1, 0);
        assert_non_null(s);
        j = json_loads(s, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_array_get(json_array_get(json_object_get(j, "values"), 1), 1)),
                            "bad ? title");
        json_decref(j);
        free(s);
}

static char *error_message(const char *body)
{
        return sheets_error_message(body, strlen(body));
}

static void test_error_message(void **state)
{
        static const char google[] = "{\n  \"error\": {\n    \"code\": 403,\n    \"message\": \"The caller does not "
                                     "have permission\",\n    \"status\": \"PERMISSION_DENIED\"\n  }\n}\n";
        char *m, big[2000];

        m = sheets_error_message(google, strlen(google));
        assert_string_equal(m, "PERMISSION_DENIED: The caller does not have permission");
        free(m);
        m = error_message("{\"error\":{\"code\":404,\"message\":\"Requested entity was not found.\"}}");
        assert_string_equal(m, "Requested entity was not found.");
        free(m);
        m = error_message("{\"error\":\"invalid_grant\",\"error_description\":\"Token has been expired or "
                                 "revoked.\"}");
        assert_string_equal(m, "invalid_grant: Token has been expired or revoked.");
        free(m);
        /* Control characters cannot forge log lines. */
        m = error_message("{\"error\":{\"message\":\"a\\nb\\u001b[31mc\"}}");
        assert_string_equal(m, "a b [31mc");
        free(m);
        assert_null(error_message("<html>502</html>"));
        assert_null(error_message("{\"error\":{}}"));
        assert_null(error_message("{\"error\":{\"message\":5}}"));
        assert_null(error_message(""));
        assert_null(sheets_error_message(NULL, 0));
        /* Long messages are cut, never inside a UTF-8 sequence. */
        {
                size_t n = (size_t)snprintf(big, sizeof big, "{\"error\":{\"message\":\"x");

                for (int i = 0; i < 400; i++)
                        n += (size_t)snprintf(big + n, sizeof big - n, "\xe6\xb8\xaf");
                n += (size_t)snprintf(big + n, sizeof big - n, "\"}}");
                m = sheets_error_message(big, n);
                assert_non_null(m);
                assert_true(strlen(m) < SHEETS_ERROR_MAX);
                assert_int_equal((strlen(m) - 1) % 3, 0);
                free(m);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_ragged_rows),
                cmocka_unit_test(test_parse_empty_range),
                cmocka_unit_test(test_parse_blank_rows_skipped),
                cmocka_unit_test(test_parse_numbers_and_bools),
                cmocka_unit_test(test_parse_header_names),
                cmocka_unit_test(test_parse_missing_header),
                cmocka_unit_test(test_parse_unicode),
                cmocka_unit_test(test_parse_hostile),
                cmocka_unit_test(test_parse_limits),
                cmocka_unit_test(test_hash),
                cmocka_unit_test(test_port_json),
                cmocka_unit_test(test_url),
                cmocka_unit_test(test_progress_body),
                cmocka_unit_test(test_error_message),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
