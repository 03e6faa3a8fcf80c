/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"
#include <stdint.h>
#include <systemd/sd-event.h>

#include "jada/config.h"

/*
 * The dashboard ([web] listen): server-rendered pages, the actions of the
 * command line as POST forms, a JSON API with the CLI's --json shapes, and
 * /metrics. libmicrohttpd in its external-epoll mode, its epoll fd one IO
 * source of the daemon's loop: no thread, nothing that waits, every
 * connection non-blocking and bounded (count, memory, idle time).
 */
struct web;

/* What the dashboard needs from the daemon. */
struct web_live_session {
        int64_t task_id;
        unsigned turns;
};
struct web_hooks {
        /* A task was added or moved from a page: poll now. */
        void (*changed)(void *userdata);
        /* The Prometheus text of /metrics (malloc'ed). */
        char *(*metrics)(void *userdata);
        /* The running sessions, at most max; returns how many. */
        size_t (*live)(void *userdata, struct web_live_session *ret, size_t max);
        void *userdata;
};

/* The token that a non-loopback dashboard requires: the credential
 * web-token. Returns 0 and *ret (NULL when there is none), or a negative
 * errno with why (an unreadable or empty credential). */
int web_token_load(char **ret, char *why, size_t size);

/* Starts it on [web] listen (which must be set). A non-loopback address
 * without a token is refused (-EPERM, why says so). */
int web_start(sd_event *event, const struct jada_config *config, struct store *db, const struct web_hooks *hooks,
              struct web **ret, char *why, size_t size);
struct web *web_stop(struct web *web);
/* After a reload whose [web] listen did not change. */
void web_set_config(struct web *web, const struct jada_config *config);
