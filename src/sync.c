/* SPDX-License-Identifier: MIT */
#include "jada/sync.h"
#include "jada/store.h"
#include "jada/http.h"
#include "jada/log.h"
#include "jada/oauth.h"
#include "jada/queue.h"
#include "jada/sheets.h"
#include "jada/sync-store.h"
#include "jada/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/*
 * One run is a small state machine driven by the loop:
 *
 *   start ─► oauth_get_token ─► GET values ─► store (if changed) ─► PUT progress ─► finish
 *                                   │  ▲                               │  ▲
 *                                   ▼  │ retry timer (429, 5xx,        ▼  │
 *                                 backoff    timeouts, no connection) backoff
 *
 * Every wait is a source in the loop (the http module's transfers, one
 * retry time source, the oauth callback); nothing here sleeps. The run owns
 * copies of the config strings it needs, so a reload mid-run is harmless.
 * The sync_runs row is inserted when the run starts (ended_at NULL: a run
 * that never finished, e.g. the daemon was killed) and completed at the end.
 */

/* DESIGN.md §4: back off min(2^n + jitter, 64 s) on 429/5xx. */
#define SYNC_RETRY_BASE_USEC    (1000000ULL)
#define SYNC_RETRY_CAP_UNITS    64
#define SYNC_RETRY_JITTER_PERCENT 10
#define SYNC_MAX_RETRIES        5
/* A Retry-After longer than this is not waited out inside a run: the run
 * fails and the next interval tries again. */
#define SYNC_RETRY_AFTER_MAX_USEC (300 * 1000000ULL)
#define SYNC_REQUEST_TIMEOUT_USEC (30 * 1000000ULL)
#define SYNC_FILE_MODE          0640

enum sync_step {
        STEP_TOKEN,
        STEP_GET,
        STEP_PUT,
        STEP_TOKEN_FAILED,              /* oauth had none: the run ends */
};

struct sync_run {
        int64_t row_id;                 /* sync_runs.id; 0 if the insert failed */
        int64_t started_at;             /* UTC seconds */
        enum sync_step step;
        enum sync_step after_token;     /* STEP_GET, or the step a retry repeats */
        char *spreadsheet_id, *range, *progress_range, *api_url, *state_dir;
        char *token;                    /* the bearer token; wiped when freed */
        struct http_request *request;
        sd_event_source *retry_timer;
        unsigned retries;               /* in this run, over all its requests */
        long http_status;               /* the last one seen; 0: none */
        size_t rows;                    /* data rows pulled */
        size_t pushed;                  /* task rows in the push in flight */
        bool changed;
        bool token_renewed;             /* after a 401: refreshed once in this run */
};

struct sync {
        sd_event *event;
        struct store *db;
        struct http_client *http;
        struct oauth *oauth;
        const struct jada_config *config;
        sd_event_source *timer;         /* CLOCK_MONOTONIC, one-shot, re-armed each time */
        struct sync_run *run;
        bool waiting_token;             /* an oauth_get_token callback is pending */
        struct sync_status status;
        sync_result_fn result_fn;
        void *result_userdata;
        sync_gate_fn gate;              /* false: another node of the fleet syncs */
        struct store_job *start_job, *step_job; /* waiting for the store's fiber */
        void *gate_userdata;
        uint64_t retry_base_usec;
        uint64_t request_timeout_usec;
        size_t pushed_rows;             /* data rows of the last good push, to blank on the next */
        unsigned seed;                  /* jitter */
};

static void run_step(struct sync *sync);

static void secret_free(char *s)
{
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

static void run_free(struct sync_run *run)
{
        if (!run)
                return;
        http_request_cancel(run->request);
        sd_event_source_disable_unref(run->retry_timer);
        free(run->spreadsheet_id);
        free(run->range);
        free(run->progress_range);
        free(run->api_url);
        free(run->state_dir);
        secret_free(run->token);
        free(run);
}

/* ---- sync_runs ---- */

static int64_t last_ok_at(struct store *db)
{
        int64_t t;

        (void)sync_store_last_ok_at(db, &t);
        return t;
}

static void run_row_finish(struct sync *sync, struct sync_run *run, int64_t ended_at, bool ok,
                           const char *error)
{
        (void)sync_store_run_finish(sync->db, &(struct sync_store_run_end){
                .row_id = run->row_id, .started_at = run->started_at, .ended_at = ended_at, .ok = ok,
                .changed = run->changed, .rows = run->rows, .http_status = run->http_status, .error = error });
}

/* ---- the timer ---- */

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata);

static uint64_t now_mono(struct sync *sync)
{
        uint64_t t = 0;

        if (sd_event_now(sync->event, CLOCK_MONOTONIC, &t) < 0)
                t = now_monotonic_usec();
        return t;
}

static void timer_arm(struct sync *sync, uint64_t when)
{
        int r;

        if (!sync->timer) {
                r = sd_event_add_time(sync->event, &sync->timer, CLOCK_MONOTONIC, when, 0, on_timer, sync);
                if (r < 0) {
                        log_error_errno(r, "sheets: cannot add the sync timer");
                        return;
                }
                (void)sd_event_source_set_description(sync->timer, "sheets-sync");
        } else
                (void)sd_event_source_set_time(sync->timer, when);
        (void)sd_event_source_set_enabled(sync->timer, SD_EVENT_ONESHOT);
}

/* From the last good sync: due at once if it is older than the interval,
 * else when it falls due (never later than one interval from now, so a
 * clock stepped back cannot postpone it). */
static void timer_schedule_from_db(struct sync *sync)
{
        uint64_t interval = sync->config->sheets.interval, delay = 0;
        int64_t last = last_ok_at(sync->db), now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);

        sync->status.last_ok_at = last;
        if (last > 0 && last <= now && (uint64_t)(now - last) * USEC_PER_SEC < interval)
                delay = interval - (uint64_t)(now - last) * USEC_PER_SEC;
        timer_arm(sync, now_mono(sync) + delay);
}

static void start_run(struct sync *sync);

/* A run writes its sync_runs row: where the store may wait (store_run). */
static void start_run_job(void *userdata)
{
        struct sync *sync = userdata;

        if (!sync->run)
                start_run(sync);
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
        struct sync *sync = userdata;
        uint64_t now = now_mono(sync), next = usec + sync->config->sheets.interval;

        /* Missed slots (a suspended machine) are skipped, not caught up. */
        timer_arm(sync, next > now ? next : now + sync->config->sheets.interval);
        if (sync->run)
                log_debug("sheets: the sync is due but the last one still runs");
        else if (sync->gate && !sync->gate(sync->gate_userdata))
                log_debug("sheets: the sync is due; the fleet's leader runs it");
        else
                store_run_once(sync->db, &sync->start_job, start_run_job, sync);
        return 0;
}

/* ---- a run ---- */

static char *xvasprintf_checked(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *xvasprintf_checked(const char *fmt, va_list ap)
{
        char *s = NULL;

        if (vasprintf(&s, fmt, ap) < 0)
                abort();
        return s;
}

static void finish(struct sync *sync, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finish(struct sync *sync, bool ok, const char *fmt, ...)
{
        struct sync_run *run = sync->run;
        int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);
        _cleanup_free_ char *error = NULL;
        char status_field[64], rows_field[64];
        sync_result_fn fn = sync->result_fn;
        void *userdata = sync->result_userdata;
        va_list ap;

        if (fmt) {
                va_start(ap, fmt);
                error = xvasprintf_checked(fmt, ap);
                va_end(ap);
        }
        run_row_finish(sync, run, now, ok, error);
        snprintf(status_field, sizeof status_field, "JADA_HTTP_STATUS=%ld", run->http_status);
        snprintf(rows_field, sizeof rows_field, "JADA_SYNC_ROWS=%zu", run->rows);
        if (ok)
                log_fields(LOG_INFO, JADA_FIELDS(rows_field, status_field), "sheets: synced %zu rows of %s (%s)",
                           run->rows, run->range, run->changed ? "changed" : "unchanged");
        else
                log_fields(LOG_ERR, JADA_FIELDS(status_field), "sheets: sync of %s failed: %s", run->range,
                           error ? error : "unknown error");

        sync->status.running = false;
        sync->status.last_http_status = run->http_status;
        if (ok) {
                sync->status.failing_runs = 0;
                sync->status.last_ok_at = now;
                sync->status.last_error[0] = '\0';
        } else {
                sync->status.failing_runs++;
                snprintf(sync->status.last_error, sizeof sync->status.last_error, "%s",
                         error ? error : "unknown error");
        }
        sync->run = NULL;
        run_free(run);
        /* Last: the callback may start a run, or free the sync. */
        if (fn)
                fn(sync, ok, ok ? NULL : (error ? error : "unknown error"), userdata);
}


/* The run's next step, which may end it (its row): on the store's fiber. */
static void step_job(void *userdata)
{
        struct sync *sync = userdata;
        const char *why;

        if (!sync->run)
                return;
        if (sync->run->step == STEP_TOKEN_FAILED) {
                why = oauth_last_error(sync->oauth);
                finish(sync, false, "no Google access token (%s)%s%s", oauth_state_name(oauth_get_state(sync->oauth)),
                       why ? ": " : "", why ? why : "");
                return;
        }
        run_step(sync);
}

static int on_retry(sd_event_source *source, uint64_t usec, void *userdata)
{
        struct sync *sync = userdata;

        struct sync_run *run = sync->run;

        run->retry_timer = sd_event_source_disable_unref(run->retry_timer);
        /* Through oauth again: a long wait may have outlived the token. */
        run->after_token = run->step;
        run->step = STEP_TOKEN;
        store_run_once(sync->db, &sync->step_job, step_job, sync);
        return 0;
}

/* A transient failure: wait and repeat the step, or give up. */
static void retry(struct sync *sync, const char *what, uint64_t retry_after_usec)
{
        struct sync_run *run = sync->run;
        uint64_t delay;
        int r;

        if (run->retries >= SYNC_MAX_RETRIES) {
                finish(sync, false, "%s (gave up after %u retries)", what, run->retries);
                return;
        }
        if (retry_after_usec > SYNC_RETRY_AFTER_MAX_USEC) {
                finish(sync, false, "%s (Retry-After %" PRIu64 " s is longer than a run waits)", what,
                       retry_after_usec / USEC_PER_SEC);
                return;
        }
        delay = http_backoff_delay(&(struct http_backoff){ .base_usec = sync->retry_base_usec,
                                                           .max_usec = sync->retry_base_usec * SYNC_RETRY_CAP_UNITS,
                                                           .jitter_percent = SYNC_RETRY_JITTER_PERCENT },
                                   run->retries + 1, retry_after_usec, (unsigned)rand_r(&sync->seed));
        run->retries++;
        log_warning("sheets: %s; retry %u of %u in %" PRIu64 ".%03" PRIu64 " s", what, run->retries,
                    SYNC_MAX_RETRIES, delay / USEC_PER_SEC, delay % USEC_PER_SEC / 1000);
        r = sd_event_add_time(sync->event, &run->retry_timer, CLOCK_MONOTONIC, now_mono(sync) + delay, 0,
                              on_retry, sync);
        if (r < 0)
                finish(sync, false, "%s (cannot schedule a retry: %s)", what, strerror(-r));
}

static void on_token(struct oauth *oauth, const char *access_token, void *userdata)
{
        struct sync *sync = userdata;

        sync->waiting_token = false;
        if (!sync->run)
                return;
        secret_free(sync->run->token);
        sync->run->token = NULL;
        if (access_token) {
                sync->run->token = xstrdup(access_token);
                sync->run->step = sync->run->after_token;
        } else {
                sync->run->step = STEP_TOKEN_FAILED;
        }
        store_run_once(sync->db, &sync->step_job, step_job, sync);
}

static bool content_type_json(const char *ct)
{
        return ct && strncasecmp(ct, "application/json", 16) == 0 && (ct[16] == '\0' || ct[16] == ';' ||
                                                                      ct[16] == ' ');
}

struct port_file {
        const char *path, *json;
};

static int write_port_file(void *userdata)
{
        const struct port_file *f = userdata;

        return write_file_atomic(f->path, f->json, strlen(f->json), SYNC_FILE_MODE);
}

/* Replaces port_sheet and its meta row and writes STATE/port-sheet.json,
 * all or nothing: the file is written inside the transaction, and a failure
 * of either rolls the table back (the file is replaced atomically, so a
 * failed write leaves the old one). Returns 0 or a negative errno, with
 * *what naming the failed part. */
static int store(struct sync *sync, const struct sheets_values *values, const char *hash, bool db_changed,
                 const char **what)
{
        struct sync_run *run = sync->run;
        uint64_t now = now_realtime_usec();
        _cleanup_free_ char *path = xasprintf("%s/%s", run->state_dir, SYNC_PORT_SHEET_FILE);
        _cleanup_free_ char *json = NULL;
        char synced_at[32];
        int r;

        format_utc(synced_at, sizeof synced_at, now);
        json = sheets_port_json(values, run->spreadsheet_id, run->range, synced_at);
        if (!json)
                return *what = "building port-sheet.json", -ENOMEM;
        *what = "writing port-sheet.json";
        if (!db_changed)
                return write_port_file(&(struct port_file){ path, json });
        r = sync_store_replace_port_sheet(sync->db, values, hash, (int64_t)(now / USEC_PER_SEC), write_port_file,
                                          &(struct port_file){ path, json }, what);
        return r;
}

static void got_values(struct sync *sync, const struct http_response *resp)
{
        struct sync_run *run = sync->run;
        struct sheets_values values;
        char error[256], hash[65], old[65];
        _cleanup_free_ char *path = NULL;
        const char *what = NULL;
        bool file_missing;
        int r;

        if (!content_type_json(resp->content_type)) {
                finish(sync, false, "values.get answered with content type %s, not JSON",
                       resp->content_type ? resp->content_type : "(none)");
                return;
        }
        r = sheets_values_parse(resp->body, resp->body_len, &values, error, sizeof error);
        if (r < 0) {
                finish(sync, false, "values.get of %s: %s", run->range, error);
                return;
        }
        if (values.n_renamed > 0)
                log_warning("sheets: %zu column(s) of %s have an empty or repeated name; named column_N or "
                            "NAME_2 in port-sheet.json", values.n_renamed, run->range);
        r = sheets_values_hash(&values, run->spreadsheet_id, run->range, hash);
        if (r < 0) {
                sheets_values_clear(&values);
                finish(sync, false, "hashing the values: %s", strerror(-r));
                return;
        }
        (void)sync_store_port_sheet_hash(sync->db, old);
        path = xasprintf("%s/%s", run->state_dir, SYNC_PORT_SHEET_FILE);
        /* An operator may have deleted the file: write it again, data unchanged. */
        file_missing = access(path, F_OK) < 0;
        run->rows = values.n_rows;
        run->changed = strcmp(hash, old) != 0;
        if (run->changed || file_missing)
                r = store(sync, &values, hash, run->changed, &what);
        sheets_values_clear(&values);
        if (r < 0) {
                run->changed = false;
                finish(sync, false, "storing the port sheet failed at %s: %s", what, strerror(-r));
                return;
        }
        if (*run->progress_range) {
                run->step = STEP_PUT;
                run_step(sync);
        } else
                finish(sync, true, NULL);
}

static void on_http(struct http_request *req, const struct http_response *resp, void *userdata)
{
        struct sync *sync = userdata;
        struct sync_run *run = sync->run;
        const char *op = run->step == STEP_GET ? "values.get" : "values.update";
        _cleanup_free_ char *google = NULL, *what = NULL;

        run->request = NULL;
        if (resp->status > 0)
                run->http_status = resp->status;
        if (resp->body_truncated) {
                finish(sync, false, "%s: the answer is larger than the %zu bytes accepted", op, resp->body_len);
                return;
        }
        if (resp->curl_code != 0) {
                what = xasprintf("%s: %s", op, resp->error ? resp->error : "transfer failed");
                retry(sync, what, 0);
                return;
        }
        if (resp->status == 200) {
                if (run->step == STEP_GET)
                        got_values(sync, resp);
                else {
                        sync->pushed_rows = run->pushed;
                        finish(sync, true, NULL);
                }
                return;
        }
        google = sheets_error_message(resp->body, resp->body_len);
        what = xasprintf("%s: HTTP %ld%s%s", op, resp->status, google ? ": " : "", google ? google : "");
        /* 401: the access token was revoked, or the whole grant with it.
         * Refresh once and repeat the request once (as google-auth does):
         * a dead refresh token then shows as invalid_grant now, not when
         * the cached access token would have expired. */
        if (resp->status == 401 && !run->token_renewed && sync->oauth) {
                run->token_renewed = true;
                log_warning("sheets: %s; refreshing the access token and trying once more", what);
                oauth_invalidate(sync->oauth, run->token);
                run->after_token = run->step;
                run->step = STEP_TOKEN;
                run_step(sync);
                return;
        }
        if (resp->status == 401) {
                finish(sync, false, "%s (refused again with a fresh access token)", what);
                return;
        }
        if (http_status_transient(resp->status))
                retry(sync, what, resp->retry_after_usec);
        else
                finish(sync, false, "%s", what);
}

static void push(struct sync *sync)
{
        struct sync_run *run = sync->run;
        struct queue_task *tasks = NULL;
        size_t n = 0;
        _cleanup_free_ char *url = NULL, *body = NULL, *auth = NULL;
        int r;

        r = queue_list(sync->db, -1, NULL, &tasks, &n);
        if (r < 0) {
                finish(sync, false, "values.update: reading the queue failed: %s", strerror(-r));
                return;
        }
        body = sheets_progress_body(run->progress_range, tasks, n, sync->pushed_rows);
        queue_tasks_free(tasks, n);
        url = sheets_values_url(run->api_url, run->spreadsheet_id, run->progress_range, "valueInputOption=RAW");
        if (!body || !url) {
                finish(sync, false, "values.update: cannot build the request");
                return;
        }
        /* Remembered on success (on_http): the rows to blank next time. */
        run->pushed = n;
        auth = xasprintf("Authorization: Bearer %s", run->token);
        r = http_request_start(sync->http,
                               &(struct http_options){
                                       .method = "PUT",
                                       .url = url,
                                       .headers = (const char *const[]){ auth, "Accept: application/json",
                                                                         "Content-Type: application/json", NULL },
                                       .body = body,
                                       .body_len = strlen(body),
                                       .timeout_usec = sync->request_timeout_usec,
                                       .store = sync->db,
                               },
                               on_http, sync, &run->request);
        explicit_bzero(auth, strlen(auth));
        if (r < 0)
                finish(sync, false, "values.update: cannot start the request: %s", strerror(-r));
}

static void pull(struct sync *sync)
{
        struct sync_run *run = sync->run;
        _cleanup_free_ char *url = NULL, *auth = NULL;
        int r;

        url = sheets_values_url(run->api_url, run->spreadsheet_id, run->range, "majorDimension=ROWS");
        if (!url) {
                finish(sync, false, "values.get: cannot build the URL (api_url, spreadsheet_id, range)");
                return;
        }
        auth = xasprintf("Authorization: Bearer %s", run->token);
        r = http_request_start(sync->http,
                               &(struct http_options){
                                       .url = url,
                                       .headers = (const char *const[]){ auth, "Accept: application/json", NULL },
                                       .timeout_usec = sync->request_timeout_usec,
                                       .store = sync->db,
                               },
                               on_http, sync, &run->request);
        explicit_bzero(auth, strlen(auth));
        if (r < 0)
                finish(sync, false, "values.get: cannot start the request: %s", strerror(-r));
}

static void run_step(struct sync *sync)
{
        int r;

        switch (sync->run->step) {
        case STEP_TOKEN:
                if (!sync->oauth) {
                        finish(sync, false, "no Google authorization configured");
                        return;
                }
                sync->waiting_token = true;
                r = oauth_get_token(sync->oauth, on_token, sync);
                if (r < 0) {
                        sync->waiting_token = false;
                        finish(sync, false, "asking for a Google access token failed: %s", strerror(-r));
                }
                return;
        case STEP_GET:
                pull(sync);
                return;
        case STEP_PUT:
                push(sync);
                return;
        case STEP_TOKEN_FAILED:
                finish(sync, false, "no Google access token");
                return;
        }
}

static void start_run(struct sync *sync)
{
        const struct jada_config *c = sync->config;
        struct sync_run *run;

        if (sync->run || !c->sheets.enabled)
                return;
        run = xcalloc(1, sizeof *run);
        run->started_at = (int64_t)(now_realtime_usec() / USEC_PER_SEC);
        run->step = STEP_TOKEN;
        run->after_token = STEP_GET;
        run->spreadsheet_id = xstrdup(c->sheets.spreadsheet_id);
        run->range = xstrdup(c->sheets.range);
        run->progress_range = xstrdup(c->sheets.progress_range);
        run->api_url = xstrdup(c->sheets.api_url);
        run->state_dir = xstrdup(c->daemon.state_dir);
        sync->run = run;
        sync->status.running = true;
        sync->status.last_run_at = run->started_at;
        (void)sync_store_run_begin(sync->db, run->started_at, &run->row_id);
        log_debug("sheets: sync of %s started", run->range);
        run_step(sync);
}

/* ---- the public face ---- */

int sync_new(sd_event *event, struct store *db, struct http_client *http, struct oauth *oauth,
             const struct jada_config *config, struct sync **ret)
{
        struct sync *sync = xcalloc(1, sizeof *sync);

        sync->event = sd_event_ref(event);
        sync->db = db;
        sync->http = http;
        sync->oauth = oauth;
        sync->retry_base_usec = SYNC_RETRY_BASE_USEC;
        sync->request_timeout_usec = SYNC_REQUEST_TIMEOUT_USEC;
        sync->seed = (unsigned)(now_monotonic_usec() ^ (uint64_t)getpid());
        sync_set_config(sync, config);
        *ret = sync;
        return 0;
}

struct sync *sync_free(struct sync *sync)
{
        if (!sync)
                return NULL;
        if (sync->waiting_token && sync->oauth)
                oauth_cancel(sync->oauth, on_token, sync);
        store_job_cancel(&sync->start_job);
        store_job_cancel(&sync->step_job);
        /* A run in flight keeps its sync_runs row with ended_at NULL. */
        run_free(sync->run);
        sd_event_source_disable_unref(sync->timer);
        sd_event_unref(sync->event);
        free(sync);
        return NULL;
}

void sync_set_config(struct sync *sync, const struct jada_config *config)
{
        sync->config = config;
        sync->status.enabled = config->sheets.enabled;
        if (!config->sheets.enabled) {
                sync->timer = sd_event_source_disable_unref(sync->timer);
                sync->status.last_ok_at = last_ok_at(sync->db);
                return;
        }
        timer_schedule_from_db(sync);
}

void sync_set_timing(struct sync *sync, uint64_t retry_base_usec, uint64_t request_timeout_usec)
{
        if (retry_base_usec > 0)
                sync->retry_base_usec = retry_base_usec;
        if (request_timeout_usec > 0)
                sync->request_timeout_usec = request_timeout_usec;
}

void sync_run_now(struct sync *sync)
{
        if (!sync->config->sheets.enabled) {
                log_notice("sheets: a sync was asked for, but [sheets] enabled = no");
                return;
        }
        if (sync->run) {
                log_info("sheets: a sync was asked for; one is already running");
                return;
        }
        if (sync->gate && !sync->gate(sync->gate_userdata)) {
                log_info("sheets: a sync was asked for; another node leads the fleet and syncs");
                return;
        }
        start_run(sync);
}

void sync_set_gate(struct sync *sync, sync_gate_fn gate, void *userdata)
{
        sync->gate = gate;
        sync->gate_userdata = userdata;
}

void sync_get_status(const struct sync *sync, struct sync_status *ret)
{
        uint64_t when = 0, now_m = 0;
        int enabled = SD_EVENT_OFF;

        *ret = sync->status;
        ret->next_at = 0;
        if (sync->timer && sd_event_source_get_enabled(sync->timer, &enabled) >= 0 && enabled != SD_EVENT_OFF &&
            sd_event_source_get_time(sync->timer, &when) >= 0) {
                now_m = now_monotonic_usec();
                ret->next_at = (int64_t)(now_realtime_usec() / USEC_PER_SEC) +
                               (int64_t)(when > now_m ? (when - now_m) / USEC_PER_SEC : 0);
        }
}

void sync_set_result_callback(struct sync *sync, sync_result_fn fn, void *userdata)
{
        sync->result_fn = fn;
        sync->result_userdata = userdata;
}
