/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jada/queue.h"

/*
 * The outbox of per-task notifications: all of the notifications table's
 * SQL. A row is written in the same transaction as its task's move (so a
 * crash can neither lose one nor invent one) and holds what the message
 * needs as it was then, each field bounded. The notifier (notify.c) takes
 * the rows oldest first, one channel at a time.
 */

enum notify_event {
        NOTIFY_EVENT_NEEDS_YOU,         /* bit i of [alerts] notify_mask: NOTIFY_NEEDS_YOU, ... */
        NOTIFY_EVENT_FAILED,
        NOTIFY_EVENT_DONE,
        _NOTIFY_EVENT_MAX,
};

enum notify_channel {
        NOTIFY_CHANNEL_WEBHOOK,
        NOTIFY_CHANNEL_COMMAND,
        _NOTIFY_CHANNEL_MAX,
};
#define NOTIFY_CHANNEL_BIT(c) (1u << (c))

/* Bounds of what a row keeps (bytes, UTF-8 kept whole; a cut ends in "…"). */
#define NOTIFY_TITLE_MAX 200
#define NOTIFY_QUESTION_MAX 1500
#define NOTIFY_ERROR_MAX 1000
#define NOTIFY_RESULT_MAX 2048
#define NOTIFY_RESULT_LINES 10

struct notification {
        int64_t id;
        int64_t task_id;
        enum notify_event event;
        int64_t created_at;
        char *title;
        char *detail;                   /* the question, the error or the result's head; may be "" */
        char *branch;                   /* NULL: the task has none */
};

const char *notify_event_name(enum notify_event event);
const char *notify_channel_name(enum notify_channel channel);
void notification_free(struct notification *n);

/* At most max_bytes of s and max_lines lines (0: any number), cut at a
 * character boundary, with "…" at a cut (within max_bytes). */
char *notify_cut(const char *s, size_t max_bytes, unsigned max_lines);

/* Within the caller's transaction, right after task_id moved to state
 * `to`: writes the row of that event (needs_you, failed, done), with the
 * task's fields as they are now. Any other state writes nothing. */
int notify_store_add(struct store *db, int64_t task_id, enum task_state to, int64_t now);

/* The oldest row the channel has not done. 1 and *ret, 0 if none, or a
 * negative errno. */
int notify_store_next(struct store *db, enum notify_channel channel, struct notification **ret);

/* The channel is done with a row (delivered, or given up on); the row goes
 * when every channel in `wanted` (NOTIFY_CHANNEL_BIT) is done with it. A row
 * that is gone already (its task pruned) is no error. */
int notify_store_done(struct store *db, int64_t id, enum notify_channel channel, unsigned wanted);

/* Deletes the rows nobody wants: their event is not in event_mask (bit i:
 * enum notify_event i), or every channel in `wanted` is done (with no
 * channel wanted: every row). Returns how many, or a negative errno. */
int notify_store_drop_unwanted(struct store *db, unsigned event_mask, unsigned wanted);

/* How many rows wait. */
int notify_store_count(struct store *db, int64_t *ret);
