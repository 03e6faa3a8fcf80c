/* SPDX-License-Identifier: MIT */
/*
 * Claims per second and claim latency on a big queue: 100,000 queued tasks
 * (inserted in one transaction: setup, not what is measured), then
 * queue_claim() as the daemon calls it, each in its own BEGIN IMMEDIATE
 * transaction with synchronous=FULL, for the first CLAIMS of them.
 * Prints claims/s and the median, p99 and max latency.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jada/store.h"
#include "jada/log.h"
#include "jada/queue.h"
#include "jada/util.h"

#define TASKS 100000
#define CLAIMS 20000

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

int main(void)
{
        char dir[] = "/tmp/jada-bench-claims-XXXXXX";
        uint64_t *lat = xcalloc(CLAIMS, sizeof *lat), t0, total;
        struct store *db;
        struct store_stmt *st;
        char *path;

        log_setup(LOG_TARGET_STDERR, false);
        log_set_max_priority(LOG_WARNING);
        if (!mkdtemp(dir))
                return 1;
        path = xasprintf("%s/jada-agent.db", dir);
        if (store_open(path, &db) < 0)
                return 1;

        store_begin(db);
        store_prepare(db, "INSERT INTO tasks (title, prompt, state, priority, run_after, created_at, updated_at) "
                       "VALUES ('bench', 'bench task', 'queued', ?1 % 7, 0, 0, 0)", &st);
        for (int i = 0; i < TASKS; i++) {
                store_bind_int64(st, 1, i);
                store_step(st);
                store_reset(st);
        }
        store_finalize(st);
        store_commit(db);

        total = now_monotonic_usec();
        for (int i = 0; i < CLAIMS; i++) {
                struct queue_task *t = NULL;
                t0 = now_monotonic_usec();
                if (queue_claim(db, 1, NULL, &t) != 1) {
                        fprintf(stderr, "claim %d failed\n", i);
                        return 1;
                }
                lat[i] = now_monotonic_usec() - t0;
                queue_task_free(t);
        }
        total = now_monotonic_usec() - total;
        qsort(lat, CLAIMS, sizeof *lat, cmp_u64);
        printf("claims on a %d-task queue (%d claims, each its own fsynced transaction): %.0f claims/s; "
               "latency median %.2f ms, p99 %.2f ms, max %.2f ms\n", TASKS, CLAIMS,
               CLAIMS / (total / 1e6), lat[CLAIMS / 2] / 1e3, lat[CLAIMS * 99 / 100] / 1e3, lat[CLAIMS - 1] / 1e3);

        store_close(db);
        unlink(path);
        {
                char *wal = xasprintf("%s-wal", path), *shm = xasprintf("%s-shm", path);
                unlink(wal);
                unlink(shm);
                free(wal);
                free(shm);
        }
        rmdir(dir);
        free(path);
        free(lat);
        return 0;
}
