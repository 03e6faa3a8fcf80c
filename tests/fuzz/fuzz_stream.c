/* SPDX-License-Identifier: MIT */
/* The stream-json line handler (stream_parser_*) on arbitrary output of a
 * child: no crash, no leak, no read past a piece, and the same answer
 * whether the bytes come in one piece or in many, as the pipe may cut them
 * anywhere. Also stream_find_needs_you, on the result text and the input.
 *
 * Input: byte 0 picks how many of the next bytes (0-7) give the piece
 * sizes (each 1-256, used in turn); the rest is the stream. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "jada/log.h"
#include "jada/stream.h"

/* Small, so long lines and the -E2BIG path are reached. */
#define MAX_LINE 4096

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        log_set_max_priority(LOG_WARNING);
        return 0;
}

static int same_string(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_same(const struct stream_parser *a, const struct stream_parser *b)
{
        const struct stream_result *ra = stream_parser_result(a), *rb = stream_parser_result(b);
        const struct stream_stats *sa = stream_parser_stats(a), *sb = stream_parser_stats(b);

        fuzz_check(sa->lines == sb->lines);
        fuzz_check(sa->bytes == sb->bytes);
        fuzz_check(sa->bad_lines == sb->bad_lines);
        fuzz_check(sa->turns == sb->turns);
        fuzz_check(sa->last_api_error_status == sb->last_api_error_status);
        fuzz_check(strcmp(sa->api_error, sb->api_error) == 0);
        fuzz_check(sa->rate_limit.seen == sb->rate_limit.seen);
        fuzz_check(strcmp(sa->rate_limit.status, sb->rate_limit.status) == 0);
        fuzz_check(strcmp(sa->rate_limit.type, sb->rate_limit.type) == 0);
        fuzz_check(sa->rate_limit.resets_at == sb->rate_limit.resets_at);
        fuzz_check(sa->rate_limit.resets_at == 0 || (sa->rate_limit.resets_at >= 1000000000 &&
                                                     sa->rate_limit.resets_at < 10000000000));
        fuzz_check(same_string(sa->session_id, sb->session_id));

        fuzz_check(ra->seen == rb->seen);
        fuzz_check(ra->is_error == rb->is_error);
        fuzz_check(same_string(ra->subtype, rb->subtype));
        fuzz_check(same_string(ra->terminal_reason, rb->terminal_reason));
        fuzz_check(ra->num_turns == rb->num_turns);
        fuzz_check(memcmp(&ra->total_cost_usd, &rb->total_cost_usd, sizeof(double)) == 0);
        fuzz_check(ra->input_tokens == rb->input_tokens);
        fuzz_check(ra->output_tokens == rb->output_tokens);
        fuzz_check(ra->cache_creation_input_tokens == rb->cache_creation_input_tokens);
        fuzz_check(ra->cache_read_input_tokens == rb->cache_read_input_tokens);
        fuzz_check(ra->model_usage_input_tokens == rb->model_usage_input_tokens);
        fuzz_check(same_string(ra->session_id, rb->session_id));
        fuzz_check(same_string(ra->result, rb->result));
        fuzz_check(same_string(ra->errors, rb->errors));
        fuzz_check(ra->permission_denials && rb->permission_denials);
        for (size_t i = 0;; i++) {
                fuzz_check(same_string(ra->permission_denials[i], rb->permission_denials[i]));
                if (!ra->permission_denials[i])
                        break;
        }
}

/* What the header promises of any result, whatever the stream said. */
static void check_result(const struct stream_parser *p)
{
        const struct stream_result *r = stream_parser_result(p);
        char *reason;

        fuzz_check(r->num_turns >= 0 && r->input_tokens >= 0 && r->output_tokens >= 0);
        fuzz_check(r->cache_creation_input_tokens >= 0 && r->cache_read_input_tokens >= 0);
        fuzz_check(r->model_usage_input_tokens >= -1);
        fuzz_check(r->total_cost_usd >= 0 && !isnan(r->total_cost_usd));
        fuzz_check(r->permission_denials);
        if (r->result) {
                reason = stream_find_needs_you(r->result);
                if (reason)
                        fuzz_check(*reason);
                free(reason);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct stream_parser *whole = NULL, *pieces = NULL;
        size_t n_sizes, off, i;
        const uint8_t *sizes;
        int r_whole, r_pieces = 0;
        char *text;

        if (size < 1)
                return 0;
        n_sizes = data[0] % 8;
        if (size < 1 + n_sizes)
                return 0;
        sizes = data + 1;
        data += 1 + n_sizes;
        size -= 1 + n_sizes;

        fuzz_check(stream_parser_new(MAX_LINE, &whole) == 0);
        fuzz_check(stream_parser_new(MAX_LINE, &pieces) == 0);

        r_whole = stream_parser_feed(whole, (const char *)data, size);
        fuzz_check(r_whole == 0 || r_whole == -E2BIG);
        if (r_whole == 0)
                r_whole = stream_parser_finish(whole);

        /* Each piece in a buffer of its own size, so reading past it is seen. */
        for (off = 0, i = 0; off < size; i++) {
                size_t n = n_sizes ? (size_t)sizes[i % n_sizes] + 1 : size;
                char *piece;
                int r;

                if (n > size - off)
                        n = size - off;
                piece = malloc(n);
                fuzz_check(piece);
                memcpy(piece, data + off, n);
                r = stream_parser_feed(pieces, piece, n);
                free(piece);
                fuzz_check(r == 0 || r == -E2BIG);
                if (r < 0) {
                        r_pieces = r;
                        fuzz_check(stream_parser_feed(pieces, "x\n", 2) == -E2BIG);     /* sticky */
                        break;
                }
                off += n;
        }
        if (r_pieces == 0)
                r_pieces = stream_parser_finish(pieces);
        fuzz_check(r_pieces == r_whole);
        check_result(whole);
        check_result(pieces);
        /* After -E2BIG the byte count depends on where the pieces fell. */
        if (r_whole == 0)
                check_same(whole, pieces);
        stream_parser_free(whole);
        stream_parser_free(pieces);

        text = malloc(size + 1);
        fuzz_check(text);
        memcpy(text, data, size);
        text[size] = '\0';
        free(stream_find_needs_you(text));
        {
                int64_t reset = -1;
                (void)stream_usage_limit_text(text, 1900000000, &reset);
                fuzz_check(reset == 0 || reset >= 1000000000);
        }
        free(text);
        return 0;
}
