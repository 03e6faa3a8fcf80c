/* SPDX-License-Identifier: MIT */
#pragma once

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * The statement API (store.h) on a fleet's PostgreSQL ([database] url).
 */

struct store;
struct pg;
struct fiber;

/* For the command line: connects (waiting, with connect_timeout) and
 * migrates as the daemon does. NULL and why on failure: -ENOTCONN, or the
 * migration's -EPROTO (a schema newer than this binary) or -EIO. */
int store_open_postgresql(const char *url, const char *application_name, char *why, size_t size,
                          struct store **ret);
/* The same on a connection already made, which the store then owns, and
 * with no migration: for a command that only reads (`nodes`), which must
 * not make a schema no daemon of the fleet has made yet. */
int store_open_postgresql_as_is(PGconn *conn, struct store **ret);

/* For the daemon: statements go through pg (pg.h), and wait on fiber; a
 * statement outside the fiber fails (-EDEADLK) rather than stall the loop.
 * pg and fiber stay the caller's, and must outlive the store. */
int store_open_postgresql_fiber(struct pg *pg, struct fiber *fiber, struct store **ret);

/* The command line's connection, NULL for any other store. */
PGconn *store_pg_conn(struct store *store);

/* ?N to $N outside quotes; *ret_n the highest N, and used[N-1] set for
 * each N named (up to max; used may be NULL). NULL for a bare ?. */
#define STORE_PG_MAX_PARAMS 64
char *store_pg_rewrite(const char *sql, int *ret_n, bool *used, int max);
