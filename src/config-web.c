/* SPDX-License-Identifier: MIT */
/* [web] and [alerts] notify: values that need the whole file to check. */
#include "config-private.h"
#include "jada/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

static int parse_port(const char *s, in_port_t *ret)
{
        char *end;
        unsigned long v;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v == 0 || v > 65535)
                return -EINVAL;
        *ret = htons((uint16_t)v);
        return 0;
}

int config_parse_listen(const char *listen, struct sockaddr_storage *ret, unsigned *ret_len, bool *loopback,
                        char *why, size_t size)
{
        struct sockaddr_storage ss = { 0 };
        char host[INET6_ADDRSTRLEN + 1];
        const char *colon;
        in_port_t port;
        size_t hlen;

        if (listen[0] == '/') {
                struct sockaddr_un *un = (struct sockaddr_un *)&ss;
                if (strlen(listen) >= sizeof un->sun_path) {
                        snprintf(why, size, "'%s': a socket path must be shorter than %zu bytes", listen,
                                 sizeof un->sun_path);
                        return -EINVAL;
                }
                un->sun_family = AF_UNIX;
                strcpy(un->sun_path, listen);
                *ret = ss;
                *ret_len = (unsigned)sizeof *un;
                *loopback = true;
                return 0;
        }
        if (listen[0] == '[') {
                const char *close = strchr(listen, ']');
                if (!close || close[1] != ':') {
                        snprintf(why, size, "'%s' is not [IPV6]:PORT", listen);
                        return -EINVAL;
                }
                hlen = (size_t)(close - listen - 1);
                colon = close + 1;
                listen++;
        } else {
                colon = strrchr(listen, ':');
                if (!colon) {
                        snprintf(why, size, "'%s' has no port (e.g. 127.0.0.1:8780)", listen);
                        return -EINVAL;
                }
                hlen = (size_t)(colon - listen);
        }
        if (hlen == 0 || hlen >= sizeof host) {
                snprintf(why, size, "'%s' has no address before the port (e.g. 127.0.0.1:8780)", listen);
                return -EINVAL;
        }
        memcpy(host, listen, hlen);
        host[hlen] = '\0';
        if (parse_port(colon + 1, &port) < 0) {
                snprintf(why, size, "'%s' is not a port from 1 to 65535", colon + 1);
                return -EINVAL;
        }
        /* Numeric addresses only: a name would need a blocking lookup, and
         * a name that resolves elsewhere tomorrow would move the dashboard. */
        if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
                struct sockaddr_in *in = (struct sockaddr_in *)&ss;
                in->sin_family = AF_INET;
                in->sin_port = port;
                *loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
                *ret_len = (unsigned)sizeof *in;
        } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
                in6->sin6_family = AF_INET6;
                in6->sin6_port = port;
                *loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
                *ret_len = (unsigned)sizeof *in6;
        } else {
                snprintf(why, size, "'%s' is not a numeric IPv4 or IPv6 address (e.g. 127.0.0.1 or [::1])", host);
                return -EINVAL;
        }
        *ret = ss;
        return 0;
}

const char *config_web_url(const struct jada_config *config, char *buf, size_t size)
{
        size_t n;

        if (!*config->web.listen) {
                snprintf(buf, size, "%s", "");
                return buf;
        }
        if (*config->web.url)
                snprintf(buf, size, "%s", config->web.url);
        else if (config->web.listen[0] == '/')
                snprintf(buf, size, "http://localhost"); /* through the socket: a proxy's business */
        else
                snprintf(buf, size, "http://%s", config->web.listen);
        n = strlen(buf);
        while (n > 0 && buf[n - 1] == '/')
                buf[--n] = '\0';
        return buf;
}

static const struct {
        const char *word;
        unsigned bit;
} notify_words[] = {
        { "needs_you", NOTIFY_NEEDS_YOU },
        { "failed", NOTIFY_FAILED },
        { "done", NOTIFY_DONE },
};

void config_web_check(struct parser *p, unsigned notify_line, unsigned listen_line)
{
        struct jada_config *c = p->config;
        _cleanup_free_ char *words = xstrdup(c->alerts.notify);
        char *save = NULL;

        c->alerts.notify_mask = 0;
        c->web.listen_line = listen_line;
        for (char *w = strtok_r(words, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
                size_t i;
                for (i = 0; i < sizeof notify_words / sizeof notify_words[0]; i++)
                        if (strcmp(w, notify_words[i].word) == 0)
                                break;
                if (i == sizeof notify_words / sizeof notify_words[0]) {
                        config_add_problem(p->problems, notify_line,
                                           "[alerts] notify: '%s' is not a task event (needs_you, failed, done)", w);
                        continue;
                }
                c->alerts.notify_mask |= notify_words[i].bit;
        }

        if (*c->web.listen) {
                struct sockaddr_storage ss;
                unsigned len;
                bool loopback;
                char why[200];
                if (config_parse_listen(c->web.listen, &ss, &len, &loopback, why, sizeof why) < 0)
                        config_add_problem(p->problems, listen_line, "[web] listen: %s", why);
        }
}
