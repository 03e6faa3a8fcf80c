/* SPDX-License-Identifier: MIT */
#pragma once

/* What every target shares: libFuzzer's entry points (it has no header for
 * C) and an assertion that survives NDEBUG, so a broken promise of the
 * parser is a crash libFuzzer keeps, like a sanitizer report. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define fuzz_check(cond)                                                                        \
        do {                                                                                    \
                if (!(cond)) {                                                                  \
                        fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
                        abort();                                                                \
                }                                                                               \
        } while (0)

/* True if s holds a C0 control character or DEL: text the parsers promise
 * to have cleaned before it reaches a log line. */
static inline int fuzz_has_control(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
                        return 1;
        return 0;
}

/* True if s is well-formed UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF): what a parser that cuts text "never inside a sequence" owes. */
static inline int fuzz_utf8_valid(const char *str)
{
        const unsigned char *s = (const unsigned char *)str;

        while (*s) {
                unsigned c = *s, need, cp, min;

                if (c < 0x80) {
                        s++;
                        continue;
                } else if (c >= 0xc2 && c <= 0xdf) {
                        need = 1, cp = c & 0x1f, min = 0x80;
                } else if (c >= 0xe0 && c <= 0xef) {
                        need = 2, cp = c & 0x0f, min = 0x800;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        need = 3, cp = c & 0x07, min = 0x10000;
                } else
                        return 0;
                s++;
                for (unsigned i = 0; i < need; i++, s++) {
                        if ((*s & 0xc0) != 0x80)
                                return 0;
                        cp = cp << 6 | (*s & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return 0;
        }
        return 1;
}
