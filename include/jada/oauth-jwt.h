/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * The cryptography of Google OAuth, with OpenSSL 3: the service account's
 * JWT bearer assertion (RFC 7523, RS256) and PKCE (RFC 7636, S256).
 */

struct oauth_service_account;

/* Reads a service-account key (Google's JSON: "client_email" and an RSA
 * "private_key" in PEM). Returns 0, or -EINVAL/-ENOENT with *reason set
 * (never quoting the key). */
int oauth_service_account_parse(const char *json, size_t len, struct oauth_service_account **ret,
                                char **reason);
int oauth_service_account_load(const char *path, struct oauth_service_account **ret, char **reason);
struct oauth_service_account *oauth_service_account_free(struct oauth_service_account *sa);
const char *oauth_service_account_email(const struct oauth_service_account *sa);

/* header.claims.signature, with claims {iss: client_email, scope, aud,
 * iat, exp: iat + 3600}. Returns 0 or a negative errno. */
int oauth_jwt_assertion(const struct oauth_service_account *sa, const char *scope, const char *aud,
                        int64_t iat, char **ret);

/* base64url without padding (RFC 4648 §5), as JWT and PKCE use it. */
char *oauth_base64url(const void *data, size_t len);
/* A random string of 43 base64url characters (256 bits): PKCE verifier, state. */
int oauth_random_string(char **ret);
/* The S256 challenge of a PKCE verifier: base64url(SHA-256(verifier)). */
char *oauth_pkce_challenge(const char *verifier);
