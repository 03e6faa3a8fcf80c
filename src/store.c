/* SPDX-License-Identifier: MIT */
/* The statement API (store.h): what every backend shares, and the dispatch
 * to store-sqlite.c and store-pg.c. */
#include "jada/fiber.h"
#include "jada/log.h"
#include "jada/store-backend.h"
#include "jada/util.h"

#include <errno.h>
#include <stdlib.h>

struct store *store_close(struct store *store)
{
        if (store) {
                free(store->node);
                store->ops->close(store);
        }
        return NULL;
}

void store_set_node(struct store *store, const char *node)
{
        free(store->node);
        store->node = node ? xstrdup(node) : NULL;
}

const char *store_node(const struct store *store)
{
        return store->node;
}

void store_set_fiber(struct store *store, struct fiber *fiber)
{
        store->fiber = fiber;
}

void store_run(struct store *store, fiber_job_fn fn, void *userdata)
{
        if (!store || !store->fiber || fiber_active(store->fiber))
                fn(userdata);
        else
                fiber_run(store->fiber, fn, userdata);
}

struct store_job {
        fiber_job_fn fn;
        void *userdata;
        struct store_job **slot;        /* NULL once cancelled */
};

static void store_job_run(void *userdata)
{
        struct store_job *j = userdata;

        if (j->slot) {
                *j->slot = NULL; /* fn may ask again */
                j->fn(j->userdata);
        }
        free(j);
}

void store_run_once(struct store *store, struct store_job **slot, fiber_job_fn fn, void *userdata)
{
        struct store_job *j;

        if (!store_waits(store)) {
                fn(userdata);
                return;
        }
        if (*slot)
                return; /* already asked for, and not begun */
        j = xcalloc(1, sizeof *j);
        *j = (struct store_job){ .fn = fn, .userdata = userdata, .slot = slot };
        *slot = j;
        fiber_run(store->fiber, store_job_run, j);
}

void store_job_cancel(struct store_job **slot)
{
        if (*slot) {
                (*slot)->slot = NULL;
                *slot = NULL;
        }
}

bool store_waits(const struct store *store)
{
        return store && store->fiber && !fiber_active(store->fiber);
}

bool store_is_postgresql(const struct store *store)
{
        return store->ops->name[0] == 'P';
}

const char *store_errmsg(struct store *store)
{
        return store->ops->errmsg(store);
}

int store_changes(struct store *store)
{
        return store->ops->changes(store);
}

bool store_in_transaction(struct store *store)
{
        return store->depth > 0;
}

int store_exec(struct store *store, const char *sql)
{
        return store->ops->exec(store, sql);
}

int store_prepare(struct store *store, const char *sql, struct store_stmt **ret)
{
        return store->ops->prepare(store, sql, ret);
}

int store_bind_int64(struct store_stmt *st, int idx, int64_t value)
{
        return st->store->ops->bind(st, idx, STORE_BIND_INT, NULL, value, 0);
}

int store_bind_double(struct store_stmt *st, int idx, double value)
{
        return st->store->ops->bind(st, idx, STORE_BIND_REAL, NULL, 0, value);
}

int store_bind_text(struct store_stmt *st, int idx, const char *value)
{
        return st->store->ops->bind(st, idx, value ? STORE_BIND_TEXT : STORE_BIND_NULL, value, 0, 0);
}

int store_bind_null(struct store_stmt *st, int idx)
{
        return st->store->ops->bind(st, idx, STORE_BIND_NULL, NULL, 0, 0);
}

int store_step(struct store_stmt *st)
{
        return st->store->ops->step(st);
}

void store_reset(struct store_stmt *st)
{
        st->store->ops->reset(st);
}

struct store_stmt *store_finalize(struct store_stmt *st)
{
        if (st)
                st->store->ops->finalize(st);
        return NULL;
}

void store_finalizep(struct store_stmt **st)
{
        *st = store_finalize(*st);
}

int store_column_count(struct store_stmt *st)
{
        return st->store->ops->column_count(st);
}

bool store_column_is_null(struct store_stmt *st, int col)
{
        return st->store->ops->column_is_null(st, col);
}

int64_t store_column_int64(struct store_stmt *st, int col)
{
        return st->store->ops->column_int64(st, col);
}

double store_column_double(struct store_stmt *st, int col)
{
        return st->store->ops->column_double(st, col);
}

const char *store_column_text(struct store_stmt *st, int col)
{
        return st->store->ops->column_text(st, col);
}

char *store_column_strdup(struct store_stmt *st, int col)
{
        const char *s = store_column_text(st, col);
        return s ? xstrdup(s) : NULL;
}

int store_step_done(struct store_stmt *st)
{
        struct store *store = st->store;
        int r = store_step(st);

        /* The message before the finalize, which may reset it. */
        if (r != STORE_DONE)
                log_error("database: %s", store_errmsg(store));
        store_finalize(st);
        return r == STORE_DONE ? 0 : r < 0 ? r : -EIO;
}

static int read_one(struct store_stmt *st, bool real, int64_t *ret_int, double *ret_real)
{
        struct store *store = st->store;
        int r = store_step(st);

        if (r == STORE_ROW) {
                if (real)
                        *ret_real = store_column_double(st, 0);
                else
                        *ret_int = store_column_int64(st, 0);
        } else
                log_error("database: %s", r == STORE_DONE ? "a query returned no row" : store_errmsg(store));
        store_finalize(st);
        return r == STORE_ROW ? 0 : r == STORE_DONE ? -ENODATA : r;
}

int store_read_int64(struct store_stmt *st, int64_t *ret)
{
        *ret = 0;
        return read_one(st, false, ret, NULL);
}

int store_read_double(struct store_stmt *st, double *ret)
{
        *ret = 0;
        return read_one(st, true, NULL, ret);
}

/* Transactions nest: an inner begin and commit join the outer one (the
 * claim's, which holds the session's start), and an inner rollback dooms
 * it: the outer commit then rolls back and fails. */
int store_begin(struct store *store)
{
        int r;

        if (store->depth > 0) {
                store->depth++;
                return 0;
        }
        r = store->ops->begin(store);
        if (r == 0) {
                store->depth = 1;
                store->doomed = false;
        }
        return r;
}

int store_commit(struct store *store)
{
        int r;

        if (store->depth > 1) {
                store->depth--;
                return store->doomed ? -EIO : 0;
        }
        if (store->depth == 0)
                return -EINVAL;
        if (store->doomed) {
                store_rollback(store);
                log_error("database: a transaction was rolled back: a part of it failed");
                return -EIO;
        }
        r = store->ops->commit(store);
        /* A failed SQLite COMMIT (busy) leaves the transaction open for a rollback. */
        store->depth = r < 0 && store->ops->in_transaction(store) ? 1 : 0;
        return r;
}

void store_rollback(struct store *store)
{
        if (store->depth > 1) {
                store->depth--;
                store->doomed = true;
                return;
        }
        store->depth = 0;
        store->doomed = false;
        store->ops->rollback(store);
}

int store_notify(struct store *store, const char *channel)
{
        return store->ops->notify(store, channel);
}

int store_transaction(struct store *store, int (*fn)(struct store *store, void *userdata), void *userdata)
{
        int r = store_begin(store);

        if (r < 0)
                return r;
        r = fn(store, userdata);
        if (r >= 0) {
                int c = store_commit(store);
                if (c < 0)
                        r = c;
        }
        if (r < 0)
                store_rollback(store);
        return r;
}
