/* Unit tests for core/uuid7.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/uuid7.h"

static void test_layout_and_order(void **state)
{
    (void)state;
    struct tg_uuid7_gen g;
    tg_uuid7_init_seed(&g, 7);
    uint8_t prev[16] = {0}, id[16];
    int64_t t0 = 1763800000000; /* 2025-11-22 */
    for (int i = 0; i < 20000; i++) {
        int64_t ms = tg_uuid7_next(&g, t0 + i / 7000, id);
        assert_true(ms >= t0 + i / 7000);
        assert_int_equal(tg_uuid7_ms(id), ms);
        assert_int_equal(id[6] >> 4, 7);       /* version */
        assert_int_equal(id[8] >> 6, 2);       /* variant 10 */
        assert_true(memcmp(prev, id, 16) < 0); /* strictly increasing */
        memcpy(prev, id, 16);
    }
    /* clock going backwards still yields increasing ids */
    int64_t ms = tg_uuid7_next(&g, t0 - 1000, id);
    assert_true(memcmp(prev, id, 16) < 0);
    assert_true(ms >= t0);
}

static void test_format_parse(void **state)
{
    (void)state;
    struct tg_uuid7_gen g;
    assert_int_equal(tg_uuid7_init(&g), 0);
    uint8_t id[16], back[16];
    tg_uuid7_next(&g, 1700000000123, id);
    char s[37];
    tg_uuid_format(id, s);
    assert_int_equal(strlen(s), 36);
    assert_int_equal(s[14], '7');
    assert_int_equal(tg_uuid_parse(s, 36, back), 0);
    assert_memory_equal(id, back, 16);
    assert_int_equal(tg_uuid_parse("not-a-uuid", 10, back), -1);
    assert_int_equal(tg_uuid_parse("0190163d-8694-739b-aea5-966c26f8ad9g", 36, back), -1);
    assert_string_equal(s + 0, s); /* keep s used */
    uint8_t fixed[16] = {0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, 0x70, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(tg_uuid7_ms(fixed), 0x018bcfe56800LL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_order),
        cmocka_unit_test(test_format_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
