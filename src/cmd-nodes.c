/* SPDX-License-Identifier: MIT */
/* jada-agent nodes [--json] | nodes forget NAME: the fleet sharing [database]
 * url, each node's heartbeat; a dead node's row removed. */
#include "jada/cli.h"
#include "jada/config.h"
#include "jada/node.h"
#include "jada/pg.h"
#include "jada/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A node that died for good stays lost (a WARNING) until it is forgotten;
 * a live one cannot be. */
static int forget(PGconn *conn, const struct jada_config *config, const char *name)
{
        char lease[24];
        const char *params[] = { name, lease };
        PGresult *res;
        int gone, known;

        snprintf(lease, sizeof lease, "%llu", (unsigned long long)(config->database.lease / USEC_PER_SEC));
        res = PQexecParams(conn,
                           "DELETE FROM nodes WHERE name = $1 AND (stopped_at IS NOT NULL OR "
                           "heartbeat_at < extract(epoch from now())::bigint - $2::bigint) RETURNING name",
                           2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                fprintf(stderr, "jada-agent: the fleet's database: %s", PQresultErrorMessage(res));
                PQclear(res);
                return EXIT_FAILURE;
        }
        gone = PQntuples(res);
        PQclear(res);
        if (gone) {
                PQclear(PQexecParams(conn, "DELETE FROM health WHERE node = $1", 1, NULL, params, NULL, NULL, 0));
                printf("node %s forgotten\n", name);
                return EXIT_OK;
        }
        res = PQexecParams(conn, "SELECT 1 FROM nodes WHERE name = $1", 1, NULL, params, NULL, NULL, 0);
        known = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0;
        PQclear(res);
        if (known)
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
        char why[512];
        bool json = false;
        size_t n = 0;
        PGconn *conn;
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
        conn = pg_connect_blocking(config->database.url, "jada-agent nodes", why, sizeof why);
        if (!conn) {
                fprintf(stderr, "jada-agent: the fleet's database: %s\n", why);
                config_free(config);
                return EXIT_FAILURE;
        }
        if (optind < argc) {
                r = forget(conn, config, argv[optind + 1]);
                PQfinish(conn);
                config_free(config);
                return r;
        }
        r = node_rows_load(conn, &rows, &n, why, sizeof why);
        PQfinish(conn);
        if (r < 0) {
                /* No table yet: no daemon of the fleet has started. */
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
