/* SPDX-License-Identifier: MIT */
#pragma once

#include <sqlite3.h>
#include <stdint.h>

enum health_state {
        HEALTH_STARTING,
        HEALTH_OK,
        HEALTH_DEGRADED,        /* running, with a problem an operator should fix */
        HEALTH_STOPPING,
};

/* What the daemon tells about itself; derived from facts by the daemon and
 * published to systemd (STATUS=), the journal and the db's health row. */
struct health {
        enum health_state state;
        char status[512];       /* the STATUS= line, worst problem first */
        char problem[192];      /* the worst current problem, "" if none */
};

const char *health_state_name(enum health_state state);

/* Keeps the db's one health row current (for `jada-agent status`). */
int health_save(sqlite3 *db, const struct health *health, int64_t pid, uint64_t started_realtime_usec);
