/* SPDX-License-Identifier: MIT */
/*
 * src/http.c against tests/fake/slow_http.py on 127.0.0.1.
 *
 * The key test (test_slow_transfers_never_block_loop) is causal, not timed:
 * the fake server releases each chunk of a /slow response only after a tick
 * datagram that this test's sd-event timer sends. Were the loop ever blocked
 * inside curl, no tick could be sent and no transfer could finish.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jada/http.h"
#include "fake-server.h"
#include "jada/log.h"

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC  1000000ULL

struct server {
        pid_t pid;
        int http_port;
        int udp_port;
};

struct fixture {
        struct server *server;
        sd_event *event;
        struct http_client *client;
        char url[512];
};

/* What a done callback saw, copied: resp's memory dies with the callback. */
struct result {
        int calls;
        long status;
        int curl_code;
        char *error;
        char *body;
        size_t body_len;
        bool body_truncated;
        char *content_type;
        uint64_t retry_after_usec;
};

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static void result_clear(struct result *r)
{
        free(r->error);
        free(r->body);
        free(r->content_type);
        memset(r, 0, sizeof *r);
}

static void result_record(struct result *r, const struct http_response *resp)
{
        r->calls++;
        r->status = resp->status;
        r->curl_code = resp->curl_code;
        free(r->error);
        r->error = resp->error ? strdup(resp->error) : NULL;
        free(r->body);
        r->body = malloc(resp->body_len + 1);
        assert_non_null(r->body);
        memcpy(r->body, resp->body, resp->body_len + 1); /* includes the promised NUL */
        r->body_len = resp->body_len;
        r->body_truncated = resp->body_truncated;
        free(r->content_type);
        r->content_type = resp->content_type ? strdup(resp->content_type) : NULL;
        r->retry_after_usec = resp->retry_after_usec;
}

static void on_done(struct http_request *req, const struct http_response *resp, void *userdata)
{
        assert_non_null(resp->body);
        assert_int_equal(resp->body[resp->body_len], '\0');
        result_record(userdata, resp);
}

static const char *url(struct fixture *f, const char *path)
{
        snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", f->server->http_port, path);
        return f->url;
}

/* Runs the loop until *calls reaches target or max_usec passes. */
static bool run_until_calls(struct fixture *f, const int *calls, int target, uint64_t max_usec)
{
        uint64_t deadline = now_usec() + max_usec;

        while (*calls < target) {
                if (now_usec() >= deadline)
                        return false;
                assert_true(sd_event_run(f->event, 50 * USEC_PER_MSEC) >= 0);
        }
        return true;
}

static void run_for(struct fixture *f, uint64_t usec)
{
        uint64_t deadline = now_usec() + usec;

        while (now_usec() < deadline)
                assert_true(sd_event_run(f->event, 20 * USEC_PER_MSEC) >= 0);
}

static int start(struct fixture *f, const struct http_options *opts, struct result *r,
                 struct http_request **ret)
{
        return http_request_start(f->client, opts, on_done, r, ret);
}

static int server_start(void **state)
{
        struct server *s = calloc(1, sizeof *s);
        int ports[2];

        if (!s)
                return -1;
        s->pid = fake_server_start("tests/fake/slow_http.py", ports, 2);
        if (s->pid < 0) {
                free(s);
                return -1;
        }
        s->http_port = ports[0];
        s->udp_port = ports[1];
        *state = s;
        return 0;
}

static int server_stop(void **state)
{
        struct server *s = *state;

        if (s) {
                fake_server_stop(s->pid);
                free(s);
        }
        return 0;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof *f);

        if (!f)
                return -1;
        f->server = *state; /* the group's state */
        if (sd_event_new(&f->event) < 0 || http_client_new(f->event, &f->client) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        /* Frees whatever a test left in flight: ASan checks that it leaks nothing. */
        http_client_free(f->client);
        sd_event_unref(f->event);
        free(f);
        return 0;
}

/* ---- the loop is never blocked by transfers ---- */

#define SLOW_TRANSFERS 6
#define SLOW_CHUNKS    20
#define TICK_USEC      (20 * USEC_PER_MSEC)

struct ticker {
        int fd;                 /* UDP, connected to the server's tick port */
        unsigned sent;          /* ticks are numbered 1..sent */
        uint64_t max_lateness_usec;
};

static int ticker_on_time(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct ticker *t = userdata;
        uint64_t now = now_usec(), next = usec + TICK_USEC;
        char msg[16];
        int n;

        /* sd-event hands us the time the source was due. */
        if (now > usec && now - usec > t->max_lateness_usec)
                t->max_lateness_usec = now - usec;
        n = snprintf(msg, sizeof msg, "%u", ++t->sent);
        assert_int_equal(send(t->fd, msg, (size_t)n, 0), n);
        assert_int_equal(sd_event_source_set_time(s, next > now ? next : now), 0);
        assert_int_equal(sd_event_source_set_enabled(s, SD_EVENT_ONESHOT), 0);
        return 0;
}

static int ticker_open(int port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        return fd;
}

/* Checks a /slow body line by line, exactly, and returns its tick numbers. */
static void check_slow_body(const struct result *r, int id, unsigned ticks[SLOW_CHUNKS])
{
        const char *p = r->body;

        for (int i = 0; i < SLOW_CHUNKS; i++) {
                char expect[64];
                unsigned tick;
                int len;

                assert_int_equal(sscanf(p, "id %*d chunk %*d tick %u", &tick), 1);
                len = snprintf(expect, sizeof expect, "id %02d chunk %03d tick %08u\n", id, i, tick);
                assert_true((size_t)(p - r->body) + (size_t)len <= r->body_len);
                assert_memory_equal(p, expect, (size_t)len);
                ticks[i] = tick;
                p += len;
        }
        assert_int_equal((size_t)(p - r->body), r->body_len);
}

/* The one retry policy: what is transient, and the backoff's arithmetic. */
static void test_policy(void **state)
{
        const uint64_t SEC = 1000000;
        const struct http_backoff token = { .base_usec = 30 * SEC, .max_usec = 1800 * SEC, .jitter_percent = 10 };
        const struct http_backoff plain = { .base_usec = 60 * SEC, .max_usec = 3600 * SEC };

        for (long s = 0; s < 600; s++)
                assert_int_equal(http_status_transient(s),
                                 s == 0 || s == 408 || s == 429 || s >= 500);
        assert_true(http_status_transient(529));

        /* 30 s, 60 s, 120 s ... capped at 30 min; Retry-After wins when longer, capped at 1 h. */
        assert_int_equal(http_backoff_delay(&token, 1, 0, 0), 30 * SEC);
        assert_int_equal(http_backoff_delay(&token, 2, 0, 0), 60 * SEC);
        assert_int_equal(http_backoff_delay(&token, 7, 0, 0), 1800 * SEC);
        assert_int_equal(http_backoff_delay(&token, 500, 0, 0), 1800 * SEC);
        assert_true(http_backoff_delay(&token, 1, 0, 999) <= 33 * SEC);
        assert_true(http_backoff_delay(&token, 1, 0, 999) > 32 * SEC);
        assert_int_equal(http_backoff_delay(&token, 1, 120 * SEC, 0), 120 * SEC);
        assert_int_equal(http_backoff_delay(&token, 1, 86400 * SEC, 0), 3600 * SEC);
        /* No jitter asked, none given, whatever the random number. */
        assert_int_equal(http_backoff_delay(&plain, 1, 0, 777), 60 * SEC);
        assert_int_equal(http_backoff_delay(&plain, 6, 0, 777), 1920 * SEC);
        assert_int_equal(http_backoff_delay(&plain, 7, 0, 777), 3600 * SEC);
        assert_int_equal(http_backoff_delay(&plain, 0, 0, 0), 60 * SEC);
        assert_int_equal(http_backoff_delay(&plain, UINT32_MAX, 0, 0), 3600 * SEC);
}

static void test_slow_transfers_never_block_loop(void **state)
{
        struct fixture *f = *state;
        struct result results[SLOW_TRANSFERS] = { 0 };
        struct ticker ticker = { .fd = ticker_open(f->server->udp_port) };
        unsigned ticks[SLOW_TRANSFERS][SLOW_CHUNKS];
        unsigned max_first = 0, min_last = UINT32_MAX;
        sd_event_source *timer = NULL;
        uint64_t deadline = now_usec() + 30 * USEC_PER_SEC;
        int done = 0;

        for (int i = 0; i < SLOW_TRANSFERS; i++) {
                char path[64];

                snprintf(path, sizeof path, "/slow?id=%d&chunks=%d", i, SLOW_CHUNKS);
                assert_int_equal(start(f, &(struct http_options){ .url = url(f, path) }, &results[i], NULL), 0);
        }
        assert_int_equal(http_client_active(f->client), SLOW_TRANSFERS);

        /* Accuracy 1 µs so the lateness we print is the loop's, not sd-event's slack. */
        assert_int_equal(sd_event_add_time(f->event, &timer, CLOCK_MONOTONIC, now_usec() + TICK_USEC, 1,
                                           ticker_on_time, &ticker), 0);

        while (done < SLOW_TRANSFERS) {
                assert_true(now_usec() < deadline);
                assert_true(sd_event_run(f->event, 100 * USEC_PER_MSEC) >= 0);
                done = 0;
                for (int i = 0; i < SLOW_TRANSFERS; i++)
                        done += results[i].calls;
        }
        sd_event_source_disable_unref(timer);
        close(ticker.fd);

        for (int i = 0; i < SLOW_TRANSFERS; i++) {
                struct result *r = &results[i];

                assert_int_equal(r->calls, 1);
                assert_int_equal(r->curl_code, CURLE_OK);
                assert_null(r->error);
                assert_int_equal(r->status, 200);
                assert_false(r->body_truncated);
                check_slow_body(r, i, ticks[i]);
                /* Each chunk needed a tick newer than the one before it: the
                 * timer ran between every two steps of every transfer. */
                for (int c = 1; c < SLOW_CHUNKS; c++)
                        assert_true(ticks[i][c] > ticks[i][c - 1]);
                assert_true(ticks[i][SLOW_CHUNKS - 1] <= ticker.sent);
                if (ticks[i][0] > max_first)
                        max_first = ticks[i][0];
                if (ticks[i][SLOW_CHUNKS - 1] < min_last)
                        min_last = ticks[i][SLOW_CHUNKS - 1];
                result_clear(r);
        }
        /* Every transfer had its first chunk before any had its last: all
         * were in flight at once, interleaved in the one loop. */
        assert_true(max_first < min_last);
        assert_int_equal(http_client_active(f->client), 0);

        print_message("slow transfers: %d x %d chunks, %u ticks, max timer lateness %llu us\n",
                      SLOW_TRANSFERS, SLOW_CHUNKS, ticker.sent,
                      (unsigned long long)ticker.max_lateness_usec);
}

/* ---- responses ---- */

static void check_pattern(const struct result *r, size_t n)
{
        static const char pattern[] = "0123456789abcdefghijklmnopqrstuvwxyz\n";

        for (size_t i = 0; i < n; i++)
                if (r->body[i] != pattern[i % (sizeof pattern - 1)])
                        fail_msg("body differs at byte %zu", i);
}

static void test_body_cap(void **state)
{
        struct fixture *f = *state;
        struct result r = { 0 };

        /* Larger than the cap: aborted, prefix kept, flagged. */
        assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/big?bytes=300000"),
                                                            .max_body = 65536 }, &r, NULL), 0);
        assert_true(run_until_calls(f, &r.calls, 1, 10 * USEC_PER_SEC));
        assert_true(r.body_truncated);
        assert_int_equal(r.body_len, 65536);
        assert_int_equal(r.curl_code, CURLE_WRITE_ERROR);
        assert_non_null(r.error);
        assert_non_null(strstr(r.error, "larger than 65536"));
        assert_int_equal(r.status, 200);
        check_pattern(&r, r.body_len);
        result_clear(&r);

        /* Exactly the cap: complete, not truncated. */
        assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/big?bytes=65536"),
                                                            .max_body = 65536 }, &r, NULL), 0);
        assert_true(run_until_calls(f, &r.calls, 1, 10 * USEC_PER_SEC));
        assert_false(r.body_truncated);
        assert_int_equal(r.curl_code, CURLE_OK);
        assert_int_equal(r.body_len, 65536);
        check_pattern(&r, r.body_len);
        result_clear(&r);

        /* The default cap is 1 MiB. */
        assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/big?bytes=1048577") }, &r, NULL), 0);
        assert_true(run_until_calls(f, &r.calls, 1, 10 * USEC_PER_SEC));
        assert_true(r.body_truncated);
        assert_int_equal(r.body_len, 1048576);
        check_pattern(&r, r.body_len);
        result_clear(&r);
}

static void test_timeout(void **state)
{
        struct fixture *f = *state;
        struct result r = { 0 };
        uint64_t t0 = now_usec();

        assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/hang"),
                                                            .timeout_usec = 300 * USEC_PER_MSEC }, &r, NULL), 0);
        assert_true(run_until_calls(f, &r.calls, 1, 10 * USEC_PER_SEC));
        assert_true(now_usec() - t0 >= 300 * USEC_PER_MSEC);
        /* Exactly once, also after the loop has run on for a while. */
        run_for(f, 500 * USEC_PER_MSEC);
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.curl_code, CURLE_OPERATION_TIMEDOUT);
        assert_non_null(r.error);
        assert_int_equal(r.status, 0);
        assert_int_equal(r.body_len, 0);
        assert_string_equal(r.body, "");
        assert_int_equal(http_client_active(f->client), 0);
        result_clear(&r);
}

static int closed_port(void)
{
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

        assert_true(fd >= 0);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        port = ntohs(sa.sin_port);
        close(fd); /* bound, never listened, now closed: connecting is refused */
        return port;
}

static void test_connection_refused(void **state)
{
        struct fixture *f = *state;
        struct result r = { 0 };
        char u[64];

        snprintf(u, sizeof u, "http://127.0.0.1:%d/", closed_port());
        assert_int_equal(start(f, &(struct http_options){ .url = u }, &r, NULL), 0);
        /* done never runs from inside http_request_start(). */
        assert_int_equal(r.calls, 0);
        assert_true(run_until_calls(f, &r.calls, 1, 10 * USEC_PER_SEC));
        run_for(f, 100 * USEC_PER_MSEC);
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.curl_code, CURLE_COULDNT_CONNECT);
        assert_non_null(r.error);
        assert_int_equal(r.status, 0);
        result_clear(&r);
}

static void test_not_found_keeps_body(void **state)
{
        struct fixture *f = *state;
        struct result r = { 0 };

        assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/status?code=404&body=gone%20away") },
                               &r, NULL), 0);
        assert_true(run_until_calls(f, &r.calls, 1, 10 * USEC_PER_SEC));
        assert_int_equal(r.status, 404);
        assert_int_equal(r.curl_code, CURLE_OK);
        assert_null(r.error);
        assert_string_equal(r.body, "gone away");
        assert_int_equal(r.body_len, 9);
        assert_string_equal(r.content_type, "text/plain; charset=utf-8");
        assert_int_equal(r.retry_after_usec, 0);
        result_clear(&r);
}

static void test_idle_loop_sleeps(void **state)
{
        struct fixture *f = *state;
        struct result r = { 0 };

        assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/status?body=ok") }, &r, NULL), 0);
        assert_true(run_until_calls(f, &r.calls, 1, 10 * USEC_PER_SEC));
        /* Let curl settle (it may disarm its timer one iteration late). */
        run_for(f, 50 * USEC_PER_MSEC);
        /* Nothing in flight: no source of ours may wake the loop. */
        for (int i = 0; i < 3; i++)
                assert_int_equal(sd_event_run(f->event, 100 * USEC_PER_MSEC), 0);
        result_clear(&r);
}

static void test_retry_after(void **state)
{
        struct fixture *f = *state;
        struct result r = { 0 };

        assert_int_equal(start(f, &(struct http_options){
                                       .url = url(f, "/status?code=429&retry_after=7&body=slow%20down") },
                               &r, NULL), 0);
        assert_true(run_until_calls(f, &r.calls, 1, 10 * USEC_PER_SEC));
        assert_int_equal(r.status, 429);
        assert_int_equal(r.retry_after_usec, 7 * USEC_PER_SEC);
        assert_string_equal(r.body, "slow down");
        result_clear(&r);

        /* Not the seconds form: ignored, not misread. */
        assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/status?code=503&retry_after=7x") },
                               &r, NULL), 0);
        assert_true(run_until_calls(f, &r.calls, 1, 10 * USEC_PER_SEC));
        assert_int_equal(r.status, 503);
        assert_int_equal(r.retry_after_usec, 0);
        result_clear(&r);
}

static void test_post_echo(void **state)
{
        struct fixture *f = *state;
        static const char body[] = "a\0b=c"; /* binary-safe: an embedded NUL */
        static const char head[] = "POST\nhello\njada-agent/" JADA_VERSION "\n";
        const char *headers[] = { "X-Test: hello", "Content-Type: application/octet-stream", NULL };
        struct result r = { 0 };

        assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/echo"), .headers = headers,
                                                            .body = body, .body_len = sizeof body - 1 },
                               &r, NULL), 0);
        assert_true(run_until_calls(f, &r.calls, 1, 10 * USEC_PER_SEC));
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, sizeof head - 1 + sizeof body - 1);
        assert_memory_equal(r.body, head, sizeof head - 1);
        assert_memory_equal(r.body + sizeof head - 1, body, sizeof body - 1);
        assert_string_equal(r.content_type, "application/octet-stream");
        result_clear(&r);

        /* An explicit method with a body. */
        assert_int_equal(start(f, &(struct http_options){ .method = "PUT", .url = url(f, "/echo"),
                                                            .body = "x", .body_len = 1 }, &r, NULL), 0);
        assert_true(run_until_calls(f, &r.calls, 1, 10 * USEC_PER_SEC));
        assert_string_equal(r.body, "PUT\n\njada-agent/" JADA_VERSION "\nx");
        result_clear(&r);
}

static void test_rejected_synchronously(void **state)
{
        struct fixture *f = *state;
        const char *smuggle[] = { "X-Test: a\r\nX-Evil: b", NULL };
        struct result r = { 0 };

        assert_int_equal(start(f, &(struct http_options){ .url = "file:///etc/passwd" }, &r, NULL),
                         -EPROTONOSUPPORT);
        assert_int_equal(start(f, &(struct http_options){ .url = "ftp://127.0.0.1/" }, &r, NULL),
                         -EPROTONOSUPPORT);
        assert_int_equal(start(f, &(struct http_options){ .url = "http://[::1" }, &r, NULL), -EINVAL);
        assert_int_equal(start(f, &(struct http_options){ .url = NULL }, &r, NULL), -EINVAL);
        assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/echo"), .headers = smuggle },
                               &r, NULL), -EINVAL);
        assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/echo"), .method = "GET /x" },
                               &r, NULL), -EINVAL);
        assert_int_equal(http_client_active(f->client), 0);
        run_for(f, 50 * USEC_PER_MSEC);
        assert_int_equal(r.calls, 0);
}

/* ---- cancel, and callbacks that act on the client ---- */

static void test_cancel(void **state)
{
        struct fixture *f = *state;
        struct result r1 = { 0 }, r2 = { 0 };
        struct http_request *req1, *req2;

        /* No ticks: /slow stalls after its headers, so this stays in flight. */
        assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/slow?chunks=3") }, &r1, &req1), 0);
        assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/slow?chunks=3") }, &r2, &req2), 0);
        /* Cancelled before the loop ever ran for it. */
        http_request_cancel(req2);
        assert_int_equal(http_client_active(f->client), 1);

        run_for(f, 200 * USEC_PER_MSEC);
        assert_int_equal(http_client_active(f->client), 1);
        http_request_cancel(req1);
        assert_int_equal(http_client_active(f->client), 0);
        run_for(f, 200 * USEC_PER_MSEC);
        assert_int_equal(r1.calls, 0);
        assert_int_equal(r2.calls, 0);
}

struct chain {
        struct fixture *fixture;
        int started, finished, target;
        bool all_ok;
};

static void chain_on_done(struct http_request *req, const struct http_response *resp, void *userdata)
{
        struct chain *c = userdata;

        c->finished++;
        if (resp->status != 200 || strcmp(resp->body, "next") != 0)
                c->all_ok = false;
        /* Cancelling yourself from your callback is a harmless no-op. */
        http_request_cancel(req);
        if (c->started < c->target) {
                c->started++;
                assert_int_equal(http_request_start(c->fixture->client,
                                                    &(struct http_options){
                                                            .url = url(c->fixture, "/status?body=next") },
                                                    chain_on_done, c, NULL), 0);
        }
}

static void test_callback_starts_next(void **state)
{
        struct fixture *f = *state;
        struct chain c = { .fixture = f, .target = 10, .all_ok = true };

        /* Two chains on one client, so drains see several messages at once. */
        for (int i = 0; i < 2; i++) {
                c.started++;
                assert_int_equal(http_request_start(f->client, &(struct http_options){
                                                            .url = url(f, "/status?body=next") },
                                                    chain_on_done, &c, NULL), 0);
        }
        assert_true(run_until_calls(f, &c.finished, 10, 10 * USEC_PER_SEC));
        assert_int_equal(c.started, 10);
        assert_true(c.all_ok);
        assert_int_equal(http_client_active(f->client), 0);
}

struct siblings {
        struct http_request *req[2];
        int calls;
};

static void cancel_sibling_on_done(struct http_request *req, const struct http_response *resp,
                                   void *userdata)
{
        struct siblings *sb = userdata;

        sb->calls++;
        /* The sibling may have finished too, its message already queued in
         * this drain: cancelling must still suppress its callback. */
        http_request_cancel(sb->req[sb->req[0] == req ? 1 : 0]);
        http_request_cancel(req); /* itself: a no-op */
}

static void test_callback_cancels_sibling(void **state)
{
        struct fixture *f = *state;

        /* Odd rounds: two transfers time out together, so curl usually
         * reports both from one timer action and the second's message is
         * already queued when the first's callback cancels it. Even
         * rounds: quick ones, mostly reported one by one. */
        for (int round = 0; round < 6; round++) {
                struct siblings sb = { .calls = 0 };
                struct http_options opts = { .url = url(f, "/status?body=x") };

                if (round % 2) {
                        opts.url = url(f, "/hang");
                        opts.timeout_usec = 100 * USEC_PER_MSEC;
                }
                for (int i = 0; i < 2; i++)
                        assert_int_equal(http_request_start(f->client, &opts, cancel_sibling_on_done, &sb,
                                                            &sb.req[i]), 0);
                assert_true(run_until_calls(f, &sb.calls, 1, 10 * USEC_PER_SEC));
                run_for(f, 50 * USEC_PER_MSEC);
                assert_int_equal(sb.calls, 1);
                assert_int_equal(http_client_active(f->client), 0);
        }
}

struct freeing {
        struct fixture *fixture;
        int calls;
};

static void free_on_done(struct http_request *req, const struct http_response *resp, void *userdata)
{
        struct freeing *fr = userdata;

        fr->calls++;
        fr->fixture->client = http_client_free(fr->fixture->client);
}

static void test_callback_frees_client(void **state)
{
        struct fixture *f = *state;
        struct freeing fr = { .fixture = f };
        struct result hang = { 0 };

        assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/hang") }, &hang, NULL), 0);
        assert_int_equal(http_request_start(f->client, &(struct http_options){ .url = url(f, "/status") },
                                            free_on_done, &fr, NULL), 0);
        assert_true(run_until_calls(f, &fr.calls, 1, 10 * USEC_PER_SEC));
        assert_null(f->client);
        /* The loop goes on without the client's sources; nothing else is called. */
        run_for(f, 100 * USEC_PER_MSEC);
        assert_int_equal(fr.calls, 1);
        assert_int_equal(hang.calls, 0);
}

static void test_free_with_transfers_in_flight(void **state)
{
        struct fixture *f = *state;
        struct result r = { 0 };

        for (int i = 0; i < 3; i++)
                assert_int_equal(start(f, &(struct http_options){ .url = url(f, "/hang") }, &r, NULL), 0);
        run_for(f, 100 * USEC_PER_MSEC);
        assert_int_equal(http_client_active(f->client), 3);
        f->client = http_client_free(f->client);
        run_for(f, 100 * USEC_PER_MSEC);
        assert_int_equal(r.calls, 0);
}

int main(void)
{
        static const char *const proxies[] = {
                "http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
        };
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policy),
                cmocka_unit_test_setup_teardown(test_slow_transfers_never_block_loop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_found_keeps_body, setup, teardown),
                cmocka_unit_test_setup_teardown(test_idle_loop_sleeps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
                cmocka_unit_test_setup_teardown(test_post_echo, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rejected_synchronously, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_callback_starts_next, setup, teardown),
                cmocka_unit_test_setup_teardown(test_callback_cancels_sibling, setup, teardown),
                cmocka_unit_test_setup_teardown(test_callback_frees_client, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_with_transfers_in_flight, setup, teardown),
        };

        /* Only 127.0.0.1: a proxy from the environment must not intercept. */
        for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
                unsetenv(proxies[i]);
        log_setup(LOG_TARGET_STDERR, getenv("JADA_TEST_VERBOSE") != NULL);
        return cmocka_run_group_tests(tests, server_start, server_stop);
}
