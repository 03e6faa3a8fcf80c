/* SPDX-License-Identifier: MIT */
/* jada-agent nodes [--json] | nodes forget NAME: the fleet sharing [database]
 * url, each node's heartbeat; a dead node's row removed. */
#include "jada/cli.h"
#include "jada/config.h"
#include "jada/node.h"
#include "jada/pg.h"
#include "jada/store.h"
#include "jada/store-pg.h"
#include "jada/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A node that died for good stays lost (a WARNING) until it is forgotten;
 * a live one cannot be. */
static int forget(struct store *db, const struct jada_config *config, const char *name)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r, gone;

        r = store_begin(db);
        if (r == 0)
                r = store_prepare(db, "DELETE FROM nodes WHERE name = ?1 AND (stopped_at IS NOT NULL OR "
                                      "heartbeat_at < extract(epoch from now())::bigint - ?2)", &st);
        if (r == 0) {
                store_bind_text(st, 1, name);
                store_bind_int64(st, 2, (int64_t)(config->database.lease / USEC_PER_SEC));
                r = store_step_done(st);
                st = NULL; /* finalized */
        }
        gone = r == 0 ? store_changes(db) : 0;
        if (r == 0 && gone)
                r = store_prepare(db, "DELETE FROM health WHERE node = ?1", &st);
        if (r == 0 && gone) {
                store_bind_text(st, 1, name);
                r = store_step_done(st);
                st = NULL;
        }
        if (r == 0)
                r = store_commit(db);
        if (r < 0) {
                store_rollback(db);
                fprintf(stderr, "jada-agent: the fleet's database: %s\n", store_errmsg(db));
                return EXIT_FAILURE;
        }
        if (gone) {
                printf("node %s forgotten\n", name);
                return EXIT_OK;
        }
        r = store_prepare(db, "SELECT 1 FROM nodes WHERE name = ?1", &st);
        if (r == 0) {
                store_bind_text(st, 1, name);
                r = store_step(st);
        }
        if (r == STORE_ROW)
                fprintf(stderr, "jada-agent: node %s is alive (its heartbeat is younger than the lease): "
                                "not forgotten\n", name);
        else
                fprintf(stderr, "jada-agent: no node named %s\n", name);
        return EXIT_FAILURE;
}

int cmd_nodes(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = { CLI_COMMON_LONG, { "json", no_argument, NULL, 'j' }, {} };
        struct jada_config *config = NULL;
        struct node_row *rows = NULL;
        struct store *db = NULL;
        PGconn *conn;
        char why[512];
        bool json = false;
        size_t n = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "j", opts, NULL)) != -1) {
                if (c == 'j')
                        json = true;
                else if (cli_common_option(cli, c) < 0)
                        return cli_usage("nodes");
        }
        if (optind != argc && !(optind + 2 == argc && strcmp(argv[optind], "forget") == 0))
                return cli_usage("nodes");
        r = cli_load_config(cli, &config);
        if (r != 0)
                return r;
        if (!*config->database.url) {
                fprintf(stderr, "jada-agent: %s has no [database] url: this daemon is not in a fleet\n", config->path);
                config_free(config);
                return EXIT_FAILURE;
        }
        /* As the database is: a fleet no daemon has joined has no table
         * yet, and this command does not make one. */
        conn = pg_connect_blocking(config->database.url, "jada-agent nodes", why, sizeof why);
        if (!conn) {
                fprintf(stderr, "jada-agent: the fleet's database: %s\n", why);
                config_free(config);
                return EXIT_FAILURE;
        }
        (void)store_open_postgresql_as_is(conn, &db);
        if (optind < argc) {
                r = forget(db, config, argv[optind + 1]);
                store_close(db);
                config_free(config);
                return r;
        }
        r = node_rows_load(db, &rows, &n, why, sizeof why);
        store_close(db);
        if (r < 0) {
                fprintf(stderr, "jada-agent: the fleet's database: %s\n", why);
                config_free(config);
                return EXIT_FAILURE;
        }
        if (json) {
                json_t *doc = json_pack("{s:o, s:I}", "nodes", node_rows_json(rows, n, config->database.lease),
                                        "lease_seconds", (json_int_t)(config->database.lease / USEC_PER_SEC));
                if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII) < 0)
                        abort();
                putchar('\n');
                json_decref(doc);
        } else if (n == 0) {
                printf("no node has joined the fleet yet\n");
        } else {
                node_rows_print(stdout, rows, n, config->database.lease);
        }
        node_rows_free(rows, n);
        config_free(config);
        return EXIT_OK;
}
