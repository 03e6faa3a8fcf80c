/* SPDX-License-Identifier: MIT */
/* Unit tests: per-task notifications, their words (notify-message.c), their
 * bounds and their outbox (notify-store.c) on a real SQLite db, written by
 * queue_transition() itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jada/db.h"
#include "jada/log.h"
#include "jada/notify.h"
#include "jada/queue.h"
#include "jada/util.h"

#define WEBHOOK NOTIFY_CHANNEL_BIT(NOTIFY_CHANNEL_WEBHOOK)
#define COMMAND NOTIFY_CHANNEL_BIT(NOTIFY_CHANNEL_COMMAND)
#define ALL_EVENTS 7u

static void check_cut(const char *in, size_t max, unsigned lines, const char *want)
{
        char *got = notify_cut(in, max, lines);
        assert_string_equal(got, want);
        assert_true(strlen(got) <= max);
        free(got);
}

static void test_cut(void **state)
{
        check_cut("short", 100, 0, "short");
        check_cut("trailing space \n\n", 100, 0, "trailing space");
        check_cut("abcdefghij", 8, 0, "abcde…");
        /* "é" is 2 bytes: never half of it. 7 - 3 = 4 bytes: "éé". */
        check_cut("éééééé", 7, 0, "éé…");
        check_cut("éééééé", 8, 0, "éé…"); /* 5 bytes would split the third */
        check_cut("a\nb\nc\nd\n", 100, 2, "a\nb…");
        check_cut("a\nb\n", 100, 2, "a\nb");    /* exactly the lines: no cut */
        check_cut("a\nb\n\n  \n", 100, 2, "a\nb"); /* blank lines after are not more */
        check_cut("", 10, 3, "");
        check_cut("abc", 2, 0, ""); /* too small for the mark: nothing, never over */
}

static void test_program(void **state)
{
        char *cwd = xgetcwd(), *want, *p;

        p = notify_program(JADA_DEFAULT_CONFIG);
        assert_string_equal(p, "jada-agent");
        free(p);
        p = notify_program("/etc/jada/x.conf");
        assert_string_equal(p, "jada-agent -c /etc/jada/x.conf");
        free(p);
        p = notify_program("/srv/my conf/it's.conf");
        assert_string_equal(p, "jada-agent -c '/srv/my conf/it'\\''s.conf'");
        free(p);
        /* Relative: made absolute, runnable from anywhere. */
        p = notify_program("conf/../a.conf");
        want = xasprintf("jada-agent -c %s/a.conf", cwd);
        assert_string_equal(p, want);
        free(p);
        free(want);
        free(cwd);
}

static void test_messages(void **state)
{
        struct notify_links links = { .program = "jada-agent -c /x.conf", .base_url = "" };
        struct notification n = { .id = 1, .task_id = 12, .event = NOTIFY_EVENT_NEEDS_YOU, .title = "Deploy",
                                  .detail = "which branch?" };
        char *m;

        m = notify_message(&n, &links);
        assert_string_equal(m, "Task 12 \"Deploy\" needs you: which branch?\n"
                               "Reply: jada-agent -c /x.conf task reply 12 \"...\"");
        free(m);

        links.base_url = "https://jada.example";
        n.event = NOTIFY_EVENT_FAILED;
        n.detail = "crashed 5 times";
        m = notify_message(&n, &links);
        assert_string_equal(m, "Task 12 \"Deploy\" failed: crashed 5 times\n"
                               "Retry: jada-agent -c /x.conf task retry 12\nhttps://jada.example/tasks/12");
        free(m);

        n.event = NOTIFY_EVENT_DONE;
        n.detail = "Deployed.\nAll green.";
        n.branch = "jada/task-12";
        m = notify_message(&n, &links);
        assert_string_equal(m, "Task 12 \"Deploy\" is done.\nDeployed.\nAll green.\nBranch: jada/task-12\n"
                               "https://jada.example/tasks/12");
        free(m);

        /* No result, no branch, no web; a title's control characters go. */
        links.base_url = "";
        n.detail = "";
        n.branch = NULL;
        n.title = "bad\x1b[31m\ntitle";
        m = notify_message(&n, &links);
        assert_string_equal(m, "Task 12 \"bad [31m title\" is done.");
        free(m);
}

static void test_webhook_body(void **state)
{
        struct notify_links links = { .program = "jada-agent", .base_url = "http://127.0.0.1:8780" };
        struct notification n = { .id = 1, .task_id = 7, .event = NOTIFY_EVENT_NEEDS_YOU, .title = "T",
                                  .detail = "ok?" };
        char *body = notify_webhook_body(&n, &links);
        json_t *doc = json_loads(body, 0, NULL);

        assert_non_null(doc);
        assert_string_equal(json_string_value(json_object_get(doc, "text")),
                            "Task 7 \"T\" needs you: ok?\nReply: jada-agent task reply 7 \"...\"\n"
                            "http://127.0.0.1:8780/tasks/7");
        assert_string_equal(json_string_value(json_object_get(doc, "event")), "needs_you");
        assert_int_equal(json_integer_value(json_object_get(doc, "task_id")), 7);
        assert_string_equal(json_string_value(json_object_get(doc, "title")), "T");
        assert_string_equal(json_string_value(json_object_get(doc, "url")), "http://127.0.0.1:8780/tasks/7");
        assert_string_equal(json_string_value(json_object_get(doc, "reply_command")),
                            "jada-agent task reply 7 \"...\"");
        json_decref(doc);
        free(body);

        /* Not UTF-8 (a hand-edited db): still JSON, still sent. */
        n.event = NOTIFY_EVENT_DONE;
        n.title = "caf\xe9";
        links.base_url = "";
        body = notify_webhook_body(&n, &links);
        doc = json_loads(body, 0, NULL);
        assert_non_null(doc);
        assert_string_equal(json_string_value(json_object_get(doc, "title")), "caf?");
        assert_null(json_object_get(doc, "url"));
        assert_null(json_object_get(doc, "reply_command"));
        json_decref(doc);
        free(body);
}

/* ---- the outbox ------------------------------------------------------- */

struct fixture {
        char dir[64];
        char *path;
        struct store *db;
};

static int setup(void **state)
{
        struct fixture *f = xcalloc(1, sizeof *f);

        snprintf(f->dir, sizeof f->dir, "/tmp/jada-test-notify-XXXXXX");
        if (!mkdtemp(f->dir) || (f->path = db_path_for(f->dir), store_open(f->path, &f->db) < 0))
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        const char *const suffixes[] = { "", "-wal", "-shm" };

        store_close(f->db);
        for (size_t i = 0; i < 3; i++) {
                char *p = xasprintf("%s%s", f->path, suffixes[i]);
                (void)unlink(p);
                free(p);
        }
        rmdir(f->dir);
        free(f->path);
        free(f);
        return 0;
}

static int64_t add(struct store *db, const char *title)
{
        int64_t id;
        assert_int_equal(queue_add(db, &(struct queue_new){ .title = title, .prompt = "p" }, now_seconds(), &id), 0);
        return id;
}

static int64_t count(struct store *db)
{
        int64_t n;
        assert_int_equal(notify_store_count(db, &n), 0);
        return n;
}

static void move(struct store *db, int64_t id, enum task_state to, const struct queue_change *change)
{
        assert_int_equal(queue_transition(db, id, to, change, now_seconds(), NULL), 0);
}

static void test_transition_writes_the_row(void **state)
{
        struct fixture *f = *state;
        struct notification *n = NULL;
        char *question = xmalloc(100001);
        int64_t a = add(f->db, "A"), b = add(f->db, "B");

        memset(question, 'q', 100000);
        question[100000] = '\0';
        move(f->db, a, TASK_RUNNING, NULL);
        assert_int_equal(count(f->db), 0); /* running: nothing to say */
        move(f->db, a, TASK_NEEDS_YOU, &(struct queue_change){ .needs_you_reason = question });
        move(f->db, b, TASK_RUNNING, NULL);
        move(f->db, b, TASK_FAILED, &(struct queue_change){ .error = "crashed" });
        /* Illegal, refused: no row either. */
        assert_int_equal(queue_transition(f->db, b, TASK_DONE, NULL, now_seconds(), NULL), -EPERM);
        assert_int_equal(count(f->db), 2);

        assert_int_equal(notify_store_next(f->db, NOTIFY_CHANNEL_WEBHOOK, &n), 1);
        assert_int_equal(n->task_id, a);
        assert_int_equal(n->event, NOTIFY_EVENT_NEEDS_YOU);
        assert_string_equal(n->title, "A");
        assert_int_equal(strlen(n->detail), NOTIFY_QUESTION_MAX); /* bounded: 1497 q's and "…" */
        assert_string_equal(n->detail + NOTIFY_QUESTION_MAX - 3, "…");
        assert_null(n->branch);

        /* One channel done; the row stays for the other, then goes. */
        assert_int_equal(notify_store_done(f->db, n->id, NOTIFY_CHANNEL_WEBHOOK, WEBHOOK | COMMAND), 0);
        assert_int_equal(count(f->db), 2);
        notification_free(n);
        assert_int_equal(notify_store_next(f->db, NOTIFY_CHANNEL_WEBHOOK, &n), 1);
        assert_int_equal(n->task_id, b);
        assert_string_equal(n->detail, "crashed");
        notification_free(n);
        assert_int_equal(notify_store_next(f->db, NOTIFY_CHANNEL_COMMAND, &n), 1);
        assert_int_equal(n->task_id, a);
        assert_int_equal(notify_store_done(f->db, n->id, NOTIFY_CHANNEL_COMMAND, WEBHOOK | COMMAND), 0);
        notification_free(n);
        assert_int_equal(count(f->db), 1);
        free(question);
}

static void test_done_keeps_the_result_head_and_branch(void **state)
{
        struct fixture *f = *state;
        struct notification *n = NULL;
        int64_t a = add(f->db, "A");

        move(f->db, a, TASK_RUNNING, NULL);
        assert_int_equal(queue_set_branch(f->db, a, "jada/task-1", "main", "0123", NULL), 0);
        move(f->db, a, TASK_DONE, &(struct queue_change){ .result = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n" });
        assert_int_equal(notify_store_next(f->db, NOTIFY_CHANNEL_COMMAND, &n), 1);
        assert_int_equal(n->event, NOTIFY_EVENT_DONE);
        assert_string_equal(n->detail, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10…");
        assert_string_equal(n->branch, "jada/task-1");
        notification_free(n);
}

static void test_drop_unwanted_and_prune(void **state)
{
        struct fixture *f = *state;
        int64_t a = add(f->db, "A"), b = add(f->db, "B"), c = add(f->db, "C");

        for (int64_t id = a; id <= c; id++)
                move(f->db, id, TASK_RUNNING, NULL);
        move(f->db, a, TASK_NEEDS_YOU, NULL);
        move(f->db, b, TASK_FAILED, NULL);
        move(f->db, c, TASK_DONE, NULL);
        assert_int_equal(count(f->db), 3);

        /* Everything wanted: nothing goes. */
        assert_int_equal(notify_store_drop_unwanted(f->db, ALL_EVENTS, WEBHOOK), 0);
        /* done is not wanted any more. */
        assert_int_equal(notify_store_drop_unwanted(f->db, NOTIFY_NEEDS_YOU | NOTIFY_FAILED, WEBHOOK), 1);
        assert_int_equal(count(f->db), 2);

        /* Pruning a task prunes its notifications (ON DELETE CASCADE). */
        move(f->db, b, TASK_CANCELLED, NULL);
        assert_int_equal(queue_prune(f->db, now_seconds() + 10), 2); /* b and c */
        assert_int_equal(count(f->db), 1);

        /* No channel at all: every row goes. */
        assert_int_equal(notify_store_drop_unwanted(f->db, ALL_EVENTS, 0), 1);
        assert_int_equal(count(f->db), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cut),
                cmocka_unit_test(test_program),
                cmocka_unit_test(test_messages),
                cmocka_unit_test(test_webhook_body),
                cmocka_unit_test_setup_teardown(test_transition_writes_the_row, setup, teardown),
                cmocka_unit_test_setup_teardown(test_done_keeps_the_result_head_and_branch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_drop_unwanted_and_prune, setup, teardown),
        };

        log_setup(LOG_TARGET_STDERR, false);
        log_set_max_priority(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
