/* SPDX-License-Identifier: MIT */
/* [database]: where the fleet's shared state lives. */
#include "config-private.h"
#include "jada/util.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The daemon's application_name is "jada-agent node NAME", and PostgreSQL
 * keeps 63 bytes of it. */
#define NODE_NAME_MAX 47

static bool valid_node_name(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > NODE_NAME_MAX)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '-' || *s == '_' || *s == '.'))
                        return false;
        return true;
}

void config_database_check(struct parser *p, unsigned url_line, unsigned node_line)
{
        const struct jada_config *c = p->config;
        PQconninfoOption *options;
        char *error = NULL;

        if (*c->database.node_name && !valid_node_name(c->database.node_name))
                config_add_problem(p->problems, node_line,
                                   "[database] node_name: '%s' is not a name (letters, digits, '.', '-', '_'; "
                                   "at most %d)", c->database.node_name, NODE_NAME_MAX);
        if (!*c->database.url)
                return;
        /* A URL, not a key=value string: the one form the README documents,
         * and one that cannot be mistaken for a file name. */
        if (strncmp(c->database.url, "postgresql://", 13) != 0 && strncmp(c->database.url, "postgres://", 11) != 0) {
                config_add_problem(p->problems, url_line,
                                   "[database] url: must start with postgresql:// (e.g. "
                                   "postgresql://jada@db.example:5432/jada?sslmode=verify-full)");
                return;
        }
        /* libpq's own parser, so that what passes here is what it connects
         * with. Its message never holds a password: it names the fault. */
        options = PQconninfoParse(c->database.url, &error);
        if (!options) {
                size_t n = error ? strlen(error) : 0;
                while (n > 0 && (error[n - 1] == '\n' || error[n - 1] == '.'))
                        error[--n] = '\0';
                config_add_problem(p->problems, url_line, "[database] url: %s", error ? error : "out of memory");
                PQfreemem(error);
                return;
        }
        for (PQconninfoOption *o = options; o->keyword; o++)
                if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
                        /* The file is world-readable and often in git. */
                        config_add_problem(p->problems, url_line,
                                           "[database] url holds a password: give it as the credential "
                                           "database-password, or in a PGPASSFILE, never in this file");
        PQconninfoFree(options);
}

const char *config_node_name(const struct jada_config *config, char *buf, size_t size)
{
        char host[256] = "";
        char *dot;

        if (*config->database.node_name) {
                snprintf(buf, size, "%s", config->database.node_name);
                return buf;
        }
        if (gethostname(host, sizeof host - 1) < 0 || !*host)
                snprintf(host, sizeof host, "localhost");
        dot = strchr(host, '.');
        if (dot && dot != host)
                *dot = '\0';
        snprintf(buf, size, "%.*s", NODE_NAME_MAX, host);
        return buf;
}

uint64_t config_heartbeat_interval(const struct jada_config *config)
{
        uint64_t third = config->database.lease / 3;

        return third < 10 * USEC_PER_SEC ? third : 10 * USEC_PER_SEC;
}
