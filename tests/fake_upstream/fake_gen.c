/* fake_gen.c: deterministic reply bodies and SSE events of the fake upstream. */
#include "fake_gen.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* Appends a string literal without its NUL. */
#define ADD_LIT(out, lit) evbuffer_add((out), (lit), sizeof(lit) - 1)

void tg_fake_plan_cleanup(struct tg_fake_plan *p)
{
    if (p == NULL)
        return;
    free(p->model);
    free(p->tool_name);
    free(p->finish_reason);
    free(p->instructions_json);
    memset(p, 0, sizeof(*p));
}

/* ---- token counting ---------------------------------------------------------------------- */

/* Bytes of text in a content value: strings count their UTF-8 bytes, numbers (token ids) 4,
 * arrays their elements, objects their "text" string, else their "content", else "output". */
static int64_t text_bytes(const json_t *v)
{
    if (json_is_string(v))
        return (int64_t)json_string_length(v);
    if (json_is_number(v))
        return 4;
    if (json_is_array(v)) {
        int64_t n = 0;
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) n += text_bytes(e);
        return n;
    }
    if (json_is_object(v)) {
        const json_t *t = json_object_get(v, "text");
        if (json_is_string(t))
            return (int64_t)json_string_length(t);
        t = json_object_get(v, "content");
        if (t != NULL)
            return text_bytes(t);
        t = json_object_get(v, "output");
        if (json_is_string(t))
            return (int64_t)json_string_length(t);
    }
    return 0;
}

static void count_messages(const json_t *messages, int64_t *bytes, int64_t *count)
{
    size_t i;
    const json_t *m;
    if (!json_is_array(messages))
        return;
    json_array_foreach(messages, i, m)
    {
        *bytes += text_bytes(json_object_get(m, "content"));
        (*count)++;
    }
}

int64_t tg_fake_prompt_tokens(enum tg_fake_api api, const json_t *body)
{
    int64_t bytes = 0;
    int64_t count = 0;
    const json_t *v;
    switch (api) {
    case TG_FAKE_API_CHAT:
        count_messages(json_object_get(body, "messages"), &bytes, &count);
        break;
    case TG_FAKE_API_COMPLETIONS:
        bytes = text_bytes(json_object_get(body, "prompt"));
        break;
    case TG_FAKE_API_EMBEDDINGS:
        bytes = text_bytes(json_object_get(body, "input"));
        break;
    case TG_FAKE_API_RESPONSES:
        v = json_object_get(body, "input");
        if (json_is_string(v)) {
            bytes += (int64_t)json_string_length(v);
            count++;
        } else if (json_is_array(v)) {
            bytes += text_bytes(v);
            count += (int64_t)json_array_size(v);
        }
        v = json_object_get(body, "instructions");
        if (json_is_string(v)) {
            bytes += (int64_t)json_string_length(v);
            count++;
        }
        break;
    case TG_FAKE_API_MESSAGES:
        count_messages(json_object_get(body, "messages"), &bytes, &count);
        v = json_object_get(body, "system");
        if (v != NULL && !json_is_null(v)) {
            bytes += text_bytes(v);
            count++;
        }
        break;
    }
    int64_t tokens = (bytes + 3) / 4 + 3 * count;
    return tokens < 1 ? 1 : tokens;
}

/* ---- small helpers ----------------------------------------------------------------------- */

char *tg_fake_json_escape(const char *s, size_t n)
{
    char *out = malloc(n * 6 + 1);
    if (out == NULL)
        return NULL;
    char *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            *o++ = '\\';
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            break;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\';
            *o++ = 'r';
            break;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                o += sprintf(o, "\\u%04x", c);
            } else {
                *o++ = (char)c;
            }
        }
    }
    *o = '\0';
    return out;
}

const char *tg_fake_error_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 402:
        return "insufficient_quota";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 408:
        return "timeout_error";
    case 409:
        return "conflict_error";
    case 422:
        return "unprocessable_entity_error";
    case 429:
        return "rate_limit_error";
    case 502:
        return "api_connection_error";
    case 503:
        return "service_unavailable_error";
    case 504:
        return "timeout_error";
    default:
        return status >= 500 ? "internal_server_error" : "invalid_request_error";
    }
}

void tg_fake_gen_error(struct evbuffer *out, int status, const char *type, const char *message_json)
{
    evbuffer_add_printf(out,
                        "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,"
                        "\"code\":\"%d\"}}",
                        message_json, type, status);
}

static const char *nl(const struct tg_fake_plan *p)
{
    return p->crlf ? "\r\n" : "\n";
}

/* "event: <name>" line (when name != NULL) and the "data: " prefix. */
static void sse_begin(struct evbuffer *out, const struct tg_fake_plan *p, const char *name)
{
    if (name != NULL)
        evbuffer_add_printf(out, "event: %s%sdata: ", name, nl(p));
    else
        ADD_LIT(out, "data: ");
}

static void sse_end(struct evbuffer *out, const struct tg_fake_plan *p)
{
    if (p->crlf)
        ADD_LIT(out, "\r\n\r\n");
    else
        ADD_LIT(out, "\n\n");
}

void tg_fake_gen_stream_error_event(struct evbuffer *out, bool crlf, int status, const char *type,
                                    const char *message_json)
{
    ADD_LIT(out, "data: ");
    tg_fake_gen_error(out, status, type, message_json);
    evbuffer_add(out, crlf ? "\r\n\r\n" : "\n\n", crlf ? 4 : 2);
}

/* ---- deterministic text ------------------------------------------------------------------ */

enum piece { PIECE_CONTENT, PIECE_REASONING };

static const char pad_run[256] = {[0 ... 255] = 'x'};

/* "tok<i>" / "think<i>", padded with 'x' to chunk_bytes, then a space. */
static void put_word(struct evbuffer *out, const struct tg_fake_plan *p, enum piece kind, long i)
{
    char word[40];
    int n = snprintf(word, sizeof(word), "%s%ld", kind == PIECE_CONTENT ? "tok" : "think", i);
    evbuffer_add(out, word, (size_t)n);
    long pad = p->chunk_bytes - n - 1;
    while (pad > 0) {
        size_t k = pad > (long)sizeof(pad_run) ? sizeof(pad_run) : (size_t)pad;
        evbuffer_add(out, pad_run, k);
        pad -= (long)k;
    }
    ADD_LIT(out, " ");
}

/* Tool-call argument fragment i: {"input":"tok0 tok1 ... "} split at the chunks. With `escaped`
 * the quotes are written JSON-escaped (the fragment goes inside a JSON string). */
static void put_args_fragment(struct evbuffer *out, const struct tg_fake_plan *p, long i,
                              bool escaped)
{
    if (i == 0 && escaped)
        ADD_LIT(out, "{\\\"input\\\":\\\"");
    else if (i == 0)
        ADD_LIT(out, "{\"input\":\"");
    put_word(out, p, PIECE_CONTENT, i);
    if (i == p->chunks - 1 && escaped)
        ADD_LIT(out, "\\\"}");
    else if (i == p->chunks - 1)
        ADD_LIT(out, "\"}");
}

/* Text of content chunk i as it appears inside a JSON string. */
static void put_chunk(struct evbuffer *out, const struct tg_fake_plan *p, long i)
{
    if (p->is_tool_call)
        put_args_fragment(out, p, i, true);
    else
        put_word(out, p, PIECE_CONTENT, i);
}

/* The concatenation of all content chunks (tool arguments: "{}" when there are none). */
static void put_all_content(struct evbuffer *out, const struct tg_fake_plan *p, bool escaped)
{
    if (p->is_tool_call && p->chunks == 0) {
        ADD_LIT(out, "{}");
        return;
    }
    for (long i = 0; i < p->chunks; i++) {
        if (p->is_tool_call)
            put_args_fragment(out, p, i, escaped);
        else
            put_word(out, p, PIECE_CONTENT, i);
    }
}

static void put_all_reasoning(struct evbuffer *out, const struct tg_fake_plan *p)
{
    for (long i = 0; i < p->reasoning; i++)
        put_word(out, p, PIECE_REASONING, i);
}

/* ---- usage objects ----------------------------------------------------------------------- */

static void put_chat_usage(struct evbuffer *out, const struct tg_fake_plan *p)
{
    evbuffer_add_printf(
        out,
        "{\"prompt_tokens\":%" PRId64 ",\"completion_tokens\":%" PRId64 ",\"total_tokens\":%" PRId64
        ",\"prompt_tokens_details\":{\"cached_tokens\":%" PRId64
        ",\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":%" PRId64
        ",\"audio_tokens\":0,\"accepted_prediction_tokens\":0,"
        "\"rejected_prediction_tokens\":0}}",
        p->prompt_tokens, p->completion_tokens, p->prompt_tokens + p->completion_tokens,
        p->cached_tokens, p->reasoning_tokens);
}

static void put_plain_usage(struct evbuffer *out, const struct tg_fake_plan *p)
{
    evbuffer_add_printf(out,
                        "{\"prompt_tokens\":%" PRId64 ",\"completion_tokens\":%" PRId64
                        ",\"total_tokens\":%" PRId64 "}",
                        p->prompt_tokens, p->completion_tokens,
                        p->prompt_tokens + p->completion_tokens);
}

static void put_responses_usage(struct evbuffer *out, const struct tg_fake_plan *p)
{
    evbuffer_add_printf(
        out,
        "{\"input_tokens\":%" PRId64 ",\"input_tokens_details\":{\"cached_tokens\":%" PRId64
        "},\"output_tokens\":%" PRId64 ",\"output_tokens_details\":{\"reasoning_tokens\":%" PRId64
        "},\"total_tokens\":%" PRId64 "}",
        p->prompt_tokens, p->cached_tokens, p->completion_tokens, p->reasoning_tokens,
        p->prompt_tokens + p->completion_tokens);
}

static int64_t anthropic_input(const struct tg_fake_plan *p)
{
    int64_t n = p->prompt_tokens - p->cached_tokens;
    return n < 0 ? 0 : n;
}

static void put_anthropic_usage(struct evbuffer *out, const struct tg_fake_plan *p,
                                int64_t output_tokens)
{
    evbuffer_add_printf(out,
                        "{\"input_tokens\":%" PRId64 ",\"cache_creation_input_tokens\":0,"
                        "\"cache_read_input_tokens\":%" PRId64 ",\"output_tokens\":%" PRId64 "}",
                        anthropic_input(p), p->cached_tokens, output_tokens);
}

static const char *anthropic_stop_reason(const struct tg_fake_plan *p)
{
    if (strcmp(p->finish_reason, "stop") == 0)
        return "end_turn";
    if (strcmp(p->finish_reason, "length") == 0)
        return "max_tokens";
    if (strcmp(p->finish_reason, "tool_calls") == 0)
        return "tool_use";
    return p->finish_reason;
}

/* ---- non-streamed bodies ----------------------------------------------------------------- */

static void body_chat(const struct tg_fake_plan *p, struct evbuffer *out)
{
    evbuffer_add_printf(out,
                        "{\"id\":\"chatcmpl-%" PRIu64 "\",\"object\":\"chat.completion\","
                        "\"created\":%" PRId64 ",\"model\":\"%s\",\"choices\":[",
                        p->seq, p->created_s, p->model);
    for (int j = 0; j < p->choices; j++) {
        evbuffer_add_printf(out, "%s{\"index\":%d,\"message\":{\"role\":\"assistant\",",
                            j ? "," : "", j);
        if (p->is_tool_call) {
            evbuffer_add_printf(out,
                                "\"content\":null,\"tool_calls\":[{\"id\":\"call_%" PRIu64
                                "\",\"type\":\"function\",\"function\":{\"name\":\"%s\","
                                "\"arguments\":\"",
                                p->seq, p->tool_name);
            put_all_content(out, p, true);
            ADD_LIT(out, "\"}}]");
        } else {
            ADD_LIT(out, "\"content\":\"");
            put_all_content(out, p, true);
            ADD_LIT(out, "\"");
        }
        if (p->reasoning > 0) {
            ADD_LIT(out, ",\"reasoning_content\":\"");
            put_all_reasoning(out, p);
            ADD_LIT(out, "\"");
        }
        evbuffer_add_printf(out, "},\"finish_reason\":\"%s\"}", p->finish_reason);
    }
    ADD_LIT(out, "]");
    if (p->has_usage) {
        ADD_LIT(out, ",\"usage\":");
        put_chat_usage(out, p);
    }
    ADD_LIT(out, "}");
}

static void body_completions(const struct tg_fake_plan *p, struct evbuffer *out)
{
    evbuffer_add_printf(out,
                        "{\"id\":\"cmpl-%" PRIu64 "\",\"object\":\"text_completion\","
                        "\"created\":%" PRId64 ",\"model\":\"%s\",\"choices\":[",
                        p->seq, p->created_s, p->model);
    for (int j = 0; j < p->choices; j++) {
        evbuffer_add_printf(out, "%s{\"text\":\"", j ? "," : "");
        put_all_content(out, p, true);
        evbuffer_add_printf(out, "\",\"index\":%d,\"logprobs\":null,\"finish_reason\":\"%s\"}", j,
                            p->finish_reason);
    }
    ADD_LIT(out, "]");
    if (p->has_usage) {
        ADD_LIT(out, ",\"usage\":");
        put_plain_usage(out, p);
    }
    ADD_LIT(out, "}");
}

/* Component k of embedding i: a multiple of 0.01 in [-1, 1). */
static double embedding_value(long i, int k)
{
    return (double)((i * 31 + (long)k * 17 + 7) % 200) / 100.0 - 1.0;
}

static void body_embeddings(const struct tg_fake_plan *p, struct evbuffer *out)
{
    ADD_LIT(out, "{\"object\":\"list\",\"data\":[");
    size_t raw_len = (size_t)p->dim * 4;
    unsigned char *raw = p->is_base64 ? malloc(raw_len) : NULL;
    char *b64 = p->is_base64 ? malloc(4 * ((raw_len + 2) / 3) + 1) : NULL;
    for (long i = 0; i < p->inputs; i++) {
        evbuffer_add_printf(
            out, "%s{\"object\":\"embedding\",\"index\":%ld,\"embedding\":", i ? "," : "", i);
        if (raw != NULL && b64 != NULL) {
            for (int k = 0; k < p->dim; k++) {
                float f = (float)embedding_value(i, k);
                uint32_t bits;
                memcpy(&bits, &f, 4);
                for (int b = 0; b < 4; b++)
                    raw[(size_t)k * 4 + (size_t)b] = (unsigned char)(bits >> (8 * b));
            }
            int n = EVP_EncodeBlock((unsigned char *)b64, raw, (int)raw_len);
            ADD_LIT(out, "\"");
            evbuffer_add(out, b64, (size_t)n);
            ADD_LIT(out, "\"}");
        } else {
            ADD_LIT(out, "[");
            for (int k = 0; k < p->dim; k++)
                evbuffer_add_printf(out, "%s%.2f", k ? "," : "", embedding_value(i, k));
            ADD_LIT(out, "]}");
        }
    }
    free(raw);
    free(b64);
    evbuffer_add_printf(out, "],\"model\":\"%s\"", p->model);
    if (p->has_usage)
        evbuffer_add_printf(
            out, ",\"usage\":{\"prompt_tokens\":%" PRId64 ",\"total_tokens\":%" PRId64 "}",
            p->prompt_tokens, p->prompt_tokens);
    ADD_LIT(out, "}");
}

/* Responses output items, complete. */
static void put_reasoning_item(struct evbuffer *out, const struct tg_fake_plan *p, bool done)
{
    evbuffer_add_printf(out, "{\"id\":\"rs_%" PRIu64 "\",\"type\":\"reasoning\",\"summary\":[",
                        p->seq);
    if (done) {
        ADD_LIT(out, "{\"type\":\"summary_text\",\"text\":\"");
        put_all_reasoning(out, p);
        ADD_LIT(out, "\"}");
    }
    ADD_LIT(out, "]}");
}

static void put_message_item(struct evbuffer *out, const struct tg_fake_plan *p, bool done)
{
    evbuffer_add_printf(out,
                        "{\"id\":\"msg_%" PRIu64 "\",\"type\":\"message\",\"status\":\"%s\","
                        "\"role\":\"assistant\",\"content\":[",
                        p->seq, done ? "completed" : "in_progress");
    if (done) {
        ADD_LIT(out, "{\"type\":\"output_text\",\"annotations\":[],\"text\":\"");
        put_all_content(out, p, true);
        ADD_LIT(out, "\"}");
    }
    ADD_LIT(out, "]}");
}

static void put_function_item(struct evbuffer *out, const struct tg_fake_plan *p, bool done)
{
    evbuffer_add_printf(out,
                        "{\"id\":\"fc_%" PRIu64 "\",\"type\":\"function_call\",\"status\":\"%s\","
                        "\"arguments\":\"",
                        p->seq, done ? "completed" : "in_progress");
    if (done)
        put_all_content(out, p, true);
    evbuffer_add_printf(out, "\",\"call_id\":\"call_%" PRIu64 "\",\"name\":\"%s\"}", p->seq,
                        p->tool_name);
}

enum resp_state { RESP_IN_PROGRESS, RESP_DONE };

static void put_response_object(struct evbuffer *out, const struct tg_fake_plan *p,
                                enum resp_state state)
{
    const char *status = "in_progress";
    if (state == RESP_DONE)
        status = p->is_incomplete ? "incomplete" : "completed";
    evbuffer_add_printf(
        out,
        "{\"id\":\"resp_%" PRIu64 "\",\"object\":\"response\",\"created_at\":%" PRId64
        ",\"status\":\"%s\",\"error\":null,\"incomplete_details\":%s,"
        "\"instructions\":%s,\"max_output_tokens\":null,\"model\":\"%s\","
        "\"output\":[",
        p->seq, p->created_s, status,
        state == RESP_DONE && p->is_incomplete ? "{\"reason\":\"max_output_tokens\"}" : "null",
        p->instructions_json ? p->instructions_json : "null", p->model);
    if (state == RESP_DONE) {
        if (p->reasoning > 0) {
            put_reasoning_item(out, p, true);
            ADD_LIT(out, ",");
        }
        if (p->is_tool_call)
            put_function_item(out, p, true);
        else
            put_message_item(out, p, true);
    }
    ADD_LIT(out, "],\"parallel_tool_calls\":true,\"previous_response_id\":null,"
                 "\"reasoning\":{\"effort\":null,\"summary\":null},\"store\":false,"
                 "\"temperature\":1.0,\"text\":{\"format\":{\"type\":\"text\"}},"
                 "\"tool_choice\":\"auto\",\"tools\":[],\"top_p\":1.0,\"truncation\":\"disabled\"");
    if (state == RESP_IN_PROGRESS) {
        ADD_LIT(out, ",\"usage\":null");
    } else if (p->has_usage) {
        ADD_LIT(out, ",\"usage\":");
        put_responses_usage(out, p);
    }
    ADD_LIT(out, ",\"user\":null,\"metadata\":{}}");
}

static void body_messages(const struct tg_fake_plan *p, struct evbuffer *out)
{
    evbuffer_add_printf(out,
                        "{\"id\":\"msg_%" PRIu64 "\",\"type\":\"message\",\"role\":\"assistant\","
                        "\"model\":\"%s\",\"content\":[",
                        p->seq, p->model);
    if (p->reasoning > 0) {
        ADD_LIT(out, "{\"type\":\"thinking\",\"thinking\":\"");
        put_all_reasoning(out, p);
        ADD_LIT(out, "\",\"signature\":\"fakesig\"},");
    }
    if (p->is_tool_call) {
        evbuffer_add_printf(
            out, "{\"type\":\"tool_use\",\"id\":\"toolu_%" PRIu64 "\",\"name\":\"%s\",\"input\":",
            p->seq, p->tool_name);
        put_all_content(out, p, false);
        ADD_LIT(out, "}");
    } else {
        ADD_LIT(out, "{\"type\":\"text\",\"text\":\"");
        put_all_content(out, p, true);
        ADD_LIT(out, "\"}");
    }
    evbuffer_add_printf(out, "],\"stop_reason\":\"%s\",\"stop_sequence\":null",
                        anthropic_stop_reason(p));
    if (p->has_usage) {
        ADD_LIT(out, ",\"usage\":");
        put_anthropic_usage(out, p, p->completion_tokens);
    }
    ADD_LIT(out, "}");
}

void tg_fake_gen_body(const struct tg_fake_plan *p, struct evbuffer *out)
{
    switch (p->api) {
    case TG_FAKE_API_CHAT:
        body_chat(p, out);
        break;
    case TG_FAKE_API_COMPLETIONS:
        body_completions(p, out);
        break;
    case TG_FAKE_API_EMBEDDINGS:
        body_embeddings(p, out);
        break;
    case TG_FAKE_API_RESPONSES:
        put_response_object(out, p, RESP_DONE);
        break;
    case TG_FAKE_API_MESSAGES:
        body_messages(p, out);
        break;
    }
}

/* ---- streams ----------------------------------------------------------------------------- */

enum phase {
    /* chat/completions */
    PH_CHAT_ROLE,
    PH_CHAT_REASONING, /* loop */
    PH_CHAT_CONTENT,   /* loop */
    PH_CHAT_FINISH,
    PH_CHAT_USAGE,
    /* legacy completions */
    PH_CMPL_CONTENT, /* loop */
    PH_CMPL_FINISH,
    PH_CMPL_USAGE,
    PH_DONE_MARK, /* data: [DONE] */
    /* Responses */
    PH_R_CREATED,
    PH_R_IN_PROGRESS,
    PH_R_RS_ADDED,
    PH_R_RS_PART_ADDED,
    PH_R_RS_DELTA, /* loop */
    PH_R_RS_TEXT_DONE,
    PH_R_RS_PART_DONE,
    PH_R_RS_DONE,
    PH_R_MSG_ADDED,
    PH_R_PART_ADDED,
    PH_R_TEXT_DELTA, /* loop */
    PH_R_TEXT_DONE,
    PH_R_PART_DONE,
    PH_R_MSG_DONE,
    PH_R_FC_ADDED,
    PH_R_FC_DELTA, /* loop */
    PH_R_FC_ARGS_DONE,
    PH_R_FC_DONE,
    PH_R_TERMINAL,
    /* Anthropic */
    PH_A_START,
    PH_A_PING,
    PH_A_THINK_START,
    PH_A_THINK_DELTA, /* loop */
    PH_A_SIGNATURE,
    PH_A_THINK_STOP,
    PH_A_BLOCK_START,
    PH_A_CONTENT, /* loop */
    PH_A_BLOCK_STOP,
    PH_A_MSG_DELTA,
    PH_A_MSG_STOP,
};

static bool is_reasoning_loop(int ph)
{
    return ph == PH_CHAT_REASONING || ph == PH_R_RS_DELTA || ph == PH_A_THINK_DELTA;
}

static bool is_content_loop(int ph)
{
    return ph == PH_CHAT_CONTENT || ph == PH_CMPL_CONTENT || ph == PH_R_TEXT_DELTA ||
           ph == PH_R_FC_DELTA || ph == PH_A_CONTENT;
}

static long loop_count(const struct tg_fake_stream *s, int ph)
{
    if (is_reasoning_loop(ph))
        return s->plan->reasoning;
    if (is_content_loop(ph))
        return s->plan->chunks;
    return 1;
}

static void add_phase(struct tg_fake_stream *s, int ph)
{
    if (is_content_loop(ph))
        s->content_phase = s->num_phases;
    s->phases[s->num_phases++] = ph;
}

/* Skips loop phases with nothing left to send. */
static void settle(struct tg_fake_stream *s)
{
    while (s->phase < s->num_phases && s->index >= loop_count(s, s->phases[s->phase])) {
        s->phase++;
        s->index = 0;
    }
}

void tg_fake_stream_init(struct tg_fake_stream *s, const struct tg_fake_plan *p)
{
    memset(s, 0, sizeof(*s));
    s->plan = p;
    bool usage_chunk = p->include_usage && p->has_usage;
    bool reasoning = p->reasoning > 0;
    switch (p->api) {
    case TG_FAKE_API_CHAT:
        add_phase(s, PH_CHAT_ROLE);
        add_phase(s, PH_CHAT_REASONING);
        add_phase(s, PH_CHAT_CONTENT);
        add_phase(s, PH_CHAT_FINISH);
        if (usage_chunk)
            add_phase(s, PH_CHAT_USAGE);
        add_phase(s, PH_DONE_MARK);
        break;
    case TG_FAKE_API_COMPLETIONS:
    case TG_FAKE_API_EMBEDDINGS:
        add_phase(s, PH_CMPL_CONTENT);
        add_phase(s, PH_CMPL_FINISH);
        if (usage_chunk)
            add_phase(s, PH_CMPL_USAGE);
        add_phase(s, PH_DONE_MARK);
        break;
    case TG_FAKE_API_RESPONSES:
        add_phase(s, PH_R_CREATED);
        add_phase(s, PH_R_IN_PROGRESS);
        if (reasoning) {
            add_phase(s, PH_R_RS_ADDED);
            add_phase(s, PH_R_RS_PART_ADDED);
            add_phase(s, PH_R_RS_DELTA);
            add_phase(s, PH_R_RS_TEXT_DONE);
            add_phase(s, PH_R_RS_PART_DONE);
            add_phase(s, PH_R_RS_DONE);
        }
        if (p->is_tool_call) {
            add_phase(s, PH_R_FC_ADDED);
            add_phase(s, PH_R_FC_DELTA);
            add_phase(s, PH_R_FC_ARGS_DONE);
            add_phase(s, PH_R_FC_DONE);
        } else {
            add_phase(s, PH_R_MSG_ADDED);
            add_phase(s, PH_R_PART_ADDED);
            add_phase(s, PH_R_TEXT_DELTA);
            add_phase(s, PH_R_TEXT_DONE);
            add_phase(s, PH_R_PART_DONE);
            add_phase(s, PH_R_MSG_DONE);
        }
        add_phase(s, PH_R_TERMINAL);
        break;
    case TG_FAKE_API_MESSAGES:
        add_phase(s, PH_A_START);
        add_phase(s, PH_A_PING);
        if (reasoning) {
            add_phase(s, PH_A_THINK_START);
            add_phase(s, PH_A_THINK_DELTA);
            add_phase(s, PH_A_SIGNATURE);
            add_phase(s, PH_A_THINK_STOP);
        }
        add_phase(s, PH_A_BLOCK_START);
        add_phase(s, PH_A_CONTENT);
        add_phase(s, PH_A_BLOCK_STOP);
        add_phase(s, PH_A_MSG_DELTA);
        add_phase(s, PH_A_MSG_STOP);
        break;
    }
    settle(s);
}

enum tg_fake_step tg_fake_stream_peek(const struct tg_fake_stream *s)
{
    if (s->phase >= s->num_phases)
        return TG_FAKE_STEP_END;
    int ph = s->phases[s->phase];
    if (is_content_loop(ph))
        return TG_FAKE_STEP_CONTENT;
    if (is_reasoning_loop(ph))
        return TG_FAKE_STEP_REASONING;
    return s->phase < s->content_phase ? TG_FAKE_STEP_PRE : TG_FAKE_STEP_POST;
}

static void chat_open(struct evbuffer *out, const struct tg_fake_plan *p)
{
    evbuffer_add_printf(out,
                        "{\"id\":\"chatcmpl-%" PRIu64 "\",\"object\":\"chat.completion.chunk\","
                        "\"created\":%" PRId64 ",\"model\":\"%s\",\"choices\":[",
                        p->seq, p->created_s, p->model);
}

static void chat_close(struct evbuffer *out, const struct tg_fake_plan *p)
{
    if (p->include_usage && p->has_usage)
        ADD_LIT(out, "],\"usage\":null}");
    else
        ADD_LIT(out, "]}");
}

static void emit_chat(struct tg_fake_stream *s, struct evbuffer *out, int ph)
{
    const struct tg_fake_plan *p = s->plan;
    sse_begin(out, p, NULL);
    chat_open(out, p);
    if (ph == PH_CHAT_USAGE) {
        ADD_LIT(out, "],\"usage\":");
        put_chat_usage(out, p);
        ADD_LIT(out, "}");
        sse_end(out, p);
        return;
    }
    for (int j = 0; j < p->choices; j++) {
        evbuffer_add_printf(out, "%s{\"index\":%d,\"delta\":", j ? "," : "", j);
        switch (ph) {
        case PH_CHAT_ROLE:
            if (p->is_tool_call)
                evbuffer_add_printf(out,
                                    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
                                    "[{\"index\":0,\"id\":\"call_%" PRIu64 "\",\"type\":"
                                    "\"function\",\"function\":{\"name\":\"%s\",\"arguments\":"
                                    "\"%s\"}}]}",
                                    p->seq, p->tool_name, p->chunks == 0 ? "{}" : "");
            else
                ADD_LIT(out, "{\"role\":\"assistant\",\"content\":\"\"}");
            break;
        case PH_CHAT_REASONING:
            ADD_LIT(out, "{\"reasoning_content\":\"");
            put_word(out, p, PIECE_REASONING, s->index);
            ADD_LIT(out, "\"}");
            break;
        case PH_CHAT_CONTENT:
            if (p->is_tool_call) {
                ADD_LIT(out, "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"");
                put_chunk(out, p, s->index);
                ADD_LIT(out, "\"}}]}");
            } else {
                ADD_LIT(out, "{\"content\":\"");
                put_chunk(out, p, s->index);
                ADD_LIT(out, "\"}");
            }
            break;
        default: /* PH_CHAT_FINISH */
            ADD_LIT(out, "{}");
            break;
        }
        if (ph == PH_CHAT_FINISH)
            evbuffer_add_printf(out, ",\"finish_reason\":\"%s\"}", p->finish_reason);
        else
            ADD_LIT(out, ",\"finish_reason\":null}");
    }
    chat_close(out, p);
    sse_end(out, p);
}

static void emit_completions(struct tg_fake_stream *s, struct evbuffer *out, int ph)
{
    const struct tg_fake_plan *p = s->plan;
    sse_begin(out, p, NULL);
    evbuffer_add_printf(out,
                        "{\"id\":\"cmpl-%" PRIu64
                        "\",\"object\":\"text_completion\",\"created\":%" PRId64
                        ",\"model\":\"%s\",\"choices\":[",
                        p->seq, p->created_s, p->model);
    if (ph == PH_CMPL_USAGE) {
        ADD_LIT(out, "],\"usage\":");
        put_plain_usage(out, p);
        ADD_LIT(out, "}");
        sse_end(out, p);
        return;
    }
    for (int j = 0; j < p->choices; j++) {
        evbuffer_add_printf(out, "%s{\"text\":\"", j ? "," : "");
        if (ph == PH_CMPL_CONTENT)
            put_chunk(out, p, s->index);
        evbuffer_add_printf(out, "\",\"index\":%d,\"logprobs\":null,\"finish_reason\":", j);
        if (ph == PH_CMPL_FINISH)
            evbuffer_add_printf(out, "\"%s\"}", p->finish_reason);
        else
            ADD_LIT(out, "null}");
    }
    chat_close(out, p);
    sse_end(out, p);
}

/* Responses event prologue: event line, type and sequence_number. */
static void r_begin(struct tg_fake_stream *s, struct evbuffer *out, const char *type)
{
    sse_begin(out, s->plan, type);
    evbuffer_add_printf(out, "{\"type\":\"%s\",\"sequence_number\":%ld", type, s->sequence++);
}

static void emit_responses(struct tg_fake_stream *s, struct evbuffer *out, int ph)
{
    const struct tg_fake_plan *p = s->plan;
    int oi = p->reasoning > 0 ? 1 : 0; /* output_index of the message / function call */
    switch (ph) {
    case PH_R_CREATED:
    case PH_R_IN_PROGRESS:
        r_begin(s, out, ph == PH_R_CREATED ? "response.created" : "response.in_progress");
        ADD_LIT(out, ",\"response\":");
        put_response_object(out, p, RESP_IN_PROGRESS);
        break;
    case PH_R_RS_ADDED:
    case PH_R_RS_DONE:
        r_begin(s, out,
                ph == PH_R_RS_ADDED ? "response.output_item.added" : "response.output_item.done");
        ADD_LIT(out, ",\"output_index\":0,\"item\":");
        put_reasoning_item(out, p, ph == PH_R_RS_DONE);
        break;
    case PH_R_RS_PART_ADDED:
    case PH_R_RS_PART_DONE:
        r_begin(s, out,
                ph == PH_R_RS_PART_ADDED ? "response.reasoning_summary_part.added"
                                         : "response.reasoning_summary_part.done");
        evbuffer_add_printf(out,
                            ",\"item_id\":\"rs_%" PRIu64 "\",\"output_index\":0,"
                            "\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"",
                            p->seq);
        if (ph == PH_R_RS_PART_DONE)
            put_all_reasoning(out, p);
        ADD_LIT(out, "\"}");
        break;
    case PH_R_RS_DELTA:
    case PH_R_RS_TEXT_DONE:
        r_begin(s, out,
                ph == PH_R_RS_DELTA ? "response.reasoning_summary_text.delta"
                                    : "response.reasoning_summary_text.done");
        evbuffer_add_printf(out,
                            ",\"item_id\":\"rs_%" PRIu64 "\",\"output_index\":0,"
                            "\"summary_index\":0,\"%s\":\"",
                            p->seq, ph == PH_R_RS_DELTA ? "delta" : "text");
        if (ph == PH_R_RS_DELTA)
            put_word(out, p, PIECE_REASONING, s->index);
        else
            put_all_reasoning(out, p);
        ADD_LIT(out, "\"");
        break;
    case PH_R_MSG_ADDED:
    case PH_R_MSG_DONE:
        r_begin(s, out,
                ph == PH_R_MSG_ADDED ? "response.output_item.added" : "response.output_item.done");
        evbuffer_add_printf(out, ",\"output_index\":%d,\"item\":", oi);
        put_message_item(out, p, ph == PH_R_MSG_DONE);
        break;
    case PH_R_PART_ADDED:
    case PH_R_PART_DONE:
        r_begin(s, out,
                ph == PH_R_PART_ADDED ? "response.content_part.added"
                                      : "response.content_part.done");
        evbuffer_add_printf(out,
                            ",\"item_id\":\"msg_%" PRIu64 "\",\"output_index\":%d,"
                            "\"content_index\":0,\"part\":{\"type\":\"output_text\","
                            "\"annotations\":[],\"text\":\"",
                            p->seq, oi);
        if (ph == PH_R_PART_DONE)
            put_all_content(out, p, true);
        ADD_LIT(out, "\"}");
        break;
    case PH_R_TEXT_DELTA:
    case PH_R_TEXT_DONE:
        r_begin(s, out,
                ph == PH_R_TEXT_DELTA ? "response.output_text.delta" : "response.output_text.done");
        evbuffer_add_printf(out,
                            ",\"item_id\":\"msg_%" PRIu64 "\",\"output_index\":%d,"
                            "\"content_index\":0,\"%s\":\"",
                            p->seq, oi, ph == PH_R_TEXT_DELTA ? "delta" : "text");
        if (ph == PH_R_TEXT_DELTA)
            put_chunk(out, p, s->index);
        else
            put_all_content(out, p, true);
        ADD_LIT(out, "\"");
        break;
    case PH_R_FC_ADDED:
    case PH_R_FC_DONE:
        r_begin(s, out,
                ph == PH_R_FC_ADDED ? "response.output_item.added" : "response.output_item.done");
        evbuffer_add_printf(out, ",\"output_index\":%d,\"item\":", oi);
        put_function_item(out, p, ph == PH_R_FC_DONE);
        break;
    case PH_R_FC_DELTA:
    case PH_R_FC_ARGS_DONE:
        r_begin(s, out,
                ph == PH_R_FC_DELTA ? "response.function_call_arguments.delta"
                                    : "response.function_call_arguments.done");
        evbuffer_add_printf(out, ",\"item_id\":\"fc_%" PRIu64 "\",\"output_index\":%d,\"%s\":\"",
                            p->seq, oi, ph == PH_R_FC_DELTA ? "delta" : "arguments");
        if (ph == PH_R_FC_DELTA)
            put_chunk(out, p, s->index);
        else
            put_all_content(out, p, true);
        ADD_LIT(out, "\"");
        break;
    default: /* PH_R_TERMINAL */
        r_begin(s, out, p->is_incomplete ? "response.incomplete" : "response.completed");
        ADD_LIT(out, ",\"response\":");
        put_response_object(out, p, RESP_DONE);
        break;
    }
    ADD_LIT(out, "}");
    sse_end(out, p);
}

static void emit_messages(struct tg_fake_stream *s, struct evbuffer *out, int ph)
{
    const struct tg_fake_plan *p = s->plan;
    int bi = p->reasoning > 0 ? 1 : 0; /* index of the text / tool_use block */
    switch (ph) {
    case PH_A_START:
        sse_begin(out, p, "message_start");
        evbuffer_add_printf(out,
                            "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_%" PRIu64
                            "\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],"
                            "\"model\":\"%s\",\"stop_reason\":null,\"stop_sequence\":null",
                            p->seq, p->model);
        if (p->has_usage) {
            ADD_LIT(out, ",\"usage\":");
            put_anthropic_usage(out, p, 1);
        }
        ADD_LIT(out, "}}");
        break;
    case PH_A_PING:
        sse_begin(out, p, "ping");
        ADD_LIT(out, "{\"type\":\"ping\"}");
        break;
    case PH_A_THINK_START:
        sse_begin(out, p, "content_block_start");
        ADD_LIT(out, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                     "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}");
        break;
    case PH_A_THINK_DELTA:
        sse_begin(out, p, "content_block_delta");
        ADD_LIT(out, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                     "{\"type\":\"thinking_delta\",\"thinking\":\"");
        put_word(out, p, PIECE_REASONING, s->index);
        ADD_LIT(out, "\"}}");
        break;
    case PH_A_SIGNATURE:
        sse_begin(out, p, "content_block_delta");
        ADD_LIT(out, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                     "{\"type\":\"signature_delta\",\"signature\":\"fakesig\"}}");
        break;
    case PH_A_THINK_STOP:
    case PH_A_BLOCK_STOP:
        sse_begin(out, p, "content_block_stop");
        evbuffer_add_printf(out, "{\"type\":\"content_block_stop\",\"index\":%d}",
                            ph == PH_A_THINK_STOP ? 0 : bi);
        break;
    case PH_A_BLOCK_START:
        sse_begin(out, p, "content_block_start");
        evbuffer_add_printf(
            out, "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":", bi);
        if (p->is_tool_call)
            evbuffer_add_printf(out,
                                "{\"type\":\"tool_use\",\"id\":\"toolu_%" PRIu64
                                "\",\"name\":\"%s\",\"input\":{}}}",
                                p->seq, p->tool_name);
        else
            ADD_LIT(out, "{\"type\":\"text\",\"text\":\"\"}}");
        break;
    case PH_A_CONTENT:
        sse_begin(out, p, "content_block_delta");
        evbuffer_add_printf(out, "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":", bi);
        if (p->is_tool_call)
            ADD_LIT(out, "{\"type\":\"input_json_delta\",\"partial_json\":\"");
        else
            ADD_LIT(out, "{\"type\":\"text_delta\",\"text\":\"");
        put_chunk(out, p, s->index);
        ADD_LIT(out, "\"}}");
        break;
    case PH_A_MSG_DELTA:
        sse_begin(out, p, "message_delta");
        evbuffer_add_printf(out,
                            "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\","
                            "\"stop_sequence\":null}",
                            anthropic_stop_reason(p));
        if (p->has_usage)
            evbuffer_add_printf(out, ",\"usage\":{\"output_tokens\":%" PRId64 "}",
                                p->completion_tokens);
        ADD_LIT(out, "}");
        break;
    default: /* PH_A_MSG_STOP */
        sse_begin(out, p, "message_stop");
        ADD_LIT(out, "{\"type\":\"message_stop\"}");
        break;
    }
    sse_end(out, p);
}

void tg_fake_stream_emit(struct tg_fake_stream *s, struct evbuffer *out)
{
    if (s->phase >= s->num_phases)
        return;
    int ph = s->phases[s->phase];
    if (ph == PH_DONE_MARK) {
        sse_begin(out, s->plan, NULL);
        ADD_LIT(out, "[DONE]");
        sse_end(out, s->plan);
    } else if (ph <= PH_CHAT_USAGE) {
        emit_chat(s, out, ph);
    } else if (ph <= PH_CMPL_USAGE) {
        emit_completions(s, out, ph);
    } else if (ph <= PH_R_TERMINAL) {
        emit_responses(s, out, ph);
    } else {
        emit_messages(s, out, ph);
    }
    s->index++;
    settle(s);
}

void tg_fake_stream_error(struct tg_fake_stream *s, struct evbuffer *out, const char *message_json)
{
    const struct tg_fake_plan *p = s->plan;
    switch (p->api) {
    case TG_FAKE_API_RESPONSES:
        r_begin(s, out, "error");
        evbuffer_add_printf(out, ",\"code\":\"server_error\",\"message\":\"%s\",\"param\":null}",
                            message_json ? message_json : "fake mid-stream error");
        sse_end(out, p);
        break;
    case TG_FAKE_API_MESSAGES:
        sse_begin(out, p, "error");
        evbuffer_add_printf(out,
                            "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                            "\"message\":\"%s\"}}",
                            message_json ? message_json : "Overloaded");
        sse_end(out, p);
        break;
    default:
        tg_fake_gen_stream_error_event(out, p->crlf, 500, "internal_server_error",
                                       message_json ? message_json : "fake mid-stream error");
        break;
    }
}
