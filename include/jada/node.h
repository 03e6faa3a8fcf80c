/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <systemd/sd-event.h>

#include "jada/health.h"

struct store;

struct jada_config;

/*
 * This daemon as a node of a fleet ([database] url): its connection to the
 * shared PostgreSQL database (pg.h), the schema's migration when it comes
 * up, its row in the table nodes and the heartbeat that keeps it fresh, the
 * leadership (a session-level advisory lock: the leader syncs the port
 * sheet), and a watch on the other nodes' heartbeats.
 *
 *   connected ─► migrate (advisory lock PG_LOCK_MIGRATE) ─► register ─► heartbeat every
 *   config_heartbeat_interval(): write ours, try the leader's lock if we lack it,
 *   look for nodes whose heartbeat is older than [database] lease
 *
 * A node keeps its name's row while it lives: registering under a name
 * another host's live node holds is refused (the fleet_database problem),
 * and each run has an incarnation of its own, so that a heartbeat of a run
 * that was replaced finds no row and says so.
 *
 * The health problems fleet_database and node_lost are set and cleared
 * here. Nothing here waits for the server.
 */

struct node;

struct node_callbacks {
        /* This node became the leader (true) or lost it (false). */
        void (*leader)(struct node *node, bool leads, void *userdata);
        /* For the heartbeat: the sessions this node runs and their task ids
         * as text ("3,17"). */
        void (*load)(struct node *node, unsigned *sessions, char *task_ids, size_t size, void *userdata);
        /* Nodes past their lease hold running tasks: time for a rescue. */
        void (*lost)(struct node *node, void *userdata);
        /* A health problem of the node's was set or cleared: publish it. */
        void (*health_changed)(struct node *node, void *userdata);
        void *userdata;
};

int node_start(sd_event *loop, const struct jada_config *config, struct health *health,
               const struct node_callbacks *callbacks, struct node **ret);
/* The daemon stops: marks the row stopped without waiting, and closes. */
struct node *node_stop(struct node *node);
/* After a reload (the lease may change; the URL and the name take a restart). */
void node_set_config(struct node *node, const struct jada_config *config);

bool node_leads(const struct node *node);
/* Registered and heartbeating. */
bool node_ready(const struct node *node);
/* May declare other nodes lost: registered for a lease at least (after an
 * outage every heartbeat is old, and the live nodes need a moment to say
 * so), and its own heartbeat younger than a lease (a node that was paused
 * does not judge before it has been heard again). */
bool node_judges(const struct node *node);
const char *node_name(const struct node *node);

/* The fleet as the command line reads it (node-report.c). */
struct node_row {
        char *name, *host, *version;
        int64_t pid;
        int64_t started_at;             /* UTC seconds */
        int64_t heartbeat_age;          /* seconds, by the server's clock */
        int64_t stopped_at;             /* 0: not stopped cleanly */
        bool leader;
        int64_t sessions;
        char *running;                  /* task ids, "3,17" */
        char *health_state, *status;    /* its health row ("" if none yet) */
        char *details;                  /* JSON, as health_details_json() */
};
int node_rows_load(struct store *db, struct node_row **ret, size_t *n, char *why, size_t size);
void node_rows_free(struct node_row *rows, size_t n);
/* "alive", "lost" (heartbeat older than the lease) or "stopped". */
const char *node_row_state(const struct node_row *row, uint64_t lease);
json_t *node_rows_json(const struct node_row *rows, size_t n, uint64_t lease);
void node_rows_print(FILE *f, const struct node_row *rows, size_t n, uint64_t lease);
