/* SPDX-License-Identifier: MIT */
/* What the commands share: options, the config and db, checked input. */
#include "jada/cli.h"
#include "jada/db.h"
#include "jada/log.h"
#include "jada/store-pg.h"
#include "jada/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cli_common_option(struct cli *cli, int opt)
{
        switch (opt) {
        case 'c':
                cli->config_path = optarg;
                return 0;
        case 'v':
                cli->verbose = true;
                log_set_verbose(true);
                return 0;
        default:
                return -1;
        }
}

int cli_load_config(const struct cli *cli, struct jada_config **ret)
{
        struct config_problems problems = { 0 };

        if (config_load(cli->config_path, ret, &problems) < 0) {
                config_problems_print(&problems);
                config_problems_clear(&problems);
                return EXIT_CONFIG;
        }
        config_problems_clear(&problems);
        return 0;
}

int cli_open_db(const struct cli *cli, struct jada_config **config, struct store **db)
{
        _cleanup_free_ char *path = NULL;
        int r;

        r = cli_load_config(cli, config);
        if (r != 0)
                return r;
        if (*(*config)->database.url) {
                /* A fleet's: the shared queue in PostgreSQL. */
                char why[512], node[64];
                _cleanup_free_ char *name = xasprintf("jada-agent cli %s", config_node_name(*config, node, sizeof node));
                r = store_open_postgresql((*config)->database.url, name, why, sizeof why, db);
                if (r < 0) {
                        fprintf(stderr, "jada-agent: cannot use the fleet's database: %s\n", why);
                        goto fail;
                }
                /* The command speaks for this machine's node: its health
                 * row is the one `status` reads. */
                store_set_node(*db, node);
                return 0;
        }
        r = mkdir_p((*config)->daemon.state_dir, 0700);
        if (r < 0) {
                fprintf(stderr, "jada-agent: cannot create the state directory %s: %s\n",
                        (*config)->daemon.state_dir, strerror(-r));
                goto fail;
        }
        path = db_path_for((*config)->daemon.state_dir);
        r = store_open(path, db);
        if (r < 0) {
                fprintf(stderr, "jada-agent: cannot use the database %s: %s\n", path,
                        r == -EMEDIUMTYPE ? "it is not a jada-agent database"
                        : r == -EPROTO ? "it was written by a newer jada-agent"
                        : r == -EBADMSG ? "it is not a SQLite database, or it is corrupt"
                        : strerror(-r));
                goto fail;
        }
        return 0;
fail:
        *config = config_free(*config);
        return EXIT_ERROR;
}

const char *cli_db_error(int r)
{
        switch (r) {
        case -EBADMSG:
                return "the database is corrupt (PRAGMA integrity_check tells more; restore it from a backup)";
        case -EBUSY:
                return "the database stayed locked by another process";
        case -ENOSPC:
                return "the disk holding the database is full";
        case -EACCES:
                return "no permission to write the database";
        default:
                return strerror(r < 0 ? -r : r);
        }
}

int cli_read_stdin(size_t max, char **ret, size_t *size)
{
        return read_fd_capped(STDIN_FILENO, max, ret, size);
}

int cli_parse_id(const char *s, int64_t *ret)
{
        int64_t id;

        if (parse_int64(s, &id) < 0 || id <= 0) {
                fprintf(stderr, "jada-agent: '%s' is not a task id (a positive number)\n", s);
                return EXIT_USAGE;
        }
        *ret = id;
        return 0;
}

bool cli_text_ok(const char *s, size_t len, bool multiline)
{
        const unsigned char *p = (const unsigned char *)s, *end = p + len;

        while (p < end) {
                unsigned c = *p, need, cp;
                if (c < 0x80) {
                        if ((c < 0x20 && !(multiline && (c == '\n' || c == '\t' || c == '\r'))) || c == 0x7f)
                                return false;
                        p++;
                        continue;
                }
                if ((c & 0xe0) == 0xc0) { need = 1; cp = c & 0x1f; }
                else if ((c & 0xf0) == 0xe0) { need = 2; cp = c & 0x0f; }
                else if ((c & 0xf8) == 0xf0) { need = 3; cp = c & 0x07; }
                else return false;
                if ((size_t)(end - p) <= need)
                        return false;
                for (unsigned i = 1; i <= need; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i] & 0x3f);
                }
                /* Overlong forms, surrogates and past U+10FFFF are not UTF-8. */
                if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
                    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                        return false;
                p += need + 1;
        }
        return true;
}
