/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * What a backend of the statement API (store.h) provides: store.c checks
 * and dispatches, store-sqlite.c and store-pg.c execute. A backend's own
 * structs begin with struct store / struct store_stmt.
 */

struct store_ops {
        const char *name;
        void (*close)(struct store *store);
        const char *(*errmsg)(struct store *store);
        int (*changes)(struct store *store);
        bool (*in_transaction)(struct store *store);
        int (*exec)(struct store *store, const char *sql);
        int (*prepare)(struct store *store, const char *sql, struct store_stmt **ret);
        /* value NULL binds SQL NULL; type says how the text is meant. */
        int (*bind)(struct store_stmt *st, int idx, char type, const char *text, int64_t i, double d);
        int (*step)(struct store_stmt *st);
        void (*reset)(struct store_stmt *st);
        void (*finalize)(struct store_stmt *st);
        int (*column_count)(struct store_stmt *st);
        bool (*column_is_null)(struct store_stmt *st, int col);
        int64_t (*column_int64)(struct store_stmt *st, int col);
        double (*column_double)(struct store_stmt *st, int col);
        const char *(*column_text)(struct store_stmt *st, int col);
        int (*begin)(struct store *store);
        int (*commit)(struct store *store);
        void (*rollback)(struct store *store);
        int (*notify)(struct store *store, const char *channel);
};

/* Parameter kinds given to bind. */
enum {
        STORE_BIND_NULL = 'n',
        STORE_BIND_INT = 'i',
        STORE_BIND_REAL = 'r',
        STORE_BIND_TEXT = 't',
};

struct store {
        const struct store_ops *ops;
        char *node;                     /* store_node() */
        struct fiber *fiber;            /* store_run()'s, or NULL: at once */
        unsigned depth;                 /* nested store_begin()s */
        bool doomed;                    /* an inner level rolled back */
};

struct store_stmt {
        struct store *store;
};
