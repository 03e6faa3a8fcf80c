/* SPDX-License-Identifier: MIT */
/* jada-agent transcript SESSION | --task ID [--json] [--follow]: what a
 * session's claude said, readable or raw, also while it runs. */
#include "jada/cli.h"
#include "jada/config.h"
#include "jada/store.h"
#include "jada/session-store.h"
#include "jada/transcript.h"
#include "jada/util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define FOLLOW_INTERVAL_NSEC (200 * 1000 * 1000)

struct shown {
        bool json;
        struct transcript_view view;
};

static void on_line(const char *text, size_t len, void *userdata)
{
        struct shown *sh = userdata;

        if (sh->json) {
                fwrite(text, 1, len, stdout);
                putchar('\n');
        } else {
                transcript_render(&sh->view, text, len);
        }
}

/* One session's transcript; with follow, until its row says it ended. */
static int show_session(const struct jada_config *config, struct store *db, int64_t id, bool json, bool follow)
{
        _cleanup_free_ char *path = transcript_path(config->daemon.state_dir, id);
        struct shown sh = { .json = json, .view = { .out = stdout } };
        struct transcript_reader *r = NULL;
        bool ended = true;
        int rr;

        rr = session_store_ended(db, id, &ended);
        if (rr == -ENOENT) {
                fprintf(stderr, "jada-agent: no session %lld\n", (long long)id);
                return EXIT_ERROR;
        }
        rr = transcript_reader_open(path, &r);
        if (rr == -ENOENT) {
                fprintf(stderr, "jada-agent: session %lld has no transcript (it never started, or its task was pruned)\n",
                        (long long)id);
                return EXIT_ERROR;
        }
        if (rr < 0) {
                fprintf(stderr, "jada-agent: cannot read %s: %s\n", path, strerror(-rr));
                return EXIT_ERROR;
        }
        for (;;) {
                rr = transcript_reader_next(r, on_line, &sh);
                fflush(stdout);
                if (rr < 0)
                        break;
                if (!follow || ended)
                        break;
                nanosleep(&(struct timespec){ 0, FOLLOW_INTERVAL_NSEC }, NULL);
                /* Read to the end once more after it ended: the last lines. */
                if (session_store_ended(db, id, &ended) < 0)
                        ended = true;
        }
        transcript_reader_free(r);
        if (rr == -EBADMSG) {
                fprintf(stderr, "jada-agent: %s is not a transcript (not a zstd stream)\n", path);
                return EXIT_ERROR;
        }
        if (rr < 0) {
                fprintf(stderr, "jada-agent: cannot read %s: %s\n", path, strerror(-rr));
                return EXIT_ERROR;
        }
        return EXIT_OK;
}

int cmd_transcript(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
                CLI_COMMON_LONG,
                { "task", required_argument, NULL, 't' },
                { "json", no_argument, NULL, 'j' },
                { "follow", no_argument, NULL, 'f' },
                {}
        };
        struct jada_config *config = NULL;
        const char *task_arg = NULL;
        bool json = false, follow = false;
        struct store *db = NULL;
        int64_t id = 0, *ids = NULL;
        size_t n = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "t:jf", opts, NULL)) != -1) {
                switch (c) {
                case 't':
                        task_arg = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'f':
                        follow = true;
                        break;
                default:
                        if (cli_common_option(cli, c) < 0)
                                return cli_usage("transcript");
                }
        }
        if (task_arg ? optind != argc : optind + 1 != argc)
                return cli_usage("transcript");
        r = cli_parse_id(task_arg ? task_arg : argv[optind], &id);
        if (r != 0)
                return r;
        r = cli_open_db(cli, &config, &db);
        if (r != 0)
                return r;
        if (!task_arg) {
                r = show_session(config, db, id, json, follow);
        } else if ((r = session_store_ids(db, id, &ids, &n)) < 0) {
                fprintf(stderr, "jada-agent: cannot read the sessions of task %lld: %s\n", (long long)id,
                        cli_db_error(r));
                r = EXIT_ERROR;
        } else if (n == 0) {
                fprintf(stderr, "jada-agent: task %lld has no sessions\n", (long long)id);
                r = EXIT_ERROR;
        } else {
                r = EXIT_OK;
                for (size_t i = 0; i < n && r == EXIT_OK; i++) {
                        if (!json)
                                printf("%s### session %lld\n", i ? "\n" : "", (long long)ids[i]);
                        /* Only the last can still be running. */
                        r = show_session(config, db, ids[i], json, follow && i + 1 == n);
                }
        }
        free(ids);
        store_close(db);
        config_free(config);
        return r;
}
