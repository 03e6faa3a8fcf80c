/* SPDX-License-Identifier: MIT */
/*
 * jada-agent auth google|status: (re-)authorize the port-sheet sync, and
 * tell how its token fares.
 *
 * `auth google` is Google's installed-app flow with PKCE (S256) and a
 * loopback redirect to http://127.0.0.1:PORT/ (DESIGN.md §4): it works on
 * a headless server through `ssh -L`, or by pasting the address the
 * browser was sent to. Nothing is saved before a test refresh and a test
 * read of the sheet worked. This is the command line, so it may wait; the
 * HTTP still goes through the http module, in a loop of its own.
 */
#include "jada/auth-redirect.h"
#include "jada/cli.h"
#include "jada/config.h"
#include "jada/control.h"
#include "jada/http.h"
#include "jada/log.h"
#include "jada/oauth-jwt.h"
#include "jada/oauth-token.h"
#include "jada/oauth.h"
#include "jada/sheets.h"
#include "jada/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GOOGLE_AUTH_URL "https://accounts.google.com/o/oauth2/v2/auth"
#define AUTH_WAIT_SEC (15 * 60)         /* Google's codes live about 10 min */
#define API_MAX_BODY (4 * 1024 * 1024)
#define REFRESH_TOKEN_WARN_SEC (6 * 86400)  /* "Testing" apps lose it at 7 days */

static void auth_help(FILE *f)
{
        fprintf(f, "usage: jada-agent auth google [--no-browser] [--port N]\n"
                   "       jada-agent auth status [--json]\n\n"
                   "  google   authorize the port-sheet sync with a Google account (PKCE, loopback\n"
                   "           redirect on 127.0.0.1:PORT); saves STATE/%s and reloads the daemon\n"
                   "  status   which auth, token age, access-token expiry, last refresh;\n"
                   "           exit 0 when a token is usable, 1 when not\n\n"
                   "$JADA_GOOGLE_AUTH_URL replaces Google's consent page (%s), for tests.\n",
                OAUTH_TOKEN_FILE, GOOGLE_AUTH_URL);
}

static int auth_usage(void)
{
        auth_help(stderr);
        return EXIT_USAGE;
}

/* ------------------------------------------------------------ HTTP, waiting */

struct call {
        bool done;
        long status;
        char *body;
        size_t body_len;
        char *content_type;
        char *error;
        bool truncated;
};

static void call_clear(struct call *c)
{
        if (c->body)
                explicit_bzero(c->body, c->body_len);
        free(c->body);
        free(c->content_type);
        free(c->error);
        memset(c, 0, sizeof *c);
}

static void on_call_done(struct http_request *req, const struct http_response *resp, void *userdata)
{
        struct call *c = userdata;

        c->done = true;
        c->status = resp->status;
        c->body = xmalloc(resp->body_len + 1);
        memcpy(c->body, resp->body, resp->body_len + 1);
        c->body_len = resp->body_len;
        c->content_type = resp->content_type ? xstrdup(resp->content_type) : NULL;
        c->error = resp->error ? xstrdup(resp->error) : NULL;
        c->truncated = resp->body_truncated;
}

/* One request, waited for in the command's own loop. */
static int http_call(const char *method, const char *url, const char *const *headers, const char *body,
                     size_t max_body, struct call *c)
{
        sd_event *event = NULL;
        struct http_client *http = NULL;
        uint64_t deadline = now_monotonic_usec() + 60 * USEC_PER_SEC;
        int r;

        memset(c, 0, sizeof *c);
        r = sd_event_new(&event);
        if (r < 0)
                return r;
        r = http_client_new(event, &http);
        if (r >= 0)
                r = http_request_start(http, &(struct http_options){
                                               .method = method, .url = url, .headers = headers, .body = body,
                                               .body_len = body ? strlen(body) : 0,
                                               .timeout_usec = 30 * USEC_PER_SEC, .max_body = max_body,
                                       }, on_call_done, c, NULL);
        while (r >= 0 && !c->done && now_monotonic_usec() < deadline)
                r = sd_event_run(event, USEC_PER_SEC);
        if (r >= 0 && !c->done)
                r = -ETIMEDOUT;
        http_client_free(http);
        sd_event_unref(event);
        return r < 0 ? r : 0;
}

/* POSTs a form to the token endpoint and reads the answer. */
static int token_call(const char *token_url, const char *const *form_pairs, struct oauth_answer *answer)
{
        static const char *const headers[] = { "Content-Type: application/x-www-form-urlencoded",
                                               "Accept: application/json", NULL };
        char *form = oauth_form_encode(form_pairs);
        struct call c;
        int r = http_call("POST", token_url, headers, form, OAUTH_MAX_ANSWER, &c);

        explicit_bzero(form, strlen(form));
        free(form);
        if (r < 0) {
                memset(answer, 0, sizeof *answer);
                answer->kind = OAUTH_ANSWER_TRANSIENT;
                answer->message = xasprintf("cannot reach %s: %s", token_url, strerror(-r));
                return r;
        }
        oauth_parse_token_response(c.status, c.content_type, c.body, c.body_len, c.truncated, c.error, answer);
        call_clear(&c);
        return 0;
}

static void open_browser(const char *url)
{
        pid_t pid;

        if (!getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY"))
                return;
        pid = fork();
        if (pid == 0) {
                (void)!freopen("/dev/null", "r", stdin);
                (void)!freopen("/dev/null", "w", stdout);
                (void)!freopen("/dev/null", "w", stderr);
                execlp("xdg-open", "xdg-open", url, (char *)NULL);
                _exit(127);
        }
        /* xdg-open returns once the browser has the URL; do not wait for more. */
}

/* ----------------------------------------------------------- the test read */

/* GET {api_url}/v4/spreadsheets/{id}/values/{range}: the token can read the sheet. */
static int test_read(const struct jada_config *config, const char *access_token, size_t *ret_rows, char **ret_error)
{
        _cleanup_free_ char *url = sheets_values_url(config->sheets.api_url, config->sheets.spreadsheet_id,
                                                     config->sheets.range, "majorDimension=ROWS");
        _cleanup_free_ char *auth = xasprintf("Authorization: Bearer %s", access_token);
        const char *headers[] = { auth, "Accept: application/json", NULL };
        struct call c;
        json_t *root = NULL, *values;
        int r;

        if (!url) {
                *ret_error = xstrdup("api_url, spreadsheet_id or range is empty");
                return -EINVAL;
        }
        r = http_call("GET", url, headers, NULL, API_MAX_BODY, &c);
        explicit_bzero(auth, strlen(auth));
        if (r < 0) {
                *ret_error = xasprintf("%s", strerror(-r));
                return r;
        }
        if (c.error) {
                *ret_error = oauth_quote(c.error, OAUTH_MAX_QUOTE);
                call_clear(&c);
                return -EIO;
        }
        if (c.status != 200) {
                /* Google's error, {"error": {"code", "message", "status"}}, as the sync reads it. */
                _cleanup_free_ char *google = sheets_error_message(c.body, c.body_len);
                *ret_error = xasprintf("HTTP %ld: %s", c.status, google ? google : "no message");
                call_clear(&c);
                return -EIO;
        }
        root = json_loadb(c.body, c.body_len, 0, NULL);
        if (!json_is_object(root)) {
                *ret_error = xstrdup("the answer is not a JSON object");
                r = -EBADMSG;
        } else {
                values = json_object_get(root, "values");
                *ret_rows = json_is_array(values) ? json_array_size(values) : 0;
        }
        json_decref(root);
        call_clear(&c);
        return r;
}

/* ---------------------------------------------------------------- google */

/* As root, for a state dir the daemon's user owns: the daemon must read the file. */
static int give_to_state_dir_owner(const char *state_dir, const char *path)
{
        struct stat st;

        if (stat(state_dir, &st) < 0 || st.st_uid == geteuid())
                return 0;
        if (chown(path, st.st_uid, st.st_gid) < 0) {
                int r = -errno;
                fprintf(stderr, "jada-agent: cannot give %s to uid %u, who owns %s: %s\n", path,
                        (unsigned)st.st_uid, state_dir, strerror(-r));
                return r;
        }
        return 0;
}

static void print_ssh_hint(unsigned port)
{
        char host[256] = "SERVER";
        const char *user = getenv("SUDO_USER");
        struct passwd *pw;

        if (!user || !*user) {
                pw = getpwuid(getuid());
                user = pw ? pw->pw_name : "USER";
        }
        if (gethostname(host, sizeof host) < 0)
                strcpy(host, "SERVER");
        host[sizeof host - 1] = '\0';
        printf("On a server without a browser, forward the port from your own computer first:\n\n"
               "  ssh -L %u:127.0.0.1:%u %s@%s\n\n"
               "then open the address there. Or paste here the address the browser was sent to\n"
               "(it starts with http://127.0.0.1:%u/, even if the page does not load):\n",
               port, port, user, host, port);
}

static int check_config(const struct jada_config *config)
{
        if (!config->sheets.enabled) {
                fprintf(stderr, "jada-agent: the port-sheet sync is off in %s: set [sheets] enabled = yes "
                                "(with spreadsheet_id and client_id) first\n", config->path);
                return EXIT_CONFIG;
        }
        if (config->sheets.auth != SHEETS_AUTH_OAUTH) {
                fprintf(stderr, "jada-agent: [sheets] auth = service_account in %s: a service account needs no "
                                "authorization, only its key (the credential google-service-account.json)\n",
                        config->path);
                return EXIT_CONFIG;
        }
        if (!*config->sheets.client_id) {
                fprintf(stderr, "jada-agent: [sheets] client_id is not set in %s\n", config->path);
                return EXIT_CONFIG;
        }
        return 0;
}

/* Exchange, test refresh, test read, save. The code is spent either way. */
static int finish_authorization(const struct jada_config *config, const char *secret, const char *code,
                                const char *verifier, const char *redirect_uri)
{
        const char *token_url = config->sheets.token_url, *client_id = config->sheets.client_id;
        _cleanup_free_ char *path = xasprintf("%s/%s", config->daemon.state_dir, OAUTH_TOKEN_FILE);
        _cleanup_free_ char *read_error = NULL;
        struct oauth_answer grant, refresh;
        struct oauth_token token = { 0 };
        int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);
        size_t rows = 0;
        int r, ret = EXIT_ERROR;

        token_call(token_url, (const char *const[]){ "code", code, "client_id", client_id, "client_secret", secret,
                                                      "redirect_uri", redirect_uri, "grant_type", "authorization_code",
                                                      "code_verifier", verifier, NULL }, &grant);
        if (grant.kind != OAUTH_ANSWER_TOKEN) {
                fprintf(stderr, "jada-agent: Google refused the code: %s\n", grant.message);
                goto out_grant;
        }
        if (!grant.refresh_token) {
                fprintf(stderr, "jada-agent: Google gave no refresh token. Remove the app's access at "
                                "https://myaccount.google.com/permissions and run this again\n");
                goto out_grant;
        }
        token_call(token_url, (const char *const[]){ "client_id", client_id, "client_secret", secret,
                                                      "refresh_token", grant.refresh_token,
                                                      "grant_type", "refresh_token", NULL }, &refresh);
        if (refresh.kind != OAUTH_ANSWER_TOKEN) {
                fprintf(stderr, "jada-agent: the test refresh failed: %s; nothing was saved\n", refresh.message);
                goto out;
        }
        printf("Test refresh: ok.\n");
        r = test_read(config, refresh.access_token, &rows, &read_error);
        if (r < 0) {
                fprintf(stderr, "jada-agent: the token works, but reading %s of spreadsheet %s failed: %s.\n"
                                "Nothing was saved: check spreadsheet_id and range, and that this Google account "
                                "can open the sheet\n", config->sheets.range, config->sheets.spreadsheet_id, read_error);
                goto out;
        }
        printf("Test read of %s: %zu rows.\n", config->sheets.range, rows);

        token.refresh_token = xstrdup(grant.refresh_token);
        token.access_token = xstrdup(refresh.access_token);
        token.expires_at = now + refresh.expires_in;
        token.obtained_at = now;
        token.refreshed_at = now;
        token.scope = grant.scope ? xstrdup(grant.scope) : xstrdup(OAUTH_SHEETS_SCOPE);
        token.token_type = xstrdup(refresh.token_type ? refresh.token_type : "Bearer");
        r = mkdir_p(config->daemon.state_dir, 0700);
        if (r >= 0)
                r = oauth_token_save(path, &token, NULL);
        if (r < 0) {
                fprintf(stderr, "jada-agent: cannot write %s: %s\n", path, strerror(-r));
                goto out;
        }
        if (give_to_state_dir_owner(config->daemon.state_dir, path) < 0)
                goto out;
        printf("Saved the token to %s.\n", path);

        r = control_send(config->daemon.state_dir, CONTROL_RELOAD_AUTH);
        if (r == -ENOENT || r == -ECONNREFUSED)
                printf("The daemon is not running; it will use the token when it starts.\n");
        else if (r < 0)
                fprintf(stderr, "jada-agent: could not tell the daemon (%s): run 'systemctl reload jada-agent'\n",
                        strerror(-r));
        else
                printf("Told the running daemon to use it.\n");
        ret = EXIT_OK;
out:
        oauth_answer_clear(&refresh);
out_grant:
        oauth_answer_clear(&grant);
        oauth_token_clear(&token);
        return ret;
}

static int auth_google(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
                CLI_COMMON_LONG,
                { "no-browser", no_argument, NULL, 'n' },
                { "port", required_argument, NULL, 'p' },
                {}
        };
        _cleanup_free_ char *secret = NULL, *reason = NULL, *verifier = NULL, *challenge = NULL, *state = NULL,
                            *redirect_uri = NULL, *url = NULL;
        const char *auth_base = getenv("JADA_GOOGLE_AUTH_URL");
        struct jada_config *config = NULL;
        struct auth_redirect answer = { 0 };
        bool no_browser = false;
        int64_t port = 0;
        unsigned bound_port = 0;
        int c, r, fd = -1, ret = EXIT_ERROR;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "np:", opts, NULL)) != -1) {
                switch (c) {
                case 'n':
                        no_browser = true;
                        break;
                case 'p':
                        if (parse_int64(optarg, &port) < 0 || port < 1 || port > 65535) {
                                fprintf(stderr, "jada-agent: --port '%s' is not a port number\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                default:
                        if (cli_common_option(cli, c) < 0)
                                return auth_usage();
                }
        }
        if (optind != argc)
                return auth_usage();
        r = cli_load_config(cli, &config);
        if (r != 0)
                return r;
        r = check_config(config);
        if (r != 0) {
                ret = r;
                goto out;
        }
        if (oauth_client_secret_load(config->sheets.client_secret_file, &secret, &reason) < 0) {
                fprintf(stderr, "jada-agent: %s\n", reason);
                goto out;
        }
        fd = auth_redirect_listen((unsigned)port, &bound_port);
        if (fd < 0) {
                fprintf(stderr, "jada-agent: cannot listen on 127.0.0.1:%lld: %s\n", (long long)port, strerror(-fd));
                goto out;
        }
        if (oauth_random_string(&verifier) < 0 || oauth_random_string(&state) < 0) {
                fprintf(stderr, "jada-agent: no random numbers from OpenSSL\n");
                goto out;
        }
        challenge = oauth_pkce_challenge(verifier);
        redirect_uri = xasprintf("http://127.0.0.1:%u/", bound_port);
        {
                _cleanup_free_ char *query = oauth_form_encode((const char *const[]){
                        "client_id", config->sheets.client_id, "redirect_uri", redirect_uri,
                        "response_type", "code", "scope", OAUTH_SHEETS_SCOPE, "code_challenge", challenge,
                        "code_challenge_method", "S256", "state", state, "access_type", "offline",
                        "prompt", "consent", NULL });
                url = xasprintf("%s?%s", auth_base && *auth_base ? auth_base : GOOGLE_AUTH_URL, query);
        }
        printf("Open this address in a browser, sign in with the Google account that can read the\n"
               "port sheet, and allow access:\n\n  %s\n\n", url);
        print_ssh_hint(bound_port);
        fflush(stdout);
        if (!no_browser)
                open_browser(url);

        r = auth_redirect_wait(fd, STDIN_FILENO, AUTH_WAIT_SEC * USEC_PER_SEC, &answer);
        close(fd);
        fd = -1;
        if (r < 0) {
                fprintf(stderr, "jada-agent: no answer from the browser: %s\n", strerror(-r));
                goto out;
        }
        if (answer.error) {
                _cleanup_free_ char *q = oauth_quote(answer.error, OAUTH_MAX_QUOTE);
                fprintf(stderr, "jada-agent: Google did not grant access: %s\n", q);
                goto out;
        }
        if (strcmp(answer.state, state) != 0) {
                fprintf(stderr, "jada-agent: the answer's state does not match this run's: refusing it "
                                "(an address from an earlier attempt, or not from Google); nothing was saved\n");
                goto out;
        }
        printf("Received the authorization; exchanging it.\n");
        fflush(stdout);
        ret = finish_authorization(config, secret, answer.code, verifier, redirect_uri);
out:
        if (fd >= 0)
                close(fd);
        if (secret)
                explicit_bzero(secret, strlen(secret));
        auth_redirect_clear(&answer);
        config_free(config);
        return ret;
}

/* ---------------------------------------------------------------- status */

static json_t *json_time(int64_t t)
{
        char buf[32];
        return t > 0 ? json_string(format_utc(buf, sizeof buf, (uint64_t)t * USEC_PER_SEC)) : json_null();
}

static const char *age(char *buf, size_t size, int64_t seconds)
{
        return duration_format(buf, size, (uint64_t)(seconds < 0 ? -seconds : seconds) / 60 * 60 * USEC_PER_SEC);
}

static int auth_status(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = { CLI_COMMON_LONG, { "json", no_argument, NULL, 'j' }, {} };
        _cleanup_free_ char *path = NULL, *reason = NULL, *account = NULL, *email = NULL;
        struct jada_config *config = NULL;
        struct oauth_token t = { 0 };
        int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);
        json_t *out, *warnings = json_array();
        bool as_json = false, usable = false;
        char b1[64], b2[64];
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "j", opts, NULL)) != -1) {
                if (c == 'j')
                        as_json = true;
                else if (cli_common_option(cli, c) < 0) {
                        json_decref(warnings);
                        return auth_usage();
                }
        }
        if (optind != argc) {
                json_decref(warnings);
                return auth_usage();
        }
        r = cli_load_config(cli, &config);
        if (r != 0) {
                json_decref(warnings);
                return r;
        }
        out = json_pack("{s:s, s:b}", "auth", config->sheets.auth == SHEETS_AUTH_OAUTH ? "oauth" : "service_account",
                        "enabled", config->sheets.enabled);
        if (config->sheets.auth == SHEETS_AUTH_SERVICE_ACCOUNT) {
                struct oauth_service_account *sa = NULL;
                account = oauth_service_account_path();
                if (!account)
                        reason = xstrdup("no service-account key here (the daemon gets it as the credential "
                                         "google-service-account.json, which this command may not see)");
                else if (oauth_service_account_load(account, &sa, &reason) == 0) {
                        usable = true;
                        email = xstrdup(oauth_service_account_email(sa));
                        oauth_service_account_free(sa);
                }
                json_object_set_new(out, "key_file", account ? json_string(account) : json_null());
                json_object_set_new(out, "client_email", email ? json_string(email) : json_null());
        } else {
                path = xasprintf("%s/%s", config->daemon.state_dir, OAUTH_TOKEN_FILE);
                /* root may look at the daemon user's file. */
                r = oauth_token_load(path, geteuid() == 0, &t, &reason, NULL);
                json_object_set_new(out, "token_file", json_string(path));
                if (r == 0 && t.needs_reauth)
                        reason = xasprintf("Google refused the refresh token (%s): run 'jada-agent auth google'",
                                           t.last_error ? t.last_error : "no reason on file");
                else if (r == 0)
                        usable = true;
                else if (r == -ENOENT) {
                        free(reason);
                        reason = xstrdup("not authorized yet: run 'jada-agent auth google'");
                }
                if (r == 0) {
                        json_object_set_new(out, "obtained_at", json_time(t.obtained_at));
                        json_object_set_new(out, "token_age_seconds",
                                            t.obtained_at ? json_integer(now - t.obtained_at) : json_null());
                        json_object_set_new(out, "access_token_expires_at", json_time(t.access_token ? t.expires_at : 0));
                        json_object_set_new(out, "access_token_valid",
                                            json_boolean(t.access_token && t.expires_at > now));
                        json_object_set_new(out, "refreshed_at", json_time(t.refreshed_at));
                        json_object_set_new(out, "last_error", t.last_error ? json_string(t.last_error) : json_null());
                        json_object_set_new(out, "last_error_at", json_time(t.last_error_at));
                        json_object_set_new(out, "needs_reauth", json_boolean(t.needs_reauth));
                        if (t.obtained_at && now - t.obtained_at > REFRESH_TOKEN_WARN_SEC)
                                json_array_append_new(warnings, json_sprintf(
                                        "the refresh token is %lld days old: if the Google Cloud app is in Testing "
                                        "status, Google revokes it at 7 days; run 'jada-agent auth google' now",
                                        (long long)((now - t.obtained_at) / 86400)));
                }
        }
        if (!config->sheets.enabled)
                json_array_append_new(warnings, json_string("the port-sheet sync is off ([sheets] enabled = no)"));
        json_object_set_new(out, "usable", json_boolean(usable));
        json_object_set_new(out, "problem", reason ? json_string(reason) : json_null());
        json_object_set_new(out, "warnings", warnings);

        if (as_json) {
                char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                printf("%s\n", text);
                free(text);
        } else {
                printf("auth:          %s%s\n", json_string_value(json_object_get(out, "auth")),
                       config->sheets.enabled ? "" : " (sync off)");
                if (email)
                        printf("account:       %s\n", email);
                if (path && usable) {
                        printf("token file:    %s\n", path);
                        if (t.obtained_at)
                                printf("authorized:    %s ago\n", age(b1, sizeof b1, now - t.obtained_at));
                        if (t.access_token)
                                printf("access token:  %s %s%s\n", t.expires_at > now ? "expires in" : "expired",
                                       age(b2, sizeof b2, t.expires_at - now), t.expires_at > now ? "" : " ago");
                        if (t.refreshed_at)
                                printf("last refresh:  ok, %s ago\n", age(b1, sizeof b1, now - t.refreshed_at));
                        if (t.last_error)
                                printf("last error:    %s (%s ago)\n", t.last_error, age(b2, sizeof b2, now - t.last_error_at));
                }
                if (reason)
                        printf("problem:       %s\n", reason);
                for (size_t i = 0; i < json_array_size(warnings); i++)
                        printf("warning:       %s\n", json_string_value(json_array_get(warnings, i)));
        }
        json_decref(out);
        oauth_token_clear(&t);
        config_free(config);
        return usable ? EXIT_OK : EXIT_ERROR;
}

int cmd_auth(struct cli *cli, int argc, char **argv)
{
        if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
            strcmp(argv[1], "-h") == 0) {
                auth_help(argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        argc--;
        argv++;
        optind = 0;
        if (strcmp(argv[0], "google") == 0)
                return auth_google(cli, argc, argv);
        if (strcmp(argv[0], "status") == 0)
                return auth_status(cli, argc, argv);
        fprintf(stderr, "jada-agent: unknown auth command '%s'\n\n", argv[0]);
        auth_help(stderr);
        return EXIT_USAGE;
}
