/* test_redis_format.c: tg_redis_format_argv (quota/redis_async.c, the EVALSHA commands of the
 * quota scripts) against hiredis' redisFormatCommandArgv, byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "quota/redis_async.h"

/* ---- tg_redis_format_argv ------------------------------------------------------------------ */

static void check_same_as_hiredis(int line, int argc, const char **argv, const size_t *argvlen)
{
    print_message("row at line %d (argc %d)\n", line, argc);
    char *ours = NULL, *theirs = NULL;
    int n = tg_redis_format_argv(&ours, argc, argv, argvlen);
    int m = redisFormatCommandArgv(&theirs, argc, argv, argvlen);
    assert_true(m > 0);
    assert_int_equal(n, m);
    assert_non_null(ours);
    assert_memory_equal(ours, theirs, (size_t)m);
    assert_int_equal(ours[n], '\0');
    free(ours);
    redisFreeCommand(theirs);
}

struct format_case {
    int line;
    int argc;
    const char *argv[6];
    size_t len[6]; /* 0 for every entry: use strlen (argvlen NULL) */
};

static const struct format_case format_cases[] = {
    {__LINE__, 1, {"PING"}, {0}},
    {__LINE__, 2, {"GET", "k"}, {0}},
    {__LINE__, 3, {"SET", "", "v"}, {0}},
    {__LINE__, 5, {"EVALSHA", "0123456789abcdef0123456789abcdef01234567", "2", "a:b", "c"}, {0}},
    {__LINE__, 3, {"SET", "k\r\n", "a\0b"}, {3, 3, 3}},
    {__LINE__, 2, {"ECHO", ""}, {4, 0}},
    {__LINE__, 3, {"SET", "1234567890", "x"}, {3, 10, 1}},
};

static void test_format_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]); i++) {
        const struct format_case *c = &format_cases[i];
        bool lens = false;
        const char *argv[6];
        for (int j = 0; j < c->argc; j++) {
            lens |= c->len[j] != 0;
            argv[j] = c->argv[j];
        }
        check_same_as_hiredis(c->line, c->argc, argv, lens ? c->len : NULL);
    }
}

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random commands: 1..70 arguments of 0..(sometimes 20 000) random bytes. */
static void test_format_random(void **state)
{
    (void)state;
    static char data[70][20000];
    for (int round = 0; round < 500; round++) {
        int argc = 1 + (int)(rng() % 70);
        const char *argv[70];
        size_t len[70];
        for (int i = 0; i < argc; i++) {
            len[i] = (size_t)(rng() % (rng() % 8 == 0 ? sizeof(data[i]) : 40));
            for (size_t j = 0; j < len[i]; j++)
                data[i][j] = (char)(rng() & 0xFF);
            argv[i] = data[i];
        }
        check_same_as_hiredis(__LINE__, argc, argv, len);
    }
}

static void test_format_errors(void **state)
{
    (void)state;
    char *out = (char *)1;
    const char *argv[] = {"PING"};
    assert_int_equal(tg_redis_format_argv(&out, 0, argv, NULL), -1);
    assert_null(out);
    out = (char *)1;
    assert_int_equal(tg_redis_format_argv(&out, 1, NULL, NULL), -1);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_format_random),
        cmocka_unit_test(test_format_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
