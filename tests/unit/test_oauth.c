/* SPDX-License-Identifier: MIT */
/*
 * src/oauth*.c: the pure parts (answers, classification, token file, JWT,
 * PKCE), then the refresh state machine in a real sd-event loop against
 * tests/fake/fake_google_oauth.py on 127.0.0.1. Waits are bounded; nothing
 * asserts speed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
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
#include <time.h>
#include <unistd.h>

#include "jada/http.h"
#include "jada/log.h"
#include "jada/oauth-jwt.h"
#include "jada/oauth-token.h"
#include "jada/oauth.h"
#include "jada/util.h"
#include "fake-server.h"

#define MSEC 1000ULL
#define SEC 1000000ULL

static char tmpdir[64];

static void write_text(const char *path, const char *text, mode_t mode)
{
        FILE *f;

        unlink(path);
        f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        assert_int_equal(chmod(path, mode), 0);
}

static char *tmp_path(const char *name)
{
        return xasprintf("%s/%s", tmpdir, name);
}

/* ---------------------------------------------------------------- answers */

static void parse(long status, const char *type, const char *body, struct oauth_answer *a)
{
        oauth_parse_token_response(status, type, body, strlen(body), false, NULL, a);
}

static void test_parse_success(void **state)
{
        struct oauth_answer a;

        parse(200, "application/json; charset=utf-8",
              "{\"access_token\":\"ya29.A\",\"expires_in\":3599,\"scope\":\"s\",\"token_type\":\"Bearer\"}", &a);
        assert_int_equal(a.kind, OAUTH_ANSWER_TOKEN);
        assert_string_equal(a.access_token, "ya29.A");
        assert_int_equal(a.expires_in, 3599);
        assert_null(a.refresh_token);
        assert_string_equal(a.token_type, "Bearer");
        oauth_answer_clear(&a);

        parse(200, "application/json", "{\"access_token\":\"B\",\"expires_in\":10,\"refresh_token\":\"1//r\"}", &a);
        assert_int_equal(a.kind, OAUTH_ANSWER_TOKEN);
        assert_string_equal(a.refresh_token, "1//r");
        oauth_answer_clear(&a);
}

static void test_parse_hostile(void **state)
{
        static const struct {
                long status;
                const char *type, *body, *expect;
        } cases[] = {
                { 200, "application/json", "{\"access_token\":\"x\",", "not JSON" },
                { 200, "application/json", "", "not JSON" },
                { 200, "application/json", "[1,2]", "not an object" },
                { 200, "text/html", "{\"access_token\":\"x\",\"expires_in\":5}", "content type" },
                { 200, NULL, "{\"access_token\":\"x\",\"expires_in\":5}", "content type" },
                { 200, "application/json", "{\"expires_in\":5}", "no access_token" },
                { 200, "application/json", "{\"access_token\":\"\",\"expires_in\":5}", "no access_token" },
                { 200, "application/json", "{\"access_token\":\"x\"}", "expires_in" },
                { 200, "application/json", "{\"access_token\":\"x\",\"expires_in\":\"5\"}", "expires_in" },
                { 200, "application/json", "{\"access_token\":\"x\",\"expires_in\":-1}", "expires_in" },
                { 502, "text/html", "<html>Bad Gateway</html>", "HTTP 502" },
                { 500, "application/json", "{}", "HTTP 500" },
                { 400, "text/plain", "Bad Request", "HTTP 400" },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                struct oauth_answer a;
                parse(cases[i].status, cases[i].type, cases[i].body, &a);
                assert_int_equal(a.kind, OAUTH_ANSWER_TRANSIENT);
                assert_null(a.access_token);
                assert_non_null(a.message);
                if (!strstr(a.message, cases[i].expect))
                        fail_msg("case %zu: '%s' lacks '%s'", i, a.message, cases[i].expect);
                /* The message never quotes the body's token. */
                assert_null(strstr(a.message, "\"x\""));
                oauth_answer_clear(&a);
        }
}

static void test_parse_transport(void **state)
{
        struct oauth_answer a;

        oauth_parse_token_response(0, NULL, "", 0, false, "Connection refused", &a);
        assert_int_equal(a.kind, OAUTH_ANSWER_TRANSIENT);
        assert_non_null(strstr(a.message, "Connection refused"));
        oauth_answer_clear(&a);
        /* A truncated transfer with a good status line is still no answer. */
        oauth_parse_token_response(200, "application/json", "{\"access_token\":\"x\",\"expires_in\":5}", 36, false,
                                   "transfer closed with 100 bytes remaining to read", &a);
        assert_int_equal(a.kind, OAUTH_ANSWER_TRANSIENT);
        oauth_answer_clear(&a);
        oauth_parse_token_response(200, "application/json", "{", 1, true, "response body larger than 65536 bytes", &a);
        assert_int_equal(a.kind, OAUTH_ANSWER_TRANSIENT);
        assert_non_null(strstr(a.message, "larger than"));
        oauth_answer_clear(&a);
}

static void test_classify_table(void **state)
{
        static const struct {
                long status;
                const char *error;
                enum oauth_answer_kind kind;
        } cases[] = {
                { 400, "invalid_grant", OAUTH_ANSWER_PERMANENT },
                { 401, "invalid_client", OAUTH_ANSWER_PERMANENT },
                { 400, "unauthorized_client", OAUTH_ANSWER_PERMANENT },
                { 200, "invalid_grant", OAUTH_ANSWER_PERMANENT },
                { 500, "server_error", OAUTH_ANSWER_TRANSIENT },
                { 503, "temporarily_unavailable", OAUTH_ANSWER_TRANSIENT },
                { 429, NULL, OAUTH_ANSWER_TRANSIENT },
                { 408, NULL, OAUTH_ANSWER_TRANSIENT },
                { 500, NULL, OAUTH_ANSWER_TRANSIENT },
                { 400, "invalid_request", OAUTH_ANSWER_TRANSIENT },
                { 400, "INVALID_GRANT", OAUTH_ANSWER_TRANSIENT },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
                if (oauth_classify_error(cases[i].status, cases[i].error) != cases[i].kind)
                        fail_msg("case %zu (%ld %s)", i, cases[i].status, cases[i].error);
}

static void test_error_body_quoted(void **state)
{
        struct oauth_answer a;
        char body[2048];
        char longtext[600];

        parse(400, "application/json", "{\"error\":\"invalid_grant\",\"error_description\":\"Bad Request\"}", &a);
        assert_int_equal(a.kind, OAUTH_ANSWER_PERMANENT);
        assert_string_equal(a.message, "invalid_grant: Bad Request (HTTP 400)");
        oauth_answer_clear(&a);

        /* Control characters go; long text is cut. */
        memset(longtext, 'a', sizeof longtext - 1);
        longtext[sizeof longtext - 1] = '\0';
        snprintf(body, sizeof body, "{\"error\":\"server_error\\n\\u001b[31m\",\"error_description\":\"%s\"}", longtext);
        parse(500, "application/json", body, &a);
        assert_int_equal(a.kind, OAUTH_ANSWER_TRANSIENT);
        assert_null(strchr(a.message, '\n'));
        assert_null(strchr(a.message, '\x1b'));
        assert_true(strlen(a.message) < 2 * OAUTH_MAX_QUOTE + 40);
        oauth_answer_clear(&a);

        /* Error with a 200 status, and an error of the wrong type. */
        parse(200, "application/json", "{\"error\":\"invalid_client\"}", &a);
        assert_int_equal(a.kind, OAUTH_ANSWER_PERMANENT);
        assert_string_equal(a.message, "invalid_client (HTTP 200)");
        oauth_answer_clear(&a);
        parse(400, "application/json", "{\"error\":{\"code\":400}}", &a);
        assert_int_equal(a.kind, OAUTH_ANSWER_TRANSIENT);
        oauth_answer_clear(&a);
}

static void test_form(void **state)
{
        _cleanup_free_ char *form = oauth_form_encode((const char *const[]){
                "client_id", "1-a.apps.googleusercontent.com", "client_secret", "s e/c+r=t&",
                "grant_type", "refresh_token", NULL });

        assert_string_equal(form, "client_id=1-a.apps.googleusercontent.com&client_secret=s%20e%2Fc%2Br%3Dt%26"
                                  "&grant_type=refresh_token");
}

/* ------------------------------------------------------------- token file */

static void test_token_file_roundtrip(void **state)
{
        _cleanup_free_ char *path = tmp_path("roundtrip.json");
        _cleanup_free_ char *reason = NULL;
        int64_t now = now_seconds();
        struct oauth_token t = { .refresh_token = xstrdup("1//r"), .access_token = xstrdup("ya29.a"),
                                 .expires_at = now + 3599, .obtained_at = now - 86400, .refreshed_at = now - 1,
                                 .scope = xstrdup("s"), .token_type = xstrdup("Bearer") }, u = { 0 };
        struct oauth_file_id id, id2;
        struct stat st;

        assert_int_equal(oauth_token_save(path, &t, &id), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(oauth_token_load(path, false, &u, &reason, &id2), 0);
        assert_true(oauth_file_id_equal(&id, &id2));
        assert_string_equal(u.refresh_token, "1//r");
        assert_string_equal(u.access_token, "ya29.a");
        assert_int_equal(u.expires_at, now + 3599);
        assert_int_equal(u.obtained_at, now - 86400);
        assert_int_equal(u.refreshed_at, now - 1);
        assert_null(u.last_error);
        oauth_token_clear(&u);
        /* A rewrite is a different file. */
        assert_int_equal(oauth_token_save(path, &t, &id2), 0);
        assert_false(oauth_file_id_equal(&id, &id2));
        oauth_token_clear(&t);
        unlink(path);
}

static void expect_refused(const char *path, int expect_r, const char *expect_reason)
{
        _cleanup_free_ char *reason = NULL;
        struct oauth_token t = { 0 };
        int r = oauth_token_load(path, false, &t, &reason, NULL);

        assert_int_equal(r, expect_r);
        assert_non_null(reason);
        if (!strstr(reason, expect_reason))
                fail_msg("'%s' lacks '%s'", reason, expect_reason);
        assert_null(t.refresh_token);
}

static void test_token_file_refused(void **state)
{
        _cleanup_free_ char *path = tmp_path("refused.json"), *link = tmp_path("link.json");
        static const char good[] = "{\"refresh_token\":\"1//r\"}";

        expect_refused(path, -ENOENT, "does not exist");
        write_text(path, good, 0644);
        expect_refused(path, -EPERM, "0644");
        write_text(path, good, 0640);
        expect_refused(path, -EPERM, "0640");
        write_text(path, good, 0600);
        assert_int_equal(symlink(path, link), 0);
        expect_refused(link, -EPERM, "symbolic link");
        unlink(link);
        unlink(path);
        assert_int_equal(mkdir(path, 0700), 0);
        expect_refused(path, -EPERM, "not a regular file");
        rmdir(path);
        assert_int_equal(mkfifo(path, 0600), 0);
        expect_refused(path, -EPERM, "not a regular file");
        unlink(path);

        write_text(path, "{\"refresh_token\":\"1//r\"", 0600);
        expect_refused(path, -EBADMSG, "corrupt");
        write_text(path, "", 0600);
        expect_refused(path, -EBADMSG, "corrupt");
        write_text(path, "\x01\x02garbage", 0600);
        expect_refused(path, -EBADMSG, "corrupt");
        write_text(path, "[]", 0600);
        expect_refused(path, -EBADMSG, "not a JSON object");
        write_text(path, "{\"access_token\":\"a\"}", 0600);
        expect_refused(path, -EBADMSG, "no refresh_token");
        write_text(path, "{\"refresh_token\":7}", 0600);
        expect_refused(path, -EBADMSG, "not a string");
        write_text(path, "{\"refresh_token\":\"r\",\"expires_at\":\"soon\"}", 0600);
        expect_refused(path, -EBADMSG, "expires_at");
        unlink(path);
}

/* -------------------------------------------------------------- JWT, PKCE */

static char *key_path, *pub_path, *account_path;

static char *slurp(const char *path)
{
        char *data;
        size_t size;

        assert_int_equal(read_file_capped(path, 1 << 20, &data, &size), 0);
        return data;
}

static void make_account(void)
{
        _cleanup_free_ char *cmd = NULL, *pem = NULL, *text = NULL;
        json_t *obj;

        key_path = tmp_path("key.pem");
        pub_path = tmp_path("pub.pem");
        account_path = tmp_path("account.json");
        cmd = xasprintf("openssl genrsa -out %s 2048 2>/dev/null && openssl rsa -in %s -pubout -out %s 2>/dev/null",
                        key_path, key_path, pub_path);
        assert_int_equal(system(cmd), 0);
        pem = slurp(key_path);
        obj = json_pack("{s:s, s:s, s:s, s:s}", "type", "service_account", "client_email",
                        "jada@example.iam.gserviceaccount.com", "private_key", pem, "token_uri",
                        "https://oauth2.googleapis.com/token");
        text = json_dumps(obj, 0);
        json_decref(obj);
        write_text(account_path, text, 0600);
}

static unsigned char *base64url_decode(const char *s, size_t len, size_t *ret_len)
{
        unsigned char *out = xmalloc(len * 3 / 4 + 3);
        uint32_t acc = 0;
        int bits = 0;
        size_t n = 0;

        for (size_t i = 0; i < len; i++) {
                const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                const char *p = strchr(alphabet, s[i]);
                assert_true(p && s[i]);
                acc = acc << 6 | (uint32_t)(p - alphabet);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (unsigned char)(acc >> bits);
                }
        }
        *ret_len = n;
        return out;
}

static json_t *decode_part(const char *s, size_t len)
{
        size_t n;
        _cleanup_free_ unsigned char *raw = base64url_decode(s, len, &n);
        json_t *obj = json_loadb((const char *)raw, n, 0, NULL);

        assert_non_null(obj);
        return obj;
}

static void test_jwt_verified_by_openssl(void **state)
{
        _cleanup_free_ char *reason = NULL, *jwt = NULL, *data_path = tmp_path("jwt.data"),
                            *sig_path = tmp_path("jwt.sig"), *cmd = NULL;
        _cleanup_free_ unsigned char *sig = NULL;
        struct oauth_service_account *sa = NULL;
        const char *dot1, *dot2;
        size_t sig_len;
        json_t *header, *claims;
        int64_t now = now_seconds();
        FILE *f;

        assert_int_equal(oauth_service_account_load(account_path, &sa, &reason), 0);
        assert_string_equal(oauth_service_account_email(sa), "jada@example.iam.gserviceaccount.com");
        assert_int_equal(oauth_jwt_assertion(sa, OAUTH_SHEETS_SCOPE, "https://oauth2.googleapis.com/token",
                                             now, &jwt), 0);
        oauth_service_account_free(sa);

        dot1 = strchr(jwt, '.');
        assert_non_null(dot1);
        dot2 = strchr(dot1 + 1, '.');
        assert_non_null(dot2);
        assert_null(strchr(dot2 + 1, '.'));
        assert_null(strchr(jwt, '='));

        header = decode_part(jwt, (size_t)(dot1 - jwt));
        assert_string_equal(json_string_value(json_object_get(header, "alg")), "RS256");
        assert_string_equal(json_string_value(json_object_get(header, "typ")), "JWT");
        json_decref(header);
        claims = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
        assert_string_equal(json_string_value(json_object_get(claims, "iss")), "jada@example.iam.gserviceaccount.com");
        assert_string_equal(json_string_value(json_object_get(claims, "scope")), OAUTH_SHEETS_SCOPE);
        assert_string_equal(json_string_value(json_object_get(claims, "aud")), "https://oauth2.googleapis.com/token");
        assert_int_equal(json_integer_value(json_object_get(claims, "iat")), now);
        assert_int_equal(json_integer_value(json_object_get(claims, "exp")), now + 3600);
        json_decref(claims);

        /* The signature, checked by someone else's code. */
        f = fopen(data_path, "w");
        assert_non_null(f);
        fwrite(jwt, 1, (size_t)(dot2 - jwt), f);
        fclose(f);
        sig = base64url_decode(dot2 + 1, strlen(dot2 + 1), &sig_len);
        assert_int_equal(sig_len, 256);
        f = fopen(sig_path, "w");
        assert_non_null(f);
        fwrite(sig, 1, sig_len, f);
        fclose(f);
        cmd = xasprintf("openssl dgst -sha256 -verify %s -signature %s %s >/dev/null", pub_path, sig_path, data_path);
        assert_int_equal(system(cmd), 0);
        /* And a tampered one fails, so the check above means something. */
        f = fopen(data_path, "a");
        fputc('x', f);
        fclose(f);
        free(cmd);
        cmd = xasprintf("openssl dgst -sha256 -verify %s -signature %s %s >/dev/null 2>&1", pub_path, sig_path, data_path);
        assert_int_not_equal(system(cmd), 0);
        unlink(data_path);
        unlink(sig_path);
}

static void expect_bad_account(const char *json, const char *expect)
{
        _cleanup_free_ char *reason = NULL;
        struct oauth_service_account *sa = NULL;

        assert_int_equal(oauth_service_account_parse(json, strlen(json), &sa, &reason), -EINVAL);
        assert_null(sa);
        if (!strstr(reason, expect))
                fail_msg("'%s' lacks '%s'", reason, expect);
}

static void test_service_account_not_a_key(void **state)
{
        _cleanup_free_ char *ec = tmp_path("ec.pem"), *cmd = NULL, *pem = NULL, *text = NULL;
        json_t *obj;

        expect_bad_account("not json", "not JSON");
        expect_bad_account("[]", "not a JSON object");
        expect_bad_account("{\"private_key\":\"x\"}", "client_email");
        expect_bad_account("{\"client_email\":\"a@b\"}", "no private_key");
        expect_bad_account("{\"client_email\":\"a@b\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n\"}",
                           "not a PEM private key");
        expect_bad_account("{\"client_email\":\"a@b\",\"private_key\":\"hello\"}", "not a PEM private key");
        /* A real key, but not RSA. */
        cmd = xasprintf("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s 2>/dev/null", ec);
        assert_int_equal(system(cmd), 0);
        pem = slurp(ec);
        obj = json_pack("{s:s, s:s}", "client_email", "a@b", "private_key", pem);
        text = json_dumps(obj, 0);
        json_decref(obj);
        expect_bad_account(text, "not an RSA key");
        unlink(ec);
}

static void test_pkce(void **state)
{
        /* As Python's hashlib and base64 compute it. */
        _cleanup_free_ char *c = oauth_pkce_challenge("dBjftJeZ4CVP-mJ92K9qpLHmjQ7cvr8_y3Q1eNbfSD4");
        _cleanup_free_ char *a = NULL, *b = NULL;

        assert_string_equal(c, "UFkwJxo-InXXCjYWdcYgzkW0hZgO7Sn_JvPIzEz_4UI");
        assert_int_equal(oauth_random_string(&a), 0);
        assert_int_equal(oauth_random_string(&b), 0);
        assert_int_equal(strlen(a), 43);
        assert_string_not_equal(a, b);
}

/* ------------------------------------------------------- against the fake */

struct fixture {
        pid_t pid;
        int port;
        char base[64];
        char token_url[96];
        char *token_path;
        sd_event *event;
        struct http_client *http;
        struct oauth *oauth;
        /* What the callbacks saw. */
        int calls;
        int sync_calls;         /* callbacks from inside oauth_get_token: must stay 0 */
        bool in_get;
        char *token;
        int transitions;
        enum oauth_state last_old, last_new;
        int needs_reauth_transitions;
};

static struct fixture F;

static uint64_t mono(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec / 1000;
}

static size_t collect(char *data, size_t size, size_t n, void *userdata)
{
        char **buf = userdata;
        char *next = xasprintf("%s%.*s", *buf, (int)(size * n), data);
        free(*buf);
        *buf = next;
        return size * n;
}

/* The fake's control endpoints, blocking: test code, not the daemon. */
static json_t *fake_call(const char *path, const char *post)
{
        _cleanup_free_ char *url = xasprintf("%s%s", F.base, path);
        char *buf = xstrdup("");
        CURL *c = curl_easy_init();
        json_t *result;

        assert_non_null(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        if (post)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_cleanup(c);
        result = json_loads(buf, 0, NULL);
        free(buf);
        assert_non_null(result);
        return result;
}

static int fake_count(const char *kind)
{
        json_t *stats = fake_call("/_stats", NULL);
        int n = (int)json_integer_value(json_object_get(stats, kind));
        json_decref(stats);
        return n;
}

static void fake_script(const char *answers_json)
{
        json_decref(fake_call("/_script", answers_json));
}

static int group_setup(void **state)
{
        strcpy(tmpdir, "/tmp/test-oauth-XXXXXX");
        if (!mkdtemp(tmpdir))
                return -1;
        log_setup(LOG_TARGET_STDERR, false);
        log_set_max_priority(getenv("TEST_OAUTH_VERBOSE") ? LOG_DEBUG : LOG_CRIT);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        unsetenv("CREDENTIALS_DIRECTORY");
        unsetenv("GOOGLE_SERVICE_ACCOUNT_FILE");
        setenv("GOOGLE_CLIENT_SECRET", "test-secret", 1);
        make_account();

        F.pid = fake_server_start("tests/fake/fake_google_oauth.py", &F.port, 1);
        if (F.pid < 0)
                return -1;
        snprintf(F.base, sizeof F.base, "http://127.0.0.1:%d", F.port);
        snprintf(F.token_url, sizeof F.token_url, "%s/token", F.base);
        F.token_path = xasprintf("%s/%s", tmpdir, OAUTH_TOKEN_FILE);
        return 0;
}

static int group_teardown(void **state)
{
        _cleanup_free_ char *cmd = xasprintf("rm -rf %s", tmpdir);

        fake_server_stop(F.pid);
        free(F.token_path);
        free(key_path);
        free(pub_path);
        free(account_path);
        curl_global_cleanup();
        return system(cmd) == 0 ? 0 : -1;
}

static void on_state(struct oauth *o, enum oauth_state old, enum oauth_state new, void *userdata)
{
        F.transitions++;
        F.last_old = old;
        F.last_new = new;
        if (new == OAUTH_NEEDS_REAUTH)
                F.needs_reauth_transitions++;
}

static void on_token(struct oauth *o, const char *token, void *userdata)
{
        if (F.in_get)
                F.sync_calls++;
        F.calls++;
        free(F.token);
        F.token = token ? xstrdup(token) : NULL;
}

static void write_token(const char *refresh, const char *access, int64_t expires_in, mode_t mode)
{
        _cleanup_free_ char *text = NULL;
        int64_t now = time(NULL);

        if (access)
                text = xasprintf("{\"refresh_token\":\"%s\",\"access_token\":\"%s\",\"expires_at\":%lld,"
                                 "\"obtained_at\":%lld}",
                                 refresh, access, (long long)(now + expires_in), (long long)now - 100);
        else
                text = xasprintf("{\"refresh_token\":\"%s\",\"obtained_at\":%lld}", refresh, (long long)now - 100);
        write_text(F.token_path, text, mode);
}

static void new_oauth(enum sheets_auth auth)
{
        struct oauth_options o = { .auth = auth, .token_url = F.token_url, .client_id = "test-client",
                                   .client_secret_file = "", .state_dir = tmpdir };

        assert_int_equal(oauth_new(F.event, F.http, &o, &F.oauth), 0);
        oauth_set_state_callback(F.oauth, on_state, NULL);
        /* Short waits for the tests; the numbers that matter are unit-tested above. */
        oauth_set_timing(F.oauth, 100 * MSEC, 400 * MSEC, 2 * SEC);
}

static void reload(void)
{
        struct oauth_options o = { .auth = SHEETS_AUTH_OAUTH, .token_url = F.token_url, .client_id = "test-client",
                                   .client_secret_file = "", .state_dir = tmpdir };
        oauth_reload(F.oauth, &o);
}

static int test_setup(void **state)
{
        F.calls = F.sync_calls = F.transitions = F.needs_reauth_transitions = 0;
        F.token = mfree(F.token);
        unlink(F.token_path);
        fake_script("{\"reset\":true}");
        if (sd_event_new(&F.event) < 0 || http_client_new(F.event, &F.http) < 0)
                return -1;
        return 0;
}

static int test_teardown(void **state)
{
        F.oauth = oauth_free(F.oauth);
        F.http = http_client_free(F.http);
        F.event = sd_event_unref(F.event);
        F.token = mfree(F.token);
        return 0;
}

/* Asks for a token and runs the loop until the answer (bounded). */
static const char *get_token(void)
{
        int before = F.calls;
        uint64_t deadline = mono() + 10 * SEC;

        F.in_get = true;
        assert_int_equal(oauth_get_token(F.oauth, on_token, NULL), 0);
        F.in_get = false;
        while (F.calls == before) {
                assert_true(mono() < deadline);
                assert_true(sd_event_run(F.event, 50 * MSEC) >= 0);
        }
        assert_int_equal(F.sync_calls, 0);
        return F.token;
}

static void run_for(uint64_t usec)
{
        uint64_t deadline = mono() + usec;

        while (mono() < deadline)
                assert_true(sd_event_run(F.event, 10 * MSEC) >= 0);
}

static void test_refresh_success(void **state)
{
        _cleanup_free_ char *reason = NULL, *first = NULL;
        struct oauth_token t = { 0 };
        json_t *requests, *form;
        struct stat st;

        write_token("1//refresh-a", NULL, 0, 0600);
        new_oauth(SHEETS_AUTH_OAUTH);
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_OK);
        assert_non_null(get_token());
        assert_true(strncmp(F.token, "ya29.fake-", 10) == 0);
        first = xstrdup(F.token);
        assert_int_equal(fake_count("token_refresh"), 1);
        assert_null(oauth_last_error(F.oauth));

        /* What went over the wire. */
        requests = fake_call("/_requests", NULL);
        form = json_object_get(json_array_get(requests, 0), "form");
        assert_string_equal(json_string_value(json_object_get(form, "grant_type")), "refresh_token");
        assert_string_equal(json_string_value(json_object_get(form, "client_id")), "test-client");
        assert_string_equal(json_string_value(json_object_get(form, "client_secret")), "test-secret");
        assert_string_equal(json_string_value(json_object_get(form, "refresh_token")), "1//refresh-a");
        assert_string_equal(json_string_value(json_object_get(json_array_get(requests, 0), "content_type")),
                            "application/x-www-form-urlencoded");
        json_decref(requests);

        /* Saved: 0600, the old refresh token kept, the new access token. */
        assert_int_equal(stat(F.token_path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(oauth_token_load(F.token_path, false, &t, &reason, NULL), 0);
        assert_string_equal(t.refresh_token, "1//refresh-a");
        assert_string_equal(t.access_token, first);
        assert_true(t.expires_at > time(NULL) + 3000);
        assert_true(t.refreshed_at >= time(NULL) - 5);
        oauth_token_clear(&t);

        /* A fresh token is answered from memory. */
        assert_string_equal(get_token(), first);
        assert_int_equal(fake_count("token"), 1);
}

static void test_valid_token_no_request_then_expiry(void **state)
{
        write_token("1//refresh-b", "ya29.still-good", 3600, 0600);
        new_oauth(SHEETS_AUTH_OAUTH);
        assert_string_equal(get_token(), "ya29.still-good");
        assert_int_equal(fake_count("token"), 0);
        test_teardown(state);
        test_setup(state);

        /* Less than 5 min left: refreshed first. */
        write_token("1//refresh-b", "ya29.expiring", 200, 0600);
        new_oauth(SHEETS_AUTH_OAUTH);
        assert_non_null(get_token());
        assert_string_not_equal(F.token, "ya29.expiring");
        assert_int_equal(fake_count("token_refresh"), 1);
}

static void test_new_refresh_token_replaces_old(void **state)
{
        _cleanup_free_ char *reason = NULL;
        struct oauth_token t = { 0 };

        write_token("1//old", NULL, 0, 0600);
        fake_script("[{\"issue\":{\"refresh_token\":true}}]");
        new_oauth(SHEETS_AUTH_OAUTH);
        assert_non_null(get_token());
        assert_int_equal(oauth_token_load(F.token_path, false, &t, &reason, NULL), 0);
        assert_string_not_equal(t.refresh_token, "1//old");
        assert_true(strncmp(t.refresh_token, "1//fake-refresh-", 16) == 0);
        oauth_token_clear(&t);
}

static void test_invalid_grant_once(void **state)
{
        _cleanup_free_ char *reason = NULL;
        struct oauth_token t = { 0 };

        write_token("1//dead", NULL, 0, 0600);
        fake_script("[{\"status\":400,\"json\":{\"error\":\"invalid_grant\",\"error_description\":\"Token has been expired or revoked.\"}}]");
        new_oauth(SHEETS_AUTH_OAUTH);
        assert_null(get_token());
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_NEEDS_REAUTH);
        assert_int_equal(F.needs_reauth_transitions, 1);
        assert_int_equal(F.transitions, 1);
        assert_string_equal(oauth_last_error(F.oauth), "invalid_grant: Token has been expired or revoked. (HTTP 400)");

        /* No hammering: 100 more asks, still the one request. */
        for (int i = 0; i < 100; i++)
                assert_null(get_token());
        run_for(300 * MSEC);
        assert_int_equal(fake_count("token"), 1);
        assert_int_equal(F.needs_reauth_transitions, 1);
        assert_int_equal(F.transitions, 1);

        /* The failure is on file for `auth status`, the tokens are not lost. */
        assert_int_equal(oauth_token_load(F.token_path, false, &t, &reason, NULL), 0);
        assert_string_equal(t.refresh_token, "1//dead");
        assert_non_null(strstr(t.last_error, "invalid_grant"));
        oauth_token_clear(&t);

        /* A restart does not try the refused token again. */
        F.oauth = oauth_free(F.oauth);
        new_oauth(SHEETS_AUTH_OAUTH);
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_NEEDS_REAUTH);
        assert_non_null(strstr(oauth_last_error(F.oauth), "invalid_grant"));
        assert_null(get_token());
        assert_int_equal(fake_count("token"), 1);

        /* A reload with nothing changed changes nothing. */
        reload();
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_NEEDS_REAUTH);
        assert_null(get_token());
        assert_int_equal(fake_count("token"), 1);

        /* `auth google` wrote a new token: the reload recovers. */
        write_token("1//alive", NULL, 0, 0600);
        reload();
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_OK);
        assert_int_equal(F.last_new, OAUTH_OK);
        assert_non_null(get_token());
        assert_int_equal(fake_count("token"), 2);
        assert_null(oauth_last_error(F.oauth));
}

static void test_invalid_client_and_new_file_without_reload(void **state)
{
        write_token("1//x", NULL, 0, 0600);
        fake_script("[{\"status\":401,\"json\":{\"error\":\"invalid_client\",\"error_description\":\"The OAuth client was not found.\"}}]");
        new_oauth(SHEETS_AUTH_OAUTH);
        assert_null(get_token());
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_NEEDS_REAUTH);
        assert_non_null(strstr(oauth_last_error(F.oauth), "invalid_client: The OAuth client was not found."));
        /* The reload message was lost: a replaced token file is still noticed. */
        write_token("1//y", NULL, 0, 0600);
        assert_non_null(get_token());
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_OK);
        assert_int_equal(fake_count("token"), 2);
}

static void test_server_errors_then_success(void **state)
{
        uint64_t deadline;

        write_token("1//r", NULL, 0, 0600);
        fake_script("[{\"status\":500,\"raw\":\"oops\",\"content_type\":\"text/plain\"},"
                    "{\"status\":503,\"json\":{\"error\":\"temporarily_unavailable\"}},"
                    "{\"status\":500,\"json\":{\"error\":\"server_error\",\"error_description\":\"x\"}}]");
        new_oauth(SHEETS_AUTH_OAUTH);
        assert_null(get_token());
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_BACKOFF);
        assert_non_null(strstr(oauth_last_error(F.oauth), "HTTP 500"));
        /* In backoff: NULL at once, no request. */
        assert_null(get_token());
        assert_int_equal(fake_count("token"), 1);

        deadline = mono() + 10 * SEC;
        while (!get_token()) {
                assert_true(mono() < deadline);
                run_for(50 * MSEC);
        }
        assert_int_equal(fake_count("token"), 4);
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_OK);
        assert_int_equal(F.last_old, OAUTH_BACKOFF);
        assert_int_equal(F.needs_reauth_transitions, 0);
        assert_null(oauth_last_error(F.oauth));
}

static void test_retry_after_honoured(void **state)
{
        uint64_t start, deadline;

        write_token("1//r", NULL, 0, 0600);
        fake_script("[{\"status\":429,\"json\":{\"error\":\"rate_limit_exceeded\"},\"headers\":{\"Retry-After\":\"2\"}}]");
        new_oauth(SHEETS_AUTH_OAUTH);
        start = mono();
        assert_null(get_token());
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_BACKOFF);
        /* The test's backoff is 100 ms; Retry-After says 2 s. */
        run_for(600 * MSEC);
        assert_null(get_token());
        assert_int_equal(fake_count("token"), 1);
        deadline = mono() + 10 * SEC;
        while (!get_token()) {
                assert_true(mono() < deadline);
                run_for(100 * MSEC);
        }
        assert_true(mono() - start >= 1900 * MSEC);
        assert_int_equal(fake_count("token"), 2);
}

static void expect_transient(const char *script, const char *message)
{
        write_token("1//r", NULL, 0, 0600);
        fake_script(script);
        new_oauth(SHEETS_AUTH_OAUTH);
        assert_null(get_token());
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_BACKOFF);
        if (!strstr(oauth_last_error(F.oauth), message))
                fail_msg("'%s' lacks '%s'", oauth_last_error(F.oauth), message);
        F.oauth = oauth_free(F.oauth);
        fake_script("{\"reset\":true}");
}

static void test_hostile_bodies(void **state)
{
        _cleanup_free_ char *huge = NULL, *script = NULL;

        expect_transient("[{\"raw\":\"{\\\"access_token\\\": \\\"ya29\"}]", "not JSON");
        expect_transient("[{\"raw\":\"{\\\"access_token\\\":\\\"a\\\",\\\"expires_in\\\":5}\",\"truncate\":true}]",
                         "incomplete answer");
        expect_transient("[{\"raw\":\"{\\\"access_token\\\":\\\"a\\\",\\\"expires_in\\\":3599}\",\"content_type\":\"text/html\"}]",
                         "content type");
        expect_transient("[{\"raw\":\"<html>hello</html>\",\"content_type\":\"text/html\"}]", "not JSON");
        huge = xmalloc(100 * 1024 + 1);
        memset(huge, 'a', 100 * 1024);
        huge[100 * 1024] = '\0';
        script = xasprintf("[{\"raw\":\"%s\"}]", huge);
        expect_transient(script, "larger than");
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
        int *ticks = userdata;

        (*ticks)++;
        sd_event_source_set_time_relative(s, 20 * MSEC);
        return 0;
}

static void test_hang_times_out_loop_keeps_running(void **state)
{
        sd_event_source *tick = NULL;
        int ticks = 0;

        write_token("1//r", NULL, 0, 0600);
        fake_script("[{\"hang\":30}]");
        new_oauth(SHEETS_AUTH_OAUTH);
        oauth_set_timing(F.oauth, 100 * MSEC, 400 * MSEC, 500 * MSEC);
        assert_int_equal(sd_event_add_time_relative(F.event, &tick, CLOCK_MONOTONIC, 20 * MSEC, 0, on_tick, &ticks), 0);
        sd_event_source_set_enabled(tick, SD_EVENT_ON);
        assert_null(get_token());
        assert_true(ticks >= 5);
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_BACKOFF);
        assert_non_null(strstr(oauth_last_error(F.oauth), "no answer"));
        sd_event_source_disable_unref(tick);
}

static void test_refused_token_file_no_request(void **state)
{
        write_token("1//r", NULL, 0, 0644);
        new_oauth(SHEETS_AUTH_OAUTH);
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_NO_TOKEN);
        assert_non_null(strstr(oauth_last_error(F.oauth), "0644"));
        assert_null(get_token());
        /* chmod alone (same content, new ctime) is noticed. */
        assert_int_equal(chmod(F.token_path, 0600), 0);
        reload();
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_OK);
        assert_non_null(get_token());
        assert_int_equal(fake_count("token"), 1);
        test_teardown(state);
        test_setup(state);

        write_text(F.token_path, "{corrupt", 0600);
        new_oauth(SHEETS_AUTH_OAUTH);
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_NO_TOKEN);
        assert_non_null(strstr(oauth_last_error(F.oauth), "corrupt"));
        assert_null(get_token());
        test_teardown(state);
        test_setup(state);

        new_oauth(SHEETS_AUTH_OAUTH);
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_NO_TOKEN);
        assert_null(get_token());
        assert_int_equal(fake_count("token"), 0);
}

static void test_missing_client_secret(void **state)
{
        write_token("1//r", NULL, 0, 0600);
        unsetenv("GOOGLE_CLIENT_SECRET");
        new_oauth(SHEETS_AUTH_OAUTH);
        setenv("GOOGLE_CLIENT_SECRET", "test-secret", 1);
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_BAD_CREDENTIALS);
        assert_non_null(strstr(oauth_last_error(F.oauth), "google-client-secret"));
        assert_null(get_token());
        assert_int_equal(fake_count("token"), 0);
        /* The secret appears: a reload picks it up. */
        reload();
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_OK);
        assert_non_null(get_token());
}

static void test_service_account_flow(void **state)
{
        _cleanup_free_ char *bad = tmp_path("bad-account.json");
        json_t *requests, *form;

        setenv("GOOGLE_SERVICE_ACCOUNT_FILE", account_path, 1);
        new_oauth(SHEETS_AUTH_SERVICE_ACCOUNT);
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_OK);
        assert_non_null(get_token());
        assert_non_null(get_token());
        assert_int_equal(fake_count("token_jwt"), 1);
        requests = fake_call("/_requests", NULL);
        form = json_object_get(json_array_get(requests, 0), "form");
        assert_string_equal(json_string_value(json_object_get(form, "grant_type")),
                            "urn:ietf:params:oauth:grant-type:jwt-bearer");
        assert_non_null(json_string_value(json_object_get(form, "assertion")));
        assert_null(json_object_get(form, "client_secret"));
        json_decref(requests);
        F.oauth = oauth_free(F.oauth);

        write_text(bad, "{\"client_email\":\"a@b\",\"private_key\":\"not a key\"}", 0600);
        setenv("GOOGLE_SERVICE_ACCOUNT_FILE", bad, 1);
        new_oauth(SHEETS_AUTH_SERVICE_ACCOUNT);
        assert_int_equal(oauth_get_state(F.oauth), OAUTH_BAD_CREDENTIALS);
        assert_non_null(strstr(oauth_last_error(F.oauth), "not a PEM private key"));
        assert_null(get_token());
        unsetenv("GOOGLE_SERVICE_ACCOUNT_FILE");
        unlink(bad);
}

static void on_token_cancel_other(struct oauth *o, const char *token, void *userdata)
{
        on_token(o, token, userdata);
        oauth_cancel(o, on_token, (void *)2);
}

static void test_cancel(void **state)
{
        write_token("1//r", NULL, 0, 0600);
        new_oauth(SHEETS_AUTH_OAUTH);
        /* Cancelled before the answer: never called. */
        assert_int_equal(oauth_get_token(F.oauth, on_token, (void *)1), 0);
        oauth_cancel(F.oauth, on_token, (void *)1);
        /* One waiter cancels another that was to hear the same answer. */
        assert_int_equal(oauth_get_token(F.oauth, on_token_cancel_other, NULL), 0);
        assert_int_equal(oauth_get_token(F.oauth, on_token, (void *)2), 0);
        run_for(1 * SEC);
        assert_int_equal(F.calls, 1);
        assert_non_null(F.token);
        assert_int_equal(fake_count("token"), 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_success),
                cmocka_unit_test(test_parse_hostile),
                cmocka_unit_test(test_parse_transport),
                cmocka_unit_test(test_classify_table),
                cmocka_unit_test(test_error_body_quoted),
                cmocka_unit_test(test_form),
                cmocka_unit_test(test_token_file_roundtrip),
                cmocka_unit_test(test_token_file_refused),
                cmocka_unit_test(test_jwt_verified_by_openssl),
                cmocka_unit_test(test_service_account_not_a_key),
                cmocka_unit_test(test_pkce),
#define T(name) cmocka_unit_test_setup_teardown(name, test_setup, test_teardown)
                T(test_refresh_success),
                T(test_valid_token_no_request_then_expiry),
                T(test_new_refresh_token_replaces_old),
                T(test_invalid_grant_once),
                T(test_invalid_client_and_new_file_without_reload),
                T(test_server_errors_then_success),
                T(test_retry_after_honoured),
                T(test_hostile_bodies),
                T(test_hang_times_out_loop_keeps_running),
                T(test_refused_token_file_no_request),
                T(test_missing_client_secret),
                T(test_service_account_flow),
                T(test_cancel),
#undef T
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
