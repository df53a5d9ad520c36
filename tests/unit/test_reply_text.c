/* Unit tests for meter/reply_text.c: the model's text out of non-streamed replies of every
 * route, escapes and surrogate pairs decoded, the same result for every split of the body
 * (one cut at every offset, then random chunkings of 1 byte up), malformed and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meter/reply_text.h"

struct sink {
    char buf[8192];
    size_t len;
    size_t calls;
};

static void collect(void *arg, const char *p, size_t n)
{
    struct sink *s = arg;
    assert_true(n > 0);
    assert_true(s->len + n <= sizeof(s->buf));
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->calls++;
}

/* Feeds `in` cut at cuts[0..ncuts) and returns the text collected (NUL-terminated in s). */
static void run(enum tg_route route, const char *in, const size_t *cuts, size_t ncuts,
                struct sink *s)
{
    struct tg_reply_text t;
    memset(s, 0, sizeof(*s));
    tg_reply_text_init(&t, route, collect, s);
    size_t len = strlen(in), start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        tg_reply_text_feed(&t, in + start, end - start);
        start = end;
    }
    s->buf[s->len] = '\0';
}

/* The text for the whole body, for one cut at every offset, and for 200 random chunkings. */
static void expect_text(enum tg_route route, const char *in, const char *want)
{
    struct sink s;
    run(route, in, NULL, 0, &s);
    assert_string_equal(s.buf, want);
    size_t len = strlen(in);
    for (size_t cut = 0; cut <= len; cut++) {
        run(route, in, &cut, 1, &s);
        if (strcmp(s.buf, want) != 0)
            fail_msg("cut at %zu: got \"%s\", want \"%s\"", cut, s.buf, want);
    }
    srand(12345);
    for (int round = 0; round < 200; round++) {
        size_t cuts[64], n = 0, at = 0;
        size_t maxstep = (size_t)(round % 7 == 0 ? 1 : 1 + rand() % 16);
        while (n < 64 && at < len) {
            at += 1 + (size_t)rand() % maxstep;
            if (at < len)
                cuts[n++] = at;
        }
        run(route, in, cuts, n, &s);
        if (strcmp(s.buf, want) != 0)
            fail_msg("chunking %d: got \"%s\", want \"%s\"", round, s.buf, want);
    }
}

static void chat_message(void **state)
{
    (void)state;
    expect_text(TG_ROUTE_CHAT,
                "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,"
                "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                "\"assistant\",\"content\":\"Hello, world!\",\"refusal\":null},"
                "\"logprobs\":null,\"finish_reason\":\"stop\"}]}",
                "Hello, world!");
}

static void chat_tool_calls_and_reasoning(void **state)
{
    (void)state;
    expect_text(TG_ROUTE_CHAT,
                "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"reasoning_content\":"
                "\"think \",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
                "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
                "\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},\"finish_reason\":\"tool_calls\"},"
                "{\"message\":{\"content\":\" second\"}}],\"usage\":null}",
                "think get_weather{\"city\":\"Paris\"} second");
}

static void completions_text(void **state)
{
    (void)state;
    expect_text(TG_ROUTE_COMPLETIONS,
                "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"text\":"
                "\"  indented\\n\\tline\",\"index\":0,\"logprobs\":null,\"finish_reason\":"
                "\"length\"}],\"model\":\"gpt-3.5-turbo-instruct\"}",
                "  indented\n\tline");
}

static void responses_output(void **state)
{
    (void)state;
    expect_text(TG_ROUTE_RESPONSES,
                "{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\","
                "\"instructions\":\"not this\",\"output\":[{\"type\":\"reasoning\",\"id\":"
                "\"rs_1\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"R.\"}]},"
                "{\"type\":\"message\",\"id\":\"msg_1\",\"status\":\"completed\",\"role\":"
                "\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Olá\","
                "\"annotations\":[]}]},{\"type\":\"function_call\",\"name\":\"f\","
                "\"arguments\":\"{}\",\"call_id\":\"c\"}],\"text\":{\"format\":{\"type\":"
                "\"text\"}}}",
                "R.Oláf{}");
}

static void anthropic_content(void **state)
{
    (void)state;
    expect_text(TG_ROUTE_MESSAGES,
                "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                "\"claude\",\"content\":[{\"type\":\"text\",\"text\":\"Hi \"},{\"type\":"
                "\"tool_use\",\"id\":\"toolu_1\",\"name\":\"lookup\",\"input\":{\"q\":"
                "\"x\"}}],\"stop_reason\":\"end_turn\"}",
                "Hi lookup");
}

static void escapes_and_surrogates(void **state)
{
    (void)state;
    /* \u00e9 é, \u4e2d 中, a surrogate pair for 😀, a lone high and a lone low surrogate
     * (each U+FFFD), and the short escapes */
    expect_text(TG_ROUTE_CHAT,
                "{\"choices\":[{\"message\":{\"content\":\"caf\\u00e9 \\u4E2D "
                "\\ud83d\\ude00 \\ud83dx \\ude00 \\\"q\\\" \\\\ \\/ \\b\\f\\r\"}}]}",
                "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \xef\xbf\xbdx \xef\xbf\xbd \"q\" "
                "\\ / \b\f\r");
}

static void ignores_what_the_model_did_not_write(void **state)
{
    (void)state;
    /* keys outside the route's member, keys that merely look like text names, non-member
     * strings (array elements), values of other names, and an escaped member name */
    expect_text(TG_ROUTE_CHAT,
                "{\"content\":\"top level\",\"system_fingerprint\":\"fp\",\"choices\":[{"
                "\"message\":{\"role\":\"assistant\",\"contents\":\"no\",\"content\":\"yes\","
                "\"annotations\":[\"text\",\"content\"],\"con\\u0074ent\":\"escaped name\"}}],"
                "\"text\":\"after\"}",
                "yes");
    expect_text(TG_ROUTE_EMBEDDINGS,
                "{\"object\":\"list\",\"data\":[{\"embedding\":[0.1,-2e-3],\"text\":\"x\"}],"
                "\"choices\":[{\"text\":\"no\"}]}",
                "");
}

static void malformed_stops_quietly(void **state)
{
    (void)state;
    struct sink s;
    static const char *const bad[] = {
        "[\"content\"]",
        "{\"choices\":[{\"message\":{\"content\":\"a\"}]}}, \"choices\":[{\"text\":\"b\"}]",
        "{\"choices\":[{\"text\":\"a\\x\"}]}",
        "{\"choices\":[{\"text\":\"a\\u12G4\"}]}",
        "{\"choices\" [{\"text\":\"a\"}]}",
        "{\"choices\":[,{\"text\":\"a\"}]}",
        "{\"choices\":[{\"text\":\"a\"}}}",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run(TG_ROUTE_CHAT, bad[i], NULL, 0, &s);
        assert_true(s.len <= 1); /* at most what came before the break */
    }
    /* after the root ends nothing more is read */
    run(TG_ROUTE_COMPLETIONS, "{\"choices\":[{\"text\":\"a\"}]} {\"choices\":[{\"text\":\"b\"}]}",
        NULL, 0, &s);
    assert_string_equal(s.buf, "a");
}

static void deep_nesting_is_bounded(void **state)
{
    (void)state;
    static char in[4096];
    size_t n = 0;
    n += (size_t)snprintf(in, sizeof(in), "{\"choices\":");
    for (int i = 0; i < 200; i++)
        in[n++] = '[';
    n += (size_t)snprintf(in + n, sizeof(in) - n, "{\"text\":\"deep\"}");
    for (int i = 0; i < 200; i++)
        in[n++] = ']';
    in[n++] = '}';
    in[n] = '\0';
    struct sink s;
    run(TG_ROUTE_COMPLETIONS, in, NULL, 0, &s);
    assert_int_equal(s.len, 0); /* past TG_REPLY_TEXT_MAX_DEPTH the extraction stops */
}

static void plain_runs_come_in_one_piece(void **state)
{
    (void)state;
    /* no per-byte callback: a 2 KB plain string fed whole arrives as one piece */
    static char in[4096];
    int n = snprintf(in, sizeof(in), "{\"choices\":[{\"text\":\"");
    memset(in + n, 'a', 2048);
    snprintf(in + n + 2048, sizeof(in) - (size_t)n - 2048, "\"}]}");
    struct sink s;
    run(TG_ROUTE_COMPLETIONS, in, NULL, 0, &s);
    assert_int_equal(s.len, 2048);
    assert_int_equal(s.calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chat_message),
        cmocka_unit_test(chat_tool_calls_and_reasoning),
        cmocka_unit_test(completions_text),
        cmocka_unit_test(responses_output),
        cmocka_unit_test(anthropic_content),
        cmocka_unit_test(escapes_and_surrogates),
        cmocka_unit_test(ignores_what_the_model_did_not_write),
        cmocka_unit_test(malformed_stops_quietly),
        cmocka_unit_test(deep_nesting_is_bounded),
        cmocka_unit_test(plain_runs_come_in_one_piece),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
