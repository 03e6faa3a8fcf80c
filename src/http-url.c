/* SPDX-License-Identifier: MIT */
/* Percent-encoding, through libcurl's own curl_easy_escape/unescape: the
 * daemon already trusts libcurl with its URLs, and they encode exactly
 * what RFC 3986 asks (everything but the unreserved characters). */
#include "jada/http.h"
#include "jada/util.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

char *http_escape(const char *s)
{
        char *e, *out;
        size_t n = strlen(s);

        if (n > INT_MAX / 3)
                abort(); /* callers pass config values and secrets, never this */
        e = curl_easy_escape(NULL, s, (int)n);
        if (!e)
                abort(); /* out of memory */
        out = xstrdup(e);
        curl_free(e);
        return out;
}

char *http_unescape(const char *s, size_t len, bool plus_is_space)
{
        _cleanup_free_ char *copy = xstrndup(s, len);
        char *d, *out;
        int n = 0;

        if (plus_is_space)
                for (char *p = copy; *p; p++)
                        if (*p == '+')
                                *p = ' ';
        if (strlen(copy) > INT_MAX)
                return NULL;
        d = curl_easy_unescape(NULL, copy, (int)strlen(copy), &n);
        if (!d)
                abort(); /* out of memory */
        out = xstrndup(d, (size_t)n);
        curl_free(d);
        return out;
}
