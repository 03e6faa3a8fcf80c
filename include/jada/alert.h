/* SPDX-License-Identifier: MIT */
#pragma once

#include <systemd/sd-event.h>

/*
 * Alerts to a webhook ([alerts] webhook_url): a JSON POST {"text": ...}, the
 * shape Slack, Mattermost and ntfy-style hooks take. Sent from the loop
 * through the http module, retried with backoff, never blocking; the
 * journal entry of the alert is written by the health module regardless.
 */

struct alerter;
struct http_client;

/* The webhook's delivery policy, also per-task notifications' (notify.c):
 * this many attempts, waits doubling from the base, each POST bounded. */
#define ALERT_ATTEMPTS 6
#define ALERT_TIMEOUT_USEC (15 * USEC_PER_SEC)
#define ALERT_RETRY_BASE_USEC (5 * USEC_PER_SEC)

int alerter_new(sd_event *event, struct http_client *http, struct alerter **ret);
struct alerter *alerter_free(struct alerter *alerter);

/* "" turns the webhook off; alerts still pending go to the new URL. */
void alerter_set_url(struct alerter *alerter, const char *url);
/* Queues one alert; a full queue drops the oldest (logged). */
void alerter_send(struct alerter *alerter, const char *text);
