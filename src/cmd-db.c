/* SPDX-License-Identifier: MIT */
/* jada-agent db copy --to URL: a stopped daemon's SQLite state into an empty
 * PostgreSQL database, the step from one daemon to a fleet. */
#include "jada/cli.h"
#include "jada/config.h"
#include "jada/db.h"
#include "jada/pg.h"
#include "jada/pg-schema.h"
#include "jada/util.h"

/* SQLite-only by nature: this reads the SQLite state as it is (its column
 * types, names and bytes), which the backend-neutral store does not show. */
#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static void finalizep(sqlite3_stmt **st)
{
        sqlite3_finalize(*st);
}
#define _cleanup_sqlite_stmt_ __attribute__((cleanup(finalizep)))

/* daemon.c's lock, held by a daemon for its whole run. */
#define DAEMON_LOCK_NAME "daemon.lock"

struct copy {
        sqlite3 *db;
        PGconn *conn;
        const char *node;       /* this machine's node name: its worktrees are its own */
        char *buf;              /* the row's COPY text; libpq gathers rows into larger messages */
        size_t len, cap;
        char why[1024];
};

/* What one table's copy needs to know, from both schemas. */
struct table {
        const char *name;
        char *columns;          /* the columns both have, quoted: "id", "title", ... */
        char *boolean;          /* a letter a column: 't' if boolean in PostgreSQL, INTEGER 0/1 in SQLite */
        char *identity;         /* the column whose sequence follows the copied ids, or NULL */
};

static int __attribute__((format(printf, 2, 3))) fail(struct copy *c, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(c->why, sizeof c->why, fmt, ap);
        va_end(ap);
        return -EIO;
}

/* The server's own words, and where in a COPY it stopped; takes res. */
static int fail_pg(struct copy *c, PGresult *res, const char *doing)
{
        const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        const char *where = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
        _cleanup_free_ char *text = xstrdup(m ? m : PQerrorMessage(c->conn));

        text[strcspn(text, "\n")] = '\0';
        fail(c, "%s: %s%s%s%s", doing, text, where ? " (" : "", where ? where : "", where ? ")" : "");
        PQclear(res);
        return -EIO;
}

static int run_sql(struct copy *c, const char *sql, ExecStatusType want, const char *doing)
{
        PGresult *res = PQexec(c->conn, sql);

        if (PQresultStatus(res) != want)
                return fail_pg(c, res, doing);
        PQclear(res);
        return 0;
}

/* PostgreSQL's text is UTF-8 without NUL; SQLite's TEXT holds any bytes.
 * Checked here, so that the refusal can name the row and the column. */
static bool pg_text_ok(const unsigned char *s, size_t n)
{
        for (size_t i = 0; i < n;) {
                /* A lead byte is `need` 1s, a 0, then the code point's first bits. */
                unsigned c = s[i], need = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
                unsigned cp = c & (0x7f >> need);

                /* 0x80-0xbf lead nothing, 0xc0-0xc1 only overlong forms. */
                if (c == 0 || (c >= 0x80 && c < 0xc2) || c > 0xf4 || n - i <= need)
                        return false;
                for (unsigned k = 1; k <= need; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + k] & 0x3f);
                }
                /* Overlong forms, surrogates and past U+10FFFF are not UTF-8. */
                if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) ||
                    cp > 0x10ffff)
                        return false;
                i += need + 1;
        }
        return true;
}

static void put(struct copy *c, const char *s, size_t n)
{
        if (c->len + n > c->cap) {
                c->cap = (c->len + n) * 2;
                c->buf = xreallocarray(c->buf, c->cap, 1);
        }
        memcpy(c->buf + c->len, s, n);
        c->len += n;
}

/* COPY's text format: a row a line, a tab between columns, \N for NULL;
 * these four bytes as backslash escapes, every other byte as it is. */
static void put_escaped(struct copy *c, const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const char *e = s[i] == '\\' ? "\\\\" : s[i] == '\t' ? "\\t" : s[i] == '\n' ? "\\n"
                                : s[i] == '\r' ? "\\r" : NULL;
                put(c, e ? e : s + i, e ? 2 : 1);
        }
}

static int put_value(struct copy *c, const struct table *t, sqlite3_stmt *st, int i)
{
        const unsigned char *s;
        char num[32];

        switch (sqlite3_column_type(st, i)) {
        case SQLITE_NULL:
                snprintf(num, sizeof num, "\\N");
                break;
        case SQLITE_INTEGER:
                if (t->boolean[i] == 't')
                        snprintf(num, sizeof num, "%c", sqlite3_column_int64(st, i) ? 't' : 'f');
                else
                        snprintf(num, sizeof num, "%lld", (long long)sqlite3_column_int64(st, i));
                break;
        case SQLITE_FLOAT:
                /* 17 significant digits: the same double on the other side. */
                snprintf(num, sizeof num, "%.17g", sqlite3_column_double(st, i));
                break;
        default:
                s = sqlite3_column_text(st, i);
                if (!pg_text_ok(s, (size_t)sqlite3_column_bytes(st, i))) {
                        /* The first column tells the row: id, row, task_id. */
                        const char *key = (const char *)sqlite3_column_text(st, 0);
                        return fail(c, "%s %s %.32s: %s is not valid UTF-8 text (or holds a NUL byte), which "
                                    "PostgreSQL refuses; correct that row in the SQLite state and copy again",
                                    t->name, sqlite3_column_name(st, 0), key ? key : "?", sqlite3_column_name(st, i));
                }
                put_escaped(c, (const char *)s, (size_t)sqlite3_column_bytes(st, i));
                return 0;
        }
        put(c, num, strlen(num));
        return 0;
}

/* The table's columns in PostgreSQL that SQLite has too, in PostgreSQL's
 * order; the others (a fleet's own) keep their defaults. */
static int table_columns(struct copy *c, struct table *t)
{
        _cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_free_ char *sqlite_columns = NULL;
        PGresult *res;

        if (sqlite3_prepare_v2(c->db, "SELECT group_concat(name, ',') FROM pragma_table_info(?)", -1, &st, NULL) !=
                    SQLITE_OK ||
            sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
                return fail(c, "%s: cannot read its columns in SQLite: %s", t->name, sqlite3_errmsg(c->db));
        sqlite_columns = sqlite3_column_text(st, 0) ? xstrdup((const char *)sqlite3_column_text(st, 0)) : NULL;
        res = PQexecParams(c->conn,
                           "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position),"
                           " string_agg(CASE WHEN data_type = 'boolean' THEN 't' ELSE 'f' END, ''"
                           "  ORDER BY ordinal_position),"
                           " min(quote_ident(column_name)) FILTER (WHERE is_identity = 'YES')"
                           " FROM information_schema.columns WHERE table_schema = current_schema()"
                           " AND table_name = $1 AND column_name = ANY (string_to_array($2, ','))",
                           2, NULL, (const char *const[]){ t->name, sqlite_columns ? sqlite_columns : "" }, NULL,
                           NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
                return fail_pg(c, res, t->name);
        if (PQgetisnull(res, 0, 0)) {
                PQclear(res);
                return fail(c, "%s: no column in common between SQLite and PostgreSQL", t->name);
        }
        t->columns = xstrdup(PQgetvalue(res, 0, 0));
        t->boolean = xstrdup(PQgetvalue(res, 0, 1));
        t->identity = PQgetisnull(res, 0, 2) ? NULL : xstrdup(PQgetvalue(res, 0, 2));
        PQclear(res);
        return 0;
}

/* Streams the rows; an error ends the COPY with a message, which makes the
 * server fail it: nothing of it stays. */
static int copy_rows(struct copy *c, const struct table *t, int64_t *rows)
{
        _cleanup_free_ char *select = xasprintf("SELECT %s FROM %s", t->columns, t->name);
        _cleanup_free_ char *copy = xasprintf("COPY %s (%s) FROM STDIN", t->name, t->columns);
        _cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
        int r = 0, rc = SQLITE_DONE;

        if (sqlite3_prepare_v2(c->db, select, -1, &st, NULL) != SQLITE_OK)
                return fail(c, "%s: cannot read it in SQLite: %s", t->name, sqlite3_errmsg(c->db));
        if (run_sql(c, copy, PGRES_COPY_IN, t->name) < 0)
                return -EIO;
        while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                for (int i = 0; r == 0 && i < sqlite3_column_count(st); i++) {
                        if (i > 0)
                                put(c, "\t", 1);
                        r = put_value(c, t, st, i);
                }
                put(c, "\n", 1);
                (*rows)++;
                if (r == 0 && PQputCopyData(c->conn, c->buf, (int)c->len) != 1)
                        r = fail_pg(c, NULL, t->name);
                c->len = 0;
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = fail(c, "%s: reading SQLite: %s", t->name, sqlite3_errmsg(c->db));
        if (PQputCopyEnd(c->conn, r < 0 ? "db copy stopped" : NULL) != 1 && r == 0)
                r = fail_pg(c, NULL, t->name);
        for (PGresult *res; (res = PQgetResult(c->conn));) {
                if (PQresultStatus(res) != PGRES_COMMAND_OK && r == 0)
                        r = fail_pg(c, res, t->name);
                else
                        PQclear(res);
        }
        return r;
}

static int copy_table(struct copy *c, const char *name, int64_t *rows)
{
        struct table t = { .name = name };
        int r = table_columns(c, &t);

        if (r == 0)
                r = copy_rows(c, &t, rows);
        /* Past the largest id copied; an empty table's sequence stays at its start. */
        if (r == 0 && t.identity) {
                _cleanup_free_ char *sql = xasprintf("SELECT setval(pg_get_serial_sequence('%s', '%s'), max(%s))"
                                                     " FROM %s HAVING max(%s) IS NOT NULL", name, t.identity,
                                                     t.identity, name, t.identity);
                r = run_sql(c, sql, PGRES_TUPLES_OK, name);
        }
        free(t.columns);
        free(t.boolean);
        free(t.identity);
        return r;
}

/* Locked until the commit, so that nothing lands between the look and the copy. */
static int lock_empty_tables(struct copy *c)
{
        _cleanup_free_ char *tables = strv_join(pg_schema_copy_tables, ", ");
        _cleanup_free_ char *lock = xasprintf("LOCK TABLE %s IN EXCLUSIVE MODE", tables);
        char found[512] = "";

        if (run_sql(c, lock, PGRES_COMMAND_OK, "locking the tables") < 0)
                return -EIO;
        for (size_t i = 0; pg_schema_copy_tables[i]; i++) {
                _cleanup_free_ char *sql = xasprintf("SELECT count(*) FROM %s", pg_schema_copy_tables[i]);
                PGresult *res = PQexec(c->conn, sql);
                if (PQresultStatus(res) != PGRES_TUPLES_OK)
                        return fail_pg(c, res, pg_schema_copy_tables[i]);
                long long n = (long long)pg_value_int64(res, 0, 0);
                PQclear(res);
                if (n > 0)
                        snprintf(found + strlen(found), sizeof found - strlen(found), "%s%s has %lld row%s",
                                 *found ? ", " : "", pg_schema_copy_tables[i], n, n == 1 ? "" : "s");
        }
        return *found ? fail(c, "the database is not empty (%s); db copy fills only an empty one", found) : 0;
}

/* One PostgreSQL transaction for all of it, fed from one SQLite read
 * transaction (one snapshot). */
static int copy_all(struct copy *c, int64_t *rows)
{
        /* A large state may take longer than the daemon's statement_timeout;
         * keepalives and tcp_user_timeout still find a dead server. */
        int r = run_sql(c, "BEGIN; SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '10s'",
                        PGRES_COMMAND_OK, "starting the transaction");

        if (r == 0)
                r = lock_empty_tables(c);
        if (r == 0 && sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
                r = fail(c, "cannot read the SQLite state: %s", sqlite3_errmsg(c->db));
        for (size_t i = 0; r == 0 && pg_schema_copy_tables[i]; i++)
                r = copy_table(c, pg_schema_copy_tables[i], &rows[i]);
        /* A worktree lives on this machine: its task is this node's, so that
         * this node's janitor commits, runs on_done and removes it (a fleet's
         * janitor acts only on the tasks its node claimed last). */
        if (r == 0) {
                PGresult *res = PQexecParams(c->conn, "UPDATE tasks SET claimed_by = $1 "
                                             "WHERE claimed_by IS NULL AND worktree IS NOT NULL",
                                             1, NULL, (const char *const[]){ c->node }, NULL, NULL, 0);
                if (PQresultStatus(res) != PGRES_COMMAND_OK)
                        r = fail_pg(c, res, "marking this node's worktrees");
                else
                        PQclear(res);
        }
        if (!sqlite3_get_autocommit(c->db))
                (void)sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        if (r == 0)
                r = run_sql(c, "COMMIT", PGRES_COMMAND_OK, "committing");
        if (r < 0)
                PQclear(PQexec(c->conn, "ROLLBACK"));
        return r;
}

/* The daemon's own lock, held for the whole copy: a daemon running now is
 * refused, and one started meanwhile refuses to run. */
static int lock_state(const char *state_dir)
{
        _cleanup_free_ char *path = xasprintf("%s/%s", state_dir, DAEMON_LOCK_NAME);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = -errno;
                if (r == -EWOULDBLOCK)
                        fprintf(stderr, "jada-agent: the daemon is running on %s: stop the daemon first "
                                "(systemctl stop jada-agent)\n", state_dir);
                else
                        fprintf(stderr, "jada-agent: cannot lock %s: %s\n", path, strerror(-r));
                if (fd >= 0)
                        close(fd);
                return r;
        }
        return fd;
}

static int db_copy(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = { CLI_COMMON_LONG, { "to", required_argument, NULL, 't' }, {} };
        _cleanup_free_ int64_t *rows = xcalloc(strv_length((char *const *)pg_schema_copy_tables), sizeof *rows);
        _cleanup_free_ char *path = NULL;
        struct jada_config *config = NULL;
        struct copy c = { 0 };
        char node[64];
        const char *url = NULL;
        int ch, fd = -1, r;

        while ((ch = getopt_long(argc, argv, CLI_COMMON_SHORT "t:", opts, NULL)) != -1) {
                if (ch == 't')
                        url = optarg;
                else if (cli_common_option(cli, ch) < 0)
                        return cli_usage("db");
        }
        if (optind != argc || !url)
                return cli_usage("db");
        if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0) {
                fprintf(stderr, "jada-agent: --to must be a postgresql:// URL, as [database] url takes\n");
                return EXIT_ERROR;
        }
        r = cli_load_config(cli, &config);
        if (r != 0)
                return r;
        r = EXIT_ERROR;
        path = db_path_for(config->daemon.state_dir);
        if (access(path, F_OK) < 0) {
                fprintf(stderr, "jada-agent: no state to copy: %s: %s\n", path, strerror(errno));
                goto out;
        }
        fd = lock_state(config->daemon.state_dir);
        if (fd < 0)
                goto out;
        if (db_open(path, &c.db) < 0) {
                fprintf(stderr, "jada-agent: cannot use the database %s\n", path);
                goto out;
        }
        c.conn = pg_connect_blocking(url, "jada-agent db copy", c.why, sizeof c.why);
        if (c.conn)
                /* Not "relation jada_schema already exists, skipping". */
                PQclear(PQexec(c.conn, "SET client_min_messages = warning"));
        if (!c.conn || pg_migrate_blocking(c.conn, c.why, sizeof c.why) < 0) {
                fprintf(stderr, "jada-agent: %s\n", c.why);
                goto out;
        }
        c.node = config_node_name(config, node, sizeof node);
        if (copy_all(&c, rows) < 0) {
                fprintf(stderr, "jada-agent: %s; nothing was copied\n", c.why);
                goto out;
        }
        printf("copied:\n");
        for (size_t i = 0; pg_schema_copy_tables[i]; i++)
                printf("  %-16s %8lld\n", pg_schema_copy_tables[i], (long long)rows[i]);
        printf("next: set [database] url to that URL in %s, then start the daemon\n", cli->config_path);
        r = EXIT_OK;
out:
        if (c.conn)
                PQfinish(c.conn);
        free(c.buf);
        db_close(c.db);
        if (fd >= 0)
                close(fd);
        config_free(config);
        return r;
}

int cmd_db(struct cli *cli, int argc, char **argv)
{
        if (argc >= 2 && strcmp(argv[1], "copy") == 0) {
                optind = 0;
                return db_copy(cli, argc - 1, argv + 1);
        }
        return cli_usage("db");
}
