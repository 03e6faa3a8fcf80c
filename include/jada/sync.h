/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "jada/config.h"

/*
 * The port-sheet sync, on the daemon's own timer: every [sheets] interval
 * (at start-up at once if the last good sync is older than the interval),
 * values.get of spreadsheet_id/range into the port_sheet table (replaced in
 * one transaction, only when the content changed), STATE/port-sheet.json
 * written atomically for the agent sessions to read, and, when
 * progress_range is set, values.update of the queue's progress. A
 * sync_runs row for every run. All HTTP through the http module; 429, 5xx
 * and timeouts retry with min(2^n + jitter, 64 s), honouring Retry-After, a
 * bounded number of times per run; 403/404 fail the run with Google's
 * message. A failed run never touches the data of the last good one.
 */

#define SYNC_PORT_SHEET_FILE "port-sheet.json"

struct http_client;
struct oauth;
struct sync;

struct sync_status {
        bool enabled;
        bool running;                   /* a run is in flight */
        unsigned failing_runs;          /* failed runs in a row; 0 after a good one */
        int64_t last_ok_at;             /* UTC seconds; 0 if never */
        int64_t last_run_at;
        int64_t next_at;                /* when the timer fires next; 0 if disabled */
        long last_http_status;
        char last_error[256];           /* "" after a good run */
};


typedef void (*sync_result_fn)(struct sync *sync, bool ok, const char *error, void *userdata);

int sync_new(sd_event *event, struct store *db, struct http_client *http, struct oauth *oauth,
             const struct jada_config *config, struct sync **ret);
struct sync *sync_free(struct sync *sync);

/* After a reload: takes the new [sheets] settings (the config must outlive
 * the sync until the next call). */
void sync_set_config(struct sync *sync, const struct jada_config *config);
/* A run now (`jada-agent sync --now`), unless one is in flight. */
void sync_run_now(struct sync *sync);
void sync_get_status(const struct sync *sync, struct sync_status *ret);
/* In a fleet only the leader syncs: a run (timed or asked for) starts only
 * while gate says true. NULL: always. */
typedef bool (*sync_gate_fn)(void *userdata);
void sync_set_gate(struct sync *sync, sync_gate_fn gate, void *userdata);
/* Called after every run, good or bad. */
void sync_set_result_callback(struct sync *sync, sync_result_fn fn, void *userdata);

/* For tests: the backoff unit (the "1 s" of min(2^n + jitter, 64 s); the
 * cap scales with it) and every request's timeout. 0 keeps a value. */
void sync_set_timing(struct sync *sync, uint64_t retry_base_usec, uint64_t request_timeout_usec);
