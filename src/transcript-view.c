/* SPDX-License-Identifier: MIT */
/* A transcript for a person (transcript.h: transcript_render). Everything
 * shown is the agent's or a tool's output: control characters are replaced,
 * long texts cut. */
#include "jada/transcript.h"
#include "jada/util.h"

#include <jansson.h>
#include <string.h>

#define SUMMARY_MAX 120                 /* a tool call's one-line summary */
#define RESULT_LINES 3                  /* the head of a tool result */
#define RESULT_LINE_MAX 160

/* Prints s (n bytes) on one line, or up to max_lines lines, each cut at
 * width bytes (at a UTF-8 boundary), control characters as spaces. */
static void put_text(FILE *f, const char *prefix, const char *s, size_t n, unsigned max_lines, size_t width)
{
        unsigned lines = 0;

        while (n > 0 && lines < max_lines) {
                const char *nl = memchr(s, '\n', n);
                size_t k = nl ? (size_t)(nl - s) : n, shown = k < width ? k : width;

                while (shown < k && shown > 0 && ((unsigned char)s[shown] & 0xc0) == 0x80)
                        shown--;
                fputs(prefix, f);
                for (size_t i = 0; i < shown; i++)
                        fputc((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i], f);
                /* Cut, or (in one line) more lines follow: said on the line. */
                if (shown < k || (max_lines == 1 && nl && k + 1 < n))
                        fputs(" …", f);
                fputc('\n', f);
                lines++;
                if (!nl)
                        return;
                s = nl + 1;
                n -= k + 1;
        }
        if (n > 0 && lines == max_lines && max_lines > 1)
                fprintf(f, "%s…\n", prefix);
}

/* A tool call in one line: the input field that says what it does. */
static void tool_summary(FILE *f, const char *name, json_t *input)
{
        static const char *const keys[] = { "command", "file_path", "path", "pattern", "url", "query",
                                            "description", "prompt", NULL };
        const char *v = NULL;
        char *dump = NULL;

        for (size_t i = 0; keys[i] && !v; i++)
                v = json_string_value(json_object_get(input, keys[i]));
        if (!v) {
                dump = json_dumps(input, JSON_COMPACT);
                v = dump ? dump : "";
        }
        {
                _cleanup_free_ char *prefix = xasprintf("  → %s: ", name ? name : "tool");
                put_text(f, prefix, v, strlen(v), 1, SUMMARY_MAX);
        }
        free(dump);
}

static void tool_result(FILE *f, json_t *block)
{
        json_t *content = json_object_get(block, "content");
        bool error = json_is_true(json_object_get(block, "is_error"));
        const char *prefix = error ? "  ← error: " : "  ← ";

        if (json_is_string(content)) {
                put_text(f, prefix, json_string_value(content), json_string_length(content), RESULT_LINES,
                         RESULT_LINE_MAX);
                return;
        }
        if (json_is_array(content)) {
                size_t i;
                json_t *c;
                json_array_foreach(content, i, c) {
                        json_t *t = json_object_get(c, "text");
                        if (json_is_string(t)) {
                                put_text(f, prefix, json_string_value(t), json_string_length(t), RESULT_LINES,
                                         RESULT_LINE_MAX);
                                return;
                        }
                }
        }
        fprintf(f, "%s(no text)\n", prefix);
}

static void assistant(struct transcript_view *v, json_t *root)
{
        json_t *message = json_object_get(root, "message"), *content = json_object_get(message, "content"), *b;
        const char *id = json_string_value(json_object_get(message, "id"));
        size_t i;

        if (id && strcmp(id, v->last_message_id) != 0) {
                snprintf(v->last_message_id, sizeof v->last_message_id, "%s", id);
                fprintf(v->out, "[turn %u]\n", ++v->turn);
        }
        json_array_foreach(content, i, b) {
                const char *type = json_string_value(json_object_get(b, "type"));
                if (!type)
                        continue;
                if (strcmp(type, "text") == 0) {
                        json_t *t = json_object_get(b, "text");
                        put_text(v->out, "  ", json_string_value(t) ?: "", json_string_length(t), 1000, 1000);
                } else if (strcmp(type, "tool_use") == 0) {
                        tool_summary(v->out, json_string_value(json_object_get(b, "name")),
                                     json_object_get(b, "input"));
                }
        }
}

static void result(struct transcript_view *v, json_t *root)
{
        const char *subtype = json_string_value(json_object_get(root, "subtype")) ?: "?";
        json_t *text = json_object_get(root, "result"), *cost = json_object_get(root, "total_cost_usd");

        fprintf(v->out, "== result: %s%s, %lld turns, $%.4f\n", subtype,
                json_is_true(json_object_get(root, "is_error")) ? " (error)" : "",
                (long long)json_number_value(json_object_get(root, "num_turns")),
                json_is_number(cost) ? json_number_value(cost) : 0.0);
        if (json_is_string(text))
                put_text(v->out, "  ", json_string_value(text), json_string_length(text), 1000, 1000);
}

void transcript_render(struct transcript_view *v, const char *text, size_t len)
{
        json_t *root = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, NULL);
        const char *type = json_string_value(json_object_get(root, "type"));
        const char *subtype = json_string_value(json_object_get(root, "subtype"));

        if (!type) {
                put_text(v->out, "?? ", text, len, 1, RESULT_LINE_MAX);
        } else if (strcmp(type, "assistant") == 0) {
                assistant(v, root);
        } else if (strcmp(type, "user") == 0) {
                json_t *content = json_object_get(json_object_get(root, "message"), "content"), *b;
                size_t i;
                json_array_foreach(content, i, b)
                        if (json_is_object(b) && strcmp(json_string_value(json_object_get(b, "type")) ?: "",
                                                        "tool_result") == 0)
                                tool_result(v->out, b);
        } else if (strcmp(type, "system") == 0 && subtype && strcmp(subtype, "init") == 0) {
                fprintf(v->out, "== session %s (model %s)\n",
                        json_string_value(json_object_get(root, "session_id")) ?: "?",
                        json_string_value(json_object_get(root, "model")) ?: "?");
        } else if (strcmp(type, "system") == 0 && subtype && strcmp(subtype, "api_retry") == 0) {
                fprintf(v->out, "  (retry %lld: HTTP %lld, %s)\n",
                        (long long)json_number_value(json_object_get(root, "attempt")),
                        (long long)json_number_value(json_object_get(root, "error_status")),
                        json_string_value(json_object_get(root, "error")) ?: "error");
        } else if (strcmp(type, "rate_limit_event") == 0) {
                json_t *info = json_object_get(root, "rate_limit_info");
                fprintf(v->out, "  (usage limit %s: %s)\n",
                        json_string_value(json_object_get(info, "rateLimitType")) ?: "?",
                        json_string_value(json_object_get(info, "status")) ?: "?");
        } else if (strcmp(type, "result") == 0) {
                result(v, root);
        }
        json_decref(root);
}
