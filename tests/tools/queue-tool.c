/* SPDX-License-Identifier: MIT */
/* A test tool driving the queue module directly, for tests that need many
 * processes on one db: `queue-tool add DB N` adds N tasks; `queue-tool claim
 * DB` claims until the queue is empty, printing each claimed id as soon as
 * its transaction has committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jada/store.h"
#include "jada/log.h"
#include "jada/queue.h"

int main(int argc, char **argv)
{
        struct store *db = NULL;
        int64_t now = (int64_t)time(NULL);
        int r;

        log_setup(LOG_TARGET_STDERR, false);
        if (argc < 3 || (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "claim") != 0)) {
                fprintf(stderr, "usage: queue-tool add DB N | claim DB\n");
                return 2;
        }
        if (store_open(argv[2], &db) < 0)
                return 1;
        if (strcmp(argv[1], "add") == 0) {
                long n = argc > 3 ? strtol(argv[3], NULL, 10) : 0;
                r = 0;
                for (long i = 0; r == 0 && i < n; i++) {
                        char prompt[64];
                        int64_t id;
                        snprintf(prompt, sizeof prompt, "task %ld", i);
                        r = queue_add(db, &(struct queue_new){ .prompt = prompt, .priority = i % 7, .run_after = now }, now, &id);
                }
        } else {
                struct queue_task *t;
                while ((r = queue_claim(db, now, NULL, &t)) > 0) {
                        printf("%lld\n", (long long)t->id);
                        fflush(stdout);
                        queue_task_free(t);
                }
        }
        store_close(db);
        return r < 0 ? 1 : 0;
}
