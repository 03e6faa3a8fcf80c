/* SPDX-License-Identifier: MIT */
/* Durations in systemd's syntax, for the config file and the command line. */
#include "jada/duration.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
        const char *suffix;
        uint64_t usec;
} duration_units[] = {
        { "us", 1 }, { "usec", 1 },
        { "ms", 1000 }, { "msec", 1000 },
        { "s", USEC_PER_SEC }, { "sec", USEC_PER_SEC }, { "second", USEC_PER_SEC }, { "seconds", USEC_PER_SEC },
        { "m", 60 * USEC_PER_SEC }, { "min", 60 * USEC_PER_SEC }, { "minute", 60 * USEC_PER_SEC }, { "minutes", 60 * USEC_PER_SEC },
        { "h", 3600 * USEC_PER_SEC }, { "hr", 3600 * USEC_PER_SEC }, { "hour", 3600 * USEC_PER_SEC }, { "hours", 3600 * USEC_PER_SEC },
        { "d", 86400 * USEC_PER_SEC }, { "day", 86400 * USEC_PER_SEC }, { "days", 86400 * USEC_PER_SEC },
        { "w", 7 * 86400 * USEC_PER_SEC }, { "week", 7 * 86400 * USEC_PER_SEC }, { "weeks", 7 * 86400 * USEC_PER_SEC },
};

int duration_parse(const char *s, uint64_t *ret_usec)
{
        uint64_t total = 0;
        bool any = false;

        if (!s)
                return -EINVAL;
        for (;;) {
                uint64_t whole = 0, mult = 0, part;
                double frac = 0, scale = 0.1;
                size_t unit_len;

                while (*s == ' ' || *s == '\t')
                        s++;
                if (!*s)
                        break;
                if (!isdigit((unsigned char)*s) && *s != '.')
                        return -EINVAL;
                bool digits = false;
                while (isdigit((unsigned char)*s)) {
                        if (whole > (UINT64_MAX - 9) / 10)
                                return -ERANGE;
                        whole = whole * 10 + (uint64_t)(*s++ - '0');
                        digits = true;
                }
                if (*s == '.') {
                        s++;
                        if (!isdigit((unsigned char)*s))
                                return -EINVAL;
                        while (isdigit((unsigned char)*s)) {
                                frac += (*s++ - '0') * scale;
                                scale /= 10;
                                digits = true;
                        }
                }
                if (!digits)
                        return -EINVAL;
                while (*s == ' ' || *s == '\t')
                        s++;
                for (unit_len = 0; isalpha((unsigned char)s[unit_len]); unit_len++)
                        ;
                if (unit_len == 0) {
                        /* A bare number is seconds, as in systemd; it must end
                         * the value or be followed by a space. */
                        if (s[0] && s[-1] != ' ' && s[-1] != '\t')
                                return -EINVAL;
                        mult = USEC_PER_SEC;
                }
                for (size_t i = 0; unit_len && i < sizeof duration_units / sizeof duration_units[0]; i++)
                        if (strlen(duration_units[i].suffix) == unit_len &&
                            strncmp(s, duration_units[i].suffix, unit_len) == 0)
                                mult = duration_units[i].usec;
                if (!mult)
                        return -EINVAL;
                s += unit_len;

                if (whole > UINT64_MAX / mult)
                        return -ERANGE;
                part = whole * mult;
                {
                        /* frac < 1, so frac * mult < mult; but the sum may
                         * still pass UINT64_MAX, and converting a double
                         * that does not fit is undefined (found by fuzzing). */
                        double f = frac * (double)mult;
                        if (f >= (double)(UINT64_MAX - part))
                                return -ERANGE;
                        part += (uint64_t)f;
                }
                if (part > UINT64_MAX - total)
                        return -ERANGE;
                total += part;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *ret_usec = total;
        return 0;
}

const char *duration_format(char *buf, size_t size, uint64_t usec)
{
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "d", 86400 * USEC_PER_SEC }, { "h", 3600 * USEC_PER_SEC },
                { "min", 60 * USEC_PER_SEC }, { "s", USEC_PER_SEC },
                { "ms", USEC_PER_MSEC }, { "us", 1 },
        };
        size_t len = 0;

        if (size == 0)
                return buf;
        buf[0] = '\0';
        if (usec == 0) {
                snprintf(buf, size, "0");
                return buf;
        }
        for (size_t i = 0; i < sizeof units / sizeof units[0] && usec > 0; i++) {
                uint64_t n = usec / units[i].usec;
                if (n == 0)
                        continue;
                int w = snprintf(buf + len, size - len, "%" PRIu64 "%s", n, units[i].suffix);
                if (w < 0 || (size_t)w >= size - len)
                        break;
                len += (size_t)w;
                usec -= n * units[i].usec;
        }
        return buf;
}
