/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jada/config.h"
#include "jada/queue.h"

/*
 * What a person does to a task, by the command line or the dashboard: the
 * same rules and the same words either way. Each is one transition, refused
 * when the task is not in a state it applies to.
 */
enum task_action {
        TASK_ACTION_CANCEL,
        TASK_ACTION_RETRY,
        TASK_ACTION_DONE,
        TASK_ACTION_REPLY,
        _TASK_ACTION_MAX,
};

const char *task_action_name(enum task_action action);
int task_action_from_name(const char *name);    /* -EINVAL if unknown */
bool task_action_takes_text(enum task_action action);
/* Whether it applies to a task in that state (for offering it at all). */
bool task_action_applies(enum task_action action, enum task_state state);

/* Applies it. Returns 0 (for cancel: how many unfinished sub-tasks were
 * cancelled with the task) and *ret_from; or -ENOENT, -EPERM (the task is in
 * a state the action does not apply to), or another negative errno, with
 * why saying it in words ("task 3 is done: a done task cannot be
 * cancelled"). text: the reply, for TASK_ACTION_REPLY. */
int task_action_apply(struct store *db, int64_t id, enum task_action action, const char *text, int64_t now,
                      enum task_state *ret_from, char *why, size_t size);

/* Adds a task after the checks the command line makes: a one-line title of
 * at most QUEUE_TITLE_MAX bytes, a prompt that is text, a project the config
 * defines (the default project when none is given; a sub-task's parent's),
 * sub-tasks within [claude] max_task_depth and max_children_per_task (see
 * queue_add_why for the refusals). Returns 0 and *ret_id,
 * -EINVAL with why, or another negative errno. */
int task_add_checked(struct store *db, const struct jada_config *config, const struct queue_new *task, int64_t now,
                     int64_t *ret_id, char *why, size_t size);
