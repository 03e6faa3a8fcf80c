/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by config.c (the file, the fixed sections) and config-project.c
 * (the [project NAME] sections). Not part of the module's face. */

#include "jada/config.h"

#include <stdbool.h>

/* config.c's key table has one entry per fixed key; set_line is sized by it. */
#define CONFIG_FIXED_KEYS_MAX 64

struct parser {
        const char *name;               /* for messages */
        char *base_dir;                 /* for relative paths */
        struct jada_config *config;
        struct config_problems *problems;
        unsigned set_line[CONFIG_FIXED_KEYS_MAX]; /* where each key was set; 0: not set */
        long project;                   /* index of the [project NAME] being read, or -1 */
        unsigned project_set_line[8];   /* its keys' lines, by config-project.c's table */
};

void config_add_problem(struct config_problems *problems, unsigned line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
bool config_printable(const char *s);
char *config_resolve_path(const struct parser *p, const char *value);

/* A [project NAME] header: false (and a problem) if NAME is not valid. */
bool config_project_section(struct parser *p, const char *name, unsigned line);
void config_project_key(struct parser *p, const char *key, const char *value, unsigned line);
/* After the whole file: each project complete, default_project defined. */
void config_projects_check(struct parser *p);
void config_projects_free(struct jada_config *config);

/* [alerts] notify's words into notify_mask, [web] listen's address: after
 * the whole file (config-web.c). The lines are where each key was set. */
void config_web_check(struct parser *p, unsigned notify_line, unsigned listen_line);

/* [database]: the URL parses (libpq's own parser), has no password, and
 * node_name is a name (config-database.c). */
void config_database_check(struct parser *p, unsigned url_line, unsigned node_line);
