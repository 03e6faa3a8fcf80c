/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

/*
 * HTTP without blocking: libcurl's multi interface driven by sd-event.
 * curl's socket callback becomes IO sources, its timer callback one time
 * source; finished transfers are drained from the loop and reported through
 * the done callback, which always runs from the loop, never from inside
 * http_request_start(). Nothing here ever waits.
 */

struct http_client;
struct http_request;
struct store;

struct http_response {
        long status;              /* HTTP status; 0 when no response arrived */
        int curl_code;            /* CURLcode; 0 (CURLE_OK) when a response arrived */
        const char *error;        /* curl's error text when curl_code != 0, else NULL */
        const char *body;         /* NUL-terminated for convenience; may hold NULs */
        size_t body_len;
        bool body_truncated;      /* the body exceeded max_body: transfer aborted, so curl_code
                                   * is set too (CURLE_WRITE_ERROR): test this first */
        const char *content_type; /* NULL if none */
        uint64_t retry_after_usec; /* from a Retry-After header in seconds; 0 if none */
        uint64_t elapsed_usec;
};

typedef void (*http_done_fn)(struct http_request *req, const struct http_response *resp,
                             void *userdata);

struct http_options {
        const char *method;           /* NULL: GET, or POST when body is set */
        const char *url;              /* http:// or https:// only */
        const char *const *headers;   /* NULL-terminated "Name: value" lines, or NULL */
        const char *body;             /* request body, copied; NULL for none */
        size_t body_len;
        uint64_t timeout_usec;        /* whole transfer; 0: 30 s */
        uint64_t connect_timeout_usec; /* 0: 10 s */
        size_t max_body;              /* response cap; 0: 1 MiB */
        struct store *store;          /* non-NULL: done uses it, and runs through store_run() */
};

int http_client_new(sd_event *event, struct http_client **ret);
/* Cancels every transfer in flight without calling its callback. */
struct http_client *http_client_free(struct http_client *client);

/* Starts a transfer. On success *ret (if not NULL) is a handle valid until
 * the done callback returns or http_request_cancel() is called. */
int http_request_start(struct http_client *client, const struct http_options *opts,
                       http_done_fn done, void *userdata, struct http_request **ret);
/* Stops a transfer in flight; its callback is not called. */
void http_request_cancel(struct http_request *req);

unsigned http_client_active(const struct http_client *client);

/* Percent-encodes all but RFC 3986's unreserved characters (A-Z a-z 0-9
 * - . _ ~), so the result is safe as a path segment or a query value. */
char *http_escape(const char *s);
/* Decodes len bytes of percent-encoding (and '+' as a space, for a query
 * string); a '%' not followed by two hex digits is kept as it is. The
 * result is NUL-terminated and cut at a decoded NUL. */
char *http_unescape(const char *s, size_t len, bool plus_is_space);

/*
 * The retry policy, one for the whole daemon (DESIGN.md gives it to this
 * module): which answers are worth asking again, and how long to wait.
 */

/* 408, 429 and 5xx (529 among them), or no answer at all (status 0): the
 * peer may answer later. Any other 4xx will say the same again. */
bool http_status_transient(long status);

struct http_backoff {
        uint64_t base_usec;             /* the first wait */
        uint64_t max_usec;              /* the doubling stops here */
        unsigned jitter_percent;        /* up to this share of the wait is added at random */
};
/* The wait after n failures in a row (n >= 1): min(base * 2^(n-1), max),
 * plus up to jitter_percent of it (random: any number, its value mod 1000
 * picks how much), and never less than Retry-After, which is capped at an
 * hour: a hostile header must not stop the retries for a day. */
uint64_t http_backoff_delay(const struct http_backoff *policy, unsigned n, uint64_t retry_after_usec,
                            unsigned random);
