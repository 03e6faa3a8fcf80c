/* SPDX-License-Identifier: MIT */
#include "jada/alert.h"
#include "jada/config.h"
#include "jada/http.h"
#include "jada/log.h"
#include "jada/util.h"

#include <jansson.h>
#include <string.h>

/* Alerts are rare (transitions only); a queue this long means the hook is
 * down, and the journal has them all anyway. */
#define ALERT_QUEUE_MAX 32

struct alerter {
        sd_event *event;
        struct http_client *http;
        char *url;
        char *queue[ALERT_QUEUE_MAX];   /* JSON bodies, oldest first */
        size_t n;
        unsigned attempts;              /* of the oldest */
        struct http_request *request;   /* in flight */
        sd_event_source *retry;
};

static void alerter_kick(struct alerter *a);

static void queue_pop(struct alerter *a)
{
        free(a->queue[0]);
        memmove(a->queue, a->queue + 1, (a->n - 1) * sizeof a->queue[0]);
        a->n--;
        a->attempts = 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct alerter *a = userdata;

        a->retry = sd_event_source_disable_unref(a->retry);
        alerter_kick(a);
        return 0;
}

static void on_posted(struct http_request *req, const struct http_response *resp, void *userdata)
{
        struct alerter *a = userdata;
        _cleanup_free_ char *why = NULL;
        uint64_t delay;

        a->request = NULL;
        /* A 2xx status line means the hook took the alert, even when its
         * answer's body then fails (cut short, over max_body, too slow): the
         * body is never used, and a retry would post the same alert again
         * (the HTTP fault matrix found a delivered alert posted 6 times). */
        if (resp->status >= 200 && resp->status < 300) {
                queue_pop(a);
                alerter_kick(a);
                return;
        }
        /* The cause in words; "%s%ld" with the status made "...server0". */
        why = resp->error ? xstrdup(resp->error) : xasprintf("HTTP %ld", resp->status);
        a->attempts++;
        if (a->attempts >= ALERT_ATTEMPTS || (resp->status >= 400 && !http_status_transient(resp->status))) {
                log_warning("alert webhook: giving up on an alert after %u attempt%s (last: %s)", a->attempts,
                            a->attempts == 1 ? "" : "s", why);
                queue_pop(a);
                alerter_kick(a);
                return;
        }
        delay = http_backoff_delay(&(struct http_backoff){ .base_usec = ALERT_RETRY_BASE_USEC,
                                                           .max_usec = ALERT_RETRY_BASE_USEC << ALERT_ATTEMPTS },
                                   a->attempts, resp->retry_after_usec, 0);
        log_notice("alert webhook: %s; retrying in %llus", why, (unsigned long long)(delay / USEC_PER_SEC));
        if (sd_event_add_time_relative(a->event, &a->retry, CLOCK_MONOTONIC, delay, USEC_PER_SEC, on_retry, a) < 0)
                queue_pop(a);
}

static void alerter_kick(struct alerter *a)
{
        static const char *const headers[] = { "Content-Type: application/json", NULL };
        int r;

        if (a->request || a->retry || a->n == 0 || !a->url || !*a->url)
                return;
        r = http_request_start(a->http, &(struct http_options){
                .method = "POST",
                .url = a->url,
                .headers = headers,
                .body = a->queue[0],
                .body_len = strlen(a->queue[0]),
                .timeout_usec = ALERT_TIMEOUT_USEC,
                .max_body = 64 * 1024,
        }, on_posted, a, &a->request);
        if (r < 0) {
                log_warning_errno(r, "alert webhook: cannot send to the configured URL");
                queue_pop(a);
        }
}

int alerter_new(sd_event *event, struct http_client *http, struct alerter **ret)
{
        struct alerter *a = xcalloc(1, sizeof *a);

        a->event = sd_event_ref(event);
        a->http = http;
        *ret = a;
        return 0;
}

struct alerter *alerter_free(struct alerter *a)
{
        if (!a)
                return NULL;
        if (a->request)
                http_request_cancel(a->request);
        sd_event_source_disable_unref(a->retry);
        while (a->n)
                queue_pop(a);
        free(a->url);
        sd_event_unref(a->event);
        free(a);
        return NULL;
}

void alerter_set_url(struct alerter *a, const char *url)
{
        free(a->url);
        a->url = xstrdup(url ? url : "");
        alerter_kick(a);
}

void alerter_send(struct alerter *a, const char *text)
{
        json_t *doc = json_pack("{s:s}", "text", text);
        char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

        json_decref(doc);
        if (!body)
                abort();
        if (!a->url || !*a->url) {
                free(body);
                return;
        }
        if (a->n == ALERT_QUEUE_MAX) {
                log_warning("alert webhook: %d alerts waiting; dropping the oldest", ALERT_QUEUE_MAX);
                if (a->request) { /* the oldest is in flight: drop the next one instead */
                        free(a->queue[1]);
                        memmove(a->queue + 1, a->queue + 2, (a->n - 2) * sizeof a->queue[0]);
                        a->n--;
                } else {
                        queue_pop(a);
                }
        }
        a->queue[a->n++] = body;
        alerter_kick(a);
}
