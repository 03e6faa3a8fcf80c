/* SPDX-License-Identifier: MIT */
#include "jada/sheets.h"
#include "jada/http.h"
#include "jada/util.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_error(char *error, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_error(char *error, size_t size, const char *fmt, ...)
{
        va_list ap;

        if (!error || size == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(error, size, fmt, ap);
        va_end(ap);
}

const char *sheets_cell(const struct sheets_values *values, size_t row, size_t column)
{
        const char *s;

        if (row >= values->n_rows || column >= values->n_columns)
                return "";
        s = values->cells[row * values->n_columns + column];
        return s ? s : "";
}

void sheets_values_clear(struct sheets_values *values)
{
        if (!values)
                return;
        for (size_t i = 0; i < values->n_columns; i++)
                free(values->columns[i]);
        free(values->columns);
        if (values->cells)
                for (size_t i = 0; i < values->n_rows * values->n_columns; i++)
                        free(values->cells[i]);
        free(values->cells);
        free(values->row_numbers);
        memset(values, 0, sizeof *values);
}

/* Whether a cell shows anything; -1 for a cell that cannot be one. */
static int cell_nonempty(const json_t *cell)
{
        switch (json_typeof(cell)) {
        case JSON_STRING:
                return json_string_length(cell) > 0;
        case JSON_INTEGER: case JSON_REAL: case JSON_TRUE: case JSON_FALSE:
                return 1;
        case JSON_NULL:
                return 0;
        default:
                return -1;
        }
}

/* The cell's text as Sheets would show it; NULL for an empty one. Only
 * called on cells cell_nonempty() accepted. */
static char *cell_text(const json_t *cell)
{
        switch (json_typeof(cell)) {
        case JSON_STRING:
                return json_string_length(cell) > 0 ? xstrndup(json_string_value(cell), json_string_length(cell))
                                                    : NULL;
        case JSON_INTEGER:
                return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(cell));
        case JSON_REAL:
                return xasprintf("%.15g", json_real_value(cell));
        case JSON_TRUE:
                return xstrdup("TRUE");
        case JSON_FALSE:
                return xstrdup("FALSE");
        default:
                return NULL;
        }
}

static bool blank(const char *s)
{
        for (; s && *s; s++)
                if (*s != ' ' && *s != '\t')
                        return false;
        return true;
}

/* Unique, non-empty column names (see struct sheets_values). "seen" maps
 * each name taken to the next suffix to try for it, which keeps a header of
 * thousands of equal names linear instead of quadratic. */
static int name_columns(struct sheets_values *v, const json_t *header)
{
        json_t *seen = json_object();

        if (!seen)
                return -ENOMEM;
        for (size_t i = 0; i < v->n_columns; i++) {
                char *name = i < json_array_size(header) ? cell_text(json_array_get(header, i)) : NULL;
                json_t *next;

                if (blank(name)) {
                        free(name);
                        name = xasprintf("column_%zu", i + 1);
                        v->n_renamed++;
                }
                next = json_object_get(seen, name);
                if (next) {
                        json_int_t k = json_integer_value(next);
                        char *candidate = xasprintf("%s_%" JSON_INTEGER_FORMAT, name, k);

                        while (json_object_get(seen, candidate)) {
                                free(candidate);
                                candidate = xasprintf("%s_%" JSON_INTEGER_FORMAT, name, ++k);
                        }
                        json_object_set_new(seen, name, json_integer(k + 1));
                        free(name);
                        name = candidate;
                        v->n_renamed++;
                }
                if (json_object_set_new(seen, name, json_integer(2)) < 0) {
                        free(name);
                        json_decref(seen);
                        return -ENOMEM;
                }
                v->columns[i] = name;
        }
        json_decref(seen);
        return 0;
}

int sheets_values_parse(const char *body, size_t len, struct sheets_values *ret, char *error,
                        size_t error_size)
{
        struct sheets_values v = { 0 };
        json_error_t jerr;
        json_t *root, *rows, *dim, *header = NULL, *row;
        size_t n_raw, width = 0, n_keep = 0, k = 0, i;
        int r = -EBADMSG;

        memset(ret, 0, sizeof *ret);
        root = json_loadb(body ? body : "", len, 0, &jerr);
        if (!root) {
                set_error(error, error_size, "the answer is not JSON (%s at line %d column %d)", jerr.text,
                          jerr.line, jerr.column);
                return -EBADMSG;
        }
        if (!json_is_object(root)) {
                set_error(error, error_size, "the answer is not a JSON object");
                goto out;
        }
        dim = json_object_get(root, "majorDimension");
        if (dim && (!json_is_string(dim) || strcmp(json_string_value(dim), "ROWS") != 0)) {
                set_error(error, error_size, "majorDimension is not \"ROWS\"");
                goto out;
        }
        rows = json_object_get(root, "values");
        if (!rows) {            /* an empty range: Google leaves "values" out */
                r = 0;
                goto out;
        }
        if (!json_is_array(rows)) {
                set_error(error, error_size, "\"values\" is not an array");
                goto out;
        }
        n_raw = json_array_size(rows);
        json_array_foreach(rows, i, row) {
                size_t j;
                json_t *cell;
                bool nonempty = false;

                if (!json_is_array(row)) {
                        set_error(error, error_size, "values[%zu] is not an array", i);
                        goto out;
                }
                json_array_foreach(row, j, cell) {
                        int ne = cell_nonempty(cell);

                        if (ne < 0) {
                                set_error(error, error_size, "values[%zu][%zu] is an %s, not a cell value", i, j,
                                          json_is_object(cell) ? "object" : "array");
                                goto out;
                        }
                        nonempty |= ne;
                }
                if (json_array_size(row) > width)
                        width = json_array_size(row);
                if (i == 0) {
                        header = row;
                        if (!nonempty)
                                header = NULL;  /* no names: an error if data follows */
                } else if (nonempty)
                        n_keep++;
        }
        if (width > SHEETS_MAX_COLUMNS) {
                set_error(error, error_size, "%zu columns, more than Sheets allows (%u)", width,
                          (unsigned)SHEETS_MAX_COLUMNS);
                r = -E2BIG;
                goto out;
        }
        if (n_raw == 0 || (!header && n_keep == 0)) {
                r = 0;                  /* nothing at all, or only blank rows */
                goto out;
        }
        if (!header) {
                set_error(error, error_size, "the header row (the range's first row) is empty");
                goto out;
        }
        if (n_keep * width > SHEETS_MAX_CELLS) {
                set_error(error, error_size, "%zu rows of %zu columns, more than %u cells", n_keep, width,
                          (unsigned)SHEETS_MAX_CELLS);
                r = -E2BIG;
                goto out;
        }

        v.n_columns = width;
        v.columns = xcalloc(width, sizeof *v.columns);
        r = name_columns(&v, header);
        if (r < 0)
                goto out;
        v.cells = xcalloc(n_keep * width > 0 ? n_keep * width : 1, sizeof *v.cells);
        v.row_numbers = xcalloc(n_keep ? n_keep : 1, sizeof *v.row_numbers);
        for (i = 1; i < n_raw; i++) {
                json_t *cell;
                size_t j;
                bool nonempty = false;

                row = json_array_get(rows, i);
                json_array_foreach(row, j, cell)
                        nonempty |= cell_nonempty(cell) > 0;
                if (!nonempty)
                        continue;
                json_array_foreach(row, j, cell)
                        v.cells[k * width + j] = cell_text(cell);
                v.row_numbers[k++] = i;
                v.n_rows = k;
        }
        *ret = v;
        memset(&v, 0, sizeof v);
        r = 0;
out:
        sheets_values_clear(&v);
        json_decref(root);
        return r;
}

static void hash_u64(EVP_MD_CTX *ctx, uint64_t x)
{
        unsigned char b[8];

        for (int i = 0; i < 8; i++)
                b[i] = (unsigned char)(x >> (8 * i));
        EVP_DigestUpdate(ctx, b, sizeof b);
}

static void hash_str(EVP_MD_CTX *ctx, const char *s)
{
        size_t n = strlen(s);

        hash_u64(ctx, n);
        EVP_DigestUpdate(ctx, s, n);
}

int sheets_values_hash(const struct sheets_values *values, const char *spreadsheet_id,
                       const char *range, char ret[65])
{
        static const char tag[] = "jada-port-sheet-v1";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok;

        if (!ctx)
                return -ENOMEM;
        ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        if (ok) {
                hash_str(ctx, tag);
                hash_str(ctx, spreadsheet_id);
                hash_str(ctx, range);
                hash_u64(ctx, values->n_columns);
                for (size_t i = 0; i < values->n_columns; i++)
                        hash_str(ctx, values->columns[i]);
                hash_u64(ctx, values->n_rows);
                for (size_t i = 0; i < values->n_rows; i++) {
                        hash_u64(ctx, values->row_numbers[i]);
                        for (size_t j = 0; j < values->n_columns; j++)
                                hash_str(ctx, sheets_cell(values, i, j));
                }
                ok = EVP_DigestFinal_ex(ctx, md, &md_len);
        }
        EVP_MD_CTX_free(ctx);
        if (!ok || md_len != 32)
                return -EIO;
        for (unsigned i = 0; i < md_len; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}

/* Strings here came out of jansson or are ASCII, so json_string() cannot
 * fail on them for encoding; a NULL from it means out of memory. */
static char *dump(json_t *j, size_t flags)
{
        char *s = j ? json_dumps(j, flags | JSON_COMPACT) : NULL;

        json_decref(j);
        return s;
}

static json_t *header_array(const struct sheets_values *values)
{
        json_t *a = json_array();

        for (size_t i = 0; a && i < values->n_columns; i++)
                if (json_array_append_new(a, json_string(values->columns[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static json_t *row_object(const struct sheets_values *values, size_t row)
{
        json_t *o = json_object();

        for (size_t j = 0; o && j < values->n_columns; j++)
                if (json_object_set_new(o, values->columns[j], json_string(sheets_cell(values, row, j))) < 0) {
                        json_decref(o);
                        return NULL;
                }
        return o;
}

char *sheets_header_json(const struct sheets_values *values)
{
        return dump(header_array(values), 0);
}

char *sheets_row_json(const struct sheets_values *values, size_t row)
{
        return dump(row_object(values, row), 0);
}

char *sheets_port_json(const struct sheets_values *values, const char *spreadsheet_id,
                       const char *range, const char *synced_at)
{
        json_t *root = json_object(), *rows = json_array();
        char *s;

        if (!root || !rows)
                goto fail;
        if (json_object_set_new(root, "synced_at", json_string(synced_at)) < 0 ||
            json_object_set_new(root, "spreadsheet_id", json_string(spreadsheet_id)) < 0 ||
            json_object_set_new(root, "range", json_string(range)) < 0 ||
            json_object_set_new(root, "columns", header_array(values)) < 0)
                goto fail;
        for (size_t i = 0; i < values->n_rows; i++)
                if (json_array_append_new(rows, row_object(values, i)) < 0)
                        goto fail;
        if (json_object_set(root, "rows", rows) < 0)
                goto fail;
        json_decref(rows);
        s = json_dumps(root, JSON_INDENT(1));
        json_decref(root);
        if (!s)
                return NULL;
        /* A file ends with a newline. */
        {
                char *t = xasprintf("%s\n", s);

                free(s);
                return t;
        }
fail:
        json_decref(rows);
        json_decref(root);
        return NULL;
}

char *sheets_values_url(const char *api_url, const char *spreadsheet_id, const char *range,
                        const char *query)
{
        _cleanup_free_ char *id = NULL, *r = NULL;
        size_t base;

        if (!api_url || !spreadsheet_id || !range || !*api_url || !*spreadsheet_id || !*range)
                return NULL;
        base = strlen(api_url);
        while (base > 0 && api_url[base - 1] == '/')
                base--;
        if (base == 0)
                return NULL;
        id = http_escape(spreadsheet_id);
        r = http_escape(range);
        return xasprintf("%.*s/v4/spreadsheets/%s/values/%s%s%s", (int)base, api_url, id, r,
                         query && *query ? "?" : "", query && *query ? query : "");
}

/* Text that is not valid UTF-8 (titles from older rows, say) would make
 * json_string() fail: keep its ASCII and mark the rest. */
static json_t *json_text(const char *s)
{
        json_t *j;
        char *copy;

        if (!s)
                s = "";
        j = json_string(s);
        if (j)
                return j;
        copy = xstrdup(s);
        for (char *p = copy; *p; p++)
                if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
                        *p = '?';
        j = json_string(copy);
        free(copy);
        return j;
}

char *sheets_progress_body(const char *range, const struct queue_task *tasks, size_t n_tasks,
                           size_t pad_rows)
{
        static const char *const head[SHEETS_PROGRESS_COLUMNS] = {
                "id", "title", "state", "sessions", "turns", "cost", "updated", "parent",
        };
        json_t *root = json_object(), *values = json_array(), *row;
        bool bad = !root || !values;

        row = json_array();
        for (size_t j = 0; row && j < SHEETS_PROGRESS_COLUMNS; j++)
                bad |= json_array_append_new(row, json_string(head[j])) < 0;
        bad |= !row || json_array_append_new(values, row) < 0;
        for (size_t i = 0; !bad && i < n_tasks; i++) {
                const struct queue_task *t = &tasks[i];
                char updated[32], cost[32];

                format_utc(updated, sizeof updated, (uint64_t)(t->updated_at > 0 ? t->updated_at : 0) * 1000000u);
                /* Four decimals: cents and a little, without binary noise. */
                snprintf(cost, sizeof cost, "%.4f", isfinite(t->cost_usd) ? t->cost_usd : 0.0);
                row = json_array();
                bad |= !row || json_array_append_new(row, json_integer(t->id)) < 0 ||
                       json_array_append_new(row, json_text(t->title)) < 0 ||
                       json_array_append_new(row, json_string(task_state_name(t->state))) < 0 ||
                       json_array_append_new(row, json_integer(t->sessions_used)) < 0 ||
                       json_array_append_new(row, json_integer(t->turns_used)) < 0 ||
                       json_array_append_new(row, json_real(strtod(cost, NULL))) < 0 ||
                       json_array_append_new(row, json_string(updated)) < 0 ||
                       json_array_append_new(row, t->parent_id ? json_integer(t->parent_id) : json_string("")) < 0 ||
                       json_array_append_new(values, row) < 0;
        }
        for (size_t i = n_tasks; !bad && i < pad_rows; i++) {
                row = json_array();
                for (size_t j = 0; row && j < SHEETS_PROGRESS_COLUMNS; j++)
                        bad |= json_array_append_new(row, json_string("")) < 0;
                bad |= !row || json_array_append_new(values, row) < 0;
        }
        if (!bad)
                bad = json_object_set_new(root, "range", json_text(range)) < 0 ||
                      json_object_set_new(root, "majorDimension", json_string("ROWS")) < 0 ||
                      json_object_set(root, "values", values) < 0;
        json_decref(values);
        if (bad) {
                json_decref(root);
                return NULL;
        }
        return dump(root, JSON_REAL_PRECISION(12));
}

/* Copies at most max-1 bytes of s, control characters as spaces, never
 * cutting a UTF-8 sequence in two. */
static void append_clean(char *buf, size_t max, const char *s)
{
        size_t n = strlen(buf);

        for (; *s && n + 1 < max; s++)
                buf[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
        if (*s && n > 0) {      /* cut: drop a sequence left incomplete */
                size_t i = n - 1, need;
                unsigned char lead;

                while (i > 0 && ((unsigned char)buf[i] & 0xc0) == 0x80)
                        i--;
                lead = (unsigned char)buf[i];
                need = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
                if (i + need > n)
                        n = i;
        }
        buf[n] = '\0';
}

char *sheets_error_message(const char *body, size_t len)
{
        json_t *root, *err, *message = NULL, *status = NULL;
        char buf[SHEETS_ERROR_MAX] = "";

        if (!body || len == 0)
                return NULL;
        root = json_loadb(body, len, 0, NULL);
        if (!root)
                return NULL;
        err = json_object_get(root, "error");
        if (json_is_object(err)) {              /* Google APIs' error format */
                message = json_object_get(err, "message");
                status = json_object_get(err, "status");
        } else if (json_is_string(err)) {       /* OAuth's: error, error_description */
                status = err;
                message = json_object_get(root, "error_description");
        }
        if (json_is_string(status) && json_string_length(status) > 0) {
                append_clean(buf, sizeof buf, json_string_value(status));
                if (json_is_string(message) && json_string_length(message) > 0)
                        append_clean(buf, sizeof buf, ": ");
        }
        if (json_is_string(message))
                append_clean(buf, sizeof buf, json_string_value(message));
        json_decref(root);
        return *buf ? xstrdup(buf) : NULL;
}
