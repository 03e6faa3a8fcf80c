/* SPDX-License-Identifier: MIT */
/* One transfer's easy handle: its options, and what the response writes
 * into it (the body, under its cap, and Retry-After). */
#include "http-private.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* curl takes milliseconds as a long; round up so a 1 µs timeout is not "none". */
static long usec_to_msec_long(uint64_t usec)
{
        uint64_t ms = usec / 1000 + (usec % 1000 != 0);

        return ms > LONG_MAX ? LONG_MAX : (long)ms;
}

static bool body_reserve(struct http_request *req, size_t need)
{
        size_t cap;
        char *p;

        if (need <= req->body_cap)
                return true;
        cap = req->body_cap ? req->body_cap : HTTP_BODY_CHUNK_MIN;
        while (cap < need)
                cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        /* Never allocate past what the cap allows (max_body + NUL). */
        if (cap > req->max_body + 1)
                cap = req->max_body + 1;
        if (cap < need)
                return false;
        p = realloc(req->body, cap);
        if (!p)
                return false;
        req->body = p;
        req->body_cap = cap;
        return true;
}

/* CURLOPT_WRITEFUNCTION. Returning less than n aborts the transfer with
 * CURLE_WRITE_ERROR; that is how the max_body cap stops a runaway response. */
static size_t request_on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct http_request *req = userdata;
        size_t n = size * nmemb, room = req->max_body - req->body_len;
        bool over = n > room;
        size_t take = over ? room : n;

        if (!body_reserve(req, req->body_len + take + 1)) {
                req->out_of_memory = true;
                return 0;
        }
        memcpy(req->body + req->body_len, data, take);
        req->body_len += take;
        req->body[req->body_len] = '\0';
        if (over) {
                req->body_truncated = true;
                return 0;
        }
        return n;
}

/* Retry-After in its delay-seconds form (RFC 9110 10.2.3): digits only. The
 * HTTP-date form is ignored (0), as is anything malformed. */
static uint64_t parse_retry_after(const char *p, const char *end)
{
        uint64_t sec = 0;
        bool digits = false;

        while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
                end--;
        for (; p < end; p++) {
                if (*p < '0' || *p > '9')
                        return 0;
                digits = true;
                if (sec <= HTTP_RETRY_AFTER_MAX_SEC)
                        sec = sec * 10 + (uint64_t)(*p - '0');
        }
        if (!digits)
                return 0;
        if (sec > HTTP_RETRY_AFTER_MAX_SEC)
                sec = HTTP_RETRY_AFTER_MAX_SEC;
        return sec * 1000000ULL;
}

/* CURLOPT_HEADERFUNCTION: one call per header line, status lines included.
 * Header values may be secrets (Set-Cookie, tokens): never log them. */
static size_t request_on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
        static const char name[] = "Retry-After:";
        struct http_request *req = userdata;
        size_t n = size * nmemb;

        /* A new status line starts a new response (after a 1xx): forget the
         * previous one's headers so only the final response's count. */
        if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
                req->retry_after_usec = 0;
        else if (n >= sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0)
                req->retry_after_usec = parse_retry_after(data + sizeof name - 1, data + n);
        return n;
}

static bool header_line_valid(const char *h)
{
        /* CR or LF would let a value smuggle extra header lines. */
        return h[strcspn(h, "\r\n")] == '\0' && strchr(h, ':');
}

bool http_method_valid(const char *m)
{
        if (!*m)
                return false;
        for (; *m; m++)
                if (!((*m >= 'A' && *m <= 'Z') || *m == '-' || *m == '_'))
                        return false;
        return true;
}

int http_easy_describe(const char *method, const char *url, char **ret)
{
        CURLU *u = curl_url();
        char *scheme = NULL, *clean = NULL;
        int r = 0;

        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
                r = -EINVAL;
                goto out;
        }
        if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
                r = -EPROTONOSUPPORT;
                goto out;
        }
        (void)curl_url_set(u, CURLUPART_USER, NULL, 0);
        (void)curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
        (void)curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
        (void)curl_url_set(u, CURLUPART_QUERY, NULL, 0);
        (void)curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
        if (curl_url_get(u, CURLUPART_URL, &clean, 0) != CURLUE_OK ||
            asprintf(ret, "%s %s", method, clean) < 0)
                r = -ENOMEM;
out:
        curl_free(scheme);
        curl_free(clean);
        curl_url_cleanup(u);
        return r;
}

#define SETOPT(easy, opt, val) \
        do { if (curl_easy_setopt((easy), (opt), (val)) != CURLE_OK) goto fail_setopt; } while (0)

int http_easy_setup(struct http_request *req, const struct http_options *opts, const char *method)
{
        CURL *easy = req->easy;
        const char *body = opts->body;
        bool have_expect = false;

        SETOPT(easy, CURLOPT_URL, opts->url);
        SETOPT(easy, CURLOPT_PRIVATE, req);
        SETOPT(easy, CURLOPT_ERRORBUFFER, req->error);
        SETOPT(easy, CURLOPT_NOSIGNAL, 1L);
        SETOPT(easy, CURLOPT_PROTOCOLS_STR, "http,https");
        SETOPT(easy, CURLOPT_FOLLOWLOCATION, 0L);
        SETOPT(easy, CURLOPT_USERAGENT, "jada-agent/" JADA_VERSION);
        SETOPT(easy, CURLOPT_TIMEOUT_MS,
               usec_to_msec_long(opts->timeout_usec ? opts->timeout_usec : HTTP_TIMEOUT_USEC_DEFAULT));
        SETOPT(easy, CURLOPT_CONNECTTIMEOUT_MS,
               usec_to_msec_long(opts->connect_timeout_usec ? opts->connect_timeout_usec
                                                            : HTTP_CONNECT_TIMEOUT_USEC_DEFAULT));
        SETOPT(easy, CURLOPT_WRITEFUNCTION, request_on_body);
        SETOPT(easy, CURLOPT_WRITEDATA, req);
        SETOPT(easy, CURLOPT_HEADERFUNCTION, request_on_header);
        SETOPT(easy, CURLOPT_HEADERDATA, req);

        /* A bodiless POST still sends an empty body (Content-Length: 0):
         * curl's POST without POSTFIELDS would read the body from stdin. */
        if (!body && strcmp(method, "POST") == 0)
                body = "";
        if (body) {
                /* POSTFIELDSIZE first, so COPYPOSTFIELDS copies body_len
                 * bytes rather than strlen(): bodies may hold NULs. */
                SETOPT(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)opts->body_len);
                SETOPT(easy, CURLOPT_COPYPOSTFIELDS, body);
        }
        if (strcmp(method, "GET") == 0 && !body)
                SETOPT(easy, CURLOPT_HTTPGET, 1L);
        else if (strcmp(method, "HEAD") == 0 && !body)
                SETOPT(easy, CURLOPT_NOBODY, 1L);
        else if (strcmp(method, "POST") != 0)
                SETOPT(easy, CURLOPT_CUSTOMREQUEST, method);

        for (const char *const *h = opts->headers; h && *h; h++) {
                struct curl_slist *l;

                if (!header_line_valid(*h))
                        return -EINVAL;
                if (strncasecmp(*h, "Expect:", 7) == 0)
                        have_expect = true;
                l = curl_slist_append(req->headers, *h);
                if (!l)
                        return -ENOMEM;
                req->headers = l;
        }
        /* curl would send "Expect: 100-continue" for larger bodies and wait
         * up to a second for a 100 that many servers never send. */
        if (body && !have_expect) {
                struct curl_slist *l = curl_slist_append(req->headers, "Expect:");

                if (!l)
                        return -ENOMEM;
                req->headers = l;
        }
        if (req->headers)
                SETOPT(easy, CURLOPT_HTTPHEADER, req->headers);
        return 0;

fail_setopt:
        return -EIO;
}

#undef SETOPT
