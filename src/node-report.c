/* SPDX-License-Identifier: MIT */
/* The fleet as the command line shows it: `jada-agent nodes`, and status's fleet part. */
#include "jada/node.h"
#include "jada/config.h"
#include "jada/duration.h"
#include "jada/pg.h"
#include "jada/report.h"
#include "jada/store.h"
#include "jada/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A node's heartbeat age is the server's clock against the server's clock,
 * so that no two machines' clocks are compared. */
static const char nodes_sql[] =
        "SELECT n.name, n.host, n.pid, n.version, n.started_at, extract(epoch from now())::bigint - n.heartbeat_at, "
        "n.stopped_at, n.leader, n.sessions, n.running, h.state, h.status, h.details "
        "FROM nodes n LEFT JOIN health h ON h.node = n.name ORDER BY n.name";

int node_rows_load(struct store *db, struct node_row **ret, size_t *ret_n, char *why, size_t size)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        struct node_row *rows = NULL;
        size_t n = 0;
        int r, rc;

        *ret = NULL;
        *ret_n = 0;
        r = store_prepare(db, nodes_sql, &st);
        if (r < 0) {
                snprintf(why, size, "%s", store_errmsg(db));
                return r;
        }
        while ((rc = store_step(st)) == STORE_ROW) {
                struct node_row *row;
                rows = xreallocarray(rows, n + 2, sizeof *rows);
                row = &rows[n++];
                *row = (struct node_row){
                        .name = xstrdup(store_column_text(st, 0) ?: ""),
                        .host = xstrdup(store_column_text(st, 1) ?: ""),
                        .pid = store_column_int64(st, 2),
                        .version = xstrdup(store_column_text(st, 3) ?: ""),
                        .started_at = store_column_int64(st, 4),
                        .heartbeat_age = store_column_int64(st, 5),
                        .stopped_at = store_column_int64(st, 6),
                        .leader = store_column_int64(st, 7) != 0,
                        .sessions = store_column_int64(st, 8),
                        .running = xstrdup(store_column_text(st, 9) ?: ""),
                        .health_state = xstrdup(store_column_text(st, 10) ?: ""),
                        .status = xstrdup(store_column_text(st, 11) ?: ""),
                        .details = xstrdup(store_column_text(st, 12) ?: "{}"),
                };
        }
        if (rc != STORE_DONE) {
                snprintf(why, size, "%s", store_errmsg(db));
                node_rows_free(rows, n);
                return rc < 0 ? rc : -EIO;
        }
        *ret = rows;
        *ret_n = n;
        return 0;
}

void node_rows_free(struct node_row *rows, size_t n)
{
        for (size_t i = 0; rows && i < n; i++) {
                free(rows[i].name);
                free(rows[i].host);
                free(rows[i].version);
                free(rows[i].running);
                free(rows[i].health_state);
                free(rows[i].status);
                free(rows[i].details);
        }
        free(rows);
}

const char *node_row_state(const struct node_row *row, uint64_t lease)
{
        if (row->stopped_at)
                return "stopped";
        if (row->heartbeat_age * (int64_t)USEC_PER_SEC > (int64_t)lease)
                return "lost";
        return "alive";
}

json_t *node_rows_json(const struct node_row *rows, size_t n, uint64_t lease)
{
        json_t *arr = json_array();

        for (size_t i = 0; i < n; i++) {
                const struct node_row *r = &rows[i];
                json_t *running = json_array();
                _cleanup_free_ char *ids = xstrdup(r->running);
                char *save = NULL;
                for (char *id = strtok_r(ids, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
                        int64_t v;
                        if (parse_int64(id, &v) == 0)
                                json_array_append_new(running, json_integer(v));
                }
                json_t *details = json_loads(r->details, 0, NULL);
                json_t *problems = json_object_get(details, "problems");
                json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:o, s:b, s:I, s:o, s:o, s:o}",
                                                     "name", r->name, "host", r->host, "state",
                                                     node_row_state(r, lease), "pid", (json_int_t)r->pid,
                                                     "version", r->version, "started_at", (json_int_t)r->started_at,
                                                     "heartbeat_age_seconds", (json_int_t)r->heartbeat_age,
                                                     "stopped_at", r->stopped_at ? json_integer(r->stopped_at) : json_null(),
                                                     "leader", r->leader, "sessions", (json_int_t)r->sessions,
                                                     "tasks", running,
                                                     "status", report_text(r->status),
                                                     "problems", json_is_array(problems) ? json_incref(problems)
                                                                                         : json_array()));
                json_decref(details);
        }
        return arr;
}

void node_rows_print(FILE *f, const struct node_row *rows, size_t n, uint64_t lease)
{
        fprintf(f, "%-20s %-20s %-8s %-9s %-14s %8s  %s\n", "NODE", "HOST", "VERSION", "STATE", "HEARTBEAT",
                "SESSIONS", "TASKS");
        for (size_t i = 0; i < n; i++) {
                const struct node_row *r = &rows[i];
                char age[32], beat[48];
                duration_format(age, sizeof age, (uint64_t)(r->heartbeat_age > 0 ? r->heartbeat_age : 0) * USEC_PER_SEC);
                snprintf(beat, sizeof beat, "%s ago", age);
                fprintf(f, "%-20s %-20s %-8s %-9s %-14s %8lld  %s%s\n", r->name, r->host, r->version,
                        node_row_state(r, lease), beat, (long long)r->sessions, *r->running ? r->running : "-",
                        r->leader && !r->stopped_at ? "  (leader)" : "");
                /* What the node last said of itself (its STATUS= line). */
                if (*r->status && !r->stopped_at)
                        fprintf(f, "    %s\n", r->status);
        }
}
