/* SPDX-License-Identifier: MIT */
/* Unit tests: the answer of Google's consent page for `auth google`, by
 * the loopback server and by a pasted address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jada/auth-redirect.h"
#include "jada/util.h"

static void test_query_decoding(void **state)
{
        static const struct {
                const char *query, *name, *want;
        } cases[] = {
                { "code=4%2F0AfJ&state=s", "code", "4/0AfJ" },
                { "code=a+b%20c", "code", "a b c" },
                { "state=x&code=first&code=second", "code", "first" },
                { "xcode=no&code=yes", "code", "yes" },
                { "code=", "code", "" },
                { "code", "code", NULL },
                { "state=1", "code", NULL },
                { "", "code", NULL },
                { "code=%zz%4", "code", "%zz%4" },              /* not an escape: kept */
                { "code=%41%42%43", "code", "ABC" },
                { "code=a%00b", "code", "a" },                  /* cut at a decoded NUL */
                { "&&code=x&&", "code", "x" },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                _cleanup_free_ char *v = auth_query_get(cases[i].query, cases[i].name);
                if (!cases[i].want) {
                        if (v)
                                fail_msg("case %zu: \"%s\", wanted nothing", i, v);
                } else if (!v || strcmp(v, cases[i].want) != 0)
                        fail_msg("case %zu: \"%s\", wanted \"%s\"", i, v ? v : "(null)", cases[i].want);
        }
}

static void test_parse(void **state)
{
        struct auth_redirect r;

        assert_true(auth_redirect_parse("http://127.0.0.1:8765/?state=S1&code=C%2F1&scope=x", &r));
        assert_string_equal(r.code, "C/1");
        assert_string_equal(r.state, "S1");
        assert_null(r.error);
        auth_redirect_clear(&r);

        assert_true(auth_redirect_parse("http://127.0.0.1:8765/?error=access_denied&state=S1#frag", &r));
        assert_string_equal(r.error, "access_denied");
        auth_redirect_clear(&r);

        /* A code without its state is no answer, and leaves nothing. */
        assert_false(auth_redirect_parse("http://127.0.0.1:8765/?code=C", &r));
        assert_null(r.code);
        assert_false(auth_redirect_parse("no question mark at all", &r));
        assert_false(auth_redirect_parse("?", &r));

        static const char req[] = "GET /?code=C&state=S HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_true(auth_redirect_parse_request(req, sizeof req - 1, &r));
        assert_string_equal(r.code, "C");
        auth_redirect_clear(&r);
        /* Only GET of /, and only as much as was received. */
        assert_false(auth_redirect_parse_request("POST /?code=C&state=S HTTP/1.1\r\n\r\n", 33, &r));
        assert_false(auth_redirect_parse_request("GET /x?code=C&state=S HTTP/1.1\r\n\r\n", 34, &r));
        assert_false(auth_redirect_parse_request(req, 5, &r));
        assert_false(auth_redirect_parse_request("GET /?code=C\0&state=S HTTP/1.1\r\n\r\n", 35, &r));
}

static int connect_to(unsigned port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        return fd;
}

static void read_answer(int fd, char *buf, size_t size)
{
        size_t len = 0;
        ssize_t n;

        while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0)
                len += (size_t)n;
        buf[len] = '\0';
}

/* The real loopback server: a browser's request gets the page and the
 * answer; a request that is not the answer gets a 404; a client that
 * never finishes its request is cut off at the deadline. */
static void test_loopback_server(void **state)
{
        struct auth_redirect r;
        char page[4096];
        unsigned port = 0;
        int lfd = auth_redirect_listen(0, &port), c;

        assert_true(lfd >= 0);
        assert_true(port > 0);

        c = connect_to(port);
        assert_true(write(c, "GET /?state=S&code=C%2B HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 52) == 52);
        assert_true(auth_redirect_accept(lfd, 5 * 1000000ULL, &r));
        assert_string_equal(r.code, "C+");
        assert_string_equal(r.state, "S");
        auth_redirect_clear(&r);
        read_answer(c, page, sizeof page);
        close(c);
        assert_non_null(strstr(page, "HTTP/1.1 200 OK"));

        c = connect_to(port);
        assert_true(write(c, "GET /favicon.ico HTTP/1.1\r\n\r\n", 29) == 29);
        assert_false(auth_redirect_accept(lfd, 5 * 1000000ULL, &r));
        read_answer(c, page, sizeof page);
        close(c);
        assert_non_null(strstr(page, "HTTP/1.1 404"));

        c = connect_to(port);
        assert_true(write(c, "GET /?state=S&co", 16) == 16);  /* and nothing more */
        uint64_t t0 = now_monotonic_usec();
        assert_false(auth_redirect_accept(lfd, 200000, &r));
        assert_true(now_monotonic_usec() - t0 >= 200000);
        close(c);

        /* A pasted address on the other input wins as well. */
        int p[2];
        assert_int_equal(pipe(p), 0);
        assert_true(write(p[1], "garbage\nhttp://127.0.0.1/?code=P&state=Q\n", 41) == 41);
        assert_int_equal(auth_redirect_wait(lfd, p[0], 5 * 1000000ULL, &r), 0);
        assert_string_equal(r.code, "P");
        auth_redirect_clear(&r);
        close(p[1]);
        assert_int_equal(auth_redirect_wait(lfd, p[0], 100000, &r), -ETIMEDOUT);
        close(p[0]);
        close(lfd);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_query_decoding),
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_loopback_server),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
