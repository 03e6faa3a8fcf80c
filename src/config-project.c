/* SPDX-License-Identifier: MIT */
/*
 * The [project NAME] sections: one per git repository (or directory) the
 * agent works in. What can be checked without touching the disk is checked
 * here; whether the path is a repository the daemon may write is
 * project_check()'s (check-config and the daemon call it).
 */
#include "config-private.h"
#include "jada/util.h"

#include <string.h>

enum project_key {
        PK_PATH, PK_BASE, PK_ISOLATION, PK_PUSH, PK_AUTHOR, PK_ON_DONE, _PK_MAX,
};

static const char *const project_keys[_PK_MAX] = {
        [PK_PATH] = "path", [PK_BASE] = "base", [PK_ISOLATION] = "isolation",
        [PK_PUSH] = "push", [PK_AUTHOR] = "author", [PK_ON_DONE] = "on_done",
};

#define DEFAULT_AUTHOR_NAME "jada-agent"
#define DEFAULT_AUTHOR_EMAIL "jada-agent@localhost"

_Static_assert(_PK_MAX <= sizeof ((struct parser *)0)->project_set_line / sizeof(unsigned), "project keys");

const struct project_config *config_project(const struct jada_config *c, const char *name)
{
        for (size_t i = 0; name && i < c->n_projects; i++)
                if (strcmp(c->projects[i].name, name) == 0)
                        return &c->projects[i];
        return NULL;
}

static bool valid_name(const char *name)
{
        size_t n = strlen(name);

        if (n == 0 || n > PROJECT_NAME_MAX)
                return false;
        return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

bool config_project_section(struct parser *p, const char *name, unsigned line)
{
        struct jada_config *c = p->config;
        struct project_config *pc;

        if (!valid_name(name)) {
                config_add_problem(p->problems, line,
                                   "[project %s]: a project name is 1 to %d of a-z, 0-9, _ and -", name,
                                   PROJECT_NAME_MAX);
                return false;
        }
        if ((pc = (struct project_config *)config_project(c, name))) {
                config_add_problem(p->problems, line, "[project %s] is defined twice (first on line %u)", name,
                                   pc->line);
                return false;
        }
        c->projects = xreallocarray(c->projects, c->n_projects + 1, sizeof *c->projects);
        c->projects[c->n_projects] = (struct project_config){
                .name = xstrdup(name), .path = xstrdup(""), .base = xstrdup(""), .push = xstrdup(""),
                .author_name = xstrdup(DEFAULT_AUTHOR_NAME), .author_email = xstrdup(DEFAULT_AUTHOR_EMAIL),
                .on_done = xstrdup(""), .isolation = PROJECT_WORKTREE, .line = line,
        };
        p->project = (long)c->n_projects++;
        memset(p->project_set_line, 0, sizeof p->project_set_line);
        return true;
}

/* A ref or remote name given to git as an argument: one word that git
 * cannot take for an option. git itself checks the rest (check_ref_format). */
static bool git_word(const char *s)
{
        return *s != '-' && !strpbrk(s, " \t\"'\\:?*[~^") && !strstr(s, "..");
}

/* "Name <email>", as git writes an author. */
static bool parse_author(const char *s, char **name, char **email)
{
        const char *lt = strchr(s, '<'), *gt = strrchr(s, '>');
        size_t n;

        if (!lt || !gt || gt < lt || gt[1] != '\0' || strchr(lt + 1, '<') || memchr(lt, '>', (size_t)(gt - lt)))
                return false;
        n = (size_t)(lt - s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                n--;
        if (n == 0 || gt == lt + 1)
                return false;
        *name = xstrndup(s, n);
        *email = xstrndup(lt + 1, (size_t)(gt - lt - 1));
        return true;
}

static void replace(char **field, const char *value)
{
        free(*field);
        *field = xstrdup(value);
}

void config_project_key(struct parser *p, const char *key, const char *value, unsigned line)
{
        struct project_config *pc = &p->config->projects[p->project];
        const char *n = pc->name;
        int k;

        for (k = 0; k < _PK_MAX; k++)
                if (strcmp(project_keys[k], key) == 0)
                        break;
        if (k == _PK_MAX) {
                config_add_problem(p->problems, line, "unknown key '%s' in section [project %s]", key, n);
                return;
        }
        if (p->project_set_line[k]) {
                config_add_problem(p->problems, line, "duplicate key '%s' in [project %s] (first set on line %u)",
                                   key, n, p->project_set_line[k]);
                return;
        }
        p->project_set_line[k] = line;
        if (!config_printable(value)) {
                config_add_problem(p->problems, line, "[project %s] %s: control characters are not allowed", n, key);
                return;
        }

        switch ((enum project_key)k) {
        case PK_PATH:
                if (!*value) {
                        config_add_problem(p->problems, line, "[project %s] path: must not be empty", n);
                        return;
                }
                free(pc->path);
                pc->path = config_resolve_path(p, value);
                return;
        case PK_BASE:
        case PK_PUSH:
                if (*value && !git_word(value)) {
                        config_add_problem(p->problems, line,
                                           "[project %s] %s: '%s' is not a %s name git accepts", n, key, value,
                                           k == PK_BASE ? "branch" : "remote");
                        return;
                }
                replace(k == PK_BASE ? &pc->base : &pc->push, value);
                return;
        case PK_ISOLATION:
                if (strcmp(value, "worktree") == 0)
                        pc->isolation = PROJECT_WORKTREE;
                else if (strcmp(value, "none") == 0)
                        pc->isolation = PROJECT_NONE;
                else
                        config_add_problem(p->problems, line,
                                           "[project %s] isolation: '%s' is not one of: worktree, none", n, value);
                return;
        case PK_AUTHOR: {
                char *name, *email;
                if (!parse_author(value, &name, &email)) {
                        config_add_problem(p->problems, line,
                                           "[project %s] author: '%s' is not of the form Name <email>", n, value);
                        return;
                }
                free(pc->author_name);
                free(pc->author_email);
                pc->author_name = name;
                pc->author_email = email;
                return;
        }
        case PK_ON_DONE:
                replace(&pc->on_done, value);
                return;
        case _PK_MAX:
                break;
        }
}

void config_projects_check(struct parser *p)
{
        struct jada_config *c = p->config;

        for (size_t i = 0; i < c->n_projects; i++) {
                struct project_config *pc = &c->projects[i];
                if (!*pc->path)
                        config_add_problem(p->problems, pc->line, "[project %s] needs path", pc->name);
                if (pc->isolation == PROJECT_NONE && *pc->push)
                        config_add_problem(p->problems, pc->line,
                                           "[project %s] push needs isolation = worktree (no branch to push)",
                                           pc->name);
                /* A fleet's next session of a task may run on another
                 * machine: it fetches the task's branch from the remote
                 * the last one pushed it to. */
                else if (*c->database.url && pc->isolation == PROJECT_NONE)
                        config_add_problem(p->problems, pc->line,
                                           "[project %s] a fleet ([database] url) needs isolation = worktree and a "
                                           "push remote: a task's sessions may run on different machines",
                                           pc->name);
                else if (*c->database.url && !*pc->push)
                        config_add_problem(p->problems, pc->line,
                                           "[project %s] a fleet ([database] url) needs push = REMOTE: the next "
                                           "session of a task may run on another machine, which fetches the "
                                           "task's branch from there",
                                           pc->name);
        }
}

void config_projects_free(struct jada_config *c)
{
        for (size_t i = 0; i < c->n_projects; i++) {
                struct project_config *pc = &c->projects[i];
                free(pc->name);
                free(pc->path);
                free(pc->base);
                free(pc->push);
                free(pc->author_name);
                free(pc->author_email);
                free(pc->on_done);
        }
        free(c->projects);
        c->projects = NULL;
        c->n_projects = 0;
}
