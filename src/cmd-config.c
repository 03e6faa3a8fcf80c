/* SPDX-License-Identifier: MIT */
/* jada-agent check-config: validate a config file without running anything. */
#include "jada/cli.h"
#include "jada/config.h"
#include "jada/job.h"
#include "jada/project.h"
#include "jada/util.h"

#include <getopt.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define UNIT "jada-agent.service"

/* Whether dir is under one of the unit's ReadWritePaths= (space-separated;
 * an entry may start with '-' or '+', systemd's prefixes). */
static bool unit_writable(const char *paths, const char *dir)
{
        _cleanup_free_ char *copy = xstrdup(paths);
        char *save = NULL;

        for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                size_t n;
                w += strspn(w, "-+");
                n = strlen(w);
                while (n > 1 && w[n - 1] == '/')
                        w[--n] = '\0';
                if (strncmp(dir, w, n) == 0 && (dir[n] == '\0' || dir[n] == '/' || n == 1))
                        return true;
        }
        return false;
}

/* Under systemd, what the installed unit lets the daemon write: with
 * ProtectSystem=strict, a project outside the state directory needs a
 * ReadWritePaths=. Returns the number of problems printed. */
static size_t check_unit_paths(const struct jada_config *c, const char *file)
{
        static const char *const argv[] = { "systemctl", "show", "-p", "ProtectSystem", "-p", "ReadWritePaths",
                                            "-p", "LoadState", UNIT, NULL };
        const char *path = getenv("PATH");
        _cleanup_free_ char *path_env = xasprintf("PATH=%s", path ? path : "/usr/bin:/bin");
        const char *env[] = { path_env, "LC_ALL=C", "SYSTEMD_PAGER=", NULL };
        struct job_result res = { 0 };
        const char *protect = "", *rw = "", *load = "";
        size_t bad = 0;

        if (c->n_projects == 0 || access("/run/systemd/system", F_OK) < 0)
                return 0;
        if (job_run(&(struct job_spec){ .argv = argv, .env = env, .cwd = "/", .timeout = 10 * USEC_PER_SEC,
                                        .capture_max = 64 * 1024, .stdout_fd = -1 }, &res) < 0 || res.status != 0) {
                job_result_clear(&res);
                return 0;
        }
        for (char *save = NULL, *line = strtok_r(res.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (strncmp(line, "ProtectSystem=", 14) == 0)
                        protect = line + 14;
                else if (strncmp(line, "ReadWritePaths=", 15) == 0)
                        rw = line + 15;
                else if (strncmp(line, "LoadState=", 10) == 0)
                        load = line + 10;
        }
        if (strcmp(load, "loaded") == 0 && strcmp(protect, "strict") == 0)
                for (size_t i = 0; i < c->n_projects; i++) {
                        const struct project_config *p = &c->projects[i];
                        if (strncmp(p->path, c->daemon.state_dir, strlen(c->daemon.state_dir)) == 0 ||
                            unit_writable(rw, p->path))
                                continue;
                        fprintf(stderr, "%s:%u: [project %s] %s is read-only for " UNIT " (ProtectSystem=strict): "
                                "add ReadWritePaths=%s with systemctl edit jada-agent, then restart it\n",
                                file, p->line, p->name, p->path, p->path);
                        bad++;
                }
        job_result_clear(&res);
        return bad;
}

/* Each project's path and base, as this user sees them (the daemon's user
 * may see less: its own `jada-agent status` says so). */
static size_t check_projects(const struct jada_config *c, const char *file)
{
        size_t bad = 0;

        for (size_t i = 0; i < c->n_projects; i++) {
                _cleanup_free_ char *why = NULL;
                if (project_check(c, &c->projects[i], &why) < 0) {
                        fprintf(stderr, "%s:%u: %s\n", file, c->projects[i].line, why);
                        bad++;
                }
        }
        return bad + check_unit_paths(c, file);
}

/* Whether the unit gives the daemon the credential web-token: in this
 * process's own credentials (run under the unit), in /etc/credstore (what
 * LoadCredential= finds by name), or named by the installed unit. */
static bool web_token_given(void)
{
        static const char *const argv[] = { "systemctl", "show", "-p", "LoadCredential", "-p", "SetCredential",
                                            "-p", "LoadCredentialEncrypted", "-p", "SetCredentialEncrypted", UNIT,
                                            NULL };
        _cleanup_free_ char *own = credential_path("web-token");
        const char *path = getenv("PATH");
        _cleanup_free_ char *path_env = xasprintf("PATH=%s", path ? path : "/usr/bin:/bin");
        const char *env[] = { path_env, "LC_ALL=C", "SYSTEMD_PAGER=", NULL };
        struct job_result res = { 0 };
        bool found;

        if (own || access("/etc/credstore/web-token", F_OK) == 0 || access("/etc/credstore.encrypted/web-token", F_OK) == 0)
                return true;
        if (access("/run/systemd/system", F_OK) < 0)
                return false;
        if (job_run(&(struct job_spec){ .argv = argv, .env = env, .cwd = "/", .timeout = 10 * USEC_PER_SEC,
                                        .capture_max = 64 * 1024, .stdout_fd = -1 }, &res) < 0 || res.status != 0) {
                job_result_clear(&res);
                return false;
        }
        found = strstr(res.out, "web-token") != NULL;
        job_result_clear(&res);
        return found;
}

/* A dashboard beyond this machine needs its login token. */
static size_t check_web(const struct jada_config *c, const char *file)
{
        struct sockaddr_storage ss;
        unsigned len;
        bool loopback = true;
        char why[200];

        if (!*c->web.listen || config_parse_listen(c->web.listen, &ss, &len, &loopback, why, sizeof why) < 0 ||
            loopback || web_token_given())
                return 0;
        fprintf(stderr, "%s:%u: [web] listen = %s is not a loopback address, and the daemon has no credential "
                "web-token: put a long random line in /etc/credstore/web-token (umask 077; openssl rand -hex 32 > ...), "
                "or listen on 127.0.0.1 and use ssh -L\n",
                file, c->web.listen_line, c->web.listen);
        return 1;
}

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
        {
                size_t bad = check_projects(config, cli->config_path) + check_web(config, cli->config_path);
                config_free(config);
                if (bad > 0) {
                        fprintf(stderr, "%s: %zu problem%s\n", cli->config_path, bad, bad == 1 ? "" : "s");
                        return EXIT_CONFIG;
                }
        }
        printf("%s: OK\n", cli->config_path);
        return EXIT_OK;
}
