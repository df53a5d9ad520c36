/* quota_math.c: periods, reservation size, quota states, header values and messages (pure). */
#include "quota/quota_math.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#define DAY_S         86400
#define KEY_GRACE_S   (7 * DAY_S)
#define MAX_BOUND_TRY 4

static const char *const period_names[] = {"month", "week", "day", "none"};
static const char *const period_adjectives[] = {"monthly", "weekly", "daily", ""};
static const char *const month_names[] = {"January",   "February", "March",    "April",
                                          "May",       "June",     "July",     "August",
                                          "September", "October",  "November", "December"};

int tg_period_parse(const char *s, enum tg_period *out)
{
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < TG_ARRAY_LEN(period_names); i++) {
        if (strcmp(s, period_names[i]) == 0) {
            *out = (enum tg_period)i;
            return 0;
        }
    }
    return -1;
}

const char *tg_period_name(enum tg_period p)
{
    return (unsigned)p < TG_ARRAY_LEN(period_names) ? period_names[p] : "none";
}

const char *tg_period_adjective(enum tg_period p)
{
    return (unsigned)p < TG_ARRAY_LEN(period_adjectives) ? period_adjectives[p] : "";
}

/* Day number of the local date that starts the period containing local day `days`. */
static int64_t anchor_of(enum tg_period p, int64_t days)
{
    int64_t y;
    int m, d;
    switch (p) {
    case TG_PERIOD_MONTH:
        tg_tz_civil_from_days(days, &y, &m, &d);
        return tg_tz_days_from_civil(y, m, 1);
    case TG_PERIOD_WEEK:
        return days - (tg_tz_weekday(days) + 6) % 7; /* back to Monday */
    default:
        return days;
    }
}

/* Anchor of the next (step 1) or previous (step -1) period. */
static int64_t anchor_step(enum tg_period p, int64_t anchor, int step)
{
    int64_t y;
    int m, d;
    switch (p) {
    case TG_PERIOD_MONTH:
        tg_tz_civil_from_days(anchor, &y, &m, &d);
        return tg_tz_days_from_civil(y, m + step, 1);
    case TG_PERIOD_WEEK:
        return anchor + 7 * step;
    default:
        return anchor + step;
    }
}

static int64_t midnight_utc(const struct tg_tz *tz, int64_t days)
{
    int64_t y;
    int m, d;
    tg_tz_civil_from_days(days, &y, &m, &d);
    return tg_tz_local_to_utc(tz, (int)y, m, d, 0, 0);
}

int tg_quota_period_bounds(int64_t now_s, enum tg_period p, const struct tg_tz *tz,
                           struct tg_period_bounds *out)
{
    memset(out, 0, sizeof(*out));
    if (p == TG_PERIOD_NONE) {
        out->start_s = 0;
        out->reset_s = INT64_MAX;
        snprintf(out->key, sizeof(out->key), "all");
        return 0;
    }
    if (p != TG_PERIOD_MONTH && p != TG_PERIOD_WEEK && p != TG_PERIOD_DAY)
        return -1;
    struct tg_tz_civil c;
    tg_tz_to_civil(tz, now_s, &c);
    if (c.year < 1 || c.year > 9999)
        return -1;
    int64_t anchor = anchor_of(p, c.local_days);
    int64_t start = 0, reset = 0;
    for (int i = 0; i < MAX_BOUND_TRY; i++) {
        start = midnight_utc(tz, anchor);
        reset = midnight_utc(tz, anchor_step(p, anchor, 1));
        /* A midnight repeated by a fall-back at 24:00 (America/Santiago) puts local dates of
         * the old period after the new one started: the period is the one holding now_s. */
        if (now_s >= reset)
            anchor = anchor_step(p, anchor, 1);
        else if (now_s < start)
            anchor = anchor_step(p, anchor, -1);
        else
            break;
    }
    int64_t ay, ry;
    int am, ad, rm, rd;
    tg_tz_civil_from_days(anchor, &ay, &am, &ad);
    tg_tz_civil_from_days(anchor_step(p, anchor, 1), &ry, &rm, &rd);
    if (ay < 1 || ry > 9999)
        return -1;
    out->start_s = start;
    out->reset_s = reset;
    out->start_year = (int)ay;
    out->start_month = am;
    out->start_day = ad;
    out->reset_year = (int)ry;
    out->reset_month = rm;
    out->reset_day = rd;
    if (p == TG_PERIOD_MONTH)
        snprintf(out->key, sizeof(out->key), "m%04d-%02d", (int)ay, am);
    else
        snprintf(out->key, sizeof(out->key), "%c%04d-%02d-%02d", p == TG_PERIOD_WEEK ? 'w' : 'd',
                 (int)ay, am, ad);
    return 0;
}

int64_t tg_quota_key_expire_ms(const struct tg_period_bounds *b)
{
    if (b->reset_s == INT64_MAX || b->reset_s > INT64_MAX / 1000 - KEY_GRACE_S)
        return 0;
    return (b->reset_s + KEY_GRACE_S) * 1000;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return INT64_MAX;
    return r;
}

int64_t tg_quota_reservation(int64_t prompt_estimate, int64_t max_tokens,
                             int64_t default_completion, int64_t cap)
{
    int64_t prompt = prompt_estimate > 0 ? prompt_estimate : 0;
    int64_t completion = max_tokens >= 0 ? max_tokens : default_completion;
    if (completion < 0)
        completion = 0;
    int64_t total = sat_add(prompt, completion);
    if (cap > 0 && total > cap)
        total = cap;
    return total;
}

const char *tg_quota_state_name(enum tg_quota_state s)
{
    switch (s) {
    case TG_QUOTA_WARNING:
        return "warning";
    case TG_QUOTA_EXHAUSTED:
        return "exhausted";
    default:
        return "ok";
    }
}

int64_t tg_quota_warn_tokens(int64_t limit, int warn_percent)
{
    if (limit < 0)
        return -1;
    int pct = warn_percent < 0 ? 0 : warn_percent > 100 ? 100 : warn_percent;
    __int128 v = ((__int128)limit * pct + 99) / 100;
    return (int64_t)v; /* <= limit */
}

enum tg_quota_state tg_quota_state_of(int64_t used, int64_t limit, int warn_percent)
{
    if (limit < 0)
        return TG_QUOTA_OK;
    if (used >= limit)
        return TG_QUOTA_EXHAUSTED;
    if (used >= tg_quota_warn_tokens(limit, warn_percent))
        return TG_QUOTA_WARNING;
    return TG_QUOTA_OK;
}

int tg_quota_percent(int64_t used, int64_t limit)
{
    if (limit < 0)
        return 0;
    if (limit == 0)
        return 100;
    if (used <= 0)
        return 0;
    __int128 v = (__int128)used * 100 / limit;
    return v > INT_MAX ? INT_MAX : (int)v;
}

int tg_quota_format_rfc3339(int64_t utc_s, const struct tg_tz *tz, char *dst, size_t cap)
{
    /* RFC 3339 offsets have no seconds: use whole minutes (toward zero) and shift the wall
     * time to match, so the string still names the same instant. */
    int64_t off_min = tg_tz_offset(tz, utc_s) / 60;
    int64_t local = utc_s + off_min * 60;
    int64_t days = tg_tz_floor_div(local, DAY_S), secs = local - days * DAY_S;
    int64_t y;
    int m, d;
    tg_tz_civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return -1;
    char zone[8];
    if (off_min == 0) {
        snprintf(zone, sizeof(zone), "Z");
    } else {
        int64_t a = off_min < 0 ? -off_min : off_min;
        snprintf(zone, sizeof(zone), "%c%02d:%02d", off_min < 0 ? '-' : '+', (int)(a / 60),
                 (int)(a % 60));
    }
    int n = snprintf(dst, cap, "%04d-%02d-%02dT%02d:%02d:%02d%s", (int)y, m, d, (int)(secs / 3600),
                     (int)(secs / 60 % 60), (int)(secs % 60), zone);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return n;
}

static int64_t utc_year(int64_t utc_s)
{
    int64_t y;
    int m, d;
    tg_tz_civil_from_days(tg_tz_floor_div(utc_s, DAY_S), &y, &m, &d);
    return y;
}

int tg_quota_format_reset_date(char *dst, size_t cap, const struct tg_period_bounds *b,
                               int64_t now_s)
{
    if (b->reset_s == INT64_MAX || b->reset_month < 1 || b->reset_month > 12)
        return -1;
    int n;
    if (b->reset_year != utc_year(now_s))
        n = snprintf(dst, cap, "%d %s %d", b->reset_day, month_names[b->reset_month - 1],
                     b->reset_year);
    else
        n = snprintf(dst, cap, "%d %s", b->reset_day, month_names[b->reset_month - 1]);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return n;
}

int tg_quota_format_tokens(char *dst, size_t cap, int64_t n)
{
    char digits[24];
    uint64_t u = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
    int nd = snprintf(digits, sizeof(digits), "%" PRIu64, u);
    size_t need = (size_t)nd + (size_t)(nd - 1) / 3 + (n < 0) + 1;
    if (need > cap)
        return -1;
    size_t o = 0;
    if (n < 0)
        dst[o++] = '-';
    for (int i = 0; i < nd; i++) {
        if (i > 0 && (nd - i) % 3 == 0)
            dst[o++] = ',';
        dst[o++] = digits[i];
    }
    dst[o] = '\0';
    return (int)o;
}

int tg_quota_block_message(char *dst, size_t cap, int64_t used, int64_t limit, enum tg_period p,
                           const struct tg_period_bounds *b, int64_t now_s)
{
    int n;
    char tokens[32], date[40];
    if (limit < 0) {
        n = snprintf(dst, cap, "Your AI quota is unlimited.");
    } else if (limit == 0) {
        n = snprintf(dst, cap,
                     "Your AI quota is 0 tokens, so AI requests are blocked. Ask your "
                     "administrator for a quota.");
    } else {
        if (tg_quota_format_tokens(tokens, sizeof(tokens), limit) < 0)
            return -1;
        int pct = tg_quota_percent(used, limit);
        if (p == TG_PERIOD_NONE || tg_quota_format_reset_date(date, sizeof(date), b, now_s) < 0)
            n = snprintf(dst, cap,
                         "You have used %d %% of your AI quota (%s tokens). It does not reset; "
                         "ask your administrator for more.",
                         pct, tokens);
        else
            n = snprintf(dst, cap,
                         "You have used %d %% of your %s AI quota (%s tokens). It resets on %s.",
                         pct, tg_period_adjective(p), tokens, date);
    }
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return n;
}

void tg_quota_headers_fill(struct tg_quota_headers *h, int64_t used, int64_t limit,
                           const struct tg_period_bounds *b, const struct tg_tz *tz,
                           int warn_percent)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->used, sizeof(h->used), "%" PRId64, used);
    if (limit < 0) {
        snprintf(h->limit, sizeof(h->limit), "-1");
        snprintf(h->remaining, sizeof(h->remaining), "-1");
    } else {
        int64_t rem;
        if (__builtin_sub_overflow(limit, used, &rem))
            rem = used < 0 ? INT64_MAX : 0;
        snprintf(h->limit, sizeof(h->limit), "%" PRId64, limit);
        snprintf(h->remaining, sizeof(h->remaining), "%" PRId64, rem > 0 ? rem : 0);
    }
    if (b->reset_s == INT64_MAX ||
        tg_quota_format_rfc3339(b->reset_s, tz, h->reset, sizeof(h->reset)) < 0)
        h->reset[0] = '\0';
    snprintf(h->state, sizeof(h->state), "%s",
             tg_quota_state_name(tg_quota_state_of(used, limit, warn_percent)));
}
