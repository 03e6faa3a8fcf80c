/* SPDX-License-Identifier: MIT */
#pragma once

#include <getopt.h>
#include "jada/store.h"
#include <stdbool.h>

#include "jada/config.h"

/* Exit codes of the command line (DESIGN.md §4). */
#define EXIT_OK      0
#define EXIT_ERROR   1
#define EXIT_USAGE   2
#define EXIT_CONFIG 78  /* EX_CONFIG */

/* Options every command takes, parsed before the command's own. */
struct cli {
        const char *config_path;        /* -c, $JADA_AGENT_CONFIG, or the default */
        bool verbose;                   /* -v */
};

/* One command (tmux's cmd_entry): its words, its usage line, its function. */
struct cli_command {
        const char *name;               /* "check-config", "task add" */
        const char *usage;              /* the arguments after the name */
        const char *help;
        int (*run)(struct cli *cli, int argc, char **argv);
};

/* Each src/cmd-*.c defines its commands. */
int cmd_check_config(struct cli *cli, int argc, char **argv);
int cmd_task(struct cli *cli, int argc, char **argv);
int cmd_sessions(struct cli *cli, int argc, char **argv);
int cmd_sync(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_auth(struct cli *cli, int argc, char **argv);
int cmd_transcript(struct cli *cli, int argc, char **argv);
int cmd_nodes(struct cli *cli, int argc, char **argv);
int cmd_db(struct cli *cli, int argc, char **argv);

/* The options every command takes, for a command's own getopt_long tables. */
#define CLI_COMMON_SHORT "c:vh"
#define CLI_COMMON_LONG \
        { "config", required_argument, NULL, 'c' }, \
        { "verbose", no_argument, NULL, 'v' }, \
        { "help", no_argument, NULL, 'h' }
/* Handles a common option from a command's getopt loop: returns 0 when it
 * was one, -1 for an unknown option (getopt printed why). */
int cli_common_option(struct cli *cli, int opt);

/* Loads the config; on problems prints them and returns EXIT_CONFIG. */
int cli_load_config(const struct cli *cli, struct jada_config **ret);
/* Loads the config and opens the state db, creating both the state dir and
 * the db if needed. Returns 0 or an exit code, having said why. */
int cli_open_db(const struct cli *cli, struct jada_config **config, struct store **db);

/* What a db error means, for a person: "the database is corrupt", ... */
const char *cli_db_error(int r);

/* Reads all of stdin up to max bytes: 0, or -EFBIG past max. The text is
 * NUL-terminated; *size counts every byte read (a NUL inside shows as
 * strlen() < *size). */
int cli_read_stdin(size_t max, char **ret, size_t *size);
/* An id argument: a positive integer, or a usage error (EXIT_USAGE). */
int cli_parse_id(const char *s, int64_t *ret);
/* Text from outside: valid UTF-8 without NUL or other control characters
 * (newlines and tabs allowed when multiline). */
bool cli_text_ok(const char *s, size_t len, bool multiline);

/* Prints "usage: jada-agent NAME USAGE" to stderr and returns EXIT_USAGE. */
int cli_usage(const char *name);
