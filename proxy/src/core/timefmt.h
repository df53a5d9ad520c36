/* timefmt.h: RFC 3339 timestamps in and out (UTC), without libc time zone state. */
#ifndef TG_TIMEFMT_H
#define TG_TIMEFMT_H

#include "core/common.h"

/* Parses "2026-11-01", "2026-11-01T12:30:00Z", "2026-11-01T12:30:00.123+01:00" (a date alone
 * means midnight UTC). Returns 0 and Unix milliseconds, or -1. */
TG_MUST_CHECK int tg_time_parse_rfc3339(const char *s, size_t n, int64_t *out_ms);
/* Formats Unix ms as "2026-11-01T12:30:00.123Z"; returns the length (24) or -1. */
int tg_time_format_rfc3339(int64_t ms, char *dst, size_t cap);

#endif
