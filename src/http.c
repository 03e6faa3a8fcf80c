/* SPDX-License-Identifier: MIT */
#include "jada/http.h"
#include "jada/log.h"
#include "jada/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>

/*
 * How the pieces meet (systemd's src/import/curl-util.c is the model):
 *
 *   curl socket callback  ──► one sd-event IO source per socket (struct http_socket)
 *   curl timer callback   ──► the client's one time source (CLOCK_MONOTONIC)
 *   IO/time source fires  ──► curl_multi_socket_action() ──► client_drain()
 *   client_drain()        ──► curl_multi_info_read(): remove, callback, free
 *
 * Callbacks into the user run only from client_drain(), i.e. from the loop
 * after curl has returned, so a done callback may start, cancel or free
 * anything, including the client itself (see client->dispatching).
 */

#define HTTP_TIMEOUT_USEC_DEFAULT         (30 * 1000000ULL)
#define HTTP_CONNECT_TIMEOUT_USEC_DEFAULT (10 * 1000000ULL)
#define HTTP_MAX_BODY_DEFAULT             ((size_t)1 << 20)
#define HTTP_BODY_CHUNK_MIN               ((size_t)4096)
/* Retry-After beyond a day is not a delay we would honour anyway; the cap
 * also keeps seconds * 10^6 far from overflow. */
#define HTTP_RETRY_AFTER_MAX_SEC          (24 * 3600ULL)

struct http_socket {
        sd_event_source *source;
        struct http_socket *prev, *next;
};

struct http_request {
        struct http_client *client;
        struct http_request *prev, *next; /* client->requests, while in the multi */
        CURL *easy;
        struct curl_slist *headers;
        http_done_fn done;
        void *userdata;
        char *description;                /* "METHOD scheme://host/path": no query, no userinfo */

        char *body;                       /* always NUL-terminated once allocated */
        size_t body_len, body_cap, max_body;
        bool body_truncated;
        bool out_of_memory;
        bool in_callback;                 /* done is running: cancel must not free */
        uint64_t retry_after_usec;
        uint64_t start_usec;
        char error[CURL_ERROR_SIZE];
};

struct http_client {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        struct http_socket *sockets;
        struct http_request *requests;
        unsigned active;
        /* Depth of client_drain(): while > 0 a done callback may be running,
         * and http_client_free() only marks the client; the outermost drain
         * frees it once no frame of ours uses it any more. */
        unsigned dispatching;
        bool free_requested;
};

/* curl takes milliseconds as a long; round up so a 1 µs timeout is not "none". */
static long usec_to_msec_long(uint64_t usec)
{
        uint64_t ms = usec / 1000 + (usec % 1000 != 0);

        return ms > LONG_MAX ? LONG_MAX : (long)ms;
}

static void request_unlink(struct http_request *req)
{
        struct http_client *client = req->client;

        if (req->prev)
                req->prev->next = req->next;
        else
                client->requests = req->next;
        if (req->next)
                req->next->prev = req->prev;
        req->prev = req->next = NULL;
        client->active--;
}

static void request_free(struct http_request *req)
{
        if (!req)
                return;
        if (req->easy)
                curl_easy_cleanup(req->easy);
        curl_slist_free_all(req->headers);
        free(req->description);
        free(req->body);
        free(req);
}

/* Detaches req from the multi and the client; may call back into
 * client_on_socket/client_on_curl_timer, which is fine from here. */
static void request_detach(struct http_request *req)
{
        CURLMcode mc;

        mc = curl_multi_remove_handle(req->client->multi, req->easy);
        if (mc != CURLM_OK)
                log_error("http: removing %s from the multi handle failed: %s",
                          req->description, curl_multi_strerror(mc));
        request_unlink(req);
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

static void request_finish(struct http_request *req, CURLcode code)
{
        struct http_response resp = {
                .curl_code = (int)code,
                .body = req->body ? req->body : "",
                .body_len = req->body_len,
                .body_truncated = req->body_truncated,
                .retry_after_usec = req->retry_after_usec,
        };
        char *content_type = NULL;

        request_detach(req);

        (void)curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &resp.status);
        /* Owned by the easy handle, which lives until after the callback. */
        if (curl_easy_getinfo(req->easy, CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK)
                resp.content_type = content_type;
        resp.elapsed_usec = now_monotonic_usec() - req->start_usec;

        if (code != CURLE_OK) {
                /* Our own aborts say why better than curl's "Failure writing output". */
                if (req->body_truncated)
                        snprintf(req->error, sizeof req->error,
                                 "response body larger than %zu bytes", req->max_body);
                else if (req->out_of_memory)
                        snprintf(req->error, sizeof req->error, "out of memory for response body");
                resp.error = req->error[0] ? req->error : curl_easy_strerror(code);
        }

        log_debug("http: %s: status %ld, curl %d (%s), %zu body bytes%s, %.3f s",
                  req->description, resp.status, resp.curl_code,
                  resp.error ? resp.error : "ok", resp.body_len,
                  resp.body_truncated ? " (truncated)" : "", (double)resp.elapsed_usec / 1e6);

        req->in_callback = true;
        if (req->done)
                req->done(req, &resp, req->userdata);
        request_free(req);
}

static void client_destroy(struct http_client *client)
{
        /* Sockets still watched (normally none: removing a transfer
         * reports its sockets gone) are released while their fds are
         * still open; curl_multi_cleanup() then closes them, and with the
         * callback detached it cannot report freed sockets to us. */
        if (client->multi)
                (void)curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION, (curl_socket_callback)NULL);
        while (client->sockets) {
                struct http_socket *s = client->sockets;

                client->sockets = s->next;
                sd_event_source_disable_unref(s->source);
                free(s);
        }
        if (client->multi)
                curl_multi_cleanup(client->multi);
        sd_event_source_disable_unref(client->timer);
        sd_event_unref(client->event);
        curl_global_cleanup();
        free(client);
}

/* Reports finished transfers. Robust against callbacks that start new
 * transfers (they only produce messages after a later socket action),
 * cancel others (curl drops their queued messages on removal) or free
 * the client (deferred to the outermost drain). */
static void client_drain(struct http_client *client)
{
        CURLMsg *msg;
        int left;

        client->dispatching++;
        while (!client->free_requested && (msg = curl_multi_info_read(client->multi, &left))) {
                char *owner = NULL;
                CURLcode code;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                /* msg is invalid once its handle is removed: copy first. */
                code = msg->data.result;
                if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &owner) != CURLE_OK ||
                    !owner) {
                        log_error("http: finished transfer without its request");
                        continue;
                }
                request_finish((struct http_request *)(void *)owner, code);
        }
        client->dispatching--;
        if (client->dispatching == 0 && client->free_requested)
                client_destroy(client);
}

static int client_on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        struct http_client *client = userdata;
        int action = 0, running;
        CURLMcode mc;

        /* A hang-up is reported as readable so curl reads the EOF itself. */
        if (revents & (EPOLLIN | EPOLLHUP))
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & EPOLLERR)
                action |= CURL_CSELECT_ERR;

        mc = curl_multi_socket_action(client->multi, fd, action, &running);
        if (mc != CURLM_OK)
                log_error("http: socket action on fd %d failed: %s", fd, curl_multi_strerror(mc));
        client_drain(client);
        return 0;
}

static int client_on_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
        struct http_client *client = userdata;
        int running;
        CURLMcode mc;

        mc = curl_multi_socket_action(client->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        if (mc != CURLM_OK)
                log_error("http: timeout action failed: %s", curl_multi_strerror(mc));
        client_drain(client);
        return 0;
}

/* CURLMOPT_SOCKETFUNCTION: curl says which events it wants on a socket;
 * socketp is our struct http_socket once curl_multi_assign() set it. */
static int client_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
        struct http_client *client = userp;
        struct http_socket *s = socketp;
        uint32_t events = 0;
        int r;

        if (what == CURL_POLL_REMOVE) {
                /* curl calls this before closing fd: disable while the fd
                 * is still open so epoll forgets it. */
                if (s) {
                        if (s->prev)
                                s->prev->next = s->next;
                        else
                                client->sockets = s->next;
                        if (s->next)
                                s->next->prev = s->prev;
                        sd_event_source_disable_unref(s->source);
                        free(s);
                }
                return 0;
        }

        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;

        if (!s) {
                s = calloc(1, sizeof *s);
                if (!s) {
                        log_error_errno(-ENOMEM, "http: cannot watch socket %d", fd);
                        return -1;
                }
                r = sd_event_add_io(client->event, &s->source, fd, events, client_on_io, client);
                if (r < 0) {
                        free(s);
                        log_error_errno(r, "http: cannot watch socket %d", fd);
                        return -1;
                }
                (void)sd_event_source_set_description(s->source, "http-io");
                if (curl_multi_assign(client->multi, fd, s) != CURLM_OK) {
                        sd_event_source_disable_unref(s->source);
                        free(s);
                        log_error("http: cannot attach socket %d to curl", fd);
                        return -1;
                }
                s->next = client->sockets;
                if (s->next)
                        s->next->prev = s;
                client->sockets = s;
        } else {
                r = sd_event_source_set_io_events(s->source, events);
                if (r < 0) {
                        log_error_errno(r, "http: cannot update events of socket %d", fd);
                        return -1;
                }
        }

        /* CURL_POLL_NONE: keep the socket, wait for nothing. */
        r = sd_event_source_set_enabled(s->source, events ? SD_EVENT_ON : SD_EVENT_OFF);
        if (r < 0) {
                log_error_errno(r, "http: cannot enable socket %d", fd);
                return -1;
        }
        return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 disarms, 0 means "act now", which must not be
 * done from inside this callback: the time source fires on the next loop
 * iteration instead. */
static int client_on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
        struct http_client *client = userp;
        int r;

        if (timeout_ms < 0) {
                r = sd_event_source_set_enabled(client->timer, SD_EVENT_OFF);
                if (r < 0) {
                        log_error_errno(r, "http: cannot disarm timer");
                        return -1;
                }
                return 0;
        }
        r = sd_event_source_set_time(client->timer, now_monotonic_usec() + (uint64_t)timeout_ms * 1000);
        if (r >= 0)
                r = sd_event_source_set_enabled(client->timer, SD_EVENT_ONESHOT);
        if (r < 0) {
                log_error_errno(r, "http: cannot arm timer");
                return -1;
        }
        return 0;
}

int http_client_new(sd_event *event, struct http_client **ret)
{
        struct http_client *client;
        int r;

        if (!event || !ret)
                return -EINVAL;

        /* Reference-counted by curl, paired with the cleanup in
         * client_destroy(); no global state of ours. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return log_error_errno(-EIO, "http: curl_global_init failed");

        client = calloc(1, sizeof *client);
        if (!client) {
                curl_global_cleanup();
                return -ENOMEM;
        }
        client->event = sd_event_ref(event);

        client->multi = curl_multi_init();
        if (!client->multi) {
                r = -ENOMEM;
                goto fail;
        }
        if (curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION, client_on_socket) != CURLM_OK ||
            curl_multi_setopt(client->multi, CURLMOPT_SOCKETDATA, client) != CURLM_OK ||
            curl_multi_setopt(client->multi, CURLMOPT_TIMERFUNCTION, client_on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(client->multi, CURLMOPT_TIMERDATA, client) != CURLM_OK) {
                r = log_error_errno(-EIO, "http: cannot set up the curl multi handle");
                goto fail;
        }

        /* Accuracy 1 ms: sd-event's default (250 ms) would let it batch
         * curl's timeouts with other timers and delay transfers. */
        r = sd_event_add_time(event, &client->timer, CLOCK_MONOTONIC, UINT64_MAX, 1000,
                              client_on_timer, client);
        if (r < 0) {
                log_error_errno(r, "http: cannot add the curl timer");
                goto fail;
        }
        (void)sd_event_source_set_description(client->timer, "http-timer");
        r = sd_event_source_set_enabled(client->timer, SD_EVENT_OFF);
        if (r < 0)
                goto fail;

        *ret = client;
        return 0;
fail:
        client_destroy(client);
        return r;
}

struct http_client *http_client_free(struct http_client *client)
{
        if (!client)
                return NULL;
        while (client->requests)
                http_request_cancel(client->requests);
        if (client->dispatching > 0)
                client->free_requested = true;
        else
                client_destroy(client);
        return NULL;
}

unsigned http_client_active(const struct http_client *client)
{
        return client ? client->active : 0;
}

static bool header_line_valid(const char *h)
{
        /* CR or LF would let a value smuggle extra header lines. */
        return h[strcspn(h, "\r\n")] == '\0' && strchr(h, ':');
}

static bool method_valid(const char *m)
{
        if (!*m)
                return false;
        for (; *m; m++)
                if (!((*m >= 'A' && *m <= 'Z') || *m == '-' || *m == '_'))
                        return false;
        return true;
}

/* Returns "METHOD scheme://host[:port]/path" for logs, without userinfo,
 * query or fragment (those carry secrets), and checks the scheme. */
static int request_describe(const char *method, const char *url, char **ret)
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

static int request_setup(struct http_request *req, const struct http_options *opts,
                         const char *method)
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

int http_request_start(struct http_client *client, const struct http_options *opts,
                       http_done_fn done, void *userdata, struct http_request **ret)
{
        struct http_request *req;
        const char *method;
        CURLMcode mc;
        int r;

        if (!client || !opts || !opts->url || (!opts->body && opts->body_len))
                return -EINVAL;
        if (client->free_requested)
                return -ESHUTDOWN;
        method = opts->method ? opts->method : opts->body ? "POST" : "GET";
        if (!method_valid(method))
                return -EINVAL;

        req = calloc(1, sizeof *req);
        if (!req)
                return -ENOMEM;
        req->client = client;
        req->done = done;
        req->userdata = userdata;
        req->max_body = opts->max_body ? opts->max_body : HTTP_MAX_BODY_DEFAULT;
        /* Keeps max_body + 1 (the NUL) from overflowing. */
        if (req->max_body > SIZE_MAX / 2)
                req->max_body = SIZE_MAX / 2;

        r = request_describe(method, opts->url, &req->description);
        if (r < 0) {
                log_debug("http: refusing a %s request: %s URL", method,
                          r == -EPROTONOSUPPORT ? "non-HTTP" : "malformed");
                goto fail;
        }
        req->easy = curl_easy_init();
        if (!req->easy) {
                r = -ENOMEM;
                goto fail;
        }
        r = request_setup(req, opts, method);
        if (r < 0) {
                log_debug("http: cannot set up %s: %s", req->description,
                          r == -EINVAL ? "invalid header line" : "curl refused an option");
                goto fail;
        }

        req->start_usec = now_monotonic_usec();
        /* Only arms the timer (curl asks for timeout 0); the transfer
         * starts from the loop, so done never runs from in here. */
        mc = curl_multi_add_handle(client->multi, req->easy);
        if (mc != CURLM_OK) {
                r = log_error_errno(-EIO, "http: cannot add %s to the multi handle: %s",
                                    req->description, curl_multi_strerror(mc));
                goto fail;
        }
        req->next = client->requests;
        if (req->next)
                req->next->prev = req;
        client->requests = req;
        client->active++;
        log_debug("http: %s started", req->description);

        if (ret)
                *ret = req;
        return 0;
fail:
        request_free(req);
        return r;
}

void http_request_cancel(struct http_request *req)
{
        /* From inside its own done callback the request is already out of
         * the multi and is freed when the callback returns. */
        if (!req || req->in_callback)
                return;
        log_debug("http: %s cancelled", req->description);
        request_detach(req);
        request_free(req);
}
