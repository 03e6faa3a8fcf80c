/* SPDX-License-Identifier: MIT */
/* The outbox of per-task notifications: the notifications table's SQL
 * (the schema: db.c, version 8). */
#include "jada/notify-store.h"
#include "jada/store.h"
#include "jada/log.h"
#include "jada/util.h"

#include <errno.h>
#include <string.h>

static const char *const event_names[_NOTIFY_EVENT_MAX] = {
        [NOTIFY_EVENT_NEEDS_YOU] = "needs_you",
        [NOTIFY_EVENT_FAILED] = "failed",
        [NOTIFY_EVENT_DONE] = "done",
};

/* The column each channel marks; names, never input, go into the SQL. */
static const char *const channel_columns[_NOTIFY_CHANNEL_MAX] = {
        [NOTIFY_CHANNEL_WEBHOOK] = "webhook_done",
        [NOTIFY_CHANNEL_COMMAND] = "command_done",
};

const char *notify_event_name(enum notify_event event)
{
        return (unsigned)event < _NOTIFY_EVENT_MAX ? event_names[event] : "invalid";
}

const char *notify_channel_name(enum notify_channel channel)
{
        return channel == NOTIFY_CHANNEL_WEBHOOK ? "webhook" : "command";
}

void notification_free(struct notification *n)
{
        if (!n)
                return;
        free(n->title);
        free(n->detail);
        free(n->branch);
        free(n);
}

char *notify_cut(const char *s, size_t max_bytes, unsigned max_lines)
{
        static const char ellipsis[] = "…";
        const size_t e = sizeof ellipsis - 1;
        size_t n = strlen(s);
        bool cut = false;
        char *out;

        if (max_lines > 0) {
                const char *p = s;
                for (unsigned i = 0; i < max_lines && p; i++) {
                        p = strchr(p, '\n');
                        if (p)
                                p++;
                }
                /* More text after the last line kept (a final '\n' alone is not more). */
                if (p && p[strspn(p, " \t\r\n")]) {
                        n = (size_t)(p - s);
                        cut = true;
                }
        }
        if (n > max_bytes || (cut && n + e > max_bytes)) {
                n = max_bytes > e ? max_bytes - e : 0;
                cut = true;
        }
        /* s[n] is the first byte left out: never keep half a character. */
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
                n--;
        while (n > 0 && strchr(" \t\r\n", s[n - 1]))
                n--;
        if (cut && max_bytes < e)
                cut = false; /* no room even for the mark */
        out = xmalloc(n + e + 1);
        memcpy(out, s, n);
        if (cut)
                memcpy(out + n, ellipsis, e);
        out[n + (cut ? e : 0)] = '\0';
        return out;
}

static int event_of_state(enum task_state to)
{
        switch (to) {
        case TASK_NEEDS_YOU:
                return NOTIFY_EVENT_NEEDS_YOU;
        case TASK_FAILED:
                return NOTIFY_EVENT_FAILED;
        case TASK_DONE:
                return NOTIFY_EVENT_DONE;
        default:
                return -1;
        }
}

static const char *column_or_empty(struct store_stmt *st, int column)
{
        const char *s = store_column_text(st, column);
        return s ? s : "";
}

int notify_store_add(struct store *db, int64_t task_id, enum task_state to, int64_t now)
{
        _cleanup_stmt_ struct store_stmt *task = NULL;
        _cleanup_free_ char *title = NULL, *detail = NULL;
        int event = event_of_state(to), r, rc;
        struct store_stmt *st;

        if (event < 0)
                return 0;
        r = store_prepare(db, "SELECT title, needs_you_reason, error, result, branch FROM tasks WHERE id = ?1", &task);
        if (r < 0)
                return r;
        store_bind_int64(task, 1, task_id);
        rc = store_step(task);
        if (rc != STORE_ROW)
                return rc == STORE_DONE ? -ENOENT : rc;

        title = notify_cut(column_or_empty(task, 0), NOTIFY_TITLE_MAX, 1);
        if (event == NOTIFY_EVENT_NEEDS_YOU)
                detail = notify_cut(column_or_empty(task, 1), NOTIFY_QUESTION_MAX, 0);
        else if (event == NOTIFY_EVENT_FAILED)
                detail = notify_cut(column_or_empty(task, 2), NOTIFY_ERROR_MAX, 0);
        else
                detail = notify_cut(column_or_empty(task, 3), NOTIFY_RESULT_MAX, NOTIFY_RESULT_LINES);

        r = store_prepare(db,
                       "INSERT INTO notifications (task_id, event, created_at, title, detail, branch) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                       &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, task_id);
        store_bind_text(st, 2, event_names[event]);
        store_bind_int64(st, 3, now);
        store_bind_text(st, 4, title);
        store_bind_text(st, 5, detail);
        store_bind_text(st, 6, store_column_text(task, 4));
        return store_step_done(st);
}

int notify_store_next(struct store *db, enum notify_channel channel, struct notification **ret)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        _cleanup_free_ char *sql = NULL;
        struct notification *n;
        int r, rc, event = -1;

        sql = xasprintf("SELECT id, task_id, event, created_at, title, detail, branch FROM notifications "
                        "WHERE %s = 0 ORDER BY id LIMIT 1", channel_columns[channel]);
        r = store_prepare(db, sql, &st);
        if (r < 0)
                return r;
        rc = store_step(st);
        if (rc == STORE_DONE)
                return 0;
        if (rc != STORE_ROW)
                return rc;
        for (int i = 0; i < _NOTIFY_EVENT_MAX; i++)
                if (strcmp(column_or_empty(st, 2), event_names[i]) == 0)
                        event = i;
        if (event < 0)
                return -EBADMSG; /* the CHECK constraint keeps this out */
        n = xcalloc(1, sizeof *n);
        n->id = store_column_int64(st, 0);
        n->task_id = store_column_int64(st, 1);
        n->event = (enum notify_event)event;
        n->created_at = store_column_int64(st, 3);
        n->title = xstrdup(column_or_empty(st, 4));
        n->detail = xstrdup(column_or_empty(st, 5));
        n->branch = store_column_strdup(st, 6);
        *ret = n;
        return 1;
}

/* "(webhook_done OR NOT ?w) AND (command_done OR NOT ?c)": every wanted
 * channel is done with the row. */
#define ALL_WANTED_DONE "(webhook_done <> 0 OR ?8 = 0) AND (command_done <> 0 OR ?9 = 0)"

static void bind_wanted(struct store_stmt *st, unsigned wanted)
{
        store_bind_int64(st, 8, !!(wanted & NOTIFY_CHANNEL_BIT(NOTIFY_CHANNEL_WEBHOOK)));
        store_bind_int64(st, 9, !!(wanted & NOTIFY_CHANNEL_BIT(NOTIFY_CHANNEL_COMMAND)));
}

int notify_store_done(struct store *db, int64_t id, enum notify_channel channel, unsigned wanted)
{
        _cleanup_free_ char *sql = NULL;
        struct store_stmt *st;
        int r;

        /* The mark and the delete at once: no row is ever seen with every
         * wanted channel done and still there. */
        r = store_begin(db);
        if (r < 0)
                return r;
        sql = xasprintf("UPDATE notifications SET %s = 1 WHERE id = ?1", channel_columns[channel]);
        r = store_prepare(db, sql, &st);
        if (r == 0) {
                store_bind_int64(st, 1, id);
                r = store_step_done(st);
        }
        if (r == 0)
                r = store_prepare(db, "DELETE FROM notifications WHERE id = ?1 AND " ALL_WANTED_DONE, &st);
        if (r == 0) {
                store_bind_int64(st, 1, id);
                bind_wanted(st, wanted);
                r = store_step_done(st);
        }
        if (r == 0)
                r = store_commit(db);
        if (r < 0)
                store_rollback(db);
        return r;
}

int notify_store_drop_unwanted(struct store *db, unsigned event_mask, unsigned wanted)
{
        struct store_stmt *st;
        int r = store_prepare(db,
                           "DELETE FROM notifications WHERE (CASE event WHEN 'needs_you' THEN ?1 "
                           "WHEN 'failed' THEN ?2 ELSE ?3 END) = 0 OR (" ALL_WANTED_DONE ")",
                           &st);

        if (r < 0)
                return r;
        for (int i = 0; i < _NOTIFY_EVENT_MAX; i++)
                store_bind_int64(st, i + 1, !!(event_mask & (1u << i)));
        bind_wanted(st, wanted);
        r = store_step_done(st);
        return r < 0 ? r : store_changes(db);
}

int notify_store_count(struct store *db, int64_t *ret)
{
        struct store_stmt *st;
        int r = store_prepare(db, "SELECT count(*) FROM notifications", &st);

        if (r < 0)
                return *ret = 0, r;
        return store_read_int64(st, ret);
}
