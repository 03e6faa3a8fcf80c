/* SPDX-License-Identifier: MIT */
/* Unit tests: config parser, durations, path normalization. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jada/config.h"
#include "jada/util.h"

#define SEC(n) ((uint64_t)(n) * USEC_PER_SEC)

static void test_duration_good(void **state)
{
        static const struct {
                const char *in;
                uint64_t usec;
        } cases[] = {
                { "90s", SEC(90) },          { "30min", SEC(1800) },   { "2h", SEC(7200) },
                { "1d", SEC(86400) },        { "60", SEC(60) },        { "1h 30min", SEC(5400) },
                { "1h30min", SEC(5400) },    { "1.5h", SEC(5400) },    { "500ms", 500000 },
                { "2 hours", SEC(7200) },    { " 7 d ", SEC(7 * 86400) }, { "1w", SEC(7 * 86400) },
                { "0", 0 },                  { "10us", 10 },           { "3m", SEC(180) },
                { "0.5s", 500000 },          { "1min 1s 1ms", SEC(61) + 1000 },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                uint64_t v = 12345;
                int r = duration_parse(cases[i].in, &v);
                if (r != 0 || v != cases[i].usec)
                        fail_msg("'%s': r=%d v=%llu want %llu", cases[i].in, r, (unsigned long long)v,
                                 (unsigned long long)cases[i].usec);
        }
}

static void test_duration_bad(void **state)
{
        static const char *const bad[] = {
                "", " ", "s", "-5s", "5x", "5 sec onds", "1h-30min", "abc", "1..5s", ".s", "5s,",
                "99999999999999999999", "18446744073709551615s", "9999999999999d", "1e3s", "0x10",
                "18446744073709.9", "30500568.999w", /* fractions past UINT64_MAX (fuzzing) */
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                uint64_t v = 777;
                int r = duration_parse(bad[i], &v);
                if (r >= 0)
                        fail_msg("'%s' was accepted as %llu", bad[i], (unsigned long long)v);
                assert_int_equal(v, 777); /* untouched on error */
        }
        assert_int_equal(duration_parse(NULL, &(uint64_t){ 0 }), -EINVAL);
}

static void test_duration_format(void **state)
{
        char buf[32];
        assert_string_equal(duration_format(buf, sizeof buf, 0), "0");
        assert_string_equal(duration_format(buf, sizeof buf, SEC(60)), "1min");
        assert_string_equal(duration_format(buf, sizeof buf, SEC(5400)), "1h30min");
        assert_string_equal(duration_format(buf, sizeof buf, SEC(86400 + 1)), "1d1s");
        assert_string_equal(duration_format(buf, sizeof buf, 1500), "1ms500us");
        /* Round trip. */
        uint64_t v;
        assert_int_equal(duration_parse(duration_format(buf, sizeof buf, SEC(93784)), &v), 0);
        assert_int_equal(v, SEC(93784));
}

static struct jada_config *parse_ok(const char *text)
{
        struct config_problems problems = { 0 };
        struct jada_config *c = NULL;
        int r = config_parse_buffer("/etc/test.conf", text, strlen(text), &c, &problems);
        if (r < 0)
                fail_msg("unexpected problem: line %u: %s", problems.items[0].line, problems.items[0].message);
        config_problems_clear(&problems);
        return c;
}

/* Parses text that must fail; checks the first problem's line and text. */
static void parse_bad(const char *text, unsigned line, const char *substring)
{
        struct config_problems problems = { 0 };
        struct jada_config *c = NULL;
        int r = config_parse_buffer("/etc/test.conf", text, strlen(text), &c, &problems);
        assert_int_equal(r, -EINVAL);
        assert_null(c);
        assert_true(problems.n >= 1);
        if (problems.items[0].line != line || !strstr(problems.items[0].message, substring))
                fail_msg("want line %u '%s', got line %u '%s'", line, substring, problems.items[0].line,
                         problems.items[0].message);
        config_problems_clear(&problems);
}

static void test_projects(void **state)
{
        struct jada_config *c = parse_ok("[daemon]\ndefault_project = web\ngit_timeout = 90s\n"
                                         "[project web]\npath = ../srv/web\nbase = release/2.3\npush = origin\n"
                                         "author = Release Bot <bot@example.org>\non_done = echo \"$JADA_BRANCH\" # done\n"
                                         "[ project   shared ]\npath = /srv/shared\nisolation = none\n");
        const struct project_config *web = config_project(c, "web"), *shared = config_project(c, "shared");

        assert_int_equal(c->n_projects, 2);
        assert_non_null(web);
        assert_non_null(shared);
        assert_null(config_project(c, "nope"));
        assert_null(config_project(c, NULL));
        assert_string_equal(c->daemon.default_project, "web");
        assert_int_equal(c->daemon.git_timeout, SEC(90));
        assert_string_equal(web->path, "/srv/web");     /* against the config's directory, /etc */
        assert_string_equal(web->base, "release/2.3");
        assert_string_equal(web->push, "origin");
        assert_string_equal(web->author_name, "Release Bot");
        assert_string_equal(web->author_email, "bot@example.org");
        assert_string_equal(web->on_done, "echo \"$JADA_BRANCH\"");
        assert_int_equal(web->isolation, PROJECT_WORKTREE);
        assert_int_equal(web->line, 4);
        assert_int_equal(shared->isolation, PROJECT_NONE);
        assert_string_equal(shared->base, "");
        assert_string_equal(shared->author_name, "jada-agent");
        assert_string_equal(shared->author_email, "jada-agent@localhost");
        config_free(c);

        c = parse_ok("[daemon]\n");
        assert_int_equal(c->n_projects, 0);
        assert_string_equal(c->daemon.default_project, "");
        assert_int_equal(c->daemon.git_timeout, SEC(300));
        config_free(c);

        parse_bad("[project]\npath = /x\n", 1, "a project name is 1 to 64");
        parse_bad("[project a/b]\npath = /x\n", 1, "a project name");
        parse_bad("[project aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\npath = /x\n", 1,
                  "a project name");
        parse_bad("[project a]\npath = /x\n[project a]\npath = /y\n", 3, "defined twice (first on line 1)");
        parse_bad("[project a]\npath = /x\npath = /y\n", 3, "duplicate key 'path' in [project a] (first set on line 2)");
        parse_bad("[project a]\npath =\n", 2, "path: must not be empty");
        parse_bad("[project a]\nbase = -x\npath = /x\n", 2, "is not a branch name");
        parse_bad("[project a]\nbase = a..b\npath = /x\n", 2, "is not a branch name");
        parse_bad("[project a]\npush = --mirror\npath = /x\n", 2, "is not a remote name");
        parse_bad("[project a]\nauthor = <x@y>\npath = /x\n", 2, "Name <email>");
        parse_bad("[project a]\nauthor = A <>\npath = /x\n", 2, "Name <email>");
        parse_bad("[project a]\nauthor = A <x> y\npath = /x\n", 2, "Name <email>");
        parse_bad("[project a]\nisolation = chroot\npath = /x\n", 2, "not one of: worktree, none");
        parse_bad("[project a]\nbase = main\n", 1, "needs path");
        parse_bad("[project a]\npath = /x\nisolation = none\npush = o\n", 1, "push needs isolation = worktree");
        parse_bad("[daemon]\ndefault_project = a\n", 2, "there is no [project a]");
        parse_bad("[daemon]\ngit_timeout = 0\n", 2, "out of range");
        parse_bad("[project a]\npath = /x\nonion = yes\n", 3, "unknown key 'onion' in section [project a]");
}

static void test_defaults(void **state)
{
        unsetenv("STATE_DIRECTORY");
        struct jada_config *c = parse_ok("");
        assert_string_equal(c->daemon.state_dir, JADA_DEFAULT_STATE_DIR);
        assert_int_equal(c->daemon.poll_interval, SEC(60));
        assert_int_equal(c->daemon.retention, SEC(30 * 86400));
        assert_string_equal(c->claude.command, "claude");
        assert_int_equal(c->claude.max_turns, 30);
        assert_int_equal(c->claude.sessions_per_day, 5);
        assert_int_equal(c->claude.max_sessions_per_task, 3);
        assert_int_equal(c->claude.max_attempts, 5);
        assert_int_equal(c->claude.session_timeout, SEC(45 * 60));
        assert_int_equal(c->claude.idle_timeout, SEC(10 * 60));
        assert_true(c->claude.daily_cost_limit_usd == 0.0);
        assert_int_equal(c->claude.concurrency, 1);
        assert_string_equal(c->claude.permission_mode, "acceptEdits");
        assert_string_equal(c->claude.allowed_tools, "");
        assert_non_null(c->claude.extra_args);
        assert_null(c->claude.extra_args[0]);
        assert_false(c->sheets.enabled);
        assert_string_equal(c->sheets.range, "Ports!A1:Z");
        assert_int_equal(c->sheets.interval, SEC(1800));
        assert_int_equal(c->sheets.auth, SHEETS_AUTH_OAUTH);
        assert_string_equal(c->sheets.token_url, "https://oauth2.googleapis.com/token");
        assert_string_equal(c->sheets.api_url, "https://sheets.googleapis.com");
        assert_string_equal(c->alerts.webhook_url, "");
        assert_string_equal(c->metrics.textfile, "");
        config_free(c);
}

static void test_database(void **state)
{
        struct jada_config *c = parse_ok("");
        char name[64], host[256] = "";

        assert_string_equal(c->database.url, "");
        assert_int_equal(c->database.lease, SEC(60));
        assert_int_equal(config_heartbeat_interval(c), SEC(10));
        /* The host name up to its first dot. */
        assert_int_equal(gethostname(host, sizeof host - 1), 0);
        host[strcspn(host, ".")] = '\0';
        assert_string_equal(config_node_name(c, name, sizeof name), host);
        config_free(c);

        c = parse_ok("[database]\nurl = postgresql://jada@10.0.0.5:5432/jada?sslmode=require\n"
                     "node_name = worker-1.eu\nlease = 6s\n");
        assert_string_equal(c->database.url, "postgresql://jada@10.0.0.5:5432/jada?sslmode=require");
        assert_string_equal(config_node_name(c, name, sizeof name), "worker-1.eu");
        assert_int_equal(config_heartbeat_interval(c), SEC(2));
        config_free(c);

        parse_bad("[database]\nurl = postgresql://jada:secret@db/jada\n", 2, "holds a password");
        parse_bad("[database]\nurl = host=db dbname=jada\n", 2, "must start with postgresql://");
        parse_bad("[database]\nurl = postgresql://db/jada?nonsense=1\n", 2, "nonsense");
        parse_bad("[database]\nnode_name = a/b\n", 2, "node_name");
        parse_bad("[database]\nlease = 2s\n", 2, "out of range");
}

static void test_state_directory_env(void **state)
{
        setenv("STATE_DIRECTORY", "/var/lib/jada-agent:/var/lib/other", 1);
        struct jada_config *c = parse_ok("[daemon]\n");
        assert_string_equal(c->daemon.state_dir, "/var/lib/jada-agent");
        config_free(c);
        c = parse_ok("[daemon]\nstate_dir = /srv/jada\n");
        assert_string_equal(c->daemon.state_dir, "/srv/jada"); /* the file wins */
        config_free(c);
        unsetenv("STATE_DIRECTORY");
}

static void test_full(void **state)
{
        struct jada_config *c = parse_ok(
                "# comment\n"
                "; another\n"
                "[daemon]\r\n"
                "state_dir = ../var   # relative to the config's directory\n"
                "poll_interval = 90s\n"
                "retention = 7d\n"
                "\n"
                "[claude]\n"
                "command = /opt/claude/bin/claude\n"
                "max_turns = 40\n"
                "sessions_per_day = 10\n"
                "max_sessions_per_task = 4\n"
                "max_attempts = 2\n"
                "session_timeout = 1h\n"
                "idle_timeout = 5min\n"
                "daily_cost_limit_usd = 12.5\n"
                "concurrency = 2\n"
                "permission_mode = plan\n"
                "allowed_tools = Read Edit Bash(git:*)\n"
                "model = claude-sonnet-4\n"
                "extra_args = --foo 'a b' \"c \\\"d\\\"\" e\\ f\n"
                "[sheets]\n"
                "enabled = yes\n"
                "spreadsheet_id = 1AbC-dEf_9\n"
                "range = Ports!A1:H\n"
                "interval = 15min\n"
                "auth = service_account\n"
                "progress_range = Progress!A1\n"
                "token_url = http://127.0.0.1:8080/token\n"
                "api_url = http://127.0.0.1:8080\n"
                "[alerts]\n"
                "webhook_url = https://hooks.example.com/x#frag\n"
                "[metrics]\n"
                "textfile = /var/lib/node_exporter/jada.prom\n");
        assert_string_equal(c->daemon.state_dir, "/var"); /* /etc/test.conf: /etc + ../var */
        config_free(c);
}

static void test_full_values(void **state)
{
        struct jada_config *c = parse_ok(
                "[daemon]\nstate_dir = state\npoll_interval = 90s\n"
                "[claude]\nmax_turns = 40\ndaily_cost_limit_usd = 12.5\npermission_mode = plan\n"
                "extra_args = --foo 'a b' \"c \\\"d\\\"\" e\\ f\n"
                "[sheets]\nenabled = yes\nspreadsheet_id = 1AbC\nauth = service_account\n"
                "[alerts]\nwebhook_url = https://hooks.example.com/x#frag\n");
        assert_string_equal(c->daemon.state_dir, "/etc/state");
        assert_int_equal(c->daemon.poll_interval, SEC(90));
        assert_int_equal(c->claude.max_turns, 40);
        assert_true(c->claude.daily_cost_limit_usd == 12.5);
        assert_string_equal(c->claude.permission_mode, "plan");
        assert_int_equal(strv_length(c->claude.extra_args), 4);
        assert_string_equal(c->claude.extra_args[0], "--foo");
        assert_string_equal(c->claude.extra_args[1], "a b");
        assert_string_equal(c->claude.extra_args[2], "c \"d\"");
        assert_string_equal(c->claude.extra_args[3], "e f");
        assert_true(c->sheets.enabled);
        assert_int_equal(c->sheets.auth, SHEETS_AUTH_SERVICE_ACCOUNT);
        assert_string_equal(c->alerts.webhook_url, "https://hooks.example.com/x#frag");
        config_free(c);
}

static void test_problems(void **state)
{
        parse_bad("[nope]\n", 1, "unknown section [nope]");
        parse_bad("[daemon]\n\nbogus = 1\n", 3, "unknown key 'bogus'");
        parse_bad("[daemon]\npoll_interval\n", 2, "missing '='");
        parse_bad("[daemon]\npoll_interval = 1s\npoll_interval = 2s\n", 3, "duplicate key");
        parse_bad("[daemon]\npoll_interval = soon\n", 2, "not a duration");
        parse_bad("[daemon]\npoll_interval = 0s\n", 2, "out of range");
        parse_bad("[daemon]\npoll_interval = 2d\n", 2, "out of range");
        parse_bad("[daemon]\npoll_interval =\n", 2, "not a duration");
        parse_bad("poll_interval = 60s\n", 1, "outside of a section");
        parse_bad("[daemon\n", 1, "malformed section header");
        parse_bad("[claude]\nmax_turns = 0\n", 2, "out of range");
        parse_bad("[claude]\nmax_turns = 30.5\n", 2, "not a whole number");
        parse_bad("[claude]\nmax_turns = -1\n", 2, "not a whole number");
        parse_bad("[claude]\nmax_turns = 99999999999999999999999\n", 2, "out of range");
        parse_bad("[claude]\ncommand =\n", 2, "must not be empty");
        parse_bad("[claude]\npermission_mode = yolo\n", 2, "not one of");
        parse_bad("[claude]\ndaily_cost_limit_usd = -1\n", 2, "not a number");
        parse_bad("[claude]\ndaily_cost_limit_usd = nan\n", 2, "not a number");
        parse_bad("[claude]\nextra_args = 'open\n", 2, "unterminated quote");
        parse_bad("[claude]\nmodel = two words\n", 2, "one word");
        parse_bad("[sheets]\nenabled = maybe\n", 2, "not a boolean");
        parse_bad("[sheets]\ntoken_url = ftp://x/\n", 2, "not an http");
        parse_bad("[sheets]\napi_url = https://\n", 2, "not a valid URL");
        parse_bad("[sheets]\nenabled = yes\n", 2, "needs spreadsheet_id");
        parse_bad("[sheets]\nenabled = yes\nspreadsheet_id = x\n", 2, "needs client_id");
        parse_bad("[daemon]\npoll_interval = 5\x01s\n", 2, "control characters");
        parse_bad("[daemon]\n= 5\n", 2, "missing key");
}

static void test_nul_byte(void **state)
{
        static const char text[] = "[daemon]\npoll\0_interval = 5s\n[claude]\nmax_turns = 0\n";
        struct config_problems problems = { 0 };
        struct jada_config *c = NULL;

        assert_int_equal(config_parse_buffer("x.conf", text, sizeof text - 1, &c, &problems), -EINVAL);
        assert_int_equal(problems.n, 2); /* the NUL line, and parsing went on to line 4 */
        assert_int_equal(problems.items[0].line, 2);
        assert_non_null(strstr(problems.items[0].message, "NUL"));
        assert_int_equal(problems.items[1].line, 4);
        config_problems_clear(&problems);
}

static void test_all_problems_reported(void **state)
{
        static const char text[] = "[daemon]\npoll_interval = x\nretention = y\n[bad]\nk = v\n[claude]\nnope = 1\n";
        struct config_problems problems = { 0 };
        struct jada_config *c = NULL;

        assert_int_equal(config_parse_buffer("x.conf", text, sizeof text - 1, &c, &problems), -EINVAL);
        assert_int_equal(problems.n, 4); /* keys inside an unknown section are not reported again */
        assert_int_equal(problems.items[0].line, 2);
        assert_int_equal(problems.items[1].line, 3);
        assert_int_equal(problems.items[2].line, 4);
        assert_int_equal(problems.items[3].line, 7);
        config_problems_clear(&problems);
}

static void test_load_missing_file(void **state)
{
        struct config_problems problems = { 0 };
        struct jada_config *c = NULL;

        assert_int_equal(config_load("/nonexistent/jada.conf", &c, &problems), -EINVAL);
        assert_int_equal(problems.n, 1);
        assert_int_equal(problems.items[0].line, 0);
        assert_non_null(strstr(problems.items[0].message, "No such file"));
        assert_string_equal(problems.file, "/nonexistent/jada.conf");
        config_problems_clear(&problems);
}

static void test_path_normalize(void **state)
{
        static const char *const cases[][3] = {
                { "/a/config", "../var", "/a/var" },   { "/a", "./b/./c/", "/a/b/c" },
                { "/", "../..", "/" },                 { "/a/b", "/x/../y", "/y" },
                { "/a/b", "../../..", "/" },           { "a", "../../b", "../b" },
                { "/a//b", "c//d", "/a/b/c/d" },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *out = path_join_normalize(cases[i][0], cases[i][1]);
                if (strcmp(out, cases[i][2]) != 0)
                        fail_msg("%s + %s = %s, want %s", cases[i][0], cases[i][1], out, cases[i][2]);
                free(out);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_duration_good),
                cmocka_unit_test(test_duration_bad),
                cmocka_unit_test(test_duration_format),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_projects),
                cmocka_unit_test(test_state_directory_env),
                cmocka_unit_test(test_database),
                cmocka_unit_test(test_full),
                cmocka_unit_test(test_full_values),
                cmocka_unit_test(test_problems),
                cmocka_unit_test(test_nul_byte),
                cmocka_unit_test(test_all_problems_reported),
                cmocka_unit_test(test_load_missing_file),
                cmocka_unit_test(test_path_normalize),
        };
        return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
