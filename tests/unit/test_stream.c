/* SPDX-License-Identifier: MIT */
/* Unit tests: the stream-json parser, against real CLI captures and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jada/stream.h"
#include "jada/util.h"

/* Tests run with the repository root as cwd. */
#define SAMPLES "tests/fake/scenarios/samples/"
#define MAX_LINE (16u * 1024 * 1024)

/* What each capture must yield; values read off the files themselves. */
struct sample {
        const char *file;
        const char *subtype;
        bool is_error;
        const char *terminal_reason;
        int64_t num_turns;
        double cost;
        int64_t input_tokens, output_tokens;
        int64_t model_usage_input_tokens;       /* cumulative over --resume in 2.1.332 */
        const char *session_id;
        const char *result;
        const char *errors;
        unsigned turns;
        int api_status;
        uint64_t lines;
        const char *init_session_id;
};

#define DONE "All done. The command printed hi."
#define MAX_TURNS_ERROR "Reached maximum number of turns (3)"

static const struct sample samples[] = {
        { "v2.1.332_success.stream.jsonl", "success", false, "completed", 3, 0.149708, 37152, 55, 37152,
          "a8a14507-a96a-4693-860a-66e22e1c9b7d", DONE, NULL, 3, 0, 9,
          "a8a14507-a96a-4693-860a-66e22e1c9b7d" },
        { "v2.1.332_401.stream.jsonl", "success", true, "api_error", 1, 0, 0, 0, -1,
          "198b5cc4-b4ac-4810-aad9-1d6cb6885a4b", "Invalid API key \xc2\xb7 Fix external API key", NULL, 1,
          401, 13, "198b5cc4-b4ac-4810-aad9-1d6cb6885a4b" },
        { "v2.1.332_529x2_then_ok.stream.jsonl", "success", false, "completed", 2, 0.099472, 24693, 35, 24693,
          "5be09fa4-068b-4d14-a7e3-9889bdf9dfec", DONE, NULL, 2, 529, 8,
          "5be09fa4-068b-4d14-a7e3-9889bdf9dfec" },
        { "v2.1.332_max_budget.stream.jsonl", "error_max_budget_usd", true, "budget_exhausted", 3, 0.150256,
          24735, 40, 37264, "cf0eb4ae-b8ef-4bbb-8609-e5eb7467085c", NULL, "Reached maximum budget ($0.1)", 3, 0, 10,
          "cf0eb4ae-b8ef-4bbb-8609-e5eb7467085c" },
        { "v2.1.332_max_turns.stream.jsonl", "error_max_turns", true, "max_turns", 4, 0.149808, 37152, 60, 37152,
          "2e41d27d-6d96-40d0-bc49-2f852fb9d76d", NULL, MAX_TURNS_ERROR, 3, 0, 11,
          "2e41d27d-6d96-40d0-bc49-2f852fb9d76d" },
        { "v2.1.332_resume_after_max_turns.stream.jsonl", "error_max_turns", true, "max_turns", 4, 0.30276,
          37938, 60, 75090, "2e41d27d-6d96-40d0-bc49-2f852fb9d76d", NULL, MAX_TURNS_ERROR, 3, 0, 11,
          "2e41d27d-6d96-40d0-bc49-2f852fb9d76d" },
        { "v2.1.332_resume_unknown_id.stream.jsonl", "error_during_execution", true, NULL, 0, 0, 0, 0, -1,
          "99999999-2222-4333-8444-555555555555", NULL,
          "No conversation found with session ID: 99999999-2222-4333-8444-555555555555", 0, 0, 1, NULL },
        { "v2.1.112_max_turns.stream.jsonl", "error_max_turns", true, "max_turns", 4, 0.23241599999999998,
          77172, 60, 77172, "592599f8-222b-4b8f-997b-0ddaba2c27e8", NULL, MAX_TURNS_ERROR, 3, 0, 11,
          "592599f8-222b-4b8f-997b-0ddaba2c27e8" },
};

/* Deterministic, so a failure reproduces. */
static uint64_t rng_state;

static size_t rng_next(size_t bound)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return (size_t)(rng_state % bound);
}

enum chunking { WHOLE, BYTES, RANDOM };

/* chunk: WHOLE feeds everything at once, BYTES one byte per feed, RANDOM
 * pieces of 1..300 bytes (rng_state seeds it). */
static int feed(struct stream_parser *p, const char *data, size_t size, enum chunking chunk)
{
        size_t off = 0;

        while (off < size) {
                size_t n = chunk == WHOLE ? size - off : chunk == BYTES ? 1 : 1 + rng_next(300);
                if (n > size - off)
                        n = size - off;
                int r = stream_parser_feed(p, data + off, n);
                if (r < 0)
                        return r;
                off += n;
        }
        return 0;
}

static struct stream_parser *parse(const char *data, size_t size, enum chunking chunk)
{
        struct stream_parser *p;

        assert_int_equal(stream_parser_new(MAX_LINE, &p), 0);
        assert_int_equal(feed(p, data, size, chunk), 0);
        assert_int_equal(stream_parser_finish(p), 0);
        return p;
}

static struct stream_parser *parse_str(const char *text)
{
        return parse(text, strlen(text), WHOLE);
}

static char *load_sample(const char *file, size_t *size)
{
        char *path = xasprintf(SAMPLES "%s", file), *data;
        int r = read_file_capped(path, MAX_LINE, &data, size);

        if (r < 0)
                fail_msg("%s: %s (run from the repository root)", path, strerror(-r));
        free(path);
        return data;
}

static void assert_string_or_null(const char *got, const char *want)
{
        if (!want)
                assert_null(got);
        else {
                assert_non_null(got);
                assert_string_equal(got, want);
        }
}

static void check_sample(const struct sample *s, const struct stream_parser *p, size_t size)
{
        const struct stream_result *r = stream_parser_result(p);
        const struct stream_stats *st = stream_parser_stats(p);

        assert_true(r->seen);
        assert_string_equal(r->subtype, s->subtype);
        assert_int_equal(r->is_error, s->is_error);
        assert_string_or_null(r->terminal_reason, s->terminal_reason);
        assert_int_equal(r->num_turns, s->num_turns);
        if (r->total_cost_usd != s->cost)
                fail_msg("%s: cost %.17g, want %.17g", s->file, r->total_cost_usd, s->cost);
        assert_int_equal(r->input_tokens, s->input_tokens);
        assert_int_equal(r->output_tokens, s->output_tokens);
        assert_int_equal(r->cache_creation_input_tokens, 0);
        assert_int_equal(r->cache_read_input_tokens, 0);
        assert_int_equal(r->model_usage_input_tokens, s->model_usage_input_tokens);
        assert_string_equal(r->session_id, s->session_id);
        assert_string_or_null(r->result, s->result);
        assert_string_or_null(r->errors, s->errors);
        assert_non_null(r->permission_denials);
        assert_null(r->permission_denials[0]);

        assert_int_equal(st->turns, s->turns);
        assert_int_equal(st->last_api_error_status, s->api_status);
        assert_int_equal(st->lines, s->lines);
        assert_int_equal(st->bad_lines, 0);
        assert_int_equal(st->bytes, size);
        assert_string_or_null(st->session_id, s->init_session_id);
}

static void test_samples(void **state)
{
        for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
                size_t size;
                char *data = load_sample(samples[i].file, &size);

                for (enum chunking c = WHOLE; c <= RANDOM; c++)
                        for (uint64_t seed = 1; seed <= (c == RANDOM ? 20 : 1); seed++) {
                                struct stream_parser *p;
                                rng_state = seed * 0x9e3779b97f4a7c15ULL;
                                p = parse(data, size, c);
                                check_sample(&samples[i], p, size);
                                stream_parser_free(p);
                        }
                free(data);
        }
}

/* The samples with \r\n endings and empty lines between and around them. */
static void test_samples_crlf_and_empty_lines(void **state)
{
        for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
                size_t size, n = 0;
                char *data = load_sample(samples[i].file, &size);
                char *crlf = xmalloc(size * 4 + 8);
                struct stream_parser *p;

                n += (size_t)sprintf(crlf, "\n\r\n");
                for (size_t j = 0; j < size; j++) {
                        if (data[j] == '\n') {
                                memcpy(crlf + n, "\r\n\n", 3);
                                n += 3;
                        } else
                                crlf[n++] = data[j];
                }
                rng_state = 42 + i;
                p = parse(crlf, n, RANDOM);
                check_sample(&samples[i], p, n);
                stream_parser_free(p);
                free(crlf);
                free(data);
        }
}

/* Without the final '\n' the result line only counts once finish says the
 * input is over. */
static void test_unterminated_last_line(void **state)
{
        size_t size;
        char *data = load_sample(samples[0].file, &size);
        struct stream_parser *p;

        assert_int_equal(data[size - 1], '\n');
        assert_int_equal(stream_parser_new(MAX_LINE, &p), 0);
        assert_int_equal(stream_parser_feed(p, data, size - 1), 0);
        assert_false(stream_parser_result(p)->seen);
        assert_int_equal(stream_parser_stats(p)->lines, samples[0].lines - 1);
        assert_int_equal(stream_parser_finish(p), 0);
        check_sample(&samples[0], p, size - 1);
        /* A second finish has nothing left to parse. */
        assert_int_equal(stream_parser_finish(p), 0);
        assert_int_equal(stream_parser_stats(p)->lines, samples[0].lines);
        stream_parser_free(p);
        free(data);
}

static void test_line_cap(void **state)
{
        struct stream_parser *p;

        assert_int_equal(stream_parser_new(0, &p), -EINVAL);

        /* Exactly max_line bytes before the '\n': accepted, whole or bytewise. */
        for (enum chunking c = WHOLE; c <= BYTES; c++) {
                assert_int_equal(stream_parser_new(10, &p), 0);
                assert_int_equal(feed(p, "{\"a\":1234}\n{\"b\":1}\n", 19, c), 0);
                assert_int_equal(stream_parser_finish(p), 0);
                assert_int_equal(stream_parser_stats(p)->lines, 2);
                assert_int_equal(stream_parser_stats(p)->bad_lines, 0);
                stream_parser_free(p);
        }

        /* Unterminated at exactly max_line: still fine at finish. */
        assert_int_equal(stream_parser_new(10, &p), 0);
        assert_int_equal(stream_parser_feed(p, "{\"a\":1234}", 10), 0);
        assert_int_equal(stream_parser_finish(p), 0);
        assert_int_equal(stream_parser_stats(p)->lines, 1);
        stream_parser_free(p);

        /* One byte more: refused at once, whole... */
        assert_int_equal(stream_parser_new(10, &p), 0);
        assert_int_equal(stream_parser_feed(p, "{\"a\":12345}\n", 12), -E2BIG);
        assert_int_equal(stream_parser_feed(p, "{}\n", 3), -E2BIG);
        assert_int_equal(stream_parser_finish(p), -E2BIG);
        assert_int_equal(stream_parser_stats(p)->lines, 0);
        stream_parser_free(p);

        /* ...or on the 11th byte, before any newline arrives. */
        assert_int_equal(stream_parser_new(10, &p), 0);
        for (int i = 0; i < 10; i++)
                assert_int_equal(stream_parser_feed(p, "x", 1), 0);
        assert_int_equal(stream_parser_feed(p, "x", 1), -E2BIG);
        assert_int_equal(stream_parser_feed(p, "\n", 1), -E2BIG);
        stream_parser_free(p);

        /* A long line after good ones: the good ones still count. */
        assert_int_equal(stream_parser_new(10, &p), 0);
        assert_int_equal(feed(p, "{}\n{}\n{\"a\":\"xxxxxxxx\"}\n{}\n", 26, WHOLE), -E2BIG);
        assert_int_equal(stream_parser_stats(p)->lines, 2);
        assert_int_equal(stream_parser_feed(p, "", 0), -E2BIG);
        stream_parser_free(p);
}

/* Lines of 1 MiB and more, split at random, under a cap that fits them. */
static void test_large_lines(void **state)
{
        const size_t big = 3 * 1024 * 1024;
        char *data = xmalloc(2 * big + 4096), *s = data;
        struct stream_parser *p;

        s += sprintf(s, "{\"type\":\"user\",\"message\":{\"content\":\"");
        memset(s, 'u', big);
        s += big;
        s += sprintf(s, "\"}}\n{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":\"");
        memset(s, 'a', big);
        s += big;
        s += sprintf(s, "\"}}\n{\"type\":\"result\",\"subtype\":\"success\",\"num_turns\":1}\n");

        for (uint64_t seed = 1; seed <= 3; seed++) {
                assert_int_equal(stream_parser_new(big + 100, &p), 0);
                rng_state = seed;
                assert_int_equal(feed(p, data, (size_t)(s - data), seed == 1 ? WHOLE : RANDOM), 0);
                assert_int_equal(stream_parser_finish(p), 0);
                assert_int_equal(stream_parser_stats(p)->lines, 3);
                assert_int_equal(stream_parser_stats(p)->bad_lines, 0);
                assert_int_equal(stream_parser_stats(p)->turns, 1);
                assert_true(stream_parser_result(p)->seen);
                stream_parser_free(p);
        }
        /* The same stream under a cap one line can't fit. */
        assert_int_equal(stream_parser_new(big, &p), 0);
        assert_int_equal(feed(p, data, (size_t)(s - data), WHOLE), -E2BIG);
        stream_parser_free(p);
        free(data);
}

static void test_bad_lines(void **state)
{
        static const char *const bad[] = {
                "garbage",
                "[1,2,3]",
                "[{\"type\":\"result\",\"subtype\":\"success\"}]",
                "42",
                "\"a string\"",
                "null",
                "true",
                "{\"type\":\"result\",\"subtype\":\"success\"",
                "{\"type\":\"user\",\"message\":{\"content\":\"cut",
                "{\"type\":\"result\"} trailing",
                "{\"type\":\"result\"}{\"type\":\"result\"}",
                "{\"type\":\"result\",\"num_turns\":1e999}",
                "   ",
                "\r",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                char *line = xasprintf("%s\n", bad[i]);
                struct stream_parser *p = parse_str(line);
                const struct stream_stats *st = stream_parser_stats(p);

                /* "\r" alone is an empty CRLF line: ignored, not bad. */
                bool empty = strcmp(bad[i], "\r") == 0;
                if (st->lines != !empty || st->bad_lines != !empty)
                        fail_msg("'%s': lines %llu bad %llu", bad[i], (unsigned long long)st->lines,
                                 (unsigned long long)st->bad_lines);
                assert_false(stream_parser_result(p)->seen);
                assert_int_equal(st->turns, 0);
                stream_parser_free(p);
                free(line);
        }
}

/* A NUL byte anywhere in a line spoils that line only. */
static void test_nul_byte(void **state)
{
        static const char data[] = "{\"type\":\"result\",\"subtype\":\"x\0y\"}\n"
                                   "{\"type\":\"user\",\"message\":\0{}}\n"
                                   "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s1\"}\n";
        struct stream_parser *p = parse(data, sizeof data - 1, WHOLE);

        assert_int_equal(stream_parser_stats(p)->lines, 3);
        assert_int_equal(stream_parser_stats(p)->bad_lines, 2);
        assert_false(stream_parser_result(p)->seen);
        assert_string_equal(stream_parser_stats(p)->session_id, "s1");
        stream_parser_free(p);

        /* An escaped \u0000 is valid JSON: the text is cut there, not lost. */
        p = parse_str("{\"type\":\"result\",\"result\":\"before\\u0000after\"}\n");
        assert_int_equal(stream_parser_stats(p)->bad_lines, 0);
        assert_string_equal(stream_parser_result(p)->result, "before");
        stream_parser_free(p);
}

/* Fields of the wrong type are absent; nothing crashes or counts as bad. */
static void test_wrong_types(void **state)
{
        struct stream_parser *p = parse_str(
                "{\"type\":5}\n"
                "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":7}\n"
                "{\"type\":\"system\",\"subtype\":[],\"session_id\":\"s\"}\n"
                "{\"type\":\"system\",\"subtype\":\"api_retry\",\"error_status\":\"529\"}\n"
                "{\"type\":\"system\",\"subtype\":\"api_retry\",\"error_status\":null}\n"
                "{\"type\":\"assistant\",\"message\":\"msg_1\",\"api_error_status\":\"401\"}\n"
                "{\"type\":\"assistant\",\"message\":{\"id\":17}}\n"
                "{\"type\":\"assistant\",\"message\":[{\"id\":\"m\"}]}\n"
                "{\"type\":\"assistant\"}\n"
                "{\"type\":\"result\",\"subtype\":5,\"is_error\":\"true\",\"terminal_reason\":{},"
                "\"num_turns\":\"3\",\"total_cost_usd\":\"1.5\",\"usage\":[1,2],\"session_id\":false,"
                "\"result\":[\"x\"],\"errors\":\"boom\",\"permission_denials\":{\"tool_name\":\"Bash\"}}\n");
        const struct stream_result *r = stream_parser_result(p);
        const struct stream_stats *st = stream_parser_stats(p);

        assert_int_equal(st->lines, 10);
        assert_int_equal(st->bad_lines, 0);
        assert_null(st->session_id);
        assert_int_equal(st->last_api_error_status, 0);
        assert_int_equal(st->turns, 0);
        assert_true(r->seen);
        assert_false(r->is_error);
        assert_null(r->subtype);
        assert_null(r->terminal_reason);
        assert_int_equal(r->num_turns, 0);
        assert_true(r->total_cost_usd == 0);
        assert_int_equal(r->input_tokens, 0);
        assert_null(r->session_id);
        assert_null(r->result);
        assert_null(r->errors);
        assert_non_null(r->permission_denials);
        assert_null(r->permission_denials[0]);
        stream_parser_free(p);

        /* usage with wrong-typed members, next to good ones. */
        p = parse_str("{\"type\":\"result\",\"usage\":{\"input_tokens\":\"9\",\"output_tokens\":12,"
                      "\"cache_creation_input_tokens\":true,\"cache_read_input_tokens\":7}}\n");
        r = stream_parser_result(p);
        assert_int_equal(r->input_tokens, 0);
        assert_int_equal(r->output_tokens, 12);
        assert_int_equal(r->cache_creation_input_tokens, 0);
        assert_int_equal(r->cache_read_input_tokens, 7);
        stream_parser_free(p);
}

static void test_number_ranges(void **state)
{
        struct stream_parser *p = parse_str(
                "{\"type\":\"result\",\"num_turns\":99999999999999999999999,\"total_cost_usd\":-3,"
                "\"usage\":{\"input_tokens\":-5,\"output_tokens\":1e30,\"cache_read_input_tokens\":2.9,"
                "\"cache_creation_input_tokens\":9223372036854775807}}\n"
                "{\"type\":\"system\",\"subtype\":\"api_retry\",\"error_status\":429.0}\n"
                "{\"type\":\"system\",\"subtype\":\"api_retry\",\"error_status\":1e9}\n"
                "{\"type\":\"system\",\"subtype\":\"api_retry\",\"error_status\":-1}\n"
                "{\"type\":\"system\",\"subtype\":\"api_retry\",\"error_status\":0}\n");
        const struct stream_result *r = stream_parser_result(p);

        assert_int_equal(stream_parser_stats(p)->bad_lines, 0);
        assert_true(r->num_turns == INT64_MAX);
        assert_true(r->total_cost_usd == 0);
        assert_int_equal(r->input_tokens, 0);
        assert_true(r->output_tokens == INT64_MAX);
        assert_int_equal(r->cache_read_input_tokens, 2);
        assert_true(r->cache_creation_input_tokens == INT64_MAX);
        /* Out-of-range statuses are ignored: the 429 stays. */
        assert_int_equal(stream_parser_stats(p)->last_api_error_status, 429);
        stream_parser_free(p);
}

static void test_two_results_last_wins(void **state)
{
        struct stream_parser *p = parse_str(
                "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"first\","
                "\"terminal_reason\":\"completed\",\"errors\":[\"e1\"],\"num_turns\":2,\"total_cost_usd\":0.5,"
                "\"permission_denials\":[{\"tool_name\":\"Bash\"}],\"session_id\":\"s1\"}\n"
                "{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true,"
                "\"num_turns\":1}\n");
        const struct stream_result *r = stream_parser_result(p);

        assert_true(r->seen);
        assert_string_equal(r->subtype, "error_during_execution");
        assert_true(r->is_error);
        assert_int_equal(r->num_turns, 1);
        assert_true(r->total_cost_usd == 0);
        assert_null(r->result);
        assert_null(r->terminal_reason);
        assert_null(r->errors);
        assert_null(r->session_id);
        assert_null(r->permission_denials[0]);
        stream_parser_free(p);
}

static void test_denials_and_errors(void **state)
{
        struct stream_parser *p = parse_str(
                "{\"type\":\"result\",\"permission_denials\":[{\"tool_name\":\"Bash\",\"tool_use_id\":\"t1\","
                "\"tool_input\":{\"command\":\"rm -rf /\"}},\"Write\",5,{\"tool_name\":7},{},null,"
                "{\"tool_name\":\"WebFetch\"}],\"errors\":[\"first\",3,\"second\",\"third\"]}\n");
        const struct stream_result *r = stream_parser_result(p);

        assert_int_equal(strv_length(r->permission_denials), 3);
        assert_string_equal(r->permission_denials[0], "Bash");
        assert_string_equal(r->permission_denials[1], "Write");
        assert_string_equal(r->permission_denials[2], "WebFetch");
        assert_string_equal(r->errors, "first; second; third");
        stream_parser_free(p);

        /* An empty errors[] says nothing. */
        p = parse_str("{\"type\":\"result\",\"errors\":[],\"permission_denials\":[]}\n");
        assert_null(stream_parser_result(p)->errors);
        assert_int_equal(strv_length(stream_parser_result(p)->permission_denials), 0);
        stream_parser_free(p);
}

static void test_model_usage(void **state)
{
        static const struct {
                const char *model_usage;
                int64_t want;
        } cases[] = {
                { "{\"a\":{\"inputTokens\":100},\"b\":{\"inputTokens\":23,\"outputTokens\":5}}", 123 },
                { "{\"a\":{\"inputTokens\":0}}", 0 },
                { "{\"a\":{\"inputTokens\":\"7\"},\"b\":{\"inputTokens\":8},\"c\":5}", 8 },
                { "{\"a\":{\"inputTokens\":-8}}", 0 },
                { "{\"a\":{\"inputTokens\":9e18},\"b\":{\"inputTokens\":9e18}}", INT64_MAX },
                { "{}", -1 },
                { "{\"a\":{\"outputTokens\":1}}", -1 },
                { "[{\"inputTokens\":5}]", -1 },
                { "12", -1 },
        };
        struct stream_parser *p;

        /* Before any result line, and for a result without modelUsage. */
        p = parse_str("{\"type\":\"system\",\"subtype\":\"init\"}\n");
        assert_int_equal(stream_parser_result(p)->model_usage_input_tokens, -1);
        stream_parser_free(p);
        p = parse_str("{\"type\":\"result\",\"modelUsage\":{\"m\":{\"inputTokens\":4}}}\n"
                      "{\"type\":\"result\"}\n");
        assert_int_equal(stream_parser_result(p)->model_usage_input_tokens, -1);
        stream_parser_free(p);

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *line = xasprintf("{\"type\":\"result\",\"modelUsage\":%s}\n", cases[i].model_usage);
                int64_t got;

                p = parse_str(line);
                got = stream_parser_result(p)->model_usage_input_tokens;
                if (got != cases[i].want)
                        fail_msg("%s: got %lld, want %lld", cases[i].model_usage, (long long)got,
                                 (long long)cases[i].want);
                stream_parser_free(p);
                free(line);
        }
}

/* Turns are distinct ids, even when a message's lines are not adjacent. */
static void test_turns(void **state)
{
        struct stream_parser *p;
        char *text = NULL;
        size_t size = 0;
        FILE *f;

        p = parse_str("{\"type\":\"assistant\",\"message\":{\"id\":\"A\"}}\n"
                      "{\"type\":\"assistant\",\"message\":{\"id\":\"B\"}}\n"
                      "{\"type\":\"assistant\",\"message\":{\"id\":\"A\"}}\n"
                      "{\"type\":\"assistant\",\"message\":{\"id\":\"\"}}\n"
                      "{\"type\":\"assistant\",\"message\":{\"id\":\"B\"},\"api_error_status\":500}\n");
        /* An empty id is no id. */
        assert_int_equal(stream_parser_stats(p)->turns, 2);
        assert_int_equal(stream_parser_stats(p)->last_api_error_status, 500);
        stream_parser_free(p);

        /* Enough ids to grow the set several times, each seen twice. */
        f = open_memstream(&text, &size);
        assert_non_null(f);
        for (int round = 0; round < 2; round++)
                for (int i = 0; i < 5000; i++)
                        fprintf(f, "{\"type\":\"assistant\",\"message\":{\"id\":\"msg_%d\"}}\n", i);
        fclose(f);
        p = parse(text, size, WHOLE);
        assert_int_equal(stream_parser_stats(p)->turns, 5000);
        assert_int_equal(stream_parser_stats(p)->lines, 10000);
        stream_parser_free(p);
        free(text);
}

/* The shortcuts for user and assistant lines must agree with the full
 * parse and let nothing else through. */
static void test_cheap_paths(void **state)
{
        char long_a[300], long_b[300], *text;
        struct stream_parser *p = parse_str(
                "{\"type\":\"user\",\"message\":{\"content\":\"NEEDS-YOU: x\"}}\n"
                "{\"type\":\"user\"}\n"
                "{\"type\":\"userx\",\"subtype\":\"init\"}\n"
                "{\"type\":\"user\" , \"x\":1}\n"
                "{\"type\":\"user\",\"message\":{\"content\":\"x\"\n"
                "{\"type\" : \"result\", \"subtype\" : \"success\"}\n");

        assert_int_equal(stream_parser_stats(p)->lines, 6);
        assert_int_equal(stream_parser_stats(p)->bad_lines, 1);
        assert_string_equal(stream_parser_result(p)->subtype, "success");
        stream_parser_free(p);

        /* The same id written plainly and with an escape is one turn; a
         * status after a plain id is still seen; a cut line is bad. */
        p = parse_str("{\"type\":\"assistant\",\"message\":{\"id\":\"m\\u0031\",\"content\":[]}}\n"
                      "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[]}}\n"
                      "{\"type\":\"assistant\",\"message\":{\"id\":\"m2\"},\"api_error_status\":529}\n"
                      "{\"type\":\"assistant\",\"message\":{\"id\":\"m3\",\"content\":[{\"text\":\"ab\n"
                      "{\"type\":\"assistant\",\"message\":{\"id\":\"m4\"}}\n"
                      "{\"type\":\"assistant\",\"message\":{\"id\":\"m4\"}}\n");
        assert_int_equal(stream_parser_stats(p)->lines, 6);
        assert_int_equal(stream_parser_stats(p)->bad_lines, 1);
        assert_int_equal(stream_parser_stats(p)->turns, 3);
        assert_int_equal(stream_parser_stats(p)->last_api_error_status, 529);
        stream_parser_free(p);

        /* Ids too long for the shortcut, alike in their first 250 bytes. */
        memset(long_a, 'x', sizeof long_a - 1);
        long_a[sizeof long_a - 1] = '\0';
        memcpy(long_b, long_a, sizeof long_b);
        long_b[sizeof long_b - 2] = 'y';
        text = xasprintf("{\"type\":\"assistant\",\"message\":{\"id\":\"%s\"}}\n"
                         "{\"type\":\"assistant\",\"message\":{\"id\":\"%s\"}}\n"
                         "{\"type\":\"assistant\",\"message\":{\"id\":\"%s\"}}\n",
                         long_a, long_b, long_a);
        p = parse_str(text);
        assert_int_equal(stream_parser_stats(p)->turns, 2);
        assert_int_equal(stream_parser_stats(p)->bad_lines, 0);
        stream_parser_free(p);
        free(text);
}

static void test_needs_you(void **state)
{
        static const struct {
                const char *text;
                const char *reason;
        } cases[] = {
                { "All done.", NULL },
                { "", NULL },
                { "NEEDS-YOU: the API key is wrong", "the API key is wrong" },
                { "Step 1 done.\nNEEDS-YOU: approve the deploy\nThanks.", "approve the deploy" },
                { "text\n   NEEDS-YOU:   spaces around   \nmore", "spaces around" },
                { "text\n\tNEEDS-YOU: tab\r\n", "tab" },
                { "NEEDS-YOU:", "no reason given" },
                { "x\nNEEDS-YOU:   \r\ny", "no reason given" },
                { "I would write NEEDS-YOU: here but no", NULL },
                { "> NEEDS-YOU: quoted", NULL },
                { "needs-you: lower case", NULL },
                { "NEEDS-YOU no colon", NULL },
                { "NEEDS-YOU: first\nNEEDS-YOU: second", "first" },
                { "a\n\nNEEDS-YOU: last line without newline", "last line without newline" },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *got = stream_find_needs_you(cases[i].text);
                if (!cases[i].reason != !got || (got && strcmp(got, cases[i].reason) != 0))
                        fail_msg("'%s': got '%s', want '%s'", cases[i].text, got ? got : "(null)",
                                 cases[i].reason ? cases[i].reason : "(null)");
                free(got);
        }
        assert_null(stream_find_needs_you(NULL));
}

/* Usage limits: rate_limit_event lines, a refused turn's api_error and
 * rate_limit_info, an event injected into another line, and bad values. */
static void test_rate_limits(void **state)
{
        struct stream_parser *p = parse_str(
                "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"allowed_warning\","
                "\"resetsAt\":1900000000,\"rateLimitType\":\"five_hour\",\"utilization\":0.85}}\n");
        const struct stream_stats *st = stream_parser_stats(p);

        assert_true(st->rate_limit.seen);
        assert_string_equal(st->rate_limit.status, "allowed_warning");
        assert_string_equal(st->rate_limit.type, "five_hour");
        assert_int_equal(st->rate_limit.resets_at, 1900000000);
        assert_true(st->rate_limit.utilization > 0.849 && st->rate_limit.utilization < 0.851);
        assert_string_equal(st->api_error, "");
        stream_parser_free(p);

        /* The refused turn: assistant and result carry api_error and its info; the last wins. */
        p = parse_str("{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"model\":\"<synthetic>\"},"
                      "\"api_error_status\":429,\"api_error\":\"usage_limit_reached\",\"api_error_params\":"
                      "{\"rate_limit_info\":{\"status\":\"rejected\",\"resetsAt\":1900003600,"
                      "\"rateLimitType\":\"seven_day\"}}}\n"
                      "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,\"result\":\"x\"}\n");
        st = stream_parser_stats(p);
        assert_int_equal(st->last_api_error_status, 429);
        assert_string_equal(st->api_error, "usage_limit_reached");
        assert_string_equal(st->rate_limit.status, "rejected");
        assert_string_equal(st->rate_limit.type, "seven_day");
        assert_int_equal(st->rate_limit.resets_at, 1900003600);
        assert_true(st->rate_limit.utilization < 0);
        assert_int_equal(st->turns, 1);
        stream_parser_free(p);

        /* Injected into the middle of a tool result and of a tool call: both lines are lost, the events not. */
        p = parse_str("{\"type\":\"user\",\"message\":{\"content\":\"half {\"type\":\"rate_limit_event\","
                      "\"rate_limit_info\":{\"status\":\"rejected\",\"resetsAt\":1900000001,"
                      "\"rateLimitType\":\"five_hour\"}} rest\"}}\n");
        st = stream_parser_stats(p);
        assert_int_equal(st->bad_lines, 1);
        assert_true(st->rate_limit.seen);
        assert_int_equal(st->rate_limit.resets_at, 1900000001);
        stream_parser_free(p);
        p = parse_str("{\"type\":\"assistant\",\"message\":{\"id\":\"m2\",\"content\":[{\"type\":\"text\","
                      "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"allowed\"}}\"x\"}]}}\n");
        st = stream_parser_stats(p);
        assert_true(st->rate_limit.seen);
        assert_string_equal(st->rate_limit.status, "allowed");
        assert_int_equal(st->rate_limit.resets_at, 0);
        stream_parser_free(p);

        /* Hostile values: not an epoch, a status with junk, an info that is not an object. */
        p = parse_str("{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"rej\\nected\","
                      "\"resetsAt\":-5,\"rateLimitType\":42,\"utilization\":1e300}}\n"
                      "{\"type\":\"rate_limit_event\",\"rate_limit_info\":\"rejected\"}\n");
        st = stream_parser_stats(p);
        assert_true(st->rate_limit.seen);
        assert_string_equal(st->rate_limit.status, "rej");
        assert_string_equal(st->rate_limit.type, "");
        assert_int_equal(st->rate_limit.resets_at, 0);
        assert_true(st->rate_limit.utilization < 0);
        stream_parser_free(p);
}

static void test_usage_limit_texts(void **state)
{
        int64_t now = (int64_t)time(NULL), reset = -1;

        assert_true(stream_usage_limit_text("Claude AI usage limit reached|1900000000", now, &reset));
        assert_int_equal(reset, 1900000000);
        assert_true(stream_usage_limit_text("Claude AI usage limit reached|soon", now, &reset));
        assert_int_equal(reset, 0);
        assert_true(stream_usage_limit_text("You've hit your session limit \xc2\xb7 resets 8pm (America/New_York)",
                                            now, &reset));
        /* The next 20:00 in New York: within a day, on a whole hour. */
        assert_true(reset > now && reset <= now + 86400 + 3600);
        assert_int_equal(reset % 3600, 0);
        assert_true(stream_usage_limit_text("You've hit your weekly limit \xc2\xb7 resets 9:30am (Nowhere/Zone)",
                                            now, &reset));
        assert_int_equal(reset, 0);
        assert_true(stream_usage_limit_text("You've hit your limit \xc2\xb7 resets 7pm (../../etc/passwd)", now, &reset));
        assert_int_equal(reset, 0);
        assert_true(stream_usage_limit_text("You've hit your limit \xc2\xb7 resets 14:00", now, &reset));
        assert_true(reset > now && reset <= now + 86400 && reset % 3600 == 0);
        assert_false(stream_usage_limit_text("All done. The usage report is attached.", now, &reset));
        assert_false(stream_usage_limit_text(NULL, now, &reset));
        assert_null(getenv("TZ")); /* restored */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_samples),
                cmocka_unit_test(test_samples_crlf_and_empty_lines),
                cmocka_unit_test(test_unterminated_last_line),
                cmocka_unit_test(test_line_cap),
                cmocka_unit_test(test_large_lines),
                cmocka_unit_test(test_bad_lines),
                cmocka_unit_test(test_nul_byte),
                cmocka_unit_test(test_wrong_types),
                cmocka_unit_test(test_number_ranges),
                cmocka_unit_test(test_two_results_last_wins),
                cmocka_unit_test(test_denials_and_errors),
                cmocka_unit_test(test_model_usage),
                cmocka_unit_test(test_turns),
                cmocka_unit_test(test_cheap_paths),
                cmocka_unit_test(test_needs_you),
                cmocka_unit_test(test_rate_limits),
                cmocka_unit_test(test_usage_limit_texts),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
