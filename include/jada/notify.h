/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "jada/config.h"
#include "jada/notify-store.h"

/*
 * Per-task notifications a person can act on ([alerts] notify): the outbox
 * rows (notify-store.h) delivered from the loop to [alerts] webhook_url
 * (a JSON POST) and to [alerts] command (/bin/sh -c, the message on stdin),
 * each channel in order, one delivery in flight, retried with the alerts'
 * backoff. A channel marks a row done only after it was delivered, so a
 * restart or a crash loses none and sends none twice, unless a delivery
 * was cut mid-request. The command also gets the daemon's problem alerts.
 */

struct http_client;
struct notifier;

/* What a message needs besides its row (notify-message.c). */
struct notify_links {
        const char *program;            /* the command line to reply with: "jada-agent" [-c CONFIG] */
        const char *base_url;           /* the dashboard, no trailing '/'; "": [web] is off */
};

/* "jada-agent", with " -c CONFIG" (absolute, quoted for a shell when it
 * must be) unless config_path is the default /etc/jada-agent.conf. */
char *notify_program(const char *config_path);
/* The task's dashboard page, or NULL when [web] is off. */
char *notify_task_url(const struct notify_links *links, int64_t task_id);
/* needs_you: `jada-agent task reply ID "..."`; else NULL. */
char *notify_reply_command(const struct notify_links *links, const struct notification *n);
/* The plain-text message, a few short lines for a phone:
 *   Task 12 "title" needs you: QUESTION / Reply: ... / URL
 *   Task 12 "title" failed: ERROR / Retry: ... / URL
 *   Task 12 "title" is done. / the result's first lines / Branch: ... / URL */
char *notify_message(const struct notification *n, const struct notify_links *links);
/* The webhook's JSON: {"text", "event", "task_id", "title", "url"?, "reply_command"?}. */
char *notify_webhook_body(const struct notification *n, const struct notify_links *links);

int notifier_new(sd_event *event, struct store *db, struct http_client *http, const char *config_path,
                 struct notifier **ret);
/* Cancels what is in flight: its row stays and is delivered after the next start. */
struct notifier *notifier_free(struct notifier *notifier);
/* Takes what it needs from a (new) config: the channels, notify, [web]. */
void notifier_set_config(struct notifier *notifier, const struct jada_config *config);
/* Looks at the outbox: drops what nobody wants, starts what is due. Cheap
 * when there is nothing to do (one indexed query per idle channel). */
/* A fleet's follower leaves the shared outbox to the leader (alerts of
 * its own health it still sends). */
void notifier_set_outbox_paused(struct notifier *nf, bool paused);
bool notifier_outbox_paused(const struct notifier *nf);
void notifier_kick(struct notifier *notifier);
/* A problem alert (or its recovery) for the command; the webhook gets it
 * from the alerter. Kept in memory: alerts are about now. */
void notifier_alert(struct notifier *notifier, bool recovered, const char *text);
/* Nothing in flight and nothing waiting for a retry: for the tests. */
bool notifier_idle(const struct notifier *notifier);
