/* SPDX-License-Identifier: MIT */
/*
 * The statement API (store.h) on a fleet's PostgreSQL. The same SQL text as
 * on SQLite: ?N parameters become $N, integers go as int8 and reals as
 * float8 (typed, so that the server never has to guess), texts as text;
 * every column comes back as text and is read as SQLite would give it
 * (a boolean's t/f as 1/0).
 *
 * Two ways to wait for the server. The command line may: a blocking PGconn.
 * The daemon may not: its store runs on the database fiber (fiber.h), and a
 * statement sent through pg.c yields the fiber until its result is in, the
 * loop running everything else meanwhile.
 */
#include "jada/fiber.h"
#include "jada/log.h"
#include "jada/pg.h"
#include "jada/pg-schema.h"
#include "jada/store-backend.h"
#include "jada/store-pg.h"
#include "jada/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libpq's type OIDs (catalog/pg_type_d.h is server-side). */
#define OID_INT8 20
#define OID_TEXT 25
#define OID_FLOAT8 701

struct pg_store {
        struct store base;
        PGconn *conn;                   /* the command line's, blocking */
        struct pg *pg;                  /* the daemon's, on the fiber */
        struct fiber *fiber;
        bool in_tx;
        int changes;
        char error[512];
};

struct pg_stmt {
        struct store_stmt base;
        char *sql;                      /* with $N */
        int n;                          /* parameters: the highest N */
        char **values;
        Oid *types;
        bool *used;                     /* named in the text */
        PGresult *res;
        int row, rows;
        bool ran;
};

static struct pg_store *pgs(struct store *store)
{
        return (struct pg_store *)store;
}

static struct pg_stmt *pst(struct store_stmt *st)
{
        return (struct pg_stmt *)st;
}

char *store_pg_rewrite(const char *sql, int *ret_n, bool *used, int max)
{
        size_t len = strlen(sql);
        char *out = xmalloc(len + 1), *o = out;
        char quote = 0;
        int n = 0;

        for (const char *p = sql; *p; p++) {
                if (quote) {
                        if (*p == quote)
                                quote = 0;
                        *o++ = *p;
                        continue;
                }
                if (*p == '\'' || *p == '"') {
                        quote = *p;
                        *o++ = *p;
                        continue;
                }
                if (*p == '?' && p[1] >= '1' && p[1] <= '9') {
                        int v = 0;
                        *o++ = '$';
                        while (p[1] >= '0' && p[1] <= '9') {
                                v = v * 10 + (p[1] - '0');
                                *o++ = *++p;
                        }
                        if (v > n)
                                n = v;
                        if (used && v <= max)
                                used[v - 1] = true;
                        continue;
                }
                if (*p == '?') {
                        /* A bare ? has no place in our SQL: refused, not guessed. */
                        free(out);
                        return NULL;
                }
                *o++ = *p;
        }
        *o = '\0';
        *ret_n = n;
        return out;
}

/* What a failed statement means, as db_errno() says it for SQLite. */
static int errno_of_sqlstate(const char *state)
{
        if (!state || !*state)
                return -EIO;
        if (strncmp(state, "23", 2) == 0)
                return -EEXIST;
        if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
                return -EBUSY;
        if (strcmp(state, "57014") == 0)
                return -ETIMEDOUT;
        if (strncmp(state, "53", 2) == 0)
                return -ENOSPC;
        if (strcmp(state, "42501") == 0 || strncmp(state, "28", 2) == 0)
                return -EACCES;
        if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
                return -ENOTCONN;
        return -EIO;
}

static void set_error(struct pg_store *s, const char *message)
{
        snprintf(s->error, sizeof s->error, "%s", message && *message ? message : "unknown error");
        /* libpq's messages end in a newline and may span lines. */
        for (char *c = s->error; *c; c++)
                if (*c == '\n' || *c == '\t')
                        *c = ' ';
        for (size_t l = strlen(s->error); l > 0 && s->error[l - 1] == ' '; l--)
                s->error[l - 1] = '\0';
}

/* A result that came in: its rows' count for store_changes(), or its error. */
static int took(struct pg_store *s, PGresult *res, const char *error, const char *sqlstate, PGresult **ret)
{
        ExecStatusType status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
                const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : sqlstate;
                int r = errno_of_sqlstate(state);
                set_error(s, res ? PQresultErrorMessage(res) : error);
                if (!res && (!state || !*state))
                        r = -ENOTCONN;
                PQclear(res);
                return r;
        }
        const char *tag = PQcmdStatus(res);
        if (strncmp(tag, "INSERT", 6) == 0 || strncmp(tag, "UPDATE", 6) == 0 || strncmp(tag, "DELETE", 6) == 0)
                s->changes = atoi(PQcmdTuples(res));
        *ret = res;
        return 0;
}

struct wait {
        struct pg_store *store;
        PGresult *res;
        char *error;
        char sqlstate[6];
        bool done;
};

static void on_taken(struct pg *pg, PGresult *res, const char *error, const char *sqlstate, void *userdata)
{
        struct wait *w = userdata;

        w->res = res;
        w->error = error ? xstrdup(error) : NULL;
        snprintf(w->sqlstate, sizeof w->sqlstate, "%s", sqlstate ? sqlstate : "");
        w->done = true;
        /* Called at once inside pg_query_take (a send that failed), the
         * fiber is the caller and is not waiting yet. */
        if (!fiber_active(w->store->fiber))
                fiber_resume(w->store->fiber);
}

/* Runs one command (n 0: several statements, simple protocol). */
static int run(struct pg_store *s, const char *sql, int n, const Oid *types, const char *const *values,
               PGresult **ret)
{
        *ret = NULL;
        if (s->conn) {
                PGresult *res = n > 0 ? PQexecParams(s->conn, sql, n, types, values, NULL, NULL, 0)
                                      : PQexec(s->conn, sql);
                if (!res) {
                        set_error(s, PQerrorMessage(s->conn));
                        return -ENOMEM;
                }
                if (PQstatus(s->conn) == CONNECTION_BAD && PQresultStatus(res) == PGRES_FATAL_ERROR) {
                        set_error(s, PQerrorMessage(s->conn));
                        PQclear(res);
                        return -ENOTCONN;
                }
                return took(s, res, NULL, NULL, ret);
        }
        if (!fiber_active(s->fiber)) {
                /* Waiting here would stall the loop: a bug, said as such. */
                set_error(s, "the database was used outside the database fiber");
                log_error("BUG: %s: %.80s", s->error, sql);
                return -EDEADLK;
        }
        struct wait w = { .store = s };
        int r = pg_query_take(s->pg, sql, n, types, values, on_taken, &w);
        if (r < 0) {
                set_error(s, *pg_error(s->pg) ? pg_error(s->pg) : "not connected to the database");
                return -ENOTCONN;
        }
        while (!w.done)
                fiber_yield(s->fiber);
        r = took(s, w.res, w.error, w.sqlstate, ret);
        free(w.error);
        return r;
}

static void pq_close(struct store *store)
{
        struct pg_store *s = pgs(store);

        if (s->conn)
                PQfinish(s->conn);
        free(s);
}

static const char *pq_errmsg(struct store *store)
{
        return pgs(store)->error;
}

static int pq_changes(struct store *store)
{
        return pgs(store)->changes;
}

static bool pq_in_transaction(struct store *store)
{
        return pgs(store)->in_tx;
}

static int pq_exec(struct store *store, const char *sql)
{
        PGresult *res;
        int r = run(pgs(store), sql, 0, NULL, NULL, &res);

        if (r < 0) {
                log_error("database: %s", pgs(store)->error);
                return r;
        }
        PQclear(res);
        return 0;
}

static int pq_prepare(struct store *store, const char *sql, struct store_stmt **ret)
{
        struct pg_stmt *st;
        bool used[STORE_PG_MAX_PARAMS] = { false };
        int n = 0;
        char *text = store_pg_rewrite(sql, &n, used, STORE_PG_MAX_PARAMS);

        *ret = NULL;
        if (text && n > STORE_PG_MAX_PARAMS) {
                text = mfree(text);
                set_error(pgs(store), "a statement with too many parameters");
                log_error("database: %s: %.80s", pgs(store)->error, sql);
                return -E2BIG;
        }
        if (!text) {
                set_error(pgs(store), "a statement with a bare ? parameter");
                log_error("database: %s: %.80s", pgs(store)->error, sql);
                return -EINVAL;
        }
        st = xcalloc(1, sizeof *st);
        st->base.store = store;
        st->sql = text;
        st->n = n;
        if (n > 0) {
                st->values = xcalloc((size_t)n, sizeof *st->values);
                st->types = xcalloc((size_t)n, sizeof *st->types);
                st->used = xcalloc((size_t)n, sizeof *st->used);
                memcpy(st->used, used, (size_t)n * sizeof *used);
        }
        *ret = &st->base;
        return 0;
}

static int pq_bind(struct store_stmt *base, int idx, char type, const char *text, int64_t i, double d)
{
        struct pg_stmt *st = pst(base);

        if (idx < 1 || idx > st->n)
                return -ERANGE;
        idx--;
        st->values[idx] = mfree(st->values[idx]);
        switch (type) {
        case STORE_BIND_INT:
                st->values[idx] = xasprintf("%lld", (long long)i);
                st->types[idx] = OID_INT8;
                break;
        case STORE_BIND_REAL:
                st->values[idx] = xasprintf("%.17g", d);
                st->types[idx] = OID_FLOAT8;
                break;
        case STORE_BIND_TEXT:
                st->values[idx] = xstrdup(text);
                st->types[idx] = OID_TEXT;
                break;
        default:
                /* NULL of no type: the server takes the column's or the cast's. */
                st->types[idx] = 0;
        }
        return 0;
}

static void pq_reset(struct store_stmt *base)
{
        struct pg_stmt *st = pst(base);

        PQclear(st->res);
        st->res = NULL;
        st->ran = false;
        st->row = st->rows = 0;
}

static int pq_step(struct store_stmt *base)
{
        struct pg_stmt *st = pst(base);

        if (!st->ran) {
                /* A parameter the text never names has no type the server
                 * could infer: a NULL text it is. */
                for (int i = 0; i < st->n; i++)
                        if (!st->used[i] && st->types[i] == 0)
                                st->types[i] = OID_TEXT;
                int r = run(pgs(base->store), st->sql, st->n, st->types, (const char *const *)st->values, &st->res);
                if (r < 0)
                        return r;
                st->ran = true;
                st->rows = PQntuples(st->res);
                st->row = 0;
        } else if (st->row < st->rows) {
                st->row++;
        }
        return st->row < st->rows ? STORE_ROW : STORE_DONE;
}

static void pq_finalize(struct store_stmt *base)
{
        struct pg_stmt *st = pst(base);

        PQclear(st->res);
        for (int i = 0; i < st->n; i++)
                free(st->values[i]);
        free(st->values);
        free(st->types);
        free(st->used);
        free(st->sql);
        free(st);
}

static int pq_column_count(struct store_stmt *base)
{
        struct pg_stmt *st = pst(base);
        return st->res ? PQnfields(st->res) : 0;
}

static const char *value(struct pg_stmt *st, int col)
{
        if (!st->res || st->row >= st->rows || col < 0 || col >= PQnfields(st->res) ||
            PQgetisnull(st->res, st->row, col))
                return NULL;
        return PQgetvalue(st->res, st->row, col);
}

static bool pq_column_is_null(struct store_stmt *base, int col)
{
        return value(pst(base), col) == NULL;
}

/* Numbers as SQLite reads them: NULL 0, a boolean 1/0, a numeric cut. */
static double number(const char *v, bool *integral, int64_t *i)
{
        char *end;

        *integral = false;
        if (!v)
                return 0;
        if (strcmp(v, "t") == 0 || strcmp(v, "f") == 0) {
                *integral = true;
                *i = v[0] == 't';
                return (double)*i;
        }
        errno = 0;
        long long ll = strtoll(v, &end, 10);
        if (errno == 0 && *end == '\0') {
                *integral = true;
                *i = ll;
                return (double)ll;
        }
        return strtod(v, NULL);
}

static int64_t pq_column_int64(struct store_stmt *base, int col)
{
        bool integral;
        int64_t i = 0;
        double d = number(value(pst(base), col), &integral, &i);

        return integral ? i : (int64_t)d;
}

static double pq_column_double(struct store_stmt *base, int col)
{
        bool integral;
        int64_t i = 0;

        return number(value(pst(base), col), &integral, &i);
}

static const char *pq_column_text(struct store_stmt *base, int col)
{
        return value(pst(base), col);
}

/* A transaction holds the fleet's write lock to its end, as SQLite's BEGIN
 * IMMEDIATE holds the file's: the queue's logic reads then writes (a
 * task's state, then its move; the budget, then a claim and its session
 * row) and is only right if no other daemon writes in between. The
 * transactions are short, and a node that stalls holding the lock loses
 * it with its connection (idle_in_transaction_session_timeout, and the
 * fleet ends a lost node's connections). */
static int pq_begin(struct store *store)
{
        char sql[128];
        int r;

        snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%d, %d)", PG_LOCK_CLASS, PG_LOCK_WRITE);
        r = pq_exec(store, sql);
        if (r == 0) {
                pgs(store)->in_tx = true;
                return 0;
        }
        /* The BEGIN may have gone through without the lock. */
        PGresult *res;
        if (run(pgs(store), "ROLLBACK", 0, NULL, NULL, &res) == 0)
                PQclear(res);
        return r;
}

static int pq_commit(struct store *store)
{
        struct pg_store *s = pgs(store);
        PGresult *res;
        int r = run(s, "COMMIT", 0, NULL, NULL, &res);

        s->in_tx = false;
        if (r < 0) {
                log_error("database: %s", s->error);
                return r;
        }
        /* A COMMIT of a transaction that failed half-way succeeds, as a
         * ROLLBACK: not a commit. */
        if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
                set_error(s, "the transaction was rolled back");
                r = -EIO;
        }
        PQclear(res);
        return r;
}

static void pq_rollback(struct store *store)
{
        struct pg_store *s = pgs(store);
        PGresult *res;

        if (!s->in_tx)
                return;
        s->in_tx = false;
        if (run(s, "ROLLBACK", 0, NULL, NULL, &res) == 0)
                PQclear(res);
}

static int pq_notify(struct store *store, const char *channel)
{
        _cleanup_free_ char *sql = xasprintf("NOTIFY %s", channel);
        return pq_exec(store, sql);
}

static const struct store_ops pg_ops = {
        .name = "PostgreSQL",
        .close = pq_close,
        .errmsg = pq_errmsg,
        .changes = pq_changes,
        .in_transaction = pq_in_transaction,
        .exec = pq_exec,
        .prepare = pq_prepare,
        .bind = pq_bind,
        .step = pq_step,
        .reset = pq_reset,
        .finalize = pq_finalize,
        .column_count = pq_column_count,
        .column_is_null = pq_column_is_null,
        .column_int64 = pq_column_int64,
        .column_double = pq_column_double,
        .column_text = pq_column_text,
        .begin = pq_begin,
        .commit = pq_commit,
        .rollback = pq_rollback,
        .notify = pq_notify,
};

int store_open_postgresql(const char *url, const char *application_name, char *why, size_t size,
                          struct store **ret)
{
        PGconn *conn = pg_connect_blocking(url, application_name, why, size);
        int r;

        if (!conn)
                return -ENOTCONN;
        r = pg_migrate_blocking(conn, why, size);
        if (r < 0) {
                PQfinish(conn);
                return r;
        }
        return store_open_postgresql_as_is(conn, ret);
}

int store_open_postgresql_as_is(PGconn *conn, struct store **ret)
{
        struct pg_store *s = xcalloc(1, sizeof *s);

        s->base.ops = &pg_ops;
        s->conn = conn;
        *ret = &s->base;
        return 0;
}

int store_open_postgresql_fiber(struct pg *pg, struct fiber *fiber, struct store **ret)
{
        struct pg_store *s = xcalloc(1, sizeof *s);

        s->base.ops = &pg_ops;
        s->pg = pg;
        s->fiber = fiber;
        *ret = &s->base;
        return 0;
}

PGconn *store_pg_conn(struct store *store)
{
        return store->ops == &pg_ops ? pgs(store)->conn : NULL;
}
