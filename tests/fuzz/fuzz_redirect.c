/* SPDX-License-Identifier: MIT */
/* The answer to `jada-agent auth google`, from arbitrary bytes: as the
 * loopback server's request (auth_redirect_parse_request) and as a pasted
 * address (auth_redirect_parse). No crash, no UB; an answer has code and
 * state, or error; no answer leaves nothing behind; and a query value
 * decodes to no more bytes than it had. */
#include <string.h>

#include "fuzz.h"
#include "jada/auth-redirect.h"

static void check(bool found, const struct auth_redirect *r)
{
        if (found)
                fuzz_check((r->code && r->state) || r->error);
        else
                fuzz_check(!r->code && !r->state && !r->error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct auth_redirect r;
        char *s;
        bool found;

        if (size > AUTH_REDIRECT_REQUEST_MAX)
                return 0;
        found = auth_redirect_parse_request((const char *)data, size, &r);
        check(found, &r);
        auth_redirect_clear(&r);

        s = malloc(size + 1);
        fuzz_check(s);
        memcpy(s, data, size);
        s[size] = '\0';
        found = auth_redirect_parse(s, &r);
        check(found, &r);
        if (r.code)
                fuzz_check(strlen(r.code) <= size);
        auth_redirect_clear(&r);

        char *v = auth_query_get(s, "code");
        if (v)
                fuzz_check(strlen(v) <= size);
        free(v);
        free(s);
        return 0;
}
