/* SPDX-License-Identifier: MIT */
/* The Sheets API's answers (sheets_values_parse, sheets_error_message) as
 * a hostile or broken server could send them. No crash, no leak, and the
 * header's promises: a table within the caps with unique, non-empty column
 * names, JSON out that parses back, or an error with a reason and nothing
 * left allocated; an error text cut to size, clean and valid UTF-8. */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "jada/log.h"
#include "jada/sheets.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        log_set_max_priority(LOG_WARNING);
        return 0;
}

static void check_json(char *text)
{
        json_t *j;

        fuzz_check(text);
        j = json_loads(text, 0, NULL);
        fuzz_check(j);
        json_decref(j);
        free(text);
}

static void check_table(const struct sheets_values *v)
{
        char hash[65];

        fuzz_check(v->n_columns <= SHEETS_MAX_COLUMNS);
        fuzz_check(v->n_rows * v->n_columns <= SHEETS_MAX_CELLS);
        fuzz_check(v->n_rows == 0 || v->n_columns > 0);
        fuzz_check(v->n_renamed <= v->n_columns);
        for (size_t i = 0; i < v->n_columns; i++) {
                fuzz_check(v->columns[i] && *v->columns[i]);
                /* Quadratic, so only for tables a fuzzer input makes quickly. */
                for (size_t j = i + 1; v->n_columns <= 512 && j < v->n_columns; j++)
                        fuzz_check(strcmp(v->columns[i], v->columns[j]) != 0);
        }
        for (size_t r = 0; r < v->n_rows; r++) {
                bool any = false;

                fuzz_check(v->row_numbers[r] >= 1);
                fuzz_check(r == 0 || v->row_numbers[r] > v->row_numbers[r - 1]);
                for (size_t c = 0; c < v->n_columns; c++)
                        any |= *sheets_cell(v, r, c) != '\0';
                fuzz_check(any);        /* all-empty rows are skipped */
        }
        fuzz_check(*sheets_cell(v, v->n_rows, v->n_columns) == '\0');
        fuzz_check(sheets_values_hash(v, "1AbC", "Ports!A1:Z", hash) == 0);
        fuzz_check(strlen(hash) == 64);
        check_json(sheets_header_json(v));
        for (size_t r = 0; r < v->n_rows && r < 64; r++)
                check_json(sheets_row_json(v, r));
        check_json(sheets_port_json(v, "1AbC", "Ports!A1:Z", "2024-01-01T00:00:00Z"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct sheets_values v;
        char error[SHEETS_ERROR_MAX];
        char *body, *message;
        int r;

        /* Exact-size copy so a read past len is seen; NULL for an empty one. */
        body = size ? malloc(size) : NULL;
        if (size)
                memcpy(body, data, size);

        memset(error, 'x', sizeof error);
        r = sheets_values_parse(body, size, &v, error, sizeof error);
        if (r == 0) {
                check_table(&v);
                sheets_values_clear(&v);
        } else {
                fuzz_check(r == -EBADMSG || r == -E2BIG);
                fuzz_check(memchr(error, '\0', sizeof error) && *error);
                fuzz_check(v.n_rows + v.n_columns == 0 && !v.cells && !v.columns && !v.row_numbers);
        }
        sheets_values_clear(&v);        /* idempotent */

        message = sheets_error_message(body, size);
        if (message) {
                fuzz_check(*message);
                fuzz_check(strlen(message) < SHEETS_ERROR_MAX);
                fuzz_check(!fuzz_has_control(message));
                fuzz_check(fuzz_utf8_valid(message));
                free(message);
        }
        free(body);
        return 0;
}
