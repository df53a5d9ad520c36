/* Fuzz target: TZif zone data and POSIX TZ strings (QUOTA_TIMEZONE files are read at start-up). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quota/quota_math.h"
#include "quota/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const struct tg_tz *z)
{
    static const int64_t probes[] = {-2208988800LL, 0, 1700000000LL, 1795320011LL, 4102444800LL};
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        (void)tg_tz_offset(z, probes[i]);
        struct tg_period_bounds b;
        for (int p = TG_PERIOD_MONTH; p <= TG_PERIOD_NONE; p++)
            if (tg_quota_period_bounds(probes[i], (enum tg_period)p, z, &b) == 0 &&
                b.reset_s != INT64_MAX && b.reset_s <= b.start_s)
                __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct tg_tz *z = tg_tz_parse("fuzz", data, size, err, sizeof(err));
    if (z != NULL) {
        exercise(z);
        tg_tz_destroy(z);
    }
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    z = tg_tz_from_posix(s, err, sizeof(err));
    free(s);
    if (z != NULL) {
        exercise(z);
        tg_tz_destroy(z);
    }
    return 0;
}
