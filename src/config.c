/* SPDX-License-Identifier: MIT */
#include "jada/config.h"
#include "config-private.h"
#include "jada/log.h"
#include "jada/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A config file is a few KiB; anything near this is not one. */
#define CONFIG_MAX_SIZE (1024 * 1024)

enum key_type {
        KEY_STRING,     /* printable, may be empty */
        KEY_NONEMPTY,   /* printable, must not be empty */
        KEY_TOKEN,      /* no spaces: ids, model names */
        KEY_PATH,       /* relative paths are resolved against the config's directory */
        KEY_URL,        /* http:// or https://, or empty */
        KEY_DURATION,
        KEY_UINT,
        KEY_DOUBLE,
        KEY_BOOL,
        KEY_ENUM,
        KEY_ARGS,
};

struct config_key {
        const char *section;
        const char *name;
        enum key_type type;
        size_t offset;
        const char *def;                /* default, parsed like a value from the file */
        double min, max;                /* KEY_UINT, KEY_DOUBLE; durations in seconds */
        const char *const *choices;     /* KEY_ENUM, stored as index (int) or string */
        bool enum_as_string;
};

#define OFF(field) offsetof(struct jada_config, field)

static const char *const permission_modes[] = {
        "acceptEdits", "default", "plan", "bypassPermissions", "dontAsk", NULL,
};
static const char *const auth_modes[] = { "oauth", "service_account", NULL };

/* Every key of DESIGN.md §4. Ranges reject values that are certainly
 * mistakes (a 0 s poll would spin; a 10-year timeout is a typo). */
static const struct config_key config_keys[] = {
        { "daemon", "state_dir",      KEY_PATH,     OFF(daemon.state_dir),      "" },
        { "daemon", "poll_interval",  KEY_DURATION, OFF(daemon.poll_interval),  "60s", 1, 86400 },
        { "daemon", "retention",      KEY_DURATION, OFF(daemon.retention),      "30d", 3600, 3650.0 * 86400 },
        { "daemon", "default_project", KEY_TOKEN,   OFF(daemon.default_project), "" },
        { "daemon", "git_timeout",    KEY_DURATION, OFF(daemon.git_timeout),    "5min", 1, 86400 },

        { "claude", "command",               KEY_NONEMPTY, OFF(claude.command),               "claude" },
        { "claude", "max_turns",             KEY_UINT,     OFF(claude.max_turns),             "30", 1, 1000 },
        { "claude", "sessions_per_day",      KEY_UINT,     OFF(claude.sessions_per_day),      "5", 1, 1000 },
        { "claude", "max_sessions_per_task", KEY_UINT,     OFF(claude.max_sessions_per_task), "3", 1, 100 },
        { "claude", "max_task_depth",        KEY_UINT,     OFF(claude.max_task_depth),        "3", 1, 100 },
        { "claude", "max_children_per_task", KEY_UINT,     OFF(claude.max_children_per_task), "20", 1, 1000 },
        { "claude", "max_attempts",          KEY_UINT,     OFF(claude.max_attempts),          "5", 1, 100 },
        { "claude", "session_timeout",       KEY_DURATION, OFF(claude.session_timeout),       "45min", 10, 7 * 86400 },
        { "claude", "idle_timeout",          KEY_DURATION, OFF(claude.idle_timeout),          "10min", 10, 86400 },
        { "claude", "daily_cost_limit_usd",  KEY_DOUBLE,   OFF(claude.daily_cost_limit_usd),  "0", 0, 1e6 },
        { "claude", "max_cost_per_task_usd", KEY_DOUBLE,   OFF(claude.max_cost_per_task_usd), "0", 0, 1e6 },
        { "claude", "concurrency",           KEY_UINT,     OFF(claude.concurrency),           "1", 1, 64 },
        { "claude", "permission_mode",       KEY_ENUM,     OFF(claude.permission_mode),       "acceptEdits", 0, 0, permission_modes, true },
        { "claude", "allowed_tools",         KEY_STRING,   OFF(claude.allowed_tools),         "" },
        { "claude", "model",                 KEY_TOKEN,    OFF(claude.model),                 "" },
        { "claude", "extra_args",            KEY_ARGS,     OFF(claude.extra_args),            "" },

        { "sheets", "enabled",            KEY_BOOL,     OFF(sheets.enabled),            "no" },
        { "sheets", "spreadsheet_id",     KEY_TOKEN,    OFF(sheets.spreadsheet_id),     "" },
        { "sheets", "range",              KEY_NONEMPTY, OFF(sheets.range),              "Ports!A1:Z" },
        { "sheets", "interval",           KEY_DURATION, OFF(sheets.interval),           "30min", 60, 86400 },
        { "sheets", "auth",               KEY_ENUM,     OFF(sheets.auth),               "oauth", 0, 0, auth_modes, false },
        { "sheets", "client_id",          KEY_TOKEN,    OFF(sheets.client_id),          "" },
        { "sheets", "client_secret_file", KEY_PATH,     OFF(sheets.client_secret_file), "" },
        { "sheets", "progress_range",     KEY_STRING,   OFF(sheets.progress_range),     "" },
        { "sheets", "token_url",          KEY_URL,      OFF(sheets.token_url),          "https://oauth2.googleapis.com/token" },
        { "sheets", "api_url",            KEY_URL,      OFF(sheets.api_url),            "https://sheets.googleapis.com" },

        { "alerts", "webhook_url", KEY_URL,    OFF(alerts.webhook_url), "" },
        { "alerts", "notify",      KEY_STRING, OFF(alerts.notify),      "needs_you failed" },
        { "alerts", "command",     KEY_STRING, OFF(alerts.command),     "" },

        { "web", "listen", KEY_STRING, OFF(web.listen), "" },
        { "web", "url",    KEY_URL,    OFF(web.url),    "" },

        { "metrics", "textfile", KEY_PATH, OFF(metrics.textfile), "" },

        { "database", "url",       KEY_STRING,   OFF(database.url),       "" },
        { "database", "node_name", KEY_TOKEN,    OFF(database.node_name), "" },
        { "database", "lease",     KEY_DURATION, OFF(database.lease),     "60s", 3, 86400 },
};
#define N_KEYS (sizeof config_keys / sizeof config_keys[0])
_Static_assert(N_KEYS <= CONFIG_FIXED_KEYS_MAX, "raise CONFIG_FIXED_KEYS_MAX");

static const char *const config_sections[] = {
        "daemon", "claude", "sheets", "alerts", "web", "metrics", "database", NULL,
};

void config_add_problem(struct config_problems *problems, unsigned line, const char *fmt, ...)
{
        struct config_problem *items;
        va_list ap;
        char *msg;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (!msg)
                abort(); /* out of memory on a short string */

        items = xreallocarray(problems->items, problems->n + 1, sizeof *items);
        items[problems->n++] = (struct config_problem){ .line = line, .message = msg };
        problems->items = items;
}

void config_problems_clear(struct config_problems *problems)
{
        for (size_t i = 0; i < problems->n; i++)
                free(problems->items[i].message);
        free(problems->items);
        free(problems->file);
        *problems = (struct config_problems){ 0 };
}

void config_problems_log(const struct config_problems *problems)
{
        for (size_t i = 0; i < problems->n; i++) {
                _cleanup_free_ char *file = xasprintf("JADA_CONFIG_FILE=%s", problems->file);
                _cleanup_free_ char *line = xasprintf("JADA_CONFIG_LINE=%u", problems->items[i].line);
                log_fields(LOG_ERR, JADA_FIELDS(file, line), "%s:%u: %s", problems->file,
                           problems->items[i].line, problems->items[i].message);
        }
}

void config_problems_print(const struct config_problems *problems)
{
        for (size_t i = 0; i < problems->n; i++)
                fprintf(stderr, "%s:%u: %s\n", problems->file, problems->items[i].line,
                        problems->items[i].message);
}

/* `make run` starts ./jada-agent with the tree's development config; the
 * same binary typed in a second terminal (`./jada-agent task add ...`) must
 * reach that daemon, not a missing /etc/jada-agent.conf. An installed
 * binary has no Makefile beside it. */
static const char *source_tree_config(void)
{
        static char path[PATH_MAX];
        char exe[PATH_MAX], *slash;
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

        if (n <= 0)
                return NULL;
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (!slash)
                return NULL;
        *slash = '\0';
        if ((size_t)snprintf(path, sizeof path, "%s/Makefile", exe) >= sizeof path || access(path, F_OK) < 0)
                return NULL;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", exe, JADA_DEV_CONFIG) >= sizeof path ||
            access(path, R_OK) < 0)
                return NULL;
        return path;
}

const char *config_default_path(void)
{
        const char *e = getenv("JADA_AGENT_CONFIG"), *dev;

        if (e && *e)
                return e;
        dev = source_tree_config();
        return dev ? dev : JADA_DEFAULT_CONFIG;
}

/* ---- values ------------------------------------------------------------- */

bool config_printable(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

/* Splits a value into words the way a shell would, without expansion:
 * whitespace separates, '...' and "..." quote, backslash escapes. */
static int split_args(const char *s, char ***ret)
{
        char **argv = NULL, *word = NULL;
        size_t n = 0, len = 0;
        bool in_word = false;
        char quote = 0;

        word = xmalloc(strlen(s) + 1);
        for (;; s++) {
                char c = *s;
                if (!quote && (c == '\0' || c == ' ' || c == '\t')) {
                        if (in_word) {
                                word[len] = '\0';
                                argv = xreallocarray(argv, n + 2, sizeof *argv);
                                argv[n++] = xstrdup(word);
                                argv[n] = NULL;
                                len = 0;
                                in_word = false;
                        }
                        if (c == '\0')
                                break;
                        continue;
                }
                if (c == '\0') {
                        free(word);
                        strv_free(argv);
                        return -EINVAL; /* unterminated quote */
                }
                in_word = true;
                if (quote) {
                        if (c == quote)
                                quote = 0;
                        else if (c == '\\' && quote == '"' && (s[1] == '"' || s[1] == '\\'))
                                word[len++] = *++s;
                        else
                                word[len++] = c;
                } else if (c == '\'' || c == '"') {
                        quote = c;
                } else if (c == '\\' && s[1]) {
                        word[len++] = *++s;
                } else {
                        word[len++] = c;
                }
        }
        free(word);
        if (!argv)
                argv = xcalloc(1, sizeof *argv);
        *ret = argv;
        return 0;
}

char *config_resolve_path(const struct parser *p, const char *value)
{
        if (!*value)
                return xstrdup(value);
        return path_join_normalize(p->base_dir, value);
}

static void free_value(const struct config_key *k, struct jada_config *c)
{
        void *field = (char *)c + k->offset;

        switch (k->type) {
        case KEY_STRING: case KEY_NONEMPTY: case KEY_TOKEN: case KEY_PATH: case KEY_URL:
                free(*(char **)field);
                *(char **)field = NULL;
                break;
        case KEY_ENUM:
                if (k->enum_as_string) {
                        free(*(char **)field);
                        *(char **)field = NULL;
                }
                break;
        case KEY_ARGS:
                strv_free(*(char ***)field);
                *(char ***)field = NULL;
                break;
        default:
                break;
        }
}

/* Parses and stores one value; on a bad value the field keeps what it had
 * and a problem is recorded. */
static void set_value(struct parser *p, const struct config_key *k, const char *value, unsigned line)
{
        struct jada_config *c = p->config;
        void *field = (char *)c + k->offset;
        const char *sect = k->section, *key = k->name;

        if (!config_printable(value)) {
                config_add_problem(p->problems, line, "[%s] %s: control characters are not allowed", sect, key);
                return;
        }

        switch (k->type) {
        case KEY_STRING:
        case KEY_NONEMPTY:
        case KEY_TOKEN:
                if (k->type == KEY_NONEMPTY && !*value) {
                        config_add_problem(p->problems, line, "[%s] %s: must not be empty", sect, key);
                        return;
                }
                if (k->type == KEY_TOKEN && strpbrk(value, " \t\"'")) {
                        config_add_problem(p->problems, line, "[%s] %s: '%s' must be one word (no spaces or quotes)", sect, key, value);
                        return;
                }
                free_value(k, c);
                *(char **)field = xstrdup(value);
                return;

        case KEY_PATH:
                free_value(k, c);
                *(char **)field = config_resolve_path(p, value);
                return;

        case KEY_URL:
                if (*value && strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0) {
                        config_add_problem(p->problems, line, "[%s] %s: '%s' is not an http:// or https:// URL", sect, key, value);
                        return;
                }
                if (*value && (strpbrk(value, " \t") || strstr(value, "://")[3] == '\0' ||
                               strstr(value, "://")[3] == '/')) {
                        config_add_problem(p->problems, line, "[%s] %s: '%s' is not a valid URL", sect, key, value);
                        return;
                }
                free_value(k, c);
                *(char **)field = xstrdup(value);
                return;

        case KEY_DURATION: {
                uint64_t usec;
                char lo[32], hi[32];
                int r = duration_parse(value, &usec);
                if (r < 0) {
                        config_add_problem(p->problems, line,
                                "[%s] %s: '%s' is not a duration (use e.g. 90s, 30min, 2h, 1d)", sect, key, value);
                        return;
                }
                if ((double)usec < k->min * 1e6 || (double)usec > k->max * 1e6) {
                        config_add_problem(p->problems, line, "[%s] %s: %s is out of range (%s to %s)", sect, key, value,
                                duration_format(lo, sizeof lo, (uint64_t)(k->min * 1e6)),
                                duration_format(hi, sizeof hi, (uint64_t)(k->max * 1e6)));
                        return;
                }
                *(uint64_t *)field = usec;
                return;
        }

        case KEY_UINT: {
                char *end;
                unsigned long long v;
                errno = 0;
                if (!isdigit((unsigned char)value[0])) {
                        config_add_problem(p->problems, line, "[%s] %s: '%s' is not a whole number", sect, key, value);
                        return;
                }
                v = strtoull(value, &end, 10);
                if (*end) {
                        config_add_problem(p->problems, line, "[%s] %s: '%s' is not a whole number", sect, key, value);
                        return;
                }
                if (errno == ERANGE || v < (unsigned long long)k->min || v > (unsigned long long)k->max) {
                        config_add_problem(p->problems, line, "[%s] %s: %s is out of range (%.0f to %.0f)", sect, key, value, k->min, k->max);
                        return;
                }
                *(unsigned *)field = (unsigned)v;
                return;
        }

        case KEY_DOUBLE: {
                char *end;
                double v;
                errno = 0;
                if (!isdigit((unsigned char)value[0]) && value[0] != '.') {
                        config_add_problem(p->problems, line, "[%s] %s: '%s' is not a number", sect, key, value);
                        return;
                }
                v = strtod(value, &end);
                if (*end || errno == ERANGE || !isfinite(v)) {
                        config_add_problem(p->problems, line, "[%s] %s: '%s' is not a number", sect, key, value);
                        return;
                }
                if (v < k->min || v > k->max) {
                        config_add_problem(p->problems, line, "[%s] %s: %s is out of range (%g to %g)", sect, key, value, k->min, k->max);
                        return;
                }
                *(double *)field = v;
                return;
        }

        case KEY_BOOL: {
                static const char *const yes[] = { "yes", "true", "on", "1", NULL };
                static const char *const no[] = { "no", "false", "off", "0", NULL };
                for (size_t i = 0; yes[i]; i++)
                        if (strcasecmp(value, yes[i]) == 0) {
                                *(bool *)field = true;
                                return;
                        }
                for (size_t i = 0; no[i]; i++)
                        if (strcasecmp(value, no[i]) == 0) {
                                *(bool *)field = false;
                                return;
                        }
                config_add_problem(p->problems, line, "[%s] %s: '%s' is not a boolean (yes or no)", sect, key, value);
                return;
        }

        case KEY_ENUM:
                for (size_t i = 0; k->choices[i]; i++) {
                        if (strcmp(value, k->choices[i]) != 0)
                                continue;
                        if (k->enum_as_string) {
                                free_value(k, c);
                                *(char **)field = xstrdup(value);
                        } else {
                                *(int *)field = (int)i;
                        }
                        return;
                }
                {
                        char *list = strv_join(k->choices, ", ");
                        config_add_problem(p->problems, line, "[%s] %s: '%s' is not one of: %s", sect, key, value, list);
                        free(list);
                }
                return;

        case KEY_ARGS: {
                char **argv;
                if (split_args(value, &argv) < 0) {
                        config_add_problem(p->problems, line, "[%s] %s: unterminated quote", sect, key);
                        return;
                }
                free_value(k, c);
                *(char ***)field = argv;
                return;
        }
        }
}

/* ---- the file ------------------------------------------------------------ */

static char *strip(char *s)
{
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                *--e = '\0';
        return s;
}

static bool known_section(const char *name)
{
        for (size_t i = 0; config_sections[i]; i++)
                if (strcmp(config_sections[i], name) == 0)
                        return true;
        return false;
}

static const struct config_key *find_key(const char *section, const char *name, size_t *index)
{
        for (size_t i = 0; i < N_KEYS; i++)
                if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].name, name) == 0) {
                        *index = i;
                        return &config_keys[i];
                }
        return NULL;
}

static void parse_line(struct parser *p, char *raw, unsigned line, char **section, bool *section_ok)
{
        char *s = strip(raw), *eq, *key, *value, *hash;
        const struct config_key *k;
        size_t idx;

        if (!*s || *s == '#' || *s == ';')
                return;

        if (*s == '[') {
                char *end = strchr(s, ']');
                if (!end || *strip(end + 1)) {
                        config_add_problem(p->problems, line, "malformed section header '%s' (expected [name])", s);
                        *section_ok = false;
                        free(*section);
                        *section = NULL;
                        return;
                }
                *end = '\0';
                free(*section);
                *section = xstrdup(strip(s + 1));
                p->project = -1;
                if (strncmp(*section, "project", 7) == 0 && (!(*section)[7] || (*section)[7] == ' ' ||
                                                           (*section)[7] == '\t')) {
                        *section_ok = config_project_section(p, strip(*section + 7), line);
                        return;
                }
                *section_ok = known_section(*section);
                if (!*section_ok)
                        config_add_problem(p->problems, line, "unknown section [%s]", *section);
                return;
        }

        eq = strchr(s, '=');
        if (!eq) {
                config_add_problem(p->problems, line, "missing '=' in '%s' (expected key = value)", s);
                return;
        }
        *eq = '\0';
        key = strip(s);
        value = eq + 1;
        /* An inline comment starts at a '#' that follows whitespace, so that
         * "poll_interval = 60s   # a minute" works and URLs keep their '#'. */
        for (hash = value; (hash = strchr(hash, '#')); hash++)
                if (hash > value && (hash[-1] == ' ' || hash[-1] == '\t')) {
                        *hash = '\0';
                        break;
                }
        value = strip(value);

        if (!*key) {
                config_add_problem(p->problems, line, "missing key before '='");
                return;
        }
        if (!*section) {
                if (*section_ok) /* first key outside any section */
                        config_add_problem(p->problems, line, "'%s' is outside of a section (add e.g. [daemon] above it)", key);
                return;
        }
        if (!*section_ok)
                return; /* already reported the section; keys in it would only add noise */

        if (p->project >= 0) {
                config_project_key(p, key, value, line);
                return;
        }
        k = find_key(*section, key, &idx);
        if (!k) {
                config_add_problem(p->problems, line, "unknown key '%s' in section [%s]", key, *section);
                return;
        }
        if (p->set_line[idx]) {
                config_add_problem(p->problems, line, "duplicate key '%s' in [%s] (first set on line %u)", key, *section,
                        p->set_line[idx]);
                return;
        }
        p->set_line[idx] = line;
        set_value(p, k, value, line);
}

static unsigned find_key_line(const struct parser *p, const char *section, const char *name)
{
        size_t i;

        return find_key(section, name, &i) ? p->set_line[i] : 0;
}

static void check_consistency(struct parser *p)
{
        struct jada_config *c = p->config;
        size_t i_enabled, i_auth;
        unsigned line;

        config_projects_check(p);
        config_web_check(p, find_key_line(p, "alerts", "notify"), find_key_line(p, "web", "listen"));
        config_database_check(p, find_key_line(p, "database", "url"), find_key_line(p, "database", "node_name"));
        if (*c->daemon.default_project && !config_project(c, c->daemon.default_project)) {
                size_t i_default;
                find_key("daemon", "default_project", &i_default);
                config_add_problem(p->problems, p->set_line[i_default],
                                   "[daemon] default_project: there is no [project %s] in this file",
                                   c->daemon.default_project);
        }
        find_key("sheets", "enabled", &i_enabled);
        find_key("sheets", "auth", &i_auth);
        line = p->set_line[i_enabled];

        if (!c->sheets.enabled)
                return;
        if (!*c->sheets.spreadsheet_id)
                config_add_problem(p->problems, line, "[sheets] enabled = yes needs spreadsheet_id");
        if (c->sheets.auth == SHEETS_AUTH_OAUTH && !*c->sheets.client_id)
                config_add_problem(p->problems, line, "[sheets] auth = oauth needs client_id");
}

static char *base_dir_of(const char *name)
{
        char *copy = xstrdup(name), *slash = strrchr(copy, '/'), *dir, *out;

        if (!slash) {
                free(copy);
                return xgetcwd();
        }
        if (slash == copy)
                slash[1] = '\0';
        else
                *slash = '\0';
        dir = realpath(copy, NULL);
        if (!dir) {
                /* Not on disk (a test buffer): keep it, made absolute. */
                if (copy[0] == '/')
                        return copy;
                char *cwd = xgetcwd();
                if (asprintf(&out, "%s/%s", cwd, copy) < 0)
                        abort();
                free(cwd);
                free(copy);
                return out;
        }
        free(copy);
        return dir;
}

struct jada_config *config_free(struct jada_config *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < N_KEYS; i++)
                free_value(&config_keys[i], c);
        config_projects_free(c);
        free(c->path);
        free(c);
        return NULL;
}

int config_parse_buffer(const char *name, const char *data, size_t size,
                        struct jada_config **ret, struct config_problems *problems)
{
        struct parser p = { .name = name, .problems = problems, .project = -1 };
        char *section = NULL, *copy, *line, *next;
        bool section_ok = true;
        unsigned lineno = 0;
        size_t before = problems->n;

        if (!problems->file)
                problems->file = xstrdup(name);

        p.config = xcalloc(1, sizeof *p.config);
        p.config->path = xstrdup(name);
        p.base_dir = base_dir_of(name);

        /* Defaults go through the same parser as file values. */
        for (size_t i = 0; i < N_KEYS; i++)
                set_value(&p, &config_keys[i], config_keys[i].def, 0);
        memset(p.set_line, 0, sizeof p.set_line);

        copy = xmalloc(size + 1);
        memcpy(copy, data, size);
        copy[size] = '\0';
        for (line = copy; line < copy + size; line = next) {
                char *nl = memchr(line, '\n', (size_t)(copy + size - line));
                size_t len = (size_t)((nl ? nl : copy + size) - line);

                next = nl ? nl + 1 : copy + size;
                if (nl)
                        *nl = '\0';
                lineno++;
                if (memchr(line, '\0', len)) {
                        config_add_problem(problems, lineno, "line contains a NUL byte: not a text file");
                        continue;
                }
                parse_line(&p, line, lineno, &section, &section_ok);
        }
        free(copy);
        free(section);

        check_consistency(&p);

        /* state_dir: empty means systemd's StateDirectory=, else the default. */
        if (!*p.config->daemon.state_dir) {
                const char *sd = getenv("STATE_DIRECTORY");
                free(p.config->daemon.state_dir);
                /* StateDirectory= may list several, separated by ':'; ours is the first. */
                p.config->daemon.state_dir = xstrndup(sd && *sd ? sd : JADA_DEFAULT_STATE_DIR,
                                                      sd && *sd ? strcspn(sd, ":") : strlen(JADA_DEFAULT_STATE_DIR));
        }
        free(p.base_dir);

        if (problems->n > before) {
                config_free(p.config);
                return -EINVAL;
        }
        *ret = p.config;
        return 0;
}

int config_load(const char *path, struct jada_config **ret, struct config_problems *problems)
{
        char *data = NULL;
        size_t size = 0;
        int r;

        if (!problems->file)
                problems->file = xstrdup(path);
        r = read_file_capped(path, CONFIG_MAX_SIZE, &data, &size);
        if (r == -EFBIG) {
                config_add_problem(problems, 0, "file is larger than %d bytes: not a config file", CONFIG_MAX_SIZE);
                return -EINVAL;
        }
        if (r < 0) {
                config_add_problem(problems, 0, "cannot read: %s", strerror(-r));
                return -EINVAL;
        }
        r = config_parse_buffer(path, data, size, ret, problems);
        free(data);
        return r;
}
