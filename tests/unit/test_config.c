/* Unit tests for core/config.c: every start-up error names its variable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

struct kv {
    const char *name, *value;
};

static const char *get_kv(const char *name, void *arg)
{
    const struct kv *kv = arg;
    for (; kv->name; kv++)
        if (strcmp(kv->name, name) == 0)
            return kv->value;
    return NULL;
}

#define BASE                                                                                       \
    {"DATABASE_URL", "postgresql://u:secret@127.0.0.1/db"},                                        \
        {"REDIS_URL", "redis://127.0.0.1:6379/0"}, {"UPSTREAM_URL", "http://127.0.0.1:4000"},      \
    {                                                                                              \
        "TOLLGATE_SERVICE_KEY", "0123456789abcdef0123"                                             \
    }

static void test_defaults(void **state)
{
    (void)state;
    struct kv kv[] = {BASE, {NULL, NULL}};
    struct tg_config cfg;
    char err[512] = "";
    assert_int_equal(tg_config_load(get_kv, kv, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.listen, "0.0.0.0:8080");
    assert_int_equal(cfg.quota_default_tokens, 1000000);
    assert_string_equal(cfg.quota_period, "month");
    assert_int_equal(cfg.quota_block_status, 402);
    assert_int_equal(cfg.quota_fail_mode, TG_FAIL_CLOSED);
    assert_int_equal(cfg.stream_abort_policy, TG_ABORT_CANCEL);
    assert_int_equal(cfg.upstream_first_byte_timeout_s, 600);
    assert_int_equal(cfg.upstream.port, 4000);
    assert_false(cfg.upstream.is_https);
    assert_true(cfg.workers >= 1);
    assert_int_equal(cfg.redis.port, 6379);
    assert_int_equal(cfg.max_body_bytes, 10485760);
}

static void test_errors_name_the_variable(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *name, *value;
        const char *expect_prefix;
    } rows[] = {
        {__LINE__, "DATABASE_URL", "", "DATABASE_URL: is required"},
        {__LINE__, "UPSTREAM_URL", "ftp://x", "UPSTREAM_URL: must start with http://"},
        {__LINE__, "UPSTREAM_URL", "http://", "UPSTREAM_URL: has no host"},
        {__LINE__, "UPSTREAM_URL", "http://h:99999", "UPSTREAM_URL: has an invalid port"},
        {__LINE__, "UPSTREAM_URL", "http://h/x?y", "UPSTREAM_URL: must not have a query"},
        {__LINE__, "TOLLGATE_LISTEN", "nonsense", "TOLLGATE_LISTEN: must be address:port"},
        {__LINE__, "TOLLGATE_LISTEN", "1.2.3:80", "TOLLGATE_LISTEN: is not an IP address"},
        {__LINE__, "TOLLGATE_LISTEN", "0.0.0.0:0", "TOLLGATE_LISTEN: has an invalid port"},
        {__LINE__, "QUOTA_PERIOD", "fortnight", "QUOTA_PERIOD: must be month, week, day or none"},
        {__LINE__, "QUOTA_BLOCK_STATUS", "418", "QUOTA_BLOCK_STATUS: must be"},
        {__LINE__, "QUOTA_FAIL_MODE", "maybe", "QUOTA_FAIL_MODE: must be one of closed|open"},
        {__LINE__, "QUOTA_WARN_PERCENT", "abc", "QUOTA_WARN_PERCENT: must be an integer"},
        {__LINE__, "QUOTA_WARN_PERCENT", "0", "QUOTA_WARN_PERCENT: must be between 1 and 100"},
        {__LINE__, "QUOTA_WARN_INLINE", "sometimes", "QUOTA_WARN_INLINE: must be on or off"},
        {__LINE__, "JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem",
         "JWT_PUBLIC_KEY_FILE: cannot read /nonexistent/key.pem"},
        {__LINE__, "REDIS_URL", "http://x", "REDIS_URL: must look like redis://"},
        {__LINE__, "REDIS_URL", "rediss://x", "REDIS_URL: TLS (rediss://) is not supported"},
        {__LINE__, "STREAM_ABORT_POLICY", "ignore", "STREAM_ABORT_POLICY: must be one of"},
        {__LINE__, "JWT_SECRET", "short", "JWT_SECRET: must be at least 32 characters"},
        {__LINE__, "MAX_BODY_BYTES", "10", "MAX_BODY_BYTES: must be between"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct kv kv[] = {{rows[i].name, rows[i].value}, BASE, {NULL, NULL}};
        struct tg_config cfg;
        char err[512] = "";
        int rc = tg_config_load(get_kv, kv, &cfg, err, sizeof(err));
        if (rc != -1 || strncmp(err, rows[i].expect_prefix, strlen(rows[i].expect_prefix)) != 0)
            fail_msg("line %d: rc=%d err=%s", rows[i].line, rc, err);
        if (strchr(err, '\n') != NULL)
            fail_msg("line %d: error is more than one line", rows[i].line);
    }
}

static void test_no_auth_method(void **state)
{
    (void)state;
    struct kv kv[] = {{"DATABASE_URL", "dbname=x"},
                      {"REDIS_URL", "redis://h:1/0"},
                      {"UPSTREAM_URL", "https://llm.example.com/base/"},
                      {NULL, NULL}};
    struct tg_config cfg;
    char err[512] = "";
    assert_int_equal(tg_config_load(get_kv, kv, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no way to authenticate users is configured"));
    struct kv kv2[] = {{"TOLLGATE_API_KEYS", "on"}, kv[0], kv[1], kv[2], {NULL, NULL}};
    assert_int_equal(tg_config_load(get_kv, kv2, &cfg, err, sizeof(err)), 0);
    assert_true(cfg.upstream.is_https);
    assert_int_equal(cfg.upstream.port, 443);
    assert_string_equal(cfg.upstream.path, "/base");
}

static void test_parsers(void **state)
{
    (void)state;
    struct tg_redis_url r;
    char err[256];
    assert_int_equal(tg_config_parse_redis_url("redis://:pw@10.0.0.1:6380/3", &r, err, sizeof(err)),
                     0);
    assert_string_equal(r.host, "10.0.0.1");
    assert_int_equal(r.port, 6380);
    assert_string_equal(r.password, "pw");
    assert_int_equal(r.db, 3);
    assert_int_equal(tg_config_parse_redis_url("redis://user:pw@h", &r, err, sizeof(err)), 0);
    assert_string_equal(r.password, "pw");
    assert_int_equal(r.port, 6379);
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(tg_config_parse_listen("[::1]:8080", &ss, &len, err, sizeof(err)), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(tg_config_parse_listen("127.0.0.1:1", &ss, &len, err, sizeof(err)), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    struct tg_url u;
    assert_int_equal(tg_config_parse_url("http://[::1]:4000", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(tg_config_parse_url("http://user:pw@h", &u, err, sizeof(err)), -1);
}

static void test_dotenv(void **state)
{
    (void)state;
    char path[] = "/tmp/tg-dotenv-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *body = "# comment\n\nexport A=1\nB = \"two words\" \nC='x#y'\nD=plain # note\n"
                       "E=\n";
    assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    close(fd);
    struct tg_dotenv *d;
    char err[256];
    assert_int_equal(tg_dotenv_load(path, &d, err, sizeof(err)), 0);
    assert_string_equal(tg_dotenv_get(d, "A"), "1");
    assert_string_equal(tg_dotenv_get(d, "B"), "two words");
    assert_string_equal(tg_dotenv_get(d, "C"), "x#y");
    assert_string_equal(tg_dotenv_get(d, "D"), "plain");
    assert_string_equal(tg_dotenv_get(d, "E"), "");
    assert_null(tg_dotenv_get(d, "F"));
    tg_dotenv_destroy(d);
    FILE *f = fopen(path, "w");
    fputs("OK=1\nthis is wrong\n", f);
    fclose(f);
    assert_int_equal(tg_dotenv_load(path, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, ":2: expected NAME=value"));
    unlink(path);
}

static void test_redaction(void **state)
{
    (void)state;
    struct kv kv[] = {BASE, {"UPSTREAM_API_KEY", "sk-verysecret"}, {NULL, NULL}};
    struct tg_config cfg;
    char err[512];
    assert_int_equal(tg_config_load(get_kv, kv, &cfg, err, sizeof(err)), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tg_config_print_effective(&cfg, f);
    fclose(f);
    assert_null(strstr(buf, "sk-verysecret"));
    assert_null(strstr(buf, "secret@"));
    assert_null(strstr(buf, "0123456789abcdef0123"));
    assert_non_null(strstr(buf, "DATABASE_URL=postgresql://u:***@127.0.0.1/db"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),       cmocka_unit_test(test_errors_name_the_variable),
        cmocka_unit_test(test_no_auth_method), cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_dotenv),         cmocka_unit_test(test_redaction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
