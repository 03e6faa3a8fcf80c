/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Incremental parser of Claude Code's stream-json output (`claude -p
 * --output-format stream-json --verbose`): one JSON object per line, the
 * last one {"type":"result",...}. Bytes are fed as they arrive from the
 * pipe, in pieces of any size; memory is bounded by the longest line, and a
 * line longer than max_line is a protocol error, never an overflow.
 *
 * Measured facts this relies on (DESIGN.md §4, CLI 2.1.x):
 * - API failures come as subtype "success" with is_error true: decide
 *   outcomes from is_error and terminal_reason, not from subtype alone.
 * - one assistant message (one API request, one turn) may span several
 *   lines that share its message.id: turns are distinct ids.
 * - "system"/"api_retry" lines carry error_status (401, 429, 529, ...).
 */

struct stream_parser;

/* A plan's usage limit as the CLI reports it: rate_limit_event lines
 * ({"type":"rate_limit_event","rate_limit_info":{...}}, subscription logins
 * only) and the api_error_params.rate_limit_info of a refused turn. */
struct stream_rate_limit {
        bool seen;
        char status[24];                /* "allowed", "allowed_warning", "rejected"; "" if absent */
        char type[32];                  /* "five_hour", "seven_day", ...; "" if absent */
        int64_t resets_at;              /* UTC seconds; 0: unknown */
        double utilization;             /* 0..1 as the CLI says; < 0: unknown */
};

struct stream_result {
        bool seen;                      /* a result line arrived */
        bool is_error;
        char *subtype;                  /* "success", "error_max_turns", "error_during_execution", ... */
        char *terminal_reason;          /* "completed", "max_turns", "api_error", ...; NULL if absent */
        int64_t num_turns;
        double total_cost_usd;
        int64_t input_tokens;
        int64_t output_tokens;
        int64_t cache_creation_input_tokens;
        int64_t cache_read_input_tokens;
        /* modelUsage[*].inputTokens summed; -1 if absent. Counts the same way
         * as total_cost_usd (cumulative across --resume in newer CLIs) while
         * usage counts this run only: budget_session_cost() tells them apart. */
        int64_t model_usage_input_tokens;
        char *session_id;
        char *result;                   /* the final text; NULL if absent */
        char *errors;                   /* errors[] joined with "; "; NULL if absent */
        char **permission_denials;      /* tool names, NULL-terminated; never NULL */
};

struct stream_stats {
        uint64_t lines;                 /* complete lines seen */
        uint64_t bytes;
        uint64_t bad_lines;             /* not a JSON object: counted and skipped */
        unsigned turns;                 /* distinct assistant message ids */
        int last_api_error_status;      /* from api_retry lines or an assistant api error; 0 if none */
        char api_error[40];             /* the last api_error ("usage_limit_reached", "rate_limit"); "" if none */
        struct stream_rate_limit rate_limit; /* the last rate-limit state seen */
        char *session_id;               /* from the system/init line; NULL until seen */
};

/* max_line: the longest line accepted, in bytes (e.g. 16 MiB). */
int stream_parser_new(size_t max_line, struct stream_parser **ret);
void stream_parser_free(struct stream_parser *parser);

/* Feeds bytes. Returns 0, or -E2BIG once a line exceeded max_line (the
 * parser then refuses further input with -E2BIG). */
int stream_parser_feed(struct stream_parser *parser, const char *data, size_t size);
/* End of input: an unterminated last line is parsed as a line. */
int stream_parser_finish(struct stream_parser *parser);

const struct stream_result *stream_parser_result(const struct stream_parser *parser);
const struct stream_stats *stream_parser_stats(const struct stream_parser *parser);

/* Finds the agent's "NEEDS-YOU: <reason>" convention in a final text: a line
 * that starts with NEEDS-YOU: (leading spaces allowed). Returns a new string
 * with the reason (trimmed; "no reason given" if empty), or NULL if none. */
char *stream_find_needs_you(const char *text);

/* The older CLIs' usage-limit texts: "Claude AI usage limit reached|EPOCH"
 * (*ret_reset = EPOCH) and "You've hit your ... limit · resets 8pm
 * (America/New_York)" (*ret_reset: the next such hour in that zone after
 * now, or 0 if it cannot be read). True if text is one of them. */
bool stream_usage_limit_text(const char *text, int64_t now, int64_t *ret_reset);
