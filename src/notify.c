/* SPDX-License-Identifier: MIT */
/* The notifier: delivers the outbox (notify-store.c) from the loop, to the
 * webhook through the http module and to [alerts] command through a job,
 * each channel on its own: in order, one delivery in flight, retried with
 * the alerts' backoff, marked done in the db only once delivered. */
#include "jada/notify.h"
#include "jada/alert.h"
#include "jada/http.h"
#include "jada/job.h"
#include "jada/log.h"
#include "jada/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A command that takes longer is stopped, and that attempt failed. */
#define NOTIFY_COMMAND_TIMEOUT_USEC (60 * USEC_PER_SEC)
/* Alerts waiting for the command; as the alerter's webhook queue. */
#define NOTIFY_ALERTS_MAX 32

struct notify_alert {
        char *text;
        bool recovered;
};

struct channel {
        struct notifier *notifier;
        enum notify_channel kind;
        int64_t row;                    /* the row being delivered or retried; 0: none (or an alert) */
        bool alert;                     /* command: alerts[0] is being delivered */
        unsigned attempts;              /* failures of the current delivery */
        char what[96];                  /* the delivery, for the journal: "task 12's done notification" */
        int64_t unmarked;               /* delivered, but the db could not record it yet */
        struct http_request *request;
        struct job *job;
        sd_event_source *retry;
        struct store_job *kick;         /* a kick waiting for the store's fiber */
};

struct notifier {
        sd_event *event;
        struct store *db;
        struct http_client *http;
        char *program;                  /* "jada-agent [-c CONFIG]", for the reply line */
        char *webhook_url, *command, *base_url, *home;
        unsigned event_mask;            /* [alerts] notify */
        bool outbox_paused;             /* a fleet's follower: the leader delivers the outbox */
        struct channel channels[_NOTIFY_CHANNEL_MAX];
        struct notify_alert alerts[NOTIFY_ALERTS_MAX];
        size_t n_alerts;
};

static void channel_kick(struct channel *ch);

static unsigned wanted_channels(const struct notifier *nf)
{
        return (*nf->webhook_url ? NOTIFY_CHANNEL_BIT(NOTIFY_CHANNEL_WEBHOOK) : 0) |
               (*nf->command ? NOTIFY_CHANNEL_BIT(NOTIFY_CHANNEL_COMMAND) : 0);
}

static void alert_pop(struct notifier *nf)
{
        free(nf->alerts[0].text);
        memmove(nf->alerts, nf->alerts + 1, (nf->n_alerts - 1) * sizeof nf->alerts[0]);
        nf->n_alerts--;
}

/* The channel is done with what it was delivering (delivered or given up). */
static void channel_finish(struct channel *ch)
{
        struct notifier *nf = ch->notifier;

        if (ch->alert) {
                alert_pop(nf);
        } else if (ch->row > 0 && notify_store_done(nf->db, ch->row, ch->kind, wanted_channels(nf)) < 0) {
                /* Kept in memory, so it is not sent twice while the db is down. */
                log_warning("notifications: cannot record a delivery to the %s; trying again later",
                            notify_channel_name(ch->kind));
                ch->unmarked = ch->row;
        }
        ch->alert = false;
        ch->row = 0;
        ch->attempts = 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct channel *ch = userdata;

        ch->retry = sd_event_source_disable_unref(ch->retry);
        channel_kick(ch);
        return 0;
}

static void channel_failed(struct channel *ch, const char *why, bool permanent, uint64_t retry_after)
{
        const char *to = notify_channel_name(ch->kind);
        uint64_t delay;

        ch->attempts++;
        if (permanent || ch->attempts >= ALERT_ATTEMPTS) {
                log_warning("notifications: giving up on %s to the %s after %u attempt%s (last: %s)",
                            ch->what, to, ch->attempts, ch->attempts == 1 ? "" : "s", why);
                channel_finish(ch);
                channel_kick(ch);
                return;
        }
        delay = http_backoff_delay(&(struct http_backoff){ .base_usec = ALERT_RETRY_BASE_USEC,
                                                           .max_usec = ALERT_RETRY_BASE_USEC << ALERT_ATTEMPTS },
                                   ch->attempts, retry_after, 0);
        log_notice("notifications: %s to the %s failed: %s; retrying in %llus", ch->what, to,
                   why, (unsigned long long)(delay / USEC_PER_SEC));
        /* Without the timer, the next kick (a poll at the latest) tries again. */
        (void)sd_event_add_time_relative(ch->notifier->event, &ch->retry, CLOCK_MONOTONIC, delay, USEC_PER_SEC,
                                         on_retry, ch);
}

static void channel_delivered(struct channel *ch)
{
        log_info("notifications: %s delivered to the %s", ch->what, notify_channel_name(ch->kind));
        channel_finish(ch);
        channel_kick(ch);
}

static void on_posted(struct http_request *req, const struct http_response *resp, void *userdata)
{
        struct channel *ch = userdata;
        _cleanup_free_ char *why = NULL;

        ch->request = NULL;
        /* As alerts: a 2xx status line is a delivery, whatever its body did
         * after it; posting again would send the message twice. */
        if (resp->status >= 200 && resp->status < 300) {
                channel_delivered(ch);
                return;
        }
        why = resp->error ? xstrdup(resp->error) : xasprintf("HTTP %ld", resp->status);
        channel_failed(ch, why, resp->status >= 400 && !http_status_transient(resp->status), resp->retry_after_usec);
}

static void on_command_done(struct job_result *res, void *userdata)
{
        struct channel *ch = userdata;
        _cleanup_free_ char *why = NULL;

        ch->job = NULL; /* the job frees itself */
        if (res->status == 0 && !res->timed_out) {
                channel_delivered(ch);
                return;
        }
        if (res->timed_out)
                why = xasprintf("timed out after %llus", (unsigned long long)(NOTIFY_COMMAND_TIMEOUT_USEC / USEC_PER_SEC));
        else if (res->status < 0)
                why = xasprintf("cannot run it: %s", strerror(-res->status));
        else
                why = xasprintf("exit status %d", res->status);
        channel_failed(ch, why, false, 0);
}

static int start_command(struct channel *ch, const char *message, const char *event,
                         const struct notification *n, const char *url)
{
        struct notifier *nf = ch->notifier;
        const char *path = getenv("PATH");
        const char *argv[] = { "/bin/sh", "-c", nf->command, NULL };
        _cleanup_free_ char *input = xasprintf("%s\n", message), *field = NULL;
        char *env[8] = { 0 };
        size_t k = 0;
        int r;

        /* Its own small environment, as on_done's: nothing of the daemon's
         * (credentials, NOTIFY_SOCKET) leaks into the operator's script. */
        env[k++] = xasprintf("PATH=%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
        env[k++] = xasprintf("HOME=%s", nf->home);
        env[k++] = xstrdup("LANG=C.UTF-8");
        env[k++] = xasprintf("JADA_EVENT=%s", event);
        env[k++] = xasprintf("JADA_TASK_ID=%lld", n ? (long long)n->task_id : 0LL);
        env[k++] = xasprintf("JADA_TASK_TITLE=%s", n ? n->title : "");
        env[k++] = xasprintf("JADA_URL=%s", url ? url : "");
        if (n)
                field = xasprintf("JADA_TASK_ID=%lld", (long long)n->task_id);
        r = job_start(nf->event, &(struct job_spec){
                .argv = argv, .env = (const char *const *)env, .cwd = "/",
                .timeout = NOTIFY_COMMAND_TIMEOUT_USEC, .stdout_fd = -1,
                .input = input, .input_len = strlen(input),
                .log_prefix = "notification command: ", .log_fields = JADA_FIELDS(field),
                .store = nf->db,
        }, on_command_done, ch, &ch->job);
        for (size_t i = 0; i < k; i++)
                free(env[i]);
        return r;
}

static int start_webhook(struct channel *ch, const struct notification *n, const struct notify_links *links)
{
        static const char *const headers[] = { "Content-Type: application/json", NULL };
        _cleanup_free_ char *body = notify_webhook_body(n, links);

        return http_request_start(ch->notifier->http, &(struct http_options){
                .method = "POST",
                .url = ch->notifier->webhook_url,
                .headers = headers,
                .body = body,
                .body_len = strlen(body),
                .timeout_usec = ALERT_TIMEOUT_USEC,
                .max_body = 64 * 1024,
                .store = ch->notifier->db,
        }, on_posted, ch, &ch->request);
}

static void channel_kick_now(void *userdata)
{
        struct channel *ch = userdata;
        struct notifier *nf = ch->notifier;
        struct notify_links links = { .program = nf->program, .base_url = nf->base_url };
        struct notification *n = NULL;
        _cleanup_free_ char *message = NULL, *url = NULL;
        int r;

        if (!(wanted_channels(nf) & NOTIFY_CHANNEL_BIT(ch->kind)) || ch->request || ch->job || ch->retry)
                return;
        if (ch->unmarked > 0) {
                if (notify_store_done(nf->db, ch->unmarked, ch->kind, wanted_channels(nf)) < 0)
                        return;
                ch->unmarked = 0;
        }
        if (ch->kind == NOTIFY_CHANNEL_COMMAND && nf->n_alerts > 0) {
                if (!ch->alert)
                        ch->attempts = 0;
                ch->alert = true;
                snprintf(ch->what, sizeof ch->what, "an alert");
                r = start_command(ch, nf->alerts[0].text, nf->alerts[0].recovered ? "recovery" : "alert", NULL, NULL);
                if (r < 0)
                        channel_failed(ch, strerror(-r), false, 0);
                return;
        }
        /* A fleet's outbox is one: its leader alone delivers it, once. */
        if (nf->outbox_paused)
                return;
        r = notify_store_next(nf->db, ch->kind, &n);
        if (r < 0)
                log_warning_errno(r, "notifications: cannot read the outbox");
        if (r <= 0)
                return;
        if (n->id != ch->row) {
                ch->row = n->id;
                ch->attempts = 0;
        }
        snprintf(ch->what, sizeof ch->what, "task %lld's %s notification", (long long)n->task_id,
                 notify_event_name(n->event));
        if (ch->kind == NOTIFY_CHANNEL_WEBHOOK) {
                r = start_webhook(ch, n, &links);
        } else {
                message = notify_message(n, &links);
                url = notify_task_url(&links, n->task_id);
                r = start_command(ch, message, notify_event_name(n->event), n, url);
        }
        notification_free(n);
        if (r < 0)
                channel_failed(ch, strerror(-r), false, 0);
}

/* Reads and writes the store: where it may wait for it (store_run_once). */
static void channel_kick(struct channel *ch)
{
        store_run_once(ch->notifier->db, &ch->kick, channel_kick_now, ch);
}

void notifier_set_outbox_paused(struct notifier *nf, bool paused)
{
        if (nf)
                nf->outbox_paused = paused;
}

bool notifier_outbox_paused(const struct notifier *nf)
{
        return nf && nf->outbox_paused;
}

void notifier_kick(struct notifier *nf)
{
        int64_t waiting = 0;
        int r;

        if (!nf)
                return;
        /* A read first: the delete is a write, and most kicks find nothing. */
        if (notify_store_count(nf->db, &waiting) == 0 && waiting > 0) {
                r = notify_store_drop_unwanted(nf->db, nf->event_mask, wanted_channels(nf));
                if (r > 0)
                        log_debug("notifications: %d dropped unsent ([alerts] notify does not name their event, "
                                  "or neither webhook_url nor command is set)", r);
        }
        for (int i = 0; i < _NOTIFY_CHANNEL_MAX; i++)
                channel_kick(&nf->channels[i]);
}

void notifier_alert(struct notifier *nf, bool recovered, const char *text)
{
        if (!nf || !*nf->command)
                return;
        if (nf->n_alerts == NOTIFY_ALERTS_MAX) {
                /* The oldest may be in flight: drop the next one instead. */
                size_t i = nf->channels[NOTIFY_CHANNEL_COMMAND].alert ? 1 : 0;
                log_warning("alert command: %d alerts waiting; dropping the oldest", NOTIFY_ALERTS_MAX);
                free(nf->alerts[i].text);
                memmove(nf->alerts + i, nf->alerts + i + 1, (nf->n_alerts - i - 1) * sizeof nf->alerts[0]);
                nf->n_alerts--;
        }
        nf->alerts[nf->n_alerts++] = (struct notify_alert){ .text = xstrdup(text), .recovered = recovered };
        channel_kick(&nf->channels[NOTIFY_CHANNEL_COMMAND]);
}

void notifier_set_config(struct notifier *nf, const struct jada_config *config)
{
        char url[1024];

        free(nf->webhook_url);
        free(nf->command);
        free(nf->base_url);
        free(nf->home);
        nf->webhook_url = xstrdup(config->alerts.webhook_url);
        nf->command = xstrdup(config->alerts.command);
        nf->base_url = xstrdup(config_web_url(config, url, sizeof url));
        nf->home = xasprintf("%s/home", config->daemon.state_dir);
        nf->event_mask = config->alerts.notify_mask;
        /* Alerts for a command that is gone go nowhere (as the webhook's). */
        while (!*nf->command && nf->n_alerts > 0 && !nf->channels[NOTIFY_CHANNEL_COMMAND].alert)
                alert_pop(nf);
}

int notifier_new(sd_event *event, struct store *db, struct http_client *http, const char *config_path,
                 struct notifier **ret)
{
        struct notifier *nf = xcalloc(1, sizeof *nf);

        nf->event = sd_event_ref(event);
        nf->db = db;
        nf->http = http;
        nf->program = notify_program(config_path);
        nf->webhook_url = xstrdup("");
        nf->command = xstrdup("");
        nf->base_url = xstrdup("");
        nf->home = xstrdup("/");
        for (int i = 0; i < _NOTIFY_CHANNEL_MAX; i++)
                nf->channels[i] = (struct channel){ .notifier = nf, .kind = (enum notify_channel)i };
        *ret = nf;
        return 0;
}

struct notifier *notifier_free(struct notifier *nf)
{
        if (!nf)
                return NULL;
        for (int i = 0; i < _NOTIFY_CHANNEL_MAX; i++) {
                struct channel *ch = &nf->channels[i];
                if (ch->request)
                        http_request_cancel(ch->request);
                job_cancel(ch->job);
                sd_event_source_disable_unref(ch->retry);
                store_job_cancel(&ch->kick);
        }
        while (nf->n_alerts > 0)
                alert_pop(nf);
        free(nf->program);
        free(nf->webhook_url);
        free(nf->command);
        free(nf->base_url);
        free(nf->home);
        sd_event_unref(nf->event);
        free(nf);
        return NULL;
}

bool notifier_idle(const struct notifier *nf)
{
        for (int i = 0; i < _NOTIFY_CHANNEL_MAX; i++)
                if (nf->channels[i].request || nf->channels[i].job || nf->channels[i].retry)
                        return false;
        return true;
}
