/* SPDX-License-Identifier: MIT */
#include "jada/usage.h"
#include "jada/store.h"
#include "jada/util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void usage_park(struct usage_state *s, const char *type, int64_t reset, int64_t now)
{
        int64_t until;

        /* A reset just past (clocks differ) still counts, with its margin. */
        if (reset > 0 && reset + USAGE_PARK_MARGIN > now) {
                until = reset + USAGE_PARK_MARGIN;
                s->unknown_streak = 0;
        } else {
                int64_t wait = USAGE_UNKNOWN_FIRST;
                for (int64_t i = 0; i < s->unknown_streak && wait < USAGE_UNKNOWN_MAX; i++)
                        wait *= 2;
                until = now + (wait < USAGE_UNKNOWN_MAX ? wait : USAGE_UNKNOWN_MAX);
                s->unknown_streak++;
                reset = 0;
        }
        if (until <= s->parked_until)
                return;
        s->parked_until = until;
        s->park_reset = reset;
        snprintf(s->park_type, sizeof s->park_type, "%s", type ? type : "");
}

bool usage_parked(const struct usage_state *s, int64_t now)
{
        return s->parked_until > now;
}

double usage_percent(double utilization)
{
        return utilization <= 1 ? 100 * utilization : utilization;
}

static const char *hhmm(char *buf, size_t size, int64_t t)
{
        struct tm tm;
        time_t tt = (time_t)t;

        if (t <= 0 || !gmtime_r(&tt, &tm))
                return "an unknown time";
        strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm);
        return buf;
}

const char *usage_park_text(const struct usage_state *s, char *buf, size_t size)
{
        char reset[40], until[40];

        if (s->park_reset > 0)
                snprintf(buf, size, "Parked: %s usage limit, resets %s; sessions start again at %s",
                         usage_limit_name(s->park_type), hhmm(reset, sizeof reset, s->park_reset),
                         hhmm(until, sizeof until, s->parked_until));
        else
                snprintf(buf, size, "Parked: %s usage limit, reset not reported; sessions start again at %s",
                         usage_limit_name(s->park_type), hhmm(until, sizeof until, s->parked_until));
        return buf;
}

const char *usage_time_text(char *buf, size_t size, int64_t t)
{
        return hhmm(buf, size, t);
}

const char *usage_limit_name(const char *type)
{
        static const struct { const char *type, *name; } names[] = {
                { "five_hour", "5-hour" },         { "seven_day", "weekly" },
                { "seven_day_opus", "weekly Opus" }, { "seven_day_sonnet", "weekly Sonnet" },
                { "overage", "overage" },
        };
        for (size_t i = 0; type && i < sizeof names / sizeof names[0]; i++)
                if (strcmp(type, names[i].type) == 0)
                        return names[i].name;
        return type && *type ? type : "usage";
}

int usage_load(struct store *db, struct usage_state *ret)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r, rc;

        *ret = (struct usage_state){ .last.utilization = -1 };
        r = store_prepare(db,
                       "SELECT parked_until, unknown_streak, park_type, park_reset, status, type, resets_at, "
                       "utilization, seen_at FROM usage_limit WHERE id = 1",
                       &st);
        if (r < 0)
                return r;
        rc = store_step(st);
        if (rc == STORE_DONE)
                return 0;
        if (rc != STORE_ROW)
                return rc;
        ret->parked_until = store_column_int64(st, 0);
        ret->unknown_streak = store_column_int64(st, 1);
        snprintf(ret->park_type, sizeof ret->park_type, "%s", store_column_text(st, 2) ?: "");
        ret->park_reset = store_column_int64(st, 3);
        ret->last_at = store_column_int64(st, 8);
        if (ret->last_at > 0) {
                ret->last.seen = true;
                snprintf(ret->last.status, sizeof ret->last.status, "%s", store_column_text(st, 4) ?: "");
                snprintf(ret->last.type, sizeof ret->last.type, "%s", store_column_text(st, 5) ?: "");
                ret->last.resets_at = store_column_int64(st, 6);
                ret->last.utilization = store_column_is_null(st, 7) ? -1 : store_column_double(st, 7);
        }
        return 0;
}

int usage_save(struct store *db, const struct usage_state *s)
{
        struct store_stmt *st;
        int r = store_prepare(db,
                           "INSERT INTO usage_limit (id, parked_until, unknown_streak, park_type, park_reset, "
                           "status, type, resets_at, utilization, seen_at) "
                           "VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                           "ON CONFLICT (id) DO UPDATE SET parked_until = excluded.parked_until, "
                           "unknown_streak = excluded.unknown_streak, park_type = excluded.park_type, "
                           "park_reset = excluded.park_reset, status = excluded.status, type = excluded.type, "
                           "resets_at = excluded.resets_at, utilization = excluded.utilization, "
                           "seen_at = excluded.seen_at",
                           &st);

        if (r < 0)
                return r;
        store_bind_int64(st, 1, s->parked_until);
        store_bind_int64(st, 2, s->unknown_streak);
        store_bind_text(st, 3, s->park_type);
        store_bind_int64(st, 4, s->park_reset);
        store_bind_text(st, 5, s->last.status);
        store_bind_text(st, 6, s->last.type);
        store_bind_int64(st, 7, s->last.resets_at);
        if (s->last.utilization >= 0)
                store_bind_double(st, 8, s->last.utilization);
        store_bind_int64(st, 9, s->last_at);
        return store_step_done(st);
}
