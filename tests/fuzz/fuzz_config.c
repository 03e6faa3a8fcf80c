/* SPDX-License-Identifier: MIT */
/* The config parser (config_parse_buffer) on arbitrary file contents: no
 * crash, no leak, and the header's promises hold either way: success means
 * no problems and no NULL strings; failure means no config and every
 * problem has a message and a line inside the file. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "jada/config.h"
#include "jada/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        /* The default state_dir must not depend on the fuzzer's environment. */
        unsetenv("STATE_DIRECTORY");
        log_set_max_priority(LOG_WARNING);
        return 0;
}

static void check_strings(const struct jada_config *c)
{
        const char *const strings[] = {
                c->path, c->daemon.state_dir, c->claude.command, c->claude.permission_mode,
                c->claude.allowed_tools, c->claude.model, c->sheets.spreadsheet_id, c->sheets.range,
                c->sheets.client_id, c->sheets.client_secret_file, c->sheets.progress_range,
                c->sheets.token_url, c->sheets.api_url, c->alerts.webhook_url, c->metrics.textfile,
        };

        for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
                fuzz_check(strings[i]);
                (void)strlen(strings[i]);       /* ASan sees an unterminated one */
        }
        fuzz_check(c->claude.extra_args);
        for (char **a = c->claude.extra_args; *a; a++)
                (void)strlen(*a);
        fuzz_check(c->daemon.state_dir[0] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct config_problems problems = { 0 };
        struct jada_config *c = NULL;
        size_t lines = 1;
        int r;

        for (size_t i = 0; i < size; i++)
                lines += data[i] == '\n';
        r = config_parse_buffer("/etc/fuzz/jada-agent.conf", (const char *)data, size, &c, &problems);
        if (r == 0) {
                fuzz_check(c);
                fuzz_check(problems.n == 0);
                check_strings(c);
        } else {
                fuzz_check(r == -EINVAL);
                fuzz_check(!c);
                fuzz_check(problems.n > 0);
                for (size_t i = 0; i < problems.n; i++) {
                        fuzz_check(problems.items[i].message);
                        fuzz_check(problems.items[i].line <= lines);
                        (void)strlen(problems.items[i].message);
                }
        }
        config_free(c);
        config_problems_clear(&problems);
        return 0;
}
