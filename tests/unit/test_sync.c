/* SPDX-License-Identifier: MIT */
/*
 * src/sync.c in a real sd-event loop, with a real db, the http module and
 * the real oauth module, against tests/fake/fake_google_sheets.py (token
 * endpoint and Sheets values.get/update with scripted answers).
 *
 * No timing asserts: backoff and timeouts are shortened with
 * sync_set_timing(); the one lower bound checked is that a Retry-After was
 * waited out. Every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jada/config.h"
#include "jada/db.h"
#include "jada/http.h"
#include "jada/oauth.h"
#include "jada/queue.h"
#include "jada/sync.h"
#include "fake-server.h"
#include "jada/util.h"

#define WAIT_USEC (30 * USEC_PER_SEC)   /* a ceiling for ASan, never a measurement */

struct server {
        pid_t pid;
        int port;
};

struct fixture {
        struct server *server;
        char dir[64], state[128];
        struct store *db;
        sd_event *event;
        struct http_client *http;
        struct oauth *oauth;
        struct jada_config *config;
        struct sync *sync;
        int results, oks;
        char last_error[512];
};

/* ---- the fake, driven with blocking curl calls (never while the loop runs) ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
        char **buf = userdata;
        size_t old = *buf ? strlen(*buf) : 0, n = size * nmemb;

        *buf = realloc(*buf, old + n + 1);
        assert_non_null(*buf);
        memcpy(*buf + old, data, n);
        (*buf)[old + n] = '\0';
        return n;
}

static char *control(struct fixture *f, const char *path, const char *post)
{
        CURL *c = curl_easy_init();
        char url[256], *body = NULL;
        long status = 0;

        assert_non_null(c);
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->server->port, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        if (post)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        assert_int_equal(status, 200);
        curl_easy_cleanup(c);
        return body;
}

static void script(struct fixture *f, const char *json)
{
        free(control(f, "/_script", json));
}

static void set_sheet(struct fixture *f, const char *json)
{
        free(control(f, "/_sheet", json));
}

static json_t *stats(struct fixture *f)
{
        char *s = control(f, "/_stats", NULL);
        json_t *j = json_loads(s, 0, NULL);

        assert_non_null(j);
        free(s);
        return j;
}

static int count(struct fixture *f, const char *kind)
{
        json_t *j = stats(f);
        int n = (int)json_integer_value(json_object_get(j, kind));

        json_decref(j);
        return n;
}

/* The i-th request of a kind ("GET", "PUT", "POST"), a new reference. */
static json_t *request(struct fixture *f, const char *method, int i)
{
        json_t *j = stats(f), *r, *found = NULL;
        size_t k;

        json_array_foreach(json_object_get(j, "requests"), k, r)
                if (strcmp(json_string_value(json_object_get(r, "method")), method) == 0 && i-- == 0) {
                        found = json_incref(r);
                        break;
                }
        json_decref(j);
        assert_non_null(found);
        return found;
}

static int server_start(void **state)
{
        struct server *s = calloc(1, sizeof *s);

        if (!s)
                return -1;
        s->pid = fake_server_start("tests/fake/fake_google_sheets.py", &s->port, 1);
        if (s->pid < 0) {
                free(s);
                return -1;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        setenv("GOOGLE_CLIENT_SECRET", "test-secret", 1);
        unsetenv("CREDENTIALS_DIRECTORY");
        *state = s;
        return 0;
}

static int server_stop(void **state)
{
        struct server *s = *state;

        fake_server_stop(s->pid);
        free(s);
        return 0;
}

/* ---- the fixture: everything but the sync, which each test starts ---- */

static void write_token(struct fixture *f, const char *json)
{
        char *path = xasprintf("%s/%s", f->state, OAUTH_TOKEN_FILE);

        assert_int_equal(write_file_atomic(path, json, strlen(json), 0600), 0);
        free(path);
}

static void load_config(struct fixture *f, const char *extra)
{
        struct config_problems problems = { 0 };
        char *text = xasprintf("[daemon]\nstate_dir = %s\n"
                               "[sheets]\nenabled = yes\nspreadsheet_id = SHEET-1\nrange = 'Port list'!A1:Z\n"
                               "interval = 1h\nclient_id = cid\n"
                               "token_url = http://127.0.0.1:%d/token\napi_url = http://127.0.0.1:%d\n%s",
                               f->state, f->server->port, f->server->port, extra);
        struct jada_config *c = NULL;

        if (config_parse_buffer("test.conf", text, strlen(text), &c, &problems) < 0) {
                config_problems_print(&problems);
                fail();
        }
        config_problems_clear(&problems);
        free(text);
        config_free(f->config);
        f->config = c;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof *f);
        char *dbpath;

        assert_non_null(f);
        f->server = *state;
        snprintf(f->dir, sizeof f->dir, "/tmp/jada-sync-test-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->state, sizeof f->state, "%s/state", f->dir);
        assert_int_equal(mkdir(f->state, 0700), 0);
        dbpath = db_path_for(f->state);
        assert_int_equal(store_open(dbpath, &f->db), 0);
        free(dbpath);
        assert_true(sd_event_new(&f->event) >= 0);
        assert_int_equal(http_client_new(f->event, &f->http), 0);
        free(control(f, "/_reset", "{}"));
        set_sheet(f, "{\"values\": [[\"port\", \"city\"], [\"Hamburg\", \"DE\"], [\"Rotterdam\"]]}");
        write_token(f, "{\"refresh_token\": \"refresh-1\"}");
        load_config(f, "");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char *cmd = xasprintf("rm -rf '%s'", f->dir);

        sync_free(f->sync);
        oauth_free(f->oauth);
        http_client_free(f->http);
        sd_event_unref(f->event);
        store_close(f->db);
        config_free(f->config);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        *state = f->server;
        free(f);
        return 0;
}

static void on_result(struct sync *sync, bool ok, const char *error, void *userdata)
{
        struct fixture *f = userdata;

        f->results++;
        f->oks += ok;
        assert_true(ok == (error == NULL));
        snprintf(f->last_error, sizeof f->last_error, "%s", error ? error : "");
}

static void start(struct fixture *f)
{
        struct oauth_options o = {
                .auth = f->config->sheets.auth,
                .token_url = f->config->sheets.token_url,
                .client_id = f->config->sheets.client_id,
                .client_secret_file = f->config->sheets.client_secret_file,
                .state_dir = f->config->daemon.state_dir,
        };

        assert_int_equal(oauth_new(f->event, f->http, &o, &f->oauth), 0);
        assert_int_equal(sync_new(f->event, f->db, f->http, f->oauth, f->config, &f->sync), 0);
        sync_set_result_callback(f->sync, on_result, f);
        sync_set_timing(f->sync, 10 * USEC_PER_MSEC, 500 * USEC_PER_MSEC);
}

static void run_until_results(struct fixture *f, int n)
{
        uint64_t deadline = now_monotonic_usec() + WAIT_USEC;

        while (f->results < n) {
                assert_true(now_monotonic_usec() < deadline);
                assert_true(sd_event_run(f->event, 100 * USEC_PER_MSEC) >= 0);
        }
}

static void run_for(struct fixture *f, uint64_t usec)
{
        uint64_t deadline = now_monotonic_usec() + usec;

        while (now_monotonic_usec() < deadline)
                assert_true(sd_event_run(f->event, 20 * USEC_PER_MSEC) >= 0);
}

/* ---- db and file inspection ---- */

static int64_t sql_int(struct fixture *f, const char *sql)
{
        struct store_stmt *st;
        int64_t v = -1;

        assert_int_equal(store_prepare(f->db, sql, &st), 0);
        if (store_step(st) == STORE_ROW)
                v = store_column_int64(st, 0);
        store_finalize(st);
        return v;
}

/* A text column of the first row, "" for NULL or no row; the caller frees. */
static char *sql_text(struct fixture *f, const char *sql)
{
        struct store_stmt *st;
        char *v = NULL;

        assert_int_equal(store_prepare(f->db, sql, &st), 0);
        if (store_step(st) == STORE_ROW && store_column_text(st, 0))
                v = xstrdup(store_column_text(st, 0));
        store_finalize(st);
        return v ? v : xstrdup("");
}

static char *port_file(struct fixture *f)
{
        char *path = xasprintf("%s/%s", f->state, SYNC_PORT_SHEET_FILE), *data = NULL;
        size_t size;

        if (read_file_capped(path, 1 << 20, &data, &size) < 0)
                data = NULL;
        free(path);
        return data;
}

/* Everything a failed run must leave alone. */
struct snapshot {
        char *rows, *meta, *file;
};

static void snapshot_take(struct fixture *f, struct snapshot *s)
{
        s->rows = sql_text(f, "SELECT group_concat(row || '=' || data, ';') FROM port_sheet");
        s->meta = sql_text(f, "SELECT header || content_hash || updated_at FROM port_sheet_meta");
        s->file = port_file(f);
        assert_non_null(s->file);
}

static void snapshot_check(struct fixture *f, struct snapshot *s)
{
        struct snapshot now;

        snapshot_take(f, &now);
        assert_string_equal(now.rows, s->rows);
        assert_string_equal(now.meta, s->meta);
        assert_string_equal(now.file, s->file);
        free(now.rows), free(now.meta), free(now.file);
        free(s->rows), free(s->meta), free(s->file);
}

static void first_sync(struct fixture *f)
{
        start(f);
        run_until_results(f, 1);
        assert_int_equal(f->oks, 1);
}

/* ---- the tests ---- */

static void test_first_unchanged_changed(void **state)
{
        struct fixture *f = *state;
        struct sync_status st;
        struct stat sb1, sb2;
        json_t *j, *req;
        char *file, *file2, *path = xasprintf("%s/%s", f->state, SYNC_PORT_SHEET_FILE), *s;

        first_sync(f);
        /* The table, the meta row, the file. */
        assert_int_equal(sql_int(f, "SELECT count(*) FROM port_sheet"), 2);
        s = sql_text(f, "SELECT data FROM port_sheet WHERE row = 2");
        assert_string_equal(s, "{\"port\":\"Rotterdam\",\"city\":\"\"}");
        free(s);
        s = sql_text(f, "SELECT header FROM port_sheet_meta");
        assert_string_equal(s, "[\"port\",\"city\"]");
        free(s);
        assert_int_equal(sql_int(f, "SELECT length(content_hash) FROM port_sheet_meta"), 64);
        file = port_file(f);
        assert_non_null(file);
        j = json_loads(file, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "spreadsheet_id")), "SHEET-1");
        assert_string_equal(json_string_value(json_object_get(j, "range")), "'Port list'!A1:Z");
        assert_int_equal(strlen(json_string_value(json_object_get(j, "synced_at"))), 20);
        assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "rows"), 0), "port")),
                            "Hamburg");
        json_decref(j);
        assert_int_equal(stat(path, &sb1), 0);
        assert_int_equal(sb1.st_mode & 0777, 0640);
        /* The run's row. */
        assert_int_equal(sql_int(f, "SELECT count(*) FROM sync_runs"), 1);
        assert_int_equal(sql_int(f, "SELECT ok + 10 * changed + 100 * rows FROM sync_runs"), 211);
        assert_int_equal(sql_int(f, "SELECT http_status FROM sync_runs"), 200);
        assert_int_equal(sql_int(f, "SELECT error IS NULL AND ended_at >= started_at FROM sync_runs"), 1);
        /* What Google saw: one refresh, one GET with the range escaped. */
        assert_int_equal(count(f, "token"), 1);
        assert_int_equal(count(f, "get"), 1);
        req = request(f, "POST", 0);
        j = json_object_get(req, "body");
        assert_string_equal(json_string_value(json_object_get(j, "grant_type")), "refresh_token");
        assert_string_equal(json_string_value(json_object_get(j, "client_secret")), "test-secret");
        assert_string_equal(json_string_value(json_object_get(j, "refresh_token")), "refresh-1");
        json_decref(req);
        req = request(f, "GET", 0);
        assert_string_equal(json_string_value(json_object_get(req, "path")),
                            "/v4/spreadsheets/SHEET-1/values/'Port list'!A1:Z");
        assert_string_equal(json_string_value(json_object_get(req, "raw_path")),
                            "/v4/spreadsheets/SHEET-1/values/%27Port%20list%27%21A1%3AZ");
        assert_string_equal(json_string_value(json_object_get(req, "query")), "majorDimension=ROWS");
        assert_string_equal(json_string_value(json_object_get(req, "auth")), "Bearer fake-access-1");
        json_decref(req);
        sync_get_status(f->sync, &st);
        assert_true(st.enabled);
        assert_false(st.running);
        assert_int_equal(st.failing_runs, 0);
        assert_true(st.last_ok_at > 0);
        assert_true(st.next_at > st.last_ok_at + 3000);   /* an hour on */
        assert_int_equal(st.last_http_status, 200);

        /* Unchanged: a run row with changed = 0, the file not rewritten. */
        sync_run_now(f->sync);
        run_until_results(f, 2);
        assert_int_equal(f->oks, 2);
        assert_int_equal(sql_int(f, "SELECT changed FROM sync_runs WHERE id = 2"), 0);
        assert_int_equal(sql_int(f, "SELECT ok FROM sync_runs WHERE id = 2"), 1);
        file2 = port_file(f);
        assert_string_equal(file, file2);
        free(file2);
        assert_int_equal(stat(path, &sb2), 0);
        assert_int_equal(sb1.st_ino, sb2.st_ino);
        assert_int_equal(count(f, "token"), 1);         /* the token was reused */
        assert_int_equal(count(f, "get"), 2);

        /* Changed: replaced whole. */
        set_sheet(f, "{\"values\": [[\"port\", \"country\"], [\"Kiel\", \"DE\"]]}");
        sync_run_now(f->sync);
        run_until_results(f, 3);
        assert_int_equal(f->oks, 3);
        assert_int_equal(sql_int(f, "SELECT changed FROM sync_runs WHERE id = 3"), 1);
        assert_int_equal(sql_int(f, "SELECT count(*) FROM port_sheet"), 1);
        s = sql_text(f, "SELECT data FROM port_sheet");
        assert_string_equal(s, "{\"port\":\"Kiel\",\"country\":\"DE\"}");
        free(s);
        file2 = port_file(f);
        assert_non_null(strstr(file2, "\"Kiel\""));
        assert_null(strstr(file2, "Hamburg"));
        free(file2);

        /* An empty sheet is data too: zero rows. */
        set_sheet(f, "{\"values\": null}");
        sync_run_now(f->sync);
        run_until_results(f, 4);
        assert_int_equal(f->oks, 4);
        assert_int_equal(sql_int(f, "SELECT count(*) FROM port_sheet"), 0);
        assert_int_equal(sql_int(f, "SELECT rows FROM sync_runs WHERE id = 4"), 0);
        free(file);
        free(path);
}

static void test_file_deleted_is_rewritten(void **state)
{
        struct fixture *f = *state;
        char *path = xasprintf("%s/%s", f->state, SYNC_PORT_SHEET_FILE), *file;

        first_sync(f);
        assert_int_equal(unlink(path), 0);
        sync_run_now(f->sync);
        run_until_results(f, 2);
        assert_int_equal(f->oks, 2);
        file = port_file(f);
        assert_non_null(file);
        assert_non_null(strstr(file, "Hamburg"));
        assert_int_equal(sql_int(f, "SELECT changed FROM sync_runs WHERE id = 2"), 0);
        free(file);
        free(path);
}

static void test_429_honours_retry_after(void **state)
{
        struct fixture *f = *state;
        json_t *a, *b;
        double gap;

        script(f, "{\"get\": [{\"status\": 429, \"retry_after\": \"1\", \"body\": {\"error\": {\"code\": 429, "
                  "\"message\": \"Quota exceeded\", \"status\": \"RESOURCE_EXHAUSTED\"}}}]}");
        first_sync(f);
        assert_int_equal(count(f, "get"), 2);
        a = request(f, "GET", 0);
        b = request(f, "GET", 1);
        gap = json_real_value(json_object_get(b, "time")) - json_real_value(json_object_get(a, "time"));
        /* Backoff here is 10-20 ms; only Retry-After explains a wait of a second. */
        assert_true(gap >= 0.95);
        json_decref(a);
        json_decref(b);
        assert_int_equal(sql_int(f, "SELECT ok FROM sync_runs"), 1);
        assert_int_equal(sql_int(f, "SELECT count(*) FROM port_sheet"), 2);
}

static void test_500s_then_success_and_give_up(void **state)
{
        struct fixture *f = *state;
        struct snapshot snap;
        struct sync_status st;

        script(f, "{\"get\": [{\"status\": 500, \"body\": \"oops\", \"content_type\": \"text/plain\"}, "
                  "{\"status\": 502, \"raw\": \"<html>bad gateway</html>\", \"content_type\": \"text/html\"}, "
                  "{\"status\": 503, \"body\": {\"error\": {\"code\": 503, \"message\": \"The service is currently "
                  "unavailable.\", \"status\": \"UNAVAILABLE\"}}}]}");
        first_sync(f);
        assert_int_equal(count(f, "get"), 4);
        assert_int_equal(sql_int(f, "SELECT ok FROM sync_runs"), 1);

        /* Endless 503s: bounded, 1 + 5 requests, then the run fails. */
        snapshot_take(f, &snap);
        script(f, "{\"get\": [{\"status\": 503}, {\"status\": 503}, {\"status\": 503}, {\"status\": 503}, "
                  "{\"status\": 503}, {\"status\": 503}, {\"status\": 503}, {\"status\": 503}]}");
        sync_run_now(f->sync);
        run_until_results(f, 2);
        assert_int_equal(f->oks, 1);
        assert_int_equal(count(f, "get"), 4 + 6);
        assert_non_null(strstr(f->last_error, "gave up after 5 retries"));
        assert_non_null(strstr(f->last_error, "HTTP 503"));
        assert_int_equal(sql_int(f, "SELECT ok = 0 AND http_status = 503 FROM sync_runs WHERE id = 2"), 1);
        snapshot_check(f, &snap);
        sync_get_status(f->sync, &st);
        assert_int_equal(st.failing_runs, 1);
        assert_int_equal(st.last_http_status, 503);
        assert_non_null(strstr(st.last_error, "gave up"));
}

static void test_403_fails_at_once_keeps_data(void **state)
{
        struct fixture *f = *state;
        struct snapshot snap;
        struct sync_status st;
        char *err;

        first_sync(f);
        snapshot_take(f, &snap);
        set_sheet(f, "{\"values\": [[\"port\"], [\"Changed\"]]}");
        script(f, "{\"get\": [{\"status\": 403, \"body\": {\"error\": {\"code\": 403, \"message\": \"The caller "
                  "does not have permission\", \"status\": \"PERMISSION_DENIED\"}}}]}");
        sync_run_now(f->sync);
        run_until_results(f, 2);
        assert_int_equal(f->oks, 1);
        assert_int_equal(count(f, "get"), 2);           /* no retry */
        assert_string_equal(f->last_error,
                            "values.get: HTTP 403: PERMISSION_DENIED: The caller does not have permission");
        err = sql_text(f, "SELECT error FROM sync_runs WHERE id = 2");
        assert_string_equal(err, f->last_error);
        assert_null(strstr(err, "fake-access"));        /* never a token */
        free(err);
        assert_int_equal(sql_int(f, "SELECT http_status FROM sync_runs WHERE id = 2"), 403);
        snapshot_check(f, &snap);

        /* 404 likewise; failing_runs counts in a row, a good run clears it. */
        script(f, "{\"get\": [{\"status\": 404, \"body\": {\"error\": {\"code\": 404, \"message\": "
                  "\"Requested entity was not found.\", \"status\": \"NOT_FOUND\"}}}]}");
        sync_run_now(f->sync);
        run_until_results(f, 3);
        sync_get_status(f->sync, &st);
        assert_int_equal(st.failing_runs, 2);
        assert_non_null(strstr(st.last_error, "NOT_FOUND"));
        sync_run_now(f->sync);
        run_until_results(f, 4);
        sync_get_status(f->sync, &st);
        assert_int_equal(st.failing_runs, 0);
        assert_string_equal(st.last_error, "");
        assert_int_equal(sql_int(f, "SELECT count(*) FROM port_sheet"), 1);
}

static void test_hostile_bodies_keep_data(void **state)
{
        static const char *const answers[] = {
                "{\"status\": 200, \"raw\": \"{\\\"values\\\": [[\\\"a\\\"], [\\\"b\\\"\"}",   /* truncated */
                "{\"status\": 200, \"raw\": \"not json at all\"}",
                "{\"status\": 200, \"raw\": \"<html>login</html>\", \"content_type\": \"text/html\"}",
                "{\"status\": 200, \"body\": {\"values\": {\"a\": 1}}}",
                "{\"status\": 200, \"body\": {\"values\": [[\"a\"], [{\"x\": 1}]]}}",
                "{\"status\": 200, \"body\": {\"values\": [[], [\"no header\"]]}}",
                "{\"status\": 200, \"body\": [1, 2]}",
                "{\"status\": 200, \"raw\": \"{}\", \"content_type\": \"\"}",
        };
        static const char *const expect[] = {
                "not JSON", "not JSON", "content type text/html", "\"values\" is not an array",
                "is an object", "header row", "not a JSON object", "content type",
        };
        struct fixture *f = *state;
        struct snapshot snap;
        int gets;

        first_sync(f);
        snapshot_take(f, &snap);
        gets = count(f, "get");
        for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
                char *s = xasprintf("{\"get\": [%s]}", answers[i]);

                script(f, s);
                free(s);
                sync_run_now(f->sync);
                run_until_results(f, 2 + (int)i);
                assert_int_equal(f->oks, 1);
                if (!strstr(f->last_error, expect[i]))
                        fail_msg("answer %zu: error \"%s\" lacks \"%s\"", i, f->last_error, expect[i]);
                assert_int_equal(count(f, "get"), gets + 1 + (int)i);     /* none retried */
        }
        snapshot_check(f, &snap);
        assert_int_equal(sql_int(f, "SELECT count(*) FROM sync_runs WHERE NOT ok"), 8);
}

/* A 401 drops the access token, refreshes once and repeats the request
 * once; a second 401 with the fresh token fails the run with Google's
 * message and leaves the data of the last good run alone. */
static void test_401_refreshes_once_then_fails(void **state)
{
        static const char unauth[] =
                "{\"status\": 401, \"body\": {\"error\": {\"code\": 401, \"message\": \"Request had invalid "
                "authentication credentials.\", \"status\": \"UNAUTHENTICATED\"}}}";
        struct fixture *f = *state;
        struct snapshot snap;
        int gets, tokens;
        char *s;

        first_sync(f);
        snapshot_take(f, &snap);
        gets = count(f, "get");
        tokens = count(f, "token");
        s = xasprintf("{\"get\": [%s, %s]}", unauth, unauth);
        script(f, s);
        free(s);
        sync_run_now(f->sync);
        run_until_results(f, 2);
        assert_int_equal(f->oks, 1);
        if (!strstr(f->last_error, "UNAUTHENTICATED: Request had invalid authentication credentials.") ||
            !strstr(f->last_error, "refused again with a fresh access token"))
                fail_msg("error \"%s\"", f->last_error);
        assert_int_equal(count(f, "get"), gets + 2);
        assert_int_equal(count(f, "token"), tokens + 1);
        snapshot_check(f, &snap);

        /* One 401, then a good answer: the run succeeds with the new token. */
        script(f, "{\"get\": [{\"status\": 401, \"body\": {}}]}");
        sync_run_now(f->sync);
        run_until_results(f, 3);
        assert_int_equal(f->oks, 2);
        assert_int_equal(count(f, "get"), gets + 4);
        assert_int_equal(count(f, "token"), tokens + 2);
}

static void test_body_over_cap_keeps_data(void **state)
{
        struct fixture *f = *state;
        struct snapshot snap;
        size_t n = 2 * 1024 * 1024;
        char *big = xmalloc(n + 64), *s;

        first_sync(f);
        snapshot_take(f, &snap);
        memset(big, 'x', n);
        big[n] = '\0';
        s = xasprintf("{\"get\": [{\"status\": 200, \"raw\": \"%s\"}]}", big);
        script(f, s);
        free(s);
        free(big);
        sync_run_now(f->sync);
        run_until_results(f, 2);
        assert_int_equal(f->oks, 1);
        assert_non_null(strstr(f->last_error, "larger than"));
        assert_int_equal(count(f, "get"), 2);
        snapshot_check(f, &snap);
}

struct ticker {
        unsigned ticks;
};

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct ticker *t = userdata;

        t->ticks++;
        return sd_event_source_set_time(s, usec + 20 * USEC_PER_MSEC);
}

static void test_hang_never_blocks_loop(void **state)
{
        struct fixture *f = *state;
        struct ticker t = { 0 };
        sd_event_source *timer = NULL;
        unsigned before;

        /* Two hangs (each cut by the 500 ms request timeout), then an answer. */
        script(f, "{\"get\": [{\"hang\": 20}, {\"hang\": 20}]}");
        assert_true(sd_event_add_time(f->event, &timer, CLOCK_MONOTONIC, now_monotonic_usec(), 0, on_tick, &t) >= 0);
        assert_true(sd_event_source_set_enabled(timer, SD_EVENT_ON) >= 0);
        start(f);
        /* While the first request hangs, the loop keeps serving the ticker. */
        while (count(f, "get") < 1)
                run_for(f, 20 * USEC_PER_MSEC);
        before = t.ticks;
        run_for(f, 200 * USEC_PER_MSEC);
        assert_true(t.ticks >= before + 3);
        {
                struct sync_status st;

                sync_get_status(f->sync, &st);
                assert_true(st.running);
        }
        run_until_results(f, 1);
        assert_int_equal(f->oks, 1);
        assert_int_equal(count(f, "get"), 3);
        assert_int_equal(sql_int(f, "SELECT count(*) FROM port_sheet"), 2);
        sd_event_source_disable_unref(timer);
}

static void test_push(void **state)
{
        struct fixture *f = *state;
        json_t *req, *body, *values, *row;
        int64_t id1, id2, added = now_seconds() - 60;
        char updated[32];

        load_config(f, "progress_range = Progress!A1\n");
        /* Added a minute ago; the formatting itself is test_sheets.c's. */
        assert_int_equal(queue_add(f->db, &(struct queue_new){ .title = "First task", .prompt = "do it", .priority = 0, .run_after = 0 }, added, &id1), 0);
        assert_int_equal(queue_add(f->db, &(struct queue_new){ .title = NULL, .prompt = "Second \xc3\xa4\nmore", .priority = 0, .run_after = 0 }, added + 1, &id2), 0);
        first_sync(f);
        assert_int_equal(count(f, "put"), 1);
        req = request(f, "PUT", 0);
        assert_string_equal(json_string_value(json_object_get(req, "path")),
                            "/v4/spreadsheets/SHEET-1/values/Progress!A1");
        assert_string_equal(json_string_value(json_object_get(req, "query")), "valueInputOption=RAW");
        assert_string_equal(json_string_value(json_object_get(req, "auth")), "Bearer fake-access-1");
        body = json_object_get(req, "body");
        assert_string_equal(json_string_value(json_object_get(body, "range")), "Progress!A1");
        assert_string_equal(json_string_value(json_object_get(body, "majorDimension")), "ROWS");
        values = json_object_get(body, "values");
        assert_int_equal(json_array_size(values), 3);
        row = json_array_get(values, 0);
        assert_string_equal(json_string_value(json_array_get(row, 0)), "id");
        assert_string_equal(json_string_value(json_array_get(row, 1)), "title");
        assert_string_equal(json_string_value(json_array_get(row, 2)), "state");
        assert_string_equal(json_string_value(json_array_get(row, 3)), "sessions");
        assert_string_equal(json_string_value(json_array_get(row, 4)), "turns");
        assert_string_equal(json_string_value(json_array_get(row, 5)), "cost");
        assert_string_equal(json_string_value(json_array_get(row, 6)), "updated");
        row = json_array_get(values, 1);
        assert_int_equal(json_integer_value(json_array_get(row, 0)), id1);
        assert_string_equal(json_string_value(json_array_get(row, 1)), "First task");
        assert_string_equal(json_string_value(json_array_get(row, 2)), "queued");
        assert_string_equal(json_string_value(json_array_get(row, 6)),
                            format_utc(updated, sizeof updated, (uint64_t)added * USEC_PER_SEC));
        row = json_array_get(values, 2);
        assert_int_equal(json_integer_value(json_array_get(row, 0)), id2);
        assert_string_equal(json_string_value(json_array_get(row, 1)), "Second \xc3\xa4");
        json_decref(req);

        /* A task gone: the next push blanks its old row. A failed push fails the run. */
        assert_int_equal(store_exec(f->db, "DELETE FROM task_events; DELETE FROM tasks WHERE id = 2"), 0);
        script(f, "{\"put\": [{\"status\": 400, \"body\": {\"error\": {\"code\": 400, \"message\": \"Unable to "
                  "parse range: Progress!A1\", \"status\": \"INVALID_ARGUMENT\"}}}]}");
        sync_run_now(f->sync);
        run_until_results(f, 2);
        assert_int_equal(f->oks, 1);
        assert_non_null(strstr(f->last_error, "values.update: HTTP 400: INVALID_ARGUMENT: Unable to parse range"));
        sync_run_now(f->sync);
        run_until_results(f, 3);
        assert_int_equal(f->oks, 2);
        req = request(f, "PUT", 2);
        values = json_object_get(json_object_get(req, "body"), "values");
        assert_int_equal(json_array_size(values), 3);
        assert_string_equal(json_string_value(json_array_get(json_array_get(values, 2), 0)), "");
        json_decref(req);
        assert_int_equal(count(f, "token"), 1);
}

static void test_token_unavailable(void **state)
{
        struct fixture *f = *state;
        struct sync_status st;

        script(f, "{\"token\": [{\"status\": 400, \"body\": {\"error\": \"invalid_grant\", "
                  "\"error_description\": \"Token has been expired or revoked.\"}}]}");
        start(f);
        run_until_results(f, 1);
        assert_int_equal(f->oks, 0);
        assert_non_null(strstr(f->last_error, "invalid_grant"));
        assert_non_null(strstr(f->last_error, "Token has been expired or revoked."));
        assert_int_equal(count(f, "get"), 0);
        assert_null(port_file(f));
        assert_int_equal(sql_int(f, "SELECT count(*) FROM sync_runs WHERE NOT ok AND error LIKE '%invalid_grant%'"), 1);
        /* Asking again does not hammer the token endpoint: oauth waits for re-authorization. */
        sync_run_now(f->sync);
        run_until_results(f, 2);
        assert_int_equal(count(f, "token"), 1);
        sync_get_status(f->sync, &st);
        assert_int_equal(st.failing_runs, 2);
}

static void test_disabled(void **state)
{
        struct fixture *f = *state;
        struct sync_status st;

        load_config(f, "");
        f->config->sheets.enabled = false;
        start(f);
        sync_get_status(f->sync, &st);
        assert_false(st.enabled);
        assert_int_equal(st.next_at, 0);
        sync_run_now(f->sync);
        run_for(f, 200 * USEC_PER_MSEC);
        assert_int_equal(f->results, 0);
        assert_int_equal(count(f, "get") + count(f, "token"), 0);
        assert_int_equal(sql_int(f, "SELECT count(*) FROM sync_runs"), 0);

        /* A reload that enables it starts at once (no good sync yet). */
        load_config(f, "");
        sync_set_config(f->sync, f->config);
        run_until_results(f, 1);
        assert_int_equal(f->oks, 1);
}

static void test_recent_sync_waits(void **state)
{
        struct fixture *f = *state;
        struct sync_status st;
        char *sql = xasprintf("INSERT INTO sync_runs (started_at, ended_at, ok) VALUES (%lld, %lld, 1)",
                              (long long)(now_realtime_usec() / USEC_PER_SEC) - 600,
                              (long long)(now_realtime_usec() / USEC_PER_SEC) - 590);
        int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);

        assert_int_equal(store_exec(f->db, sql), 0);
        free(sql);
        start(f);
        sync_get_status(f->sync, &st);
        /* Due an hour after the last good sync, ten minutes ago: in about 50 min. */
        assert_true(st.next_at >= now + 2900 && st.next_at <= now + 3100);
        run_for(f, 200 * USEC_PER_MSEC);
        assert_int_equal(f->results, 0);
        assert_int_equal(count(f, "get"), 0);
        /* An old one: at once. */
        sync_free(f->sync);
        f->sync = NULL;
        oauth_free(f->oauth);
        f->oauth = NULL;
        assert_int_equal(store_exec(f->db, "UPDATE sync_runs SET ended_at = ended_at - 7200"), 0);
        start(f);
        run_until_results(f, 1);
        assert_int_equal(f->oks, 1);
}

static void test_free_mid_run(void **state)
{
        struct fixture *f = *state;

        /* Freed while waiting on a hanging request and while waiting for
         * the token: nothing leaks, no callback after free (ASan checks). */
        script(f, "{\"get\": [{\"hang\": 5}]}");
        start(f);
        while (count(f, "get") < 1)
                run_for(f, 20 * USEC_PER_MSEC);
        f->sync = sync_free(f->sync);
        assert_int_equal(sql_int(f, "SELECT count(*) FROM sync_runs WHERE ended_at IS NULL"), 1);
        assert_int_equal(sync_new(f->event, f->db, f->http, f->oauth, f->config, &f->sync), 0);
        sync_run_now(f->sync);   /* token wait starts inside; freed before the loop runs */
        f->sync = sync_free(f->sync);
        run_for(f, 100 * USEC_PER_MSEC);
        assert_int_equal(f->results, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_first_unchanged_changed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_file_deleted_is_rewritten, setup, teardown),
                cmocka_unit_test_setup_teardown(test_429_honours_retry_after, setup, teardown),
                cmocka_unit_test_setup_teardown(test_500s_then_success_and_give_up, setup, teardown),
                cmocka_unit_test_setup_teardown(test_403_fails_at_once_keeps_data, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_bodies_keep_data, setup, teardown),
cmocka_unit_test_setup_teardown(test_401_refreshes_once_then_fails, setup, teardown),
                cmocka_unit_test_setup_teardown(test_body_over_cap_keeps_data, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hang_never_blocks_loop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_push, setup, teardown),
                cmocka_unit_test_setup_teardown(test_token_unavailable, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
                cmocka_unit_test_setup_teardown(test_recent_sync_waits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_mid_run, setup, teardown),
        };

        return cmocka_run_group_tests(tests, server_start, server_stop);
}
