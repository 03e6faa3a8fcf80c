/* SPDX-License-Identifier: MIT */
/* jada-agent: one binary for the daemon (`run`) and its command line. */
#include "jada/cli.h"
#include "jada/config.h"
#include "jada/daemon.h"
#include "jada/log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A command that takes only the common options and no arguments. */
static int no_arguments(struct cli *cli, const char *name, int argc, char **argv)
{
        static const struct option opts[] = { CLI_COMMON_LONG, {} };
        int c;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1)
                if (cli_common_option(cli, c) < 0)
                        return cli_usage(name);
        return optind < argc ? cli_usage(name) : 0;
}

static int cmd_run(struct cli *cli, int argc, char **argv)
{
        int r = no_arguments(cli, "run", argc, argv);
        return r ? r : daemon_run(cli->config_path);
}

static int cmd_version(struct cli *cli, int argc, char **argv)
{
        if (no_arguments(cli, "version", argc, argv))
                return EXIT_USAGE;
        printf("jada-agent %s\n", JADA_VERSION);
        return EXIT_OK;
}

static int cmd_help(struct cli *cli, int argc, char **argv);

static const struct cli_command commands[] = {
        { "run",          "[-c FILE] [-v]", "run the daemon in the foreground (systemd's ExecStart)", cmd_run },
        { "check-config", "[-c FILE]",      "check a config file: exit 0, or 78 with FILE:LINE: problems", cmd_check_config },
        { "status",       "[--json]",       "the health audit: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN", cmd_status },
        { "task",         "add|list|show|cancel|retry|done|reply ...", "the task queue (jada-agent task help)", cmd_task },
        { "auth",         "google [--no-browser] [--port N] | status [--json]", "authorize the port-sheet sync with Google; token status", cmd_auth },
        { "sessions",     "[--since DURATION] [--json]", "session history, completion and turn-limit rates", cmd_sessions },
        { "transcript",   "SESSION | --task ID [--json] [--follow]", "what a session's claude said, readable (or raw)", cmd_transcript },
        { "nodes",        "[--json] | forget NAME", "the fleet sharing [database] url: each node's heartbeat and sessions", cmd_nodes },
        { "sync",         "[--now]",        "ask the running daemon for a port-sheet sync now", cmd_sync },
        { "db",           "copy --to URL",  "copy the stopped daemon's state into an empty PostgreSQL database", cmd_db },
        { "version",      "",               "print the version", cmd_version },
        { "help",         "",               "show this help", cmd_help },
};

static const struct cli_command *find_command(const char *name)
{
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (strcmp(commands[i].name, name) == 0)
                        return &commands[i];
        return NULL;
}

int cli_usage(const char *name)
{
        const struct cli_command *c = find_command(name);
        fprintf(stderr, "usage: jada-agent %s %s\n", name, c ? c->usage : "");
        return EXIT_USAGE;
}

static void print_help(FILE *f)
{
        fprintf(f, "usage: jada-agent [-c FILE] [-v] COMMAND [ARGS]\n\n");
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                fprintf(f, "  %-13s %s\n  %-13s   %s\n", commands[i].name, commands[i].usage, "", commands[i].help);
        fprintf(f, "\n-c FILE  config file (default $JADA_AGENT_CONFIG, else %s; the ./jada-agent\n"
                "         of a source tree: its %s, as make run uses)\n-v       debug logging\n",
                JADA_DEFAULT_CONFIG, JADA_DEV_CONFIG);
}

static int cmd_help(struct cli *cli, int argc, char **argv)
{
        print_help(stdout);
        return EXIT_OK;
}

/* Takes -c and -v anywhere before the command's own arguments; the
 * remaining arguments are left for the command, argv[0] being its name. */
static int parse_common(struct cli *cli, int *argc, char ***argv)
{
        static const struct option opts[] = {
                { "config",  required_argument, NULL, 'c' },
                { "verbose", no_argument,       NULL, 'v' },
                { "help",    no_argument,       NULL, 'h' },
                {}
        };
        int c;

        optind = 1;
        opterr = 1;
        while ((c = getopt_long(*argc, *argv, "+c:vh", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        if (!*optarg) {
                                fprintf(stderr, "jada-agent: -c needs a file name\n");
                                return -1;
                        }
                        cli->config_path = optarg;
                        break;
                case 'v':
                        cli->verbose = true;
                        break;
                case 'h':
                        print_help(stdout);
                        exit(EXIT_OK);
                default:
                        return -1;
                }
        }
        *argc -= optind - 1;
        *argv += optind - 1;
        return 0;
}

int main(int argc, char **argv)
{
        struct cli cli = { .config_path = config_default_path() };
        const struct cli_command *cmd;

        log_setup(LOG_TARGET_AUTO, false);
        if (parse_common(&cli, &argc, &argv) < 0) {
                print_help(stderr);
                return EXIT_USAGE;
        }
        if (argc < 2) {
                print_help(stderr);
                return EXIT_USAGE;
        }
        argc--;
        argv++;
        cmd = find_command(argv[0]);
        if (!cmd) {
                fprintf(stderr, "jada-agent: unknown command '%s'\n\n", argv[0]);
                print_help(stderr);
                return EXIT_USAGE;
        }
        /* The command line says what matters on stderr itself; the library's
         * info messages (a migration, say) are for the daemon's journal. */
        if (cmd->run != cmd_run)
                log_set_max_priority(LOG_WARNING);
        log_set_verbose(cli.verbose);
        /* The command parses its own options, the common ones included:
         * `jada-agent run -c FILE` works as well as `jada-agent -c FILE run`. */
        optind = 0;
        return cmd->run(&cli, argc, argv);
}
