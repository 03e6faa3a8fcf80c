/* SPDX-License-Identifier: MIT */
#pragma once

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

struct jada_config;

/*
 * One PostgreSQL connection inside the daemon's sd-event loop, through
 * libpq's asynchronous API only: the connection is made with
 * PQconnectStartParams/PQconnectPoll and queries are sent with
 * PQsendQuery[Params], the socket being an IO source of the loop. Nothing
 * here waits for the server.
 *
 * Queries run one at a time, in the order given. The server stops any
 * statement after statement_timeout; the client gives each query a deadline
 * of its own on top, and TCP keepalives and tcp_user_timeout find a dead
 * peer: a server that stops answering costs a dropped connection, never a
 * stalled loop. A dropped connection fails every query in flight or queued
 * (their callbacks get res NULL and the error), then reconnects with
 * backoff (0.5 s doubling to 10 s).
 *
 * libpq resolves a host name with a blocking getaddrinfo() inside
 * PQconnectPoll: give an address, or a name the local resolver answers at
 * once (/etc/hosts), in [database] url.
 */

struct pg;

/* The daemon's limits on its connections (node.c's and the store's). */
#define PG_STATEMENT_TIMEOUT_USEC (15 * USEC_PER_SEC)
#define PG_QUERY_DEADLINE_USEC    (20 * USEC_PER_SEC)
#define PG_CONNECT_TIMEOUT_USEC   (10 * USEC_PER_SEC)

/* A query's end: res is the last result of its statements (PGRES_TUPLES_OK
 * or PGRES_COMMAND_OK), owned by the caller until the callback returns; on
 * any failure res is NULL and error says why (the server's message, or the
 * connection's). The callback may queue more queries, but not free pg. */
typedef void (*pg_done_fn)(struct pg *pg, const PGresult *res, const char *error, void *userdata);
/* The same, but res is the callback's to PQclear; sqlstate is the error's
 * SQLSTATE ("" if the server gave none; "08006" for a lost connection). */
typedef void (*pg_take_fn)(struct pg *pg, PGresult *res, const char *error, const char *sqlstate, void *userdata);

struct pg_callbacks {
        /* The connection came up (error NULL) or went down (error says why).
         * Queries can be queued from up() on. */
        void (*state)(struct pg *pg, bool up, const char *error, void *userdata);
        /* A NOTIFY on a channel this connection LISTENs on. */
        void (*notify)(struct pg *pg, const char *channel, const char *payload, void *userdata);
        void *userdata;
};

struct pg_options {
        const char *url;                /* [database] url */
        const char *password;           /* NULL: libpq's own ways (PGPASSFILE, a service file) */
        const char *application_name;   /* shown in pg_stat_activity */
        uint64_t statement_timeout;     /* usec, the server's limit per statement */
        uint64_t query_deadline;        /* usec, the client's: no answer by then drops the connection */
        uint64_t connect_timeout;       /* usec */
};

int pg_new(sd_event *loop, const struct pg_options *options, const struct pg_callbacks *callbacks, struct pg **ret);
/* Closes the connection; queued callbacks are dropped, not called. */
struct pg *pg_free(struct pg *pg);

/* Queues a query (params: n text values, NULL for SQL NULL; n 0 allows
 * several statements in sql). -ENOTCONN while the connection is down. */
int pg_query(struct pg *pg, const char *sql, int n, const char *const *params, pg_done_fn done, void *userdata);
/* The same with parameter types (NULL: all text, as PQsendQueryParams
 * takes them), and the result handed over. */
int pg_query_take(struct pg *pg, const char *sql, int n, const Oid *types, const char *const *params,
                  pg_take_fn take, void *userdata);
/* Drops the connection for good (the daemon's stop): every query in flight
 * or queued fails with why, and no reconnect follows. */
void pg_abort(struct pg *pg, const char *why);
/* Sends a last statement without waiting for it (the daemon's stop), then
 * closes: the server runs what it has read before it reads the close. */
void pg_send_and_close(struct pg *pg, const char *sql, int n, const char *const *params);

bool pg_up(const struct pg *pg);
/* Why the connection is down ("" when it is up). */
const char *pg_error(const struct pg *pg);

/* libpq's connection parameters for a URL: the daemon's defaults first (so
 * that the URL can override them), the URL, then the password. The arrays
 * are NULL-terminated; free with pg_conninfo_free. */
struct pg_conninfo {
        const char *keywords[16];
        char *values[16];
};
void pg_conninfo_make(struct pg_conninfo *info, const struct pg_options *options);
void pg_conninfo_free(struct pg_conninfo *info);

/* The credential database-password (LoadCredential=), or NULL. */
char *pg_read_password(void);

/* For the command line, which may wait: a connection made with the same
 * parameters, with connect_timeout; NULL and why on failure. */
PGconn *pg_connect_blocking(const char *url, const char *application_name, char *why, size_t size);
/* Migrates the schema as the daemon does (pg-schema.h), waiting. */
int pg_migrate_blocking(PGconn *conn, char *why, size_t size);
/* A result's one value as int64 (SQL NULL: 0). */
int64_t pg_value_int64(const PGresult *res, int row, int col);
