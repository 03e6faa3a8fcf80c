/* SPDX-License-Identifier: MIT */
/* Durations (duration_parse) from arbitrary text: no crash, no UB,
 * the output untouched on error, what parses survives a round trip through
 * duration_format unchanged, and no sum wraps around: dropping the
 * fractions (".5" of "1.5h") never gives a larger value. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "jada/config.h"

/* s without its fractions: "1.5h .25min" is "1h 0min". */
static char *whole_parts(const char *s)
{
        const char *start = s;
        char *w = malloc(strlen(s) + 2), *o = w;

        fuzz_check(w);
        for (; *s; s++) {
                if (*s == '.' && s[1] >= '0' && s[1] <= '9') {
                        if (s == start || s[-1] < '0' || s[-1] > '9')
                                *o++ = '0';
                        while (s[1] >= '0' && s[1] <= '9')
                                s++;
                        continue;
                }
                *o++ = *s;
        }
        *o = '\0';
        return w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *s, buf[64];
        uint64_t usec = 777, again = 0;
        int r;

        if (size > 256)         /* config values are one line; longer adds nothing */
                return 0;
        s = malloc(size + 1);
        fuzz_check(s);
        memcpy(s, data, size);
        s[size] = '\0';

        r = duration_parse(s, &usec);
        if (r < 0) {
                fuzz_check(r == -EINVAL || r == -ERANGE);
                fuzz_check(usec == 777);
        } else {
                fuzz_check(r == 0);
                duration_format(buf, sizeof buf, usec);
                fuzz_check(duration_parse(buf, &again) == 0);
                fuzz_check(again == usec);

                char *w = whole_parts(s);
                uint64_t floor_usec;
                if (duration_parse(w, &floor_usec) == 0)
                        fuzz_check(floor_usec <= usec);
                free(w);
        }
        free(s);
        return 0;
}
