/* SPDX-License-Identifier: MIT */
/* jada-agent check-config: validate a config file without running anything. */
#include "jada/cli.h"
#include "jada/config.h"

#include <getopt.h>
#include <stdio.h>

int cmd_check_config(struct cli *cli, int argc, char **argv)
{
        struct config_problems problems = { 0 };
        struct jada_config *config = NULL;

        static const struct option opts[] = { CLI_COMMON_LONG, {} };
        int c;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1)
                if (cli_common_option(cli, c) < 0)
                        return cli_usage("check-config");
        if (optind < argc)
                return cli_usage("check-config");
        if (config_load(cli->config_path, &config, &problems) < 0) {
                config_problems_print(&problems);
                fprintf(stderr, "%s: %zu problem%s\n", cli->config_path, problems.n, problems.n == 1 ? "" : "s");
                config_problems_clear(&problems);
                return EXIT_CONFIG;
        }
        config_problems_clear(&problems);
        printf("%s: OK\n", cli->config_path);
        config_free(config);
        return EXIT_OK;
}
