/* SPDX-License-Identifier: MIT */
/* The older CLIs' usage-limit texts (stream.h: stream_usage_limit_text). */
#include "jada/stream.h"
#include "jada/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* "8pm", "8:30pm", "20:00", "8 am": hour and minute of the day; false if not one. */
static bool parse_clock(const char *s, int *hour, int *minute)
{
        char *end;
        long h = strtol(s, &end, 10), m = 0;

        if (end == s || h < 0 || h > 23)
                return false;
        if (*end == ':') {
                const char *ms = end + 1;
                m = strtol(ms, &end, 10);
                if (end != ms + 2 || m < 0 || m > 59)
                        return false;
        }
        while (*end == ' ')
                end++;
        if (strncasecmp(end, "am", 2) == 0 || strncasecmp(end, "pm", 2) == 0) {
                if (h < 1 || h > 12)
                        return false;
                h = h % 12 + (tolower((unsigned char)*end) == 'p' ? 12 : 0);
        }
        *hour = (int)h;
        *minute = (int)m;
        return true;
}

/* The next hour:minute after now in the time zone named zone, or 0. TZ is
 * switched for the computation (the daemon has one thread) and restored. */
static int64_t next_local_time(int hour, int minute, const char *zone, int64_t now)
{
        _cleanup_free_ char *file = xasprintf("/usr/share/zoneinfo/%s", zone), *saved = NULL;
        const char *old = getenv("TZ");
        time_t t = (time_t)now, next;
        struct tm tm;

        if (!*zone || strspn(zone, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_/+-") !=
                              strlen(zone) || strstr(zone, "..") || access(file, R_OK) < 0)
                return 0;
        saved = old ? xstrdup(old) : NULL;
        setenv("TZ", zone, 1);
        tzset();
        localtime_r(&t, &tm);
        tm.tm_hour = hour;
        tm.tm_min = minute;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        next = mktime(&tm);
        if (next != (time_t)-1 && next <= t) {
                tm.tm_mday++;
                tm.tm_isdst = -1;
                next = mktime(&tm);
        }
        if (saved)
                setenv("TZ", saved, 1);
        else
                unsetenv("TZ");
        tzset();
        return next == (time_t)-1 ? 0 : (int64_t)next;
}

bool stream_usage_limit_text(const char *text, int64_t now, int64_t *ret_reset)
{
        static const char old[] = "usage limit reached|";
        const char *p, *resets, *open, *close;
        int hour, minute;

        *ret_reset = 0;
        if (!text)
                return false;
        if ((p = strstr(text, old))) {
                char *end;
                long long v = strtoll(p + sizeof old - 1, &end, 10);
                if (end != p + sizeof old - 1 && v >= 1000000000LL && v < 10000000000LL)
                        *ret_reset = v;
                return true;
        }
        /* "You've hit your session limit · resets 8pm (America/New_York)" */
        p = strstr(text, "hit your ");
        if (!p || !strstr(p, "limit"))
                return false;
        resets = strstr(p, "resets ");
        if (!resets || !parse_clock(resets + 7, &hour, &minute))
                return true;
        open = strchr(resets, '(');
        close = open ? strchr(open, ')') : NULL;
        if (open && close && close - open - 1 < 64) {
                _cleanup_free_ char *zone = xstrndup(open + 1, (size_t)(close - open - 1));
                *ret_reset = next_local_time(hour, minute, zone, now);
        } else {
                *ret_reset = next_local_time(hour, minute, "UTC", now);
        }
        return true;
}
