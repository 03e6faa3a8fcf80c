/* SPDX-License-Identifier: MIT */
/* The tasks of a fleet's lost nodes (PostgreSQL only): given back to the
 * queue by a node that is alive. */
#include "jada/queue.h"
#include "jada/store.h"
#include "jada/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

void queue_rescued_free(struct queue_rescued *rescued, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(rescued[i].node);
        free(rescued);
}

int queue_rescue_lost(struct store *db, int64_t now, uint64_t lease_seconds, struct queue_rescued **ret, size_t *n)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        struct queue_rescued *rescued = NULL;
        size_t count = 0;
        int r, rc;

        *ret = NULL;
        *n = 0;
        if (!store_is_postgresql(db))
                return 0;
        r = store_begin(db);
        if (r < 0)
                return r;
        /* Lost: silent for longer than the lease by the server's clock (the
         * nodes' clocks may differ), stopped with its tasks still running
         * (its outcomes could not be written), or forgotten. The choice is
         * made once, here: the sessions closed next are these tasks'. A
         * running task without a claimer came from `db copy`. */
        r = store_prepare(db,
                          "SELECT id, claimed_by FROM tasks WHERE state = 'running' "
                          "AND COALESCE(claimed_by, '') <> ?1 AND (claimed_by IS NULL "
                          "  OR claimed_by NOT IN (SELECT name FROM nodes WHERE stopped_at IS NULL "
                          "                        AND heartbeat_at >= extract(epoch from now())::bigint - ?2)) "
                          "ORDER BY id FOR UPDATE",
                          &st);
        if (r < 0)
                goto fail;
        store_bind_text(st, 1, store_node(db));
        store_bind_int64(st, 2, (int64_t)lease_seconds);
        while ((rc = store_step(st)) == STORE_ROW) {
                rescued = xreallocarray(rescued, count + 1, sizeof *rescued);
                rescued[count++] = (struct queue_rescued){
                        .task_id = store_column_int64(st, 0),
                        .node = store_column_is_null(st, 1) ? NULL : xstrdup(store_column_text(st, 1)),
                };
        }
        store_finalizep(&st);
        if (rc != STORE_DONE) {
                r = rc;
                goto fail;
        }
        for (size_t i = 0; i < count; i++) {
                _cleanup_free_ char *reason = xasprintf(
                            "rescued: node %s missed its heartbeat for longer than the lease (%" PRIu64 " s)",
                            rescued[i].node ? rescued[i].node : "(none)", lease_seconds);
                /* Queued (or waiting for its sub-tasks) with its Claude
                 * session id: the next session resumes its conversation. */
                r = queue_transition_locked(db, rescued[i].task_id, TASK_QUEUED,
                                            &(struct queue_change){ .reason = reason,
                                                                    .only_from = 1u << TASK_RUNNING },
                                            now, NULL);
                if (r < 0)
                        goto fail;
        }
        r = store_commit(db);
        if (r < 0)
                goto fail;
        *ret = rescued;
        *n = count;
        return 0;

fail:
        store_rollback(db);
        queue_rescued_free(rescued, count);
        return r;
}
