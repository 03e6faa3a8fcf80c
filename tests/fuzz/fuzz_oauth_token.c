/* SPDX-License-Identifier: MIT */
/* The token endpoint's answers (oauth_parse_token_response) as a hostile
 * server could send them: never a crash or a leak, always an answer, a
 * token only with what makes one, and a message fit for a log line.
 *
 * Input: byte 0 picks the HTTP status, byte 1 the content type and the
 * transport flags; a fuzzed content type runs to the first '\n'; the rest
 * is the body. */
#include <string.h>

#include "fuzz.h"
#include "jada/log.h"
#include "jada/oauth-token.h"

static const long statuses[] = { 200, 400, 401, 403, 0, 429, 500, 503, 302, 204, 299, 199, 300, 408, 502, -1 };
static const char *const types[] = {
        "application/json", "application/json; charset=utf-8", "text/html", "APPLICATION/JSON",
        "application/jsonp", "application/json ", "",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        log_set_max_priority(LOG_WARNING);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *content_type = NULL, *transport_error = NULL;
        char *type_copy = NULL, *body, *error;
        struct oauth_answer a;
        bool truncated;
        long status;
        unsigned sel;
        size_t n;

        if (size < 2)
                return 0;
        status = statuses[data[0] % 16];
        if (data[0] >= 240)
                status = (long)data[0] * 3 - 200;       /* odd statuses too */
        sel = data[1];
        truncated = sel & 0x80;
        if (sel & 0x40)
                transport_error = "transfer closed with 12 bytes remaining\n\x1b[31m";
        data += 2;
        size -= 2;
        switch (sel & 0x0f) {
        case 0:
                break;                                  /* no Content-Type */
        case 1: {                                       /* one from the input */
                const uint8_t *nl = memchr(data, '\n', size);
                n = nl ? (size_t)(nl - data) : size;
                type_copy = strndup((const char *)data, n);
                fuzz_check(type_copy);
                content_type = type_copy;
                data += nl ? n + 1 : n;
                size -= nl ? n + 1 : n;
                break;
        }
        default:
                content_type = types[(sel & 0x0f) % (sizeof types / sizeof types[0])];
        }

        /* An exact-size copy: a read past len is an ASan report. size 0
         * passes a NULL body, as http.c may for an empty answer. */
        body = size ? malloc(size) : NULL;
        if (size)
                memcpy(body, data, size);
        oauth_parse_token_response(status, content_type, body, size, truncated, transport_error, &a);

        fuzz_check(a.kind == OAUTH_ANSWER_TOKEN || a.kind == OAUTH_ANSWER_PERMANENT ||
                   a.kind == OAUTH_ANSWER_TRANSIENT);
        if (a.kind == OAUTH_ANSWER_TOKEN) {
                fuzz_check(!truncated && !transport_error && status >= 200 && status <= 299);
                fuzz_check(a.access_token && *a.access_token);
                fuzz_check(a.expires_in > 0 && a.expires_in <= 366 * 86400);
                fuzz_check(!a.message);
                if (a.scope)
                        fuzz_check(!fuzz_has_control(a.scope));
                if (a.token_type)
                        fuzz_check(!fuzz_has_control(a.token_type));
        } else {
                fuzz_check(!a.access_token && !a.refresh_token);
                fuzz_check(a.message);
                /* Quoted pieces are cut at OAUTH_MAX_QUOTE; a message is a log line. */
                fuzz_check(!fuzz_has_control(a.message));
                fuzz_check(strlen(a.message) < 4 * OAUTH_MAX_QUOTE);
        }
        oauth_answer_clear(&a);

        /* The classification of an "error" code taken from the body. */
        error = strndup(body ? body : "", size);
        fuzz_check(error);
        sel = oauth_classify_error(status, error);
        fuzz_check(sel == OAUTH_ANSWER_PERMANENT || sel == OAUTH_ANSWER_TRANSIENT);
        free(error);
        free(body);
        free(type_copy);
        return 0;
}
