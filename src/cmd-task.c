/* SPDX-License-Identifier: MIT */
/* jada-agent task add|list|cancel|retry|done|reply: the queue by hand (show
 * and diff: cmd-task-show.c). */
#include "jada/cli.h"
#include "cmd-task-private.h"
#include "jada/report.h"
#include "jada/task-action.h"
#include "jada/config.h"
#include "jada/control.h"
#include "jada/store.h"
#include "jada/log.h"
#include "jada/queue.h"
#include "jada/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void task_help(FILE *f);

int task_usage(void)
{
        task_help(stderr);
        return EXIT_USAGE;
}

/* Nudges a running daemon to look at the queue now. Never fails the
 * command: the poll is the fallback, and the task is already safe. */
static void wake_daemon(const struct jada_config *config)
{
        int r = control_send(config->daemon.state_dir, CONTROL_WAKE);

        /* On a fleet a queued task's NOTIFY reaches the nodes in its
         * transaction, daemon here or not; the wake still tells this
         * machine's daemon of a cancel or a done at once. */
        if (*config->database.url && (r == -ENOENT || r == -ECONNREFUSED))
                return;
        if (r == -ENOENT || r == -ECONNREFUSED)
                fprintf(stderr, "jada-agent: the daemon is not running; the task waits until it starts\n");
        else if (r < 0 && r != -EAGAIN)
                fprintf(stderr, "jada-agent: could not wake the daemon (%s); it will see the task at its next poll\n",
                        cli_db_error(r));
}

/* --after: an ISO 8601 UTC time ("2026-11-30T09:00:00Z", seconds optional),
 * or a duration from now ("2h"). */
static int parse_after(const char *s, int64_t now, int64_t *ret)
{
        static const char *const formats[] = { "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S",
                                               "%Y-%m-%d %H:%M" };
        uint64_t usec;

        for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
                struct tm tm = { 0 };
                const char *end = strptime(s, formats[i], &tm);
                if (!end)
                        continue;
                if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
                        return -EINVAL;
                if (tm.tm_year < 70 || tm.tm_year > 8099)
                        return -ERANGE;
                *ret = (int64_t)timegm(&tm);
                return 0;
        }
        if (duration_parse(s, &usec) < 0 || usec / USEC_PER_SEC > (uint64_t)INT32_MAX)
                return -EINVAL;
        *ret = now + (int64_t)(usec / USEC_PER_SEC);
        return 0;
}

/* An amount of USD above 0 and at most a million: "2.5", "0.75". */
static int parse_usd(const char *s, double *ret)
{
        char *end;
        double v;

        if (!s || !((*s >= '0' && *s <= '9') || *s == '.'))
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (*end || errno || !(v > 0) || v > 1e6)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* A prompt or reply from an argument or, for "-", from stdin. */
static int read_text(const char *what, const char *arg, char **ret)
{
        size_t len = 0;
        int r;

        if (strcmp(arg, "-") == 0) {
                r = cli_read_stdin(QUEUE_PROMPT_MAX, ret, &len);
                if (r == -EFBIG) {
                        fprintf(stderr, "jada-agent: the %s on stdin is larger than %d bytes (1 MiB); nothing was added\n",
                                what, QUEUE_PROMPT_MAX);
                        return EXIT_ERROR;
                }
                if (r < 0) {
                        fprintf(stderr, "jada-agent: cannot read the %s from stdin: %s\n", what, strerror(-r));
                        return EXIT_ERROR;
                }
        } else {
                if (strlen(arg) > QUEUE_PROMPT_MAX) {
                        fprintf(stderr, "jada-agent: the %s is larger than 1 MiB\n", what);
                        return EXIT_ERROR;
                }
                *ret = xstrdup(arg);
                len = strlen(arg);
        }
        if (strlen(*ret) != len) {
                fprintf(stderr, "jada-agent: the %s holds a NUL byte: it is not text\n", what);
                *ret = mfree(*ret);
                return EXIT_ERROR;
        }
        if (strspn(*ret, " \t\r\n") == len) {
                fprintf(stderr, "jada-agent: the %s is empty\n", what);
                *ret = mfree(*ret);
                return EXIT_ERROR;
        }
        if (!cli_text_ok(*ret, len, true)) {
                fprintf(stderr, "jada-agent: the %s is not valid UTF-8 text (or holds control characters)\n", what);
                *ret = mfree(*ret);
                return EXIT_ERROR;
        }
        return 0;
}

#define AFTER_TASKS_MAX 100

/* --after-task 3,4: task ids, at most AFTER_TASKS_MAX. */
static int parse_after_tasks(const char *s, int64_t **ret, size_t *n)
{
        _cleanup_free_ char *copy = xstrdup(s);
        char *save = NULL;

        for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                int64_t id;
                if (*n >= AFTER_TASKS_MAX) {
                        fprintf(stderr, "jada-agent: --after-task names more than %d tasks\n", AFTER_TASKS_MAX);
                        return EXIT_USAGE;
                }
                if (cli_parse_id(w, &id) != 0)
                        return EXIT_USAGE;
                *ret = xreallocarray(*ret, *n + 1, sizeof **ret);
                (*ret)[(*n)++] = id;
        }
        if (*n == 0) {
                fprintf(stderr, "jada-agent: --after-task takes task ids, e.g. 3,4\n");
                return EXIT_USAGE;
        }
        return 0;
}

/* In a session, JADA_TASK_ID is the session's task: a sub-task of another
 * task is a mistake (a guard, not a security boundary: the environment is
 * the session's to change). */
static int check_session_parent(int64_t parent)
{
        const char *own = getenv("JADA_TASK_ID");
        int64_t id;

        if (!own || !*own || parent <= 0)
                return 0;
        if (parse_int64(own, &id) < 0 || id != parent) {
                fprintf(stderr, "jada-agent: this session works on task %s (JADA_TASK_ID): it may add sub-tasks of "
                        "that task only, not of task %lld; nothing was added\n", own, (long long)parent);
                return EXIT_ERROR;
        }
        return 0;
}

static int task_add(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
                CLI_COMMON_LONG,
                { "title", required_argument, NULL, 't' },
                { "priority", required_argument, NULL, 'p' },
                { "after", required_argument, NULL, 'a' },
                { "project", required_argument, NULL, 'P' },
                { "max-cost", required_argument, NULL, 'M' },
                { "parent", required_argument, NULL, 'R' },
                { "after-task", required_argument, NULL, 'A' },
                {}
        };
        const char *title = NULL, *after = NULL, *project = NULL;
        double max_cost = 0;
        _cleanup_free_ char *prompt = NULL;
        _cleanup_free_ int64_t *after_tasks = NULL;
        size_t n_after = 0;
        int64_t parent = 0;
        bool priority_given = false;
        struct jada_config *config = NULL;
        int64_t priority = 0, run_after, id, now = now_seconds();
        struct store *db = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "t:p:a:", opts, NULL)) != -1) {
                switch (c) {
                case 't':
                        title = optarg;
                        break;
                case 'P':
                        project = optarg;
                        break;
                case 'M':
                        if (parse_usd(optarg, &max_cost) < 0) {
                                fprintf(stderr, "jada-agent: --max-cost '%s' is not an amount of USD above 0 "
                                        "(e.g. 2.50)\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'p':
                        if (parse_int64(optarg, &priority) < 0 || priority < -1000 || priority > 1000) {
                                fprintf(stderr, "jada-agent: --priority '%s' is not a number from -1000 to 1000\n", optarg);
                                return EXIT_USAGE;
                        }
                        priority_given = true;
                        break;
                case 'R':
                        if (cli_parse_id(optarg, &parent) != 0)
                                return EXIT_USAGE;
                        break;
                case 'A':
                        r = parse_after_tasks(optarg, &after_tasks, &n_after);
                        if (r != 0)
                                return r;
                        break;
                case 'a':
                        after = optarg;
                        break;
                default:
                        if (cli_common_option(cli, c) < 0)
                                return task_usage();
                }
        }
        if (optind + 1 != argc)
                return task_usage();
        if (title && (strlen(title) > QUEUE_TITLE_MAX || !cli_text_ok(title, strlen(title), false))) {
                fprintf(stderr, "jada-agent: --title must be one line of text, at most %d bytes\n", QUEUE_TITLE_MAX);
                return EXIT_USAGE;
        }
        run_after = now;
        if (after && parse_after(after, now, &run_after) < 0) {
                fprintf(stderr, "jada-agent: --after '%s' is neither a UTC time like 2026-11-30T09:00:00Z "
                        "nor a duration like 2h\n", after);
                return EXIT_USAGE;
        }
        r = check_session_parent(parent);
        if (r != 0)
                return r;
        r = read_text("prompt", argv[optind], &prompt);
        if (r != 0)
                return r;

        r = cli_open_db(cli, &config, &db);
        if (r != 0)
                return r;
        {
                char why[512];
                r = task_add_checked(db, config, &(struct queue_new){ .title = title, .prompt = prompt,
                                                                      .project = project, .priority = priority,
                                                                      .run_after = run_after, .max_cost_usd = max_cost,
                                                                      .parent_id = parent, .priority_given = priority_given,
                                                                      .after = after_tasks, .n_after = n_after },
                                     now, &id, why, sizeof why);
                store_close(db);
                if (r < 0) {
                        fprintf(stderr, "jada-agent: %s\n", why);
                        config_free(config);
                        return EXIT_ERROR;
                }
        }
        printf("%lld\n", (long long)id);
        fflush(stdout);
        wake_daemon(config);
        config_free(config);
        return EXIT_OK;
}


void print_json(json_t *j)
{
        if (!j || json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII) < 0)
                abort(); /* only out of memory */
        putchar('\n');
        json_decref(j);
}

/* Bytes of s that fit in `width` display columns (one per code point). */
static size_t fit_utf8(const char *s, size_t width, size_t *columns)
{
        size_t i = 0, cols = 0;
        while (s[i] && cols < width) {
                i++;
                while (((unsigned char)s[i] & 0xc0) == 0x80)
                        i++;
                cols++;
        }
        *columns = cols;
        return i;
}

static void print_task_row(const struct queue_task *t, unsigned depth)
{
        char updated[32];
        unsigned indent = depth > 10 ? 20 : depth * 2;
        size_t cols, bytes = fit_utf8(t->title, 40 - indent, &cols);

        printf("%6lld  %-9s  %4lld  %*s%.*s%*s  %8lld  %5lld  %s\n", (long long)t->id, task_state_name(t->state),
               (long long)t->priority, (int)indent, "", (int)bytes, t->title, (int)(40 - indent - cols), "",
               (long long)t->sessions_used, (long long)t->turns_used,
               format_utc(updated, sizeof updated, (uint64_t)t->updated_at * USEC_PER_SEC));
}

static int by_id(const void *key, const void *elem)
{
        int64_t a = *(const int64_t *)key, b = ((const struct queue_task *)elem)->id;
        return a < b ? -1 : a > b;
}

/* --tree: each task under its parent (when the parent is listed too),
 * indented by depth; the list is ordered by id, and so is each level. */
static void print_tree(const struct queue_task *tasks, size_t n)
{
        _cleanup_free_ size_t *parent = xcalloc(n ? n : 1, sizeof *parent);
        _cleanup_free_ size_t *stack = xcalloc(n ? n : 1, sizeof *stack);
        _cleanup_free_ unsigned *depth = xcalloc(n ? n : 1, sizeof *depth);

        for (size_t i = 0; i < n; i++) {
                const struct queue_task *p = tasks[i].parent_id > 0
                        ? bsearch(&tasks[i].parent_id, tasks, n, sizeof *tasks, by_id) : NULL;
                parent[i] = p ? (size_t)(p - tasks) : SIZE_MAX;
        }
        /* Depth-first from each root; children are found by a scan, which
         * is fine for the lists a person reads. A parent is older than its
         * children, so no cycle can hold the walk. */
        for (size_t root = 0; root < n; root++) {
                size_t top = 0;
                if (parent[root] != SIZE_MAX)
                        continue;
                stack[top++] = root;
                depth[root] = 0;
                while (top > 0) {
                        size_t i = stack[--top];
                        print_task_row(&tasks[i], depth[i]);
                        for (size_t j = n; j-- > i + 1;)
                                if (parent[j] == i && top < n) {
                                        depth[j] = depth[i] + 1;
                                        stack[top++] = j;
                                }
                }
        }
}

static int task_list(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
                CLI_COMMON_LONG,
                { "state", required_argument, NULL, 's' },
                { "json", no_argument, NULL, 'j' },
                { "project", required_argument, NULL, 'P' },
                { "tree", no_argument, NULL, 'T' },
                {}
        };
        const char *project = NULL;
        struct jada_config *config = NULL;
        struct queue_task *tasks = NULL;
        size_t n = 0;
        struct store *db = NULL;
        bool json = false, tree = false;
        int state = -1, c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT "s:j", opts, NULL)) != -1) {
                switch (c) {
                case 's':
                        state = task_state_from_name(optarg);
                        if (state < 0) {
                                fprintf(stderr, "jada-agent: --state '%s' is not one of: queued, running, done, "
                                        "needs_you, failed, cancelled, waiting\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'j':
                        json = true;
                        break;
                case 'P':
                        project = optarg;
                        break;
                case 'T':
                        tree = true;
                        break;
                default:
                        if (cli_common_option(cli, c) < 0)
                                return task_usage();
                }
        }
        if (optind != argc)
                return task_usage();
        r = cli_open_db(cli, &config, &db);
        if (r != 0)
                return r;
        r = queue_list(db, state, project, &tasks, &n);
        store_close(db);
        config_free(config);
        if (r < 0) {
                fprintf(stderr, "jada-agent: cannot list tasks: %s\n", cli_db_error(r));
                return EXIT_ERROR;
        }

        if (json) {
                json_t *arr = json_array();
                for (size_t i = 0; i < n; i++)
                        json_array_append_new(arr, report_task(&tasks[i]));
                print_json(arr);
        } else if (n == 0) {
                printf("no tasks%s%s%s%s\n", state >= 0 ? " in state " : "", state >= 0 ? task_state_name(state) : "",
                       project ? " of project " : "", project ? project : "");
        } else {
                printf("%6s  %-9s  %4s  %-40s  %8s  %5s  %s\n", "ID", "STATE", "PRI", "TITLE", "SESSIONS",
                       "TURNS", "UPDATED");
                if (tree)
                        print_tree(tasks, n);
                else
                        for (size_t i = 0; i < n; i++)
                                print_task_row(&tasks[i], 0);
        }
        queue_tasks_free(tasks, n);
        return EXIT_OK;
}

/* Opens the db and loads one task; prints why not. */
int load_task(struct cli *cli, const char *id_arg, struct jada_config **config, struct store **db,
                     struct queue_task **task, int64_t *id)
{
        int r = cli_parse_id(id_arg, id);
        if (r != 0)
                return r;
        r = cli_open_db(cli, config, db);
        if (r != 0)
                return r;
        if (!task)
                return 0;
        r = queue_get(*db, *id, task);
        if (r == -ENOENT)
                fprintf(stderr, "jada-agent: no task %lld\n", (long long)*id);
        else if (r < 0)
                fprintf(stderr, "jada-agent: cannot read task %lld: %s\n", (long long)*id, cli_db_error(r));
        if (r < 0) {
                *db = store_close(*db);
                *config = config_free(*config);
                return EXIT_ERROR;
        }
        return 0;
}

/* cancel, retry, done, reply: one transition each, refused when illegal. */
static int task_action(struct cli *cli, enum task_action action, int argc, char **argv)
{
        static const struct option opts[] = { CLI_COMMON_LONG, {} };
        struct jada_config *config = NULL;
        _cleanup_free_ char *text = NULL;
        enum task_state from = TASK_QUEUED;
        struct store *db = NULL;
        int64_t id, now = now_seconds();
        bool takes_text = task_action_takes_text(action);
        char why[512];
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1)
                if (cli_common_option(cli, c) < 0)
                        return task_usage();
        if (argc - optind != (takes_text ? 2 : 1))
                return task_usage();
        if (takes_text) {
                r = read_text("reply", argv[optind + 1], &text);
                if (r != 0)
                        return r;
        }
        r = load_task(cli, argv[optind], &config, &db, NULL, &id);
        if (r != 0)
                return r;
        r = task_action_apply(db, id, action, text, now, &from, why, sizeof why);
        store_close(db);
        if (r < 0) {
                fprintf(stderr, "jada-agent: %s\n", why);
                config_free(config);
                return EXIT_ERROR;
        }
        printf("task %lld: %s → %s\n", (long long)id, task_state_name(from),
               task_state_name(action == TASK_ACTION_CANCEL ? TASK_CANCELLED
                               : action == TASK_ACTION_DONE ? TASK_DONE : TASK_QUEUED));
        if (action == TASK_ACTION_CANCEL && r > 0)
                printf("and %d unfinished sub-task%s cancelled with it\n", r, r == 1 ? "" : "s");
        fflush(stdout);
        /* Queued: run it now. Cancelled: a running session must stop now.
         * Done: what the daemon reports (tasks that need you) changed. */
        wake_daemon(config);
        config_free(config);
        return EXIT_OK;
}

static int task_budget(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = { CLI_COMMON_LONG, {} };
        struct jada_config *config = NULL;
        struct store *db = NULL;
        double usd;
        int64_t id;
        int c, r;

        while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1)
                if (cli_common_option(cli, c) < 0)
                        return task_usage();
        if (argc - optind != 2)
                return task_usage();
        if (parse_usd(argv[optind + 1], &usd) < 0) {
                fprintf(stderr, "jada-agent: '%s' is not an amount of USD above 0 (e.g. 5.00)\n", argv[optind + 1]);
                return EXIT_USAGE;
        }
        r = load_task(cli, argv[optind], &config, &db, NULL, &id);
        if (r != 0)
                return r;
        r = queue_set_max_cost(db, id, usd, now_seconds());
        store_close(db);
        config_free(config);
        if (r == -ENOENT)
                fprintf(stderr, "jada-agent: no task %lld\n", (long long)id);
        else if (r < 0)
                fprintf(stderr, "jada-agent: task %lld: %s\n", (long long)id, cli_db_error(r));
        if (r < 0)
                return EXIT_ERROR;
        printf("task %lld: cost cap $%.2f\n", (long long)id, usd);
        return EXIT_OK;
}

static void task_help(FILE *f)
{
        fprintf(f,
                "usage: jada-agent task add [--title T] [--priority N] [--after TIME] [--project NAME]\n"
                "                           [--max-cost USD] [--parent ID] [--after-task ID[,ID...]] PROMPT|-\n"
                "       jada-agent task list [--state S] [--project NAME] [--tree] [--json]\n"
                "       jada-agent task show ID [--json]\n"
                "       jada-agent task diff ID [--stat]\n"
                "       jada-agent task cancel ID | retry ID | done ID | reply ID TEXT|-\n"
                "       jada-agent task budget ID USD\n"
                "\n"
                "PROMPT '-' reads it from stdin (up to 1 MiB). --after takes a UTC time\n"
                "(2026-11-30T09:00:00Z) or a duration from now (2h). A higher --priority\n"
                "runs first (default 0, from -1000 to 1000). --project runs the task on its\n"
                "own branch jada/task-ID of that project ([daemon] default_project if not\n"
                "given); task diff shows that branch against its base. --max-cost caps what\n"
                "the task may cost over all its sessions ([claude] max_cost_per_task_usd if\n"
                "not given); task budget sets a new cap (then reply, if it waits on it).\n"
                "--parent adds a sub-task of ID (its project, base branch and priority\n"
                "unless given); ID waits for its sub-tasks, then resumes with their\n"
                "results. --after-task runs the task only once all of those are done.\n"
                "Cancelling a task cancels its unfinished sub-tasks too.\n");
}

int cmd_task(struct cli *cli, int argc, char **argv)
{
        if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
            strcmp(argv[1], "-h") == 0) {
                task_help(argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        /* The subcommand's own getopt sees argv from its name on. */
        argc--;
        argv++;
        optind = 0;
        if (strcmp(argv[0], "add") == 0)
                return task_add(cli, argc, argv);
        if (strcmp(argv[0], "list") == 0)
                return task_list(cli, argc, argv);
        if (strcmp(argv[0], "show") == 0)
                return task_show(cli, argc, argv);
        if (strcmp(argv[0], "diff") == 0)
                return task_diff(cli, argc, argv);
        if (strcmp(argv[0], "budget") == 0)
                return task_budget(cli, argc, argv);
        if (task_action_from_name(argv[0]) >= 0)
                return task_action(cli, (enum task_action)task_action_from_name(argv[0]), argc, argv);
        fprintf(stderr, "jada-agent: unknown task command '%s'\n\n", argv[0]);
        task_help(stderr);
        return EXIT_USAGE;
}
