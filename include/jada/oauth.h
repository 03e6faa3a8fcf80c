/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "jada/config.h"

/*
 * Google OAuth for the port-sheet sync (DESIGN.md §4, "Google").
 *
 * auth = oauth: client_id from the config, the client secret from the
 * credential google-client-secret (or [sheets] client_secret_file in
 * development); the refresh token, access token and expiry in
 * STATE/google-token.json (0600, replaced atomically). The access token is
 * refreshed when less than 5 minutes remain; a refresh answer without a
 * refresh_token keeps the old one.
 *
 * auth = service_account: the key from the credential
 * google-service-account.json; a JWT bearer grant signed RS256 (OpenSSL).
 *
 * Token-endpoint errors are classified by the body's "error":
 * invalid_grant, invalid_client, unauthorized_client are permanent
 * (OAUTH_NEEDS_REAUTH: no further refresh until the token file changes or
 * oauth_reload()); 408, 429, 5xx, server_error, temporarily_unavailable
 * and network errors are transient (OAUTH_BACKOFF). "error" and
 * "error_description" are always logged; a token never is.
 */

#define OAUTH_TOKEN_FILE "google-token.json"
#define OAUTH_SHEETS_SCOPE "https://www.googleapis.com/auth/spreadsheets"

struct http_client;
struct oauth;

enum oauth_state {
        OAUTH_OK,               /* a token is at hand or can be refreshed */
        OAUTH_NO_TOKEN,         /* never authorized: run `jada-agent auth google` */
        OAUTH_NEEDS_REAUTH,     /* the refresh token is dead (invalid_grant, ...) */
        OAUTH_BACKOFF,          /* a transient failure; the next try waits */
        OAUTH_BAD_CREDENTIALS,  /* secret or key missing or unusable (not the token) */
};

struct oauth_options {
        enum sheets_auth auth;
        const char *token_url;
        const char *client_id;
        const char *client_secret_file; /* "" unless configured */
        const char *state_dir;
};

typedef void (*oauth_token_fn)(struct oauth *oauth, const char *access_token, void *userdata);
typedef void (*oauth_state_fn)(struct oauth *oauth, enum oauth_state old_state, enum oauth_state new_state,
                               void *userdata);

int oauth_new(sd_event *event, struct http_client *http, const struct oauth_options *options,
              struct oauth **ret);
struct oauth *oauth_free(struct oauth *oauth);

/* Calls done from the loop, never from inside this call: with an access
 * token valid for at least 5 more minutes (refreshing first if needed), or
 * with NULL when none can be had now (oauth_get_state() tells why). One
 * refresh is in flight at a time; callers meanwhile wait for it. */
int oauth_get_token(struct oauth *oauth, oauth_token_fn done, void *userdata);
/* Forgets a waiting callback (its owner is going away). */
void oauth_cancel(struct oauth *oauth, oauth_token_fn done, void *userdata);

/* A Google API answered 401 to this access token: it was revoked (or the
 * whole grant was). Forgets it, in memory and in the token file, so that the
 * next oauth_get_token() refreshes; an invalid_grant then takes the usual
 * path to OAUTH_NEEDS_REAUTH at once, not when the cached token would have
 * expired. Google's own client libraries do the same (refresh once on 401,
 * retry once). A token other than the current one (already replaced) is
 * left alone. */
void oauth_invalidate(struct oauth *oauth, const char *access_token);

enum oauth_state oauth_get_state(const struct oauth *oauth);
const char *oauth_state_name(enum oauth_state state);
/* The token endpoint's last error as "error: error_description" (or the
 * transport error), never a token; NULL after a success. */
const char *oauth_last_error(const struct oauth *oauth);
/* Called on every state change, so the daemon can raise and clear health
 * problems exactly once per transition. */
void oauth_set_state_callback(struct oauth *oauth, oauth_state_fn fn, void *userdata);

/* The token file or credentials may have changed (a reload, or `jada-agent
 * auth google` finished): re-read them; a changed token file clears
 * OAUTH_NEEDS_REAUTH. New options (token_url, client_id) take effect. */
void oauth_reload(struct oauth *oauth, const struct oauth_options *options);

/* For tests: a shorter backoff (the first wait, and its ceiling) and
 * request timeout; 0 keeps the default. */
void oauth_set_timing(struct oauth *oauth, uint64_t backoff_base_usec, uint64_t backoff_max_usec,
                      uint64_t request_timeout_usec);
