/* SPDX-License-Identifier: MIT */
/* This daemon as a node of the fleet: migrate, register, heartbeat, lead (node.h). */
#include "jada/node.h"
#include "jada/config.h"
#include "jada/duration.h"
#include "jada/log.h"
#include "jada/pg-schema.h"
#include "jada/pg.h"
#include "jada/util.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-id128.h>
#include <unistd.h>

/* A statement the server has not finished in this long is stopped there;
 * the client waits a little longer before it gives up the connection. */

#define NOW_SQL "extract(epoch from now())::bigint"

enum node_phase {
        PHASE_DOWN,
        PHASE_MIGRATING,
        PHASE_REGISTERING,
        PHASE_READY,
        PHASE_MIGRATE_AGAIN,    /* the migration failed: tried again at the next heartbeat */
        PHASE_REFUSED,          /* a schema too new: waits for a newer binary */
};

struct node {
        sd_event *loop;
        const struct jada_config *config;
        struct health *health;
        struct node_callbacks callbacks;
        struct pg *pg;
        sd_event_source *timer;
        enum node_phase phase;
        bool leads;
        bool trying_lead;               /* a pg_try_advisory_lock in flight */
        bool beat_in_flight;
        uint64_t beat_ok_monotonic;     /* usec: when the server last took our heartbeat */
        uint64_t ready_monotonic;       /* usec: when this node last registered */
        char write_error[256];          /* the last failure of a write nobody waits for */
        bool migrate_lock_failed;
        char name[64];
        char host[256];
        char incarnation[33];
        int64_t started_at;
};

/* The node's problems, published (STATUS=, the health row) as they change. */
static void node_problem(struct node *node, enum health_problem kind, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void node_problem(struct node *node, enum health_problem kind, const char *fmt, ...)
{
        char text[sizeof node->health->problems[0]];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        if (strcmp(node->health->problems[kind], text) == 0)
                return;
        health_set_problem(node->health, kind, "%s", text);
        if (node->callbacks.health_changed)
                node->callbacks.health_changed(node, node->callbacks.userdata);
}

static void node_problem_clear(struct node *node, enum health_problem kind)
{
        if (!health_has_problem(node->health, kind))
                return;
        health_clear_problem(node->health, kind);
        if (node->callbacks.health_changed)
                node->callbacks.health_changed(node, node->callbacks.userdata);
}

static void set_leads(struct node *node, bool leads)
{
        if (node->leads == leads)
                return;
        node->leads = leads;
        if (leads)
                log_notice("this node (%s) now leads the fleet: it syncs the port sheet", node->name);
        else
                log_notice("this node (%s) no longer leads the fleet", node->name);
        if (node->callbacks.leader)
                node->callbacks.leader(node, leads, node->callbacks.userdata);
}

static const char *pid_text(char *buf, size_t size)
{
        snprintf(buf, size, "%d", (int)getpid());
        return buf;
}

static void query_or_log(struct node *node, const char *sql, int n, const char *const *params, pg_done_fn done)
{
        int r = pg_query(node->pg, sql, n, params, done, node);

        if (r < 0 && r != -ENOTCONN)
                log_error_errno(r, "database: cannot queue a query");
}

/* For the writes whose answer nothing waits for (the health row, the
 * leader's flag, ending a lost node's connections): a failure is logged
 * once, not at every heartbeat, and again when it changes. */
static void on_write_done(struct pg *pg, const PGresult *res, const char *error, void *userdata)
{
        struct node *node = userdata;

        if (res) {
                node->write_error[0] = '\0';
                return;
        }
        if (!pg_up(pg) || strcmp(node->write_error, error) == 0)
                return;
        snprintf(node->write_error, sizeof node->write_error, "%s", error);
        log_warning("database: a write of node %s failed: %s", node->name, error);
}

/* ---- the heartbeat ---- */

static void on_lost_nodes(struct pg *pg, const PGresult *res, const char *error, void *userdata)
{
        struct node *node = userdata;
        char text[192] = "";
        size_t used = 0;
        int n;

        if (!res)
                return;
        n = PQntuples(res);
        int64_t stranded = 0;
        for (int i = 0; i < n; i++)
                stranded += pg_value_int64(res, i, 3);
        for (int i = 0; i < n && used < sizeof text - 1; i++) {
                int w = snprintf(text + used, sizeof text - used, "%snode %s (%s) missed its heartbeat for %" PRId64 " s",
                                 i ? "; " : "", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                                 pg_value_int64(res, i, 2));
                if (w < 0)
                        break;
                used += (size_t)w;
        }
        if (n > 0)
                node_problem(node, PROBLEM_NODE_LOST, "%s", text);
        else
                node_problem_clear(node, PROBLEM_NODE_LOST);
        /* Their tasks wait for a rescue: not until the next poll. */
        if (stranded > 0 && node_judges(node) && node->callbacks.lost)
                node->callbacks.lost(node, node->callbacks.userdata);
}

static void on_lead_try(struct pg *pg, const PGresult *res, const char *error, void *userdata)
{
        struct node *node = userdata;

        node->trying_lead = false;
        if (!res || PQntuples(res) != 1)
                return;
        if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
                const char *params[] = { node->name };
                /* The flag is for people (jada-agent nodes); the lock decides. */
                query_or_log(node, "UPDATE nodes SET leader = (name = $1)", 1, params, on_write_done);
                set_leads(node, true);
        }
}

static void on_beat(struct pg *pg, const PGresult *res, const char *error, void *userdata)
{
        struct node *node = userdata;

        node->beat_in_flight = false;
        if (!res)
                return;
        if (PQntuples(res) > 0)
                node->beat_ok_monotonic = now_monotonic_usec();
        if (PQntuples(res) == 0) {
                /* Another run took our name (or a person deleted the row). */
                log_error("database: node %s's row belongs to another run now: registering again", node->name);
                node->phase = PHASE_REGISTERING;
        }
}

static void do_register(struct node *node);
static void start_migration(struct node *node);

static void beat(struct node *node)
{
        char sessions[16], task_ids[160] = "", pid[16];
        unsigned n = 0;
        char lease[24];

        if (node->phase == PHASE_REGISTERING) {
                do_register(node);
                return;
        }
        if (node->phase == PHASE_MIGRATE_AGAIN) {
                start_migration(node);
                return;
        }
        if (node->phase != PHASE_READY)
                return;
        if (node->callbacks.load)
                node->callbacks.load(node, &n, task_ids, sizeof task_ids, node->callbacks.userdata);
        snprintf(sessions, sizeof sessions, "%u", n);
        pid_text(pid, sizeof pid);
        if (!node->beat_in_flight) {
                const char *params[] = { node->name, node->incarnation, sessions, task_ids, pid };
                node->beat_in_flight = true;
                query_or_log(node,
                             "UPDATE nodes SET heartbeat_at = " NOW_SQL ", sessions = $3, running = $4, pid = $5 "
                             "WHERE name = $1 AND incarnation = $2 RETURNING name",
                             5, params, on_beat);
        }
        /* Its health row: what `jada-agent nodes` shows of each node. */
        {
                _cleanup_free_ char *details = health_details_json(node->health);
                char started[24];
                snprintf(started, sizeof started, "%" PRId64, node->started_at);
                const char *hp[] = { node->name, pid, started, health_state_name(node->health->state),
                                     node->health->status, details };
                query_or_log(node,
                             "INSERT INTO health (node, pid, started_at, updated_at, state, status, details) "
                             "VALUES ($1, $2, $3, " NOW_SQL ", $4, $5, $6) ON CONFLICT (node) DO UPDATE SET "
                             "pid = $2, started_at = $3, updated_at = " NOW_SQL ", state = $4, status = $5, details = $6",
                             6, hp, on_write_done);
        }
        if (!node->leads && !node->trying_lead) {
                char sql[96];
                snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d, %d)", PG_LOCK_CLASS, PG_LOCK_LEADER);
                node->trying_lead = true;
                query_or_log(node, sql, 0, NULL, on_lead_try);
        }
        /* Judge the others only after a lease of our own: when the server
         * comes back after an outage, every heartbeat is old, and the nodes
         * that are alive need a moment (their reconnect) to say so. */
        if (now_monotonic_usec() - node->ready_monotonic < node->config->database.lease)
                return;
        snprintf(lease, sizeof lease, "%" PRIu64, node->config->database.lease / USEC_PER_SEC);
        const char *params[] = { lease };
        /* A node silent past its lease may only be paused (SIGSTOP, a VM
         * frozen), its connection and so its leader's lock alive: end its
         * connections, so that the lock passes on and a node that wakes
         * finds its session gone before it can act on it. */
        query_or_log(node,
                     "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a JOIN nodes n "
                     "ON a.application_name = 'jada-agent node ' || n.name "
                     "WHERE n.stopped_at IS NULL AND n.heartbeat_at < " NOW_SQL " - $1::bigint "
                     "AND a.pid <> pg_backend_pid()",
                     1, params, on_write_done);
        query_or_log(node,
                     "SELECT name, host, " NOW_SQL " - heartbeat_at, "
                     "(SELECT count(*) FROM tasks WHERE state = 'running' AND claimed_by = nodes.name) FROM nodes "
                     "WHERE stopped_at IS NULL AND heartbeat_at < " NOW_SQL " - $1::bigint ORDER BY name",
                     1, params, on_lost_nodes);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct node *node = userdata;

        (void)sd_event_source_set_time_relative(s, config_heartbeat_interval(node->config));
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        beat(node);
        return 0;
}

/* ---- registration ---- */

static void on_registered(struct pg *pg, const PGresult *res, const char *error, void *userdata)
{
        struct node *node = userdata;

        if (!res) {
                if (pg_up(pg))
                        node_problem(node, PROBLEM_FLEET_DATABASE,
                                           "cannot register node %s in the fleet's database: %s", node->name, error);
                return;
        }
        if (PQntuples(res) == 0) {
                /* Retried at each heartbeat: the other node may stop. */
                node->phase = PHASE_REGISTERING;
                node_problem(node, PROBLEM_FLEET_DATABASE,
                                   "node name %s is taken by a live node on another host: set [database] node_name",
                                   node->name);
                return;
        }
        node->phase = PHASE_READY;
        node->beat_ok_monotonic = node->ready_monotonic = now_monotonic_usec();
        log_info("database: node %s registered in the fleet", node->name);
        node_problem_clear(node, PROBLEM_FLEET_DATABASE);
        beat(node);
}

static void do_register(struct node *node)
{
        char pid[16], started[24], lease[24];
        const char *params[] = {
                node->name, node->host, pid_text(pid, sizeof pid), JADA_VERSION, node->incarnation, started, lease,
        };

        snprintf(started, sizeof started, "%" PRId64, node->started_at);
        snprintf(lease, sizeof lease, "%" PRIu64, node->config->database.lease / USEC_PER_SEC);
        /* The name's row is ours if it is free: stopped, on this host (an
         * earlier run of this daemon), or silent for longer than a lease. */
        query_or_log(node,
                     "INSERT INTO nodes (name, host, pid, version, incarnation, started_at, heartbeat_at) "
                     "VALUES ($1, $2, $3, $4, $5, $6, " NOW_SQL ") "
                     "ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, "
                     "version = EXCLUDED.version, incarnation = EXCLUDED.incarnation, "
                     "started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at, stopped_at = NULL, "
                     "leader = false, sessions = 0, running = '' "
                     "WHERE nodes.stopped_at IS NOT NULL OR nodes.host = EXCLUDED.host "
                     "OR nodes.heartbeat_at < EXCLUDED.heartbeat_at - $7::bigint "
                     "RETURNING name",
                     7, params, on_registered);
}

/* ---- migration: lock, read the version, upgrade, unlock ---- */

static void unlock_migration(struct node *node)
{
        char sql[96];

        snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%d, %d)", PG_LOCK_CLASS, PG_LOCK_MIGRATE);
        query_or_log(node, sql, 0, NULL, NULL);
}

static void on_upgraded(struct pg *pg, const PGresult *res, const char *error, void *userdata)
{
        struct node *node = userdata;

        if (!res) {
                if (pg_up(pg)) {
                        node_problem(node, PROBLEM_FLEET_DATABASE,
                                           "cannot migrate the fleet's database: %s", error);
                        node->phase = PHASE_MIGRATE_AGAIN;
                        unlock_migration(node);
                }
                return;
        }
        log_notice("database: migrated the fleet's schema to version %d", pg_schema_version());
        unlock_migration(node);
        node->phase = PHASE_REGISTERING;
        do_register(node);
}

static void on_version(struct pg *pg, const PGresult *res, const char *error, void *userdata)
{
        struct node *node = userdata;
        _cleanup_free_ char *upgrade = NULL;
        int version;

        if (!res)
                return;
        if (node->migrate_lock_failed) {
                /* Without the lock another node may be migrating: later. */
                node->phase = PHASE_MIGRATE_AGAIN;
                return;
        }
        version = (int)pg_value_int64(res, 0, 0);
        if (pg_schema_too_new(version)) {
                node_problem(node, PROBLEM_FLEET_DATABASE,
                                   "the fleet's database has schema version %d, newer than this binary's %d: "
                                   "upgrade jada-agent on this node", version, pg_schema_version());
                node->phase = PHASE_REFUSED;
                unlock_migration(node);
                return;
        }
        upgrade = pg_schema_upgrade_sql(version);
        if (!upgrade) {
                unlock_migration(node);
                node->phase = PHASE_REGISTERING;
                do_register(node);
                return;
        }
        log_info("database: migrating the fleet's schema from version %d to %d", version, pg_schema_version());
        query_or_log(node, upgrade, 0, NULL, on_upgraded);
}

static void on_pg_state(struct pg *pg, bool up, const char *error, void *userdata)
{
        struct node *node = userdata;

        if (!up) {
                node->phase = PHASE_DOWN;
                node->trying_lead = node->beat_in_flight = false;
                /* The lock went with the session. */
                set_leads(node, false);
                node_problem(node, PROBLEM_FLEET_DATABASE, "the fleet's database cannot be reached: %s",
                                   error);
                return;
        }
        log_info("database: connected");
        start_migration(node);
}

static void on_migrate_lock(struct pg *pg, const PGresult *res, const char *error, void *userdata)
{
        struct node *node = userdata;

        if (!res && pg_up(pg)) {
                node->migrate_lock_failed = true;
                node_problem(node, PROBLEM_FLEET_DATABASE, "cannot take the fleet's migration lock: %s", error);
        }
}

static void start_migration(struct node *node)
{
        char sql[96];

        node->phase = PHASE_MIGRATING;
        node->migrate_lock_failed = false;
        /* Waits in the server, not here, while another node migrates (up
         * to the statement timeout, then again at the next heartbeat). */
        snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%d, %d)", PG_LOCK_CLASS, PG_LOCK_MIGRATE);
        query_or_log(node, sql, 0, NULL, on_migrate_lock);
        query_or_log(node, pg_schema_version_sql, 0, NULL, on_version);
}

/* ---- the module's face ---- */

int node_start(sd_event *loop, const struct jada_config *config, struct health *health,
               const struct node_callbacks *callbacks, struct node **ret)
{
        struct node *node = xcalloc(1, sizeof *node);
        _cleanup_free_ char *password = pg_read_password();
        char application[96];
        sd_id128_t id;
        int r;

        node->loop = sd_event_ref(loop);
        node->config = config;
        node->health = health;
        if (callbacks)
                node->callbacks = *callbacks;
        config_node_name(config, node->name, sizeof node->name);
        if (gethostname(node->host, sizeof node->host - 1) < 0)
                snprintf(node->host, sizeof node->host, "unknown");
        node->started_at = now_seconds();
        r = sd_id128_randomize(&id);
        if (r < 0)
                goto fail;
        sd_id128_to_string(id, node->incarnation);

        r = sd_event_add_time_relative(loop, &node->timer, CLOCK_MONOTONIC, config_heartbeat_interval(config),
                                       USEC_PER_SEC / 10, on_timer, node);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(node->timer, "node-heartbeat");

        snprintf(application, sizeof application, "jada-agent node %s", node->name);
        r = pg_new(loop,
                   &(struct pg_options){
                           .url = config->database.url,
                           .password = password,
                           .application_name = application,
                           .statement_timeout = PG_STATEMENT_TIMEOUT_USEC,
                           .query_deadline = PG_QUERY_DEADLINE_USEC,
                           .connect_timeout = PG_CONNECT_TIMEOUT_USEC,
                   },
                   &(struct pg_callbacks){ .state = on_pg_state, .userdata = node }, &node->pg);
        if (password)
                explicit_bzero(password, strlen(password));
        if (r < 0)
                goto fail;
        log_info("database: node %s joins the fleet (lease %" PRIu64 " s, heartbeat every %" PRIu64 " s)", node->name,
                 config->database.lease / USEC_PER_SEC, config_heartbeat_interval(config) / USEC_PER_SEC);
        *ret = node;
        return 0;
fail:
        node_stop(node);
        return r;
}

struct node *node_stop(struct node *node)
{
        if (!node)
                return NULL;
        if (node->pg && node->phase == PHASE_READY) {
                const char *params[] = { node->name, node->incarnation };
                pg_send_and_close(node->pg,
                                  "UPDATE nodes SET stopped_at = " NOW_SQL ", leader = false, sessions = 0, running = '' "
                                  "WHERE name = $1 AND incarnation = $2",
                                  2, params);
        }
        node->pg = pg_free(node->pg);
        node->timer = sd_event_source_disable_unref(node->timer);
        sd_event_unref(node->loop);
        free(node);
        return NULL;
}

void node_set_config(struct node *node, const struct jada_config *config)
{
        node->config = config;
}

/* The lock alone is not enough: a node that was paused past its lease
 * still believes it holds it until it hears from the server, while another
 * node may have ended its connection and taken the lock. A leader whose
 * last heartbeat is older than the lease does not act as one. */
bool node_leads(const struct node *node)
{
        return node && node->leads && node->phase == PHASE_READY &&
               now_monotonic_usec() - node->beat_ok_monotonic < node->config->database.lease;
}

bool node_judges(const struct node *node)
{
        uint64_t now = now_monotonic_usec();

        return node_ready(node) && now - node->ready_monotonic >= node->config->database.lease &&
               now - node->beat_ok_monotonic < node->config->database.lease;
}

bool node_ready(const struct node *node)
{
        return node && node->phase == PHASE_READY;
}

const char *node_name(const struct node *node)
{
        return node->name;
}
