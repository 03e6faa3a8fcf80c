/* SPDX-License-Identifier: MIT */
#include "jada/task-action.h"
#include "jada/cli.h"
#include "jada/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
        const char *name;
        enum task_state to;
        const char *reason;             /* for the audit trail */
        const char *refusal;            /* after "task N is STATE: " */
        unsigned only_from;             /* by hand, narrower than what the daemon may do; 0: any legal */
        bool takes_text;
} actions[_TASK_ACTION_MAX] = {
        [TASK_ACTION_CANCEL] = { "cancel", TASK_CANCELLED, "cancelled by hand", "a done task cannot be cancelled", 0 },
        [TASK_ACTION_RETRY] = { "retry", TASK_QUEUED, "retried by hand", "only a failed task can be retried",
                                1u << TASK_FAILED },
        [TASK_ACTION_DONE] = { "done", TASK_DONE, "marked done by hand", "only a task in needs_you can be marked done",
                               1u << TASK_NEEDS_YOU },
        [TASK_ACTION_REPLY] = { "reply", TASK_QUEUED, "replied", "only a task in needs_you takes a reply",
                                1u << TASK_NEEDS_YOU, true },
};

const char *task_action_name(enum task_action action)
{
        return action < _TASK_ACTION_MAX ? actions[action].name : "?";
}

int task_action_from_name(const char *name)
{
        for (int i = 0; i < _TASK_ACTION_MAX; i++)
                if (strcmp(actions[i].name, name) == 0)
                        return i;
        return -EINVAL;
}

bool task_action_takes_text(enum task_action action)
{
        return action < _TASK_ACTION_MAX && actions[action].takes_text;
}

bool task_action_applies(enum task_action action, enum task_state state)
{
        if (action >= _TASK_ACTION_MAX)
                return false;
        if (actions[action].only_from && !(actions[action].only_from & (1u << state)))
                return false;
        return queue_transition_allowed(state, actions[action].to);
}

int task_action_apply(struct store *db, int64_t id, enum task_action action, const char *text, int64_t now,
                      enum task_state *ret_from, char *why, size_t size)
{
        struct queue_change change = { 0 };
        enum task_state from = TASK_QUEUED;
        int r;

        if (action >= _TASK_ACTION_MAX)
                return -EINVAL;
        change = (struct queue_change){ .reason = actions[action].reason, .only_from = actions[action].only_from };
        if (actions[action].takes_text && (!text || strspn(text, " \t\r\n") == strlen(text) ||
                                           !cli_text_ok(text, strlen(text), true) || strlen(text) > QUEUE_PROMPT_MAX)) {
                snprintf(why, size, "a reply must be text of 1 byte to %d bytes", QUEUE_PROMPT_MAX);
                return -EINVAL;
        }
        /* retry and reply: the task runs again now, its failures forgotten
         * (retry) or its question answered (reply). */
        if (actions[action].to == TASK_QUEUED) {
                change.run_after = now;
                change.reset_attempts = true;
                change.reply = actions[action].takes_text ? text : NULL;
        }
        if (action == TASK_ACTION_CANCEL) {
                unsigned children = 0;
                r = queue_cancel_tree(db, id, change.reason, now, &from, &children);
                if (r == 0)
                        r = (int)children;
        } else {
                r = queue_transition(db, id, actions[action].to, &change, now, &from);
        }
        if (ret_from)
                *ret_from = from;
        if (r == -ENOENT)
                snprintf(why, size, "no task %lld", (long long)id);
        else if (r == -EPERM && from == TASK_CANCELLED && actions[action].to == TASK_CANCELLED)
                snprintf(why, size, "task %lld is already cancelled", (long long)id);
        else if (r == -EPERM)
                snprintf(why, size, "task %lld is %s: %s", (long long)id, task_state_name(from),
                         actions[action].refusal);
        else if (r < 0)
                snprintf(why, size, "task %lld: %s", (long long)id, cli_db_error(r));
        return r;
}

int task_add_checked(struct store *db, const struct jada_config *config, const struct queue_new *task, int64_t now,
                     int64_t *ret_id, char *why, size_t size)
{
        struct queue_new t = *task;
        int r;

        if (t.title && (strlen(t.title) > QUEUE_TITLE_MAX || !cli_text_ok(t.title, strlen(t.title), false))) {
                snprintf(why, size, "the title must be one line of text, at most %d bytes", QUEUE_TITLE_MAX);
                return -EINVAL;
        }
        if (!t.prompt || strspn(t.prompt, " \t\r\n") == strlen(t.prompt) || strlen(t.prompt) > QUEUE_PROMPT_MAX ||
            !cli_text_ok(t.prompt, strlen(t.prompt), true)) {
                snprintf(why, size, "the prompt must be text of 1 byte to %d bytes", QUEUE_PROMPT_MAX);
                return -EINVAL;
        }
        /* The project must be one the config defines now: a task of an
         * unknown project could only wait forever. */
        if ((!t.project || !*t.project) && *config->daemon.default_project && t.parent_id <= 0)
                t.project = config->daemon.default_project; /* a sub-task's is its parent's */
        if (t.project && !*t.project)
                t.project = NULL;
        if (t.project && !config_project(config, t.project)) {
                snprintf(why, size, "there is no project '%s' in %s; nothing was added", t.project, config->path);
                return -EINVAL;
        }
        t.max_depth = config->claude.max_task_depth;
        t.max_children = config->claude.max_children_per_task;
        *why = '\0';
        r = queue_add_why(db, &t, now, ret_id, why, size);
        if (r < 0 && !*why)
                snprintf(why, size, "cannot add the task: %s", cli_db_error(r));
        return r;
}
