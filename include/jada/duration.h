/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define USEC_PER_SEC  UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)

/* Durations in systemd's syntax: "90s", "30min", "2h", "1d", "1h 30min",
 * "1.5h"; a bare number is seconds. Returns 0 or -EINVAL / -ERANGE. */
int duration_parse(const char *s, uint64_t *ret_usec);
/* Formats a duration into buf compactly ("1h30min", "45s", "0"). */
const char *duration_format(char *buf, size_t size, uint64_t usec);
