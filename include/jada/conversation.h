/* SPDX-License-Identifier: MIT */
#pragma once

#include "jada/store.h"
#include <stddef.h>
#include <stdint.h>

/*
 * Claude Code's conversation of a task, moved between the nodes of a fleet:
 * the CLI keeps it in CLAUDE_CONFIG_DIR/projects/<its cwd as a key>/<id>.jsonl
 * and a --resume reads it from there. After each session the node that ran
 * it stores the file in the fleet's database (zstd, one row per task); a
 * node about to resume the task writes it back under its own config dir and
 * the task's work dir there (the key is made from this node's paths, so
 * state dirs may differ between nodes).
 */

/* The largest conversation moved (uncompressed); a longer one stays where it
 * is. It is packed and unpacked whole on the loop's thread (the database
 * fiber): 64 MiB at zstd level 3 is a fraction of a second there, far inside
 * the watchdog's 60 s, and what a 1 GB machine can hold three times over
 * (the file, the frame, its base64). Claude Code's conversations of 30
 * turns are a few MB. */
#define CONVERSATION_MAX_SIZE (64u << 20)

/* Where the CLI keeps the conversation `claude_id` of a session run in cwd. */
char *conversation_path(const char *config_dir, const char *cwd, const char *claude_id);

/* The file at path, compressed and in base64 for the db: -ENOENT if it is
 * not there, -EFBIG past CONVERSATION_MAX_SIZE. *ret_size: its own size. */
int conversation_pack(const char *path, char **ret_text, size_t *ret_size);
/* The reverse: decoded, decompressed (at most CONVERSATION_MAX_SIZE) and
 * written to path atomically (0600; its directories 0700). -EBADMSG if the
 * text is not a conversation this module packed. */
int conversation_unpack(const char *text, const char *path);

/* The conversations table (PostgreSQL only: on SQLite the file stays on
 * the one machine; both calls do nothing there). save replaces the task's
 * row; load gives -ENOENT when there is no row for this Claude session. */
int conversation_store_save(struct store *db, int64_t task_id, const char *claude_id, const char *text, size_t size,
                            int64_t now);
int conversation_store_load(struct store *db, int64_t task_id, const char *claude_id, char **ret_text,
                            char **ret_node);
