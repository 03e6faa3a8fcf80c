/* SPDX-License-Identifier: MIT */
/*
 * The daemon's Google token: one access token, refreshed through the http
 * module when less than 5 minutes remain, and a state that says loudly and
 * once when a person must re-authorize.
 *
 * Backoff of the token endpoint (transient errors only): 30 s, 1, 2, 4 ...
 * minutes, at most 30 min, plus up to 10% jitter, never less than
 * Retry-After. The token endpoint is not the Sheets API: a short outage
 * (one 500) recovers within 30 s, which the sync's own retries of a run
 * reach, while an endpoint that keeps failing for 4 hours sees about a
 * dozen requests, not one per sync attempt. Permanent errors make exactly
 * one request: nothing is sent again until the token file or the
 * credentials change.
 */
#include "jada/oauth.h"
#include "jada/http.h"
#include "jada/log.h"
#include "jada/oauth-jwt.h"
#include "jada/oauth-token.h"
#include "jada/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define REFRESH_MARGIN_SEC 300          /* DESIGN.md §4: refresh when less than 5 min remain */
#define REQUEST_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define BACKOFF_BASE_USEC (30 * USEC_PER_SEC)
#define BACKOFF_MAX_USEC (30 * 60 * USEC_PER_SEC)
/* Journal catalog id of "the Google refresh token is dead: run jada-agent auth google". */
#define JWT_BEARER_GRANT "urn:ietf:params:oauth:grant-type:jwt-bearer"

struct waiter {
        oauth_token_fn done;
        void *userdata;
        struct waiter *next;
};

struct oauth {
        sd_event *event;
        struct http_client *http;

        enum sheets_auth auth;
        char *token_url;
        char *client_id;
        char *client_secret_file;
        char *token_path;

        /* What the credentials and token were made from, to tell a change. */
        char *client_secret;                    /* auth = oauth */
        struct oauth_service_account *account;  /* auth = service_account */
        struct oauth_file_id account_id;
        struct oauth_token token;               /* refresh token only with auth = oauth */
        struct oauth_file_id token_id;

        enum oauth_state state;
        char *last_error;
        unsigned failures;                      /* transient failures in a row */
        uint64_t retry_at;                      /* CLOCK_MONOTONIC usec; no request before */

        struct http_request *request;
        sd_event_source *deliver;
        struct waiter *waiters, *delivering;

        oauth_state_fn state_fn;
        void *state_userdata;

        uint64_t backoff_base_usec, backoff_max_usec, request_timeout_usec;
};

static const char *const state_names[] = {
        [OAUTH_OK] = "ok",
        [OAUTH_NO_TOKEN] = "no_token",
        [OAUTH_NEEDS_REAUTH] = "needs_reauth",
        [OAUTH_BACKOFF] = "backoff",
        [OAUTH_BAD_CREDENTIALS] = "bad_credentials",
};

const char *oauth_state_name(enum oauth_state state)
{
        return (unsigned)state < sizeof state_names / sizeof state_names[0] ? state_names[state] : "unknown";
}

enum oauth_state oauth_get_state(const struct oauth *o)
{
        return o->state;
}

const char *oauth_last_error(const struct oauth *o)
{
        return o->last_error;
}

void oauth_set_state_callback(struct oauth *o, oauth_state_fn fn, void *userdata)
{
        o->state_fn = fn;
        o->state_userdata = userdata;
}

void oauth_set_timing(struct oauth *o, uint64_t backoff_base_usec, uint64_t backoff_max_usec,
                      uint64_t request_timeout_usec)
{
        o->backoff_base_usec = backoff_base_usec ? backoff_base_usec : BACKOFF_BASE_USEC;
        o->backoff_max_usec = backoff_max_usec ? backoff_max_usec : BACKOFF_MAX_USEC;
        o->request_timeout_usec = request_timeout_usec ? request_timeout_usec : REQUEST_TIMEOUT_USEC;
}

static void set_state(struct oauth *o, enum oauth_state state)
{
        enum oauth_state old = o->state;

        if (old == state)
                return;
        o->state = state;
        log_debug("google oauth: %s -> %s", oauth_state_name(old), oauth_state_name(state));
        if (o->state_fn)
                o->state_fn(o, old, state, o->state_userdata);
}

static void set_error(struct oauth *o, char *message)
{
        free(o->last_error);
        o->last_error = message;
}

static bool token_fresh(const struct oauth *o)
{
        return o->token.access_token && o->token.expires_at - now_seconds() >= REFRESH_MARGIN_SEC;
}

static void secret_free(char *s)
{
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

/* Reads the secret or key. Returns the state it allows (OK, or BAD_CREDENTIALS
 * with last_error set); logs the reason when it changed. */
static enum oauth_state load_credentials(struct oauth *o)
{
        _cleanup_free_ char *reason = NULL, *path = NULL;

        secret_free(o->client_secret);
        o->client_secret = NULL;
        o->account = oauth_service_account_free(o->account);
        memset(&o->account_id, 0, sizeof o->account_id);

        if (o->auth == SHEETS_AUTH_OAUTH) {
                if (!*o->client_id)
                        reason = xstrdup("[sheets] client_id is not set");
                else if (oauth_client_secret_load(o->client_secret_file, &o->client_secret, &reason) == 0)
                        return OAUTH_OK;
        } else {
                path = oauth_service_account_path();
                if (!path)
                        reason = xstrdup("no service-account key: give the credential google-service-account.json "
                                         "(LoadCredential= in the unit), or $GOOGLE_SERVICE_ACCOUNT_FILE for development");
                else if (oauth_service_account_load(path, &o->account, &reason) == 0) {
                        oauth_file_id_get(path, &o->account_id);
                        return OAUTH_OK;
                } else
                        oauth_file_id_get(path, &o->account_id);
        }
        log_error("google oauth: %s", reason);
        set_error(o, reason);
        reason = NULL;
        return OAUTH_BAD_CREDENTIALS;
}

/* Reads the token file (auth = oauth). Returns OK or NO_TOKEN. */
static enum oauth_state load_token(struct oauth *o)
{
        _cleanup_free_ char *reason = NULL;
        int r;

        oauth_token_clear(&o->token);
        r = oauth_token_load(o->token_path, false, &o->token, &reason, &o->token_id);
        if (r == -ENOENT) {
                oauth_file_id_get(o->token_path, &o->token_id);
                log_warning("google oauth: no token yet (%s): run 'jada-agent auth google'", o->token_path);
                set_error(o, xasprintf("not authorized yet: run 'jada-agent auth google'"));
                return OAUTH_NO_TOKEN;
        }
        if (r < 0) {
                oauth_file_id_get(o->token_path, &o->token_id);
                log_error("google oauth: %s; run 'jada-agent auth google' to write a new one", reason);
                set_error(o, reason);
                reason = NULL;
                return OAUTH_NO_TOKEN;
        }
        if (o->token.needs_reauth) {
                /* Refused before this process started: the same file would be refused again. */
                log_error("google oauth: the refresh token in %s was refused (%s); run 'jada-agent auth google'",
                          o->token_path, o->token.last_error ? o->token.last_error : "no reason on file");
                set_error(o, xstrdup(o->token.last_error ? o->token.last_error : "the refresh token was refused"));
                return OAUTH_NEEDS_REAUTH;
        }
        return OAUTH_OK;
}

/* Everything from scratch: options, credentials, token; the backoff forgotten. */
static enum oauth_state setup(struct oauth *o, const struct oauth_options *options)
{
        enum oauth_state state;

        free(o->token_url);
        free(o->client_id);
        free(o->client_secret_file);
        free(o->token_path);
        o->auth = options->auth;
        o->token_url = xstrdup(options->token_url ? options->token_url : "");
        o->client_id = xstrdup(options->client_id ? options->client_id : "");
        o->client_secret_file = xstrdup(options->client_secret_file ? options->client_secret_file : "");
        o->token_path = xasprintf("%s/%s", options->state_dir, OAUTH_TOKEN_FILE);
        o->failures = 0;
        o->retry_at = 0;
        set_error(o, NULL);
        oauth_token_clear(&o->token);
        memset(&o->token_id, 0, sizeof o->token_id);

        state = load_credentials(o);
        if (state == OAUTH_OK && o->auth == SHEETS_AUTH_OAUTH)
                state = load_token(o);
        return state;
}

static int on_deliver(sd_event_source *s, void *userdata);

int oauth_new(sd_event *event, struct http_client *http, const struct oauth_options *options,
              struct oauth **ret)
{
        struct oauth *o;
        int r;

        if (!event || !http || !options || !options->state_dir || !ret)
                return -EINVAL;
        o = xcalloc(1, sizeof *o);
        o->event = sd_event_ref(event);
        o->http = http;
        oauth_set_timing(o, 0, 0, 0);
        r = sd_event_add_defer(event, &o->deliver, on_deliver, o);
        if (r < 0) {
                sd_event_unref(o->event);
                free(o);
                return r;
        }
        sd_event_source_set_enabled(o->deliver, SD_EVENT_OFF);
        (void)sd_event_source_set_description(o->deliver, "oauth-deliver");
        o->state = setup(o, options);
        *ret = o;
        return 0;
}

static void waiters_free(struct waiter *w)
{
        while (w) {
                struct waiter *next = w->next;
                free(w);
                w = next;
        }
}

struct oauth *oauth_free(struct oauth *o)
{
        if (!o)
                return NULL;
        if (o->request)
                http_request_cancel(o->request);
        sd_event_source_disable_unref(o->deliver);
        sd_event_unref(o->event);
        waiters_free(o->waiters);
        waiters_free(o->delivering);
        free(o->token_url);
        free(o->client_id);
        free(o->client_secret_file);
        free(o->token_path);
        secret_free(o->client_secret);
        oauth_service_account_free(o->account);
        oauth_token_clear(&o->token);
        free(o->last_error);
        free(o);
        return NULL;
}

/* Writes the token file, unless someone (`auth google`) replaced it since
 * we read it: their new token must not be overwritten with our old one. */
static void save_token(struct oauth *o)
{
        struct oauth_file_id now;
        int r;

        if (o->auth != SHEETS_AUTH_OAUTH)
                return;
        oauth_file_id_get(o->token_path, &now);
        if (!oauth_file_id_equal(&now, &o->token_id)) {
                log_info("google oauth: %s changed on disk; not overwriting it", o->token_path);
                return;
        }
        r = oauth_token_save(o->token_path, &o->token, &o->token_id);
        if (r < 0)
                log_warning_errno(r, "google oauth: cannot write %s (the token is kept in memory)", o->token_path);
}

static void schedule_delivery(struct oauth *o)
{
        if (o->waiters)
                sd_event_source_set_enabled(o->deliver, SD_EVENT_ONESHOT);
}

static void apply_token(struct oauth *o, struct oauth_answer *a)
{
        int64_t now = now_seconds();

        free(o->token.access_token);
        o->token.access_token = a->access_token;
        a->access_token = NULL;
        o->token.expires_at = now + a->expires_in;
        o->token.refreshed_at = now;
        if (a->refresh_token) {
                secret_free(o->token.refresh_token);
                o->token.refresh_token = a->refresh_token;
                a->refresh_token = NULL;
                o->token.obtained_at = now;
        }
        if (a->scope) {
                free(o->token.scope);
                o->token.scope = xstrdup(a->scope);
        }
        if (a->token_type) {
                free(o->token.token_type);
                o->token.token_type = xstrdup(a->token_type);
        }
        o->token.last_error = mfree(o->token.last_error);
        o->token.last_error_at = 0;
        o->token.needs_reauth = false;
        o->failures = 0;
        o->retry_at = 0;
        set_error(o, NULL);
        save_token(o);
        log_debug("google oauth: access token refreshed, valid for %llds", (long long)a->expires_in);
        set_state(o, OAUTH_OK);
}

static void record_failure(struct oauth *o, const char *message)
{
        o->token.last_error = mfree(o->token.last_error);
        o->token.last_error = xstrdup(message);
        o->token.last_error_at = now_seconds();
        save_token(o);
        set_error(o, xstrdup(message));
}

static void fail_permanently(struct oauth *o, long status, const char *message)
{
        char status_field[48];

        snprintf(status_field, sizeof status_field, "JADA_HTTP_STATUS=%ld", status);
        o->token.access_token = mfree(o->token.access_token);
        o->token.needs_reauth = true;
        record_failure(o, message);
        if (o->auth == SHEETS_AUTH_OAUTH)
                log_fields(LOG_ERR, JADA_FIELDS(status_field),
                           "google oauth: the refresh token was refused: %s. "
                           "No further refresh until it is renewed: run 'jada-agent auth google'", message);
        else
                log_fields(LOG_ERR, JADA_FIELDS(status_field),
                           "google oauth: the service account was refused: %s. "
                           "No further request until its key is replaced and the daemon reloaded", message);
        set_state(o, OAUTH_NEEDS_REAUTH);
}

static void fail_transiently(struct oauth *o, long status, const char *message, uint64_t retry_after_usec)
{
        uint64_t delay;

        o->failures++;
        delay = http_backoff_delay(&(struct http_backoff){ .base_usec = o->backoff_base_usec,
                                                           .max_usec = o->backoff_max_usec, .jitter_percent = 10 },
                                   o->failures, retry_after_usec, (unsigned)(now_monotonic_usec() % 1000));
        o->retry_at = now_monotonic_usec() + delay;
        record_failure(o, message);
        log_warning("google oauth: token refresh failed (%u in a row): %s; next try in %llus at the earliest",
                    o->failures, message, (unsigned long long)((delay + USEC_PER_SEC - 1) / USEC_PER_SEC));
        set_state(o, OAUTH_BACKOFF);
}

static void on_refresh_done(struct http_request *req, const struct http_response *resp, void *userdata)
{
        struct oauth *o = userdata;
        struct oauth_answer a;

        o->request = NULL;
        oauth_parse_token_response(resp->status, resp->content_type, resp->body, resp->body_len,
                                   resp->body_truncated, resp->error, &a);
        switch (a.kind) {
        case OAUTH_ANSWER_TOKEN:
                apply_token(o, &a);
                break;
        case OAUTH_ANSWER_PERMANENT:
                fail_permanently(o, resp->status, a.message);
                break;
        case OAUTH_ANSWER_TRANSIENT:
                fail_transiently(o, resp->status, a.message, resp->retry_after_usec);
                break;
        }
        if (a.access_token)
                explicit_bzero(a.access_token, strlen(a.access_token));
        if (a.refresh_token)
                explicit_bzero(a.refresh_token, strlen(a.refresh_token));
        oauth_answer_clear(&a);
        schedule_delivery(o);
}

static int refresh_start(struct oauth *o)
{
        static const char *const headers[] = { "Content-Type: application/x-www-form-urlencoded",
                                               "Accept: application/json", NULL };
        _cleanup_free_ char *assertion = NULL;
        char *form;
        int r;

        if (o->auth == SHEETS_AUTH_OAUTH) {
                form = oauth_form_encode((const char *const[]){
                        "client_id", o->client_id, "client_secret", o->client_secret,
                        "refresh_token", o->token.refresh_token, "grant_type", "refresh_token", NULL });
        } else {
                r = oauth_jwt_assertion(o->account, OAUTH_SHEETS_SCOPE, o->token_url, now_seconds(), &assertion);
                if (r < 0)
                        return r;
                form = oauth_form_encode((const char *const[]){
                        "grant_type", JWT_BEARER_GRANT, "assertion", assertion, NULL });
        }
        r = http_request_start(o->http, &(struct http_options){
                                       .method = "POST",
                                       .url = o->token_url,
                                       .headers = headers,
                                       .body = form,
                                       .body_len = strlen(form),
                                       .timeout_usec = o->request_timeout_usec,
                                       .max_body = OAUTH_MAX_ANSWER,
                               }, on_refresh_done, o, &o->request);
        secret_free(form);
        return r;
}

/* In NO_TOKEN or NEEDS_REAUTH: has the token file been replaced (by `auth
 * google`, say) without a reload reaching us? A stat, no request. */
static void notice_new_token_file(struct oauth *o)
{
        struct oauth_file_id now;
        enum oauth_state state;

        if (o->auth != SHEETS_AUTH_OAUTH || (o->state != OAUTH_NO_TOKEN && o->state != OAUTH_NEEDS_REAUTH))
                return;
        oauth_file_id_get(o->token_path, &now);
        if (oauth_file_id_equal(&now, &o->token_id))
                return;
        log_info("google oauth: %s was replaced; reading it", o->token_path);
        o->failures = 0;
        o->retry_at = 0;
        state = load_token(o);
        if (state == OAUTH_OK)
                set_error(o, NULL);
        set_state(o, state);
}

/* Starts a refresh if one is needed and allowed, else arranges that the
 * waiters hear the answer from the loop. */
static void kick(struct oauth *o)
{
        int r;

        if (!o->waiters || o->request)
                return;
        notice_new_token_file(o);
        if (!token_fresh(o) &&
            (o->state == OAUTH_OK || (o->state == OAUTH_BACKOFF && now_monotonic_usec() >= o->retry_at))) {
                r = refresh_start(o);
                if (r >= 0)
                        return;
                _cleanup_free_ char *message = xasprintf("cannot start the token request: %s", strerror(-r));
                fail_transiently(o, 0, message, 0);
        }
        schedule_delivery(o);
}

static int on_deliver(sd_event_source *s, void *userdata)
{
        struct oauth *o = userdata;
        _cleanup_free_ char *token = NULL;

        if (o->request)
                return 0; /* its answer delivers */
        /* A token Google gave with less than the margin is still the best there is. */
        if (o->state == OAUTH_OK && o->token.access_token && o->token.expires_at > now_seconds())
                token = xstrdup(o->token.access_token);
        /* The callbacks may ask again or cancel others: take the list first. */
        o->delivering = o->waiters;
        o->waiters = NULL;
        while (o->delivering) {
                struct waiter *w = o->delivering;
                o->delivering = w->next;
                w->done(o, token, w->userdata);
                free(w);
        }
        if (token)
                explicit_bzero(token, strlen(token));
        return 0;
}

int oauth_get_token(struct oauth *o, oauth_token_fn done, void *userdata)
{
        struct waiter *w, **tail;

        if (!done)
                return -EINVAL;
        w = xcalloc(1, sizeof *w);
        w->done = done;
        w->userdata = userdata;
        for (tail = &o->waiters; *tail; tail = &(*tail)->next)
                ;
        *tail = w;
        kick(o);
        return 0;
}

static void cancel_in(struct waiter **list, oauth_token_fn done, void *userdata)
{
        while (*list) {
                struct waiter *w = *list;
                if (w->done == done && w->userdata == userdata) {
                        *list = w->next;
                        free(w);
                } else
                        list = &w->next;
        }
}

void oauth_cancel(struct oauth *o, oauth_token_fn done, void *userdata)
{
        cancel_in(&o->waiters, done, userdata);
        cancel_in(&o->delivering, done, userdata);
}

void oauth_invalidate(struct oauth *o, const char *access_token)
{
        if (!o->token.access_token || (access_token && strcmp(access_token, o->token.access_token) != 0))
                return;
        secret_free(o->token.access_token);
        o->token.access_token = NULL;
        o->token.expires_at = 0;
        log_info("google oauth: the access token was refused by the API; dropped, refreshing");
        save_token(o);
}

static bool same_string(const char *a, const char *b)
{
        return strcmp(a ? a : "", b ? b : "") == 0;
}

void oauth_reload(struct oauth *o, const struct oauth_options *options)
{
        _cleanup_free_ char *secret = NULL, *reason = NULL, *account_path = NULL;
        struct oauth_file_id token_id, account_id = { 0 };
        bool changed;

        /* What would a full re-read see? Compare before throwing anything away. */
        oauth_file_id_get(o->token_path, &token_id);
        changed = options->auth != o->auth || !same_string(options->token_url, o->token_url) ||
                  !same_string(options->client_id, o->client_id) ||
                  !same_string(options->client_secret_file, o->client_secret_file) ||
                  !oauth_file_id_equal(&token_id, &o->token_id);
        if (!changed && o->auth == SHEETS_AUTH_OAUTH) {
                int r = oauth_client_secret_load(o->client_secret_file, &secret, &reason);
                changed = (r == 0) != (o->client_secret != NULL) ||
                          (r == 0 && strcmp(secret, o->client_secret) != 0);
                secret_free(secret);
                secret = NULL;
        } else if (!changed) {
                account_path = oauth_service_account_path();
                if (account_path)
                        oauth_file_id_get(account_path, &account_id);
                changed = !oauth_file_id_equal(&account_id, &o->account_id);
        }
        {
                /* state_dir too: a reload may move it. */
                _cleanup_free_ char *path = xasprintf("%s/%s", options->state_dir, OAUTH_TOKEN_FILE);
                changed = changed || strcmp(path, o->token_path) != 0;
        }
        if (!changed) {
                log_debug("google oauth: reload: token file and credentials unchanged (%s)", oauth_state_name(o->state));
                return;
        }
        log_info("google oauth: reload: re-reading the token file and credentials");
        if (o->request) {
                http_request_cancel(o->request);
                o->request = NULL;
        }
        set_state(o, setup(o, options));
        kick(o);
}
