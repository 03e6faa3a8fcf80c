/* SPDX-License-Identifier: MIT */
#pragma once

#include <systemd/sd-event.h>

/*
 * The daemon's control socket: a datagram socket in the state dir through
 * which the command line nudges a running daemon ("wake": look at the queue
 * now). Only a nudge: nothing is lost when it cannot be delivered, because
 * the poll timer looks at the queue anyway.
 */
#define CONTROL_SOCKET_NAME "control.sock"
#define CONTROL_WAKE "wake"                 /* look at the queue now */
#define CONTROL_SYNC "sync"                 /* run the port-sheet sync now */
#define CONTROL_RELOAD_AUTH "reload-auth"   /* the Google token file changed */

typedef void (*control_fn)(const char *message, void *userdata);

/* Binds the socket (replacing a stale one) and adds it to the loop. */
int control_listen(sd_event *event, const char *state_dir, control_fn handler, void *userdata,
                   sd_event_source **ret);
/* Removes the socket file and the source. */
void control_close(sd_event_source *source, const char *state_dir);

/* Sends one message without waiting. Returns 0, or -ENOENT/-ECONNREFUSED
 * when no daemon listens, -EACCES without permission, -EAGAIN when its queue
 * is full (it is awake then anyway). */
int control_send(const char *state_dir, const char *message);
