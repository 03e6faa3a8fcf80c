/* SPDX-License-Identifier: MIT */
/* Claude Code's conversation files, carried between a fleet's nodes
 * (conversation.h). One-shot zstd over the whole file: a conversation is
 * read and written whole, and is at most CONVERSATION_MAX_SIZE. Base64
 * (OpenSSL's) carries it in a text parameter, decoded by PostgreSQL into a
 * bytea column, so the store needs no binary parameters. */
#include "jada/conversation.h"
#include "jada/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <string.h>
#include <zstd.h>

#define CONVERSATION_LEVEL 3

char *conversation_path(const char *config_dir, const char *cwd, const char *claude_id)
{
        /* The CLI's key for a directory (JavaScript's replace(/[^a-zA-Z0-9]/g,
         * "-")): every character but [A-Za-z0-9] becomes '-', one per UTF-16
         * unit (/var/lib/x/work/task-7 -> -var-lib-x-work-task-7). */
        char *key = xmalloc(2 * strlen(cwd) + 1), *q = key, *path;

        for (const unsigned char *p = (const unsigned char *)cwd; *p; p++) {
                if (*p < 0x80 && isalnum(*p))
                        *q++ = (char)*p;
                else if (*p >= 0xf0)            /* outside the BMP: a surrogate pair */
                        q = stpcpy(q, "--");
                else if (*p < 0x80 || *p >= 0xc0) /* not a UTF-8 continuation byte */
                        *q++ = '-';
        }
        *q = '\0';
        path = xasprintf("%s/projects/%s/%s.jsonl", config_dir, key, claude_id);
        free(key);
        return path;
}

int conversation_pack(const char *path, char **ret_text, size_t *ret_size)
{
        _cleanup_free_ char *data = NULL, *packed = NULL;
        size_t size = 0, bound, n;
        char *text;
        int r;

        r = read_file_capped(path, CONVERSATION_MAX_SIZE, &data, &size);
        if (r < 0)
                return r;
        bound = ZSTD_compressBound(size);
        packed = xmalloc(bound);
        n = ZSTD_compress(packed, bound, data, size, CONVERSATION_LEVEL);
        if (ZSTD_isError(n) || n > INT_MAX / 2)
                return -EIO;
        text = xmalloc(4 * ((n + 2) / 3) + 1);
        EVP_EncodeBlock((unsigned char *)text, (const unsigned char *)packed, (int)n);
        *ret_text = text;
        *ret_size = size;
        return 0;
}

int conversation_unpack(const char *text, const char *path)
{
        _cleanup_free_ unsigned char *packed = NULL;
        _cleanup_free_ char *data = NULL, *dir = NULL;
        size_t len = strlen(text), n, pad = 0;
        unsigned long long size;
        int decoded, r;

        if (len == 0 || len % 4 != 0 || len > (size_t)INT_MAX)
                return -EBADMSG;
        packed = xmalloc(len / 4 * 3 + 1);
        decoded = EVP_DecodeBlock(packed, (const unsigned char *)text, (int)len);
        if (decoded < 0)
                return -EBADMSG;
        /* EVP_DecodeBlock counts the padding's bytes too. */
        if (text[len - 1] == '=')
                pad++;
        if (text[len - 2] == '=')
                pad++;
        n = (size_t)decoded - pad;
        size = ZSTD_getFrameContentSize(packed, n);
        if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > CONVERSATION_MAX_SIZE)
                return -EBADMSG;
        data = xmalloc(size ? size : 1);
        if (ZSTD_decompress(data, size, packed, n) != size)
                return -EBADMSG;
        dir = xstrdup(path);
        if (strrchr(dir, '/'))
                *strrchr(dir, '/') = '\0';
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        return write_file_atomic(path, data, size, 0600);
}

int conversation_store_save(struct store *db, int64_t task_id, const char *claude_id, const char *text, size_t size,
                            int64_t now)
{
        struct store_stmt *st;
        int r;

        if (!store_is_postgresql(db))
                return 0;
        r = store_prepare(db,
                          "INSERT INTO conversations (task_id, claude_session_id, node, bytes, data, updated_at) "
                          "SELECT ?1, ?2, ?3, ?4, decode(?5, 'base64'), ?6 WHERE EXISTS (SELECT 1 FROM tasks WHERE id = ?1) "
                          "ON CONFLICT (task_id) DO UPDATE SET "
                          "claude_session_id = EXCLUDED.claude_session_id, node = EXCLUDED.node, "
                          "bytes = EXCLUDED.bytes, data = EXCLUDED.data, updated_at = EXCLUDED.updated_at",
                          &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, task_id);
        store_bind_text(st, 2, claude_id);
        store_bind_text(st, 3, store_node(db));
        store_bind_int64(st, 4, (int64_t)size);
        store_bind_text(st, 5, text);
        store_bind_int64(st, 6, now);
        return store_step_done(st);
}

int conversation_store_load(struct store *db, int64_t task_id, const char *claude_id, char **ret_text,
                            char **ret_node)
{
        _cleanup_stmt_ struct store_stmt *st = NULL;
        int r, rc;

        if (!store_is_postgresql(db))
                return -ENOENT;
        /* encode() breaks base64 into lines of 76: taken out again. */
        r = store_prepare(db,
                          "SELECT translate(encode(data, 'base64'), E'\\n', ''), COALESCE(node, '') "
                          "FROM conversations WHERE task_id = ?1 AND claude_session_id = ?2",
                          &st);
        if (r < 0)
                return r;
        store_bind_int64(st, 1, task_id);
        store_bind_text(st, 2, claude_id);
        rc = store_step(st);
        if (rc == STORE_DONE)
                return -ENOENT;
        if (rc != STORE_ROW)
                return rc;
        *ret_text = xstrdup(store_column_text(st, 0));
        *ret_node = xstrdup(store_column_text(st, 1));
        return 0;
}
