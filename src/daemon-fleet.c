/* SPDX-License-Identifier: MIT */
/*
 * The daemon's store on a fleet's PostgreSQL ([database] url): its own
 * connection (beside the node's heartbeat one), the fiber its store work
 * runs on, the wake-ups by NOTIFY, and an exit that waits for the fiber.
 */
#include "jada/daemon.h"
#include "jada/fiber.h"
#include "jada/log.h"
#include "jada/node.h"
#include "jada/pg.h"
#include "jada/queue.h"
#include "jada/session-store.h"
#include "jada/store-pg.h"
#include "jada/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void on_store_pg_state(struct pg *pg, bool up, const char *error, void *userdata)
{
        struct jada_ctx *ctx = userdata;

        /* Down: the node says so (fleet_database), and every store call
         * fails at once until it is back. */
        if (!up)
                return;
        /* LISTEN is the connection's: again on each new one. */
        if (pg_query(pg, "LISTEN " STORE_CHANNEL_TASKS, 0, NULL, NULL, NULL) < 0)
                log_warning("database: cannot listen for new tasks; polling every interval");
        /* Tasks added while it was down, or the start-up work, wait no longer. */
        daemon_poll_soon(ctx);
}

static void on_store_notify(struct pg *pg, const char *channel, const char *payload, void *userdata)
{
        struct jada_ctx *ctx = userdata;

        log_debug("woken by the fleet: %s", channel);
        daemon_poll_soon(ctx);
}

int daemon_fleet_open(struct jada_ctx *ctx)
{
        _cleanup_free_ char *password = pg_read_password(), *application = NULL;
        char node[64];
        int r;

        config_node_name(ctx->config, node, sizeof node);
        /* The node's name, as its heartbeat's connection: a node found lost
         * has both ended by the others (node.c), which fences its writes. */
        application = xasprintf("jada-agent node %s", node);
        r = fiber_new(&ctx->fiber);
        if (r < 0)
                return r;
        r = pg_new(ctx->event,
                   &(struct pg_options){
                           .url = ctx->config->database.url,
                           .password = password,
                           .application_name = application,
                           .statement_timeout = PG_STATEMENT_TIMEOUT_USEC,
                           .query_deadline = PG_QUERY_DEADLINE_USEC,
                           .connect_timeout = PG_CONNECT_TIMEOUT_USEC,
                   },
                   &(struct pg_callbacks){ .state = on_store_pg_state, .notify = on_store_notify, .userdata = ctx },
                   &ctx->store_pg);
        if (password)
                explicit_bzero(password, strlen(password));
        if (r < 0)
                return log_error_errno(r, "cannot set up the fleet's database");
        r = store_open_postgresql_fiber(ctx->store_pg, ctx->fiber, &ctx->db);
        if (r < 0)
                return r;
        store_set_fiber(ctx->db, ctx->fiber);
        store_set_node(ctx->db, node);
        return 0;
}

struct rescue {
        int64_t now;
        uint64_t lease;                 /* seconds */
        struct queue_rescued *tasks;
        size_t n;
};

static int rescue_in_tx(struct store *db, void *userdata)
{
        struct rescue *rescue = userdata;
        int r = queue_rescue_lost(db, rescue->now, rescue->lease, &rescue->tasks, &rescue->n);

        for (size_t i = 0; r >= 0 && i < rescue->n; i++) {
                _cleanup_free_ char *error = xasprintf("node %s missed its heartbeat for longer than the lease; "
                                                       "the task was queued again",
                                                       rescue->tasks[i].node ? rescue->tasks[i].node : "(none)");
                r = session_store_close_lost(db, rescue->tasks[i].task_id, rescue->tasks[i].node, rescue->now, error);
        }
        return r < 0 ? r : 0;
}

/* On the fiber, from the poll: the running tasks of nodes past their lease
 * go back to the queue, their sessions closed as node_lost. Any live node
 * may do it, one at a time (the fleet's write lock), and each task once
 * (it is running no more). A node that comes back finds its sessions
 * closed, and records nothing over them (session-record.c). */
void daemon_fleet_rescue(struct jada_ctx *ctx)
{
        struct rescue rescue = {
                .now = now_seconds(),
                .lease = ctx->config->database.lease / USEC_PER_SEC,
        };
        int r;

        if (!node_judges(ctx->node))
                return;
        r = store_transaction(ctx->db, rescue_in_tx, &rescue);
        if (r < 0) {
                log_warning_errno(r, "database: cannot rescue the tasks of lost nodes");
                queue_rescued_free(rescue.tasks, rescue.n);
                return;
        }
        for (size_t i = 0; i < rescue.n; i++)
                log_notice("task %lld rescued from node %s, which missed its heartbeat for longer than the lease "
                           "(%" PRIu64 " s): queued again, its session recorded as node_lost",
                           (long long)rescue.tasks[i].task_id, rescue.tasks[i].node ? rescue.tasks[i].node : "(none)",
                           rescue.lease);
        queue_rescued_free(rescue.tasks, rescue.n);
}

void daemon_fleet_close(struct jada_ctx *ctx)
{
        ctx->exit_check = sd_event_source_disable_unref(ctx->exit_check);
        ctx->exit_soon = sd_event_source_disable_unref(ctx->exit_soon);
        ctx->db = store_close(ctx->db);
        ctx->store_pg = pg_free(ctx->store_pg);
        ctx->fiber = fiber_free(ctx->fiber);
}

/* The loop ends once the fiber has no work left: a job stopped half-way
 * would leave its transaction, and what its frames hold. Checked after
 * each round of the loop that dispatched anything. */
static int on_exit_check(sd_event_source *s, void *userdata)
{
        struct jada_ctx *ctx = userdata;

        if (!fiber_busy(ctx->fiber))
                (void)sd_event_exit(ctx->event, 0);
        return 0;
}

void daemon_exit(struct jada_ctx *ctx)
{
        /* Called from the fiber's last job, which is about to end. */
        if (!ctx->fiber || (!fiber_busy(ctx->fiber) && !fiber_active(ctx->fiber))) {
                (void)sd_event_exit(ctx->event, 0);
                return;
        }
        /* Next round (the job ends first), and after each round that
         * dispatched anything until the fiber is idle. */
        if (!ctx->exit_check &&
            (sd_event_add_defer(ctx->event, &ctx->exit_soon, on_exit_check, ctx) < 0 ||
             sd_event_add_post(ctx->event, &ctx->exit_check, on_exit_check, ctx) < 0))
                (void)sd_event_exit(ctx->event, 0);
}
