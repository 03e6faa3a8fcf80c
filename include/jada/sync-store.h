/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sheets_values;

/*
 * The sync's tables: sync_runs (one row per run, inserted when it starts
 * with ended_at NULL, completed at its end) and the mirrored port sheet
 * (port_sheet, one row per sheet row, and port_sheet_meta). All of their
 * SQL is here; sync.c decides when, sheets.c what the rows say.
 */

/* When the last good run ended (UTC seconds), 0 if never. */
int sync_store_last_ok_at(struct store *db, int64_t *ret);

/* A run's row. started_at names it when the insert at the start failed
 * (row_id 0): the finish then writes the whole row. */
int sync_store_run_begin(struct store *db, int64_t started_at, int64_t *ret_row_id);
struct sync_store_run_end {
        int64_t row_id;                 /* 0: write the whole row now */
        int64_t started_at, ended_at;
        bool ok, changed;
        size_t rows;
        long http_status;               /* 0: none */
        const char *error;              /* NULL after a good run */
};
int sync_store_run_finish(struct store *db, const struct sync_store_run_end *end);

/* The content hash of the mirrored sheet (64 hex digits), "" if none. */
int sync_store_port_sheet_hash(struct store *db, char ret[65]);

/* Replaces the mirrored sheet whole, in one transaction: its rows (each a
 * JSON object keyed by the columns), the header and the hash. before_commit
 * (may be NULL) runs inside the transaction, last: its failure rolls it
 * all back, so that what it writes elsewhere (port-sheet.json) and the
 * table never disagree. 0 or a negative errno, *what naming the failed part. */
int sync_store_replace_port_sheet(struct store *db, const struct sheets_values *values, const char *hash, int64_t now,
                                  int (*before_commit)(void *userdata), void *userdata, const char **what);

/* What the sync_runs table says, for `jada-agent status` (any process). */
struct sync_history {
        int64_t runs;                   /* all runs recorded */
        int64_t last_run_at;            /* UTC seconds; 0 if never */
        int64_t last_ok_at;
        int64_t failing_runs;           /* failed runs since the last good one */
        long last_http_status;
        char *last_error;               /* NULL if the last run was good */
};
int sync_store_history(struct store *db, struct sync_history *ret);
void sync_history_clear(struct sync_history *history);
