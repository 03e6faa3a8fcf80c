/* SPDX-License-Identifier: MIT */
/* The words of a notification: the plain text a person reads on a phone,
 * and the webhook's JSON around it. Everything from a task is bounded in
 * its outbox row already (notify-store.c). */
#include "jada/notify.h"
#include "jada/report.h"
#include "jada/util.h"

#include <jansson.h>
#include <string.h>

/* Characters a shell takes as they are in a word. */
#define SHELL_SAFE "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./+-=:,@%"

static char *shell_quote(const char *s)
{
        size_t n = 2, k = 0;
        char *out;

        if (*s && s[strspn(s, SHELL_SAFE)] == '\0')
                return xstrdup(s);
        for (const char *p = s; *p; p++)
                n += *p == '\'' ? 4 : 1;
        out = xmalloc(n + 1);
        out[k++] = '\'';
        for (const char *p = s; *p; p++) {
                if (*p == '\'') {
                        memcpy(out + k, "'\\''", 4); /* close, an escaped quote, open again */
                        k += 4;
                } else {
                        out[k++] = *p;
                }
        }
        out[k++] = '\'';
        out[k] = '\0';
        return out;
}

char *notify_program(const char *config_path)
{
        _cleanup_free_ char *cwd = NULL, *path = NULL, *quoted = NULL;

        if (!config_path || strcmp(config_path, JADA_DEFAULT_CONFIG) == 0)
                return xstrdup("jada-agent");
        /* Absolute: the person runs the line from wherever they are. */
        if (config_path[0] != '/') {
                cwd = xgetcwd();
                path = path_join_normalize(cwd, config_path);
        } else {
                path = xstrdup(config_path);
        }
        if (strcmp(path, JADA_DEFAULT_CONFIG) == 0)
                return xstrdup("jada-agent");
        quoted = shell_quote(path);
        return xasprintf("jada-agent -c %s", quoted);
}

char *notify_task_url(const struct notify_links *links, int64_t task_id)
{
        if (!links->base_url || !*links->base_url)
                return NULL;
        return xasprintf("%s/tasks/%lld", links->base_url, (long long)task_id);
}

char *notify_reply_command(const struct notify_links *links, const struct notification *n)
{
        if (n->event != NOTIFY_EVENT_NEEDS_YOU)
                return NULL;
        return xasprintf("%s task reply %lld \"...\"", links->program, (long long)n->task_id);
}

/* Control characters would garble a phone's screen or a terminal (an
 * escape sequence in a title): spaces, but for the line breaks of a
 * multi-line field. */
static char *clean(const char *s, bool multiline)
{
        char *out = xstrdup(s);

        for (char *p = out; *p; p++)
                if (((unsigned char)*p < 0x20 && !(multiline && *p == '\n')) || *p == 0x7f)
                        *p = ' ';
        return out;
}

char *notify_message(const struct notification *n, const struct notify_links *links)
{
        _cleanup_free_ char *title = clean(n->title, false), *detail = clean(n->detail, true);
        _cleanup_free_ char *head = NULL, *body = NULL, *tail = NULL, *url = notify_task_url(links, n->task_id);
        _cleanup_free_ char *reply = notify_reply_command(links, n);
        long long id = (long long)n->task_id;

        switch (n->event) {
        case NOTIFY_EVENT_NEEDS_YOU:
                head = *detail ? xasprintf("Task %lld \"%s\" needs you: %s", id, title, detail)
                               : xasprintf("Task %lld \"%s\" needs you.", id, title);
                body = xasprintf("Reply: %s", reply);
                break;
        case NOTIFY_EVENT_FAILED:
                head = *detail ? xasprintf("Task %lld \"%s\" failed: %s", id, title, detail)
                               : xasprintf("Task %lld \"%s\" failed.", id, title);
                body = xasprintf("Retry: %s task retry %lld", links->program, id);
                break;
        default:
                head = xasprintf("Task %lld \"%s\" is done.", id, title);
                if (*detail && n->branch)
                        body = xasprintf("%s\nBranch: %s", detail, n->branch);
                else if (n->branch)
                        body = xasprintf("Branch: %s", n->branch);
                else if (*detail)
                        body = xstrdup(detail);
                break;
        }
        tail = xasprintf("%s%s%s", body ? "\n" : "", body ? body : "", url ? "\n" : "");
        return xasprintf("%s%s%s", head, tail, url ? url : "");
}

/* jansson takes only valid UTF-8: report_text() makes other bytes '?'. */
static json_t *json_text(const char *s)
{
        return report_text(s);
}

char *notify_webhook_body(const struct notification *n, const struct notify_links *links)
{
        _cleanup_free_ char *text = notify_message(n, links), *url = notify_task_url(links, n->task_id);
        _cleanup_free_ char *reply = notify_reply_command(links, n), *title = clean(n->title, false);
        json_t *doc = json_object();
        char *body;

        json_object_set_new(doc, "text", json_text(text));
        json_object_set_new(doc, "event", json_string(notify_event_name(n->event)));
        json_object_set_new(doc, "task_id", json_integer(n->task_id));
        json_object_set_new(doc, "title", json_text(title));
        if (url)
                json_object_set_new(doc, "url", json_text(url));
        if (reply)
                json_object_set_new(doc, "reply_command", json_text(reply));
        body = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        if (!body)
                abort(); /* out of memory on a few KiB */
        return body;
}
