/* SPDX-License-Identifier: MIT */
/* jada-agent sync [--now]: ask the running daemon for a port-sheet sync. */
#include "jada/cli.h"
#include "jada/config.h"
#include "jada/control.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int cmd_sync(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = { CLI_COMMON_LONG, { "now", no_argument, NULL, 'n' }, {} };
        struct jada_config *config = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "n", opts, NULL)) != -1)
                if (c != 'n' && cli_common_option(cli, c) < 0)
                        return cli_usage("sync");
        if (optind != argc)
                return cli_usage("sync");
        r = cli_load_config(cli, &config);
        if (r != 0)
                return r;
        if (!config->sheets.enabled) {
                fprintf(stderr, "jada-agent: the port-sheet sync is off ([sheets] enabled = no in %s)\n",
                        cli->config_path);
                config_free(config);
                return EXIT_ERROR;
        }
        r = control_send(config->daemon.state_dir, CONTROL_SYNC);
        config_free(config);
        if (r == -ENOENT || r == -ECONNREFUSED) {
                fprintf(stderr, "jada-agent: the daemon is not running (systemctl start jada-agent)\n");
                return EXIT_ERROR;
        }
        if (r < 0 && r != -EAGAIN) {
                fprintf(stderr, "jada-agent: cannot reach the daemon: %s\n", strerror(-r));
                return EXIT_ERROR;
        }
        printf("sync requested; see jada-agent status or journalctl -u jada-agent for the result\n");
        return EXIT_OK;
}
