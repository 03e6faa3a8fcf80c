/* SPDX-License-Identifier: MIT */
/* Unit tests: the session module alone, with a loop, a db and the fake
 * claude (tests/fake/fake-claude), and no daemon: start, the stream, the
 * record (the sessions row and the task's next state), the outcome told
 * through the ended callback, a stop, the session timeout, a cancelled
 * task, a command that cannot run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jada/config.h"
#include "jada/db.h"
#include "jada/queue.h"
#include "jada/session-store.h"
#include "jada/session.h"
#include "jada/util.h"

#define WAIT_USEC (60 * USEC_PER_SEC)
#define SAMPLES "samples/v2.1.332_"

struct fixture {
        char dir[64], state[96], scenarios[128], log[128];
        struct jada_config *config;
        struct store *db;
        sd_event *event;
        struct sessions *sessions;
        unsigned changed, ended, db_failures;
        struct session_result last;
};

static void on_changed(void *userdata)
{
        ((struct fixture *)userdata)->changed++;
}

static void on_ended(const struct session_result *result, void *userdata)
{
        struct fixture *f = userdata;

        f->ended++;
        f->last = *result;
}

static void on_db_failed(int r, const char *what, void *userdata)
{
        ((struct fixture *)userdata)->db_failures++;
}

static void load_config(struct fixture *f, const char *command, const char *extra)
{
        struct config_problems problems = { 0 };
        char cwd[512];
        char *text;

        assert_non_null(getcwd(cwd, sizeof cwd));
        text = command ? xasprintf("[daemon]\nstate_dir = %s\n[claude]\ncommand = %s\n%s", f->state, command, extra)
                       : xasprintf("[daemon]\nstate_dir = %s\n[claude]\ncommand = %s/tests/fake/fake-claude\n%s",
                                   f->state, cwd, extra);
        config_free(f->config);
        f->config = NULL;
        if (config_parse_buffer("test.conf", text, strlen(text), &f->config, &problems) < 0) {
                config_problems_print(&problems);
                fail();
        }
        config_problems_clear(&problems);
        free(text);
}

static void start(struct fixture *f)
{
        assert_int_equal(sessions_new(f->event, f->db, f->config,
                                      &(struct session_callbacks){ .changed = on_changed, .ended = on_ended,
                                                                   .db_failed = on_db_failed, .userdata = f },
                                      &f->sessions), 0);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof *f);
        char *dbpath;

        assert_non_null(f);
        snprintf(f->dir, sizeof f->dir, "/tmp/jada-session-test-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->state, sizeof f->state, "%s/state", f->dir);
        snprintf(f->scenarios, sizeof f->scenarios, "%s/scenarios", f->dir);
        snprintf(f->log, sizeof f->log, "%s/fake-claude.log", f->dir);
        assert_int_equal(mkdir(f->state, 0700), 0);
        assert_int_equal(mkdir(f->scenarios, 0700), 0);
        /* The fake claude reads these from the environment it inherits. */
        setenv("FAKE_CLAUDE_SCENARIOS", f->scenarios, 1);
        setenv("FAKE_CLAUDE_LOG", f->log, 1);
        dbpath = db_path_for(f->state);
        assert_int_equal(store_open(dbpath, &f->db), 0);
        free(dbpath);
        assert_true(sd_event_new(&f->event) >= 0);
        load_config(f, NULL, "");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char *cmd = xasprintf("rm -rf '%s'", f->dir);

        sessions_free(f->sessions);
        sd_event_unref(f->event);
        store_close(f->db);
        config_free(f->config);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        free(f);
        return 0;
}

static void scenario(struct fixture *f, const char *name, const char *json)
{
        char *path = xasprintf("%s/%s-scenario.json", f->scenarios, name);
        FILE *fp = fopen(path, "w");

        assert_non_null(fp);
        fputs(json, fp);
        fclose(fp);
        free(path);
}

/* Adds a task and claims it, as the daemon does before a session. */
static struct queue_task *claimed_task(struct fixture *f, const char *prompt)
{
        struct queue_task *t = NULL;
        int64_t id, now = now_seconds();

        assert_int_equal(queue_add(f->db, &(struct queue_new){ .title = NULL, .prompt = prompt, .priority = 0, .run_after = now }, now, &id), 0);
        assert_int_equal(queue_claim(f->db, now, NULL, &t), 1);
        assert_int_equal(t->id, id);
        return t;
}

static void run_until_ended(struct fixture *f, unsigned n)
{
        uint64_t deadline = now_monotonic_usec() + WAIT_USEC;

        while (f->ended < n) {
                assert_true(now_monotonic_usec() < deadline);
                assert_true(sd_event_run(f->event, 100 * USEC_PER_MSEC) >= 0);
        }
}

static void run_until_running(struct fixture *f)
{
        uint64_t deadline = now_monotonic_usec() + WAIT_USEC;
        struct stat st;

        /* The fake writes its log line before its first output line. */
        while (stat(f->log, &st) < 0 || st.st_size == 0) {
                assert_true(now_monotonic_usec() < deadline);
                assert_true(sd_event_run(f->event, 50 * USEC_PER_MSEC) >= 0);
        }
}

static struct session_row *only_row(struct fixture *f, size_t *n)
{
        struct session_row *rows = NULL;

        assert_int_equal(session_store_list(f->db, 0, &rows, n), 0);
        assert_int_equal(*n, 1);
        return rows;
}

static enum task_state task_state(struct fixture *f, int64_t id)
{
        struct queue_task *t = NULL;
        enum task_state s;

        assert_int_equal(queue_get(f->db, id, &t), 0);
        s = t->state;
        queue_task_free(t);
        return s;
}

/* The sessions, a claimed task, and its session started (after the
 * scenario the fake plays, if any). Returns the task's id. */
static int64_t start_session(struct fixture *f, const char *scenario_json)
{
        struct queue_task *t;
        int64_t id;

        if (scenario_json)
                scenario(f, "001", scenario_json);
        start(f);
        t = claimed_task(f, "Write hello.py");
        id = t->id;
        assert_int_equal(sessions_start(f->sessions, t), 0); /* takes the task */
        return id;
}

static void test_start_stream_record(void **state)
{
        struct fixture *f = *state;
        struct session_row *rows;
        int64_t id, task_id;
        unsigned turns;
        size_t n;

        id = start_session(f, "{\"stream\": \"" SAMPLES "success.stream.jsonl\"}");
        assert_int_equal(sessions_running(f->sessions), 1);
        assert_true(sessions_first(f->sessions, &task_id, &turns));
        assert_int_equal(task_id, id);
        /* The row is written before the child runs: the budget counts it. */
        rows = only_row(f, &n);
        assert_null(rows[0].outcome);
        session_rows_free(rows, n);

        run_until_ended(f, 1);
        assert_int_equal(f->last.task_id, id);
        assert_int_equal(f->last.kind, OUTCOME_DONE);
        assert_int_equal(sessions_running(f->sessions), 0);
        assert_true(f->changed >= 2); /* started, turns moved */
        assert_int_equal(task_state(f, id), TASK_DONE);
        rows = only_row(f, &n);
        assert_string_equal(rows[0].outcome, "done");
        assert_int_equal(rows[0].exit_status, 0);
        assert_true(rows[0].turns > 0);
        assert_true(rows[0].cost_usd > 0.14 && rows[0].cost_usd < 0.15);
        assert_null(rows[0].uncounted);
        session_rows_free(rows, n);
        assert_int_equal(f->db_failures, 0);
}

static void test_stop_interrupts_resumably(void **state)
{
        struct fixture *f = *state;
        struct queue_task *after = NULL;
        struct session_row *rows;
        int64_t id;
        size_t n;

        id = start_session(f, "{\"stream\": \"" SAMPLES "success.stream.jsonl\", \"hang_after\": 3}");
        run_until_running(f);
        sessions_stop_all(f->sessions, SESSION_STOP_SHUTDOWN);
        run_until_ended(f, 1);
        assert_int_equal(f->last.kind, OUTCOME_INTERRUPTED);
        assert_int_equal(queue_get(f->db, id, &after), 0);
        assert_int_equal(after->state, TASK_QUEUED);
        assert_int_equal(after->attempts, 0);
        assert_non_null(after->claude_session_id); /* the next session resumes it */
        queue_task_free(after);
        rows = only_row(f, &n);
        assert_string_equal(rows[0].outcome, "interrupted");
        assert_int_equal(rows[0].exit_status, 143);
        session_rows_free(rows, n);
}

static void test_session_timeout(void **state)
{
        struct fixture *f = *state;
        struct session_row *rows;
        uint64_t t0 = now_monotonic_usec();
        size_t n;

        load_config(f, NULL, "session_timeout = 10s\n");
        start_session(f, "{\"stream\": \"" SAMPLES "success.stream.jsonl\", \"hang_after\": 2}");
        run_until_ended(f, 1);
        assert_true(now_monotonic_usec() - t0 >= 10 * USEC_PER_SEC);
        assert_int_equal(f->last.kind, OUTCOME_FAILED_ATTEMPT);
        rows = only_row(f, &n);
        assert_string_equal(rows[0].outcome, "timeout");
        session_rows_free(rows, n);
}

static void test_cancelled_task_is_stopped(void **state)
{
        struct fixture *f = *state;
        int64_t id = start_session(f, "{\"stream\": \"" SAMPLES "success.stream.jsonl\", \"hang_after\": 3}");

        run_until_running(f);
        assert_int_equal(queue_transition(f->db, id, TASK_CANCELLED, NULL, now_seconds(), NULL), 0);
        sessions_check_cancelled(f->sessions);
        run_until_ended(f, 1);
        assert_int_equal(f->last.kind, OUTCOME_CANCELLED);
        assert_int_equal(task_state(f, id), TASK_CANCELLED);
}

static void test_command_that_cannot_run(void **state)
{
        struct fixture *f = *state;
        struct queue_task *after = NULL;
        struct session_row *rows;
        char *missing = xasprintf("%s/no-such-claude", f->dir);
        int64_t id;
        size_t n;

        load_config(f, missing, "");
        id = start_session(f, NULL);
        run_until_ended(f, 1);
        assert_int_equal(f->last.kind, OUTCOME_LAUNCH_ERROR);
        assert_int_equal(f->last.exec_errno, ENOENT);
        assert_int_equal(queue_get(f->db, id, &after), 0);
        assert_int_equal(after->state, TASK_QUEUED);
        assert_int_equal(after->sessions_used, 0); /* never started: no slot taken */
        queue_task_free(after);
        rows = only_row(f, &n);
        assert_string_equal(rows[0].outcome, "launch_error");
        assert_non_null(rows[0].uncounted);
        session_rows_free(rows, n);
        free(missing);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_start_stream_record, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop_interrupts_resumably, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancelled_task_is_stopped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_command_that_cannot_run, setup, teardown),
                cmocka_unit_test_setup_teardown(test_session_timeout, setup, teardown),
        };
        sigset_t mask;

        /* sd-event takes SIGCHLD through a signalfd: it must be blocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
