/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The answer of Google's consent page for `jada-agent auth google`: the
 * browser is redirected to http://127.0.0.1:PORT/?state=...&code=... (or
 * ?error=...), which a small loopback HTTP server here receives; or the
 * person pastes that address on stdin (a headless server without ssh -L).
 * Both are outside input: bounded in size and time, parsed defensively.
 */

#define AUTH_REDIRECT_REQUEST_MAX 8192

struct auth_redirect {
        char *code;
        char *state;
        char *error;
};
void auth_redirect_clear(struct auth_redirect *r);

/* The value of name in a query string ("a=1&b=2"), percent-decoded and '+'
 * as a space; the first one if repeated; NULL if absent. */
char *auth_query_get(const char *query, const char *name);

/* Takes "code", "state" and "error" from an address or a request target
 * ("/?state=...&code=..."). True when it is an answer (code and state, or
 * error); else *ret is left empty. */
bool auth_redirect_parse(const char *address, struct auth_redirect *ret);

/* What the loopback server does with one request's bytes: true when it is
 * "GET /?..." carrying an answer. */
bool auth_redirect_parse_request(const char *request, size_t len, struct auth_redirect *ret);

/* A listening TCP socket on 127.0.0.1:port (0: any free port, told in
 * *ret_port). Returns the fd or a negative errno. */
int auth_redirect_listen(unsigned port, unsigned *ret_port);

/* Accepts one connection and reads one request, for at most timeout_usec
 * and AUTH_REDIRECT_REQUEST_MAX bytes, and answers it with a short page.
 * True when it carried the answer. */
bool auth_redirect_accept(int listen_fd, uint64_t timeout_usec, struct auth_redirect *ret);

/* Waits up to timeout_usec for the browser's redirect on listen_fd, or a
 * pasted address on in_fd (one line; -1: none), whichever comes first.
 * 0, -ETIMEDOUT, or a negative errno. */
int auth_redirect_wait(int listen_fd, int in_fd, uint64_t timeout_usec, struct auth_redirect *ret);
