/* SPDX-License-Identifier: MIT */
/* RS256 JWT assertions for service accounts, and PKCE, with OpenSSL 3. */
#include "jada/oauth-jwt.h"
#include "jada/util.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>

/* A key file is a few KiB; this is generous. */
#define KEY_FILE_MAX (64 * 1024)
#define JWT_LIFETIME_SEC 3600   /* Google's maximum for a bearer assertion */

struct oauth_service_account {
        char *client_email;
        EVP_PKEY *key;
};

struct oauth_service_account *oauth_service_account_free(struct oauth_service_account *sa)
{
        if (sa) {
                free(sa->client_email);
                EVP_PKEY_free(sa->key);
                free(sa);
        }
        return NULL;
}

const char *oauth_service_account_email(const struct oauth_service_account *sa)
{
        return sa->client_email;
}

int oauth_service_account_parse(const char *json, size_t len, struct oauth_service_account **ret,
                                char **reason)
{
        const char *email, *pem;
        json_error_t error;
        json_t *root;
        EVP_PKEY *key = NULL;
        BIO *bio;

        *reason = NULL;
        root = json_loadb(json, len, 0, &error);
        if (!root || !json_is_object(root)) {
                *reason = root ? xstrdup("it is not a JSON object")
                               : xasprintf("it is not JSON (line %d: %s)", error.line, error.text);
                json_decref(root);
                return -EINVAL;
        }
        email = json_string_value(json_object_get(root, "client_email"));
        pem = json_string_value(json_object_get(root, "private_key"));
        if (!email || !*email || !strchr(email, '@')) {
                *reason = xstrdup("it has no client_email");
                json_decref(root);
                return -EINVAL;
        }
        if (!pem || !*pem) {
                *reason = xstrdup("it has no private_key");
                json_decref(root);
                return -EINVAL;
        }
        bio = BIO_new_mem_buf(pem, -1);
        if (bio) {
                /* No passphrase callback: an encrypted key is not a service account's. */
                key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
                BIO_free(bio);
        }
        if (!key) {
                *reason = xstrdup("its private_key is not a PEM private key");
                json_decref(root);
                return -EINVAL;
        }
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) < 2048) {
                *reason = xstrdup("its private_key is not an RSA key of at least 2048 bits (RS256 needs one)");
                EVP_PKEY_free(key);
                json_decref(root);
                return -EINVAL;
        }
        *ret = xcalloc(1, sizeof **ret);
        (*ret)->client_email = xstrdup(email);
        (*ret)->key = key;
        json_decref(root);
        return 0;
}

int oauth_service_account_load(const char *path, struct oauth_service_account **ret, char **reason)
{
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_file_capped(path, KEY_FILE_MAX, &data, &size);
        if (r < 0) {
                *reason = r == -EFBIG ? xasprintf("%s is larger than %d bytes: not a service-account key", path, KEY_FILE_MAX)
                                      : xasprintf("cannot read %s: %s", path, strerror(-r));
                return r == -ENOENT ? -ENOENT : -EINVAL;
        }
        r = oauth_service_account_parse(data, size, ret, reason);
        if (r < 0) {
                char *why = *reason;
                *reason = xasprintf("%s is not a service-account key: %s", path, why);
                free(why);
        }
        /* The buffer held a private key: do not leave it in freed memory. */
        OPENSSL_cleanse(data, size);
        return r;
}

char *oauth_base64url(const void *data, size_t len)
{
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const unsigned char *p = data;
        char *out = xmalloc(len / 3 * 4 + 5), *o = out;
        size_t i;

        for (i = 0; i + 2 < len; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
                *o++ = alphabet[v >> 18 & 63];
                *o++ = alphabet[v >> 12 & 63];
                *o++ = alphabet[v >> 6 & 63];
                *o++ = alphabet[v & 63];
        }
        if (len - i == 1) {
                uint32_t v = (uint32_t)p[i] << 16;
                *o++ = alphabet[v >> 18 & 63];
                *o++ = alphabet[v >> 12 & 63];
        } else if (len - i == 2) {
                uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
                *o++ = alphabet[v >> 18 & 63];
                *o++ = alphabet[v >> 12 & 63];
                *o++ = alphabet[v >> 6 & 63];
        }
        *o = '\0';
        return out;
}

static char *base64url_json(json_t *obj)
{
        char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        char *out;

        if (!text)
                abort();
        out = oauth_base64url(text, strlen(text));
        free(text);
        return out;
}

int oauth_jwt_assertion(const struct oauth_service_account *sa, const char *scope, const char *aud,
                        int64_t iat, char **ret)
{
        _cleanup_free_ char *header = NULL, *claims = NULL, *input = NULL, *sig64 = NULL;
        unsigned char *sig = NULL;
        size_t sig_len = 0;
        EVP_MD_CTX *md;
        json_t *obj;
        int r = -EIO;

        obj = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
        header = base64url_json(obj);
        json_decref(obj);
        obj = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", sa->client_email, "scope", scope, "aud", aud,
                        "iat", (json_int_t)iat, "exp", (json_int_t)(iat + JWT_LIFETIME_SEC));
        if (!obj)
                return -EINVAL;
        claims = base64url_json(obj);
        json_decref(obj);
        input = xasprintf("%s.%s", header, claims);

        md = EVP_MD_CTX_new();
        if (!md)
                return -ENOMEM;
        if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, sa->key) == 1 &&
            EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)input, strlen(input)) == 1) {
                sig = xmalloc(sig_len);
                if (EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input, strlen(input)) == 1)
                        r = 0;
        }
        EVP_MD_CTX_free(md);
        if (r == 0) {
                sig64 = oauth_base64url(sig, sig_len);
                *ret = xasprintf("%s.%s", input, sig64);
        }
        free(sig);
        return r;
}

int oauth_random_string(char **ret)
{
        unsigned char bytes[32];

        if (RAND_bytes(bytes, sizeof bytes) != 1)
                return -EIO;
        *ret = oauth_base64url(bytes, sizeof bytes);
        return 0;
}

char *oauth_pkce_challenge(const char *verifier)
{
        unsigned char digest[SHA256_DIGEST_LENGTH];

        SHA256((const unsigned char *)verifier, strlen(verifier), digest);
        return oauth_base64url(digest, sizeof digest);
}
