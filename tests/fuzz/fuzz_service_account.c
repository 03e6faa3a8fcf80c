/* SPDX-License-Identifier: MIT */
/* The service-account key file (oauth_service_account_parse): JSON with a
 * PEM key inside, from a file a person copied in. No crash, no leak; an
 * account only with an email; a reason on every refusal. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "jada/log.h"
#include "jada/oauth-jwt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        log_set_max_priority(LOG_WARNING);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct oauth_service_account *sa = NULL;
        char *reason = NULL, *json;
        int r;

        if (size > 16384)       /* a real key file is about 2.3 KB */
                return 0;
        json = malloc(size ? size : 1);
        fuzz_check(json);
        memcpy(json, data, size);
        r = oauth_service_account_parse(json, size, &sa, &reason);
        if (r == 0) {
                fuzz_check(sa);
                fuzz_check(oauth_service_account_email(sa));
                (void)strlen(oauth_service_account_email(sa));
        } else {
                fuzz_check(r == -EINVAL || r == -ENOENT);
                fuzz_check(!sa);
                fuzz_check(reason);
                (void)strlen(reason);
        }
        oauth_service_account_free(sa);
        free(reason);
        free(json);
        return 0;
}
