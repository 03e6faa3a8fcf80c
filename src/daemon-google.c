/* SPDX-License-Identifier: MIT */
/* The daemon's Google side: the OAuth token and the port-sheet sync, their
 * health, and alerts to the webhook. */
#include "jada/alert.h"
#include "jada/daemon.h"
#include "jada/log.h"
#include "jada/node.h"
#include "jada/notify.h"
#include "jada/oauth.h"
#include "jada/sync.h"
#include "jada/util.h"

#include <unistd.h>

/* Every alert also goes to the webhook and to [alerts] command, if set. */
void daemon_on_alert(void *userdata, bool recovered, const char *kind, const char *text)
{
        struct jada_ctx *ctx = userdata;
        char host[256] = "";
        _cleanup_free_ char *message = NULL;

        (void)gethostname(host, sizeof host - 1);
        message = xasprintf("jada-agent on %s: %s %s", host, recovered ? "RECOVERED:" : "ALERT:", text);
        if (ctx->alerter)
                alerter_send(ctx->alerter, message);
        notifier_alert(ctx->notifier, recovered, message);
}

/* ---- Google: the token and the port-sheet sync ---------------------------- */

void daemon_oauth_options(const struct jada_config *c, struct oauth_options *o)
{
        *o = (struct oauth_options){
                .auth = c->sheets.auth,
                .token_url = c->sheets.token_url,
                .client_id = c->sheets.client_id,
                .client_secret_file = c->sheets.client_secret_file,
                .state_dir = c->daemon.state_dir,
        };
}

/* The token's state is a health problem (and so an alert) exactly while it
 * needs a person: revoked or expired, never authorized, unusable secrets. */
static void google_token_health(struct jada_ctx *ctx, enum oauth_state state)
{
        const char *why = ctx->oauth ? oauth_last_error(ctx->oauth) : NULL;

        switch (state) {
        case OAUTH_NEEDS_REAUTH:
                health_set_problem(&ctx->health, PROBLEM_GOOGLE_TOKEN,
                                   "Google token revoked or expired (%s): run 'jada-agent auth google'",
                                   why ? why : "refresh refused");
                break;
        case OAUTH_NO_TOKEN:
                health_set_problem(&ctx->health, PROBLEM_GOOGLE_TOKEN,
                                   "no Google token yet: run 'jada-agent auth google'");
                break;
        case OAUTH_BAD_CREDENTIALS:
                health_set_problem(&ctx->health, PROBLEM_GOOGLE_TOKEN, "Google credentials unusable: %s",
                                   why ? why : "see the journal");
                break;
        case OAUTH_OK:
                health_clear_problem(&ctx->health, PROBLEM_GOOGLE_TOKEN);
                break;
        case OAUTH_BACKOFF:
                break; /* transient: the sync's own failures tell if it lasts */
        }
}

static void on_oauth_state(struct oauth *oauth, enum oauth_state old_state, enum oauth_state new_state,
                           void *userdata)
{
        struct jada_ctx *ctx = userdata;

        google_token_health(ctx, new_state);
        daemon_publish(ctx);
}

/* Three failed runs in a row is an alert; a good run clears it. A dead
 * token has its own alert: no second one for the sync it stops. */
static void on_sync_result(struct sync *sync, bool ok, const char *error, void *userdata)
{
        struct jada_ctx *ctx = userdata;
        struct sync_status st;

        sync_get_status(sync, &st);
        if (ok)
                health_clear_problem(&ctx->health, PROBLEM_SYNC);
        else if (st.failing_runs >= 3 && oauth_get_state(ctx->oauth) != OAUTH_NEEDS_REAUTH &&
                 oauth_get_state(ctx->oauth) != OAUTH_NO_TOKEN)
                health_set_problem(&ctx->health, PROBLEM_SYNC, "port-sheet sync failing %u runs in a row: %s",
                                   st.failing_runs, error ? error : "see the journal");
        daemon_publish(ctx);
}

void daemon_google_stop(struct jada_ctx *ctx)
{
        ctx->sync = sync_free(ctx->sync);
        ctx->oauth = oauth_free(ctx->oauth);
        health_clear_problem(&ctx->health, PROBLEM_GOOGLE_TOKEN);
        health_clear_problem(&ctx->health, PROBLEM_SYNC);
}

/* In a fleet, only the node holding the leader's lock syncs the sheet. */
static bool sync_allowed(void *userdata)
{
        struct jada_ctx *ctx = userdata;

        return !*ctx->config->database.url || node_leads(ctx->node);
}

int daemon_google_start(struct jada_ctx *ctx)
{
        struct oauth_options o;
        int r;

        if (!ctx->config->sheets.enabled)
                return 0;
        daemon_oauth_options(ctx->config, &o);
        r = oauth_new(ctx->event, ctx->http, &o, &ctx->oauth);
        if (r < 0)
                return log_error_errno(r, "cannot set up Google authorization");
        oauth_set_state_callback(ctx->oauth, on_oauth_state, ctx);
        google_token_health(ctx, oauth_get_state(ctx->oauth));
        r = sync_new(ctx->event, ctx->db, ctx->http, ctx->oauth, ctx->config, &ctx->sync);
        if (r < 0) {
                daemon_google_stop(ctx);
                return log_error_errno(r, "cannot set up the port-sheet sync");
        }
        sync_set_result_callback(ctx->sync, on_sync_result, ctx);
        sync_set_gate(ctx->sync, sync_allowed, ctx);
        return 0;
}

/* After a reload: on, off, or new settings. The sync keeps a pointer to
 * the config, so this runs after ctx->config was replaced. */
void daemon_google_reconfigure(struct jada_ctx *ctx, bool was_enabled)
{
        struct oauth_options o;

        if (!ctx->config->sheets.enabled) {
                if (was_enabled)
                        log_info("the port-sheet sync is now off");
                daemon_google_stop(ctx);
                return;
        }
        if (!was_enabled || !ctx->oauth) {
                (void)daemon_google_start(ctx);
                return;
        }
        daemon_oauth_options(ctx->config, &o);
        oauth_reload(ctx->oauth, &o);
        sync_set_config(ctx->sync, ctx->config);
}
