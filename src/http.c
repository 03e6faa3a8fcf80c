/* SPDX-License-Identifier: MIT */
#include "jada/http.h"
#include "http-private.h"
#include "jada/log.h"
#include "jada/store.h"
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

static void request_deliver(struct http_request *req, CURLcode code)
{
        struct http_response resp = {
                .curl_code = (int)code,
                .body = req->body ? req->body : "",
                .body_len = req->body_len,
                .body_truncated = req->body_truncated,
                .retry_after_usec = req->retry_after_usec,
        };
        char *content_type = NULL;

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

static void request_deliver_job(void *userdata)
{
        struct http_request *req = userdata;

        request_deliver(req, req->code);
}

static void request_finish(struct http_request *req, CURLcode code)
{
        request_detach(req);
        /* A callback that uses the store runs where it may wait for it; the
         * request (and its easy handle, which holds the answer's headers)
         * lives until then, and a cancel meanwhile only drops the callback. */
        if (req->store && store_waits(req->store)) {
                req->code = code;
                req->pending = true;
                store_run(req->store, request_deliver_job, req);
                return;
        }
        request_deliver(req, code);
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
        if (!http_method_valid(method))
                return -EINVAL;

        req = calloc(1, sizeof *req);
        if (!req)
                return -ENOMEM;
        req->client = client;
        req->done = done;
        req->userdata = userdata;
        req->store = opts->store;
        req->max_body = opts->max_body ? opts->max_body : HTTP_MAX_BODY_DEFAULT;
        /* Keeps max_body + 1 (the NUL) from overflowing. */
        if (req->max_body > SIZE_MAX / 2)
                req->max_body = SIZE_MAX / 2;

        r = http_easy_describe(method, opts->url, &req->description);
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
        r = http_easy_setup(req, opts, method);
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
        if (req->pending) {
                req->done = NULL;
                return;
        }
        log_debug("http: %s cancelled", req->description);
        request_detach(req);
        request_free(req);
}
