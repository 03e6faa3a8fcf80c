/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by cmd-task.c (add, list, the state changes) and cmd-task-show.c
 * (show, diff). */

#include "jada/cli.h"
#include "jada/config.h"
#include "jada/queue.h"

#include <jansson.h>
#include "jada/store.h"

int task_usage(void);
void print_json(json_t *j);
/* Opens the db and loads one task (unless task is NULL); prints why not. */
int load_task(struct cli *cli, const char *id_arg, struct jada_config **config, struct store **db,
              struct queue_task **task, int64_t *id);
int task_show(struct cli *cli, int argc, char **argv);
int task_diff(struct cli *cli, int argc, char **argv);
