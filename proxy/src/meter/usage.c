/* usage.c: per-route stream event classification, usage mapping and text for estimation. */
#include "meter/usage.h"

#include <string.h>

#include "core/json_scan.h"

/* ---- small JSON helpers ------------------------------------------------------------------ */

/* JavaScript truthiness of a value, as the SDKs test `if (data.error)`. */
static bool truthy(const struct tg_jv *v)
{
    switch (v->type) {
    case TG_JSON_NONE:
    case TG_JSON_NULL:
    case TG_JSON_FALSE:
        return false;
    case TG_JSON_STRING:
        return v->n > 2;
    case TG_JSON_NUMBER:
        for (size_t i = 0; i < v->n && v->p[i] != 'e' && v->p[i] != 'E'; i++)
            if (v->p[i] >= '1' && v->p[i] <= '9')
                return true;
        return false;
    default:
        return true;
    }
}

/* A token count: an integer in [0, TG_USAGE_MAX_TOKENS]. */
static bool get_count(const struct tg_jv *obj, const char *path, int64_t *out)
{
    struct tg_jv v;
    int64_t x;
    if (!tg_json_path(obj, path, &v) || tg_json_int64(&v, &x) != 0 || x < 0 ||
        x > TG_USAGE_MAX_TOKENS)
        return false;
    *out = x;
    return true;
}

static bool type_is(const char *t, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(t, lit, l) == 0;
}

/* Copies a decoded string into dst (NUL-terminated); "" when not a string or too long,
 * unless allow_prefix, which keeps what fits. */
static void copy_str(const struct tg_jv *v, char *dst, size_t cap, bool allow_prefix)
{
    dst[0] = '\0';
    if (v->type != TG_JSON_STRING)
        return;
    ssize_t n = tg_json_string_copy(v, dst, cap - 1);
    if (n >= 0)
        dst[n] = '\0';
    else if (allow_prefix)
        dst[cap - 1] = '\0';
    else
        dst[0] = '\0';
}

/* ---- usage mapping ----------------------------------------------------------------------- */

static void finish_usage(struct tg_usage *u)
{
    if (u->cached_tokens > u->prompt_tokens)
        u->cached_tokens = u->prompt_tokens;
    if (u->reasoning_tokens > u->completion_tokens)
        u->reasoning_tokens = u->completion_tokens;
    u->total_tokens = u->prompt_tokens + u->completion_tokens;
    u->has_usage = true;
}

/* OpenAI CompletionUsage (chat, completions, embeddings). */
static bool map_openai(enum tg_route route, const struct tg_jv *u, struct tg_usage *out)
{
    struct tg_usage r = {0};
    bool p = get_count(u, "prompt_tokens", &r.prompt_tokens);
    bool c = get_count(u, "completion_tokens", &r.completion_tokens);
    if (!p && !c)
        return false;
    (void)get_count(u, "prompt_tokens_details.cached_tokens", &r.cached_tokens);
    (void)get_count(u, "completion_tokens_details.reasoning_tokens", &r.reasoning_tokens);
    if (route == TG_ROUTE_EMBEDDINGS)
        r.completion_tokens = r.reasoning_tokens = 0;
    finish_usage(&r);
    *out = r;
    return true;
}

/* Responses API ResponseUsage. */
static bool map_responses(const struct tg_jv *u, struct tg_usage *out)
{
    struct tg_usage r = {0};
    bool p = get_count(u, "input_tokens", &r.prompt_tokens);
    bool c = get_count(u, "output_tokens", &r.completion_tokens);
    if (!p && !c)
        return false;
    (void)get_count(u, "input_tokens_details.cached_tokens", &r.cached_tokens);
    (void)get_count(u, "output_tokens_details.reasoning_tokens", &r.reasoning_tokens);
    finish_usage(&r);
    *out = r;
    return true;
}

/* Anthropic usage: input_tokens excludes the cache. */
static void anthropic_compose(int64_t input, int64_t cache_read, int64_t cache_creation,
                              int64_t output, struct tg_usage *out)
{
    struct tg_usage r = {0};
    r.prompt_tokens = input + cache_read + cache_creation;
    r.cached_tokens = cache_read;
    r.completion_tokens = output;
    finish_usage(&r);
    *out = r;
}

static bool map_anthropic(const struct tg_jv *u, struct tg_usage *out)
{
    int64_t in = 0, rd = 0, cr = 0, o = 0;
    bool p = get_count(u, "input_tokens", &in);
    bool c = get_count(u, "output_tokens", &o);
    if (!p && !c)
        return false;
    (void)get_count(u, "cache_read_input_tokens", &rd);
    (void)get_count(u, "cache_creation_input_tokens", &cr);
    anthropic_compose(in, rd, cr, o, out);
    return true;
}

int tg_usage_from_json(enum tg_route route, const char *json, size_t len, struct tg_usage *out)
{
    memset(out, 0, sizeof(*out));
    struct tg_jv root, u;
    if (tg_json_parse(json, len, &root, NULL) != 0 || root.type != TG_JSON_OBJECT)
        return -1;
    if (!tg_json_get(&root, "usage", &u))
        u = root;
    if (u.type != TG_JSON_OBJECT)
        return -1;
    bool ok;
    switch (route) {
    case TG_ROUTE_CHAT:
    case TG_ROUTE_COMPLETIONS:
    case TG_ROUTE_EMBEDDINGS:
        ok = map_openai(route, &u, out);
        break;
    case TG_ROUTE_RESPONSES:
        ok = map_responses(&u, out);
        break;
    case TG_ROUTE_MESSAGES:
        ok = map_anthropic(&u, out);
        break;
    default:
        ok = false;
        break;
    }
    return ok ? 0 : -1;
}

/* ---- text for estimation ----------------------------------------------------------------- */

static void text_emit(const char *p, size_t n, void *arg)
{
    struct tg_stream_meter *m = arg;
    m->text_bytes += n;
    if (m->on_text != NULL)
        m->on_text(m->text_arg, p, n);
}

/* Feeds the decoded string v (when it is a non-empty string) to the text sink. */
static void text_of(struct tg_stream_meter *m, const struct tg_jv *v)
{
    if (v->type == TG_JSON_STRING && v->n > 2)
        tg_json_string_decode(v, text_emit, m);
}

/* Same for the value at `path` of obj. */
static void text_at(struct tg_stream_meter *m, const struct tg_jv *obj, const char *path)
{
    struct tg_jv v;
    if (tg_json_path(obj, path, &v))
        text_of(m, &v);
}

/* ---- one-pass member lookup (every chunk passes here: avoid a scan per key) --------------- */

struct want {
    const char *key;
    struct tg_jv *out;
};

/* One pass over obj's members: each wanted key gets its last value (type NONE if absent). */
static void pick(const struct tg_jv *obj, const struct want *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        w[i].out->type = TG_JSON_NONE;
    if (obj->type != TG_JSON_OBJECT)
        return;
    struct tg_json_iter it;
    struct tg_jv k, v;
    tg_json_iter_init(&it, obj);
    while (tg_json_next_member(&it, &k, &v)) {
        for (size_t i = 0; i < n; i++) {
            if (tg_json_key_is(&k, w[i].key)) {
                *w[i].out = v;
                break;
            }
        }
    }
}

/* ---- chat / completions ------------------------------------------------------------------ */

static void set_meta(struct tg_stream_meter *m, const struct tg_jv *id, const struct tg_jv *model,
                     const struct tg_jv *created)
{
    int64_t c;
    if (m->has_meta || id->type != TG_JSON_STRING)
        return;
    m->has_meta = true;
    copy_str(id, m->chunk_id, sizeof(m->chunk_id), false);
    copy_str(model, m->model, sizeof(m->model), false);
    if (tg_json_int64(created, &c) == 0)
        m->created = c;
}

static void capture_meta(struct tg_stream_meter *m, const struct tg_jv *obj,
                         const char *created_key)
{
    struct tg_jv id, model, created;
    const struct want w[] = {{"id", &id}, {"model", &model}, {created_key, &created}};
    if (m->has_meta)
        return;
    pick(obj, w, TG_ARRAY_LEN(w));
    set_meta(m, &id, &model, &created);
}

/* Text of one choice; returns true when it has a string finish_reason (copied into fr). */
static bool chat_choice(struct tg_stream_meter *m, const struct tg_jv *choice, struct tg_jv *fr)
{
    struct tg_jv text, delta, content, rcontent, reasoning, calls, call;
    const struct want wc[] = {{"delta", &delta}, {"text", &text}, {"finish_reason", fr}};
    pick(choice, wc, TG_ARRAY_LEN(wc));
    text_of(m, &text);
    if (delta.type == TG_JSON_OBJECT) {
        const struct want wd[] = {{"content", &content},
                                  {"reasoning_content", &rcontent},
                                  {"reasoning", &reasoning},
                                  {"tool_calls", &calls}};
        pick(&delta, wd, TG_ARRAY_LEN(wd));
        text_of(m, &content);
        text_of(m, &rcontent);
        text_of(m, &reasoning);
        if (calls.type == TG_JSON_ARRAY) {
            struct tg_json_iter it;
            tg_json_iter_init(&it, &calls);
            while (tg_json_next_elem(&it, &call)) {
                text_at(m, &call, "function.name");
                text_at(m, &call, "function.arguments");
            }
        }
    }
    return fr->type == TG_JSON_STRING;
}

static enum tg_ev_kind chat_event(struct tg_stream_meter *m, const struct tg_jv *root)
{
    struct tg_jv err, usage, choices, id, model, created, choice, fr;
    const struct want w[] = {{"error", &err}, {"usage", &usage}, {"choices", &choices},
                             {"id", &id},     {"model", &model}, {"created", &created}};
    pick(root, w, TG_ARRAY_LEN(w));
    if (truthy(&err))
        return TG_EV_ERROR;
    set_meta(m, &id, &model, &created);
    bool has_usage_obj = usage.type == TG_JSON_OBJECT;
    if (has_usage_obj && map_openai(m->route, &usage, &m->usage))
        m->has_output_usage = true;
    if (choices.type != TG_JSON_ARRAY)
        return TG_EV_OTHER;
    struct tg_json_iter it;
    tg_json_iter_init(&it, &choices);
    size_t n = 0;
    bool finish = false;
    while (tg_json_next_elem(&it, &choice)) {
        n++;
        if (choice.type != TG_JSON_OBJECT || !chat_choice(m, &choice, &fr))
            continue;
        if (!finish && m->finish_reason[0] == '\0')
            copy_str(&fr, m->finish_reason, sizeof(m->finish_reason), true);
        finish = true;
    }
    if (n == 0)
        return has_usage_obj ? TG_EV_USAGE_ONLY : TG_EV_OTHER;
    return finish ? TG_EV_FINISH : TG_EV_CONTENT;
}

static bool nonempty_string(const struct tg_jv *v)
{
    return v->type == TG_JSON_STRING && v->n > 2;
}

static bool choice_has_content(const struct tg_jv *choice)
{
    struct tg_jv text, delta, content, rcontent, reasoning, calls, first;
    const struct want wc[] = {{"delta", &delta}, {"text", &text}};
    pick(choice, wc, TG_ARRAY_LEN(wc));
    if (nonempty_string(&text))
        return true;
    const struct want wd[] = {{"content", &content},
                              {"reasoning_content", &rcontent},
                              {"reasoning", &reasoning},
                              {"tool_calls", &calls}};
    pick(&delta, wd, TG_ARRAY_LEN(wd));
    return nonempty_string(&content) || nonempty_string(&rcontent) || nonempty_string(&reasoning) ||
           (calls.type == TG_JSON_ARRAY && tg_json_at(&calls, 0, &first));
}

bool tg_usage_chunk_has_content(const char *json, size_t len)
{
    struct tg_jv root, choices, choice;
    if (tg_json_parse(json, len, &root, NULL) != 0 || !tg_json_get(&root, "choices", &choices) ||
        choices.type != TG_JSON_ARRAY)
        return false;
    struct tg_json_iter it;
    tg_json_iter_init(&it, &choices);
    while (tg_json_next_elem(&it, &choice))
        if (choice.type == TG_JSON_OBJECT && choice_has_content(&choice))
            return true;
    return false;
}

/* ---- Responses API and Anthropic Messages (named events) -------------------------------- */

/* The members of a named event's data that the classification looks at. */
struct named {
    struct tg_jv type, error, response, message, usage, delta, content_block;
};

static enum tg_ev_kind responses_event(struct tg_stream_meter *m, const char *type, size_t type_len,
                                       const struct named *d)
{
    struct tg_jv usage, status;
    if (type_is(type, type_len, "error") || truthy(&d->error))
        return TG_EV_ERROR;
    bool completed = type_is(type, type_len, "response.completed");
    bool incomplete = type_is(type, type_len, "response.incomplete");
    bool failed = type_is(type, type_len, "response.failed");
    if (d->response.type == TG_JSON_OBJECT)
        capture_meta(m, &d->response, "created_at");
    if (completed || incomplete || failed) {
        m->saw_terminal = true;
        if (failed)
            m->saw_error = true;
        const struct want w[] = {{"usage", &usage}, {"status", &status}};
        pick(&d->response, w, TG_ARRAY_LEN(w));
        if (usage.type == TG_JSON_OBJECT && map_responses(&usage, &m->usage))
            m->has_output_usage = true;
        copy_str(&status, m->finish_reason, sizeof(m->finish_reason), true);
        return TG_EV_TERMINAL;
    }
    if (type_is(type, type_len, "response.output_text.delta") ||
        type_is(type, type_len, "response.reasoning_summary_text.delta") ||
        type_is(type, type_len, "response.reasoning_text.delta") ||
        type_is(type, type_len, "response.function_call_arguments.delta")) {
        text_of(m, &d->delta);
        return TG_EV_CONTENT;
    }
    return TG_EV_OTHER;
}

static void anthropic_update(struct tg_stream_meter *m)
{
    anthropic_compose(m->a_input, m->a_cache_read, m->a_cache_creation, m->a_output, &m->usage);
}

/* Reads the Anthropic counts present (non-null) in u; returns which of input/output were. */
static void anthropic_counts(struct tg_stream_meter *m, const struct tg_jv *u, bool *in, bool *out)
{
    *in = get_count(u, "input_tokens", &m->a_input);
    *out = get_count(u, "output_tokens", &m->a_output);
    (void)get_count(u, "cache_read_input_tokens", &m->a_cache_read);
    (void)get_count(u, "cache_creation_input_tokens", &m->a_cache_creation);
}

static enum tg_ev_kind messages_event(struct tg_stream_meter *m, const char *type, size_t type_len,
                                      const struct named *d)
{
    struct tg_jv usage, stop, dtype, text, partial, thinking;
    bool in, out;
    if (type_is(type, type_len, "error") || truthy(&d->error))
        return TG_EV_ERROR;
    if (type_is(type, type_len, "message_start")) {
        if (d->message.type == TG_JSON_OBJECT) {
            capture_meta(m, &d->message, "created");
            const struct want w[] = {{"usage", &usage}};
            pick(&d->message, w, TG_ARRAY_LEN(w));
            if (usage.type == TG_JSON_OBJECT) {
                anthropic_counts(m, &usage, &in, &out);
                if (in || out)
                    anthropic_update(m);
            }
        }
        return TG_EV_OTHER;
    }
    if (type_is(type, type_len, "message_delta")) {
        if (d->usage.type == TG_JSON_OBJECT) {
            anthropic_counts(m, &d->usage, &in, &out);
            if (out)
                m->has_output_usage = true;
            if (in || out)
                anthropic_update(m);
        }
        const struct want w[] = {{"stop_reason", &stop}};
        pick(&d->delta, w, TG_ARRAY_LEN(w));
        if (stop.type == TG_JSON_STRING) {
            copy_str(&stop, m->finish_reason, sizeof(m->finish_reason), true);
            return TG_EV_FINISH;
        }
        return TG_EV_OTHER;
    }
    if (type_is(type, type_len, "content_block_start")) {
        text_at(m, &d->content_block, "text");
        text_at(m, &d->content_block, "name");
        return TG_EV_CONTENT;
    }
    if (type_is(type, type_len, "content_block_delta")) {
        const struct want w[] = {
            {"type", &dtype}, {"text", &text}, {"partial_json", &partial}, {"thinking", &thinking}};
        pick(&d->delta, w, TG_ARRAY_LEN(w));
        if (tg_json_string_eq(&dtype, "text_delta", 10))
            text_of(m, &text);
        else if (tg_json_string_eq(&dtype, "input_json_delta", 16))
            text_of(m, &partial);
        else if (tg_json_string_eq(&dtype, "thinking_delta", 14))
            text_of(m, &thinking);
        return TG_EV_CONTENT;
    }
    if (type_is(type, type_len, "content_block_stop"))
        return TG_EV_CONTENT;
    if (type_is(type, type_len, "message_stop")) {
        m->saw_terminal = true;
        return TG_EV_TERMINAL;
    }
    return TG_EV_OTHER;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

void tg_stream_meter_init(struct tg_stream_meter *m, enum tg_route route)
{
    memset(m, 0, sizeof(*m));
    m->route = route;
}

static enum tg_ev_kind classify(struct tg_stream_meter *m, const char *event, size_t event_len,
                                const char *data, size_t data_len)
{
    if (data_len >= 6 && memcmp(data, "[DONE]", 6) == 0) {
        m->saw_done = true;
        return TG_EV_DONE;
    }
    bool named = m->route == TG_ROUTE_RESPONSES || m->route == TG_ROUTE_MESSAGES;
    /* The Anthropic SDK skips ping events before looking at their data. */
    if (m->route == TG_ROUTE_MESSAGES && type_is(event, event_len, "ping"))
        return TG_EV_OTHER;
    /* openai-node v7 and the Anthropic SDK throw on `event: error` whatever the data. */
    if (type_is(event, event_len, "error"))
        return TG_EV_ERROR;
    struct tg_jv root;
    if (tg_json_parse(data, data_len, &root, NULL) != 0)
        return TG_EV_INVALID;
    if (root.type != TG_JSON_OBJECT)
        return TG_EV_OTHER;
    if (!named)
        return chat_event(m, &root);
    struct named d;
    const struct want w[] = {{"type", &d.type},
                             {"error", &d.error},
                             {"response", &d.response},
                             {"message", &d.message},
                             {"usage", &d.usage},
                             {"delta", &d.delta},
                             {"content_block", &d.content_block}};
    pick(&root, w, TG_ARRAY_LEN(w));
    /* The data's "type" names the event; the SSE event name is the fallback. */
    char tbuf[64];
    const char *type = event;
    size_t type_len = event_len;
    if (d.type.type == TG_JSON_STRING) {
        ssize_t n = tg_json_string_copy(&d.type, tbuf, sizeof(tbuf));
        type = tbuf;
        type_len = n < 0 ? 0 : (size_t)n;
    }
    if (m->route == TG_ROUTE_RESPONSES)
        return responses_event(m, type, type_len, &d);
    return messages_event(m, type, type_len, &d);
}

enum tg_ev_kind tg_stream_meter_event(struct tg_stream_meter *m, const char *event,
                                      size_t event_len, const char *data, size_t data_len)
{
    if (event == NULL)
        event = "";
    if (data == NULL)
        data = "";
    enum tg_ev_kind k = classify(m, event, event_len, data, data_len);
    if (k == TG_EV_ERROR)
        m->saw_error = true;
    m->saw_any = true;
    m->events++;
    return k;
}
