/* Unit tests for meter/usage.c: stream fixtures per route (at every split), event rows,
 * non-streamed bodies and the finish-chunk content helper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meter/sse.h"
#include "meter/usage.h"

/* ---- SSE -> meter harness ---------------------------------------------------------------- */

struct run {
    struct tg_stream_meter m;
    char kinds[256]; /* one letter per event */
    size_t nkinds;
    char text[4096];
    size_t text_len;
};

static const char kind_letter[] = {
    [TG_EV_OTHER] = 'O', [TG_EV_CONTENT] = 'C', [TG_EV_FINISH] = 'F',   [TG_EV_USAGE_ONLY] = 'U',
    [TG_EV_DONE] = 'D',  [TG_EV_ERROR] = 'E',   [TG_EV_TERMINAL] = 'T', [TG_EV_INVALID] = 'I',
};

static void on_text(void *arg, const char *p, size_t n)
{
    struct run *r = arg;
    assert_true(n > 0);
    assert_true(r->text_len + n < sizeof(r->text));
    memcpy(r->text + r->text_len, p, n);
    r->text_len += n;
    r->text[r->text_len] = '\0';
}

static int on_event(const struct tg_sse_event *ev, void *arg)
{
    struct run *r = arg;
    enum tg_ev_kind k =
        tg_stream_meter_event(&r->m, ev->event, ev->event_len, ev->data, ev->data_len);
    assert_true(r->nkinds + 1 < sizeof(r->kinds));
    r->kinds[r->nkinds++] = kind_letter[k];
    r->kinds[r->nkinds] = '\0';
    return 0;
}

static void run_stream(enum tg_route route, const char *in, size_t len, const size_t *cuts,
                       size_t ncuts, struct run *r)
{
    memset(r, 0, sizeof(*r));
    tg_stream_meter_init(&r->m, route);
    r->m.on_text = on_text;
    r->m.text_arg = r;
    struct tg_sse_parser p;
    memset(&p, 0, sizeof(p));
    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        assert_int_equal(tg_sse_feed(&p, in + start, end - start, on_event, r), 0);
        start = end;
    }
    assert_int_equal(tg_sse_finish(&p, on_event, r), 0);
    tg_sse_cleanup(&p);
    assert_int_equal(r->m.text_bytes, r->text_len);
    assert_int_equal(r->m.events, r->nkinds);
}

static void assert_same_run(const struct run *a, const struct run *b, size_t k)
{
    const struct tg_stream_meter *x = &a->m, *y = &b->m;
    if (strcmp(a->kinds, b->kinds) != 0 || strcmp(a->text, b->text) != 0 ||
        memcmp(&x->usage, &y->usage, sizeof(x->usage)) != 0 ||
        x->has_output_usage != y->has_output_usage ||
        strcmp(x->finish_reason, y->finish_reason) != 0 || x->saw_done != y->saw_done ||
        x->saw_terminal != y->saw_terminal || x->saw_error != y->saw_error ||
        strcmp(x->chunk_id, y->chunk_id) != 0 || strcmp(x->model, y->model) != 0 ||
        x->created != y->created)
        fail_msg("chunking %zu differs: kinds %s vs %s", k, a->kinds, b->kinds);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Whole, every split point, byte by byte and random chunkings (1 B .. 64 KiB). */
static void run_all_splits(enum tg_route route, const char *in, size_t len, struct run *whole)
{
    run_stream(route, in, len, NULL, 0, whole);
    struct run *r = malloc(sizeof(*r));
    size_t *cuts = malloc((len + 1) * sizeof(size_t));
    assert_non_null(r);
    assert_non_null(cuts);
    for (size_t k = 1; k < len; k++) {
        cuts[0] = k;
        run_stream(route, in, len, cuts, 1, r);
        assert_same_run(whole, r, k);
    }
    size_t n = 0;
    for (size_t k = 1; k < len; k++)
        cuts[n++] = k;
    run_stream(route, in, len, cuts, n, r);
    assert_same_run(whole, r, 0);
    static const size_t maxchunks[] = {2, 5, 33, 512, 65536};
    for (uint64_t seed = 1; seed <= 20; seed++) {
        uint64_t s = seed * 0x9E3779B97F4A7C15ull;
        size_t mc = maxchunks[seed % TG_ARRAY_LEN(maxchunks)], pos = 0;
        n = 0;
        for (;;) {
            pos += 1 + (size_t)(rng_next(&s) % mc);
            if (pos >= len)
                break;
            cuts[n++] = pos;
        }
        run_stream(route, in, len, cuts, n, r);
        assert_same_run(whole, r, 1000 + (size_t)seed);
    }
    free(cuts);
    free(r);
}

/* ---- expectations --------------------------------------------------------------------------- */

struct expect {
    int line;
    const char *file; /* fixture under streams/, or NULL: `sse` is the input */
    const char *sse;
    enum tg_route route;
    const char *kinds;
    int64_t prompt, completion, cached, reasoning;
    bool has_usage, has_output_usage;
    const char *finish;
    const char *text;
    bool saw_done, saw_terminal, saw_error;
    const char *chunk_id, *model;
    int64_t created;
};

#define CHAT_META "chatcmpl-A1", "gpt-4o-mini", 1718000000

static const struct expect fixtures[] = {
    {__LINE__, "chat_usage.sse", NULL, TG_ROUTE_CHAT, "CCCCFUD", 19, 10, 4, 0, true, true, "stop",
     "Hello world", true, false, false, CHAT_META},
    {__LINE__, "chat_crlf.sse", NULL, TG_ROUTE_CHAT, "CCCCFUD", 19, 10, 4, 0, true, true, "stop",
     "Hello world", true, false, false, CHAT_META},
    {__LINE__, "chat_cr.sse", NULL, TG_ROUTE_CHAT, "CCCCFUD", 19, 10, 4, 0, true, true, "stop",
     "Hello world", true, false, false, CHAT_META},
    {__LINE__, "chat_bom_noterm.sse", NULL, TG_ROUTE_CHAT, "CCCCFUD", 19, 10, 4, 0, true, true,
     "stop", "Hello world", true, false, false, CHAT_META},
    {__LINE__, "chat_no_usage.sse", NULL, TG_ROUTE_CHAT, "CCCCFD", 0, 0, 0, 0, false, false, "stop",
     "Hello world", true, false, false, CHAT_META},
    {__LINE__, "chat_tool_calls.sse", NULL, TG_ROUTE_CHAT, "CCCCCFUD", 50, 30, 0, 0, true, true,
     "tool_calls", "get_weather{\"city\":\"Paris\"}get_time{}", true, false, false, "chatcmpl-T1",
     "gpt-4o-mini", 1718000000},
    {__LINE__, "chat_reasoning.sse", NULL, TG_ROUTE_CHAT, "CCCCCFUD", 11, 20, 0, 12, true, true,
     "stop", "Let me think \xe2\x80\x94 caf\xc3\xa9. Hmm.Answer: 42", true, false, false,
     "chatcmpl-R1", "deepseek-reasoner", 1718000000},
    {__LINE__, "chat_n2.sse", NULL, TG_ROUTE_CHAT, "CCCCFCFUD", 8, 6, 0, 0, true, true, "stop",
     "YesNope", true, false, false, "chatcmpl-N2", "gpt-4o-mini", 1718000000},
    {__LINE__, "completions.sse", NULL, TG_ROUTE_COMPLETIONS, "CCFUD", 5, 7, 0, 0, true, true,
     "stop", "Hello!", true, false, false, "cmpl-1", "gpt-3.5-turbo-instruct", 1718000001},
    {__LINE__, "responses.sse", NULL, TG_ROUTE_RESPONSES, "OOOCCCCOT", 120, 50, 100, 20, true, true,
     "completed", "Thinking.Hi there{\"q\":1}", false, true, false, "resp_1", "o4-mini",
     1718000002},
    {__LINE__, "responses_crlf.sse", NULL, TG_ROUTE_RESPONSES, "OOOCCCCOT", 120, 50, 100, 20, true,
     true, "completed", "Thinking.Hi there{\"q\":1}", false, true, false, "resp_1", "o4-mini",
     1718000002},
    {__LINE__, "responses_failed.sse", NULL, TG_ROUTE_RESPONSES, "OOCT", 30, 3, 0, 0, true, true,
     "failed", "Par", false, true, true, "resp_1", "o4-mini", 1718000002},
    {__LINE__, "anthropic.sse", NULL, TG_ROUTE_MESSAGES, "OOCCCCCCCCCCCCFFT", 2572, 89, 2000, 0,
     true, true, "tool_use",
     "HmmHello \xc3\xbc"
     "berlookup{\"k\":\"v\"}",
     false, true, false, "msg_01", "claude-sonnet-4", 0},
    {__LINE__, "anthropic_error.sse", NULL, TG_ROUTE_MESSAGES, "OOCCCCCCE", 2572, 2, 2000, 0, true,
     false, "", "HmmHello", false, false, true, "msg_01", "claude-sonnet-4", 0},
    {__LINE__, "litellm_first_error.sse", NULL, TG_ROUTE_CHAT, "E", 0, 0, 0, 0, false, false, "",
     "", false, false, true, "", "", 0},
    {__LINE__, "chat_midstream_error.sse", NULL, TG_ROUTE_CHAT, "CCE", 0, 0, 0, 0, false, false, "",
     "Partial answer", false, false, true, "chatcmpl-E1", "gpt-4o-mini", 1718000000},
    {__LINE__, "chat_keepalive.sse", NULL, TG_ROUTE_CHAT, "CCFUD", 3, 2, 0, 0, true, true, "stop",
     "AB", true, false, false, "chatcmpl-K1", "gpt-4o-mini", 1718000000},
};

/* Inline streams for the classification and usage rules. */
static const struct expect rows[] = {
    {__LINE__, NULL, "data: {\"choices\":[],\"usage\":null}\n\n", TG_ROUTE_CHAT, "O", 0, 0, 0, 0,
     false, false, "", "", false, false, false, "", "", 0},
    {__LINE__, NULL, "data: {\"choices\":[]}\n\ndata: {\"id\":\"x\"}\n\n", TG_ROUTE_CHAT, "OO", 0,
     0, 0, 0, false, false, "", "", false, false, false, "x", "", 0},
    {__LINE__, NULL, "data: not json\n\ndata:\n\ndata: {\"a\":1\n\n", TG_ROUTE_CHAT, "III", 0, 0, 0,
     0, false, false, "", "", false, false, false, "", "", 0},
    {__LINE__, NULL, "data: [DONE] x\n\ndata: 42\n\ndata: [1]\n\n", TG_ROUTE_CHAT, "DOO", 0, 0, 0,
     0, false, false, "", "", true, false, false, "", "", 0},
    {__LINE__, NULL, "data: {\"error\":null,\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n",
     TG_ROUTE_CHAT, "C", 0, 0, 0, 0, false, false, "", "x", false, false, false, "", "", 0},
    {__LINE__, NULL,
     "data: {\"error\":\"\"}\n\ndata: {\"error\":0}\n\ndata: {\"error\":0.0e5}\n\n"
     "data: {\"error\":false}\n\n",
     TG_ROUTE_CHAT, "OOOO", 0, 0, 0, 0, false, false, "", "", false, false, false, "", "", 0},
    {__LINE__, NULL,
     "data: {\"error\":\"boom\"}\n\ndata: {\"error\":1}\n\ndata: {\"error\":[]}\n\n"
     "data: {\"error\":-0.5}\n\n",
     TG_ROUTE_CHAT, "EEEE", 0, 0, 0, 0, false, false, "", "", false, false, true, "", "", 0},
    {__LINE__, NULL, "event: error\ndata: {}\n\n", TG_ROUTE_CHAT, "E", 0, 0, 0, 0, false, false, "",
     "", false, false, true, "", "", 0},
    /* the last non-null usage wins; null usage never erases */
    {__LINE__, NULL,
     "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5}}\n\n"
     "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,"
     "\"total_tokens\":1}}\n\n"
     "data: {\"choices\":[{\"delta\":{}}],\"usage\":null}\n\n",
     TG_ROUTE_CHAT, "UUC", 12, 7, 0, 0, true, true, "", "", false, false, false, "", "", 0},
    /* usage carried by the finish chunk itself */
    {__LINE__, NULL,
     "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"length\"}],"
     "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n",
     TG_ROUTE_CHAT, "F", 3, 1, 0, 0, true, true, "length", "a", false, false, false, "", "", 0},
    /* cached/reasoning are capped at their parts; invalid counts are absent */
    {__LINE__, NULL,
     "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5.0,\"completion_tokens\":2,"
     "\"prompt_tokens_details\":{\"cached_tokens\":9},"
     "\"completion_tokens_details\":{\"reasoning_tokens\":3}}}\n\n",
     TG_ROUTE_CHAT, "U", 5, 2, 5, 2, true, true, "", "", false, false, false, "", "", 0},
    {__LINE__, NULL,
     "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":-1,\"completion_tokens\":1e3}}\n\n"
     "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1000000000000001}}\n\n"
     "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":\"7\"}}\n\n",
     TG_ROUTE_CHAT, "UUU", 0, 0, 0, 0, false, false, "", "", false, false, false, "", "", 0},
    /* finish in a later choice; long finish_reason keeps a prefix */
    {__LINE__, NULL,
     "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":null},{\"index\":1,"
     "\"delta\":{},\"finish_reason\":\"abcdefghijklmnopqrstuvwxyz0123456789\"}]}\n\n",
     TG_ROUTE_CHAT, "F", 0, 0, 0, 0, false, false, "abcdefghijklmnopqrstuvwxyz01234", "", false,
     false, false, "", "", 0},
    /* odd shapes: no crash, nothing counted */
    {__LINE__, NULL,
     "data: {\"choices\":[1,\"x\",null,{\"delta\":[]},{\"delta\":{\"tool_calls\":[1,{}]}}]}\n\n"
     "data: {\"choices\":{}}\n\ndata: {\"choices\":[{\"delta\":{\"content\":7}}]}\n\n",
     TG_ROUTE_CHAT, "COC", 0, 0, 0, 0, false, false, "", "", false, false, false, "", "", 0},
    /* escapes are decoded; meta from the first chunk with an id only; long ids dropped */
    {__LINE__, NULL,
     "data: {\"choices\":[{\"delta\":{\"content\":\"a\\n\\u00e9\\ud83d\\ude00\\\"\"}}]}\n\n"
     "data: {\"id\":\"first\",\"created\":5,\"model\":\"m\\/1\",\"choices\":[]}\n\n"
     "data: {\"id\":\"second\",\"created\":6,\"model\":\"m2\",\"choices\":[]}\n\n",
     TG_ROUTE_CHAT, "COO", 0, 0, 0, 0, false, false, "", "a\n\xc3\xa9\xf0\x9f\x98\x80\"", false,
     false, false, "first", "m/1", 5},
    {__LINE__, NULL,
     "data: {\"id\":\"0123456789012345678901234567890123456789012345678901234567890123456789"
     "012345678901234567890123456789012345678901234567890123456789\",\"model\":\"m\","
     "\"choices\":[]}\n\n",
     TG_ROUTE_CHAT, "O", 0, 0, 0, 0, false, false, "", "", false, false, false, "", "m", 0},
    /* embeddings: completion is always 0 */
    {__LINE__, NULL,
     "data: {\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":3,\"total_tokens\":8}}\n\n",
     TG_ROUTE_EMBEDDINGS, "O", 8, 0, 0, 0, true, true, "", "", false, false, false, "", "", 0},
    /* Responses: data.type wins over the event name, which is the fallback */
    {__LINE__, NULL,
     "event: response.completed\ndata: {\"type\":\"response.output_text.delta\",\"delta\":"
     "\"hi\"}\n\n"
     "event: response.incomplete\ndata: {\"response\":{\"status\":\"incomplete\",\"usage\":"
     "{\"input_tokens\":3,\"output_tokens\":4}}}\n\n",
     TG_ROUTE_RESPONSES, "CT", 3, 4, 0, 0, true, true, "incomplete", "hi", false, true, false, "",
     "", 0},
    {__LINE__, NULL,
     "event: error\ndata: {\"type\":\"error\",\"code\":\"x\",\"message\":\"m\"}\n\n"
     "data: {\"error\":{\"message\":\"m\"}}\n\ndata: {\"type\":\"error\"}\n\ndata: [DONE]\n\n",
     TG_ROUTE_RESPONSES, "EEED", 0, 0, 0, 0, false, false, "", "", true, false, true, "", "", 0},
    {__LINE__, NULL,
     "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"usage\":"
     "null}}\n\nevent: response.reasoning_text.delta\ndata: {\"type\":"
     "\"response.reasoning_text.delta\",\"delta\":\"r\"}\n\ndata: not json\n\n",
     TG_ROUTE_RESPONSES, "OCI", 0, 0, 0, 0, false, false, "", "r", false, false, false, "", "", 0},
    /* Messages: ping without data; message_delta input/cache replace message_start's */
    {__LINE__, NULL,
     "event: ping\n\nevent: message_start\ndata: {\"type\":\"message_start\",\"message\":"
     "{\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n"
     "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
     "\"end_turn\"},\"usage\":{\"output_tokens\":7,\"input_tokens\":20,"
     "\"cache_creation_input_tokens\":3}}\n\n",
     TG_ROUTE_MESSAGES, "OOF", 28, 7, 5, 0, true, true, "end_turn", "", false, false, false, "", "",
     0},
    {__LINE__, NULL,
     "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":"
     "{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
     TG_ROUTE_MESSAGES, "O", 10, 1, 0, 0, true, false, "", "", false, false, false, "", "", 0},
    {__LINE__, NULL,
     "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n"
     "event: something_new\ndata: {\"type\":\"something_new\"}\n\n"
     "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{}}\n\n"
     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
     TG_ROUTE_MESSAGES, "EOOT", 0, 0, 0, 0, false, false, "", "", false, true, true, "", "", 0},
};

static char *read_file(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/streams/%s", TG_FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void check_expect(const struct expect *e)
{
    size_t len;
    char *in = e->file ? read_file(e->file, &len) : NULL;
    if (in == NULL) {
        len = strlen(e->sse);
        in = malloc(len + 1);
        assert_non_null(in);
        memcpy(in, e->sse, len + 1);
    }
    struct run *r = malloc(sizeof(*r));
    assert_non_null(r);
    run_all_splits(e->route, in, len, r);
    const struct tg_stream_meter *m = &r->m;
    const struct tg_usage *u = &m->usage;
    if (strcmp(r->kinds, e->kinds) != 0)
        fail_msg("line %d: kinds %s, want %s", e->line, r->kinds, e->kinds);
    if (u->prompt_tokens != e->prompt || u->completion_tokens != e->completion ||
        u->cached_tokens != e->cached || u->reasoning_tokens != e->reasoning ||
        u->total_tokens != e->prompt + e->completion || u->has_usage != e->has_usage ||
        m->has_output_usage != e->has_output_usage)
        fail_msg("line %d: usage %lld/%lld/%lld/%lld total %lld has %d/%d", e->line,
                 (long long)u->prompt_tokens, (long long)u->completion_tokens,
                 (long long)u->cached_tokens, (long long)u->reasoning_tokens,
                 (long long)u->total_tokens, u->has_usage, m->has_output_usage);
    if (strcmp(m->finish_reason, e->finish) != 0)
        fail_msg("line %d: finish '%s'", e->line, m->finish_reason);
    if (strcmp(r->text, e->text) != 0)
        fail_msg("line %d: text '%s'", e->line, r->text);
    if (m->saw_done != e->saw_done || m->saw_terminal != e->saw_terminal ||
        m->saw_error != e->saw_error || m->saw_any != (r->nkinds > 0))
        fail_msg("line %d: flags done=%d terminal=%d error=%d any=%d", e->line, m->saw_done,
                 m->saw_terminal, m->saw_error, m->saw_any);
    if (strcmp(m->chunk_id, e->chunk_id) != 0 || strcmp(m->model, e->model) != 0 ||
        m->created != e->created)
        fail_msg("line %d: meta '%s' '%s' %lld", e->line, m->chunk_id, m->model,
                 (long long)m->created);
    free(r);
    free(in);
}

static void test_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(fixtures); i++)
        check_expect(&fixtures[i]);
}

static void test_event_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++)
        check_expect(&rows[i]);
}

/* Direct calls: NULL views are allowed for empty name/data; counters advance. */
static void test_direct_calls(void **state)
{
    (void)state;
    struct tg_stream_meter m;
    tg_stream_meter_init(&m, TG_ROUTE_CHAT);
    assert_int_equal(m.route, TG_ROUTE_CHAT);
    assert_false(m.saw_any);
    assert_int_equal(tg_stream_meter_event(&m, NULL, 0, NULL, 0), TG_EV_INVALID);
    assert_true(m.saw_any);
    assert_int_equal(m.events, 1);
    const char *d = "{\"choices\":[{\"delta\":{\"content\":\"abc\"}}]}";
    assert_int_equal(tg_stream_meter_event(&m, NULL, 0, d, strlen(d)), TG_EV_CONTENT);
    assert_int_equal(m.text_bytes, 3);
    assert_int_equal(m.events, 2);
    tg_stream_meter_init(&m, TG_ROUTE_MODELS);
    assert_int_equal(tg_stream_meter_event(&m, "", 0, d, strlen(d)), TG_EV_CONTENT);
}

/* ---- non-streamed bodies -------------------------------------------------------------------- */

static void test_usage_from_json(void **state)
{
    (void)state;
    static const struct {
        int line;
        enum tg_route route;
        const char *json;
        int rc;
        int64_t prompt, completion, cached, reasoning;
    } urows[] = {
        {__LINE__, TG_ROUTE_CHAT,
         "{\"id\":\"c\",\"choices\":[{\"message\":{\"content\":\"hi\"}}],\"usage\":"
         "{\"prompt_tokens\":19,\"completion_tokens\":10,\"total_tokens\":0,"
         "\"prompt_tokens_details\":{\"cached_tokens\":3},"
         "\"completion_tokens_details\":{\"reasoning_tokens\":4}}}",
         0, 19, 10, 3, 4},
        {__LINE__, TG_ROUTE_CHAT, "{\"prompt_tokens\":2,\"completion_tokens\":1}", 0, 2, 1, 0, 0},
        {__LINE__, TG_ROUTE_COMPLETIONS, " {\"usage\":{\"completion_tokens\":4}} ", 0, 0, 4, 0, 0},
        {__LINE__, TG_ROUTE_EMBEDDINGS,
         "{\"object\":\"list\",\"data\":[{\"embedding\":[0.1,-0.2]}],\"model\":\"e\","
         "\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}",
         0, 8, 0, 0, 0},
        {__LINE__, TG_ROUTE_RESPONSES,
         "{\"id\":\"resp\",\"object\":\"response\",\"usage\":{\"input_tokens\":120,"
         "\"input_tokens_details\":{\"cached_tokens\":100},\"output_tokens\":50,"
         "\"output_tokens_details\":{\"reasoning_tokens\":20},\"total_tokens\":7}}",
         0, 120, 50, 100, 20},
        {__LINE__, TG_ROUTE_MESSAGES,
         "{\"id\":\"msg\",\"type\":\"message\",\"usage\":{\"input_tokens\":10,"
         "\"cache_creation_input_tokens\":2,\"cache_read_input_tokens\":3,"
         "\"output_tokens\":4}}",
         0, 15, 4, 3, 0},
        {__LINE__, TG_ROUTE_MESSAGES, "{\"input_tokens\":10,\"cache_read_input_tokens\":null}", 0,
         10, 0, 0, 0},
        {__LINE__, TG_ROUTE_CHAT, "{\"usage\":null}", -1, 0, 0, 0, 0},
        {__LINE__, TG_ROUTE_CHAT, "{\"usage\":{}}", -1, 0, 0, 0, 0},
        {__LINE__, TG_ROUTE_CHAT, "{\"usage\":{\"input_tokens\":3}}", -1, 0, 0, 0, 0},
        {__LINE__, TG_ROUTE_RESPONSES, "{\"usage\":{\"prompt_tokens\":3}}", -1, 0, 0, 0, 0},
        {__LINE__, TG_ROUTE_CHAT, "{\"object\":\"list\",\"data\":[]}", -1, 0, 0, 0, 0},
        {__LINE__, TG_ROUTE_CHAT, "{\"usage\":{\"prompt_tokens\":1}", -1, 0, 0, 0, 0},
        {__LINE__, TG_ROUTE_CHAT, "[{\"prompt_tokens\":1}]", -1, 0, 0, 0, 0},
        {__LINE__, TG_ROUTE_CHAT, "", -1, 0, 0, 0, 0},
        {__LINE__, TG_ROUTE_NONE, "{\"prompt_tokens\":1}", -1, 0, 0, 0, 0},
        {__LINE__, TG_ROUTE_MODELS, "{\"prompt_tokens\":1}", -1, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(urows); i++) {
        struct tg_usage u;
        memset(&u, 0xAB, sizeof(u));
        int rc = tg_usage_from_json(urows[i].route, urows[i].json, strlen(urows[i].json), &u);
        if (rc != urows[i].rc || u.prompt_tokens != urows[i].prompt ||
            u.completion_tokens != urows[i].completion || u.cached_tokens != urows[i].cached ||
            u.reasoning_tokens != urows[i].reasoning ||
            u.total_tokens != urows[i].prompt + urows[i].completion ||
            u.has_usage != (urows[i].rc == 0))
            fail_msg("line %d: rc %d usage %lld/%lld/%lld/%lld/%lld", urows[i].line, rc,
                     (long long)u.prompt_tokens, (long long)u.completion_tokens,
                     (long long)u.cached_tokens, (long long)u.reasoning_tokens,
                     (long long)u.total_tokens);
    }
}

static void test_chunk_has_content(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *json;
        bool has;
    } crows[] = {
        {__LINE__, "{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}", false},
        {__LINE__, "{\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}]}",
         true},
        {__LINE__, "{\"choices\":[{\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}",
         false},
        {__LINE__, "{\"choices\":[{\"delta\":{\"content\":null,\"role\":\"assistant\"}}]}", false},
        {__LINE__, "{\"choices\":[{\"delta\":{\"reasoning_content\":\"r\"}}]}", true},
        {__LINE__, "{\"choices\":[{\"delta\":{\"reasoning\":\"r\"}}]}", true},
        {__LINE__, "{\"choices\":[{\"delta\":{\"tool_calls\":[]}}]}", false},
        {__LINE__, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}", true},
        {__LINE__, "{\"choices\":[{\"text\":\"a\",\"finish_reason\":\"stop\"}]}", true},
        {__LINE__, "{\"choices\":[{\"text\":\"\",\"finish_reason\":\"stop\"}]}", false},
        {__LINE__, "{\"choices\":[{\"delta\":{}},{\"delta\":{\"content\":\"y\"}}]}", true},
        {__LINE__, "{\"choices\":[]}", false},
        {__LINE__, "{\"choices\":[{\"delta\":{\"content\":\"x\"}}]", false},
        {__LINE__, "{}", false},
        {__LINE__, "[]", false},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(crows); i++)
        if (tg_usage_chunk_has_content(crows[i].json, strlen(crows[i].json)) != crows[i].has)
            fail_msg("line %d", crows[i].line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),          cmocka_unit_test(test_event_rows),
        cmocka_unit_test(test_direct_calls),      cmocka_unit_test(test_usage_from_json),
        cmocka_unit_test(test_chunk_has_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
