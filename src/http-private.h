/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the http module's two files: http.c (the client, curl multi in
 * sd-event) and http-easy.c (one transfer's easy handle: its options, and
 * what the response writes into it). Not part of the module's face. */

#include "jada/http.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_TIMEOUT_USEC_DEFAULT         (30 * 1000000ULL)
#define HTTP_CONNECT_TIMEOUT_USEC_DEFAULT (10 * 1000000ULL)
#define HTTP_MAX_BODY_DEFAULT             ((size_t)1 << 20)
#define HTTP_BODY_CHUNK_MIN               ((size_t)4096)
/* Retry-After beyond a day is not a delay we would honour anyway; the cap
 * also keeps seconds * 10^6 far from overflow. */
#define HTTP_RETRY_AFTER_MAX_SEC          (24 * 3600ULL)

struct http_socket {
        sd_event_source *source;
        struct http_socket *prev, *next;
};

struct http_request {
        struct http_client *client;
        struct http_request *prev, *next; /* client->requests, while in the multi */
        CURL *easy;
        struct curl_slist *headers;
        http_done_fn done;
        void *userdata;
        char *description;                /* "METHOD scheme://host/path": no query, no userinfo */

        char *body;                       /* always NUL-terminated once allocated */
        size_t body_len, body_cap, max_body;
        bool body_truncated;
        bool out_of_memory;
        bool in_callback;                 /* done is running: cancel must not free */
        struct store *store;              /* done runs through store_run() */
        bool pending;                     /* finished, done waits for the store's fiber */
        CURLcode code;
        uint64_t retry_after_usec;
        uint64_t start_usec;
        char error[CURL_ERROR_SIZE];
};

struct http_client {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        struct http_socket *sockets;
        struct http_request *requests;
        unsigned active;
        /* Depth of client_drain(): while > 0 a done callback may be running,
         * and http_client_free() only marks the client; the outermost drain
         * frees it once no frame of ours uses it any more. */
        unsigned dispatching;
        bool free_requested;
};

bool http_method_valid(const char *method);
/* "METHOD scheme://host[:port]/path" for logs, without userinfo, query or
 * fragment (those carry secrets); -EPROTONOSUPPORT unless http or https. */
int http_easy_describe(const char *method, const char *url, char **ret);
/* Every option of req->easy from opts; 0, -EINVAL (a bad header line),
 * -ENOMEM or -EIO (curl refused an option). */
int http_easy_setup(struct http_request *req, const struct http_options *opts, const char *method);
