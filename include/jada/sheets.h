/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jada/queue.h"

/*
 * The Google Sheets API v4 as the port-sheet sync uses it: pure functions
 * (no I/O, no loop, no db) from URLs and response bodies to structs and
 * back, so they can be unit-tested and fuzzed. sync.c does the talking.
 *
 * values.get answers {"range": "...", "majorDimension": "ROWS",
 * "values": [["a","b"], ["c"], []]}: every row is an array of strings,
 * trailing empty cells and trailing empty rows are omitted, and an empty
 * range has no "values" key at all.
 */

/* Sheets' own limit is 18278 columns (ZZZ); the cell cap keeps a hostile
 * body (many short ragged rows under a wide header) from growing into
 * gigabytes once padded. */
#define SHEETS_MAX_COLUMNS 18278
#define SHEETS_MAX_CELLS   (512u * 1024u)
#define SHEETS_ERROR_MAX   256

/* The fetched table. The first sheet row names the columns; rows are the
 * ones below it, padded to n_columns. Column names are unique and never
 * empty: an empty header cell (or a data cell beyond the header) is named
 * "column_N", N its 1-based position in the range; a repeated name gets
 * "_2", "_3", ... (the first keeps its name). Renaming instead of failing:
 * a blank separator column or a copy-pasted heading must not stop the
 * sync. n_renamed counts them so the caller can warn.
 * Rows whose cells are all empty are skipped; row_numbers[i] is the
 * 1-based position of rows[i] below the header, so gaps stay visible. */
struct sheets_values {
        char **columns;
        size_t n_columns;
        size_t n_renamed;
        size_t n_rows;
        char **cells;                   /* n_rows * n_columns, row-major; NULL is "" */
        size_t *row_numbers;
};

/* The cell at (row, column), "" for a padded one. */
const char *sheets_cell(const struct sheets_values *values, size_t row, size_t column);

/* Parses a values.get body. Cells that are numbers or booleans become their
 * text ("3", "2.5", "TRUE"), null becomes ""; an object or array cell, a
 * body that is not JSON, "values" that is not an array of arrays, a header
 * row with no names while data follows, or more than SHEETS_MAX_* is an
 * error: -EBADMSG (or -E2BIG) with a one-line reason in error. */
int sheets_values_parse(const char *body, size_t len, struct sheets_values *ret, char *error,
                        size_t error_size);
void sheets_values_clear(struct sheets_values *values);

/* SHA-256 (lowercase hex, 64 chars + NUL) of a canonical form of the table
 * and where it came from: a format tag, the spreadsheet id, the range, the
 * columns and the padded rows, each string length-prefixed. Independent of
 * the body's whitespace, key order and Google's trimming of empty cells. */
int sheets_values_hash(const struct sheets_values *values, const char *spreadsheet_id,
                       const char *range, char ret[65]);

/* JSON texts, NUL-terminated, for the caller to free (NULL only if out of
 * memory). The header as an array of names; row i as an object keyed by
 * the column names, in column order. */
char *sheets_header_json(const struct sheets_values *values);
char *sheets_row_json(const struct sheets_values *values, size_t row);
/* STATE/port-sheet.json: {"synced_at": ISO 8601 UTC, "spreadsheet_id",
 * "range", "columns": [...], "rows": [{column: value}, ...]}. */
char *sheets_port_json(const struct sheets_values *values, const char *spreadsheet_id,
                       const char *range, const char *synced_at);

/* "{api_url}/v4/spreadsheets/{id}/values/{range}" with the id and the range
 * percent-encoded as path segments (all but RFC 3986's unreserved
 * characters: "'Port list'!A1:Z" → "%27Port%20list%27%21A1%3AZ"), a
 * trailing "/" of api_url dropped, and query (without "?", may be NULL)
 * appended as given. NULL when api_url, id or range is empty. */
char *sheets_values_url(const char *api_url, const char *spreadsheet_id, const char *range,
                        const char *query);

/* The progress table for values.update (valueInputOption=RAW):
 * {"range", "majorDimension": "ROWS", "values": [["id", "title", "state",
 * "sessions", "turns", "cost", "updated", "parent"], one row per task]}
 * (parent: the id of the task it is a sub-task of, or ""), then rows
 * of "" up to pad_rows data rows, so that rows of tasks pruned since the
 * last push are blanked instead of left behind. updated is ISO 8601 UTC. */
char *sheets_progress_body(const char *range, const struct queue_task *tasks, size_t n_tasks,
                           size_t pad_rows);
#define SHEETS_PROGRESS_COLUMNS 8

/* Google's error text from an error body {"error": {"code": 403, "message":
 * "...", "status": "PERMISSION_DENIED"}} as "PERMISSION_DENIED: message",
 * control characters replaced by spaces, at most SHEETS_ERROR_MAX bytes;
 * NULL when the body has none. */
char *sheets_error_message(const char *body, size_t len);
