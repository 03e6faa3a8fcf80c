/* SPDX-License-Identifier: MIT */
/* Unit tests: the task queue (src/queue.c) on a real SQLite db from store_open(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <sqlite3.h> /* SQLite-only: the extended result code of a CHECK (test_check_constraint) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jada/db.h"
#include "jada/log.h"
#include "jada/queue.h"
#include "jada/util.h"

/* "Now" for the queue's functions, which take it as an argument: the real
 * clock when the suite starts, so no test depends on a fixed day. */
static int64_t suite_now;
#define NOW suite_now
#define N_STATES ((int)_TASK_STATE_MAX)

struct fixture {
        char dir[64];
        char *path;
        struct store *db;
        int64_t next_priority; /* make_task_in(): each new task outranks all before it */
};

static int setup(void **state)
{
        struct fixture *f = xcalloc(1, sizeof *f);

        snprintf(f->dir, sizeof f->dir, "/tmp/jada-test-queue-XXXXXX");
        if (!mkdtemp(f->dir)) {
                free(f);
                return -1;
        }
        f->path = db_path_for(f->dir);
        if (store_open(f->path, &f->db) < 0) {
                free(f->path);
                rmdir(f->dir);
                free(f);
                return -1;
        }
        f->next_priority = 1000;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        struct dirent *de;
        DIR *d;
        int r = 0;

        if (!f)
                return 0;
        store_close(f->db);
        /* The db and its -wal/-shm (and whatever else SQLite left). */
        d = opendir(f->dir);
        if (d) {
                while ((de = readdir(d))) {
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        char *p = xasprintf("%s/%s", f->dir, de->d_name);
                        if (unlink(p) < 0)
                                r = -1;
                        free(p);
                }
                closedir(d);
        }
        if (rmdir(f->dir) < 0)
                r = -1;
        free(f->path);
        free(f);
        return r;
}

/* ---- helpers ---------------------------------------------------------- */

/* Every row a query returns, every column as text (NULL as <NULL>), as one string. */
static char *dump(struct store *db, const char *sql, int64_t id)
{
        struct store_stmt *st;
        char *buf = NULL;
        size_t size = 0;
        FILE *out;
        int rc;

        out = open_memstream(&buf, &size);
        assert_non_null(out);
        assert_int_equal(store_prepare(db, sql, &st), 0);
        (void)store_bind_int64(st, 1, id); /* refused, harmlessly, by a query without ?1 */
        while ((rc = store_step(st)) == STORE_ROW) {
                for (int i = 0; i < store_column_count(st); i++) {
                        const char *text = store_column_text(st, i);
                        fprintf(out, "%s|", text ? text : "<NULL>");
                }
                fputc('\n', out);
        }
        assert_int_equal(rc, STORE_DONE);
        store_finalize(st);
        fclose(out);
        return buf;
}

/* The whole queue: every task row and every event row. */
static char *dump_all(struct store *db)
{
        char *tasks = dump(db, "SELECT * FROM tasks ORDER BY id", 0);
        char *events = dump(db, "SELECT * FROM task_events ORDER BY id", 0);
        char *all = xasprintf("%s--\n%s", tasks, events);
        free(tasks);
        free(events);
        return all;
}

static int64_t sql_int(struct store *db, const char *sql, int64_t id)
{
        struct store_stmt *st;
        int64_t v;

        assert_int_equal(store_prepare(db, sql, &st), 0);
        (void)store_bind_int64(st, 1, id); /* refused, harmlessly, by a query without ?1 */
        assert_int_equal(store_step(st), STORE_ROW);
        v = store_column_int64(st, 0);
        store_finalize(st);
        return v;
}

static int64_t event_count(struct store *db, int64_t id)
{
        return sql_int(db, "SELECT count(*) FROM task_events WHERE task_id = ?1", id);
}

static int64_t add(struct store *db, const char *prompt, int64_t priority, int64_t run_after, int64_t now)
{
        int64_t id = -1;
        assert_int_equal(queue_add(db, &(struct queue_new){ .title = NULL, .prompt = prompt, .priority = priority, .run_after = run_after }, now, &id), 0);
        assert_true(id > 0);
        return id;
}

static enum task_state state_of(struct store *db, int64_t id)
{
        struct queue_task *t = NULL;
        enum task_state s;

        assert_int_equal(queue_get(db, id, &t), 0);
        s = t->state;
        queue_task_free(t);
        return s;
}

static void move(struct store *db, int64_t id, enum task_state to, const char *reason, int64_t now)
{
        const struct queue_change change = { .reason = reason };
        assert_int_equal(queue_transition(db, id, to, &change, now, NULL), 0);
        assert_int_equal(state_of(db, id), to);
}

static int64_t claim_id(struct store *db, int64_t now)
{
        struct queue_task *t = NULL;
        int64_t id;

        assert_int_equal(queue_claim(db, now, NULL, &t), 1);
        assert_non_null(t);
        assert_int_equal(t->state, TASK_RUNNING);
        id = t->id;
        queue_task_free(t);
        return id;
}

/* A new task in the given state, by the real paths: add, claim, transition. */
static int64_t make_task_in(struct fixture *f, enum task_state s, int64_t now)
{
        int64_t id = add(f->db, "a task\nwith a body", f->next_priority++, 0, now);

        if (s == TASK_QUEUED)
                return id;
        assert_int_equal(claim_id(f->db, now), id);
        if (s == TASK_RUNNING)
                return id;
        move(f->db, id, s, "setup", now);
        return id;
}

static void check_event(const struct queue_event *e, int old_state, enum task_state new_state, const char *reason,
                        int64_t at)
{
        assert_int_equal(e->old_state, old_state);
        assert_int_equal(e->new_state, new_state);
        assert_string_equal(e->reason, reason);
        assert_int_equal(e->at, at);
}

static void check_last_event(struct store *db, int64_t id, int old_state, enum task_state new_state, const char *reason,
                             int64_t at)
{
        struct queue_event *events = NULL;
        size_t n = 0;

        assert_int_equal(queue_events(db, id, 1, &events, &n), 0);
        assert_int_equal(n, 1);
        check_event(&events[0], old_state, new_state, reason, at);
        queue_events_free(events, n);
}

/* The legal transitions, written out independently of src/queue.c. */
static const bool legal[N_STATES][N_STATES] = {
        /*                  queued running done   needs_you failed cancelled waiting */
        [TASK_QUEUED]    = { false, true,  false, true,     false, true,     true },
        [TASK_RUNNING]   = { true,  false, true,  true,     true,  true,     true },
        [TASK_DONE]      = { false, false, false, false,    false, false,    false },
        [TASK_NEEDS_YOU] = { true,  false, true,  false,    false, true,     false },
        [TASK_FAILED]    = { true,  false, false, false,    false, true,     false },
        [TASK_CANCELLED] = { false, false, false, false,    false, false,    false },
        [TASK_WAITING]   = { true,  false, false, false,    false, true,     false },
};

/* ---- 1. the transition table ----------------------------------------- */

static void test_state_names(void **state)
{
        static const char *const names[] = { "queued", "running", "done", "needs_you", "failed", "cancelled",
                                             "waiting" };

        for (int s = 0; s < N_STATES; s++) {
                assert_string_equal(task_state_name((enum task_state)s), names[s]);
                assert_int_equal(task_state_from_name(names[s]), s);
        }
        assert_string_equal(task_state_name(_TASK_STATE_MAX), "invalid");
        assert_string_equal(task_state_name((enum task_state)-1), "invalid");
        assert_int_equal(task_state_from_name(NULL), -EINVAL);
        assert_int_equal(task_state_from_name(""), -EINVAL);
        assert_int_equal(task_state_from_name("Queued"), -EINVAL);
        assert_int_equal(task_state_from_name("queued "), -EINVAL);
        assert_int_equal(task_state_from_name("invalid"), -EINVAL);
}

static void test_transition_allowed_table(void **state)
{
        int n_legal = 0;

        for (int from = 0; from < N_STATES; from++)
                for (int to = 0; to < N_STATES; to++) {
                        bool got = queue_transition_allowed((enum task_state)from, (enum task_state)to);
                        if (got != legal[from][to])
                                fail_msg("%s -> %s: allowed=%d, want %d", task_state_name((enum task_state)from),
                                         task_state_name((enum task_state)to), got, legal[from][to]);
                        n_legal += got;
                }
        assert_int_equal(n_legal, 17);

        /* Out of range, either side. */
        static const int bad[] = { -1, _TASK_STATE_MAX, _TASK_STATE_MAX + 1, 31, 32, 1000, INT32_MIN };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                for (int s = 0; s < N_STATES; s++) {
                        assert_false(queue_transition_allowed((enum task_state)bad[i], (enum task_state)s));
                        assert_false(queue_transition_allowed((enum task_state)s, (enum task_state)bad[i]));
                }
}

/* ---- 2. transitions on the db ----------------------------------------- */

static void test_transition_every_pair(void **state)
{
        struct fixture *f = *state;
        int64_t t = NOW;

        for (int from = 0; from < N_STATES; from++)
                for (int to = 0; to < N_STATES; to++) {
                        const struct queue_change change = { .reason = "pair test" };
                        enum task_state ret_from = (enum task_state)77;
                        int64_t id = make_task_in(f, (enum task_state)from, t);
                        int64_t events_before = event_count(f->db, id);
                        char *before = dump_all(f->db);
                        char *others_before = dump(f->db, "SELECT * FROM tasks WHERE id != ?1 ORDER BY id", id);
                        int r;

                        t += 10;
                        r = queue_transition(f->db, id, (enum task_state)to, &change, t, &ret_from);
                        assert_true(!store_in_transaction(f->db)); /* no transaction left open */
                        assert_int_equal(ret_from, from);
                        if (legal[from][to]) {
                                struct queue_task *task = NULL;
                                char *others_after;

                                if (r != 0)
                                        fail_msg("%s -> %s: %d, want 0", task_state_name((enum task_state)from),
                                                 task_state_name((enum task_state)to), r);
                                assert_int_equal(queue_get(f->db, id, &task), 0);
                                assert_int_equal(task->state, to);
                                assert_int_equal(task->updated_at, t);
                                queue_task_free(task);
                                assert_int_equal(event_count(f->db, id), events_before + 1);
                                check_last_event(f->db, id, from, (enum task_state)to, "pair test", t);
                                /* No other task touched. */
                                others_after = dump(f->db, "SELECT * FROM tasks WHERE id != ?1 ORDER BY id", id);
                                assert_string_equal(others_after, others_before);
                                free(others_after);
                        } else {
                                char *after;

                                if (r != -EPERM)
                                        fail_msg("%s -> %s: %d, want -EPERM", task_state_name((enum task_state)from),
                                                 task_state_name((enum task_state)to), r);
                                after = dump_all(f->db);
                                assert_string_equal(after, before);
                                free(after);
                                assert_int_equal(event_count(f->db, id), events_before);
                                assert_int_equal(state_of(f->db, id), from);
                        }
                        free(before);
                        free(others_before);
                }
}

static void test_transition_out_of_range_target(void **state)
{
        struct fixture *f = *state;
        static const int bad[] = { -1, _TASK_STATE_MAX, 1000 };

        for (int from = 0; from < N_STATES; from++) {
                int64_t id = make_task_in(f, (enum task_state)from, NOW);
                for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                        enum task_state ret_from = (enum task_state)77;
                        char *before = dump_all(f->db);
                        char *after;

                        assert_int_equal(queue_transition(f->db, id, (enum task_state)bad[i], NULL, NOW + 1, &ret_from),
                                         -EPERM);
                        assert_int_equal(ret_from, from);
                        after = dump_all(f->db);
                        assert_string_equal(after, before);
                        free(before);
                        free(after);
                }
        }
}

static void test_transition_unknown_id(void **state)
{
        struct fixture *f = *state;
        int64_t id = make_task_in(f, TASK_QUEUED, NOW);
        char *before = dump_all(f->db);
        char *after;

        assert_int_equal(queue_transition(f->db, id + 1, TASK_CANCELLED, NULL, NOW + 1, NULL), -ENOENT);
        assert_int_equal(queue_transition(f->db, 0, TASK_CANCELLED, NULL, NOW + 1, NULL), -ENOENT);
        assert_int_equal(queue_transition(f->db, -5, TASK_RUNNING, NULL, NOW + 1, NULL), -ENOENT);
        assert_int_equal(queue_transition(f->db, INT64_MAX, TASK_RUNNING, NULL, NOW + 1, NULL), -ENOENT);
        assert_true(!store_in_transaction(f->db));
        after = dump_all(f->db);
        assert_string_equal(after, before);
        free(before);
        free(after);
}

static void test_transition_only_from(void **state)
{
        struct fixture *f = *state;
        int64_t id = make_task_in(f, TASK_RUNNING, NOW);
        enum task_state ret_from = (enum task_state)77;
        struct queue_change change = {
                .reason = "cancel if still queued",
                .only_from = 1u << TASK_QUEUED | 1u << TASK_NEEDS_YOU,
                .error = "must not be written",
                .run_after = NOW + 999,
        };
        char *before = dump_all(f->db);
        char *after;

        /* running -> cancelled is legal, but the task is not in the mask. */
        assert_int_equal(queue_transition(f->db, id, TASK_CANCELLED, &change, NOW + 5, &ret_from), -EPERM);
        assert_int_equal(ret_from, TASK_RUNNING);
        assert_true(!store_in_transaction(f->db));
        after = dump_all(f->db);
        assert_string_equal(after, before);
        free(after);
        free(before);

        /* Illegal and outside the mask: still -EPERM, still nothing. */
        before = dump_all(f->db);
        assert_int_equal(queue_transition(f->db, id, TASK_RUNNING, &change, NOW + 5, &ret_from), -EPERM);
        after = dump_all(f->db);
        assert_string_equal(after, before);
        free(after);
        free(before);

        /* With running in the mask it goes through. */
        change.only_from = 1u << TASK_RUNNING;
        ret_from = (enum task_state)77;
        assert_int_equal(queue_transition(f->db, id, TASK_CANCELLED, &change, NOW + 6, &ret_from), 0);
        assert_int_equal(ret_from, TASK_RUNNING);
        struct queue_task *t = NULL;
        assert_int_equal(queue_get(f->db, id, &t), 0);
        assert_int_equal(t->state, TASK_CANCELLED);
        assert_string_equal(t->error, "must not be written"); /* (this time it may) */
        assert_int_equal(t->run_after, NOW + 999);
        queue_task_free(t);
        check_last_event(f->db, id, TASK_RUNNING, TASK_CANCELLED, "cancel if still queued", NOW + 6);

        /* A mask that allows the state but a transition that is illegal. */
        int64_t id2 = make_task_in(f, TASK_DONE, NOW);
        change.only_from = 1u << TASK_DONE;
        before = dump_all(f->db);
        assert_int_equal(queue_transition(f->db, id2, TASK_CANCELLED, &change, NOW + 7, &ret_from), -EPERM);
        assert_int_equal(ret_from, TASK_DONE);
        after = dump_all(f->db);
        assert_string_equal(after, before);
        free(after);
        free(before);
}

static void test_transition_null_change(void **state)
{
        struct fixture *f = *state;
        int64_t id = make_task_in(f, TASK_QUEUED, NOW);

        assert_int_equal(queue_transition(f->db, id, TASK_CANCELLED, NULL, NOW + 3, NULL), 0);
        assert_int_equal(state_of(f->db, id), TASK_CANCELLED);
        check_last_event(f->db, id, TASK_QUEUED, TASK_CANCELLED, "", NOW + 3);
}

/* ---- 3. what a change changes ----------------------------------------- */

static void test_change_run_after(void **state)
{
        struct fixture *f = *state;
        struct queue_task *t = NULL;
        int64_t id = add(f->db, "retry me", 0, NOW - 100, NOW - 200);

        assert_int_equal(claim_id(f->db, NOW), id);
        /* run_after > 0: set. */
        assert_int_equal(queue_transition(f->db, id, TASK_QUEUED,
                                          &(struct queue_change){ .reason = "later", .run_after = NOW + 3600 }, NOW + 1,
                                          NULL),
                         0);
        assert_int_equal(queue_get(f->db, id, &t), 0);
        assert_int_equal(t->run_after, NOW + 3600);
        assert_int_equal(t->state, TASK_QUEUED);
        queue_task_free(t);

        /* Not due yet. */
        assert_int_equal(queue_claim(f->db, NOW + 3599, NULL, &t), 0);
        assert_int_equal(claim_id(f->db, NOW + 3600), id);

        /* run_after 0: kept. */
        assert_int_equal(queue_transition(f->db, id, TASK_QUEUED, &(struct queue_change){ .reason = "again" },
                                          NOW + 3601, NULL),
                         0);
        assert_int_equal(queue_get(f->db, id, &t), 0);
        assert_int_equal(t->run_after, NOW + 3600);
        queue_task_free(t);

        /* A negative run_after is "not > 0": kept too. */
        assert_int_equal(claim_id(f->db, NOW + 3602), id);
        assert_int_equal(queue_transition(f->db, id, TASK_QUEUED, &(struct queue_change){ .run_after = -7 },
                                          NOW + 3603, NULL),
                         0);
        assert_int_equal(queue_get(f->db, id, &t), 0);
        assert_int_equal(t->run_after, NOW + 3600);
        queue_task_free(t);
}

static void test_change_texts_and_needs_you(void **state)
{
        struct fixture *f = *state;
        struct queue_task *t = NULL;
        int64_t id = add(f->db, "ask me something", 0, 0, NOW);

        assert_int_equal(claim_id(f->db, NOW), id);
        assert_int_equal(queue_transition(f->db, id, TASK_NEEDS_YOU,
                                          &(struct queue_change){ .reason = "question",
                                                                  .needs_you_reason = "Which branch?" },
                                          NOW + 1, NULL),
                         0);
        assert_int_equal(queue_get(f->db, id, &t), 0);
        assert_int_equal(t->state, TASK_NEEDS_YOU);
        assert_string_equal(t->needs_you_reason, "Which branch?");
        assert_null(t->reply);
        assert_null(t->result);
        assert_null(t->error);
        queue_task_free(t);
        check_last_event(f->db, id, TASK_RUNNING, TASK_NEEDS_YOU, "question", NOW + 1);

        /* The reply: set, and the needs_you reason cleared on leaving. */
        assert_int_equal(queue_transition(f->db, id, TASK_QUEUED,
                                          &(struct queue_change){ .reason = "replied", .reply = "main, please" },
                                          NOW + 2, NULL),
                         0);
        assert_int_equal(queue_get(f->db, id, &t), 0);
        assert_int_equal(t->state, TASK_QUEUED);
        assert_string_equal(t->reply, "main, please");
        assert_null(t->needs_you_reason);
        queue_task_free(t);

        /* The result: set; the reply (not given) kept. */
        assert_int_equal(claim_id(f->db, NOW + 3), id);
        assert_int_equal(queue_transition(f->db, id, TASK_DONE,
                                          &(struct queue_change){ .reason = "finished", .result = "all green" },
                                          NOW + 4, NULL),
                         0);
        assert_int_equal(queue_get(f->db, id, &t), 0);
        assert_int_equal(t->state, TASK_DONE);
        assert_string_equal(t->result, "all green");
        assert_string_equal(t->reply, "main, please");
        assert_null(t->error);
        assert_null(t->needs_you_reason);
        assert_int_equal(t->updated_at, NOW + 4);
        assert_int_equal(t->created_at, NOW);
        queue_task_free(t);

        /* A second reply replaces the first; a result is kept when not given. */
        int64_t id5 = make_task_in(f, TASK_RUNNING, NOW);
        assert_int_equal(queue_transition(f->db, id5, TASK_NEEDS_YOU,
                                          &(struct queue_change){ .result = "partial", .needs_you_reason = "q1" },
                                          NOW + 1, NULL),
                         0);
        assert_int_equal(queue_transition(f->db, id5, TASK_QUEUED, &(struct queue_change){ .reply = "first" },
                                          NOW + 2, NULL),
                         0);
        assert_int_equal(claim_id(f->db, NOW + 3), id5);
        assert_int_equal(queue_transition(f->db, id5, TASK_NEEDS_YOU, &(struct queue_change){ .needs_you_reason = "q2" },
                                          NOW + 4, NULL),
                         0);
        assert_int_equal(queue_get(f->db, id5, &t), 0);
        assert_string_equal(t->result, "partial");
        assert_string_equal(t->reply, "first");
        assert_string_equal(t->needs_you_reason, "q2");
        queue_task_free(t);
        assert_int_equal(queue_transition(f->db, id5, TASK_QUEUED, &(struct queue_change){ .reply = "second" },
                                          NOW + 5, NULL),
                         0);
        assert_int_equal(queue_get(f->db, id5, &t), 0);
        assert_string_equal(t->reply, "second");
        assert_string_equal(t->result, "partial");
        queue_task_free(t);
        move(f->db, id5, TASK_CANCELLED, "out of the way", NOW + 5);

        /* The error, and texts that replace earlier ones. */
        int64_t id2 = add(f->db, "will fail", 0, 0, NOW);
        assert_int_equal(claim_id(f->db, NOW), id2);
        assert_int_equal(queue_transition(f->db, id2, TASK_FAILED,
                                          &(struct queue_change){ .reason = "crash", .error = "exit status 2" }, NOW + 5,
                                          NULL),
                         0);
        assert_int_equal(queue_get(f->db, id2, &t), 0);
        assert_string_equal(t->error, "exit status 2");
        assert_null(t->result);
        queue_task_free(t);
        assert_int_equal(queue_transition(f->db, id2, TASK_QUEUED, NULL, NOW + 6, NULL), 0);
        assert_int_equal(claim_id(f->db, NOW + 6), id2);
        assert_int_equal(queue_transition(f->db, id2, TASK_FAILED,
                                          &(struct queue_change){ .error = "exit status 3" }, NOW + 7, NULL),
                         0);
        assert_int_equal(queue_get(f->db, id2, &t), 0);
        assert_string_equal(t->error, "exit status 3");
        queue_task_free(t);

        /* needs_you -> done and needs_you -> cancelled clear the reason too. */
        static const enum task_state leave[] = { TASK_DONE, TASK_CANCELLED, TASK_QUEUED };
        for (size_t i = 0; i < sizeof leave / sizeof leave[0]; i++) {
                int64_t id3 = make_task_in(f, TASK_RUNNING, NOW);
                assert_int_equal(queue_transition(f->db, id3, TASK_NEEDS_YOU,
                                                  &(struct queue_change){ .needs_you_reason = "why?" }, NOW + 8, NULL),
                                 0);
                assert_int_equal(queue_get(f->db, id3, &t), 0);
                assert_string_equal(t->needs_you_reason, "why?");
                queue_task_free(t);
                /* Even when the change carries a needs_you_reason. */
                assert_int_equal(queue_transition(f->db, id3, leave[i],
                                                  &(struct queue_change){ .needs_you_reason = "ignored" }, NOW + 9,
                                                  NULL),
                                 0);
                assert_int_equal(queue_get(f->db, id3, &t), 0);
                assert_int_equal(t->state, leave[i]);
                assert_null(t->needs_you_reason);
                queue_task_free(t);
        }

        /* A needs_you reason on a transition to another state is not stored. */
        int64_t id4 = make_task_in(f, TASK_RUNNING, NOW);
        assert_int_equal(queue_transition(f->db, id4, TASK_FAILED,
                                          &(struct queue_change){ .needs_you_reason = "nope" }, NOW + 10, NULL),
                         0);
        assert_int_equal(queue_get(f->db, id4, &t), 0);
        assert_null(t->needs_you_reason);
        queue_task_free(t);
}

static void test_change_reset_attempts(void **state)
{
        struct fixture *f = *state;
        struct queue_task *t = NULL;
        int64_t id = make_task_in(f, TASK_FAILED, NOW);
        char *sql = xasprintf("UPDATE tasks SET attempts = 4 WHERE id = %lld", (long long)id);

        assert_int_equal(store_exec(f->db, sql), 0);
        free(sql);

        /* Without reset_attempts: kept. */
        assert_int_equal(queue_transition(f->db, id, TASK_QUEUED, &(struct queue_change){ .reason = "retry" }, NOW + 1,
                                          NULL),
                         0);
        assert_int_equal(queue_get(f->db, id, &t), 0);
        assert_int_equal(t->attempts, 4);
        queue_task_free(t);

        assert_int_equal(claim_id(f->db, NOW + 2), id);
        assert_int_equal(queue_transition(f->db, id, TASK_FAILED, NULL, NOW + 3, NULL), 0);
        assert_int_equal(queue_get(f->db, id, &t), 0);
        assert_int_equal(t->attempts, 4);
        queue_task_free(t);

        /* With it: zero. */
        assert_int_equal(queue_transition(f->db, id, TASK_QUEUED,
                                          &(struct queue_change){ .reason = "retry by hand", .reset_attempts = true },
                                          NOW + 4, NULL),
                         0);
        assert_int_equal(queue_get(f->db, id, &t), 0);
        assert_int_equal(t->attempts, 0);
        assert_int_equal(t->state, TASK_QUEUED);
        queue_task_free(t);
        check_last_event(f->db, id, TASK_FAILED, TASK_QUEUED, "retry by hand", NOW + 4);
}

/* ---- 4. queue_add ---------------------------------------------------- */

static char *title_of(struct store *db, const char *prompt)
{
        struct queue_task *t = NULL;
        int64_t id = add(db, prompt, 0, 0, NOW);
        char *title;

        assert_int_equal(queue_get(db, id, &t), 0);
        assert_string_equal(t->prompt, prompt);
        title = xstrdup(t->title);
        queue_task_free(t);
        return title;
}

static char *repeat(const char *s, size_t times, const char *tail)
{
        size_t len = strlen(s);
        char *buf = xmalloc(len * times + strlen(tail) + 1);

        for (size_t i = 0; i < times; i++)
                memcpy(buf + i * len, s, len);
        strcpy(buf + len * times, tail);
        return buf;
}

static void test_add_invalid(void **state)
{
        struct fixture *f = *state;
        int64_t id = 42;
        char *big;

        assert_int_equal(queue_add(f->db, &(struct queue_new){ .title = NULL, .prompt = NULL, .priority = 0, .run_after = 0 }, NOW, &id), -EINVAL);
        assert_int_equal(queue_add(f->db, &(struct queue_new){ .title = "title", .prompt = NULL, .priority = 0, .run_after = 0 }, NOW, &id), -EINVAL);
        assert_int_equal(queue_add(f->db, &(struct queue_new){ .title = NULL, .prompt = "", .priority = 0, .run_after = 0 }, NOW, &id), -EINVAL);
        assert_int_equal(queue_add(f->db, &(struct queue_new){ .title = "title", .prompt = "", .priority = 0, .run_after = 0 }, NOW, &id), -EINVAL);

        big = xmalloc(QUEUE_PROMPT_MAX + 2);
        memset(big, 'x', QUEUE_PROMPT_MAX + 1);
        big[QUEUE_PROMPT_MAX + 1] = '\0';
        assert_int_equal(queue_add(f->db, &(struct queue_new){ .title = NULL, .prompt = big, .priority = 0, .run_after = 0 }, NOW, &id), -EINVAL);
        assert_int_equal(id, 42); /* untouched */
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM tasks", 0), 0);
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM task_events", 0), 0);

        /* Exactly the maximum is fine, and stored whole. */
        big[QUEUE_PROMPT_MAX] = '\0';
        assert_int_equal(queue_add(f->db, &(struct queue_new){ .title = NULL, .prompt = big, .priority = 0, .run_after = 0 }, NOW, &id), 0);
        assert_int_equal(id, 1);
        assert_int_equal(sql_int(f->db, "SELECT length(prompt) FROM tasks WHERE id = ?1", id), QUEUE_PROMPT_MAX);
        assert_int_equal(sql_int(f->db, "SELECT length(title) FROM tasks WHERE id = ?1", id), 60);
        free(big);
}

static void test_add_fields_and_event(void **state)
{
        struct fixture *f = *state;
        struct queue_task *t = NULL;
        struct queue_event *events = NULL;
        size_t n = 0;
        int64_t id = 0, id2 = 0;

        assert_int_equal(queue_add(f->db, &(struct queue_new){ .title = "My title", .prompt = "Do the thing\nin detail", .priority = -3, .run_after = NOW + 50 }, NOW, &id), 0);
        assert_int_equal(queue_get(f->db, id, &t), 0);
        assert_int_equal(t->id, id);
        assert_string_equal(t->title, "My title");
        assert_string_equal(t->prompt, "Do the thing\nin detail");
        assert_int_equal(t->state, TASK_QUEUED);
        assert_int_equal(t->priority, -3);
        assert_int_equal(t->run_after, NOW + 50);
        assert_int_equal(t->attempts, 0);
        assert_int_equal(t->sessions_used, 0);
        assert_int_equal(t->turns_used, 0);
        assert_true(t->cost_usd == 0.0);
        assert_null(t->claude_session_id);
        assert_null(t->needs_you_reason);
        assert_null(t->reply);
        assert_null(t->result);
        assert_null(t->error);
        assert_int_equal(t->created_at, NOW);
        assert_int_equal(t->updated_at, NOW);
        queue_task_free(t);

        assert_int_equal(queue_events(f->db, id, 10, &events, &n), 0);
        assert_int_equal(n, 1);
        check_event(&events[0], -1, TASK_QUEUED, "added", NOW);
        queue_events_free(events, n);
        /* In the db: NULL, not a string. */
        assert_int_equal(sql_int(f->db, "SELECT old_state IS NULL FROM task_events WHERE task_id = ?1", id), 1);

        /* Ids grow; an empty title is replaced by the prompt's first line. */
        assert_int_equal(queue_add(f->db, &(struct queue_new){ .title = "", .prompt = "second\n", .priority = 0, .run_after = 0 }, NOW + 1, &id2), 0);
        assert_true(id2 > id);
        assert_int_equal(queue_get(f->db, id2, &t), 0);
        assert_string_equal(t->title, "second");
        queue_task_free(t);
}

static void test_add_title_default(void **state)
{
        struct fixture *f = *state;
        static const struct {
                const char *prompt, *title;
        } cases[] = {
                { "Fix the build", "Fix the build" },
                { "Fix the build\nThe second line", "Fix the build" },
                { "\n\n  \t\nFirst real line\nsecond", "First real line" },
                { "\r\nCRLF line\r\nnext", "CRLF line" },
                { "  leading spaces", "leading spaces" },
                { "trailing spaces  \nx", "trailing spaces  " },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *title = title_of(f->db, cases[i].prompt);
                if (strcmp(title, cases[i].title) != 0)
                        fail_msg("prompt %zu: title '%s', want '%s'", i, title, cases[i].title);
                free(title);
        }
}

static void test_add_title_cut(void **state)
{
        struct fixture *f = *state;
        /* Each case: a prompt, and the title it must give (60 bytes at most,
         * never ending inside a UTF-8 sequence). */
        struct {
                char *prompt, *title;
        } cases[] = {
                /* ASCII: exactly 60 kept, 61 cut. */
                { repeat("a", 60, ""), repeat("a", 60, "") },
                { repeat("a", 60, "\nrest"), repeat("a", 60, "") },
                { repeat("a", 61, ""), repeat("a", 60, "") },
                { repeat("a", 200, ""), repeat("a", 60, "") },
                /* é (2 bytes) at bytes 59-60: cut before it. */
                { repeat("a", 59, "\xc3\xa9zzz"), repeat("a", 59, "") },
                /* é at bytes 58-59: ends exactly at 60, kept. */
                { repeat("a", 58, "\xc3\xa9zzz"), repeat("a", 58, "\xc3\xa9") },
                /* € (3 bytes) at 58-60, at 59-61: cut before it; at 57-59: kept. */
                { repeat("a", 58, "\xe2\x82\xacxyz"), repeat("a", 58, "") },
                { repeat("a", 59, "\xe2\x82\xacxyz"), repeat("a", 59, "") },
                { repeat("a", 57, "\xe2\x82\xacxyz"), repeat("a", 57, "\xe2\x82\xac") },
                /* U+1F600 (4 bytes) at 57-60, 58-61, 59-62: cut; at 56-59: kept. */
                { repeat("a", 57, "\xf0\x9f\x98\x80xyz"), repeat("a", 57, "") },
                { repeat("a", 58, "\xf0\x9f\x98\x80xyz"), repeat("a", 58, "") },
                { repeat("a", 59, "\xf0\x9f\x98\x80xyz"), repeat("a", 59, "") },
                { repeat("a", 56, "\xf0\x9f\x98\x80xyz"), repeat("a", 56, "\xf0\x9f\x98\x80") },
                /* All multibyte: 31 é is 62 bytes -> 30 é; 21 € is 63 bytes -> 20 €. */
                { repeat("\xc3\xa9", 31, ""), repeat("\xc3\xa9", 30, "") },
                { repeat("\xe2\x82\xac", 21, ""), repeat("\xe2\x82\xac", 20, "") },
                /* 16 emoji, 64 bytes -> 15 emoji (60 bytes). */
                { repeat("\xf0\x9f\x98\x80", 16, ""), repeat("\xf0\x9f\x98\x80", 15, "") },
                /* 1 + 20 € = 61 bytes: byte 60 is a continuation byte -> 1 + 19 €. */
                { repeat("\xe2\x82\xac", 20, "") /* placeholder, replaced below */, NULL },
                /* Short multibyte lines are not touched. */
                { xstrdup("h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac\nsecond"), xstrdup("h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac") },
        };
        size_t n = sizeof cases / sizeof cases[0];

        free(cases[n - 2].prompt);
        {
                char *tail = repeat("\xe2\x82\xac", 20, "");
                cases[n - 2].prompt = xasprintf("b%s", tail);
                free(tail);
                tail = repeat("\xe2\x82\xac", 19, "");
                cases[n - 2].title = xasprintf("b%s", tail);
                free(tail);
        }

        for (size_t i = 0; i < n; i++) {
                char *title = title_of(f->db, cases[i].prompt);
                assert_true(strlen(title) <= 60);
                if (strcmp(title, cases[i].title) != 0)
                        fail_msg("case %zu: title '%s' (%zu bytes), want '%s' (%zu bytes)", i, title, strlen(title),
                                 cases[i].title, strlen(cases[i].title));
                /* Never ends on a lead byte or inside a sequence. */
                if (*title) {
                        size_t len = strlen(title), k = len;
                        while (k > 0 && ((unsigned char)title[k - 1] & 0xc0) == 0x80)
                                k--;
                        assert_true(k > 0);
                        unsigned char lead = (unsigned char)title[k - 1];
                        size_t want = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
                        assert_int_equal(len - (k - 1), want);
                }
                free(title);
                free(cases[i].prompt);
                free(cases[i].title);
        }
}

/* ---- 5. queue_claim --------------------------------------------------- */

static void test_claim_empty(void **state)
{
        struct fixture *f = *state;
        struct queue_task *t = (struct queue_task *)0x1;

        assert_int_equal(queue_claim(f->db, NOW, NULL, &t), 0);
        assert_null(t);
        assert_true(!store_in_transaction(f->db));

        /* Only tasks in other states: still nothing. */
        make_task_in(f, TASK_DONE, NOW);
        make_task_in(f, TASK_FAILED, NOW);
        make_task_in(f, TASK_NEEDS_YOU, NOW);
        make_task_in(f, TASK_CANCELLED, NOW);
        make_task_in(f, TASK_RUNNING, NOW);
        char *before = dump_all(f->db);
        t = (struct queue_task *)0x1;
        assert_int_equal(queue_claim(f->db, NOW + 100, NULL, &t), 0);
        assert_null(t);
        char *after = dump_all(f->db);
        assert_string_equal(after, before);
        free(before);
        free(after);
}

static void test_claim_order(void **state)
{
        struct fixture *f = *state;
        struct queue_task *t = NULL;
        int64_t a = add(f->db, "a", 0, 0, NOW);
        int64_t b = add(f->db, "b", 5, NOW - 10, NOW);
        int64_t c = add(f->db, "c", 5, 0, NOW);
        int64_t d = add(f->db, "d", 10, NOW + 100, NOW);  /* most urgent, but not due */
        int64_t e = add(f->db, "e", -2, NOW, NOW);         /* due exactly now */
        int64_t g = add(f->db, "g", 0, 0, NOW);

        assert_int_equal(claim_id(f->db, NOW), b);
        assert_int_equal(claim_id(f->db, NOW), c);
        assert_int_equal(claim_id(f->db, NOW), a);
        assert_int_equal(claim_id(f->db, NOW), g);
        assert_int_equal(claim_id(f->db, NOW), e);
        assert_int_equal(queue_claim(f->db, NOW, NULL, &t), 0);
        assert_int_equal(queue_claim(f->db, NOW + 99, NULL, &t), 0);
        assert_int_equal(claim_id(f->db, NOW + 100), d);
        /* Everything claimed once: nothing more, even much later. */
        assert_int_equal(queue_claim(f->db, NOW + 1000000, NULL, &t), 0);
        assert_null(t);

        int64_t counts[_TASK_STATE_MAX];
        assert_int_equal(queue_counts(f->db, counts), 0);
        assert_int_equal(counts[TASK_RUNNING], 6);
        assert_int_equal(counts[TASK_QUEUED], 0);
        /* Each has exactly one "claimed" event. */
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM task_events WHERE reason = 'claimed'", 0), 6);
        assert_int_equal(sql_int(f->db, "SELECT count(DISTINCT task_id) FROM task_events WHERE reason = 'claimed'", 0),
                         6);

        /* A requeued task competes again by priority and id. */
        move(f->db, a, TASK_QUEUED, "requeue", NOW + 200);
        move(f->db, d, TASK_QUEUED, "requeue", NOW + 200);
        assert_int_equal(claim_id(f->db, NOW + 200), d);
        assert_int_equal(claim_id(f->db, NOW + 200), a);
}

static void test_claim_fields_and_event(void **state)
{
        struct fixture *f = *state;
        struct queue_task *t = NULL;
        int64_t id = 0;

        assert_int_equal(queue_add(f->db, &(struct queue_new){ .title = "Title", .prompt = "Prompt text", .priority = 7, .run_after = NOW - 5 }, NOW - 60, &id), 0);
        assert_int_equal(queue_claim(f->db, NOW, NULL, &t), 1);
        assert_non_null(t);
        assert_int_equal(t->id, id);
        assert_string_equal(t->title, "Title");
        assert_string_equal(t->prompt, "Prompt text");
        assert_int_equal(t->state, TASK_RUNNING);
        assert_int_equal(t->priority, 7);
        assert_int_equal(t->run_after, NOW - 5);
        assert_int_equal(t->attempts, 0);
        assert_int_equal(t->created_at, NOW - 60);
        assert_int_equal(t->updated_at, NOW);
        assert_null(t->claude_session_id);
        assert_null(t->needs_you_reason);
        assert_null(t->reply);
        assert_null(t->result);
        assert_null(t->error);
        queue_task_free(t);
        assert_true(!store_in_transaction(f->db));

        /* What claim returned is what the db holds. */
        assert_int_equal(queue_get(f->db, id, &t), 0);
        assert_int_equal(t->state, TASK_RUNNING);
        assert_int_equal(t->updated_at, NOW);
        queue_task_free(t);

        struct queue_event *events = NULL;
        size_t n = 0;
        assert_int_equal(queue_events(f->db, id, 10, &events, &n), 0);
        assert_int_equal(n, 2);
        check_event(&events[0], -1, TASK_QUEUED, "added", NOW - 60);
        check_event(&events[1], TASK_QUEUED, TASK_RUNNING, "claimed", NOW);
        queue_events_free(events, n);

        /* The claude_session_id and reply survive a claim. */
        move(f->db, id, TASK_NEEDS_YOU, "q", NOW + 1);
        assert_int_equal(queue_transition(f->db, id, TASK_QUEUED, &(struct queue_change){ .reply = "yes" }, NOW + 2,
                                          NULL),
                         0);
        assert_int_equal(store_exec(f->db, "UPDATE tasks SET claude_session_id = 'sess-1'"), 0);
        assert_int_equal(queue_claim(f->db, NOW + 3, NULL, &t), 1);
        assert_string_equal(t->reply, "yes");
        assert_string_equal(t->claude_session_id, "sess-1");
        queue_task_free(t);
}

/* Two connections on one file: each claim gets a different task. */
static void test_claim_two_connections(void **state)
{
        struct fixture *f = *state;
        struct store *db2 = NULL;
        int64_t a = add(f->db, "a", 1, 0, NOW);
        int64_t b = add(f->db, "b", 0, 0, NOW);

        assert_int_equal(store_open(f->path, &db2), 0);
        assert_int_equal(claim_id(db2, NOW), a);
        assert_int_equal(claim_id(f->db, NOW), b);
        struct queue_task *t = NULL;
        assert_int_equal(queue_claim(db2, NOW, NULL, &t), 0);
        assert_int_equal(queue_claim(f->db, NOW, NULL, &t), 0);
        store_close(db2);
}

/* ---- 6. queue_recover ------------------------------------------------- */

static void test_recover(void **state)
{
        struct fixture *f = *state;
        struct queue_task *t = NULL;

        /* Nothing running: 0, nothing changed. */
        assert_int_equal(queue_recover(f->db, NOW, "start-up"), 0);
        int64_t q = make_task_in(f, TASK_QUEUED, NOW);
        int64_t ny = make_task_in(f, TASK_NEEDS_YOU, NOW);
        int64_t dn = make_task_in(f, TASK_DONE, NOW);
        char *before = dump_all(f->db);
        assert_int_equal(queue_recover(f->db, NOW + 1, "start-up"), 0);
        char *after = dump_all(f->db);
        assert_string_equal(after, before);
        free(before);
        free(after);

        int64_t r1 = make_task_in(f, TASK_RUNNING, NOW + 2);
        int64_t r2 = make_task_in(f, TASK_RUNNING, NOW + 2);
        char *sql = xasprintf("UPDATE tasks SET claude_session_id = 'session-' || id WHERE id IN (%lld, %lld)",
                              (long long)r1, (long long)r2);
        assert_int_equal(store_exec(f->db, sql), 0);
        free(sql);
        char *others_before = dump(f->db, "SELECT * FROM tasks WHERE state != 'running' ORDER BY id", 0);
        int64_t ev1 = event_count(f->db, r1), ev2 = event_count(f->db, r2);

        assert_int_equal(queue_recover(f->db, NOW + 500, "the daemon is gone"), 2);
        assert_true(!store_in_transaction(f->db));

        const int64_t ids[] = { r1, r2 };
        for (size_t i = 0; i < 2; i++) {
                char want[64];
                assert_int_equal(queue_get(f->db, ids[i], &t), 0);
                assert_int_equal(t->state, TASK_QUEUED);
                assert_int_equal(t->updated_at, NOW + 500);
                snprintf(want, sizeof want, "session-%lld", (long long)ids[i]);
                assert_non_null(t->claude_session_id);
                assert_string_equal(t->claude_session_id, want);
                queue_task_free(t);
                check_last_event(f->db, ids[i], TASK_RUNNING, TASK_QUEUED, "the daemon is gone", NOW + 500);
        }
        assert_int_equal(event_count(f->db, r1), ev1 + 1);
        assert_int_equal(event_count(f->db, r2), ev2 + 1);

        /* The others are untouched (their rows, not the recovered ones). */
        char *others_after = dump(f->db,
                                  "SELECT * FROM tasks WHERE id NOT IN (SELECT task_id FROM task_events "
                                  "WHERE reason = 'the daemon is gone') ORDER BY id",
                                  0);
        assert_string_equal(others_after, others_before);
        free(others_before);
        free(others_after);
        assert_int_equal(state_of(f->db, q), TASK_QUEUED);
        assert_int_equal(state_of(f->db, ny), TASK_NEEDS_YOU);
        assert_int_equal(state_of(f->db, dn), TASK_DONE);

        /* Done once: a second run finds nothing. */
        assert_int_equal(queue_recover(f->db, NOW + 501, "again"), 0);
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM task_events WHERE reason = 'again'", 0), 0);

        /* The recovered tasks can be claimed again, session id still there. */
        assert_int_equal(queue_claim(f->db, NOW + 502, NULL, &t), 1);
        assert_true(t->id == r1 || t->id == r2);
        assert_non_null(t->claude_session_id);
        queue_task_free(t);
}

/* ---- 7. queue_prune --------------------------------------------------- */

static void test_prune(void **state)
{
        struct fixture *f = *state;
        const int64_t old = NOW, cut = NOW + 1000, recent = NOW + 2000;

        assert_int_equal(queue_prune(f->db, cut), 0);

        int64_t done_old = make_task_in(f, TASK_DONE, old);
        int64_t cancelled_old = make_task_in(f, TASK_CANCELLED, old);
        int64_t cancelled_queued_old = make_task_in(f, TASK_QUEUED, old);
        move(f->db, cancelled_queued_old, TASK_CANCELLED, "never ran", old + 1);
        int64_t done_at_cut = make_task_in(f, TASK_DONE, cut);       /* not before: kept */
        int64_t done_recent = make_task_in(f, TASK_DONE, recent);
        int64_t cancelled_recent = make_task_in(f, TASK_CANCELLED, recent);
        int64_t failed_old = make_task_in(f, TASK_FAILED, old);
        int64_t needs_you_old = make_task_in(f, TASK_NEEDS_YOU, old);
        int64_t queued_old = make_task_in(f, TASK_QUEUED, old);
        int64_t running_old = make_task_in(f, TASK_RUNNING, old);
        const int64_t gone[] = { done_old, cancelled_old, cancelled_queued_old };
        const int64_t kept[] = { done_at_cut, done_recent, cancelled_recent, failed_old, needs_you_old, queued_old,
                                 running_old };
        int64_t kept_events = 0;
        char *kept_before = dump(f->db,
                                 "SELECT * FROM tasks WHERE NOT (state IN ('done','cancelled') AND updated_at < ?1) "
                                 "ORDER BY id",
                                 cut);
        char *kept_events_before = dump(f->db,
                                        "SELECT e.* FROM task_events e JOIN tasks t ON t.id = e.task_id "
                                        "WHERE NOT (t.state IN ('done','cancelled') AND t.updated_at < ?1) ORDER BY e.id",
                                        cut);

        for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
                assert_true(event_count(f->db, gone[i]) >= 2);
        for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
                kept_events += event_count(f->db, kept[i]);

        assert_int_equal(queue_prune(f->db, cut), 3);
        assert_true(!store_in_transaction(f->db));

        for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
                struct queue_task *t = NULL;
                assert_int_equal(queue_get(f->db, gone[i], &t), -ENOENT);
                assert_int_equal(event_count(f->db, gone[i]), 0); /* ON DELETE CASCADE */
        }
        for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
                assert_true(event_count(f->db, kept[i]) > 0);
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM tasks", 0), 7);
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM task_events", 0), kept_events);
        /* No orphaned events at all. */
        assert_int_equal(
                sql_int(f->db, "SELECT count(*) FROM task_events WHERE task_id NOT IN (SELECT id FROM tasks)", 0), 0);

        char *kept_after = dump(f->db, "SELECT * FROM tasks ORDER BY id", 0);
        char *kept_events_after = dump(f->db, "SELECT * FROM task_events ORDER BY id", 0);
        assert_string_equal(kept_after, kept_before);
        assert_string_equal(kept_events_after, kept_events_before);
        free(kept_before);
        free(kept_after);
        free(kept_events_before);
        free(kept_events_after);

        /* Again: nothing left to prune at that time; later, the rest. */
        assert_int_equal(queue_prune(f->db, cut), 0);
        assert_int_equal(queue_prune(f->db, recent + 1), 3);
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM tasks", 0), 4);
        assert_int_equal(
                sql_int(f->db, "SELECT count(*) FROM task_events WHERE task_id NOT IN (SELECT id FROM tasks)", 0), 0);
}

/* ---- 8. list, get, events, counts, next_due ---------------------------- */

static void test_list_and_get(void **state)
{
        struct fixture *f = *state;
        struct queue_task *tasks = (struct queue_task *)0x1, *t = NULL;
        size_t n = 99;

        assert_int_equal(queue_list(f->db, -1, NULL, &tasks, &n), 0);
        assert_int_equal(n, 0);
        queue_tasks_free(tasks, n);

        int64_t q1 = make_task_in(f, TASK_QUEUED, NOW);
        int64_t d1 = make_task_in(f, TASK_DONE, NOW);
        int64_t q2 = make_task_in(f, TASK_QUEUED, NOW);
        int64_t r1 = make_task_in(f, TASK_RUNNING, NOW);
        int64_t q3 = add(f->db, "low priority, still listed by id", -100, 0, NOW);

        assert_int_equal(queue_list(f->db, -1, NULL, &tasks, &n), 0);
        assert_int_equal(n, 5);
        const int64_t all[] = { q1, d1, q2, r1, q3 };
        for (size_t i = 0; i < n; i++)
                assert_int_equal(tasks[i].id, all[i]);
        assert_int_equal(tasks[1].state, TASK_DONE);
        assert_int_equal(tasks[3].state, TASK_RUNNING);
        assert_string_equal(tasks[4].prompt, "low priority, still listed by id");
        queue_tasks_free(tasks, n);

        assert_int_equal(queue_list(f->db, TASK_QUEUED, NULL, &tasks, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(tasks[0].id, q1);
        assert_int_equal(tasks[1].id, q2);
        assert_int_equal(tasks[2].id, q3);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(tasks[i].state, TASK_QUEUED);
        queue_tasks_free(tasks, n);

        assert_int_equal(queue_list(f->db, TASK_DONE, NULL, &tasks, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(tasks[0].id, d1);
        queue_tasks_free(tasks, n);

        assert_int_equal(queue_list(f->db, TASK_FAILED, NULL, &tasks, &n), 0);
        assert_int_equal(n, 0);
        queue_tasks_free(tasks, n);

        assert_int_equal(queue_get(f->db, r1, &t), 0);
        assert_int_equal(t->id, r1);
        assert_int_equal(t->state, TASK_RUNNING);
        queue_task_free(t);
        t = NULL;
        assert_int_equal(queue_get(f->db, q3 + 1, &t), -ENOENT);
        assert_null(t);
        assert_int_equal(queue_get(f->db, 0, &t), -ENOENT);
        assert_int_equal(queue_get(f->db, -1, &t), -ENOENT);
        assert_null(t);
}

static void test_events_limit(void **state)
{
        struct fixture *f = *state;
        struct queue_event *events = NULL;
        size_t n = 0;
        int64_t id = add(f->db, "many events", 0, 0, NOW);
        int64_t other = add(f->db, "other", -1, 0, NOW); /* its events must not mix in */

        /* added, claimed, r1, claimed, r2, claimed, done: 7 events. */
        assert_int_equal(claim_id(f->db, NOW + 1), id);
        move(f->db, id, TASK_QUEUED, "r1", NOW + 2);
        assert_int_equal(claim_id(f->db, NOW + 3), id);
        move(f->db, id, TASK_QUEUED, "r2", NOW + 4);
        assert_int_equal(claim_id(f->db, NOW + 5), id);
        move(f->db, other, TASK_CANCELLED, "other event", NOW + 6);
        move(f->db, id, TASK_DONE, "finished", NOW + 7);

        assert_int_equal(queue_events(f->db, id, 100, &events, &n), 0);
        assert_int_equal(n, 7);
        check_event(&events[0], -1, TASK_QUEUED, "added", NOW);
        check_event(&events[1], TASK_QUEUED, TASK_RUNNING, "claimed", NOW + 1);
        check_event(&events[2], TASK_RUNNING, TASK_QUEUED, "r1", NOW + 2);
        check_event(&events[3], TASK_QUEUED, TASK_RUNNING, "claimed", NOW + 3);
        check_event(&events[4], TASK_RUNNING, TASK_QUEUED, "r2", NOW + 4);
        check_event(&events[5], TASK_QUEUED, TASK_RUNNING, "claimed", NOW + 5);
        check_event(&events[6], TASK_RUNNING, TASK_DONE, "finished", NOW + 7);
        for (size_t i = 1; i < n; i++)
                assert_true(events[i].id > events[i - 1].id);
        queue_events_free(events, n);

        /* The last 3, oldest first. */
        assert_int_equal(queue_events(f->db, id, 3, &events, &n), 0);
        assert_int_equal(n, 3);
        check_event(&events[0], TASK_RUNNING, TASK_QUEUED, "r2", NOW + 4);
        check_event(&events[1], TASK_QUEUED, TASK_RUNNING, "claimed", NOW + 5);
        check_event(&events[2], TASK_RUNNING, TASK_DONE, "finished", NOW + 7);
        queue_events_free(events, n);

        assert_int_equal(queue_events(f->db, id, 7, &events, &n), 0);
        assert_int_equal(n, 7);
        check_event(&events[0], -1, TASK_QUEUED, "added", NOW);
        queue_events_free(events, n);

        assert_int_equal(queue_events(f->db, id, 1, &events, &n), 0);
        assert_int_equal(n, 1);
        check_event(&events[0], TASK_RUNNING, TASK_DONE, "finished", NOW + 7);
        queue_events_free(events, n);

        assert_int_equal(queue_events(f->db, other, 100, &events, &n), 0);
        assert_int_equal(n, 2);
        check_event(&events[1], TASK_QUEUED, TASK_CANCELLED, "other event", NOW + 6);
        queue_events_free(events, n);

        /* No such task: no events, not an error. */
        n = 99;
        assert_int_equal(queue_events(f->db, other + 1, 100, &events, &n), 0);
        assert_int_equal(n, 0);
        queue_events_free(events, n);
}

static void test_counts_and_next_due(void **state)
{
        struct fixture *f = *state;
        int64_t counts[_TASK_STATE_MAX];
        int64_t due = -1;

        for (int s = 0; s < N_STATES; s++)
                counts[s] = 12345;
        assert_int_equal(queue_counts(f->db, counts), 0);
        for (int s = 0; s < N_STATES; s++)
                assert_int_equal(counts[s], 0);
        assert_int_equal(queue_next_due(f->db, NOW, &due), 0);
        assert_int_equal(due, 0);

        static const int want[_TASK_STATE_MAX] = {
                [TASK_QUEUED] = 0, /* added below with run_after values */
                [TASK_RUNNING] = 2, [TASK_DONE] = 3, [TASK_NEEDS_YOU] = 1, [TASK_FAILED] = 4, [TASK_CANCELLED] = 2,
        };
        for (int s = 1; s < N_STATES; s++)
                for (int i = 0; i < want[s]; i++)
                        make_task_in(f, (enum task_state)s, NOW);

        /* Nothing queued: still 0, whatever the others' run_after. */
        assert_int_equal(queue_next_due(f->db, NOW, &due), 0);
        assert_int_equal(due, 0);

        add(f->db, "later", 0, NOW + 500, NOW);
        add(f->db, "sooner", -5, NOW + 300, NOW);
        add(f->db, "latest", 9, NOW + 900, NOW);
        /* A running task with an earlier run_after does not count. */
        int64_t early = add(f->db, "early but running", 100, NOW + 100, NOW);
        assert_int_equal(claim_id(f->db, NOW + 100), early);

        assert_int_equal(queue_next_due(f->db, NOW, &due), 0);
        assert_int_equal(due, NOW + 300);

        assert_int_equal(queue_counts(f->db, counts), 0);
        assert_int_equal(counts[TASK_QUEUED], 3);
        assert_int_equal(counts[TASK_RUNNING], 3);
        for (int s = 2; s < N_STATES; s++)
                assert_int_equal(counts[s], want[s]);

        /* Only what falls due after the given time: one due already is
         * waiting for something else than the clock. */
        add(f->db, "now", 0, 0, NOW);
        add(f->db, "due", 0, NOW, NOW);
        due = -1;
        assert_int_equal(queue_next_due(f->db, NOW, &due), 0);
        assert_int_equal(due, NOW + 300);
        assert_int_equal(queue_next_due(f->db, NOW + 300, &due), 0);
        assert_int_equal(due, NOW + 500);
        assert_int_equal(queue_next_due(f->db, NOW + 900, &due), 0);
        assert_int_equal(due, 0);
}

/* ---- 9. hostile db content -------------------------------------------- */

static void test_check_constraint(void **state)
{
        struct fixture *f = *state;
        int64_t id = make_task_in(f, TASK_QUEUED, NOW);
        char *before = dump_all(f->db);
        char *sql;
        int rc;

        sql = xasprintf("UPDATE tasks SET state = 'bogus' WHERE id = %lld", (long long)id);
        rc = store_exec(f->db, sql);
        free(sql);
        assert_int_equal(rc, -EEXIST);
        /* SQLite-only: its extended result code tells the CHECK from the other constraints. */
        assert_int_equal(sqlite3_extended_errcode(store_sqlite(f->db)), SQLITE_CONSTRAINT_CHECK);

        static const char *const bad[] = {
                "UPDATE tasks SET state = 'QUEUED'",
                "UPDATE tasks SET state = ''",
                "UPDATE tasks SET state = 'invalid'",
                ("INSERT INTO tasks (title, prompt, state, run_after, created_at, updated_at) "
                 "VALUES ('t', 'p', 'paused', 0, 0, 0)"),
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                rc = store_exec(f->db, bad[i]);
                if (rc != -EEXIST)
                        fail_msg("'%s': %d, want -EEXIST (a constraint)", bad[i], rc);
        }
        /* STRICT: a number is not a state either. NOT NULL: neither is NULL. */
        assert_int_equal(store_exec(f->db, "UPDATE tasks SET state = 3"), -EEXIST);
        assert_int_equal(store_exec(f->db, "UPDATE tasks SET state = NULL"), -EEXIST);

        char *after = dump_all(f->db);
        assert_string_equal(after, before);
        free(before);
        free(after);
        assert_int_equal(state_of(f->db, id), TASK_QUEUED);
        /* The task still works. */
        assert_int_equal(claim_id(f->db, NOW), id);
}

/* Past the CHECK (PRAGMA ignore_check_constraints): the queue refuses the
 * row with -EBADMSG rather than crashing or acting on it. */
static void test_bad_state_row(void **state)
{
        struct fixture *f = *state;
        struct queue_task *t = NULL, *tasks = NULL;
        enum task_state ret_from = (enum task_state)77;
        int64_t counts[_TASK_STATE_MAX];
        size_t n = 0;
        int64_t good = make_task_in(f, TASK_QUEUED, NOW);
        int64_t bad = make_task_in(f, TASK_QUEUED, NOW);
        char *sql = xasprintf("PRAGMA ignore_check_constraints = ON;"
                              "UPDATE tasks SET state = 'bogus' WHERE id = %lld;"
                              "PRAGMA ignore_check_constraints = OFF;",
                              (long long)bad);

        assert_int_equal(store_exec(f->db, sql), 0);
        free(sql);
        assert_int_equal(sql_int(f->db, "SELECT state = 'bogus' FROM tasks WHERE id = ?1", bad), 1);

        assert_int_equal(queue_get(f->db, bad, &t), -EBADMSG);
        assert_null(t);
        assert_int_equal(queue_list(f->db, -1, NULL, &tasks, &n), -EBADMSG);
        char *before = dump_all(f->db);
        assert_int_equal(queue_transition(f->db, bad, TASK_CANCELLED, NULL, NOW + 1, &ret_from), -EBADMSG);
        assert_true(!store_in_transaction(f->db));
        char *after = dump_all(f->db);
        assert_string_equal(after, before);
        free(before);
        free(after);

        assert_int_equal(queue_counts(f->db, counts), 0);
        assert_int_equal(counts[TASK_QUEUED], 1);
        /* The claim takes only the good one. */
        assert_int_equal(claim_id(f->db, NOW + 2), good);
        assert_int_equal(queue_claim(f->db, NOW + 3, NULL, &t), 0);
        /* recover and prune leave it alone. */
        assert_int_equal(queue_recover(f->db, NOW + 4, "x"), 1);
        assert_int_equal(queue_prune(f->db, NOW + 1000000), 0);
        assert_int_equal(sql_int(f->db, "SELECT state = 'bogus' FROM tasks WHERE id = ?1", bad), 1);
}

/* Tasks of a project that runs one session at a time wait, unclaimed, while
 * it is busy; other tasks go first; the branch columns and ended worktrees. */
static void test_projects(void **state)
{
        struct fixture *f = *state;
        const char *busy[] = { "shared", NULL }, *none[] = { NULL };
        struct queue_task *t = NULL, *tasks = NULL;
        int64_t a, b, c;
        size_t n = 0;

        assert_int_equal(queue_add(f->db, &(struct queue_new){ .prompt = "a", .project = "shared", .priority = 9 },
                                   NOW, &a), 0);
        assert_int_equal(queue_add(f->db, &(struct queue_new){ .prompt = "b", .project = "web" }, NOW, &b), 0);
        assert_int_equal(queue_add(f->db, &(struct queue_new){ .prompt = "c", .project = "" }, NOW, &c), 0);

        assert_int_equal(queue_claim(f->db, NOW, busy, &t), 1);
        assert_int_equal(t->id, b);                     /* a, more urgent, waits for its project */
        assert_string_equal(t->project, "web");
        queue_task_free(t);
        assert_int_equal(queue_claim(f->db, NOW, busy, &t), 1);
        assert_int_equal(t->id, c);
        assert_null(t->project);                        /* "" is no project */
        queue_task_free(t);
        assert_int_equal(queue_claim(f->db, NOW, busy, &t), 0);
        assert_int_equal(queue_claim(f->db, NOW, none, &t), 1);
        assert_int_equal(t->id, a);
        queue_task_free(t);

        assert_int_equal(queue_list(f->db, -1, "web", &tasks, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(tasks[0].id, b);
        queue_tasks_free(tasks, n);

        assert_int_equal(queue_set_branch(f->db, b, "jada/task-2", "main", "abc123", "/s/work/task-2"), 0);
        assert_int_equal(queue_set_branch(f->db, 999, "x", "y", "z", "w"), -ENOENT);
        assert_int_equal(queue_get(f->db, b, &t), 0);
        assert_string_equal(t->branch, "jada/task-2");
        assert_string_equal(t->base, "main");
        assert_string_equal(t->base_commit, "abc123");
        assert_string_equal(t->worktree, "/s/work/task-2");
        queue_task_free(t);

        /* Running: not an ended worktree yet. */
        assert_int_equal(queue_worktrees(f->db, true, &tasks, &n), 0);
        assert_int_equal(n, 0);
        queue_tasks_free(tasks, n);
        assert_int_equal(queue_worktrees(f->db, false, &tasks, &n), 0);
        assert_int_equal(n, 1);
        queue_tasks_free(tasks, n);
        move(f->db, b, TASK_DONE, "done", NOW);
        assert_int_equal(queue_worktrees(f->db, true, &tasks, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(tasks[0].id, b);
        queue_tasks_free(tasks, n);

        assert_int_equal(queue_note(f->db, b, "warning: push failed", NOW), 0);
        assert_int_equal(queue_get(f->db, b, &t), 0);
        assert_int_equal(t->state, TASK_DONE);          /* a note changes no state */
        queue_task_free(t);
        assert_int_equal(queue_set_worktree(f->db, b, NULL), 0);
        assert_int_equal(queue_worktrees(f->db, false, &tasks, &n), 0);
        assert_int_equal(n, 0);
        queue_tasks_free(tasks, n);
}

/* ---- sub-tasks and after-tasks ------------------------------------------ */

static int64_t add_sub(struct store *db, int64_t parent, const char *prompt, int64_t now)
{
        int64_t id = -1;
        char why[256] = "";
        int r = queue_add_why(db, &(struct queue_new){ .prompt = prompt, .parent_id = parent, .max_depth = 3,
                                                       .max_children = 2 },
                              now, &id, why, sizeof why);
        if (r != 0)
                fail_msg("sub-task of %lld: %d %s", (long long)parent, r, why);
        return id;
}

static void test_subtask_parent_waits_then_resumes(void **state)
{
        struct fixture *f = *state;
        struct queue_task *t = NULL;
        int64_t p = add(f->db, "parent", 7, 0, NOW), a, b;

        assert_int_equal(claim_id(f->db, NOW), p);
        a = add_sub(f->db, p, "child a", NOW);
        b = add_sub(f->db, p, "child b", NOW);
        assert_int_equal(queue_get(f->db, a, &t), 0);
        assert_int_equal(t->parent_id, p);
        assert_int_equal(t->priority, 7);               /* inherited */
        queue_task_free(t);
        /* The session's outcome said done: the task waits for its sub-tasks. */
        assert_int_equal(queue_transition(f->db, p, TASK_DONE, &(struct queue_change){ .reason = "finished", .result = "r" },
                                          NOW + 1, NULL), 0);
        assert_int_equal(state_of(f->db, p), TASK_WAITING);
        check_last_event(f->db, p, TASK_RUNNING, TASK_WAITING, "finished; waits for 2 sub-tasks", NOW + 1);
        /* Never claimed while waiting: the children are. */
        assert_int_equal(claim_id(f->db, NOW + 2), a);
        assert_int_equal(queue_transition(f->db, a, TASK_DONE, &(struct queue_change){ .result = "result of a" },
                                          NOW + 3, NULL), 0);
        assert_int_equal(state_of(f->db, p), TASK_WAITING); /* b has not ended */
        assert_int_equal(claim_id(f->db, NOW + 4), b);
        assert_int_equal(queue_transition(f->db, b, TASK_FAILED, &(struct queue_change){ .error = "b broke" },
                                          NOW + 5, NULL), 0);
        assert_int_equal(queue_get(f->db, p, &t), 0);
        assert_int_equal(t->state, TASK_QUEUED);
        assert_non_null(t->reply);
        assert_non_null(strstr(t->reply, "result of a"));
        assert_non_null(strstr(t->reply, "b broke"));
        assert_non_null(strstr(t->reply, "state: failed"));
        queue_task_free(t);
        /* Retrying the failed child before the parent ran again: it waits again. */
        assert_int_equal(queue_transition(f->db, b, TASK_QUEUED, &(struct queue_change){ .reason = "retry" }, NOW + 6, NULL), 0);
        assert_int_equal(state_of(f->db, p), TASK_WAITING);
        assert_int_equal(claim_id(f->db, NOW + 7), b);
        move(f->db, b, TASK_DONE, "ok", NOW + 8);
        assert_int_equal(state_of(f->db, p), TASK_QUEUED);
        /* A needs_you outcome goes to the person even with sub-tasks pending. */
        assert_int_equal(claim_id(f->db, NOW + 9), p);
        assert_int_equal(queue_add(f->db, &(struct queue_new){ .prompt = "child c", .parent_id = p }, NOW + 9, &a), 0);
        assert_int_equal(state_of(f->db, p), TASK_RUNNING);
        move(f->db, p, TASK_NEEDS_YOU, "question", NOW + 10);
}

static void test_subtask_limits(void **state)
{
        struct fixture *f = *state;
        int64_t p = add(f->db, "parent", 0, 0, NOW), c, g, id = 0, before;
        const int64_t unknown = 9999;
        char why[256];

        c = add_sub(f->db, p, "child", NOW);
        g = add_sub(f->db, c, "grandchild", NOW);
        before = sql_int(f->db, "SELECT count(*) FROM tasks WHERE ?1 > 0", 1);
        assert_int_equal(queue_add_why(f->db, &(struct queue_new){ .prompt = "too deep", .parent_id = g, .max_depth = 3 },
                                       NOW, &id, why, sizeof why), -E2BIG);
        assert_non_null(strstr(why, "max_task_depth"));
        (void)add_sub(f->db, p, "second", NOW);
        assert_int_equal(queue_add_why(f->db, &(struct queue_new){ .prompt = "third", .parent_id = p, .max_children = 2 },
                                       NOW, &id, why, sizeof why), -E2BIG);
        assert_non_null(strstr(why, "max_children_per_task"));
        assert_int_equal(queue_add_why(f->db, &(struct queue_new){ .prompt = "x", .parent_id = unknown },
                                       NOW, &id, why, sizeof why), -ENOENT);
        assert_int_equal(queue_add_why(f->db, &(struct queue_new){ .prompt = "x", .after = &unknown, .n_after = 1 },
                                       NOW, &id, why, sizeof why), -ENOENT);
        /* A sub-task after its own parent (or a task after that parent) could never run. */
        assert_int_equal(queue_add_why(f->db, &(struct queue_new){ .prompt = "x", .parent_id = c, .after = &p, .n_after = 1 },
                                       NOW, &id, why, sizeof why), -EDEADLK);
        assert_non_null(strstr(why, "cycle"));
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM tasks WHERE ?1 > 0", 1), before + 1);
        /* A cancelled parent takes none. */
        unsigned n = 0;
        assert_int_equal(queue_cancel_tree(f->db, p, "by hand", NOW, NULL, &n), 0);
        assert_int_equal(n, 3);                         /* c, g and the second */
        assert_int_equal(state_of(f->db, g), TASK_CANCELLED);
        assert_int_equal(queue_add_why(f->db, &(struct queue_new){ .prompt = "x", .parent_id = p },
                                       NOW, &id, why, sizeof why), -EPERM);
}

static void test_after_tasks_at_claim(void **state)
{
        struct fixture *f = *state;
        struct queue_task *t = NULL;
        int64_t a = add(f->db, "first", 0, 0, NOW), b, c, id;

        assert_int_equal(queue_add(f->db, &(struct queue_new){ .prompt = "after a", .priority = 10, .after = &a, .n_after = 1 },
                                   NOW, &b), 0);
        assert_int_equal(queue_add(f->db, &(struct queue_new){ .prompt = "after b", .priority = 20, .after = &b, .n_after = 1 },
                                   NOW, &c), 0);
        assert_int_equal(claim_id(f->db, NOW), a);      /* b and c outrank it, but wait for it */
        assert_int_equal(queue_claim(f->db, NOW, NULL, &t), 0);
        move(f->db, a, TASK_DONE, "ok", NOW + 1);
        assert_int_equal(claim_id(f->db, NOW + 2), b);
        move(f->db, b, TASK_FAILED, "broke", NOW + 3);
        /* c does not run on a broken premise. */
        assert_int_equal(queue_claim(f->db, NOW + 4, NULL, &t), 0);
        assert_int_equal(queue_get(f->db, c, &t), 0);
        assert_int_equal(t->state, TASK_NEEDS_YOU);
        assert_non_null(strstr(t->needs_you_reason, "failed"));
        queue_task_free(t);
        id = b;
        assert_int_equal(state_of(f->db, id), TASK_FAILED);
}

static void test_subtask_recover_and_prune(void **state)
{
        struct fixture *f = *state;
        int64_t p = add(f->db, "parent", 0, 0, NOW), c;

        assert_int_equal(claim_id(f->db, NOW), p);
        c = add_sub(f->db, p, "child", NOW);
        /* A daemon killed while the parent's session ran: it waits, not queued. */
        assert_int_equal(queue_recover(f->db, NOW + 1, "interrupted"), 1);
        assert_int_equal(state_of(f->db, p), TASK_WAITING);
        /* A waiting parent whose sub-tasks all ended (by hand in the db) is queued at the next start. */
        assert_int_equal(store_exec(f->db, "UPDATE tasks SET state = 'done' WHERE parent_id IS NOT NULL"), 0);
        assert_int_equal(queue_recover(f->db, NOW + 2, "start"), 1);
        assert_int_equal(state_of(f->db, p), TASK_QUEUED);
        /* Pruned together, once both ended. */
        assert_int_equal(claim_id(f->db, NOW + 3), p);
        move(f->db, p, TASK_DONE, "ok", NOW + 4);
        assert_int_equal(store_exec(f->db, "UPDATE tasks SET updated_at = 0 WHERE parent_id IS NULL"), 0);
        assert_int_equal(queue_prune(f->db, NOW), 0); /* the child was updated at the cutoff */
        assert_int_equal(queue_prune(f->db, NOW + 10), 2);
        assert_int_equal(sql_int(f->db, "SELECT count(*) FROM tasks WHERE id = ?1", c), 0);
}

int main(void)
{
        suite_now = now_seconds();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_state_names),
                cmocka_unit_test(test_transition_allowed_table),
                cmocka_unit_test_setup_teardown(test_transition_every_pair, setup, teardown),
                cmocka_unit_test_setup_teardown(test_transition_out_of_range_target, setup, teardown),
                cmocka_unit_test_setup_teardown(test_transition_unknown_id, setup, teardown),
                cmocka_unit_test_setup_teardown(test_transition_only_from, setup, teardown),
                cmocka_unit_test_setup_teardown(test_transition_null_change, setup, teardown),
                cmocka_unit_test_setup_teardown(test_change_run_after, setup, teardown),
                cmocka_unit_test_setup_teardown(test_change_texts_and_needs_you, setup, teardown),
                cmocka_unit_test_setup_teardown(test_change_reset_attempts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_add_invalid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_add_fields_and_event, setup, teardown),
                cmocka_unit_test_setup_teardown(test_add_title_default, setup, teardown),
                cmocka_unit_test_setup_teardown(test_add_title_cut, setup, teardown),
                cmocka_unit_test_setup_teardown(test_claim_empty, setup, teardown),
                cmocka_unit_test_setup_teardown(test_claim_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_claim_fields_and_event, setup, teardown),
                cmocka_unit_test_setup_teardown(test_claim_two_connections, setup, teardown),
                cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list_and_get, setup, teardown),
                cmocka_unit_test_setup_teardown(test_events_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_counts_and_next_due, setup, teardown),
                cmocka_unit_test_setup_teardown(test_check_constraint, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_state_row, setup, teardown),
                cmocka_unit_test_setup_teardown(test_projects, setup, teardown),
                cmocka_unit_test_setup_teardown(test_subtask_parent_waits_then_resumes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_subtask_limits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_after_tasks_at_claim, setup, teardown),
                cmocka_unit_test_setup_teardown(test_subtask_recover_and_prune, setup, teardown),
        };

        /* Quiet: only errors, on stderr (the tests provoke some on purpose). */
        log_setup(LOG_TARGET_STDERR, false);
        log_set_max_priority(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
