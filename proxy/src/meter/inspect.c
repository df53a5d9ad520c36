/* inspect.c: request bodies: validation, metering fields, prompt text and byte-spliced rewrites. */
#include "meter/inspect.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"
#include "meter/notice.h"

static bool is_metered(enum tg_route route)
{
    return route >= TG_ROUTE_CHAT && route <= TG_ROUTE_MESSAGES;
}

TG_PRINTF(3, 4) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Looks up several keys in one pass over obj: out[i] is the last occurrence of keys[i], or
 * type TG_JSON_NONE. Request bodies can be megabytes, so the root is walked once, not per key. */
static void get_many(const struct tg_jv *obj, const char *const *keys, size_t n_keys,
                     struct tg_jv *out)
{
    for (size_t i = 0; i < n_keys; i++)
        out[i] = (struct tg_jv){.p = NULL, .n = 0, .type = TG_JSON_NONE};
    if (obj->type != TG_JSON_OBJECT)
        return;
    struct tg_json_iter it;
    struct tg_jv k, v;
    tg_json_iter_init(&it, obj);
    while (tg_json_next_member(&it, &k, &v))
        for (size_t i = 0; i < n_keys; i++)
            if (tg_json_key_is(&k, keys[i]))
                out[i] = v;
}

static bool is_set(const struct tg_jv *v)
{
    return v->type != TG_JSON_NONE && v->type != TG_JSON_NULL;
}

/* ---- parse ---------------------------------------------------------------------------------- */

enum {
    K_MODEL,
    K_STREAM,
    K_STREAM_OPTIONS,
    K_USER,
    K_METADATA,
    K_MAX_TOKENS,
    K_MAX_COMPLETION_TOKENS,
    K_MAX_OUTPUT_TOKENS,
    K_N,
    K_MESSAGES,
    K_PROMPT,
    K_INPUT,
    K_COUNT
};

static const char *const parse_keys[K_COUNT] = {
    [K_MODEL] = "model",
    [K_STREAM] = "stream",
    [K_STREAM_OPTIONS] = "stream_options",
    [K_USER] = "user",
    [K_METADATA] = "metadata",
    [K_MAX_TOKENS] = "max_tokens",
    [K_MAX_COMPLETION_TOKENS] = "max_completion_tokens",
    [K_MAX_OUTPUT_TOKENS] = "max_output_tokens",
    [K_N] = "n",
    [K_MESSAGES] = "messages",
    [K_PROMPT] = "prompt",
    [K_INPUT] = "input",
};

static int parse_model(const struct tg_jv *v, enum tg_route route, struct tg_req_info *out,
                       char *err, size_t errlen)
{
    if (v->type == TG_JSON_NONE) {
        if (is_metered(route))
            return fail(err, errlen, "'model' is required");
        return 0;
    }
    if (v->type != TG_JSON_STRING)
        return fail(err, errlen, "'model' must be a string");
    ssize_t n = tg_json_string_copy(v, out->model, sizeof(out->model) - 1);
    if (n < 0)
        return fail(err, errlen, "'model' must be at most %zu bytes", sizeof(out->model) - 1);
    if (n == 0)
        return fail(err, errlen, "'model' must not be empty");
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out->model[i];
        if (c < 0x20 || c == 0x7F)
            return fail(err, errlen, "'model' must not contain control characters");
    }
    out->model[n] = '\0';
    out->has_model = true;
    return 0;
}

static void parse_user(const struct tg_jv *f, enum tg_route route, struct tg_req_info *out)
{
    struct tg_jv v = f[K_USER];
    if (route == TG_ROUTE_MESSAGES &&
        (f[K_METADATA].type != TG_JSON_OBJECT || !tg_json_get(&f[K_METADATA], "user_id", &v)))
        return;
    if (!is_set(&v))
        return;
    out->has_user = true;
    if (v.type != TG_JSON_STRING)
        return;
    ssize_t n = tg_json_string_copy(&v, out->user, sizeof(out->user) - 1);
    if (n > 0) {
        out->user_len = (size_t)n;
        out->user[n] = '\0';
    } else {
        out->user[0] = '\0';
    }
}

static int parse_counts(const struct tg_jv *f, enum tg_route route, struct tg_req_info *out,
                        char *err, size_t errlen)
{
    static const int chat_keys[] = {K_MAX_TOKENS, K_MAX_COMPLETION_TOKENS, -1};
    static const int max_tokens_keys[] = {K_MAX_TOKENS, -1};
    static const int responses_keys[] = {K_MAX_OUTPUT_TOKENS, -1};
    static const int no_keys[] = {-1};
    const int *keys = no_keys;
    switch (route) {
    case TG_ROUTE_CHAT:
        keys = chat_keys;
        break;
    case TG_ROUTE_COMPLETIONS:
    case TG_ROUTE_MESSAGES:
        keys = max_tokens_keys;
        break;
    case TG_ROUTE_RESPONSES:
        keys = responses_keys;
        break;
    default:
        break;
    }
    for (size_t i = 0; keys[i] >= 0; i++) {
        int64_t x;
        if (!is_set(&f[keys[i]]))
            continue;
        if (tg_json_int64(&f[keys[i]], &x) != 0 || x < 0)
            return fail(err, errlen, "'%s' must be a non-negative integer", parse_keys[keys[i]]);
        if (out->max_tokens < 0)
            out->max_tokens = x;
    }
    if ((route == TG_ROUTE_CHAT || route == TG_ROUTE_COMPLETIONS) && is_set(&f[K_N])) {
        int64_t x;
        if (tg_json_int64(&f[K_N], &x) != 0 || x < 1 || x > 128)
            return fail(err, errlen, "'n' must be an integer from 1 to 128");
        out->n = x;
    }
    return 0;
}

static bool is_string_or_array(const struct tg_jv *v)
{
    return v->type == TG_JSON_STRING || v->type == TG_JSON_ARRAY;
}

static int check_shapes(const struct tg_jv *f, enum tg_route route, char *err, size_t errlen)
{
    switch (route) {
    case TG_ROUTE_CHAT:
    case TG_ROUTE_MESSAGES:
        if (f[K_MESSAGES].type != TG_JSON_ARRAY)
            return fail(err, errlen, "'messages' must be an array");
        break;
    case TG_ROUTE_COMPLETIONS:
        if (is_set(&f[K_PROMPT]) && !is_string_or_array(&f[K_PROMPT]))
            return fail(err, errlen, "'prompt' must be a string or an array");
        break;
    case TG_ROUTE_EMBEDDINGS:
        if (!is_string_or_array(&f[K_INPUT]))
            return fail(err, errlen, "'input' must be a string or an array");
        break;
    case TG_ROUTE_RESPONSES:
        if (is_set(&f[K_INPUT]) && !is_string_or_array(&f[K_INPUT]))
            return fail(err, errlen, "'input' must be a string or an array");
        break;
    default:
        break;
    }
    return 0;
}

int tg_inspect_parse(enum tg_route route, const char *body, size_t len, struct tg_req_info *out,
                     char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->route = route;
    out->max_tokens = -1;
    out->n = 1;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (len == 0 && !is_metered(route))
        return 0;
    if (len == 0)
        return fail(err, errlen, "request body is empty");
    struct tg_jv root, f[K_COUNT], v;
    if (tg_json_parse(body, len, &root, NULL) != 0)
        return fail(err, errlen, "request body is not valid JSON");
    if (root.type != TG_JSON_OBJECT)
        return fail(err, errlen, "request body must be a JSON object");
    get_many(&root, parse_keys, K_COUNT, f);
    if (parse_model(&f[K_MODEL], route, out, err, errlen) != 0)
        return -1;
    if (f[K_STREAM].type == TG_JSON_TRUE)
        out->stream = true;
    else if (is_set(&f[K_STREAM]) && f[K_STREAM].type != TG_JSON_FALSE)
        return fail(err, errlen, "'stream' must be a boolean");
    if (f[K_STREAM_OPTIONS].type == TG_JSON_OBJECT &&
        tg_json_get(&f[K_STREAM_OPTIONS], "include_usage", &v) && tg_json_is_true(&v))
        out->client_include_usage = true;
    parse_user(f, route, out);
    if (parse_counts(f, route, out, err, errlen) != 0)
        return -1;
    return check_shapes(f, route, err, errlen);
}

/* ---- prompt text ---------------------------------------------------------------------------- */

struct emitter {
    tg_inspect_emit_fn emit;
    void *arg;
    int next_part; /* part code of the next non-empty piece */
};

static void on_piece(const char *p, size_t n, void *arg)
{
    struct emitter *e = arg;
    if (n == 0)
        return;
    e->emit(e->arg, p, n, e->next_part);
    e->next_part = TG_PROMPT_TEXT;
}

static void emit_string(struct emitter *e, const struct tg_jv *s)
{
    if (s->type != TG_JSON_STRING)
        return;
    e->next_part = TG_PROMPT_SEGMENT;
    tg_json_string_decode(s, on_piece, e);
}

static void emit_raw(struct emitter *e, const struct tg_jv *v)
{
    if (v->type != TG_JSON_NONE && v->type != TG_JSON_NULL && v->n > 0)
        e->emit(e->arg, v->p, v->n, TG_PROMPT_SEGMENT);
}

static void emit_message_start(struct emitter *e, const struct tg_jv *role)
{
    e->next_part = TG_PROMPT_MESSAGE;
    if (role != NULL && role->type == TG_JSON_STRING)
        tg_json_string_decode(role, on_piece, e);
    if (e->next_part == TG_PROMPT_MESSAGE)
        e->emit(e->arg, "", 0, TG_PROMPT_MESSAGE);
    e->next_part = TG_PROMPT_TEXT;
}

/* Strings, integer ids, or arrays of integer ids (completions prompt, embeddings input). */
static void emit_prompt_value(struct emitter *e, const struct tg_jv *v)
{
    if (v->type == TG_JSON_STRING) {
        emit_string(e, v);
        return;
    }
    if (v->type != TG_JSON_ARRAY)
        return;
    struct tg_json_iter it, inner;
    struct tg_jv el, id;
    size_t ids = 0;
    tg_json_iter_init(&it, v);
    while (tg_json_next_elem(&it, &el)) {
        if (el.type == TG_JSON_STRING) {
            emit_string(e, &el);
        } else if (el.type == TG_JSON_NUMBER) {
            ids++;
        } else if (el.type == TG_JSON_ARRAY) {
            tg_json_iter_init(&inner, &el);
            while (tg_json_next_elem(&inner, &id))
                if (id.type == TG_JSON_NUMBER)
                    ids++;
        }
    }
    if (ids > 0)
        e->emit(e->arg, NULL, ids, TG_PROMPT_TOKEN_IDS);
}

/* Message content: a string, or parts/blocks (text, refusal, tool_use, tool_result). */
static void emit_content(struct emitter *e, const struct tg_jv *c, int depth)
{
    if (c->type == TG_JSON_STRING) {
        emit_string(e, c);
        return;
    }
    if (c->type != TG_JSON_ARRAY)
        return;
    enum { TYPE, TEXT, REFUSAL, NAME, INPUT, CONTENT, N_KEYS };
    static const char *const keys[N_KEYS] = {"type", "text", "refusal", "name", "input", "content"};
    struct tg_json_iter it;
    struct tg_jv part, f[N_KEYS];
    tg_json_iter_init(&it, c);
    while (tg_json_next_elem(&it, &part)) {
        if (part.type == TG_JSON_STRING) {
            emit_string(e, &part);
            continue;
        }
        if (part.type != TG_JSON_OBJECT)
            continue;
        get_many(&part, keys, N_KEYS, f);
        if (tg_json_key_is(&f[TYPE], "thinking") || tg_json_key_is(&f[TYPE], "redacted_thinking"))
            continue; /* not part of the context the model reads back */
        emit_string(e, &f[TEXT]);
        emit_string(e, &f[REFUSAL]);
        if (tg_json_key_is(&f[TYPE], "tool_use")) {
            emit_string(e, &f[NAME]);
            emit_raw(e, &f[INPUT]);
        } else if (tg_json_key_is(&f[TYPE], "tool_result") && depth < 2) {
            emit_content(e, &f[CONTENT], depth + 1);
        }
    }
}

static void emit_call(struct emitter *e, const struct tg_jv *call)
{
    static const char *const keys[2] = {"name", "arguments"};
    struct tg_jv f[2];
    get_many(call, keys, 2, f);
    emit_string(e, &f[0]);
    emit_string(e, &f[1]);
}

/* One chat message, Responses input item or Anthropic message. */
static void emit_item(struct emitter *e, const struct tg_jv *item)
{
    enum { ROLE, NAME, CONTENT, TOOL_CALLS, FUNCTION_CALL, ARGUMENTS, OUTPUT, N_KEYS };
    static const char *const keys[N_KEYS] = {
        "role", "name", "content", "tool_calls", "function_call", "arguments", "output",
    };
    struct tg_jv f[N_KEYS], call, fn;
    if (item->type != TG_JSON_OBJECT)
        return;
    get_many(item, keys, N_KEYS, f);
    emit_message_start(e, &f[ROLE]);
    emit_string(e, &f[NAME]);
    emit_content(e, &f[CONTENT], 0);
    if (f[TOOL_CALLS].type == TG_JSON_ARRAY) {
        struct tg_json_iter it;
        tg_json_iter_init(&it, &f[TOOL_CALLS]);
        while (tg_json_next_elem(&it, &call))
            if (tg_json_get(&call, "function", &fn))
                emit_call(e, &fn);
    }
    if (f[FUNCTION_CALL].type == TG_JSON_OBJECT)
        emit_call(e, &f[FUNCTION_CALL]);
    emit_string(e, &f[ARGUMENTS]);  /* Responses function_call items */
    emit_content(e, &f[OUTPUT], 0); /* Responses function_call_output items */
}

static void emit_items(struct emitter *e, const struct tg_jv *arr)
{
    if (arr->type != TG_JSON_ARRAY)
        return;
    struct tg_json_iter it;
    struct tg_jv item;
    tg_json_iter_init(&it, arr);
    while (tg_json_next_elem(&it, &item))
        emit_item(e, &item);
}

void tg_inspect_prompt_text(enum tg_route route, const char *body, size_t len,
                            tg_inspect_emit_fn emit, void *arg)
{
    enum {
        TOOLS,
        FUNCTIONS,
        RESPONSE_FORMAT,
        MESSAGES,
        PROMPT,
        SUFFIX,
        INPUT,
        INSTRUCTIONS,
        SYSTEM,
        N_KEYS
    };
    static const char *const keys[N_KEYS] = {
        "tools",  "functions", "response_format", "messages", "prompt",
        "suffix", "input",     "instructions",    "system",
    };
    struct tg_jv root, f[N_KEYS], v;
    struct emitter e = {.emit = emit, .arg = arg, .next_part = TG_PROMPT_SEGMENT};
    if (tg_json_parse(body, len, &root, NULL) != 0 || root.type != TG_JSON_OBJECT)
        return;
    get_many(&root, keys, N_KEYS, f);
    switch (route) {
    case TG_ROUTE_CHAT:
        emit_raw(&e, &f[TOOLS]);
        emit_raw(&e, &f[FUNCTIONS]);
        if (tg_json_get(&f[RESPONSE_FORMAT], "json_schema", &v))
            emit_raw(&e, &v);
        emit_items(&e, &f[MESSAGES]);
        break;
    case TG_ROUTE_COMPLETIONS:
        emit_prompt_value(&e, &f[PROMPT]);
        emit_string(&e, &f[SUFFIX]);
        break;
    case TG_ROUTE_EMBEDDINGS:
        emit_prompt_value(&e, &f[INPUT]);
        break;
    case TG_ROUTE_RESPONSES:
        emit_string(&e, &f[INSTRUCTIONS]);
        emit_raw(&e, &f[TOOLS]);
        if (f[INPUT].type == TG_JSON_STRING) {
            emit_message_start(&e, NULL);
            emit_string(&e, &f[INPUT]);
        } else {
            emit_items(&e, &f[INPUT]);
        }
        break;
    case TG_ROUTE_MESSAGES:
        emit_content(&e, &f[SYSTEM], 0);
        emit_raw(&e, &f[TOOLS]);
        emit_items(&e, &f[MESSAGES]);
        break;
    default:
        break;
    }
}

static void count_messages(void *arg, const char *p, size_t n, int part)
{
    (void)p;
    (void)n;
    if (part == TG_PROMPT_MESSAGE)
        (*(size_t *)arg)++;
}

size_t tg_inspect_message_count(enum tg_route route, const char *body, size_t len)
{
    size_t count = 0;
    tg_inspect_prompt_text(route, body, len, count_messages, &count);
    return count;
}

/* ---- splicing ------------------------------------------------------------------------------- */

int tg_inspect_splice(const char *src, size_t len, struct tg_splice *edits, size_t n_edits,
                      struct tg_buf *out)
{
    /* insertion sort: stable, and linear for the nearly sorted lists built here */
    for (size_t i = 1; i < n_edits; i++) {
        struct tg_splice cur = edits[i];
        size_t j = i;
        while (j > 0 && edits[j - 1].off > cur.off) {
            edits[j] = edits[j - 1];
            j--;
        }
        edits[j] = cur;
    }
    size_t total = len, pos = 0;
    for (size_t i = 0; i < n_edits; i++) {
        if (edits[i].off < pos || edits[i].off > len || edits[i].del > len - edits[i].off)
            return -1;
        pos = edits[i].off + edits[i].del;
        total = total - edits[i].del + edits[i].ins_len;
    }
    if (tg_buf_reserve(out, total) != 0)
        return -1;
    pos = 0;
    char *dst = out->data + out->len;
    for (size_t i = 0; i < n_edits; i++) {
        memcpy(dst, src + pos, edits[i].off - pos);
        dst += edits[i].off - pos;
        if (edits[i].ins_len > 0)
            memcpy(dst, edits[i].ins, edits[i].ins_len);
        dst += edits[i].ins_len;
        pos = edits[i].off + edits[i].del;
    }
    memcpy(dst, src + pos, len - pos);
    out->len += total;
    out->data[out->len] = '\0';
    return 0;
}

/* ---- rewrite -------------------------------------------------------------------------------- */

/* Edits whose inserted bytes live in `text` (offsets, since text may move while growing). */
struct edit {
    size_t off;
    size_t del;
    size_t ins_off;
    size_t ins_len;
};

struct editor {
    const char *body;
    struct edit *v;
    size_t n;
    size_t cap;
    struct tg_buf text;    /* inserted bytes of all edits */
    struct tg_buf scratch; /* a decoded string being checked for notices */
    bool oom;
};

/* Records an edit replacing [off, off+del) with text[mark..text.len). */
static void push_edit(struct editor *ed, size_t off, size_t del, size_t mark)
{
    if (ed->oom)
        return;
    if (ed->n == ed->cap) {
        size_t cap = ed->cap ? ed->cap * 2 : 8;
        struct edit *nv = realloc(ed->v, cap * sizeof(*nv));
        if (nv == NULL) {
            ed->oom = true;
            return;
        }
        ed->v = nv;
        ed->cap = cap;
    }
    ed->v[ed->n++] =
        (struct edit){.off = off, .del = del, .ins_off = mark, .ins_len = ed->text.len - mark};
}

static void put(struct editor *ed, const char *s)
{
    if (!ed->oom && tg_buf_puts(&ed->text, s) != 0)
        ed->oom = true;
}

static void put_escaped(struct editor *ed, const char *s, size_t n)
{
    if (!ed->oom && tg_json_escape(&ed->text, s, n) != 0)
        ed->oom = true;
}

static bool object_is_empty(const struct tg_jv *obj)
{
    struct tg_json_iter it;
    struct tg_jv k, v;
    tg_json_iter_init(&it, obj);
    return !tg_json_next_member(&it, &k, &v);
}

static size_t off_of(const struct editor *ed, const struct tg_jv *v)
{
    return (size_t)(v->p - ed->body);
}

/* Starts a member in an insertion at the top of an object: a comma between members. */
static void member_sep(struct editor *ed, size_t mark)
{
    if (ed->text.len > mark)
        put(ed, ",");
}

/* Ends an insertion of members right after obj's '{'. */
static void finish_insert(struct editor *ed, const struct tg_jv *obj, size_t mark)
{
    if (ed->text.len == mark)
        return;
    if (!object_is_empty(obj))
        put(ed, ",");
    push_edit(ed, off_of(ed, obj) + 1, 0, mark);
}

static void replace_value(struct editor *ed, const struct tg_jv *v, size_t mark)
{
    push_edit(ed, off_of(ed, v), v->n, mark);
}

/* stream_options exists (the last one): merge include_usage into it or replace it. */
static void fix_include_usage(struct editor *ed, const struct tg_jv *so)
{
    struct tg_jv iu;
    size_t mark = ed->text.len;
    if (so->type != TG_JSON_OBJECT) {
        put(ed, "{\"include_usage\":true}");
        replace_value(ed, so, mark);
    } else if (!tg_json_get(so, "include_usage", &iu)) {
        put(ed, "\"include_usage\":true");
        finish_insert(ed, so, mark);
    } else if (iu.type != TG_JSON_TRUE) {
        put(ed, "true");
        replace_value(ed, &iu, mark);
    }
}

/* metadata exists on /v1/messages: fill in user_id when absent or null. */
static void fix_metadata(struct editor *ed, const struct tg_jv *md, const char *id, size_t id_len)
{
    struct tg_jv uid;
    size_t mark = ed->text.len;
    if (md->type == TG_JSON_NULL) {
        put(ed, "{\"user_id\":");
        put_escaped(ed, id, id_len);
        put(ed, "}");
        replace_value(ed, md, mark);
    } else if (md->type == TG_JSON_OBJECT) {
        if (!tg_json_get(md, "user_id", &uid)) {
            put(ed, "\"user_id\":");
            put_escaped(ed, id, id_len);
            finish_insert(ed, md, mark);
        } else if (uid.type == TG_JSON_NULL) {
            put_escaped(ed, id, id_len);
            replace_value(ed, &uid, mark);
        }
    }
}

static void scratch_emit(const char *p, size_t n, void *arg)
{
    struct editor *ed = arg;
    if (!ed->oom && tg_buf_append(&ed->scratch, p, n) != 0)
        ed->oom = true;
}

/* Replaces string s by its notice-free version when it holds a notice. */
static void strip_string(struct editor *ed, const struct tg_jv *s, bool keep_nonempty)
{
    static const char probe[] = "You have used";
    if (s->type != TG_JSON_STRING || ed->oom)
        return;
    const char *inner = s->p + 1;
    size_t n = s->n - 2;
    /* only a string with escapes can hide the notice's words from a byte search */
    if (memchr(inner, '\\', n) == NULL && memmem(inner, n, probe, sizeof(probe) - 1) == NULL)
        return;
    tg_buf_reset(&ed->scratch);
    tg_json_string_decode(s, scratch_emit, ed);
    if (ed->oom || ed->scratch.len == 0)
        return;
    size_t new_len = tg_notice_strip(ed->scratch.data, ed->scratch.len);
    if (new_len == ed->scratch.len || (new_len == 0 && keep_nonempty))
        return;
    size_t mark = ed->text.len;
    put_escaped(ed, ed->scratch.data, new_len);
    replace_value(ed, s, mark);
}

static void strip_content(struct editor *ed, const struct tg_jv *content, enum tg_route route)
{
    bool keep_nonempty = route == TG_ROUTE_MESSAGES;
    if (content->type == TG_JSON_STRING) {
        strip_string(ed, content, keep_nonempty);
        return;
    }
    if (content->type != TG_JSON_ARRAY)
        return;
    struct tg_json_iter it;
    struct tg_jv part, type, text;
    tg_json_iter_init(&it, content);
    while (tg_json_next_elem(&it, &part)) {
        if (part.type != TG_JSON_OBJECT || !tg_json_get(&part, "type", &type))
            continue;
        bool is_text = tg_json_key_is(&type, "text") ||
                       (route == TG_ROUTE_RESPONSES && tg_json_key_is(&type, "output_text"));
        if (is_text && tg_json_get(&part, "text", &text))
            strip_string(ed, &text, keep_nonempty);
    }
}

/* list: chat/messages `messages`, responses `input` */
static void strip_history(struct editor *ed, enum tg_route route, const struct tg_jv *list)
{
    static const char *const keys[2] = {"role", "content"};
    struct tg_jv item, f[2];
    if (list->type != TG_JSON_ARRAY)
        return;
    struct tg_json_iter it;
    tg_json_iter_init(&it, list);
    while (tg_json_next_elem(&it, &item)) {
        get_many(&item, keys, 2, f);
        if (tg_json_key_is(&f[0], "assistant"))
            strip_content(ed, &f[1], route);
    }
}

int tg_inspect_rewrite(enum tg_route route, const char *body, size_t len,
                       const struct tg_rewrite_opts *opts, struct tg_buf *out, bool *changed)
{
    enum { STREAM, STREAM_OPTIONS, USER, METADATA, MESSAGES, INPUT, N_KEYS };
    static const char *const keys[N_KEYS] = {
        "stream", "stream_options", "user", "metadata", "messages", "input",
    };
    struct tg_jv root, f[N_KEYS];
    *changed = false;
    if (tg_json_parse(body, len, &root, NULL) != 0 || root.type != TG_JSON_OBJECT)
        return -1;
    get_many(&root, keys, N_KEYS, f);
    struct editor ed = {.body = body};
    struct tg_splice *splices = NULL;
    int rc = -1;
    bool usage = opts->include_usage && (route == TG_ROUTE_CHAT || route == TG_ROUTE_COMPLETIONS) &&
                 f[STREAM].type == TG_JSON_TRUE;
    bool set_user = opts->user_id != NULL && is_metered(route);
    const struct tg_jv *so = &f[STREAM_OPTIONS], *user = &f[USER], *md = &f[METADATA];
    bool has_so = usage && so->type != TG_JSON_NONE;
    bool has_user = set_user && route != TG_ROUTE_MESSAGES && user->type != TG_JSON_NONE;
    bool has_md = set_user && route == TG_ROUTE_MESSAGES && md->type != TG_JSON_NONE;

    /* members new at the top level go in one insertion right after the root's '{' */
    size_t mark = ed.text.len;
    if (usage && !has_so) {
        member_sep(&ed, mark);
        put(&ed, "\"stream_options\":{\"include_usage\":true}");
    }
    if (set_user && route == TG_ROUTE_MESSAGES && !has_md) {
        member_sep(&ed, mark);
        put(&ed, "\"metadata\":{\"user_id\":");
        put_escaped(&ed, opts->user_id, opts->user_id_len);
        put(&ed, "}");
    } else if (set_user && route != TG_ROUTE_MESSAGES && !has_user) {
        member_sep(&ed, mark);
        put(&ed, "\"user\":");
        put_escaped(&ed, opts->user_id, opts->user_id_len);
    }
    finish_insert(&ed, &root, mark);

    /* edits inside existing values */
    if (has_so)
        fix_include_usage(&ed, so);
    if (has_md)
        fix_metadata(&ed, md, opts->user_id, opts->user_id_len);
    if (has_user && user->type == TG_JSON_NULL) {
        mark = ed.text.len;
        put_escaped(&ed, opts->user_id, opts->user_id_len);
        replace_value(&ed, user, mark);
    }
    if (opts->strip_notice && route == TG_ROUTE_RESPONSES)
        strip_history(&ed, route, &f[INPUT]);
    else if (opts->strip_notice && (route == TG_ROUTE_CHAT || route == TG_ROUTE_MESSAGES))
        strip_history(&ed, route, &f[MESSAGES]);
    if (ed.oom)
        goto out;
    if (ed.n > 0) {
        splices = calloc(ed.n, sizeof(*splices));
        if (splices == NULL)
            goto out;
        for (size_t i = 0; i < ed.n; i++)
            splices[i] = (struct tg_splice){.off = ed.v[i].off,
                                            .del = ed.v[i].del,
                                            .ins = ed.text.data + ed.v[i].ins_off,
                                            .ins_len = ed.v[i].ins_len};
        if (tg_inspect_splice(body, len, splices, ed.n, out) != 0)
            goto out;
        *changed = true;
    }
    rc = 0;
out:
    free(splices);
    free(ed.v);
    tg_buf_cleanup(&ed.text);
    tg_buf_cleanup(&ed.scratch);
    return rc;
}
