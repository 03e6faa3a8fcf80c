/* SPDX-License-Identifier: MIT */
#include "jada/auth-redirect.h"
#include "jada/config.h"
#include "jada/http.h"
#include "jada/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REQUEST_READ_USEC (5 * USEC_PER_SEC)

void auth_redirect_clear(struct auth_redirect *r)
{
        free(r->code);
        free(r->state);
        free(r->error);
        memset(r, 0, sizeof *r);
}

char *auth_query_get(const char *query, const char *name)
{
        size_t n = strlen(name);

        for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
                size_t len = strcspn(p, "&");

                if (len > n && strncmp(p, name, n) == 0 && p[n] == '=')
                        return http_unescape(p + n + 1, len - n - 1, true);
        }
        return NULL;
}

bool auth_redirect_parse(const char *address, struct auth_redirect *ret)
{
        const char *q = strchr(address, '?');
        _cleanup_free_ char *query = NULL;

        *ret = (struct auth_redirect){ 0 };
        if (!q)
                return false;
        query = xstrndup(q + 1, strcspn(q + 1, "# \r\n"));
        ret->code = auth_query_get(query, "code");
        ret->state = auth_query_get(query, "state");
        ret->error = auth_query_get(query, "error");
        if ((ret->code && ret->state) || ret->error)
                return true;
        auth_redirect_clear(ret);
        return false;
}

bool auth_redirect_parse_request(const char *request, size_t len, struct auth_redirect *ret)
{
        _cleanup_free_ char *copy = xstrndup(request, len); /* NUL-terminated, cut at a NUL */

        *ret = (struct auth_redirect){ 0 };
        if (strncmp(copy, "GET /?", 6) != 0 && strncmp(copy, "GET / ", 6) != 0)
                return false;
        copy[strcspn(copy, "\r\n")] = '\0';
        return auth_redirect_parse(copy + 4, ret);
}

static void send_page(int fd, int status, const char *text)
{
        _cleanup_free_ char *page = xasprintf("<!doctype html><meta charset=utf-8><title>jada-agent</title>"
                                              "<p>%s</p>\n", text);
        _cleanup_free_ char *head = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
                                              "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                                              status, status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request",
                                              strlen(page));
        (void)!write(fd, head, strlen(head));
        (void)!write(fd, page, strlen(page));
}

bool auth_redirect_accept(int listen_fd, uint64_t timeout_usec, struct auth_redirect *ret)
{
        char buf[AUTH_REDIRECT_REQUEST_MAX + 1];
        uint64_t deadline = now_monotonic_usec() + timeout_usec;
        size_t len = 0;
        bool found;
        int fd;

        *ret = (struct auth_redirect){ 0 };
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
                return false;
        while (len < AUTH_REDIRECT_REQUEST_MAX && !memmem(buf, len, "\r\n\r\n", 4)) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint64_t now = now_monotonic_usec();
                ssize_t n;
                if (now >= deadline || poll(&p, 1, (int)((deadline - now) / 1000) + 1) <= 0)
                        break;
                n = read(fd, buf + len, AUTH_REDIRECT_REQUEST_MAX - len);
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        found = auth_redirect_parse_request(buf, len, ret);
        if (found && ret->error)
                send_page(fd, 400, "Google did not grant access. See the terminal.");
        else if (found)
                send_page(fd, 200, "jada-agent received the authorization. You can close this tab; "
                                   "the terminal tells how the test read went.");
        else
                send_page(fd, 404, "Not the authorization answer.");
        close(fd);
        return found;
}

int auth_redirect_wait(int listen_fd, int in_fd, uint64_t timeout_usec, struct auth_redirect *ret)
{
        uint64_t deadline = now_monotonic_usec() + timeout_usec;
        char line[AUTH_REDIRECT_REQUEST_MAX + 1];
        size_t len = 0;

        for (;;) {
                struct pollfd p[2] = { { .fd = listen_fd, .events = POLLIN }, { .fd = in_fd, .events = POLLIN } };
                uint64_t now = now_monotonic_usec();
                int n;

                if (now >= deadline)
                        return -ETIMEDOUT;
                n = poll(p, 2, (int)((deadline - now) / 1000) + 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (p[0].revents & POLLIN && auth_redirect_accept(listen_fd, REQUEST_READ_USEC, ret))
                        return 0;
                if (p[1].revents & (POLLIN | POLLHUP)) {
                        ssize_t k = read(in_fd, line + len, sizeof line - 1 - len);
                        char *nl;
                        if (k <= 0) {
                                in_fd = -1; /* /dev/null, or ^D: the loopback still works */
                                continue;
                        }
                        len += (size_t)k;
                        line[len] = '\0';
                        while ((nl = strchr(line, '\n'))) {
                                *nl = '\0';
                                if (auth_redirect_parse(line, ret))
                                        return 0;
                                if (line[strspn(line, " \t\r")])
                                        fprintf(stderr, "jada-agent: that is not the address with code= and state= in it; "
                                                        "paste the whole address from the browser's address bar\n");
                                len -= (size_t)(nl + 1 - line);
                                memmove(line, nl + 1, len + 1);
                        }
                        if (len == sizeof line - 1)
                                len = 0; /* a line longer than any answer: drop it */
                }
        }
}

int auth_redirect_listen(unsigned port, unsigned *ret_port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret_port = ntohs(sa.sin_port);
        return fd;
}
