/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The pieces of Google OAuth that need no loop: the token file, the client
 * secret, the token endpoint's answers and their classification, form
 * encoding. Shared by the daemon (src/oauth.c) and `jada-agent auth`
 * (src/cmd-auth.c); pure enough for unit tests and fuzzing.
 */

/* The token endpoint's answers are small; anything bigger is not Google. */
#define OAUTH_MAX_ANSWER (64 * 1024)
/* Messages quote at most this much of the answer's "error"/"error_description". */
#define OAUTH_MAX_QUOTE 200

/* STATE/google-token.json (mode 0600):
 * {"refresh_token", "access_token", "expires_at", "obtained_at",
 *  "refreshed_at", "scope", "token_type", "last_error", "last_error_at",
 *  "needs_reauth"}
 * Times are UTC seconds; "last_error" is the last failed refresh's
 * "error: error_description", never a token; "needs_reauth" is true after
 * a permanent refusal (for `auth status`). */
struct oauth_token {
        char *refresh_token;
        char *access_token;     /* NULL when none yet */
        int64_t expires_at;     /* of the access token; 0 if none */
        int64_t obtained_at;    /* when the refresh token was granted */
        int64_t refreshed_at;   /* the last good refresh; 0 if none */
        char *scope;
        char *token_type;
        char *last_error;       /* NULL after a good refresh */
        int64_t last_error_at;
        bool needs_reauth;
};

void oauth_token_clear(struct oauth_token *token);

/* A file's identity, to tell whether it was replaced. */
struct oauth_file_id {
        bool exists;
        dev_t dev;
        ino_t ino;
        off_t size;
        int64_t mtime_nsec;
        int64_t ctime_nsec;     /* a chmod changes only this */
};

void oauth_file_id_get(const char *path, struct oauth_file_id *ret);
bool oauth_file_id_equal(const struct oauth_file_id *a, const struct oauth_file_id *b);

/* Loads a token file. Refuses one that is not a regular file, is group or
 * world accessible, or (unless any_owner) is not owned by the effective
 * uid: -EPERM; a missing one: -ENOENT; a corrupt one or one without a
 * refresh token: -EBADMSG. On failure *reason says why, for a person. */
int oauth_token_load(const char *path, bool any_owner, struct oauth_token *ret, char **reason,
                     struct oauth_file_id *ret_id);
/* The file's JSON text. */
char *oauth_token_format(const struct oauth_token *token);
/* Writes it atomically with mode 0600. */
int oauth_token_save(const char *path, const struct oauth_token *token, struct oauth_file_id *ret_id);

/* The client secret: $CREDENTIALS_DIRECTORY/google-client-secret, else the
 * file client_secret_file (if not ""), else $GOOGLE_CLIENT_SECRET.
 * Returns 0, or -ENOENT/-EINVAL with *reason set. */
int oauth_client_secret_load(const char *client_secret_file, char **ret, char **reason);
/* The service-account key file: $CREDENTIALS_DIRECTORY/google-service-account.json,
 * else the file named by $GOOGLE_SERVICE_ACCOUNT_FILE. NULL when neither exists. */
char *oauth_service_account_path(void);

enum oauth_answer_kind {
        OAUTH_ANSWER_TOKEN,      /* a usable access token */
        OAUTH_ANSWER_PERMANENT,  /* the grant or client is dead: ask a person */
        OAUTH_ANSWER_TRANSIENT,  /* try again later */
};

/* What a token-endpoint answer means. Strings are owned copies. */
struct oauth_answer {
        enum oauth_answer_kind kind;
        char *access_token;
        char *refresh_token;     /* NULL when the answer has none */
        int64_t expires_in;      /* seconds */
        char *scope;
        char *token_type;
        char *message;           /* errors: "invalid_grant: Bad Request", or what was wrong */
        uint64_t retry_after_usec;
};

void oauth_answer_clear(struct oauth_answer *answer);

/* Classifies an "error" code with the HTTP status (DESIGN.md §4):
 * invalid_grant, invalid_client, unauthorized_client are permanent;
 * everything else is transient. */
enum oauth_answer_kind oauth_classify_error(long status, const char *error);

/* Reads an answer of the token endpoint. transport_error (http's
 * resp->error) set, or status 0, means no complete answer arrived. Never fails: a hostile body is a transient
 * error with a message saying what was wrong. */
void oauth_parse_token_response(long status, const char *content_type, const char *body, size_t len,
                                bool truncated, const char *transport_error, struct oauth_answer *ret);

/* A copy of s cut to max bytes with control characters replaced by '?'. */
char *oauth_quote(const char *s, size_t max);

/* application/x-www-form-urlencoded from NULL-terminated name, value pairs
 * (each percent-encoded by http_escape). */
char *oauth_form_encode(const char *const *pairs);
