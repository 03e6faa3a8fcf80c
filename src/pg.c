/* SPDX-License-Identifier: MIT */
/* One PostgreSQL connection in the loop, through libpq's asynchronous API (pg.h). */
#include "jada/pg.h"
#include "jada/pg-schema.h"
#include "jada/duration.h"
#include "jada/log.h"
#include "jada/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define RETRY_FIRST_USEC (USEC_PER_SEC / 2)
#define RETRY_MAX_USEC   (10 * USEC_PER_SEC)
#define PASSWORD_MAX     1024

struct pg_query {
        struct pg_query *next;
        char *sql;
        int n;
        char **params;
        Oid *types;                     /* NULL: all text */
        pg_done_fn done;
        pg_take_fn take;                /* instead of done: the result is the callback's */
        void *userdata;
};

enum pg_state {
        PG_DOWN,
        PG_CONNECTING,
        PG_UP,
};

struct pg {
        sd_event *loop;
        struct pg_options options;      /* strings owned */
        struct pg_callbacks callbacks;
        PGconn *conn;
        enum pg_state state;
        int fd;
        sd_event_source *io, *deadline, *retry;
        struct pg_query *head, *tail;   /* head is in flight once sent */
        bool sent;
        PGresult *result;               /* the head's last result so far */
        char *failure;                  /* the head's first error so far */
        char failure_state[6];          /* and its SQLSTATE ("" if none) */
        unsigned failures;              /* connection attempts that failed in a row */
        char error[512];
};

static void query_free(struct pg_query *q)
{
        if (!q)
                return;
        for (int i = 0; i < q->n; i++)
                free(q->params[i]);
        free(q->params);
        free(q->types);
        free(q->sql);
        free(q);
}

/* libpq's messages span lines ("...failed: X\n\tIs the server running
 * ...?\n"); a journal line and STATUS= want one. */
static void one_line(char *s)
{
        char *out = s;
        size_t n;

        for (const char *in = s; *in; in++) {
                if (*in == '\n' || *in == '\t' || *in == '\r') {
                        if (out > s && out[-1] != ' ')
                                *out++ = ' ';
                } else
                        *out++ = *in;
        }
        *out = '\0';
        n = strlen(s);
        while (n > 0 && s[n - 1] == ' ')
                s[--n] = '\0';
}

static void set_error(struct pg *pg, const char *prefix, const char *message)
{
        snprintf(pg->error, sizeof pg->error, "%s%s", prefix, message ? message : "");
        one_line(pg->error);
}

/* The server's notices (NOTICE, and the FATAL of a shutdown) would go to
 * stderr by default; they are the journal's, once, at debug. */
static void on_notice(void *userdata, const char *message)
{
        char line[512];

        snprintf(line, sizeof line, "%s", message);
        one_line(line);
        log_debug("database: %s", line);
}

void pg_conninfo_make(struct pg_conninfo *info, const struct pg_options *o)
{
        size_t i = 0;

        memset(info, 0, sizeof *info);
#define ADD(k, v) (info->keywords[i] = (k), info->values[i] = (v), i++)
        /* Before the URL, so that it may say otherwise. */
        ADD("connect_timeout", xasprintf("%" PRIu64, (o->connect_timeout + USEC_PER_SEC - 1) / USEC_PER_SEC));
        ADD("keepalives", xstrdup("1"));
        ADD("keepalives_idle", xstrdup("10"));
        ADD("keepalives_interval", xstrdup("5"));
        ADD("keepalives_count", xstrdup("3"));
        /* Unacknowledged data this long means the peer is gone (ms). */
        ADD("tcp_user_timeout", xstrdup("30000"));
        ADD("application_name", xstrdup(o->application_name ? o->application_name : "jada-agent"));
        ADD("options", xasprintf("-c statement_timeout=%" PRIu64 " -c idle_in_transaction_session_timeout=%" PRIu64,
                                 o->statement_timeout / 1000, 4 * o->statement_timeout / 1000));
        ADD("dbname", xstrdup(o->url));
        if (o->password)
                ADD("password", xstrdup(o->password));
#undef ADD
        info->keywords[i] = NULL;
        info->values[i] = NULL;
}

void pg_conninfo_free(struct pg_conninfo *info)
{
        for (size_t i = 0; info->keywords[i]; i++) {
                if (strcmp(info->keywords[i], "password") == 0)
                        explicit_bzero(info->values[i], strlen(info->values[i]));
                free(info->values[i]);
        }
        memset(info, 0, sizeof *info);
}

char *pg_read_password(void)
{
        _cleanup_free_ char *path = credential_path("database-password");
        char *data = NULL;
        size_t size = 0, n;

        if (!path)
                return NULL;
        if (read_file_capped(path, PASSWORD_MAX, &data, &size) < 0)
                return NULL;
        n = strlen(data);
        while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
                data[--n] = '\0';
        return data;
}

static void schedule_retry(struct pg *pg);
static int connect_start(struct pg *pg);

static void query_done(struct pg *pg, struct pg_query *q, PGresult **res, const char *error, const char *sqlstate)
{
        if (q->take) {
                q->take(pg, *res, error, sqlstate ? sqlstate : "", q->userdata);
                *res = NULL;
        } else if (q->done) {
                q->done(pg, *res, error, q->userdata);
        }
}

/* Ends the head query: its callback, then the next query is sent. */
static void finish_head(struct pg *pg, PGresult **res, const char *error, const char *sqlstate)
{
        struct pg_query *q = pg->head;

        pg->head = q->next;
        if (!pg->head)
                pg->tail = NULL;
        pg->sent = false;
        query_done(pg, q, res, error, sqlstate);
        query_free(q);
}

static void drop_connection(struct pg *pg, const char *why)
{
        struct pg_query *q;

        /* One warning per streak of failed attempts; the retries at debug. */
        if (pg->state == PG_UP || pg->failures <= 1)
                log_warning("database: %s", why);
        else
                log_debug("database: %s", why);
        if (why != pg->error)
                set_error(pg, "", why);
        pg->io = sd_event_source_disable_unref(pg->io);
        pg->deadline = sd_event_source_disable_unref(pg->deadline);
        if (pg->conn)
                PQfinish(pg->conn);
        pg->conn = NULL;
        pg->fd = -1;
        PQclear(pg->result);
        pg->result = NULL;
        free(pg->failure);
        pg->failure = NULL;
        bool was_up = pg->state == PG_UP;
        pg->state = PG_DOWN;
        /* Detached first: a callback that queues gets -ENOTCONN. */
        q = pg->head;
        pg->head = pg->tail = NULL;
        pg->sent = false;
        while (q) {
                struct pg_query *next = q->next;
                PGresult *none = NULL;
                query_done(pg, q, &none, pg->error, "08006");
                query_free(q);
                q = next;
        }
        schedule_retry(pg);
        if (pg->callbacks.state && (was_up || pg->failures == 1))
                pg->callbacks.state(pg, false, pg->error, pg->callbacks.userdata);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct pg *pg = userdata;
        char why[128];

        snprintf(why, sizeof why, "the server did not answer within %s",
                 pg->state == PG_CONNECTING ? "connect_timeout" : "the query's deadline");
        if (pg->state == PG_CONNECTING)
                pg->failures++;
        drop_connection(pg, why);
        return 0;
}

static int arm_deadline(struct pg *pg, uint64_t usec)
{
        pg->deadline = sd_event_source_disable_unref(pg->deadline);
        return sd_event_add_time_relative(pg->loop, &pg->deadline, CLOCK_MONOTONIC, usec, USEC_PER_SEC / 10,
                                          on_deadline, pg);
}

static int watch(struct pg *pg, uint32_t events);

static int send_head(struct pg *pg)
{
        struct pg_query *q = pg->head;
        int ok, r;

        if (!q || pg->sent || pg->state != PG_UP)
                return 0;
        if (q->n == 0)
                ok = PQsendQuery(pg->conn, q->sql);
        else
                ok = PQsendQueryParams(pg->conn, q->sql, q->n, q->types, (const char *const *)q->params, NULL, NULL, 0);
        if (!ok) {
                set_error(pg, "", PQerrorMessage(pg->conn));
                drop_connection(pg, pg->error);
                return -EIO;
        }
        pg->sent = true;
        r = arm_deadline(pg, pg->options.query_deadline);
        if (r < 0)
                return r;
        /* 1: more to send when the socket can take it. */
        r = PQflush(pg->conn);
        if (r < 0) {
                set_error(pg, "", PQerrorMessage(pg->conn));
                drop_connection(pg, pg->error);
                return -EIO;
        }
        return watch(pg, r == 1 ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* The head's results, as far as they have come; then notifications. */
static void read_results(struct pg *pg)
{
        PGnotify *n;

        if (!PQconsumeInput(pg->conn)) {
                set_error(pg, "", PQerrorMessage(pg->conn));
                drop_connection(pg, pg->error);
                return;
        }
        while (pg->sent && !PQisBusy(pg->conn)) {
                PGresult *res = PQgetResult(pg->conn);
                if (!res) {
                        /* All of the head's statements are in. */
                        PGresult *last = pg->result, *none = NULL;
                        char *failure = pg->failure, state[6];
                        memcpy(state, pg->failure_state, sizeof state);
                        pg->result = NULL;
                        pg->failure = NULL;
                        pg->deadline = sd_event_source_disable_unref(pg->deadline);
                        finish_head(pg, failure ? &none : &last, failure, failure ? state : "");
                        PQclear(last);
                        free(failure);
                        if (pg->state != PG_UP)
                                return;
                        if (send_head(pg) < 0)
                                return;
                        continue;
                }
                switch (PQresultStatus(res)) {
                case PGRES_TUPLES_OK:
                case PGRES_COMMAND_OK:
                case PGRES_EMPTY_QUERY:
                        PQclear(pg->result);
                        pg->result = res;
                        break;
                default:
                        if (!pg->failure) {
                                const char *m = PQresultErrorMessage(res);
                                const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                                pg->failure = xstrdup(*m ? m : PQresStatus(PQresultStatus(res)));
                                one_line(pg->failure);
                                snprintf(pg->failure_state, sizeof pg->failure_state, "%s", code ? code : "");
                        }
                        PQclear(res);
                }
        }
        while (pg->state == PG_UP && (n = PQnotifies(pg->conn))) {
                if (pg->callbacks.notify)
                        pg->callbacks.notify(pg, n->relname, n->extra, pg->callbacks.userdata);
                PQfreemem(n);
        }
}

static void connected(struct pg *pg)
{
        pg->state = PG_UP;
        pg->failures = 0;
        pg->error[0] = '\0';
        pg->deadline = sd_event_source_disable_unref(pg->deadline);
        if (PQsetnonblocking(pg->conn, 1) < 0) {
                set_error(pg, "", PQerrorMessage(pg->conn));
                drop_connection(pg, pg->error);
                return;
        }
        (void)watch(pg, EPOLLIN);
        if (pg->callbacks.state)
                pg->callbacks.state(pg, true, NULL, pg->callbacks.userdata);
}

static void poll_connect(struct pg *pg)
{
        switch (PQconnectPoll(pg->conn)) {
        case PGRES_POLLING_READING:
                (void)watch(pg, EPOLLIN);
                return;
        case PGRES_POLLING_WRITING:
                (void)watch(pg, EPOLLOUT);
                return;
        case PGRES_POLLING_OK:
                connected(pg);
                return;
        default:
                pg->failures++;
                set_error(pg, "cannot connect: ", PQerrorMessage(pg->conn));
                drop_connection(pg, pg->error);
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct pg *pg = userdata;

        if (pg->state == PG_CONNECTING) {
                poll_connect(pg);
                return 0;
        }
        if (revents & EPOLLOUT) {
                int r = PQflush(pg->conn);
                if (r < 0) {
                        set_error(pg, "", PQerrorMessage(pg->conn));
                        drop_connection(pg, pg->error);
                        return 0;
                }
                if (r == 0)
                        (void)watch(pg, EPOLLIN);
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                read_results(pg);
        return 0;
}

/* The socket can change while connecting (libpq tries each address). */
static int watch(struct pg *pg, uint32_t events)
{
        int fd = PQsocket(pg->conn), r;

        if (fd < 0) {
                set_error(pg, "", "the connection has no socket");
                drop_connection(pg, pg->error);
                return -EBADF;
        }
        if (pg->io && fd == pg->fd)
                return sd_event_source_set_io_events(pg->io, events);
        pg->io = sd_event_source_disable_unref(pg->io);
        pg->fd = fd;
        r = sd_event_add_io(pg->loop, &pg->io, fd, events, on_io, pg);
        if (r < 0) {
                set_error(pg, "", strerror(-r));
                drop_connection(pg, pg->error);
                return r;
        }
        (void)sd_event_source_set_description(pg->io, "pg-io");
        return 0;
}

static int connect_start(struct pg *pg)
{
        struct pg_conninfo info;

        pg_conninfo_make(&info, &pg->options);
        pg->conn = PQconnectStartParams(info.keywords, (const char *const *)info.values, 1);
        pg_conninfo_free(&info);
        if (!pg->conn)
                return -ENOMEM;
        if (PQstatus(pg->conn) == CONNECTION_BAD) {
                pg->failures++;
                set_error(pg, "cannot connect: ", PQerrorMessage(pg->conn));
                drop_connection(pg, pg->error);
                return 0;
        }
        PQsetNoticeProcessor(pg->conn, on_notice, pg);
        pg->state = PG_CONNECTING;
        (void)arm_deadline(pg, pg->options.connect_timeout);
        /* PQconnectStart's first wait is for the socket to be writable. */
        return watch(pg, EPOLLOUT);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct pg *pg = userdata;

        pg->retry = sd_event_source_disable_unref(pg->retry);
        if (connect_start(pg) < 0)
                schedule_retry(pg);
        return 0;
}

static void schedule_retry(struct pg *pg)
{
        uint64_t delay = RETRY_FIRST_USEC;

        for (unsigned i = 1; i < pg->failures && delay < RETRY_MAX_USEC; i++)
                delay *= 2;
        if (delay > RETRY_MAX_USEC)
                delay = RETRY_MAX_USEC;
        pg->retry = sd_event_source_disable_unref(pg->retry);
        if (sd_event_add_time_relative(pg->loop, &pg->retry, CLOCK_MONOTONIC, delay, USEC_PER_SEC / 10, on_retry,
                                       pg) >= 0)
                (void)sd_event_source_set_description(pg->retry, "pg-retry");
}

int pg_new(sd_event *loop, const struct pg_options *options, const struct pg_callbacks *callbacks, struct pg **ret)
{
        struct pg *pg = xcalloc(1, sizeof *pg);
        int r;

        pg->loop = sd_event_ref(loop);
        pg->options = *options;
        pg->options.url = xstrdup(options->url);
        pg->options.password = options->password ? xstrdup(options->password) : NULL;
        pg->options.application_name = xstrdup(options->application_name ? options->application_name : "jada-agent");
        if (callbacks)
                pg->callbacks = *callbacks;
        pg->fd = -1;
        r = connect_start(pg);
        if (r < 0) {
                pg_free(pg);
                return r;
        }
        *ret = pg;
        return 0;
}

struct pg *pg_free(struct pg *pg)
{
        struct pg_query *q;

        if (!pg)
                return NULL;
        pg->io = sd_event_source_disable_unref(pg->io);
        pg->deadline = sd_event_source_disable_unref(pg->deadline);
        pg->retry = sd_event_source_disable_unref(pg->retry);
        if (pg->conn)
                PQfinish(pg->conn);
        PQclear(pg->result);
        free(pg->failure);
        for (q = pg->head; q;) {
                struct pg_query *next = q->next;
                query_free(q);
                q = next;
        }
        if (pg->options.password)
                explicit_bzero((char *)pg->options.password, strlen(pg->options.password));
        free((char *)pg->options.url);
        free((char *)pg->options.password);
        free((char *)pg->options.application_name);
        sd_event_unref(pg->loop);
        free(pg);
        return NULL;
}

static int queue_query(struct pg *pg, const char *sql, int n, const Oid *types, const char *const *params,
                       pg_done_fn done, pg_take_fn take, void *userdata)
{
        struct pg_query *q;

        if (pg->state != PG_UP)
                return -ENOTCONN;
        q = xcalloc(1, sizeof *q);
        q->sql = xstrdup(sql);
        q->n = n;
        if (n > 0) {
                q->params = xcalloc((size_t)n, sizeof *q->params);
                for (int i = 0; i < n; i++)
                        q->params[i] = params[i] ? xstrdup(params[i]) : NULL;
                if (types) {
                        q->types = xcalloc((size_t)n, sizeof *q->types);
                        memcpy(q->types, types, (size_t)n * sizeof *types);
                }
        }
        q->done = done;
        q->take = take;
        q->userdata = userdata;
        if (pg->tail)
                pg->tail->next = q;
        else
                pg->head = q;
        pg->tail = q;
        (void)send_head(pg);
        return 0;
}

int pg_query(struct pg *pg, const char *sql, int n, const char *const *params, pg_done_fn done, void *userdata)
{
        return queue_query(pg, sql, n, NULL, params, done, NULL, userdata);
}

int pg_query_take(struct pg *pg, const char *sql, int n, const Oid *types, const char *const *params,
                  pg_take_fn take, void *userdata)
{
        return queue_query(pg, sql, n, types, params, NULL, take, userdata);
}

void pg_abort(struct pg *pg, const char *why)
{
        if (pg->state != PG_DOWN || pg->head)
                drop_connection(pg, why);
        pg->retry = sd_event_source_disable_unref(pg->retry);
}

void pg_send_and_close(struct pg *pg, const char *sql, int n, const char *const *params)
{
        /* Only on an idle connection: a query in flight would have to be
         * read first, and the stop does not wait. */
        if (pg->state == PG_UP && !pg->head) {
                int ok = n == 0 ? PQsendQuery(pg->conn, sql)
                                : PQsendQueryParams(pg->conn, sql, n, NULL, params, NULL, NULL, 0);
                if (ok)
                        (void)PQflush(pg->conn);
        }
        pg->io = sd_event_source_disable_unref(pg->io);
        if (pg->conn)
                PQfinish(pg->conn);
        pg->conn = NULL;
        pg->state = PG_DOWN;
}

bool pg_up(const struct pg *pg)
{
        return pg && pg->state == PG_UP;
}

const char *pg_error(const struct pg *pg)
{
        return pg->state == PG_UP ? "" : pg->error;
}

PGconn *pg_connect_blocking(const char *url, const char *application_name, char *why, size_t size)
{
        struct pg_options o = {
                .url = url,
                .application_name = application_name,
                .statement_timeout = 60 * USEC_PER_SEC,
                .connect_timeout = 10 * USEC_PER_SEC,
        };
        _cleanup_free_ char *password = pg_read_password();
        struct pg_conninfo info;
        PGconn *conn;

        o.password = password;
        pg_conninfo_make(&info, &o);
        conn = PQconnectdbParams(info.keywords, (const char *const *)info.values, 1);
        pg_conninfo_free(&info);
        if (password)
                explicit_bzero(password, strlen(password));
        if (!conn) {
                snprintf(why, size, "out of memory");
                return NULL;
        }
        if (PQstatus(conn) != CONNECTION_OK) {
                struct pg tmp = { 0 };
                set_error(&tmp, "cannot connect: ", PQerrorMessage(conn));
                snprintf(why, size, "%s", tmp.error);
                PQfinish(conn);
                return NULL;
        }
        PQsetNoticeProcessor(conn, on_notice, NULL);
        return conn;
}

int64_t pg_value_int64(const PGresult *res, int row, int col)
{
        int64_t v = 0;

        if (!res || row >= PQntuples(res) || col >= PQnfields(res) || PQgetisnull(res, row, col))
                return 0;
        if (parse_int64(PQgetvalue(res, row, col), &v) < 0)
                return 0;
        return v;
}

/* The command line's migration: the daemon's steps (node.c), waiting. */
int pg_migrate_blocking(PGconn *conn, char *why, size_t size)
{
        char lock[96], unlock[96];
        PGresult *res;
        int version, r = 0;
        char *upgrade;

        snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%d, %d)", PG_LOCK_CLASS, PG_LOCK_MIGRATE);
        snprintf(unlock, sizeof unlock, "SELECT pg_advisory_unlock(%d, %d)", PG_LOCK_CLASS, PG_LOCK_MIGRATE);
        res = PQexec(conn, lock);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                snprintf(why, size, "%s", PQresultErrorMessage(res));
                PQclear(res);
                return -EIO;
        }
        PQclear(res);
        res = PQexec(conn, pg_schema_version_sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                snprintf(why, size, "%s", PQresultErrorMessage(res));
                r = -EIO;
                goto out;
        }
        version = (int)pg_value_int64(res, 0, 0);
        PQclear(res);
        res = NULL;
        if (pg_schema_too_new(version)) {
                snprintf(why, size, "the database's schema is version %d, newer than this binary's %d", version,
                         pg_schema_version());
                r = -EPROTO;
                goto out;
        }
        upgrade = pg_schema_upgrade_sql(version);
        if (upgrade) {
                res = PQexec(conn, upgrade);
                free(upgrade);
                if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                        snprintf(why, size, "migrating the schema: %s", PQresultErrorMessage(res));
                        r = -EIO;
                }
        }
out:
        PQclear(res);
        PQclear(PQexec(conn, unlock));
        if (r < 0)
                one_line(why);
        return r;
}
