/* Unit tests for meter/inspect.c: parse, prompt text, splice and rewrite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json_scan.h"
#include "meter/inspect.h"
#include "meter/notice.h"

/* Tables write JSON with ' for " to stay readable; q() turns them back. */
static char *q(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

#define W        "\xE2\x9A\xA0\xEF\xB8\x8F"
#define NOTICE_M "> " W " You have used 82 % of your monthly AI quota; it resets on 1 December."
#define NOTICE_W "> " W " You have used 80 % of your weekly AI quota; it resets on 3 March."
#define NOTICE_ESC                                                                                 \
    "> \\u26a0\\ufe0f You have used 82 % of your monthly AI quota; it resets on 1 December."

enum { CH = TG_ROUTE_CHAT, CO = TG_ROUTE_COMPLETIONS, EM = TG_ROUTE_EMBEDDINGS };
enum { RE = TG_ROUTE_RESPONSES, ME = TG_ROUTE_MESSAGES, MO = TG_ROUTE_MODELS };

/* ---- parse --------------------------------------------------------------------------------- */

static void test_parse(void **state)
{
    (void)state;
    static const struct {
        int line;
        int route;
        const char *body;
        const char *err; /* NULL: success expected */
        const char *model;
        bool stream, include_usage, has_user;
        const char *user;
        int64_t max_tokens, n;
    } rows[] = {
        {__LINE__, CH, "{'model':'gpt-4o','messages':[]}", NULL, "gpt-4o", 0, 0, 0, "", -1, 1},
        {__LINE__, CH,
         "{'model':'m','messages':[],'stream':true,'stream_options':{'include_usage':true},"
         "'user':'u1','max_tokens':100,'n':2}",
         NULL, "m", 1, 1, 1, "u1", 100, 2},
        {__LINE__, CH, " \n{ 'model' : 'm' ,\t'messages' : [ ] , 'stream' : true } \r\n", NULL, "m",
         1, 0, 0, "", -1, 1},
        {__LINE__, CH, "{'model':'gpt\\u002d4','messages':[],'str\\u0065am':true}", NULL, "gpt-4",
         1, 0, 0, "", -1, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'stream':true,'stream':false}", NULL, "m", 0, 0,
         0, "", -1, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'stream':null}", NULL, "m", 0, 0, 0, "", -1, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'max_completion_tokens':50}", NULL, "m", 0, 0, 0,
         "", 50, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'max_tokens':10,'max_completion_tokens':20}",
         NULL, "m", 0, 0, 0, "", 10, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'max_tokens':null,'max_completion_tokens':7}",
         NULL, "m", 0, 0, 0, "", 7, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'max_tokens':12.0}", NULL, "m", 0, 0, 0, "", 12,
         1},
        {__LINE__, CH, "{'model':'m','messages':[],'max_tokens':0}", NULL, "m", 0, 0, 0, "", 0, 1},
        {__LINE__, CH,
         "{'model':'m','messages':[],'stream':true,'stream_options':{'include_usage':false}}", NULL,
         "m", 1, 0, 0, "", -1, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'stream':true,'stream_options':null}", NULL, "m",
         1, 0, 0, "", -1, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'stream_options':{'include_usage':'true'}}",
         NULL, "m", 0, 0, 0, "", -1, 1},
        {__LINE__, CH,
         "{'model':'m','messages':[],'stream_options':{'include_usage':true},"
         "'stream_options':{}}",
         NULL, "m", 0, 0, 0, "", -1, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'user':7}", NULL, "m", 0, 0, 1, "", -1, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'user':''}", NULL, "m", 0, 0, 1, "", -1, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'user':null}", NULL, "m", 0, 0, 0, "", -1, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'user':'\\u00e9'}", NULL, "m", 0, 0, 1,
         "\xC3\xA9", -1, 1},
        {__LINE__, CH,
         "{'model':'m','messages':[{'role':'user','content':'x','user':'nested'}],"
         "'metadata':{'user':'x'}}",
         NULL, "m", 0, 0, 0, "", -1, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'n':null}", NULL, "m", 0, 0, 0, "", -1, 1},
        {__LINE__, CH, "{'model':'m','messages':[],'unknown':{'deep':[1,2,{'x':null}]}}", NULL, "m",
         0, 0, 0, "", -1, 1},
        {__LINE__, CO, "{'model':'m','prompt':'hi','max_tokens':5,'n':3,'stream':true}", NULL, "m",
         1, 0, 0, "", 5, 3},
        {__LINE__, CO, "{'model':'m','prompt':[1,2,3]}", NULL, "m", 0, 0, 0, "", -1, 1},
        {__LINE__, CO, "{'model':'m'}", NULL, "m", 0, 0, 0, "", -1, 1},
        {__LINE__, EM, "{'model':'e','input':['a','b'],'user':'u','max_tokens':3,'n':5}", NULL, "e",
         0, 0, 1, "u", -1, 1},
        {__LINE__, RE, "{'model':'m','input':'hi','max_output_tokens':300,'max_tokens':9}", NULL,
         "m", 0, 0, 0, "", 300, 1},
        {__LINE__, RE, "{'model':'m','previous_response_id':'r'}", NULL, "m", 0, 0, 0, "", -1, 1},
        {__LINE__, ME,
         "{'model':'claude','max_tokens':1024,'messages':[],'metadata':{'user_id':'abc'},"
         "'user':'top'}",
         NULL, "claude", 0, 0, 1, "abc", 1024, 1},
        {__LINE__, ME, "{'model':'c','messages':[],'user':'top'}", NULL, "c", 0, 0, 0, "", -1, 1},
        {__LINE__, ME, "{'model':'c','messages':[],'metadata':{'user_id':null}}", NULL, "c", 0, 0,
         0, "", -1, 1},
        {__LINE__, MO, "{}", NULL, "", 0, 0, 0, "", -1, 1},
        {__LINE__, TG_ROUTE_NONE, "{'model':5}", "'model' must be a string", NULL, 0, 0, 0, NULL, 0,
         0},
        /* errors */
        {__LINE__, CH, "", "request body is empty", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{", "request body is not valid JSON", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{'model':'m','messages':[],}", "request body is not valid JSON", NULL, 0, 0,
         0, NULL, 0, 0},
        {__LINE__, CH, "{'model':'m'} x", "request body is not valid JSON", NULL, 0, 0, 0, NULL, 0,
         0},
        {__LINE__, CH, "[]", "request body must be a JSON object", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "'model'", "request body must be a JSON object", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{'messages':[]}", "'model' is required", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, EM, "{'input':'x'}", "'model' is required", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{'model':5,'messages':[]}", "'model' must be a string", NULL, 0, 0, 0, NULL,
         0, 0},
        {__LINE__, CH, "{'model':null,'messages':[]}", "'model' must be a string", NULL, 0, 0, 0,
         NULL, 0, 0},
        {__LINE__, CH, "{'model':'','messages':[]}", "'model' must not be empty", NULL, 0, 0, 0,
         NULL, 0, 0},
        {__LINE__, CH, "{'model':'a\\u0000b','messages':[]}",
         "'model' must not contain control characters", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{'model':'a\\nb','messages':[]}",
         "'model' must not contain control characters", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{'model':'m','messages':[],'stream':'yes'}", "'stream' must be a boolean",
         NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{'model':'m','messages':[],'stream':1}", "'stream' must be a boolean", NULL,
         0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{'model':'m','messages':[],'max_tokens':-1}",
         "'max_tokens' must be a non-negative integer", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{'model':'m','messages':[],'max_tokens':1.5}",
         "'max_tokens' must be a non-negative integer", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{'model':'m','messages':[],'max_tokens':'10'}",
         "'max_tokens' must be a non-negative integer", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{'model':'m','messages':[],'max_tokens':99999999999999999999}",
         "'max_tokens' must be a non-negative integer", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{'model':'m','messages':[],'max_tokens':5,'max_completion_tokens':-3}",
         "'max_completion_tokens' must be a non-negative integer", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, RE, "{'model':'m','max_output_tokens':true}",
         "'max_output_tokens' must be a non-negative integer", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, ME, "{'model':'m','messages':[],'max_tokens':'x'}",
         "'max_tokens' must be a non-negative integer", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{'model':'m','messages':[],'n':0}", "'n' must be an integer from 1 to 128",
         NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CO, "{'model':'m','n':129}", "'n' must be an integer from 1 to 128", NULL, 0, 0,
         0, NULL, 0, 0},
        {__LINE__, CH, "{'model':'m'}", "'messages' must be an array", NULL, 0, 0, 0, NULL, 0, 0},
        {__LINE__, CH, "{'model':'m','messages':{}}", "'messages' must be an array", NULL, 0, 0, 0,
         NULL, 0, 0},
        {__LINE__, ME, "{'model':'m','messages':'hi'}", "'messages' must be an array", NULL, 0, 0,
         0, NULL, 0, 0},
        {__LINE__, CO, "{'model':'m','prompt':5}", "'prompt' must be a string or an array", NULL, 0,
         0, 0, NULL, 0, 0},
        {__LINE__, EM, "{'model':'m'}", "'input' must be a string or an array", NULL, 0, 0, 0, NULL,
         0, 0},
        {__LINE__, EM, "{'model':'m','input':null}", "'input' must be a string or an array", NULL,
         0, 0, 0, NULL, 0, 0},
        {__LINE__, RE, "{'model':'m','input':{}}", "'input' must be a string or an array", NULL, 0,
         0, 0, NULL, 0, 0},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char *body = q(rows[i].body);
        struct tg_req_info info;
        char err[128] = "unset";
        int rc = tg_inspect_parse((enum tg_route)rows[i].route, body, strlen(body), &info, err,
                                  sizeof(err));
        if (rows[i].err != NULL) {
            if (rc != -1 || strcmp(err, rows[i].err) != 0)
                fail_msg("line %d: rc=%d err='%s', want '%s'", rows[i].line, rc, err, rows[i].err);
            free(body);
            continue;
        }
        if (rc != 0)
            fail_msg("line %d: rc=%d err='%s'", rows[i].line, rc, err);
        if (strcmp(info.model, rows[i].model) != 0 || info.has_model != (rows[i].model[0] != 0))
            fail_msg("line %d: model '%s'", rows[i].line, info.model);
        if (info.stream != rows[i].stream || info.client_include_usage != rows[i].include_usage)
            fail_msg("line %d: stream %d include_usage %d", rows[i].line, info.stream,
                     info.client_include_usage);
        if (info.has_user != rows[i].has_user || info.user_len != strlen(rows[i].user) ||
            strcmp(info.user, rows[i].user) != 0)
            fail_msg("line %d: user %d '%s' %zu", rows[i].line, info.has_user, info.user,
                     info.user_len);
        if (info.max_tokens != rows[i].max_tokens || info.n != rows[i].n)
            fail_msg("line %d: max_tokens %lld n %lld", rows[i].line, (long long)info.max_tokens,
                     (long long)info.n);
        if (info.route != (enum tg_route)rows[i].route)
            fail_msg("line %d: route", rows[i].line);
        free(body);
    }
}

static void test_parse_lengths(void **state)
{
    (void)state;
    struct tg_req_info info;
    char err[128];
    char body[1024], name[300];
    for (size_t len = 250; len <= 260; len++) {
        memset(name, 'm', len);
        name[len] = '\0';
        snprintf(body, sizeof(body), "{\"model\":\"%s\",\"messages\":[]}", name);
        int rc = tg_inspect_parse(TG_ROUTE_CHAT, body, strlen(body), &info, err, sizeof(err));
        if (len <= 255) {
            assert_int_equal(rc, 0);
            assert_string_equal(info.model, name);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err, "'model' must be at most 255 bytes");
        }
    }
    for (size_t len = 126; len <= 131; len++) {
        memset(name, 'u', len);
        name[len] = '\0';
        snprintf(body, sizeof(body), "{\"model\":\"m\",\"messages\":[],\"user\":\"%s\"}", name);
        assert_int_equal(
            tg_inspect_parse(TG_ROUTE_CHAT, body, strlen(body), &info, err, sizeof(err)), 0);
        assert_true(info.has_user);
        if (len <= 128) {
            assert_int_equal(info.user_len, len);
            assert_string_equal(info.user, name);
        } else {
            assert_int_equal(info.user_len, 0);
            assert_string_equal(info.user, "");
        }
    }
    /* the error text is truncated to errlen, never overflowing */
    char small[8];
    assert_int_equal(tg_inspect_parse(TG_ROUTE_CHAT, "[]", 2, &info, small, sizeof(small)), -1);
    assert_string_equal(small, "request");
    assert_int_equal(tg_inspect_parse(TG_ROUTE_CHAT, "[]", 2, &info, NULL, 0), -1);
    /* a non-metered route accepts an empty body */
    assert_int_equal(tg_inspect_parse(TG_ROUTE_MODELS, "", 0, &info, err, sizeof(err)), 0);
    assert_false(info.has_model);
    assert_int_equal(info.max_tokens, -1);
}

/* ---- prompt text --------------------------------------------------------------------------- */

/* Renders events: MESSAGE "\nM:", SEGMENT "|", TEXT as is, TOKEN_IDS "#<n>". */
static void render(void *arg, const char *p, size_t n, int part)
{
    struct tg_buf *b = arg;
    int rc = 0;
    switch (part) {
    case TG_PROMPT_MESSAGE:
        rc = tg_buf_puts(b, "\nM:");
        break;
    case TG_PROMPT_SEGMENT:
        rc = tg_buf_puts(b, "|");
        break;
    case TG_PROMPT_TOKEN_IDS:
        assert_null(p);
        rc = tg_buf_printf(b, "#%zu", n);
        n = 0;
        break;
    default:
        assert_int_equal(part, TG_PROMPT_TEXT);
        assert_true(n > 0);
        break;
    }
    assert_int_equal(rc, 0);
    if (n > 0)
        assert_int_equal(tg_buf_append(b, p, n), 0);
}

static void test_prompt_text(void **state)
{
    (void)state;
    static const struct {
        int line;
        int route;
        const char *body;
        const char *want;
        size_t messages;
    } rows[] = {
        {__LINE__, CH, "{'model':'m','messages':[{'role':'user','content':'hi'}]}", "\nM:user|hi",
         1},
        {__LINE__, CH,
         "{'messages':[{'role':'system','content':'Be brief.'},{'role':'user','name':'bob',"
         "'content':[{'type':'text','text':'a\\nb'},{'type':'image_url','image_url':{'url':"
         "'data:x'}},{'type':'text','text':'\\u00e9'}]},{'role':'assistant','content':null,"
         "'tool_calls':[{'id':'c1','type':'function','function':{'name':'f','arguments':"
         "'{\\'x\\':1}'}}]},{'role':'tool','tool_call_id':'c1','content':'42'},"
         "{'role':'assistant','content':[{'type':'refusal','refusal':'no'}]}]}",
         "\nM:system|Be brief.\nM:user|bob|a\nb|\xC3\xA9\nM:assistant|f|{\"x\":1}\nM:tool|42"
         "\nM:assistant|no",
         5},
        {__LINE__, CH,
         "{'tools':[{'type':'function','function':{'name':'t'}}],'messages':[{'content':'x'}],"
         "'response_format':{'type':'json_schema','json_schema':{'name':'s'}}}",
         "|[{\"type\":\"function\",\"function\":{\"name\":\"t\"}}]|{\"name\":\"s\"}\nM:|x", 1},
        {__LINE__, CH,
         "{'functions':[{'name':'g'}],'messages':[{'role':'assistant','function_call':"
         "{'name':'g','arguments':'{}'}},7,'x']}",
         "|[{\"name\":\"g\"}]\nM:assistant|g|{}", 1},
        {__LINE__, CH, "{'messages':[{'role':'us\\u0065r','content':''}]}", "\nM:user", 1},
        {__LINE__, CO, "{'prompt':'Say hi','suffix':'end'}", "|Say hi|end", 0},
        {__LINE__, CO, "{'prompt':['a','b']}", "|a|b", 0},
        {__LINE__, CO, "{'prompt':[1,2,3]}", "#3", 0},
        {__LINE__, CO, "{'prompt':[[1,2],[3]]}", "#3", 0},
        {__LINE__, EM, "{'input':'text'}", "|text", 0},
        {__LINE__, EM, "{'input':['x',[5,6]]}", "|x#2", 0},
        {__LINE__, RE, "{'instructions':'Be nice','input':'hello'}", "|Be nice\nM:|hello", 1},
        {__LINE__, RE,
         "{'tools':[],'input':[{'type':'message','role':'user','content':[{'type':'input_text',"
         "'text':'q'},{'type':'input_image','image_url':'x'}]},{'type':'message','role':"
         "'assistant','content':[{'type':'output_text','text':'a'}]},{'type':'function_call',"
         "'name':'f','arguments':'{}','call_id':'c'},{'type':'function_call_output',"
         "'call_id':'c','output':'res'}]}",
         "|[]\nM:user|q\nM:assistant|a\nM:|f|{}\nM:|res", 4},
        {__LINE__, ME,
         "{'system':'sys','messages':[{'role':'user','content':'hi'},{'role':'assistant',"
         "'content':[{'type':'thinking','thinking':'hmm'},{'type':'text','text':'ok'},"
         "{'type':'tool_use','id':'t','name':'calc','input':{'a':1}}]},{'role':'user',"
         "'content':[{'type':'tool_result','tool_use_id':'t','content':[{'type':'text',"
         "'text':'2'}]},{'type':'tool_result','content':'3'}]}]}",
         "|sys\nM:user|hi\nM:assistant|ok|calc|{\"a\":1}\nM:user|2|3", 3},
        {__LINE__, ME,
         "{'system':[{'type':'text','text':'s1'},{'type':'text','text':'s2'}],"
         "'tools':[{'name':'x'}],'messages':[]}",
         "|s1|s2|[{\"name\":\"x\"}]", 0},
        {__LINE__, MO, "{'messages':[{'role':'user','content':'hi'}]}", "", 0},
        {__LINE__, CH, "{'messages':[", "", 0},
        {__LINE__, CH, "[]", "", 0},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char *body = q(rows[i].body);
        struct tg_buf b = {0};
        assert_int_equal(tg_buf_puts(&b, ""), 0);
        tg_inspect_prompt_text((enum tg_route)rows[i].route, body, strlen(body), render, &b);
        if (strcmp(b.data, rows[i].want) != 0)
            fail_msg("line %d: got '%s' want '%s'", rows[i].line, b.data, rows[i].want);
        size_t count = tg_inspect_message_count((enum tg_route)rows[i].route, body, strlen(body));
        if (count != rows[i].messages)
            fail_msg("line %d: %zu messages", rows[i].line, count);
        tg_buf_cleanup(&b);
        free(body);
    }
}

/* ---- splice -------------------------------------------------------------------------------- */

static void test_splice(void **state)
{
    (void)state;
    const char *src = "0123456789";
    struct tg_buf out = {0};
    struct tg_splice e[] = {
        {.off = 8, .del = 2, .ins = "X", .ins_len = 1},
        {.off = 0, .del = 0, .ins = "<", .ins_len = 1},
        {.off = 3, .del = 1, .ins = "", .ins_len = 0},
    };
    assert_int_equal(tg_inspect_splice(src, 10, e, TG_ARRAY_LEN(e), &out), 0);
    assert_string_equal(out.data, "<0124567X");
    tg_buf_reset(&out);
    /* equal offsets keep their given order: insert, then delete */
    struct tg_splice f[] = {
        {.off = 3, .del = 0, .ins = "ab", .ins_len = 2},
        {.off = 3, .del = 1, .ins = "", .ins_len = 0},
        {.off = 10, .del = 0, .ins = "!", .ins_len = 1},
    };
    assert_int_equal(tg_inspect_splice(src, 10, f, 3, &out), 0);
    assert_string_equal(out.data, "012ab456789!");
    tg_buf_reset(&out);
    struct tg_splice overlap[] = {
        {.off = 2, .del = 3, .ins = "", .ins_len = 0},
        {.off = 4, .del = 0, .ins = "x", .ins_len = 1},
    };
    assert_int_equal(tg_inspect_splice(src, 10, overlap, 2, &out), -1);
    assert_int_equal(out.len, 0);
    struct tg_splice past[] = {{.off = 9, .del = 2, .ins = "", .ins_len = 0}};
    assert_int_equal(tg_inspect_splice(src, 10, past, 1, &out), -1);
    struct tg_splice beyond[] = {{.off = 11, .del = 0, .ins = "", .ins_len = 0}};
    assert_int_equal(tg_inspect_splice(src, 10, beyond, 1, &out), -1);
    assert_int_equal(tg_inspect_splice(src, 10, NULL, 0, &out), 0);
    assert_string_equal(out.data, src);
    tg_buf_cleanup(&out);
}

/* ---- rewrite ------------------------------------------------------------------------------- */

enum { IU = 1, US = 2, ST = 4 };

static void test_rewrite(void **state)
{
    (void)state;
    static const struct {
        int line;
        int route;
        int opts;         /* IU include_usage, US user "u1", ST strip_notice */
        const char *body; /* ' stands for " */
        const char *want; /* NULL: unchanged; "-1": error */
    } rows[] = {
        /* include_usage */
        {__LINE__, CH, IU, "{'model':'m','stream':true}",
         "{'stream_options':{'include_usage':true},'model':'m','stream':true}"},
        {__LINE__, CH, IU, "{'model':'m','stream':false}", NULL},
        {__LINE__, CH, IU, "{'model':'m'}", NULL},
        {__LINE__, CH, IU, "{'model':'m','stream':null,'stream_options':null}", NULL},
        {__LINE__, CH, 0, "{'model':'m','stream':true}", NULL},
        {__LINE__, CH, IU, "{'stream':true}",
         "{'stream_options':{'include_usage':true},"
         "'stream':true}"},
        {__LINE__, CH, IU, "{'stream':true,'stream_options':{}}",
         "{'stream':true,'stream_options':{'include_usage':true}}"},
        {__LINE__, CH, IU, "{'stream':true,'stream_options':{ }}",
         "{'stream':true,'stream_options':{'include_usage':true }}"},
        {__LINE__, CH, IU, "{'stream':true,'stream_options':{'include_obfuscation':false}}",
         "{'stream':true,'stream_options':{'include_usage':true,'include_obfuscation':false}}"},
        {__LINE__, CH, IU, "{'stream':true,'stream_options':{'include_usage':false}}",
         "{'stream':true,'stream_options':{'include_usage':true}}"},
        {__LINE__, CH, IU, "{'stream':true,'stream_options':{'include_usage':true}}", NULL},
        {__LINE__, CH, IU, "{'stream':true,'stream_options':{'include_usage':'yes'}}",
         "{'stream':true,'stream_options':{'include_usage':true}}"},
        {__LINE__, CH, IU, "{'stream':true,'stream_options':null}",
         "{'stream':true,'stream_options':{'include_usage':true}}"},
        {__LINE__, CH, IU, "{'stream':true,'stream_options':false}",
         "{'stream':true,'stream_options':{'include_usage':true}}"},
        {__LINE__, CH, IU, "{'stream':true,'stream_options':[1,{'include_usage':false}]}",
         "{'stream':true,'stream_options':{'include_usage':true}}"},
        {__LINE__, CH, IU,
         "{'stream':true,'stream_options':{ 'include_usage' : null , 'x':{'include_usage':0}}}",
         "{'stream':true,'stream_options':{ 'include_usage' : true , 'x':{'include_usage':0}}}"},
        {__LINE__, CH, IU,
         "{'stream':true,'stream_options':{'include_usage':false,'include_usage':1}}",
         "{'stream':true,'stream_options':{'include_usage':false,'include_usage':true}}"},
        {__LINE__, CH, IU, "{'stream_options':{'a':1},'stream':true,'stream_options':{'b':2}}",
         "{'stream_options':{'a':1},'stream':true,'stream_options':{'include_usage':true,'b':2}}"},
        {__LINE__, CH, IU,
         "{'stream_options':{'include_usage':true},'stream':true,'stream_options':null}",
         "{'stream_options':{'include_usage':true},'stream':true,"
         "'stream_options':{'include_usage':true}}"},
        {__LINE__, CH, IU, "{'stream':false,'stream':true}",
         "{'stream_options':{'include_usage':true},'stream':false,'stream':true}"},
        {__LINE__, CH, IU, "{'stream':true,'stream':false}", NULL},
        {__LINE__, CH, IU, "{'str\\u0065am':true,'stream_opt\\u0069ons':{'include_\\u0075sage':0}}",
         "{'str\\u0065am':true,'stream_opt\\u0069ons':{'include_\\u0075sage':true}}"},
        {__LINE__, CH, IU, "{'str\\u0065am':true,'messages':[{'stream_options':null}]}",
         "{'stream_options':{'include_usage':true},'str\\u0065am':true,"
         "'messages':[{'stream_options':null}]}"},
        {__LINE__, CH, IU, " \n{ \n 'model' : 'm' ,\r\n\t'stream' :\ttrue , 'n' : 1.50e+2 }\n ",
         " \n{'stream_options':{'include_usage':true}, \n 'model' : 'm' ,\r\n\t'stream' :\ttrue , "
         "'n' : 1.50e+2 }\n "},
        {__LINE__, CO, IU, "{'model':'m','prompt':'x','stream':true}",
         "{'stream_options':{'include_usage':true},'model':'m','prompt':'x','stream':true}"},
        {__LINE__, EM, IU, "{'model':'m','input':'x','stream':true}", NULL},
        {__LINE__, RE, IU, "{'model':'m','input':'x','stream':true}", NULL},
        {__LINE__, ME, IU, "{'model':'m','messages':[],'stream':true}", NULL},
        /* user */
        {__LINE__, CH, US, "{}", "{'user':'u1'}"},
        {__LINE__, CH, US, "{ }", "{'user':'u1' }"},
        {__LINE__, CH, US, "\t{\n}\n", "\t{'user':'u1'\n}\n"},
        {__LINE__, CH, US, "{'model':'m'}", "{'user':'u1','model':'m'}"},
        {__LINE__, CH, US, "{'model':'m','user':'mine'}", NULL},
        {__LINE__, CH, US, "{'model':'m','user':''}", NULL},
        {__LINE__, CH, US, "{'model':'m','user':5}", NULL},
        {__LINE__, CH, US, "{'model':'m','user' : null }", "{'model':'m','user' : 'u1' }"},
        {__LINE__, CH, US, "{'user':null,'model':'m','us\\u0065r':'x'}", NULL},
        {__LINE__, CH, US, "{'user':'x','model':'m','user':null}",
         "{'user':'x','model':'m','user':'u1'}"},
        {__LINE__, CH, US,
         "{'messages':[{'role':'user','content':'a','user':'x'}],'metadata':{'user':'y'}}",
         "{'user':'u1','messages':[{'role':'user','content':'a','user':'x'}],"
         "'metadata':{'user':'y'}}"},
        {__LINE__, CO, US, "{'model':'m'}", "{'user':'u1','model':'m'}"},
        {__LINE__, EM, US, "{'model':'m'}", "{'user':'u1','model':'m'}"},
        {__LINE__, RE, US, "{'model':'m'}", "{'user':'u1','model':'m'}"},
        {__LINE__, MO, US, "{'model':'m'}", NULL},
        {__LINE__, TG_ROUTE_NONE, US, "{}", NULL},
        {__LINE__, ME, US, "{}", "{'metadata':{'user_id':'u1'}}"},
        {__LINE__, ME, US, "{'model':'c','user':'x'}",
         "{'metadata':{'user_id':'u1'},'model':'c','user':'x'}"},
        {__LINE__, ME, US, "{'model':'c','metadata':{}}",
         "{'model':'c','metadata':{'user_id':'u1'}}"},
        {__LINE__, ME, US, "{'model':'c','metadata':{'a':1}}",
         "{'model':'c','metadata':{'user_id':'u1','a':1}}"},
        {__LINE__, ME, US, "{'model':'c','metadata':{'user_id':'x'}}", NULL},
        {__LINE__, ME, US, "{'model':'c','metadata':{'user_id':null}}",
         "{'model':'c','metadata':{'user_id':'u1'}}"},
        {__LINE__, ME, US, "{'model':'c','metadata':null}",
         "{'model':'c','metadata':{'user_id':'u1'}}"},
        {__LINE__, ME, US, "{'model':'c','metadata':'s'}", NULL},
        {__LINE__, ME, US, "{'metadata':{'user_id':'x'},'metadata':{'b':[]}}",
         "{'metadata':{'user_id':'x'},'metadata':{'user_id':'u1','b':[]}}"},
        /* both */
        {__LINE__, CH, IU | US, "{'stream':true}",
         "{'stream_options':{'include_usage':true},'user':'u1','stream':true}"},
        {__LINE__, CH, IU | US, "{'stream':true,'stream_options':{'x':1},'user':null}",
         "{'stream':true,'stream_options':{'include_usage':true,'x':1},'user':'u1'}"},
        {__LINE__, CH, IU | US | ST,
         "{'stream':true,'user':'a','stream_options':{'include_usage':"
         "true}}",
         NULL},
        /* errors */
        {__LINE__, CH, IU | US | ST, "", "-1"},
        {__LINE__, CH, IU | US | ST, "{", "-1"},
        {__LINE__, CH, IU | US | ST, "[]", "-1"},
        {__LINE__, CH, IU | US | ST, "'x'", "-1"},
        {__LINE__, CH, IU | US | ST, "{'stream':true} {}", "-1"},
        {__LINE__, CH, IU | US | ST, "{'stream':true,}", "-1"},
        {__LINE__, CH, IU | US | ST, "{'stream':tru}", "-1"},
        /* notice stripping: chat */
        {__LINE__, CH, ST, "{'messages':[{'role':'assistant','content':'Hi.\\n\\n" NOTICE_M "'}]}",
         "{'messages':[{'role':'assistant','content':'Hi.'}]}"},
        {__LINE__, CH, ST, "{'messages':[{'role':'user','content':'Hi.\\n\\n" NOTICE_M "'}]}",
         NULL},
        {__LINE__, CH, 0, "{'messages':[{'role':'assistant','content':'Hi.\\n\\n" NOTICE_M "'}]}",
         NULL},
        {__LINE__, CH, ST,
         "{'messages':[{'role':'user','content':'q'},{'content':'A\\n\\n" NOTICE_W
         "','role':'assistant','name':'x'},{'role':'user','content':'r'}]}",
         "{'messages':[{'role':'user','content':'q'},{'content':'A','role':'assistant','name':"
         "'x'},{'role':'user','content':'r'}]}"},
        {__LINE__, CH, ST,
         "{'messages':[{'role':'assistant','content':[{'type':'text','text':'A\\n\\n" NOTICE_W
         "'},{'type':'image_url','image_url':{'url':'x'}},{'type':'text','text':'B'}]}]}",
         "{'messages':[{'role':'assistant','content':[{'type':'text','text':'A'},"
         "{'type':'image_url','image_url':{'url':'x'}},{'type':'text','text':'B'}]}]}"},
        {__LINE__, CH, ST,
         "{'messages':[{'role':'assistant','content':'Hi.\\n\\n" NOTICE_ESC "'}]}",
         "{'messages':[{'role':'assistant','content':'Hi.'}]}"},
        {__LINE__, CH, ST,
         "{'messages':[{'role':'assistant','content':'Hi.\\u000a\\n\\u003e \\u26a0\\ufe0f You "
         "have used 9 % of your daily AI quota; it resets on 2 May.'}]}",
         "{'messages':[{'role':'assistant','content':'Hi.'}]}"},
        {__LINE__, CH, ST,
         "{'messages':[{'role':'\\u0061ssistant','c\\u006fntent':'Caf\\u00e9 \\/ \\'q\\' "
         "\\t\\n\\n" NOTICE_M "'}]}",
         "{'messages':[{'role':'\\u0061ssistant','c\\u006fntent':'Caf\xC3\xA9 / \\'q\\' "
         "\\t'}]}"},
        {__LINE__, CH, ST,
         "{'messages':[{'role':'assistant','content':'A\\n\\n" NOTICE_M "\\nB\\n\\n" NOTICE_W
         "'}]}",
         "{'messages':[{'role':'assistant','content':'A\\nB'}]}"},
        {__LINE__, CH, ST,
         "{'messages':[{'role':'assistant','content':'A\\n\\n" NOTICE_M
         "'},{'role':'assistant','content':'B\\n\\n" NOTICE_ESC "'}]}",
         "{'messages':[{'role':'assistant','content':'A'},{'role':'assistant','content':'B'}]}"},
        {__LINE__, CH, ST, "{'messages':[{'role':'assistant','content':'" NOTICE_M "'}]}",
         "{'messages':[{'role':'assistant','content':''}]}"},
        {__LINE__, CH, ST,
         "{'messages':[{'role':'assistant','content':'You have used 82 % of your monthly AI "
         "quota; fine'}]}",
         NULL},
        {__LINE__, CH, ST,
         "{'messages':[{'role':'assistant','content':'My AI quota?\\n\\n> You have used 82 "
         "% of your monthly AI quota; it resets on 1 December.'}]}",
         NULL},
        {__LINE__, CH, ST,
         "{'messages':[{'role':'assistant','content':'Quota: \\u0026 > \\u26a0 stuff\\n'}]}", NULL},
        {__LINE__, CH, ST, "{'messages':[{'role':'assistant','content':'x " NOTICE_M "'}]}", NULL},
        {__LINE__, CH, ST,
         "{'messages':[{'role':'assistant','content':'A\\n\\n" NOTICE_M
         "'}],'messages':[{'role':'assistant','content':'B\\n\\n" NOTICE_M "'}]}",
         "{'messages':[{'role':'assistant','content':'A\\n\\n" NOTICE_M
         "'}],'messages':[{'role':'assistant','content':'B'}]}"},
        {__LINE__, CH, ST,
         "{'messages':[{'role':'assistant','tool_calls':[],'content':null},{'role':'assistant'},"
         "'x',{'role':'assistant','content':[1,{'type':'text'},{'type':'text','text':5}]}]}",
         NULL},
        {__LINE__, CH, ST, "{'messages':{'role':'assistant','content':'A\\n\\n" NOTICE_M "'}}",
         NULL},
        {__LINE__, CO, ST, "{'prompt':'A\\n\\n" NOTICE_M "'}", NULL},
        /* responses */
        {__LINE__, RE, ST,
         "{'input':[{'role':'user','content':'q'},{'type':'message','role':'assistant',"
         "'content':[{'type':'output_text','text':'X\\n\\n" NOTICE_M "','annotations':[]}]}]}",
         "{'input':[{'role':'user','content':'q'},{'type':'message','role':'assistant',"
         "'content':[{'type':'output_text','text':'X','annotations':[]}]}]}"},
        {__LINE__, RE, ST, "{'input':[{'role':'assistant','content':'X\\n\\n" NOTICE_M "'}]}",
         "{'input':[{'role':'assistant','content':'X'}]}"},
        {__LINE__, RE, ST, "{'input':'X\\n\\n" NOTICE_M "'}", NULL},
        {__LINE__, RE, ST, "{'messages':[{'role':'assistant','content':'X\\n\\n" NOTICE_M "'}]}",
         NULL},
        /* messages */
        {__LINE__, ME, ST, "{'messages':[{'role':'assistant','content':'X\\n\\n" NOTICE_M "'}]}",
         "{'messages':[{'role':'assistant','content':'X'}]}"},
        {__LINE__, ME, ST,
         "{'messages':[{'role':'assistant','content':[{'type':'text','text':'X\\n\\n" NOTICE_M
         "'},{'type':'tool_use','id':'t','name':'n','input':{'text':'Y\\n\\n" NOTICE_M "'}}]}]}",
         "{'messages':[{'role':'assistant','content':[{'type':'text','text':'X'},"
         "{'type':'tool_use','id':'t','name':'n','input':{'text':'Y\\n\\n" NOTICE_M "'}}]}]}"},
        {__LINE__, ME, ST, "{'messages':[{'role':'assistant','content':'" NOTICE_M "'}]}", NULL},
        {__LINE__, ME, ST,
         "{'messages':[{'role':'assistant','content':[{'type':'text','text':'\\n\\n" NOTICE_M
         "'}]}]}",
         NULL},
        /* everything at once */
        {__LINE__, CH, IU | US | ST,
         "{'model':'m','messages':[{'role':'assistant','content':'A\\n\\n" NOTICE_M
         "'},{'role':'user','content':'more'}],'stream':true,'stream_options':{'x':true}}",
         "{'user':'u1','model':'m','messages':[{'role':'assistant','content':'A'},{'role':'user',"
         "'content':'more'}],'stream':true,'stream_options':{'include_usage':true,'x':true}}"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char *body = q(rows[i].body);
        struct tg_rewrite_opts opts = {
            .include_usage = (rows[i].opts & IU) != 0,
            .user_id = (rows[i].opts & US) ? "u1" : NULL,
            .user_id_len = (rows[i].opts & US) ? 2 : 0,
            .strip_notice = (rows[i].opts & ST) != 0,
        };
        struct tg_buf out = {0};
        bool changed = true;
        int rc = tg_inspect_rewrite((enum tg_route)rows[i].route, body, strlen(body), &opts, &out,
                                    &changed);
        const char *want = rows[i].want;
        if (want != NULL && strcmp(want, "-1") == 0) {
            if (rc != -1 || changed || out.len != 0)
                fail_msg("line %d: rc=%d changed=%d", rows[i].line, rc, changed);
        } else if (want == NULL) {
            if (rc != 0 || changed || out.len != 0)
                fail_msg("line %d: rc=%d changed=%d out='%.*s'", rows[i].line, rc, changed,
                         (int)out.len, out.data ? out.data : "");
        } else {
            char *w = q(want);
            if (rc != 0 || !changed || out.len != strlen(w) || memcmp(out.data, w, out.len) != 0)
                fail_msg("line %d: rc=%d changed=%d\n got '%.*s'\nwant '%s'", rows[i].line, rc,
                         changed, (int)out.len, out.data ? out.data : "", w);
            struct tg_jv root;
            if (tg_json_parse(out.data, out.len, &root, NULL) != 0)
                fail_msg("line %d: output is not valid JSON", rows[i].line);
            /* a second pass finds nothing left to do */
            struct tg_buf again = {0};
            bool changed2 = true;
            assert_int_equal(tg_inspect_rewrite((enum tg_route)rows[i].route, out.data, out.len,
                                                &opts, &again, &changed2),
                             0);
            if (changed2)
                fail_msg("line %d: second pass changed '%s'", rows[i].line, again.data);
            tg_buf_cleanup(&again);
            free(w);
        }
        tg_buf_cleanup(&out);
        free(body);
    }
}

static void test_rewrite_user_escaping(void **state)
{
    (void)state;
    static const struct {
        int line;
        const char *id;
        size_t len;
        const char *want;
    } rows[] = {
        {__LINE__, "a\"b\\c", 5, "{\"user\":\"a\\\"b\\\\c\",\"x\":1}"},
        {__LINE__, "l\n\x01", 3, "{\"user\":\"l\\n\\u0001\",\"x\":1}"},
        {__LINE__, "\xC3\xA9\xFF", 3, "{\"user\":\"\xC3\xA9\xEF\xBF\xBD\",\"x\":1}"},
        {__LINE__, "a\0b", 3, "{\"user\":\"a\\u0000b\",\"x\":1}"},
        {__LINE__, "", 0, "{\"user\":\"\",\"x\":1}"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        const char *body = "{\"x\":1}";
        struct tg_rewrite_opts opts = {.user_id = rows[i].id, .user_id_len = rows[i].len};
        struct tg_buf out = {0};
        bool changed = false;
        assert_int_equal(
            tg_inspect_rewrite(TG_ROUTE_CHAT, body, strlen(body), &opts, &out, &changed), 0);
        assert_true(changed);
        if (strcmp(out.data, rows[i].want) != 0)
            fail_msg("line %d: got '%s'", rows[i].line, out.data);
        struct tg_jv root, v;
        assert_int_equal(tg_json_parse(out.data, out.len, &root, NULL), 0);
        assert_true(tg_json_get(&root, "user", &v));
        tg_buf_cleanup(&out);
    }
}

/* Appending keeps what the caller already had in out. */
static void test_rewrite_appends(void **state)
{
    (void)state;
    struct tg_buf out = {0};
    assert_int_equal(tg_buf_puts(&out, "prefix:"), 0);
    struct tg_rewrite_opts opts = {.user_id = "u", .user_id_len = 1};
    bool changed = false;
    assert_int_equal(tg_inspect_rewrite(TG_ROUTE_CHAT, "{}", 2, &opts, &out, &changed), 0);
    assert_true(changed);
    assert_string_equal(out.data, "prefix:{\"user\":\"u\"}");
    tg_buf_cleanup(&out);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A chat body around one base64 image of `image_bytes`. */
static char *big_body(size_t image_bytes, size_t *len)
{
    static const char head[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
                               "{\"type\":\"text\",\"text\":\"what is this?\"},"
                               "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;"
                               "base64,";
    static const char tail[] = "\"}}]},{\"role\":\"assistant\",\"content\":\"A cat.\\n\\n" NOTICE_M
                               "\"},{\"role\":\"user\",\"content\":\"thanks\"}],\"stream\":true}";
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = sizeof(head) - 1 + image_bytes + sizeof(tail) - 1;
    char *b = malloc(n + 1);
    assert_non_null(b);
    memcpy(b, head, sizeof(head) - 1);
    for (size_t i = 0; i < image_bytes; i++)
        b[sizeof(head) - 1 + i] = b64[(i * 7 + i / 64) % 64];
    memcpy(b + sizeof(head) - 1 + image_bytes, tail, sizeof(tail));
    *len = n;
    return b;
}

static void count_prompt(void *arg, const char *p, size_t n, int part)
{
    (void)p;
    (void)part;
    *(size_t *)arg += n;
}

/* Parse + prompt text + rewrite of one body; returns the best of three wall times. */
static double time_big(size_t image_bytes)
{
    size_t len;
    char *body = big_body(image_bytes, &len);
    double best = 1e9;
    for (int round = 0; round < 3; round++) {
        double t0 = now_s();
        struct tg_req_info info;
        char err[128];
        assert_int_equal(tg_inspect_parse(TG_ROUTE_CHAT, body, len, &info, err, sizeof(err)), 0);
        assert_true(info.stream);
        size_t prompt = 0;
        tg_inspect_prompt_text(TG_ROUTE_CHAT, body, len, count_prompt, &prompt);
        assert_true(prompt > 0 && prompt < 200); /* the image is not prompt text */
        struct tg_rewrite_opts opts = {
            .include_usage = true, .user_id = "u1", .user_id_len = 2, .strip_notice = true};
        struct tg_buf out = {0};
        bool changed = false;
        assert_int_equal(tg_inspect_rewrite(TG_ROUTE_CHAT, body, len, &opts, &out, &changed), 0);
        double t = now_s() - t0;
        assert_true(changed);
        static const char pre[] = "{\"stream_options\":{\"include_usage\":true},\"user\":\"u1\",";
        assert_memory_equal(out.data, pre, sizeof(pre) - 1);
        /* everything up to the assistant text is byte-identical */
        const char *cat = strstr(body, "A cat.");
        size_t upto = (size_t)(cat - body) + 6;
        assert_memory_equal(out.data + sizeof(pre) - 1, body + 1, upto - 1);
        assert_string_equal(out.data + sizeof(pre) - 2 + upto,
                            "\"},{\"role\":\"user\",\"content\":\"thanks\"}],\"stream\":true}");
        struct tg_jv root;
        assert_int_equal(tg_json_parse(out.data, out.len, &root, NULL), 0);
        tg_buf_cleanup(&out);
        if (t < best)
            best = t;
    }
    free(body);
    return best;
}

static void test_huge_body_linear(void **state)
{
    (void)state;
    double small = time_big((size_t)2 << 20);
    double large = time_big((size_t)16 << 20);
    print_message("2 MB: %.1f ms, 16 MB: %.1f ms\n", small * 1e3, large * 1e3);
    /* linear: 8x the bytes should cost about 8x; quadratic would be 64x */
    assert_true(large < small * 24 + 0.05);
    assert_true(large < 5.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),           cmocka_unit_test(test_parse_lengths),
        cmocka_unit_test(test_prompt_text),     cmocka_unit_test(test_splice),
        cmocka_unit_test(test_rewrite),         cmocka_unit_test(test_rewrite_user_escaping),
        cmocka_unit_test(test_rewrite_appends), cmocka_unit_test(test_huge_body_linear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
