/* SPDX-License-Identifier: MIT */
/*
 * The dashboard's server: libmicrohttpd driven from the daemon's sd-event
 * loop (MHD's epoll fd is one IO source, its timeout one time source), as
 * systemd-journal-remote drives it. MHD reads and writes without blocking,
 * so a slow or hostile client costs a connection slot, never the loop's
 * time: the watchdog, a session's output and the poll go on.
 *
 * Access: a loopback address (or a unix socket) needs no login, unless the
 * credential web-token exists; any other address requires it. Every POST
 * carries a CSRF token, and the Host header must name this dashboard, so
 * that a page elsewhere (or a DNS name rebound to 127.0.0.1) cannot act.
 */
#include "web-private.h"
#include "jada/store.h"
#include "jada/log.h"
#include "jada/report.h"
#include "jada/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Bounds: a dashboard for one operator. The memory limit bounds a
 * request's headers (a larger one is answered 431 by MHD); an idle
 * connection is closed after the timeout (a slow-loris client holds one
 * slot for that long at most per byte it trickles, and only its own). */
#define WEB_CONNECTIONS_MAX 64
#define WEB_CONNECTION_MEMORY (32 * 1024)
#define WEB_IDLE_TIMEOUT_SEC 15
#define WEB_SECRET_FILE "web-secret"
#define WEB_COOKIE "jada_web"

int64_t web_now(void)
{
        return now_seconds();
}

static void hex(const unsigned char *in, size_t n, char *out)
{
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * n] = '\0';
}

static void hmac_hex(const void *key, size_t key_len, const char *msg, char out[65])
{
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned len = 0;

        if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), mac, &len) || len != 32)
                abort(); /* SHA-256 is always there */
        hex(mac, 32, out);
}

static bool equal_secret(const char *a, const char *b)
{
        size_t n = strlen(a);
        return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

int web_token_load(char **ret, char *why, size_t size)
{
        _cleanup_free_ char *path = credential_path("web-token");
        char *data = NULL;
        size_t n = 0;
        int r;

        *ret = NULL;
        if (!path)
                return 0;
        r = read_file_capped(path, 4096, &data, &n);
        if (r < 0) {
                snprintf(why, size, "cannot read the credential web-token: %s", strerror(-r));
                return r;
        }
        while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r' || data[n - 1] == ' '))
                data[--n] = '\0';
        if (n < 16 || strlen(data) != n) {
                free(data);
                snprintf(why, size, "the credential web-token must be one line of at least 16 characters");
                return -EINVAL;
        }
        *ret = data;
        return 0;
}

/* The key of the CSRF tokens: 32 random bytes kept in the state dir, so
 * that a page loaded before a restart still posts. */
static int load_secret(const char *state_dir, unsigned char key[32])
{
        _cleanup_free_ char *path = xasprintf("%s/%s", state_dir, WEB_SECRET_FILE);
        _cleanup_free_ char *data = NULL;
        size_t n = 0;
        int r;

        r = read_file_capped(path, 64, &data, &n);
        if (r >= 0 && n == 32) {
                memcpy(key, data, 32);
                return 0;
        }
        if (getrandom(key, 32, 0) != 32)
                return -errno;
        r = write_file_atomic(path, key, 32, 0600);
        if (r < 0)
                log_warning("web: cannot keep %s (%s): forms loaded before a restart will need a reload", path,
                            strerror(-r));
        return 0;
}

/* ---- answers ------------------------------------------------------------- */

static void security_headers(struct MHD_Response *resp)
{
        /* No script at all, no frames, forms only to ourselves. */
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
        MHD_add_response_header(resp, "Cache-Control", "no-store");
}

enum MHD_Result web_reply(struct web_request *req, unsigned status, const char *type, char *body, size_t len)
{
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        enum MHD_Result r;

        if (!resp) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", type);
        security_headers(resp);
        r = MHD_queue_response(req->conn, status, resp);
        MHD_destroy_response(resp);
        return r;
}

enum MHD_Result web_reply_page(struct web_request *req, unsigned status)
{
        char *buf;
        size_t len;

        if (!req->out)
                return MHD_NO;
        fclose(req->out);
        req->out = NULL;
        buf = req->buf;
        len = req->len;
        req->buf = NULL;
        return web_reply(req, status, "text/html; charset=utf-8", buf, len);
}

enum MHD_Result web_reply_json(struct web_request *req, unsigned status, json_t *doc)
{
        char *s = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;

        json_decref(doc);
        /* A document that could not be built (bytes jansson refuses that
         * report_text() did not catch) is an error answer, never an abort. */
        if (!s)
                return web_reply(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
                                 xstrdup("{\"error\": \"cannot build this document\"}\n"),
                                 strlen("{\"error\": \"cannot build this document\"}\n"));
        return web_reply(req, status, "application/json", s, strlen(s));
}

enum MHD_Result web_reply_error(struct web_request *req, unsigned status, const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                abort();
        va_end(ap);
        if (strncmp(req->url, "/api/", 5) == 0)
                return web_reply_json(req, status, json_pack("{s:o}", "error", report_text(msg)));
        web_page_begin(req, "Error", "");
        fputs("<h1>Cannot do that</h1><p class=\"problem\">", req->out);
        web_h(req->out, msg);
        fputs("</p><p><a href=\"/\">Overview</a></p>", req->out);
        web_page_end(req);
        return web_reply_page(req, status);
}

enum MHD_Result web_redirect(struct web_request *req, const char *location)
{
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result r;

        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, "Location", location);
        security_headers(resp);
        r = MHD_queue_response(req->conn, MHD_HTTP_SEE_OTHER, resp);
        MHD_destroy_response(resp);
        return r;
}

const char *web_query(struct web_request *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *web_field(struct web_request *req, const char *name)
{
        for (size_t i = 0; i < req->n_fields; i++)
                if (strcmp(req->fields[i].name, name) == 0)
                        return req->fields[i].value;
        return NULL;
}

/* ---- access -------------------------------------------------------------- */

/* The Host header must name this dashboard: a loopback name (any port: an
 * ssh -L may forward another), the listen address, or [web] url's host. A
 * DNS name rebound to 127.0.0.1 by someone else's page names itself. */
static bool host_allowed(struct web_request *req)
{
        const char *host = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        const struct jada_config *c = req->web->config;
        size_t hlen;

        if (!host)
                return c->web.listen[0] == '/'; /* HTTP/1.0 through a local socket */
        hlen = strcspn(host, ":");
        if (host[0] == '[')
                hlen = strcspn(host, "]") + 1;
        if ((hlen == 9 && strncmp(host, "localhost", 9) == 0) || (hlen == 9 && strncmp(host, "127.0.0.1", 9) == 0) ||
            (hlen == 5 && strncmp(host, "[::1]", 5) == 0))
                return true;
        if (strcmp(host, c->web.listen) == 0)
                return true;
        if (*c->web.url) {
                const char *u = strstr(c->web.url, "://");
                size_t ulen;
                u = u ? u + 3 : c->web.url;
                ulen = strcspn(u, "/");
                if (strlen(host) == ulen && strncasecmp(host, u, ulen) == 0)
                        return true;
        }
        return false;
}

static bool authenticated(struct web_request *req)
{
        const char *auth, *cookie;

        if (!req->web->token)
                return true;
        auth = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (auth && strncmp(auth, "Bearer ", 7) == 0 && equal_secret(auth + 7, req->web->token))
                return true;
        cookie = MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, WEB_COOKIE);
        return cookie && equal_secret(cookie, req->web->cookie);
}

static enum MHD_Result login_page(struct web_request *req, unsigned status, const char *message)
{
        web_page_begin(req, "Log in", "");
        fputs("<h1>jada-agent</h1>", req->out);
        if (message) {
                fputs("<p class=\"problem\">", req->out);
                web_h(req->out, message);
                fputs("</p>", req->out);
        }
        fputs("<form method=\"post\" action=\"/login\"><label>Token (the credential web-token)<br>"
              "<input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label> ",
              req->out);
        web_csrf_field(req);
        fputs("<button type=\"submit\">Log in</button></form>", req->out);
        web_page_end(req);
        return web_reply_page(req, status);
}

static enum MHD_Result login_post(struct web_request *req)
{
        const char *token = web_field(req, "token");
        struct MHD_Response *resp;
        _cleanup_free_ char *cookie = NULL;
        enum MHD_Result r;

        if (!req->web->token)
                return web_redirect(req, "/");
        if (!token || !equal_secret(token, req->web->token)) {
                log_notice("web: a login with a wrong token");
                return login_page(req, MHD_HTTP_FORBIDDEN, "That is not the token.");
        }
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!resp)
                return MHD_NO;
        cookie = xasprintf(WEB_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000", req->web->cookie);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
        MHD_add_response_header(resp, "Location", "/");
        security_headers(resp);
        r = MHD_queue_response(req->conn, MHD_HTTP_SEE_OTHER, resp);
        MHD_destroy_response(resp);
        return r;
}

/* ---- routing ------------------------------------------------------------- */

/* "/tasks/12/reply" → 12 and "reply"; false if the path is not of that form. */
static bool task_path(const char *path, int64_t *id, const char **rest)
{
        char *end;
        long long v;

        if (strncmp(path, "/tasks/", 7) != 0 || path[7] < '1' || path[7] > '9')
                return false;
        errno = 0;
        v = strtoll(path + 7, &end, 10);
        if (errno || v <= 0 || (*end && *end != '/'))
                return false;
        *id = v;
        *rest = *end ? end + 1 : "";
        return true;
}

static enum MHD_Result route_get(struct web_request *req)
{
        const char *path = req->url, *rest;
        int64_t id;

        if (strcmp(path, "/") == 0)
                return web_page_overview(req);
        if (strcmp(path, "/tasks") == 0)
                return web_page_tasks(req);
        if (strcmp(path, "/sessions") == 0)
                return web_page_sessions(req);
        if (strcmp(path, "/metrics") == 0)
                return web_metrics(req);
        if (strcmp(path, "/style.css") == 0) {
                struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(web_css), (void *)web_css,
                                                                            MHD_RESPMEM_PERSISTENT);
                enum MHD_Result r;
                if (!resp)
                        return MHD_NO;
                MHD_add_response_header(resp, "Content-Type", "text/css; charset=utf-8");
                MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
                MHD_add_response_header(resp, "Cache-Control", "max-age=3600");
                r = MHD_queue_response(req->conn, MHD_HTTP_OK, resp);
                MHD_destroy_response(resp);
                return r;
        }
        if (strncmp(path, "/api/", 5) == 0)
                return web_api(req, path + 4);
        if (task_path(path, &id, &rest) && !*rest)
                return web_page_task(req, id);
        return web_reply_error(req, MHD_HTTP_NOT_FOUND, "There is no page %s here.", path);
}

static enum MHD_Result route_post(struct web_request *req)
{
        const char *path = req->url, *rest, *csrf = web_field(req, "csrf");
        int64_t id;

        if (req->too_large)
                return web_reply_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "The form is larger than %d bytes.",
                                       WEB_BODY_MAX);
        if (req->bad_form)
                return web_reply_error(req, MHD_HTTP_BAD_REQUEST, "The form could not be read.");
        if (!csrf || !equal_secret(csrf, req->web->csrf)) {
                log_notice("web: refused a POST to %s without a valid form token", path);
                return web_reply_error(req, MHD_HTTP_FORBIDDEN,
                                       "The form's token is missing or out of date: reload the page and try again.");
        }
        if (strcmp(path, "/login") == 0)
                return login_post(req);
        if (strcmp(path, "/tasks") == 0)
                return web_post_add(req);
        if (task_path(path, &id, &rest) && *rest)
                return web_post_action(req, id, rest);
        return web_reply_error(req, MHD_HTTP_NOT_FOUND, "There is no action %s here.", path);
}

static enum MHD_Result on_post_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                     const char *content_type, const char *transfer_encoding, const char *data,
                                     uint64_t off, size_t size)
{
        struct web_request *req = cls;
        struct web_field *f = NULL;

        if (filename) { /* no uploads here */
                req->bad_form = true;
                return MHD_NO;
        }
        /* Chunks of one field come with growing offsets: append. */
        for (size_t i = 0; i < req->n_fields; i++)
                if (strcmp(req->fields[i].name, key) == 0 && off > 0 && off == req->fields[i].len)
                        f = &req->fields[i];
        if (!f) {
                if (req->n_fields == WEB_FIELDS_MAX) {
                        req->bad_form = true;
                        return MHD_NO;
                }
                f = &req->fields[req->n_fields++];
                *f = (struct web_field){ .name = xstrdup(key), .value = xstrdup(""), .size = 1 };
        }
        req->body_bytes += size;
        if (req->body_bytes > WEB_BODY_MAX) {
                req->too_large = true;
                return MHD_NO;
        }
        if (memchr(data, '\0', size)) { /* a NUL in a field: not text */
                req->bad_form = true;
                return MHD_NO;
        }
        /* Doubling: a field that comes a few bytes at a time costs linear time. */
        if (f->len + size + 1 > f->size) {
                size_t want = f->size ? f->size : 256;
                while (want < f->len + size + 1)
                        want *= 2;
                f->value = xreallocarray(f->value, want, 1);
                f->size = want;
        }
        memcpy(f->value + f->len, data, size);
        f->len += size;
        f->value[f->len] = '\0';
        return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
        struct web *w = cls;
        struct web_request *req = *con_cls;

        if (w->stopping)
                return MHD_NO;
        if (!req) {
                const char *length;
                req = xcalloc(1, sizeof *req);
                req->web = w;
                req->conn = conn;
                req->url = url;
                req->method = method;
                req->out = open_memstream(&req->buf, &req->len);
                if (!req->out)
                        abort();
                *con_cls = req;
                w->requests++;
                req->post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
                if (!req->post && strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                        return web_reply_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not a method of this dashboard.",
                                               method);
                if (!host_allowed(req))
                        return web_reply_error(req, MHD_HTTP_MISDIRECTED_REQUEST,
                                               "This dashboard does not answer to that host name (set [web] url).");
                if (req->post) {
                        /* Not one byte of a form is read before the login: only
                         * /login's own form is open. */
                        if (strcmp(url, "/login") != 0 && !authenticated(req))
                                return web_reply_error(req, MHD_HTTP_UNAUTHORIZED, "Log in first.");
                        length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                        if (length && strtoull(length, NULL, 10) > WEB_BODY_MAX)
                                return web_reply_error(req, MHD_HTTP_CONTENT_TOO_LARGE,
                                                       "The form is larger than %d bytes.", WEB_BODY_MAX);
                        req->pp = MHD_create_post_processor(conn, 16 * 1024, on_post_field, req);
                        if (!req->pp)
                                return web_reply_error(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                                       "A form must be application/x-www-form-urlencoded.");
                }
                return MHD_YES;
        }

        if (req->page && req->ready && !req->suspended) /* its children ended */
                return web_page_task_finish(req);

        if (req->post && *upload_data_size > 0) {
                if (MHD_post_process(req->pp, upload_data, *upload_data_size) != MHD_YES && !req->too_large)
                        req->bad_form = true;
                *upload_data_size = 0;
                /* Answered at once: the rest of the body is not read, and
                 * MHD closes the connection after the answer. */
                if (req->too_large)
                        return web_reply_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "The form is larger than %d bytes.",
                                               WEB_BODY_MAX);
                if (req->bad_form)
                        return web_reply_error(req, MHD_HTTP_BAD_REQUEST, "The form could not be read.");
                return MHD_YES;
        }

        /* The login page and its form are open; everything else needs the
         * token when there is one. */
        if (!(strcmp(url, "/login") == 0 || strcmp(url, "/style.css") == 0) && !authenticated(req)) {
                if (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/metrics") == 0) {
                        struct MHD_Response *resp;
                        enum MHD_Result r;
                        char *body = xstrdup("{\"error\": \"a bearer token is required (the credential web-token)\"}\n");
                        resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
                        if (!resp)
                                return MHD_NO;
                        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"jada-agent\"");
                        MHD_add_response_header(resp, "Content-Type", "application/json");
                        r = MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, resp);
                        MHD_destroy_response(resp);
                        return r;
                }
                if (!req->post)
                        return web_redirect(req, "/login");
                return web_reply_error(req, MHD_HTTP_UNAUTHORIZED, "Log in first.");
        }
        if (strcmp(url, "/login") == 0 && !req->post)
                return login_page(req, MHD_HTTP_OK, NULL);
        return req->post ? route_post(req) : route_get(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
        struct web_request *req = *con_cls;

        if (!req)
                return;
        for (struct web_request **p = &req->web->waiting; *p; p = &(*p)->next_waiting)
                if (*p == req) {
                        *p = req->next_waiting;
                        break;
                }
        web_task_page_free(req->page);
        if (req->pp)
                MHD_destroy_post_processor(req->pp);
        for (size_t i = 0; i < req->n_fields; i++) {
                free(req->fields[i].name);
                free(req->fields[i].value);
        }
        if (req->out)
                fclose(req->out);
        free(req->buf);
        free(req);
        *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        _cleanup_free_ char *msg = NULL;

        if (vasprintf(&msg, fmt, ap) < 0)
                return;
        msg[strcspn(msg, "\n")] = '\0';
        log_debug("web: %s", msg);
}

/* ---- the loop ------------------------------------------------------------ */

static void web_run(struct web *w);

void web_kick(struct web *w)
{
        (void)sd_event_source_set_time_relative(w->timer, 0);
        (void)sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
}

/* Pages read the store: MHD runs where the store may wait for it (the
 * fleet's fiber). While a run waits there, MHD's fd stays readable: its IO
 * source is off until the run, and MHD is only ever entered from it. */
static void web_run_job(void *userdata)
{
        struct web *w = userdata;

        if (w->io)
                (void)sd_event_source_set_enabled(w->io, SD_EVENT_ON);
        web_run(w);
}

static void web_run_soon(struct web *w)
{
        if (store_waits(w->db) && w->io)
                (void)sd_event_source_set_enabled(w->io, SD_EVENT_OFF);
        store_run_once(w->db, &w->run_job, web_run_job, w);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        web_run_soon(userdata);
        return 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        web_run_soon(userdata);
        return 0;
}

/* Runs what MHD has ready, then sleeps until its next timeout. */
static void web_run(struct web *w)
{
        MHD_UNSIGNED_LONG_LONG ms = 0;

        (void)MHD_run(w->mhd);
        if (MHD_get_timeout(w->mhd, &ms) == MHD_YES) {
                (void)sd_event_source_set_time_relative(w->timer, ms * USEC_PER_MSEC);
                (void)sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
        } else {
                (void)sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        }
}

static int open_socket(const struct jada_config *c, char **ret_unix, char *why, size_t size)
{
        struct sockaddr_storage ss;
        unsigned len;
        bool loopback;
        int fd, one = 1;

        if (config_parse_listen(c->web.listen, &ss, &len, &loopback, why, size) < 0)
                return -EINVAL;
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                snprintf(why, size, "cannot make a socket for %s: %s", c->web.listen, strerror(errno));
                return -errno;
        }
        if (ss.ss_family == AF_UNIX)
                (void)unlink(((struct sockaddr_un *)&ss)->sun_path); /* our own, left by a kill */
        else
                (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ss.ss_family == AF_INET6)
                (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
                int e = errno;
                snprintf(why, size, "cannot listen on %s: %s", c->web.listen, strerror(e));
                close(fd);
                return -e;
        }
        if (ss.ss_family == AF_UNIX) {
                /* The daemon's user and group: a proxy joins the group. */
                (void)chmod(((struct sockaddr_un *)&ss)->sun_path, 0660);
                *ret_unix = xstrdup(((struct sockaddr_un *)&ss)->sun_path);
        }
        return fd;
}

void web_set_config(struct web *w, const struct jada_config *config)
{
        w->config = config;
}

int web_start(sd_event *event, const struct jada_config *config, struct store *db, const struct web_hooks *hooks,
              struct web **ret, char *why, size_t size)
{
        _cleanup_free_ struct web *w = xcalloc(1, sizeof *w);
        const union MHD_DaemonInfo *info;
        struct sockaddr_storage ss;
        unsigned char key[32];
        unsigned len;
        bool loopback = false;
        int fd, r;

        if (config_parse_listen(config->web.listen, &ss, &len, &loopback, why, size) < 0)
                return -EINVAL;
        r = web_token_load(&w->token, why, size);
        if (r < 0)
                return r;
        if (!loopback && !w->token) {
                snprintf(why, size, "[web] listen = %s is not a loopback address: the dashboard needs the "
                         "credential web-token there (or listen on 127.0.0.1 and use ssh -L)", config->web.listen);
                return -EPERM;
        }
        r = load_secret(config->daemon.state_dir, key);
        if (r < 0) {
                snprintf(why, size, "cannot make the dashboard's secret: %s", strerror(-r));
                free(w->token);
                return r;
        }
        hmac_hex(key, sizeof key, "csrf", w->csrf);
        if (w->token)
                hmac_hex(w->token, strlen(w->token), "jada-web-cookie", w->cookie);
        OPENSSL_cleanse(key, sizeof key);

        w->event = event;
        w->config = config;
        w->db = db;
        w->hooks = *hooks;
        fd = open_socket(config, &w->socket_path, why, size);
        if (fd < 0) {
                free(w->token);
                return fd;
        }
        {
                char exe[4096];
                ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
                if (n > 0) {
                        exe[n] = '\0';
                        w->exe = xstrdup(exe);
                }
                w->config_path = realpath(config->path, NULL);
        }
        w->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, w,
                                  MHD_OPTION_LISTEN_SOCKET, fd,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned)WEB_CONNECTIONS_MAX,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)WEB_CONNECTION_MEMORY,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)WEB_IDLE_TIMEOUT_SEC,
                                  MHD_OPTION_NOTIFY_COMPLETED, on_completed, w,
                                  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, w,
                                  MHD_OPTION_END);
        if (!w->mhd) {
                snprintf(why, size, "cannot start the web server on %s", config->web.listen);
                close(fd);
                goto fail;
        }
        info = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info || sd_event_add_io(event, &w->io, info->epoll_fd, EPOLLIN, on_io, w) < 0 ||
            sd_event_add_time_relative(event, &w->timer, CLOCK_MONOTONIC, 0, 1, on_timer, w) < 0) {
                snprintf(why, size, "cannot watch the web server's sockets");
                goto fail;
        }
        /* Accuracy 1 us: 0 would mean sd-event's default of 250 ms, a
         * quarter second added to every answer that waited for a child. */
        (void)sd_event_source_set_description(w->io, "web");
        (void)sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        web_run(w);
        log_info("dashboard on %s%s", config->web.listen, w->token ? " (login with the credential web-token)" : "");
        *ret = w;
        w = NULL;
        return 0;

fail:
        w = web_stop(w);
        return -EIO;
}

struct web *web_stop(struct web *w)
{
        if (!w)
                return NULL;
        /* MHD stops only with no connection suspended: their children are
         * stopped, and their connections closed on the way out. */
        w->stopping = true;
        store_job_cancel(&w->run_job);
        for (struct web_request *r = w->waiting; r; r = r->next_waiting) {
                if (r->page) {
                        web_task_page_free(r->page);
                        r->page = NULL;
                }
                if (r->suspended) {
                        r->suspended = false;
                        MHD_resume_connection(r->conn);
                }
        }
        w->waiting = NULL;
        w->io = sd_event_source_disable_unref(w->io);
        w->timer = sd_event_source_disable_unref(w->timer);
        if (w->mhd)
                MHD_stop_daemon(w->mhd); /* closes the listening socket too */
        if (w->socket_path)
                (void)unlink(w->socket_path);
        free(w->socket_path);
        free(w->exe);
        free(w->config_path);
        if (w->token)
                OPENSSL_cleanse(w->token, strlen(w->token));
        free(w->token);
        free(w);
        return NULL;
}
