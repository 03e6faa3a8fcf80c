/* SPDX-License-Identifier: MIT */
/* jada-agent nodes: the fleet sharing [database] url, each node's heartbeat. */
#include "jada/cli.h"
#include "jada/config.h"
#include "jada/node.h"
#include "jada/pg.h"
#include "jada/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

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
        if (optind != argc)
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
