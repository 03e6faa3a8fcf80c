/* SPDX-License-Identifier: MIT */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

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
        _PROBLEM_MAX,
};

/* What the daemon tells about itself; derived from facts by the daemon and
 * published to systemd (STATUS=), the journal and the db's health row. */
struct health {
        enum health_state state;
        char status[512];       /* the STATUS= line, worst problem first */
        char problems[_PROBLEM_MAX][192]; /* "" when not current */
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
int health_save(sqlite3 *db, const struct health *health, int64_t pid, uint64_t started_realtime_usec);

/* The problem kinds' names ("api_key", "google_token", ...), for JSON. */
const char *health_problem_name(enum health_problem kind);

/* The health row as the daemon last wrote it. */
struct health_row {
        int64_t pid;
        int64_t started_at, updated_at;         /* UTC seconds */
        char *state;
        char *status;
        char *details;                          /* JSON: {"problems": [{"kind", "text"}]} */
};
/* Returns 0, -ENOENT if the daemon never wrote one, or a negative errno. */
int health_load(sqlite3 *db, struct health_row *ret);
void health_row_clear(struct health_row *row);
