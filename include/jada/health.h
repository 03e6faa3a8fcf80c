/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jada/budget.h"
#include "jada/queue.h"

enum health_state {
        HEALTH_STARTING,
        HEALTH_OK,
        HEALTH_DEGRADED,        /* running, with a problem an operator should fix */
        HEALTH_STOPPING,
};

/* Current problems, worst first: the STATUS= line shows the first one set.
 * Entering and leaving each is an alert: one journal entry each way, with
 * the kind's MESSAGE_ID (systemd/jada-agent.catalog explains it). */
enum health_problem {
        PROBLEM_API_KEY,        /* the API key was rejected: no session starts */
        PROBLEM_GOOGLE_TOKEN,   /* the Google refresh token is dead: run `jada-agent auth google` */
        PROBLEM_CLAUDE_COMMAND, /* the claude command cannot be run */
        PROBLEM_DISK,           /* under 10% free where the state dir is */
        PROBLEM_SYNC,           /* the port-sheet sync failed 3 runs in a row */
        PROBLEM_BUDGET,         /* the day's budget is spent while tasks wait */
        PROBLEM_MAX_TURNS,      /* > 30% of the week's sessions hit the turn limit */
        PROBLEM_NEEDS_YOU,      /* tasks wait for a person */
        PROBLEM_CONFIG_RELOAD,  /* a reload was refused; the old config runs */
        PROBLEM_DATABASE,       /* the db cannot be written */
        PROBLEM_PROJECT,        /* a project's path is missing, not a repository, or not writable */
        PROBLEM_USAGE_LIMIT,    /* a plan's usage limit refused a session: parked until it resets */
        PROBLEM_USAGE_WARNING,  /* a usage limit is nearly used (the CLI said allowed_warning) */
        PROBLEM_WEB,            /* [web] listen is set but the dashboard cannot serve */
        PROBLEM_FLEET_DATABASE, /* [database] url is set but the fleet's database is not usable */
        PROBLEM_NODE_LOST,      /* another node of the fleet missed its heartbeat */
        _PROBLEM_MAX,
};

/* What the daemon tells about itself; derived from facts by the daemon and
 * published to systemd (STATUS=), the journal and the db's health row. */
struct health {
        enum health_state state;
        char status[512];       /* the STATUS= line, worst problem first */
        char problems[_PROBLEM_MAX][192]; /* "" when not current */
        /* The last usage-limit state the CLI reported, and the park: in the
         * health row's details as "usage_limit" (type "" when none seen). */
        struct {
                char type[32], status[24];
                double utilization;     /* < 0: unknown */
                int64_t resets_at;      /* 0: unknown */
                int64_t parked_until;   /* 0: not parked */
        } usage;
        /* Told of every alert after its journal entry (the webhook). */
        void (*on_alert)(void *userdata, bool recovered, const char *kind, const char *text);
        void *alert_userdata;
};

const char *health_state_name(enum health_state state);

/* Sets a problem's text; the first time (not while it stays set) it is
 * also an alert: a journal entry at priority err with the kind's MESSAGE_ID. */
void health_set_problem(struct health *health, enum health_problem kind, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Clears it; if it was set, a recovery entry at priority notice. */
void health_clear_problem(struct health *health, enum health_problem kind);
bool health_has_problem(const struct health *health, enum health_problem kind);
/* The worst current problem, or NULL. */
const char *health_worst_problem(const struct health *health);

/* Keeps the db's one health row current (for `jada-agent status`): the
 * state, the STATUS= text, and the current problems as JSON details. */
int health_save(struct store *db, const struct health *health, int64_t pid, uint64_t started_realtime_usec);

/* The health row's details: {"problems": [{"kind", "text"}], ...}; free() it. */
char *health_details_json(const struct health *health);
/* The problem kinds' names ("api_key", "google_token", ...), for JSON, and
 * back (-EINVAL for a name this binary does not know). */
const char *health_problem_name(enum health_problem kind);
int health_problem_from_name(const char *name);

/* How bad a problem is for `jada-agent status` (the monitoring-plugin
 * verdict), and the one thing to do about it. */
enum health_severity {
        SEVERITY_WARNING = 1,
        SEVERITY_CRITICAL = 2,
};
enum health_severity health_problem_severity(enum health_problem kind);
const char *health_problem_fix(enum health_problem kind);

/*
 * The problems that are states of the world rather than events: the disk,
 * the day's budget, the week's turn-limit share, tasks that need a person.
 * One pure rule for the daemon (which raises and clears them as alerts)
 * and for `jada-agent status` (which works them out from the db itself).
 */
struct health_facts {
        const char *state_dir;
        double disk_free_share;                 /* < 0: unknown */
        int64_t tasks[_TASK_STATE_MAX];
        struct budget_facts budget;
        int64_t week_finished, week_max_turns;  /* counted sessions of the last 7 days */
};
struct health_assessment {
        bool found[_PROBLEM_MAX];               /* only the kinds health_assessed() names */
        enum health_severity severity[_PROBLEM_MAX];
        char text[_PROBLEM_MAX][192];
};
void health_assess(const struct health_facts *facts, struct health_assessment *ret);
/* Whether health_assess() decides this kind (else events raise it). */
bool health_assessed(enum health_problem kind);

/* The health row as the daemon last wrote it. */
struct health_row {
        int64_t pid;
        int64_t started_at, updated_at;         /* UTC seconds */
        char *state;
        char *status;
        char *details;                          /* JSON: {"problems": [{"kind", "text"}]} */
};
/* Returns 0, -ENOENT if the daemon never wrote one, or a negative errno. */
int health_load(struct store *db, struct health_row *ret);
void health_row_clear(struct health_row *row);
