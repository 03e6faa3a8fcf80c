/* SPDX-License-Identifier: MIT */
#include "jada/stream.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jada/log.h"
#include "jada/util.h"

/* A huge tool result must not pin its buffer for the rest of a long session:
 * after a line needed more than this, the buffer is given back. */
#define BUFFER_KEEP (1024 * 1024)

/* Distinct message ids remembered; a real session has tens (--max-turns),
 * so this only bounds the memory a hostile stream can take. Past it, turns
 * stop growing. */
#define TURN_IDS_MAX 65536

struct stream_parser {
        size_t max_line;
        bool too_long;                  /* sticky: the stream is broken */

        /* The partial line: never holds a '\n' (a feed hands complete lines
         * over as soon as it finds the newline), so no byte is scanned twice. */
        char *buf;
        size_t len;
        size_t alloc;

        /* Open-addressed set of assistant message ids, linear probing. */
        char **ids;
        size_t ids_count;
        size_t ids_alloc;               /* 0 or a power of two */

        struct stream_result result;
        struct stream_stats stats;
};

static char **strv_new_empty(void)
{
        return xcalloc(1, sizeof(char *));
}

static void result_clear(struct stream_result *r)
{
        free(r->subtype);
        free(r->terminal_reason);
        free(r->session_id);
        free(r->result);
        free(r->errors);
        strv_free(r->permission_denials);
        *r = (struct stream_result){ .model_usage_input_tokens = -1 };
}

int stream_parser_new(size_t max_line, struct stream_parser **ret)
{
        struct stream_parser *p;

        if (max_line == 0 || !ret)
                return -EINVAL;
        p = xcalloc(1, sizeof *p);
        p->max_line = max_line;
        result_clear(&p->result);
        p->result.permission_denials = strv_new_empty();
        *ret = p;
        return 0;
}

void stream_parser_free(struct stream_parser *p)
{
        if (!p)
                return;
        result_clear(&p->result);
        for (size_t i = 0; i < p->ids_alloc; i++)
                free(p->ids[i]);
        free(p->ids);
        free(p->stats.session_id);
        free(p->buf);
        free(p);
}

/* FNV-1a: ids are short and trusted to be unique, not adversarial keys. */
static uint64_t hash_id(const char *s)
{
        uint64_t h = 14695981039346656037ULL;
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return h;
}

static char **ids_slot(char **ids, size_t alloc, const char *id)
{
        size_t i = hash_id(id) & (alloc - 1);
        while (ids[i] && strcmp(ids[i], id) != 0)
                i = (i + 1) & (alloc - 1);
        return &ids[i];
}

/* One assistant message (one API request) may span several lines that share
 * message.id, so a turn is a distinct id, not a line. */
static void note_turn(struct stream_parser *p, const char *id)
{
        char **slot;

        if (p->ids_alloc > 0 && *ids_slot(p->ids, p->ids_alloc, id))
                return;
        if (p->ids_count >= TURN_IDS_MAX)
                return;
        if ((p->ids_count + 1) * 2 > p->ids_alloc) {
                size_t alloc = p->ids_alloc ? p->ids_alloc * 2 : 64;
                char **ids = xcalloc(alloc, sizeof *ids);
                for (size_t i = 0; i < p->ids_alloc; i++)
                        if (p->ids[i])
                                *ids_slot(ids, alloc, p->ids[i]) = p->ids[i];
                free(p->ids);
                p->ids = ids;
                p->ids_alloc = alloc;
        }
        slot = ids_slot(p->ids, p->ids_alloc, id);
        *slot = xstrdup(id);
        p->ids_count++;
        p->stats.turns = (unsigned)p->ids_count;
}

static char *dup_string(const json_t *v)
{
        return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

/* Counts and costs can't be negative or beyond int64; anything else the
 * stream claims is clamped rather than trusted or rejected. */
static int64_t clamp_count(const json_t *v)
{
        double d;

        if (!json_is_number(v))
                return 0;
        d = json_number_value(v);
        if (!(d > 0))
                return 0;
        if (d >= 9223372036854775807.0)
                return INT64_MAX;
        return (int64_t)d;
}

/* HTTP statuses only: anything else (null for a connection error, junk) is
 * treated as absent. */
static void note_api_status(struct stream_parser *p, const json_t *v)
{
        double d;

        if (!json_is_number(v))
                return;
        d = json_number_value(v);
        if (d >= 100 && d < 1000)
                p->stats.last_api_error_status = (int)d;
}

static void copy_word(char *dst, size_t size, const json_t *v)
{
        const char *s = json_string_value(v);
        size_t n = 0;

        /* Words like "five_hour": anything else is cut, never trusted whole. */
        for (; s && s[n] && n + 1 < size; n++) {
                char c = s[n];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '-'))
                        break;
                dst[n] = c;
        }
        dst[n] = '\0';
}

/* {"status","resetsAt","rateLimitType","utilization"}: each checked; a
 * resetsAt that is not a plausible epoch (2001 to 2286) is unknown. */
static void note_rate_limit(struct stream_parser *p, const json_t *info)
{
        struct stream_rate_limit *rl = &p->stats.rate_limit;
        const json_t *reset = json_object_get(info, "resetsAt"), *util = json_object_get(info, "utilization");
        double d;

        if (!json_is_object(info))
                return;
        *rl = (struct stream_rate_limit){ .seen = true, .utilization = -1 };
        copy_word(rl->status, sizeof rl->status, json_object_get(info, "status"));
        copy_word(rl->type, sizeof rl->type, json_object_get(info, "rateLimitType"));
        d = json_is_number(reset) ? json_number_value(reset) : 0;
        if (d >= 1e9 && d < 1e10)
                rl->resets_at = (int64_t)d;
        d = json_is_number(util) ? json_number_value(util) : -1;
        if (d >= 0 && d <= 100)
                rl->utilization = d;
}

/* A turn the API refused: "api_error" (2.1.112 writes "error" on the
 * assistant line: "rate_limit") and its rate_limit_info. */
static void note_api_error(struct stream_parser *p, const json_t *root)
{
        const json_t *e = json_object_get(root, "api_error");

        if (!json_is_string(e))
                e = json_object_get(root, "error");
        note_api_status(p, json_object_get(root, "api_error_status"));
        if (json_is_string(e))
                copy_word(p->stats.api_error, sizeof p->stats.api_error, e);
        note_rate_limit(p, json_object_get(json_object_get(root, "api_error_params"), "rate_limit_info"));
}

static char *join_errors(const json_t *errors)
{
        const char **strv;
        size_t n = 0, i;
        json_t *e;
        char *s = NULL;

        if (!json_is_array(errors))
                return NULL;
        strv = xcalloc(json_array_size(errors) + 1, sizeof *strv);
        json_array_foreach(errors, i, e)
                if (json_is_string(e))
                        strv[n++] = json_string_value(e);
        if (n > 0)
                s = strv_join(strv, "; ");
        free(strv);
        return s;
}

/* modelUsage is {"<model>": {"inputTokens": N, ...}, ...}: the sum over
 * models, or -1 when no entry reports a number (absent, {} or junk), so the
 * budget falls back to comparing costs. */
static int64_t sum_model_usage(const json_t *model_usage)
{
        const char *model;
        json_t *entry;
        int64_t sum = -1;

        json_object_foreach((json_t *)model_usage, model, entry) {
                const json_t *tokens = json_object_get(entry, "inputTokens");
                int64_t n;

                if (!json_is_number(tokens))
                        continue;
                n = clamp_count(tokens);
                if (sum < 0)
                        sum = 0;
                sum = n > INT64_MAX - sum ? INT64_MAX : sum + n;
        }
        return sum;
}

/* Entries are {"tool_name": ..., "tool_use_id": ..., "tool_input": ...};
 * a bare string is taken as the tool name too. */
static char **collect_denials(const json_t *denials)
{
        char **strv;
        size_t n = 0, i;
        json_t *e;

        if (!json_is_array(denials))
                return strv_new_empty();
        strv = xcalloc(json_array_size(denials) + 1, sizeof *strv);
        json_array_foreach(denials, i, e) {
                const json_t *name = json_is_object(e) ? json_object_get(e, "tool_name") : e;
                if (json_is_string(name))
                        strv[n++] = xstrdup(json_string_value(name));
        }
        return strv;
}

/* A later result line replaces an earlier one entirely. */
static void handle_result(struct stream_parser *p, const json_t *root)
{
        struct stream_result *r = &p->result;
        const json_t *usage = json_object_get(root, "usage");

        result_clear(r);
        r->seen = true;
        r->is_error = json_is_true(json_object_get(root, "is_error"));
        r->subtype = dup_string(json_object_get(root, "subtype"));
        r->terminal_reason = dup_string(json_object_get(root, "terminal_reason"));
        r->num_turns = clamp_count(json_object_get(root, "num_turns"));
        if (json_is_number(json_object_get(root, "total_cost_usd"))) {
                double cost = json_number_value(json_object_get(root, "total_cost_usd"));
                r->total_cost_usd = cost > 0 ? cost : 0;
        }
        if (json_is_object(usage)) {
                r->input_tokens = clamp_count(json_object_get(usage, "input_tokens"));
                r->output_tokens = clamp_count(json_object_get(usage, "output_tokens"));
                r->cache_creation_input_tokens =
                        clamp_count(json_object_get(usage, "cache_creation_input_tokens"));
                r->cache_read_input_tokens = clamp_count(json_object_get(usage, "cache_read_input_tokens"));
        }
        r->model_usage_input_tokens = sum_model_usage(json_object_get(root, "modelUsage"));
        r->session_id = dup_string(json_object_get(root, "session_id"));
        r->result = dup_string(json_object_get(root, "result"));
        r->errors = join_errors(json_object_get(root, "errors"));
        r->permission_denials = collect_denials(json_object_get(root, "permission_denials"));
}

static void handle_object(struct stream_parser *p, const json_t *root)
{
        const char *type = json_string_value(json_object_get(root, "type"));
        const char *subtype = json_string_value(json_object_get(root, "subtype"));

        if (!type)
                return;
        if (strcmp(type, "assistant") == 0) {
                const json_t *message = json_object_get(root, "message");
                const char *id = json_string_value(json_object_get(message, "id"));
                if (id && *id)
                        note_turn(p, id);
                note_api_error(p, root);
        } else if (strcmp(type, "system") == 0 && subtype) {
                if (strcmp(subtype, "init") == 0) {
                        const char *id = json_string_value(json_object_get(root, "session_id"));
                        if (id) {
                                free(p->stats.session_id);
                                p->stats.session_id = xstrdup(id);
                        }
                } else if (strcmp(subtype, "api_retry") == 0)
                        note_api_status(p, json_object_get(root, "error_status"));
        } else if (strcmp(type, "result") == 0) {
                handle_result(p, root);
                note_api_error(p, root);
        } else if (strcmp(type, "rate_limit_event") == 0)
                note_rate_limit(p, json_object_get(root, "rate_limit_info"));
}

#define RATE_LIMIT_TAG "{\"type\":\"rate_limit_event\""

/* One CLI version wrote a rate_limit_event into the middle of another
 * line: the line is lost (counted bad), but the event inside is not. */
static void rescue_rate_limit_event(struct stream_parser *p, const char *line, size_t len)
{
        const char *at = memmem(line, len, RATE_LIMIT_TAG, sizeof RATE_LIMIT_TAG - 1);
        json_error_t error;
        json_t *root;

        if (!at)
                return;
        root = json_loadb(at, len - (size_t)(at - line), JSON_DISABLE_EOF_CHECK | JSON_DECODE_INT_AS_REAL, &error);
        if (json_is_object(root))
                note_rate_limit(p, json_object_get(root, "rate_limit_info"));
        json_decref(root);
}

static bool has_prefix(const char *line, size_t len, const char *prefix, size_t prefix_len)
{
        return len >= prefix_len && memcmp(line, prefix, prefix_len) == 0;
}

/* Message ids are like "msg_01XFDUDYJgAACzvnptvVoYEL" or a UUID; ASCII by
 * hand, since isalnum() follows the locale. */
static bool is_id_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '-';
}

/* The huge lines of a session are tool results ("user" lines, nothing we
 * need) and tool calls ("assistant" lines, of which we need message.id and
 * a possible api_error_status). The CLI writes "type" first and, for normal
 * messages, message.id next, so both are handled without a parse when the
 * line has exactly that shape; anything else (an escaped id, a key order we
 * don't expect, a mention of api_error_status anywhere) takes the full parse.
 * Only the ends of a skipped line are checked, so a line cut short still goes
 * to the parse and counts as bad unless it happens to end in '}'.
 * Returns true if the line was handled. */
static bool handle_cheaply(struct stream_parser *p, const char *line, size_t len)
{
        static const char user[] = "{\"type\":\"user\",";
        static const char assistant[] = "{\"type\":\"assistant\",\"message\":{\"id\":\"";
        static const char status[] = "api_error_status";
        char id[128];
        size_t n = 0;

        if (line[len - 1] != '}')
                return false;
        if (has_prefix(line, len, user, sizeof user - 1))
                return !memmem(line, len, RATE_LIMIT_TAG, sizeof RATE_LIMIT_TAG - 1);
        if (!has_prefix(line, len, assistant, sizeof assistant - 1))
                return false;
        line += sizeof assistant - 1;
        len -= sizeof assistant - 1;
        while (n < len && n < sizeof id - 1 && is_id_char(line[n]))
                n++;
        if (n == 0 || n + 1 >= len || line[n] != '"' || (line[n + 1] != ',' && line[n + 1] != '}'))
                return false;
        if (memmem(line + n, len - n, status, sizeof status - 1))
                return false;
        if (memmem(line + n, len - n, RATE_LIMIT_TAG, sizeof RATE_LIMIT_TAG - 1))
                return false;
        memcpy(id, line, n);
        id[n] = '\0';
        note_turn(p, id);
        return true;
}

static void parse_line(struct stream_parser *p, const char *line, size_t len)
{
        json_error_t error;
        json_t *root;

        if (len > 0 && line[len - 1] == '\r')
                len--;
        if (len == 0)
                return;
        p->stats.lines++;
        if (memchr(line, '\0', len)) {
                p->stats.bad_lines++;
                log_debug("stream: line %llu has a NUL byte, skipped", (unsigned long long)p->stats.lines);
                return;
        }
        if (handle_cheaply(p, line, len))
                return;

        /* Integers as reals, so an absurd count clamps instead of failing
         * the whole line; \u0000 allowed so a result text holding one is not
         * lost (it is cut there). */
        root = json_loadb(line, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &error);
        if (!json_is_object(root)) {
                p->stats.bad_lines++;
                /* error.text may quote the input: position only. */
                log_debug("stream: line %llu (%zu bytes) is not a JSON object (at byte %d), skipped",
                          (unsigned long long)p->stats.lines, len, root ? 0 : error.position);
                json_decref(root);
                rescue_rate_limit_event(p, line, len);
                return;
        }
        handle_object(p, root);
        json_decref(root);
}

static void buffer_append(struct stream_parser *p, const char *data, size_t size)
{
        size_t need = p->len + size;

        if (need > p->alloc) {
                size_t alloc = p->alloc > 4096 ? p->alloc : 4096;
                while (alloc < need)
                        alloc *= 2;
                if (alloc > p->max_line)
                        alloc = p->max_line;
                p->buf = xreallocarray(p->buf, alloc, 1);
                p->alloc = alloc;
        }
        memcpy(p->buf + p->len, data, size);
        p->len = need;
}

int stream_parser_feed(struct stream_parser *p, const char *data, size_t size)
{
        const char *end;

        if (p->too_long)
                return -E2BIG;
        if (size == 0)
                return 0;               /* data may be NULL */
        end = data + size;
        while (data < end) {
                const char *nl = memchr(data, '\n', (size_t)(end - data));
                size_t n = (size_t)((nl ? nl : end) - data);

                /* The cap counts the bytes before '\n' ('\r' included). */
                if (n > p->max_line - p->len) {
                        p->too_long = true;
                        log_debug("stream: line %llu exceeds %zu bytes", (unsigned long long)p->stats.lines + 1,
                                  p->max_line);
                        return -E2BIG;
                }
                if (!nl) {
                        buffer_append(p, data, n);
                        p->stats.bytes += n;
                        break;
                }
                if (p->len > 0) {
                        buffer_append(p, data, n);
                        parse_line(p, p->buf, p->len);
                        p->len = 0;
                        if (p->alloc > BUFFER_KEEP) {
                                p->buf = mfree(p->buf);
                                p->alloc = 0;
                        }
                } else
                        /* The common case: a whole line inside this piece, parsed in place. */
                        parse_line(p, data, n);
                p->stats.bytes += n + 1;
                data = nl + 1;
        }
        return 0;
}

int stream_parser_finish(struct stream_parser *p)
{
        if (p->too_long)
                return -E2BIG;
        if (p->len > 0) {
                parse_line(p, p->buf, p->len);
                p->len = 0;
        }
        return 0;
}

const struct stream_result *stream_parser_result(const struct stream_parser *p)
{
        return &p->result;
}

const struct stream_stats *stream_parser_stats(const struct stream_parser *p)
{
        return &p->stats;
}

char *stream_find_needs_you(const char *text)
{
        static const char tag[] = "NEEDS-YOU:";

        for (const char *line = text; line && *line;) {
                const char *eol = strchrnul(line, '\n'), *s = line;

                while (s < eol && (*s == ' ' || *s == '\t'))
                        s++;
                if ((size_t)(eol - s) >= sizeof tag - 1 && memcmp(s, tag, sizeof tag - 1) == 0) {
                        const char *e = eol;

                        s += sizeof tag - 1;
                        while (s < e && (*s == ' ' || *s == '\t'))
                                s++;
                        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                                e--;
                        return e > s ? xstrndup(s, (size_t)(e - s)) : xstrdup("no reason given");
                }
                line = *eol ? eol + 1 : eol;
        }
        return NULL;
}
