/* SPDX-License-Identifier: MIT */
/*
 * Claims per second and claim latency on a big queue: 100,000 queued tasks
 * (inserted in one transaction: setup, not what is measured), then
 * queue_claim() as the daemon calls it, each in its own BEGIN IMMEDIATE
 * transaction with synchronous=FULL, for the first CLAIMS of them.
 * Prints claims/s and the median, p99 and max latency.
 *
 * usage: claims                 SQLite in a temp dir
 *        claims URL NODES       an empty PostgreSQL database (the fleet's
 *                               schema is made): NODES processes, each with
 *                               its own connection, claim CLAIMS in all
 *                               from one queue, as the nodes of a fleet do
 *                               (each claim its own transaction under the
 *                               fleet's write lock); latency over all claims
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jada/store.h"
#include "jada/store-pg.h"
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

static void report(const char *what, uint64_t *lat, int n, uint64_t total)
{
        qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
        printf("%s: %.0f claims/s; latency median %.2f ms, p99 %.2f ms, max %.2f ms\n", what, n / (total / 1e6),
               lat[n / 2] / 1e3, lat[(size_t)n * 99 / 100] / 1e3, lat[n - 1] / 1e3);
}

/* One node of the PostgreSQL run: waits for the go on start_fd, claims
 * `claims` tasks, writes their latencies to out_fd. */
static int pg_node(const char *url, int index, int claims, int start_fd, int out_fd)
{
        char why[256], name[32], go;
        uint64_t *lat = xcalloc((size_t)claims, sizeof *lat);
        struct store *db;

        if (store_open_postgresql(url, "jada-agent bench", why, sizeof why, &db) < 0) {
                fprintf(stderr, "%s\n", why);
                return 1;
        }
        snprintf(name, sizeof name, "bench-%d", index);
        store_set_node(db, name);
        if (read(start_fd, &go, 1) != 1)
                return 1;
        for (int i = 0; i < claims; i++) {
                struct queue_task *t = NULL;
                uint64_t t0 = now_monotonic_usec();
                if (queue_claim(db, 1, NULL, &t) != 1) {
                        fprintf(stderr, "node %d: claim %d failed\n", index, i);
                        return 1;
                }
                lat[i] = now_monotonic_usec() - t0;
                queue_task_free(t);
        }
        if (write(out_fd, lat, (size_t)claims * sizeof *lat) != (ssize_t)((size_t)claims * sizeof *lat))
                return 1;
        store_close(db);
        return 0;
}

static int pg_bench(const char *url, int nodes)
{
        char why[256], what[160];
        int claims = CLAIMS / nodes, n = claims * nodes, start[2], out[64][2];
        uint64_t *lat = xcalloc((size_t)n, sizeof *lat), total;
        struct store *db;
        pid_t pids[64];

        if (nodes < 1 || nodes > 64 || pipe(start) < 0)
                return 2;
        if (store_open_postgresql(url, "jada-agent bench", why, sizeof why, &db) < 0) {
                fprintf(stderr, "%s\n", why);
                return 1;
        }
        if (store_exec(db, "DELETE FROM task_events; DELETE FROM tasks") < 0 ||
            store_exec(db, "INSERT INTO tasks (title, prompt, state, priority, run_after, created_at, updated_at) "
                           "SELECT 'bench', 'bench task', 'queued', g % 7, 0, 0, 0 "
                           "FROM generate_series(1, 100000) g") < 0 ||
            store_exec(db, "VACUUM ANALYZE tasks") < 0) {
                fprintf(stderr, "setup: %s\n", store_errmsg(db));
                return 1;
        }
        store_close(db);
        for (int i = 0; i < nodes; i++) {
                if (pipe(out[i]) < 0)
                        return 1;
                pids[i] = fork();
                if (pids[i] == 0) {
                        close(start[1]);
                        close(out[i][0]);
                        _exit(pg_node(url, i, claims, start[0], out[i][1]));
                }
                close(out[i][1]);
        }
        close(start[0]);
        sleep(1); /* every node connected */
        total = now_monotonic_usec();
        for (int i = 0; i < nodes; i++)
                if (write(start[1], "g", 1) != 1)
                        return 1;
        for (int i = 0; i < nodes; i++) {
                size_t want = (size_t)claims * sizeof *lat, got = 0;
                char *p = (char *)(lat + (size_t)i * (size_t)claims);
                ssize_t k;
                while (got < want && (k = read(out[i][0], p + got, want - got)) > 0)
                        got += (size_t)k;
                if (got != want) {
                        fprintf(stderr, "node %d ended early\n", i);
                        return 1;
                }
        }
        total = now_monotonic_usec() - total;
        for (int i = 0; i < nodes; i++) {
                int status;
                if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        return 1;
        }
        snprintf(what, sizeof what, "PostgreSQL, %d node%s claiming from a %d-task queue (%d claims)", nodes,
                 nodes == 1 ? "" : "s", TASKS, n);
        report(what, lat, n, total);
        free(lat);
        return 0;
}

int main(int argc, char **argv)
{
        char dir[] = "/tmp/jada-bench-claims-XXXXXX";
        uint64_t *lat = xcalloc(CLAIMS, sizeof *lat), t0, total;
        struct store *db;
        struct store_stmt *st;
        char *path;

        log_setup(LOG_TARGET_STDERR, false);
        log_set_max_priority(LOG_WARNING);
        if (argc == 3)
                return pg_bench(argv[1], atoi(argv[2]));
        if (argc != 1) {
                fprintf(stderr, "usage: claims [POSTGRESQL-URL NODES]\n");
                return 2;
        }
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
        {
                char what[128];
                snprintf(what, sizeof what, "SQLite, claims on a %d-task queue (%d claims, each its own fsynced "
                         "transaction)", TASKS, CLAIMS);
                report(what, lat, CLAIMS, total);
        }

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
