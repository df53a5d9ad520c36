/* Unit tests for meter/notice.c: text, SSE chunk, finish split, stripping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"
#include "meter/notice.h"

#define W  "\xE2\x9A\xA0\xEF\xB8\x8F"
#define N1 "> " W " You have used 82 % of your monthly AI quota; it resets on 1 December."
#define N2 "> " W " You have used 95 % of your daily AI quota; it resets on 2 May 2026."
#define N3 "> \xE2\x9A\xA0 You have used 5 % of your AI quota; it does not reset."

static char *q(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return false;
}

static void test_format(void **state)
{
    (void)state;
    static const struct {
        int line;
        int percent;
        const char *period;
        int day, month, year, current;
        const char *want; /* NULL: -1 */
    } rows[] = {
        {__LINE__, 82, "month", 1, 12, 2025, 2025,
         "\n\n> " W " You have used 82 % of your monthly AI quota; it resets on 1 December."},
        {__LINE__, 80, "week", 3, 3, 2025, 2025,
         "\n\n> " W " You have used 80 % of your weekly AI quota; it resets on 3 March."},
        {__LINE__, 95, "day", 2, 5, 2025, 2025,
         "\n\n> " W " You have used 95 % of your daily AI quota; it resets on 2 May."},
        {__LINE__, 82, "month", 1, 1, 2026, 2025,
         "\n\n> " W " You have used 82 % of your monthly AI quota; it resets on 1 January 2026."},
        {__LINE__, 90, "none", 0, 0, 0, 2025,
         "\n\n> " W " You have used 90 % of your AI quota; it does not reset."},
        {__LINE__, 0, "month", 31, 1, 2025, 2025,
         "\n\n> " W " You have used 0 % of your monthly AI quota; it resets on 31 January."},
        {__LINE__, 1000000, "week", 30, 9, -5, 2025,
         "\n\n> " W " You have used 1000000 % of your weekly AI quota; it resets on 30 "
         "September -5."},
        {__LINE__, 82, "year", 1, 1, 2025, 2025, NULL},
        {__LINE__, 82, "Month", 1, 1, 2025, 2025, NULL},
        {__LINE__, 82, "", 1, 1, 2025, 2025, NULL},
        {__LINE__, -1, "month", 1, 1, 2025, 2025, NULL},
        {__LINE__, 1000001, "month", 1, 1, 2025, 2025, NULL},
        {__LINE__, 82, "month", 0, 1, 2025, 2025, NULL},
        {__LINE__, 82, "month", 32, 1, 2025, 2025, NULL},
        {__LINE__, 82, "day", 1, 0, 2025, 2025, NULL},
        {__LINE__, 82, "day", 1, 13, 2025, 2025, NULL},
    };
    static const char *const overflow_words[] = {
        "prompt is too long", "maximum context", "context_length", "context length", "too large",
        "too long",           "exceeded",        "limit",          "tokens",         "requested",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char dst[TG_NOTICE_MAX_BYTES];
        int n = tg_notice_format(dst, sizeof(dst), rows[i].percent, rows[i].period, rows[i].day,
                                 rows[i].month, rows[i].year, rows[i].current);
        if (rows[i].want == NULL) {
            if (n != -1)
                fail_msg("line %d: n=%d", rows[i].line, n);
            continue;
        }
        if (n != (int)strlen(rows[i].want) || strcmp(dst, rows[i].want) != 0)
            fail_msg("line %d: got '%s'", rows[i].line, dst);
        for (size_t w = 0; w < TG_ARRAY_LEN(overflow_words); w++)
            if (contains_ci(dst, overflow_words[w]))
                fail_msg("line %d: contains '%s'", rows[i].line, overflow_words[w]);
        assert_null(strchr(dst, '{'));
        assert_null(strchr(dst, '"'));
        /* exactly enough room, and one byte less */
        char *exact = malloc((size_t)n + 1);
        assert_non_null(exact);
        assert_int_equal(tg_notice_format(exact, (size_t)n + 1, rows[i].percent, rows[i].period,
                                          rows[i].day, rows[i].month, rows[i].year,
                                          rows[i].current),
                         n);
        assert_string_equal(exact, dst);
        assert_int_equal(tg_notice_format(exact, (size_t)n, rows[i].percent, rows[i].period,
                                          rows[i].day, rows[i].month, rows[i].year,
                                          rows[i].current),
                         -1);
        free(exact);
        /* what we write, we strip */
        char text[256];
        int tl = snprintf(text, sizeof(text), "The answer is 42.%s", dst);
        assert_int_equal(tg_notice_strip(text, (size_t)tl), 17);
        assert_memory_equal(text, "The answer is 42.", 17);
    }
    assert_int_equal(tg_notice_format(NULL, 10, 1, "month", 1, 1, 1, 1), -1);
    char d[8];
    assert_int_equal(tg_notice_format(d, sizeof(d), 1, NULL, 1, 1, 1, 1), -1);
}

/* The longest text fits TG_NOTICE_MAX_BYTES, and every combination strips. */
static void test_format_all(void **state)
{
    (void)state;
    static const char *const periods[] = {"month", "week", "day", "none"};
    static const int percents[] = {0, 7, 80, 100, 999, 1000000};
    static const int years[] = {2025, 2026, -2147483647 - 1, 2147483647};
    for (size_t p = 0; p < TG_ARRAY_LEN(periods); p++)
        for (size_t c = 0; c < TG_ARRAY_LEN(percents); c++)
            for (int month = 1; month <= 12; month++)
                for (int day = 1; day <= 31; day += 29)
                    for (size_t y = 0; y < TG_ARRAY_LEN(years); y++) {
                        char dst[TG_NOTICE_MAX_BYTES], text[TG_NOTICE_MAX_BYTES + 8];
                        int n = tg_notice_format(dst, sizeof(dst), percents[c], periods[p], day,
                                                 month, years[y], 2025);
                        assert_true(n > 0);
                        memcpy(text, "x", 1);
                        memcpy(text + 1, dst, (size_t)n);
                        assert_int_equal(tg_notice_strip(text, (size_t)n + 1), 1);
                    }
}

static void test_strip(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *in;
        const char *want;
    } rows[] = {
        {__LINE__, "", ""},
        {__LINE__, "no notice here", "no notice here"},
        {__LINE__, "A\n\n" N1, "A"},
        {__LINE__, N1, ""},
        {__LINE__, N1 "\nB", "B"},
        {__LINE__, N1 "\n", ""},
        {__LINE__, "A\n" N1, "A"},
        {__LINE__, "A\n\n\n" N1, "A\n"},
        {__LINE__, "A\n\n" N1 "\nB", "A\nB"},
        {__LINE__, "A\n\n" N1 "\n\n" N2, "A"},
        {__LINE__, "A\n\n" N1 "\nB\n\n" N2 "\nC", "A\nB\nC"},
        {__LINE__, N1 "\n" N2 "\n" N3, ""},
        {__LINE__, "A\n\n" N3, "A"},
        {__LINE__, "A\n\n> " W " You have used 82% of your monthly AI quota; x", "A"},
        {__LINE__, "A\n\n" N1 " and more on the line\nB", "A\nB"},
        {__LINE__, "A\n\n> " W " You have used 1234567 % of your AI quota; x", "A"},
        /* look-alikes stay */
        {__LINE__, "You have used 82 % of your monthly AI quota; it resets on 1 December.",
         "You have used 82 % of your monthly AI quota; it resets on 1 December."},
        {__LINE__, "My AI quota is fine.", "My AI quota is fine."},
        {__LINE__, "x " N1, "x " N1},
        {__LINE__, "A\n\n> " W " You have used lots of your AI quota; x",
         "A\n\n> " W " You have used lots of your AI quota; x"},
        {__LINE__, "A\n\n> " W " You have used 12345678 % of your AI quota; x",
         "A\n\n> " W " You have used 12345678 % of your AI quota; x"},
        {__LINE__, "A\n\n> " W " You have used 82 % of your monthly quota; x",
         "A\n\n> " W " You have used 82 % of your monthly quota; x"},
        {__LINE__, "A\n\n> " W " You have used 82 % of your monthly AI quota;",
         "A\n\n> " W " You have used 82 % of your monthly AI quota;"},
        {__LINE__, "A\n\n> " W " You have used 82 % of your m0nthly AI quota; x",
         "A\n\n> " W " You have used 82 % of your m0nthly AI quota; x"},
        {__LINE__, "A\n\n>  " W " You have used 82 % of your AI quota; x",
         "A\n\n>  " W " You have used 82 % of your AI quota; x"},
        {__LINE__, "A\n\n> " W " You have used 8", "A\n\n> " W " You have used 8"},
        {__LINE__, "> \xE2\x9A", "> \xE2\x9A"},
        {__LINE__, "A\n\n" N1 "\n\nquoted: " N1, "A\n\nquoted: " N1},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        size_t len = strlen(rows[i].in);
        char *t = malloc(len + 1);
        assert_non_null(t);
        memcpy(t, rows[i].in, len + 1);
        size_t n = tg_notice_strip(t, len);
        if (n != strlen(rows[i].want) || memcmp(t, rows[i].want, n) != 0)
            fail_msg("line %d: got '%.*s'", rows[i].line, (int)n, t);
        /* idempotent */
        assert_int_equal(tg_notice_strip(t, n), n);
        free(t);
    }
}

static void test_chunk(void **state)
{
    (void)state;
    struct tg_buf out = {0};
    assert_int_equal(tg_buf_puts(&out, "data: {}\n\n"), 0);
    const char *text = "\n\n" N1;
    assert_int_equal(
        tg_notice_chunk(&out, "chatcmpl-9\"x", 1700000000, "gpt-4o\\mini", text, strlen(text)), 0);
    const char *want =
        "data: {}\n\n"
        "data: {\"id\":\"chatcmpl-9\\\"x\",\"object\":\"chat.completion.chunk\",\"created\":"
        "1700000000,\"model\":\"gpt-4o\\\\mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        "\"\\n\\n" N1 "\"},\"finish_reason\":null}]}\n\n";
    assert_string_equal(out.data, want);
    const char *data = out.data + 16;
    size_t dlen = out.len - 16 - 2;
    struct tg_jv root, v;
    assert_int_equal(tg_json_parse(data, dlen, &root, NULL), 0);
    assert_true(tg_json_path(&root, "choices.0.delta.content", &v));
    assert_true(tg_json_string_eq(&v, text, strlen(text)));
    assert_true(tg_json_path(&root, "choices.0.finish_reason", &v));
    assert_int_equal(v.type, TG_JSON_NULL);
    tg_buf_cleanup(&out);

    assert_int_equal(tg_notice_chunk(&out, "", -1, "", "", 0), 0);
    assert_string_equal(out.data, "data: {\"id\":\"\",\"object\":\"chat.completion.chunk\","
                                  "\"created\":-1,\"model\":\"\",\"choices\":[{\"index\":0,"
                                  "\"delta\":{\"content\":\"\"},\"finish_reason\":null}]}\n\n");
    tg_buf_cleanup(&out);
}

static void test_split_finish(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *in;
        const char *a; /* NULL: error */
        const char *b;
    } rows[] = {
        {__LINE__,
         "{'id':'c','object':'chat.completion.chunk','created':1,'model':'m','choices':[{'index':"
         "0,'delta':{'content':'bye'},'finish_reason':'stop'}]}",
         "{'id':'c','object':'chat.completion.chunk','created':1,'model':'m','choices':[{'index':"
         "0,'delta':{'content':'bye'},'finish_reason':null}]}",
         "{'id':'c','object':'chat.completion.chunk','created':1,'model':'m','choices':[{'index':"
         "0,'delta':{},'finish_reason':'stop'}]}"},
        {__LINE__,
         "{'choices':[{'index':0,'delta':{'role':'assistant','content':'x'},'logprobs':"
         "{'content':[]},'finish_reason':'stop'}],'usage':{'prompt_tokens':1}}",
         "{'choices':[{'index':0,'delta':{'role':'assistant','content':'x'},'logprobs':"
         "{'content':[]},'finish_reason':null}],'usage':null}",
         "{'choices':[{'index':0,'delta':{},'logprobs':null,'finish_reason':'stop'}],"
         "'usage':{'prompt_tokens':1}}"},
        {__LINE__,
         " { 'choices' : [ { 'delta' : { 'content' : 'x' } , 'finish_reason' : 'stop' "
         "} ] , 'usage' : null } ",
         " { 'choices' : [ { 'delta' : { 'content' : 'x' } , 'finish_reason' : null } ] , "
         "'usage' : null } ",
         " { 'choices' : [ { 'delta' : {} , 'finish_reason' : 'stop' } ] , 'usage' : null } "},
        {__LINE__,
         "{'choices':[{'index':0,'delta':{'content':'a'},'finish_reason':'stop'},{'index':1,"
         "'delta':{'content':'b'},'finish_reason':null},7]}",
         "{'choices':[{'index':0,'delta':{'content':'a'},'finish_reason':null},{'index':1,"
         "'delta':{'content':'b'},'finish_reason':null},7]}",
         "{'choices':[{'index':0,'delta':{},'finish_reason':'stop'},{'index':1,"
         "'delta':{},'finish_reason':null},7]}"},
        {__LINE__, "{'choices':[]}", "{'choices':[]}", "{'choices':[]}"},
        {__LINE__,
         "{'choices':[{'delta':{'content':'\\u00e9'},'finish_reason':'stop',"
         "'finish_reason':'length'}]}",
         "{'choices':[{'delta':{'content':'\\u00e9'},'finish_reason':'stop',"
         "'finish_reason':null}]}",
         "{'choices':[{'delta':{},'finish_reason':'stop','finish_reason':'length'}]}"},
        {__LINE__, "{'choices':{}}", NULL, NULL},
        {__LINE__, "{'id':'x'}", NULL, NULL},
        {__LINE__, "[]", NULL, NULL},
        {__LINE__, "{'choices':[}", NULL, NULL},
        {__LINE__, "", NULL, NULL},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char *in = q(rows[i].in);
        struct tg_buf a = {0}, b = {0};
        assert_int_equal(tg_buf_puts(&a, ">"), 0);
        assert_int_equal(tg_buf_puts(&b, "<"), 0);
        int rc = tg_notice_split_finish(in, strlen(in), &a, &b);
        if (rows[i].a == NULL) {
            if (rc != -1 || strcmp(a.data, ">") != 0 || strcmp(b.data, "<") != 0)
                fail_msg("line %d: rc=%d", rows[i].line, rc);
        } else {
            char *wa = q(rows[i].a), *wb = q(rows[i].b);
            if (rc != 0 || strcmp(a.data + 1, wa) != 0 || strcmp(b.data + 1, wb) != 0)
                fail_msg("line %d: rc=%d\na='%s'\nb='%s'", rows[i].line, rc, a.data, b.data);
            struct tg_jv root;
            assert_int_equal(tg_json_parse(a.data + 1, a.len - 1, &root, NULL), 0);
            assert_int_equal(tg_json_parse(b.data + 1, b.len - 1, &root, NULL), 0);
            free(wa);
            free(wb);
        }
        tg_buf_cleanup(&a);
        tg_buf_cleanup(&b);
        free(in);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),       cmocka_unit_test(test_format_all),
        cmocka_unit_test(test_strip),        cmocka_unit_test(test_chunk),
        cmocka_unit_test(test_split_finish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
