/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include "jada/store.h"
#include <stdbool.h>
#include <stdint.h>

#include "jada/config.h"
#include "jada/health.h"
#include "jada/node.h"
#include "jada/session-store.h"
#include "jada/sync-store.h"
#include "jada/usage.h"

/*
 * The health audit of `jada-agent status` and the dashboard's /api/status:
 * the facts from the db, /proc and the state dir, the verdict (monitoring-
 * plugin codes), and the one JSON document both print.
 */
enum verdict { VERDICT_OK, VERDICT_WARNING, VERDICT_CRITICAL, VERDICT_UNKNOWN };

struct report {
        enum verdict verdict;
        json_t *problems;               /* [{severity, kind, text, fix}] */
};
extern const char *const status_verdict_names[];

/* Everything the audit looks at, gathered once from the db, /proc and the
 * state dir. */
struct status_facts {
        const struct jada_config *config;
        int64_t now;
        struct health_row row;
        int row_r;                      /* health_load()'s answer */
        bool running;
        long rss_kb, anon_kb;
        double cpu_s;
        struct health_facts health;     /* what health_assess() rules on */
        struct session_outcomes week;
        struct sync_history sync;
        int64_t dir_bytes;
        json_t *oauth;                  /* what the token file says */
        struct usage_state usage;       /* the usage-limit gate and last state, as the daemon saved them */
        /* [database] url: the fleet's nodes as the database has them now
         * (the daemon's row says what it saw). */
        bool fleet;
        struct node_row *nodes;
        size_t n_nodes;
        char fleet_error[512];          /* "" when the nodes were read */
};

/* walk_state_dir: also add up the state dir's size (a walk of every
 * worktree and transcript: the command line's, not the loop's, to do). */
void status_gather(const struct jada_config *config, struct store *db, bool walk_state_dir, struct status_facts *f);
void status_facts_clear(struct status_facts *f);
/* The verdict and problems, into rep (rep->problems a JSON array). */
void status_assess(const struct status_facts *f, const char *config_path, struct report *rep);
/* A problem the command line found itself (the fleet's), unless the
 * daemon's row already reported that kind. */
void status_add_health_problem(struct report *rep, enum health_problem kind, const char *text);
/* `status --json`'s document; takes no reference of its own from rep. */
json_t *status_report_json(const struct status_facts *f, const struct report *rep);
