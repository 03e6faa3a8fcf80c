/* SPDX-License-Identifier: MIT */
/* The daemon and a plan's usage limits: a session refused by a limit parks
 * the whole daemon until the reset (one gate, kept in the db), and the last
 * limit state the CLI reported becomes a warning while a limit is nearly
 * used. */
#include "jada/daemon.h"
#include "jada/log.h"
#include "jada/session.h"
#include "jada/usage.h"
#include "jada/util.h"

#include <stdio.h>
#include <string.h>

/* The problem that says the daemon is parked, and when it goes on. */
static void save(struct jada_ctx *ctx)
{
        int r = usage_save(ctx->db, &ctx->usage);
        if (r < 0) {
                log_error_errno(r, "cannot save the usage-limit state");
                daemon_db_failed(ctx, r, "saving the usage-limit state");
        }
}

/* The problem that says the daemon is parked, and when it goes on. */
static void set_parked_problem(struct jada_ctx *ctx)
{
        char text[256];

        health_set_problem(&ctx->health, PROBLEM_USAGE_LIMIT, "%s", usage_park_text(&ctx->usage, text, sizeof text));
}

static void check_warning(struct jada_ctx *ctx, int64_t now)
{
        const struct stream_rate_limit *l = &ctx->usage.last;
        char reset[40];

        if (l->seen && strcmp(l->status, "allowed_warning") == 0 && (l->resets_at == 0 || l->resets_at > now)) {
                char used[32] = "";
                if (l->utilization >= 0)
                        snprintf(used, sizeof used, " (%.0f%% used)", usage_percent(l->utilization));
                health_set_problem(&ctx->health, PROBLEM_USAGE_WARNING, "the %s usage limit is nearly used%s, "
                                   "resets %s", usage_limit_name(l->type), used, usage_time_text(reset, sizeof reset, l->resets_at));
        } else {
                health_clear_problem(&ctx->health, PROBLEM_USAGE_WARNING);
        }
}

int daemon_usage_start(struct jada_ctx *ctx)
{
        int64_t now = now_seconds();
        int r = usage_load(ctx->db, &ctx->usage);

        if (r < 0)
                return log_error_errno(r, "cannot read the usage-limit state");
        if (usage_parked(&ctx->usage, now)) {
                char until[40];
                log_notice("parked by the %s usage limit until %s (from before the restart)",
                           usage_limit_name(ctx->usage.park_type), usage_time_text(until, sizeof until, ctx->usage.parked_until));
                set_parked_problem(ctx);
        }
        check_warning(ctx, now);
        return 0;
}

bool daemon_usage_parked(struct jada_ctx *ctx)
{
        return usage_parked(&ctx->usage, now_seconds());
}

void daemon_usage_check(struct jada_ctx *ctx)
{
        int64_t now = now_seconds();

        if (ctx->usage.parked_until > 0 && !usage_parked(&ctx->usage, now)) {
                log_notice("the %s usage limit's park is over: sessions start again",
                           usage_limit_name(ctx->usage.park_type));
                ctx->usage.parked_until = 0;
                save(ctx);
                health_clear_problem(&ctx->health, PROBLEM_USAGE_LIMIT);
        }
        check_warning(ctx, now);
}

void daemon_usage_session_ended(struct jada_ctx *ctx, const struct session_result *result)
{
        struct usage_state *u = &ctx->usage;
        int64_t now = now_seconds();
        bool changed = false;

        if (result->rate_limit.seen) {
                u->last = result->rate_limit;
                u->last_at = now;
                changed = true;
        }
        if (result->kind == OUTCOME_USAGE_LIMIT) {
                char until[40];
                int64_t before = u->parked_until;
                usage_park(u, result->limit_type, result->limit_reset, now);
                if (u->parked_until != before)
                        log_fields(LOG_WARNING, JADA_FIELDS("JADA_USAGE_LIMIT=1"),
                                   "task %lld: refused by the %s usage limit: parked until %s, no session starts "
                                   "before", (long long)result->task_id, usage_limit_name(u->park_type),
                                   usage_time_text(until, sizeof until, u->parked_until));
                set_parked_problem(ctx);
                changed = true;
        } else if (u->unknown_streak > 0 &&
                   (result->kind == OUTCOME_DONE || result->kind == OUTCOME_NEEDS_YOU ||
                    result->kind == OUTCOME_MAX_TURNS)) {
                u->unknown_streak = 0; /* the model answered: the next unknown park starts at 30 min */
                changed = true;
        }
        if (changed)
                save(ctx);
        check_warning(ctx, now);
}
