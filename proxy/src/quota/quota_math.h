/* quota_math.h: pure quota arithmetic: periods in a time zone, reservation size, states,
 * header values and the block message. `now` is always passed in. */
#ifndef TG_QUOTA_MATH_H
#define TG_QUOTA_MATH_H

#include "core/common.h"
#include "quota/tz.h"

/* QUOTA_PERIOD. */
enum tg_period { TG_PERIOD_MONTH, TG_PERIOD_WEEK, TG_PERIOD_DAY, TG_PERIOD_NONE };

/* Parses "month" | "week" | "day" | "none". Returns 0, or -1 (out untouched). */
TG_MUST_CHECK int tg_period_parse(const char *s, enum tg_period *out);
/* "month", "week", "day", "none" (static string). */
const char *tg_period_name(enum tg_period p);
/* "monthly", "weekly", "daily", "" for none (static string, for messages). */
const char *tg_period_adjective(enum tg_period p);

/* The period an instant falls in. A period runs from the first instant of local midnight
 * starting it (weeks start on Monday) to the first instant of the next one, so a midnight
 * skipped by DST starts at the jump, and an hour repeated after midnight belongs to the new
 * period. */
struct tg_period_bounds {
    int64_t start_s; /* first instant of the period (0 for none) */
    int64_t reset_s; /* start of the next period; INT64_MAX for none */
    char key[24];    /* Redis key part: "m2026-11", "w2026-11-16" (Monday), "d2026-11-22", "all" */
    int reset_year;  /* local date of reset_s (0 for none) */
    int reset_month; /* 1..12 */
    int reset_day;   /* 1..31 */
    int start_year;  /* local date of start_s (0 for none) */
    int start_month; /* 1..12 */
    int start_day;   /* 1..31 */
};

/* Computes the period containing now_s in zone tz. Returns 0, or -1 when p is invalid or the
 * date is outside years 1..9999. Pure. */
TG_MUST_CHECK int tg_quota_period_bounds(int64_t now_s, enum tg_period p, const struct tg_tz *tz,
                                         struct tg_period_bounds *out);

/* Absolute Unix time in ms at which the period's Redis keys may expire: reset + 7 days; 0 for
 * period none (its keys never expire). */
int64_t tg_quota_key_expire_ms(const struct tg_period_bounds *b);

/* Tokens to reserve before forwarding: prompt_estimate + (max_tokens when given (>= 0), else
 * default_completion), capped at cap when cap > 0. Negative inputs count as 0; saturates
 * instead of overflowing. */
int64_t tg_quota_reservation(int64_t prompt_estimate, int64_t max_tokens,
                             int64_t default_completion, int64_t cap);

enum tg_quota_state { TG_QUOTA_OK, TG_QUOTA_WARNING, TG_QUOTA_EXHAUSTED };

/* "ok", "warning", "exhausted". */
const char *tg_quota_state_name(enum tg_quota_state s);

/* Tokens at which the warning starts: ceil(limit * warn_percent / 100) (exact, no overflow);
 * -1 for an unlimited (-1) quota. warn_percent is clamped to 0..100. */
int64_t tg_quota_warn_tokens(int64_t limit, int warn_percent);

/* ok / warning (used >= tg_quota_warn_tokens) / exhausted (used >= limit; limit 0 is always
 * exhausted, -1 never). */
enum tg_quota_state tg_quota_state_of(int64_t used, int64_t limit, int warn_percent);

/* floor(used * 100 / limit), exact for any int64 values, clamped to 0..INT_MAX; 100 when
 * limit is 0, 0 when limit is negative (unlimited). */
int tg_quota_percent(int64_t used, int64_t limit);

/* Writes utc_s as RFC 3339 local time of tz with its offset, e.g. "2026-12-01T00:00:00+01:00"
 * ("Z" when the offset is 0). Returns the length, or -1 when cap is too small or the year is
 * outside 0..9999. */
TG_MUST_CHECK int tg_quota_format_rfc3339(int64_t utc_s, const struct tg_tz *tz, char *dst,
                                          size_t cap);

/* Writes "1 December", or "1 January 2027" when the reset year differs from the current year
 * (the UTC year of now_s). Returns the length, or -1 (cap too small, or period none). */
TG_MUST_CHECK int tg_quota_format_reset_date(char *dst, size_t cap,
                                             const struct tg_period_bounds *b, int64_t now_s);

/* Writes "1,000,000" (thousands separated by commas; negative numbers get '-'). Returns the
 * length, or -1 when cap is too small. */
TG_MUST_CHECK int tg_quota_format_tokens(char *dst, size_t cap, int64_t n);

/* The plain-text sentence of a quota block, e.g.
 *   "You have used 100 % of your monthly AI quota (1,000,000 tokens). It resets on 1 December."
 * Period none: "... of your AI quota (N tokens). It does not reset; ask your administrator for
 * more." Limit 0: "Your AI quota is 0 tokens, so AI requests are blocked. Ask your
 * administrator for a quota." No JSON, no wording clients take for a context overflow. The
 * year is added to the reset date only when it differs from now_s's year. Returns the length,
 * or -1 when cap is too small. */
TG_MUST_CHECK int tg_quota_block_message(char *dst, size_t cap, int64_t used, int64_t limit,
                                         enum tg_period p, const struct tg_period_bounds *b,
                                         int64_t now_s);

/* Values of the x-quota-* headers (SPEC §5), NUL-terminated. */
struct tg_quota_headers {
    char limit[24];     /* x-quota-limit-tokens: -1 when unlimited */
    char used[24];      /* x-quota-used-tokens */
    char remaining[24]; /* x-quota-remaining-tokens: max(0, limit - used); -1 when unlimited */
    char reset[40];     /* x-quota-reset: RFC 3339; "" for period none (omit the header) */
    char state[12];     /* x-quota-state: ok | warning | exhausted */
};

/* Fills h from settled `used`, `limit` (-1 unlimited) and the period. Never fails. */
void tg_quota_headers_fill(struct tg_quota_headers *h, int64_t used, int64_t limit,
                           const struct tg_period_bounds *b, const struct tg_tz *tz,
                           int warn_percent);

#endif
