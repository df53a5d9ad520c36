/* tz.h: IANA time zones from TZif files (v2+, POSIX TZ footer) and civil-date arithmetic. */
#ifndef TG_TZ_H
#define TG_TZ_H

#include "core/common.h"

/* A loaded zone. Immutable after loading, so one zone may be shared by every thread. */
struct tg_tz;

/* Directory tg_tz_load reads zones from. */
#define TG_TZ_DIR "/usr/share/zoneinfo"

/* Loads zone `name` ("Europe/Lisbon") from TG_TZ_DIR/<name>. "UTC" works without any file.
 * The name must be relative, without "..", of [A-Za-z0-9/_+-.] only. Reads the file once; no
 * setenv("TZ"), no localtime. Returns the zone (caller owns it, free with tg_tz_destroy) or
 * NULL with a one-line reason in err. */
TG_MUST_CHECK struct tg_tz *tg_tz_load(const char *name, char *err, size_t errlen);

/* Builds a zone from the bytes of a TZif file (version 2 or later; version 1 and leap-second
 * files are refused). `name` is only recorded. data is borrowed. Returns the zone or NULL with
 * the reason in err. */
TG_MUST_CHECK struct tg_tz *tg_tz_parse(const char *name, const unsigned char *data, size_t len,
                                        char *err, size_t errlen);

/* Builds a zone from a POSIX TZ string alone ("CET-1CEST,M3.5.0,M10.5.0/3",
 * "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "IST-5:30"), with RFC 8536's extensions (hours up
 * to 167 and negative rule times). Returns the zone or NULL with the reason in err. */
TG_MUST_CHECK struct tg_tz *tg_tz_from_posix(const char *tz_string, char *err, size_t errlen);

/* Frees z; NULL is accepted. */
void tg_tz_destroy(struct tg_tz *z);

/* The name given at load time (borrowed, valid while z lives). */
const char *tg_tz_name(const struct tg_tz *z);

/* Offset of local time from UTC in seconds (east positive) at instant utc_s. Pure. */
int64_t tg_tz_offset(const struct tg_tz *z, int64_t utc_s);

/* The FIRST instant whose local wall-clock time is >= y-mon-d h:mi:00. A wall time skipped by a
 * DST jump maps to the instant of the jump (America/Sao_Paulo 2018-11-04 00:00 -> 01:00 local);
 * a repeated wall time maps to its first occurrence. mon may lie outside 1..12 and d outside the
 * month (they are normalised: month 13 = January of y+1, day 32 of January = 1 February). Pure. */
int64_t tg_tz_local_to_utc(const struct tg_tz *z, int y, int mon, int d, int h, int mi);

/* Civil (proleptic Gregorian) dates without libc time functions. Days are counted from
 * 1970-01-01 (day 0). */
int64_t tg_tz_days_from_civil(int64_t y, int mon, int d);
void tg_tz_civil_from_days(int64_t days, int64_t *y, int *mon, int *d);
/* Day of week of a day number: 0 = Sunday .. 6 = Saturday. */
int tg_tz_weekday(int64_t days);
bool tg_tz_is_leap_year(int64_t y);
/* 28..31; mon must be 1..12. */
int tg_tz_days_in_month(int64_t y, int mon);
/* Floor division of a time by a positive divisor (for negative instants). */
int64_t tg_tz_floor_div(int64_t a, int64_t b);

/* Local civil time of an instant. */
struct tg_tz_civil {
    int64_t year;
    int month, day, hour, minute, second;
    int weekday;        /* 0 = Sunday */
    int64_t offset_s;   /* offset applied */
    int64_t local_days; /* day number of the local date */
};
/* Fills out with the local date and time of utc_s in z. Pure. */
void tg_tz_to_civil(const struct tg_tz *z, int64_t utc_s, struct tg_tz_civil *out);

#endif
