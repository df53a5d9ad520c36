/* tz.c: TZif (v2+) and POSIX TZ rules -> UTC offsets and local-time boundaries; civil dates. */
#include "quota/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY_S         86400
#define MAX_OFFSET_S  (26 * 3600 - 1) /* RFC 8536 bounds utoff to -25h..+26h */
#define MAX_TRANS     100000
#define MAX_TZIF_SIZE (1 << 20)

/* A POSIX rule date: Jn (1..365, no Feb 29), n (0..365), Mm.w.d; plus the local time. */
struct rule_date {
    char kind; /* 'J', 'n' or 'M' */
    int n, m, w, d;
    int32_t time_s;
};

struct rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    struct rule_date start, end; /* start of DST (in std time), end (in DST time) */
};

struct tg_tz {
    char name[128];
    size_t ntrans;
    int64_t *trans;     /* ascending transition instants */
    int32_t *trans_off; /* offset from trans[i] on */
    int32_t first_off;  /* before trans[0] (time type 0) */
    bool has_rule;      /* POSIX footer for instants >= the last transition */
    struct rule rule;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) TG_PRINTF(3, 4);
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- civil dates (H. Hinnant's algorithms, signed throughout) ---- */

int64_t tg_tz_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    return a - tg_tz_floor_div(a, b) * b;
}

int64_t tg_tz_days_from_civil(int64_t y, int mon, int d)
{
    int64_t m0 = (int64_t)mon - 1;
    y += tg_tz_floor_div(m0, 12);
    int64_t m = floor_mod(m0, 12) + 1;
    y -= m <= 2;
    int64_t era = tg_tz_floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + (int64_t)d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tg_tz_civil_from_days(int64_t days, int64_t *y, int *mon, int *d)
{
    int64_t z = days + 719468;
    int64_t era = tg_tz_floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t dd = doy - (153 * mp + 2) / 5 + 1;
    int64_t mm = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (mm <= 2);
    *mon = (int)mm;
    *d = (int)dd;
}

int tg_tz_weekday(int64_t days)
{
    return (int)floor_mod(days + 4, 7); /* 1970-01-01 was a Thursday */
}

bool tg_tz_is_leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int tg_tz_days_in_month(int64_t y, int mon)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mon < 1 || mon > 12)
        return 0;
    return dim[mon - 1] + (mon == 2 && tg_tz_is_leap_year(y));
}

static int64_t year_of_local(int64_t local_s)
{
    int64_t y;
    int m, d;
    tg_tz_civil_from_days(tg_tz_floor_div(local_s, DAY_S), &y, &m, &d);
    return y;
}

/* ---- POSIX TZ strings ---- */

static const char *parse_name(const char *s)
{
    const char *p = s;
    if (*p == '<') {
        p++;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
               *p == '+' || *p == '-')
            p++;
        if (*p != '>' || p == s + 1)
            return NULL;
        return p + 1;
    }
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]h[h[h]][:mm[:ss]], hours up to max_h. */
static const char *parse_hms(const char *s, int max_h, int32_t *out)
{
    int sign = 1;
    if (*s == '+' || *s == '-') {
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    if (*s < '0' || *s > '9')
        return NULL;
    int h = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 3) {
        h = h * 10 + (*s++ - '0');
        digits++;
    }
    if (h > max_h || (*s >= '0' && *s <= '9'))
        return NULL;
    int mi = 0, sec = 0;
    for (int part = 0; part < 2 && *s == ':'; part++) {
        s++;
        if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
            return NULL;
        int v = (s[0] - '0') * 10 + (s[1] - '0');
        if (v > 59)
            return NULL;
        if (part == 0)
            mi = v;
        else
            sec = v;
        s += 2;
    }
    *out = (int32_t)(sign * (h * 3600 + mi * 60 + sec));
    return s;
}

static const char *parse_uint(const char *s, int lo, int hi, int *out)
{
    if (*s < '0' || *s > '9')
        return NULL;
    int v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
        if (v > hi)
            return NULL;
    }
    if (v < lo)
        return NULL;
    *out = v;
    return s;
}

static const char *parse_rule_date(const char *s, struct rule_date *r)
{
    memset(r, 0, sizeof(*r));
    if (*s == 'J') {
        r->kind = 'J';
        s = parse_uint(s + 1, 1, 365, &r->n);
    } else if (*s == 'M') {
        r->kind = 'M';
        s = parse_uint(s + 1, 1, 12, &r->m);
        if (s == NULL || *s != '.')
            return NULL;
        s = parse_uint(s + 1, 1, 5, &r->w);
        if (s == NULL || *s != '.')
            return NULL;
        s = parse_uint(s + 1, 0, 6, &r->d);
    } else {
        r->kind = 'n';
        s = parse_uint(s, 0, 365, &r->n);
    }
    if (s == NULL)
        return NULL;
    r->time_s = 2 * 3600;
    if (*s == '/')
        s = parse_hms(s + 1, 167, &r->time_s);
    return s;
}

static int parse_posix(const char *s, struct rule *r)
{
    memset(r, 0, sizeof(*r));
    int32_t off;
    s = parse_name(s);
    if (s == NULL || (s = parse_hms(s, 24, &off)) == NULL)
        return -1;
    r->std_off = -off;
    if (*s == '\0') {
        r->dst_off = r->std_off;
        return 0;
    }
    s = parse_name(s);
    if (s == NULL)
        return -1;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if ((s = parse_hms(s, 24, &off)) == NULL)
            return -1;
        r->dst_off = -off;
    }
    if (*s == '\0') {
        /* POSIX leaves the default rule to the implementation; glibc uses the US rule. */
        s = "M3.2.0,M11.1.0";
    } else {
        s++;
    }
    if ((s = parse_rule_date(s, &r->start)) == NULL || *s != ',')
        return -1;
    if ((s = parse_rule_date(s + 1, &r->end)) == NULL || *s != '\0')
        return -1;
    return 0;
}

/* Local seconds (of the zone's wall clock) at which a rule date happens in year y. */
static int64_t rule_local_s(const struct rule_date *r, int64_t y)
{
    int64_t days;
    if (r->kind == 'J') {
        days = tg_tz_days_from_civil(y, 1, 1) + r->n - 1 + (tg_tz_is_leap_year(y) && r->n >= 60);
    } else if (r->kind == 'n') {
        days = tg_tz_days_from_civil(y, 1, 1) + r->n;
    } else {
        int64_t first = tg_tz_days_from_civil(y, r->m, 1);
        int wd = tg_tz_weekday(first);
        int day = 1 + (r->d - wd + 7) % 7 + (r->w - 1) * 7;
        int dim = tg_tz_days_in_month(y, r->m);
        while (day > dim)
            day -= 7;
        days = first + day - 1;
    }
    return days * DAY_S + r->time_s;
}

static int64_t rule_start_utc(const struct rule *r, int64_t y)
{
    return rule_local_s(&r->start, y) - r->std_off;
}

static int64_t rule_end_utc(const struct rule *r, int64_t y)
{
    return rule_local_s(&r->end, y) - r->dst_off;
}

static int32_t rule_offset(const struct rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y0 = year_of_local(t + r->std_off);
    int64_t best_t = INT64_MIN;
    int32_t best = r->std_off;
    for (int64_t y = y0 - 1; y <= y0 + 1; y++) {
        int64_t e = rule_end_utc(r, y);
        if (e <= t && e > best_t) {
            best_t = e;
            best = r->std_off;
        }
        int64_t s = rule_start_utc(r, y);
        if (s <= t && s >= best_t) { /* on a tie DST wins (all-year DST rules) */
            best_t = s;
            best = r->dst_off;
        }
    }
    return best;
}

/* ---- zones ---- */

static struct tg_tz *tz_alloc(const char *name, size_t ntrans)
{
    struct tg_tz *z = calloc(1, sizeof(*z));
    if (z == NULL)
        return NULL;
    if (ntrans > 0) {
        z->trans = calloc(ntrans, sizeof(*z->trans));
        z->trans_off = calloc(ntrans, sizeof(*z->trans_off));
        if (z->trans == NULL || z->trans_off == NULL) {
            tg_tz_destroy(z);
            return NULL;
        }
    }
    z->ntrans = ntrans;
    snprintf(z->name, sizeof(z->name), "%s", name ? name : "");
    return z;
}

void tg_tz_destroy(struct tg_tz *z)
{
    if (z == NULL)
        return;
    free(z->trans);
    free(z->trans_off);
    free(z);
}

const char *tg_tz_name(const struct tg_tz *z)
{
    return z->name;
}

struct tg_tz *tg_tz_from_posix(const char *tz_string, char *err, size_t errlen)
{
    struct rule r;
    if (tz_string == NULL || parse_posix(tz_string, &r) != 0) {
        set_err(err, errlen, "invalid POSIX TZ string \"%s\"", tz_string ? tz_string : "");
        return NULL;
    }
    struct tg_tz *z = tz_alloc(tz_string, 0);
    if (z == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    z->has_rule = true;
    z->rule = r;
    z->first_off = r.std_off;
    return z;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

static int read_header(const unsigned char *p, size_t len, struct tzif_counts *c)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return -1;
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    if (c->time > MAX_TRANS || c->type > 256 || c->chars > 65536 || c->leap > MAX_TRANS ||
        c->isut > 256 || c->isstd > 256)
        return -1;
    return 0;
}

struct tg_tz *tg_tz_parse(const char *name, const unsigned char *data, size_t len, char *err,
                          size_t errlen)
{
    struct tzif_counts c;
    if (read_header(data, len, &c) != 0) {
        set_err(err, errlen, "%s: not a TZif file", name);
        return NULL;
    }
    if (data[4] < '2') {
        set_err(err, errlen, "%s: TZif version 1 is not supported", name);
        return NULL;
    }
    size_t v1 =
        (size_t)c.time * 5 + (size_t)c.type * 6 + c.chars + (size_t)c.leap * 8 + c.isstd + c.isut;
    if (44 + v1 > len || read_header(data + 44 + v1, len - 44 - v1, &c) != 0) {
        set_err(err, errlen, "%s: truncated TZif file", name);
        return NULL;
    }
    if (c.leap != 0) {
        set_err(err, errlen, "%s: zones with leap seconds are not supported", name);
        return NULL;
    }
    if (c.type == 0) {
        set_err(err, errlen, "%s: TZif file without time types", name);
        return NULL;
    }
    const unsigned char *p = data + 44 + v1 + 44;
    size_t body = (size_t)c.time * 9 + (size_t)c.type * 6 + c.chars + c.isstd + c.isut;
    size_t rest = len - 44 - v1 - 44;
    if (body > rest) {
        set_err(err, errlen, "%s: truncated TZif file", name);
        return NULL;
    }
    const unsigned char *times = p, *idx = p + (size_t)c.time * 8, *types = idx + c.time;
    int32_t offs[256];
    for (uint32_t i = 0; i < c.type; i++) {
        int32_t off = (int32_t)be32(types + 6 * i);
        if (off < -MAX_OFFSET_S || off > MAX_OFFSET_S) {
            set_err(err, errlen, "%s: UTC offset out of range", name);
            return NULL;
        }
        offs[i] = off;
    }
    /* Footer: "\n<POSIX TZ>\n". */
    const unsigned char *f = p + body, *end = data + len;
    char footer[128] = "";
    if (f >= end || *f != '\n') {
        set_err(err, errlen, "%s: TZif footer missing", name);
        return NULL;
    }
    const unsigned char *nl = memchr(f + 1, '\n', (size_t)(end - f - 1));
    if (nl == NULL || (size_t)(nl - f - 1) >= sizeof(footer)) {
        set_err(err, errlen, "%s: bad TZif footer", name);
        return NULL;
    }
    memcpy(footer, f + 1, (size_t)(nl - f - 1));
    footer[nl - f - 1] = '\0';
    struct rule r;
    bool has_rule = footer[0] != '\0';
    if (has_rule && parse_posix(footer, &r) != 0) {
        set_err(err, errlen, "%s: unsupported TZ footer \"%s\"", name, footer);
        return NULL;
    }

    struct tg_tz *z = tz_alloc(name, c.time);
    if (z == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < c.time; i++) {
        z->trans[i] = (int64_t)be64(times + 8 * (size_t)i);
        if (idx[i] >= c.type || (i > 0 && z->trans[i] <= z->trans[i - 1])) {
            set_err(err, errlen, "%s: corrupt transition table", name);
            tg_tz_destroy(z);
            return NULL;
        }
        z->trans_off[i] = offs[idx[i]];
    }
    z->first_off = offs[0];
    z->has_rule = has_rule;
    if (has_rule)
        z->rule = r;
    return z;
}

static bool valid_zone_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 120 || name[0] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '/' || ch == '_' || ch == '+' || ch == '-' ||
                  ch == '.';
        if (!ok)
            return false;
        if (ch == '.' && (i == 0 || name[i - 1] == '/'))
            return false; /* no "..", no hidden files */
    }
    return true;
}

struct tg_tz *tg_tz_load(const char *name, char *err, size_t errlen)
{
    if (name == NULL || !valid_zone_name(name)) {
        set_err(err, errlen, "invalid time zone name \"%s\"", name ? name : "");
        return NULL;
    }
    if (strcmp(name, "UTC") == 0) {
        struct tg_tz *z = tz_alloc(name, 0);
        if (z == NULL)
            set_err(err, errlen, "out of memory");
        return z;
    }
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", TG_TZ_DIR, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, "unknown time zone \"%s\" (%s: %s)", name, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    unsigned char *buf = NULL;
    struct tg_tz *z = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > MAX_TZIF_SIZE) {
        set_err(err, errlen, "time zone \"%s\": %s is not a zone file", name, path);
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            set_err(err, errlen, "time zone \"%s\": cannot read %s", name, path);
            goto out;
        }
        got += (size_t)n;
    }
    z = tg_tz_parse(name, buf, got, err, errlen);
out:
    free(buf);
    close(fd);
    return z;
}

int64_t tg_tz_offset(const struct tg_tz *z, int64_t utc_s)
{
    size_t n = z->ntrans;
    if (n > 0 && utc_s < z->trans[0])
        return z->first_off;
    if (n == 0 || utc_s >= z->trans[n - 1]) {
        if (z->has_rule)
            return rule_offset(&z->rule, utc_s);
        return n ? z->trans_off[n - 1] : z->first_off;
    }
    size_t lo = 0, hi = n - 1; /* trans[lo] <= utc_s < trans[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= utc_s)
            lo = mid;
        else
            hi = mid;
    }
    return z->trans_off[lo];
}

/* The first transition instant strictly after t, INT64_MAX when none. */
static int64_t next_transition(const struct tg_tz *z, int64_t t)
{
    int64_t best = INT64_MAX;
    size_t n = z->ntrans;
    if (n > 0 && t < z->trans[n - 1]) {
        size_t lo = 0, hi = n - 1; /* first index with trans > t lies in [lo, hi] */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (z->trans[mid] > t)
                hi = mid;
            else
                lo = mid + 1;
        }
        best = z->trans[lo];
    }
    if (z->has_rule && z->rule.has_dst) {
        int64_t floor_t = (n > 0 && z->trans[n - 1] > t) ? z->trans[n - 1] : t;
        int64_t y0 = year_of_local(floor_t + z->rule.std_off);
        for (int64_t y = y0 - 1; y <= y0 + 2; y++) {
            int64_t s = rule_start_utc(&z->rule, y), e = rule_end_utc(&z->rule, y);
            if (s > floor_t && s < best)
                best = s;
            if (e > floor_t && e < best)
                best = e;
        }
    }
    return best;
}

int64_t tg_tz_local_to_utc(const struct tg_tz *z, int y, int mon, int d, int h, int mi)
{
    int64_t local = tg_tz_days_from_civil(y, mon, d) * DAY_S + (int64_t)h * 3600 + (int64_t)mi * 60;
    /* Walk the constant-offset segments from well before the answer: on [s, next) the local
     * time is u + o, so the first u there with u + o >= local is max(s, local - o). */
    int64_t s = local - MAX_OFFSET_S - 3600;
    int64_t o = tg_tz_offset(z, s);
    for (int i = 0; i < 1000; i++) {
        int64_t next = next_transition(z, s);
        int64_t cand = local - o > s ? local - o : s;
        if (cand < next)
            return cand;
        s = next;
        o = tg_tz_offset(z, s);
    }
    return local - o; /* unreachable with sane data: offsets are bounded */
}

void tg_tz_to_civil(const struct tg_tz *z, int64_t utc_s, struct tg_tz_civil *out)
{
    int64_t off = tg_tz_offset(z, utc_s);
    int64_t local = utc_s + off;
    int64_t days = tg_tz_floor_div(local, DAY_S);
    int64_t secs = local - days * DAY_S;
    tg_tz_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(secs / 3600);
    out->minute = (int)(secs / 60 % 60);
    out->second = (int)(secs % 60);
    out->weekday = tg_tz_weekday(days);
    out->offset_s = off;
    out->local_days = days;
}
