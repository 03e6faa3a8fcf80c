/* SPDX-License-Identifier: MIT */
/* Google OAuth without a loop: the token file, secrets, the token endpoint's answers. */
#include "jada/oauth-token.h"
#include "jada/http.h"
#include "jada/util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_FILE_MAX (64 * 1024)
#define SECRET_MAX 4096

void oauth_token_clear(struct oauth_token *t)
{
        free(t->refresh_token);
        free(t->access_token);
        free(t->scope);
        free(t->token_type);
        free(t->last_error);
        memset(t, 0, sizeof *t);
}

static void file_id_from_stat(const struct stat *st, struct oauth_file_id *ret)
{
        ret->exists = true;
        ret->dev = st->st_dev;
        ret->ino = st->st_ino;
        ret->size = st->st_size;
        ret->mtime_nsec = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
        ret->ctime_nsec = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

void oauth_file_id_get(const char *path, struct oauth_file_id *ret)
{
        struct stat st;

        memset(ret, 0, sizeof *ret);
        if (lstat(path, &st) == 0)
                file_id_from_stat(&st, ret);
}

bool oauth_file_id_equal(const struct oauth_file_id *a, const struct oauth_file_id *b)
{
        if (!a->exists || !b->exists)
                return a->exists == b->exists;
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_nsec == b->mtime_nsec &&
               a->ctime_nsec == b->ctime_nsec;
}


/* Optional string member: absent or null is NULL; another type is an error. */
static int get_string(json_t *obj, const char *key, char **ret)
{
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return -EINVAL;
        *ret = xstrdup(json_string_value(v));
        return 0;
}

static int get_time(json_t *obj, const char *key, int64_t *ret)
{
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EINVAL;
        *ret = (int64_t)json_integer_value(v);
        return 0;
}

static int token_from_json(json_t *root, struct oauth_token *t, char **reason)
{
        static const char *const times[] = { "expires_at", "obtained_at", "refreshed_at", "last_error_at" };
        int64_t *time_fields[] = { &t->expires_at, &t->obtained_at, &t->refreshed_at, &t->last_error_at };
        static const char *const strings[] = { "refresh_token", "access_token", "scope", "token_type", "last_error" };
        char **string_fields[] = { &t->refresh_token, &t->access_token, &t->scope, &t->token_type, &t->last_error };

        if (!json_is_object(root)) {
                *reason = xstrdup("it is not a JSON object");
                return -EBADMSG;
        }
        for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
                if (get_string(root, strings[i], string_fields[i]) < 0) {
                        *reason = xasprintf("\"%s\" is not a string", strings[i]);
                        return -EBADMSG;
                }
        for (size_t i = 0; i < sizeof times / sizeof times[0]; i++)
                if (get_time(root, times[i], time_fields[i]) < 0) {
                        *reason = xasprintf("\"%s\" is not a time in seconds", times[i]);
                        return -EBADMSG;
                }
        if (json_is_true(json_object_get(root, "needs_reauth")))
                t->needs_reauth = true;
        if (!t->refresh_token || !*t->refresh_token) {
                *reason = xstrdup("it has no refresh_token");
                return -EBADMSG;
        }
        if (t->access_token && !*t->access_token)
                t->access_token = mfree(t->access_token);
        return 0;
}

int oauth_token_load(const char *path, bool any_owner, struct oauth_token *ret, char **reason,
                     struct oauth_file_id *ret_id)
{
        _cleanup_free_ char *data = NULL;
        struct oauth_token t = { 0 };
        json_error_t error;
        struct stat st;
        size_t size = 0;
        json_t *root;
        int fd, r;

        *reason = NULL;
        /* O_NONBLOCK: a FIFO planted in its place must not hang the loop. */
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                if (r == -ELOOP) {
                        *reason = xasprintf("%s is a symbolic link; refusing it", path);
                        return -EPERM;
                }
                *reason = r == -ENOENT ? xasprintf("%s does not exist", path)
                                       : xasprintf("cannot open %s: %s", path, strerror(-r));
                return r == -ENOENT ? -ENOENT : -EPERM;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                *reason = xasprintf("cannot stat %s: %s", path, strerror(-r));
                return -EPERM;
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                *reason = xasprintf("%s is not a regular file; refusing it", path);
                return -EPERM;
        }
        if ((st.st_mode & 077) != 0) {
                close(fd);
                *reason = xasprintf("%s has mode %04o: others may read the refresh token; refusing it "
                                    "(chmod 600 it, and consider the token leaked)",
                                    path, (unsigned)(st.st_mode & 07777));
                return -EPERM;
        }
        if (!any_owner && st.st_uid != geteuid()) {
                close(fd);
                *reason = xasprintf("%s is owned by uid %u, not by this process's uid %u; refusing it",
                                    path, (unsigned)st.st_uid, (unsigned)geteuid());
                return -EPERM;
        }
        r = read_fd_capped(fd, TOKEN_FILE_MAX, &data, &size);
        close(fd);
        if (r < 0) {
                *reason = r == -EFBIG ? xasprintf("%s is larger than %d bytes: not a token file", path, TOKEN_FILE_MAX)
                                      : xasprintf("cannot read %s: %s", path, strerror(-r));
                return -EBADMSG;
        }
        root = json_loadb(data, size, JSON_REJECT_DUPLICATES, &error);
        if (!root) {
                *reason = xasprintf("%s is corrupt (line %d: %s)", path, error.line, error.text);
                return -EBADMSG;
        }
        r = token_from_json(root, &t, reason);
        json_decref(root);
        if (r < 0) {
                char *why = *reason;
                *reason = xasprintf("%s is not a usable token file: %s", path, why);
                free(why);
                oauth_token_clear(&t);
                return r;
        }
        if (ret_id)
                file_id_from_stat(&st, ret_id);
        *ret = t;
        return 0;
}

static void set_string(json_t *obj, const char *key, const char *value)
{
        if (value)
                json_object_set_new(obj, key, json_string(value));
}

static void set_time(json_t *obj, const char *key, int64_t value)
{
        if (value > 0)
                json_object_set_new(obj, key, json_integer((json_int_t)value));
}

char *oauth_token_format(const struct oauth_token *t)
{
        json_t *root = json_object();
        char *text;

        set_string(root, "refresh_token", t->refresh_token);
        set_string(root, "access_token", t->access_token);
        set_time(root, "expires_at", t->expires_at);
        set_time(root, "obtained_at", t->obtained_at);
        set_time(root, "refreshed_at", t->refreshed_at);
        set_string(root, "scope", t->scope);
        set_string(root, "token_type", t->token_type);
        set_string(root, "last_error", t->last_error);
        set_time(root, "last_error_at", t->last_error_at);
        if (t->needs_reauth)
                json_object_set_new(root, "needs_reauth", json_true());
        text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(root);
        if (!text)
                abort();
        return text;
}

int oauth_token_save(const char *path, const struct oauth_token *t, struct oauth_file_id *ret_id)
{
        _cleanup_free_ char *json = oauth_token_format(t);
        _cleanup_free_ char *text = xasprintf("%s\n", json);
        int r = write_file_atomic(path, text, strlen(text), 0600);

        if (r == 0 && ret_id)
                oauth_file_id_get(path, ret_id);
        return r;
}

/* A secret file: its first line, without the newline; never empty. */
static int read_secret(const char *path, char **ret, char **reason)
{
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r = read_file_capped(path, SECRET_MAX, &data, &size);

        if (r < 0) {
                *reason = r == -EFBIG ? xasprintf("%s is larger than %d bytes: not a client secret", path, SECRET_MAX)
                                      : xasprintf("cannot read %s: %s", path, strerror(-r));
                return r == -ENOENT ? -ENOENT : -EINVAL;
        }
        data[strcspn(data, "\r\n")] = '\0';
        if (strlen(data) != strcspn(data, " \t") || !*data) {
                *reason = xasprintf("%s holds no client secret (empty, or blanks in it)", path);
                return -EINVAL;
        }
        *ret = xstrdup(data);
        return 0;
}

int oauth_client_secret_load(const char *client_secret_file, char **ret, char **reason)
{
        _cleanup_free_ char *path = credential_path("google-client-secret");
        const char *env;

        *reason = NULL;
        if (path)
                return read_secret(path, ret, reason);
        if (client_secret_file && *client_secret_file)
                return read_secret(client_secret_file, ret, reason);
        env = getenv("GOOGLE_CLIENT_SECRET");
        if (env && *env) {
                *ret = xstrdup(env);
                return 0;
        }
        *reason = xstrdup("no client secret: give the credential google-client-secret "
                          "(LoadCredential= in the unit), or [sheets] client_secret_file, "
                          "or $GOOGLE_CLIENT_SECRET for development");
        return -ENOENT;
}

char *oauth_service_account_path(void)
{
        const char *env = getenv("GOOGLE_SERVICE_ACCOUNT_FILE");
        char *path = credential_path("google-service-account.json");

        if (path)
                return path;
        return env && *env ? xstrdup(env) : NULL;
}

void oauth_answer_clear(struct oauth_answer *a)
{
        free(a->access_token);
        free(a->refresh_token);
        free(a->scope);
        free(a->token_type);
        free(a->message);
        memset(a, 0, sizeof *a);
}

enum oauth_answer_kind oauth_classify_error(long status, const char *error)
{
        static const char *const permanent[] = { "invalid_grant", "invalid_client", "unauthorized_client" };

        /* The body decides: Google answers a dead refresh token with 400
         * invalid_grant, a deleted client with 401 invalid_client. */
        for (size_t i = 0; error && i < sizeof permanent / sizeof permanent[0]; i++)
                if (strcmp(error, permanent[i]) == 0)
                        return OAUTH_ANSWER_PERMANENT;
        /* server_error, temporarily_unavailable, 408, 429, 5xx, and the
         * rest: an answer we do not understand is not proof that the grant
         * is dead, so it backs off (slowly, see oauth.c) instead of stopping. */
        return OAUTH_ANSWER_TRANSIENT;
}

char *oauth_quote(const char *s, size_t max)
{
        size_t n = strnlen(s, max);
        char *q = xstrndup(s, n);

        for (size_t i = 0; i < n; i++)
                if ((unsigned char)q[i] < 0x20 || q[i] == 0x7f)
                        q[i] = '?';
        /* Do not end inside a UTF-8 sequence. */
        if (n == max)
                while (n > 0 && ((unsigned char)q[n - 1] & 0xc0) == 0x80)
                        q[--n] = '\0';
        if (n > 0 && n == max && (unsigned char)q[n - 1] >= 0xc0)
                q[--n] = '\0';
        return q;
}

static bool is_json_type(const char *content_type)
{
        return content_type && strncasecmp(content_type, "application/json", 16) == 0 &&
               (content_type[16] == '\0' || content_type[16] == ';' || content_type[16] == ' ');
}

static const char *string_member(json_t *obj, const char *key)
{
        json_t *v = json_object_get(obj, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The error of an error body: "error: error_description", both quoted. */
static void error_answer(long status, json_t *root, struct oauth_answer *ret)
{
        const char *error = string_member(root, "error");
        const char *description = string_member(root, "error_description");
        _cleanup_free_ char *e = oauth_quote(error ? error : "", OAUTH_MAX_QUOTE);
        _cleanup_free_ char *d = description ? oauth_quote(description, OAUTH_MAX_QUOTE) : NULL;

        ret->kind = oauth_classify_error(status, error);
        if (d && *d)
                ret->message = xasprintf("%s: %s (HTTP %ld)", e, d, status);
        else
                ret->message = xasprintf("%s (HTTP %ld)", e, status);
}

void oauth_parse_token_response(long status, const char *content_type, const char *body, size_t len,
                                bool truncated, const char *transport_error, struct oauth_answer *ret)
{
        _cleanup_free_ char *type = oauth_quote(content_type ? content_type : "none", 80);
        json_error_t jerr;
        json_t *root = NULL, *v;
        const char *access;

        memset(ret, 0, sizeof *ret);
        ret->kind = OAUTH_ANSWER_TRANSIENT;
        if (truncated) {
                ret->message = xasprintf("HTTP %ld: the answer is larger than %zu bytes: not the token endpoint",
                                         status, (size_t)OAUTH_MAX_ANSWER);
                return;
        }
        if (status == 0 || transport_error) {
                /* A transfer cut short (timeout, reset, a truncated body)
                 * is no answer, whatever the status line said. */
                _cleanup_free_ char *q = oauth_quote(transport_error ? transport_error : "no answer", OAUTH_MAX_QUOTE);
                ret->message = status ? xasprintf("incomplete answer (HTTP %ld): %s", status, q)
                                      : xasprintf("no answer: %s", q);
                return;
        }
        if (body && len > 0)
                root = json_loadb(body, len, 0, &jerr);
        if (json_is_object(root) && json_is_string(json_object_get(root, "error"))) {
                error_answer(status, root, ret);
                json_decref(root);
                return;
        }
        if (status < 200 || status > 299) {
                /* No OAuth error in it: 5xx, 408, 429 and any other status
                 * without an "error" are transient. */
                ret->message = xasprintf("HTTP %ld without an OAuth error (%s, %zu bytes)", status, type, len);
                json_decref(root);
                return;
        }
        if (!root || !json_is_object(root)) {
                ret->message = root ? xasprintf("HTTP %ld: the answer is JSON but not an object", status)
                                    : xasprintf("HTTP %ld: the answer is not JSON (%s, %zu bytes)", status, type, len);
                json_decref(root);
                return;
        }
        if (!is_json_type(content_type)) {
                ret->message = xasprintf("HTTP %ld: the answer's content type is %s, not application/json", status, type);
                json_decref(root);
                return;
        }
        access = string_member(root, "access_token");
        v = json_object_get(root, "expires_in");
        if (!access || !*access) {
                ret->message = xasprintf("HTTP %ld: the answer has no access_token", status);
        } else if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > 366 * 86400) {
                ret->message = xasprintf("HTTP %ld: the answer has no usable expires_in", status);
        } else {
                const char *refresh = string_member(root, "refresh_token");
                const char *scope = string_member(root, "scope"), *token_type = string_member(root, "token_type");

                ret->kind = OAUTH_ANSWER_TOKEN;
                ret->access_token = xstrdup(access);
                ret->expires_in = (int64_t)json_integer_value(v);
                ret->refresh_token = refresh && *refresh ? xstrdup(refresh) : NULL;
                ret->scope = scope ? oauth_quote(scope, 1024) : NULL;
                ret->token_type = token_type ? oauth_quote(token_type, 64) : NULL;
        }
        json_decref(root);
}

char *oauth_form_encode(const char *const *pairs)
{
        char *out = xstrdup("");

        for (size_t i = 0; pairs[i] && pairs[i + 1]; i += 2) {
                _cleanup_free_ char *name = http_escape(pairs[i]);
                _cleanup_free_ char *value = http_escape(pairs[i + 1]);
                char *next = xasprintf("%s%s%s=%s", out, i ? "&" : "", name, value);
                free(out);
                out = next;
        }
        return out;
}
