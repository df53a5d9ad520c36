/* tok_chat.c: prompt tokens of a chat completions request body, as OpenAI bills them. */
#include "meter/tokenizer/tokenizer.h"

#include "core/json_scan.h"

#define TOKENS_PER_MESSAGE 3 /* <|start|>{role}<|message|>...<|end|> */
#define TOKENS_PER_NAME    1
#define TOKENS_REPLY       3 /* <|start|>assistant<|message|> primes the reply */

struct chat {
    struct tg_token_counter c; /* reused for every string */
    bool failed;               /* a count failed (allocation) */
};

static void emit(const char *p, size_t n, void *arg)
{
    tg_token_counter_feed(arg, p, n);
}

static int64_t finish(struct chat *ch)
{
    int64_t n = tg_token_counter_finish(&ch->c);
    if (n < 0) {
        ch->failed = true;
        return 0;
    }
    return n;
}

/* Tokens of a JSON string's decoded text (0 for any other value). */
static int64_t count_string(struct chat *c, const struct tg_jv *s)
{
    if (s->type != TG_JSON_STRING)
        return 0;
    tg_json_string_decode(s, emit, &c->c);
    return finish(c);
}

static int64_t count_raw(struct chat *c, const struct tg_jv *v)
{
    tg_token_counter_feed(&c->c, v->p, v->n);
    return finish(c);
}

static int64_t count_parts(struct chat *c, const struct tg_jv *parts)
{
    struct tg_json_iter it;
    struct tg_jv part, text;
    int64_t total = 0;
    tg_json_iter_init(&it, parts);
    while (tg_json_next_elem(&it, &part)) {
        if (part.type == TG_JSON_OBJECT && tg_json_get(&part, "text", &text))
            total += count_string(c, &text);
    }
    return total;
}

static int64_t count_tool_calls(struct chat *c, const struct tg_jv *calls)
{
    struct tg_json_iter it;
    struct tg_jv call, fn, v;
    int64_t total = 0;
    tg_json_iter_init(&it, calls);
    while (tg_json_next_elem(&it, &call)) {
        if (call.type != TG_JSON_OBJECT || !tg_json_get(&call, "function", &fn) ||
            fn.type != TG_JSON_OBJECT)
            continue;
        if (tg_json_get(&fn, "name", &v))
            total += count_string(c, &v);
        if (tg_json_get(&fn, "arguments", &v))
            total += count_string(c, &v);
    }
    return total;
}

static int64_t count_message(struct chat *c, const struct tg_jv *msg)
{
    struct tg_json_iter it;
    struct tg_jv key, value;
    int64_t total = TOKENS_PER_MESSAGE;
    if (msg->type != TG_JSON_OBJECT)
        return total;
    tg_json_iter_init(&it, msg);
    while (tg_json_next_member(&it, &key, &value)) {
        if (value.type == TG_JSON_STRING) {
            total += count_string(c, &value);
            if (tg_json_key_is(&key, "name"))
                total += TOKENS_PER_NAME;
        } else if (value.type == TG_JSON_ARRAY && tg_json_key_is(&key, "content")) {
            total += count_parts(c, &value);
        } else if (value.type == TG_JSON_ARRAY && tg_json_key_is(&key, "tool_calls")) {
            total += count_tool_calls(c, &value);
        }
    }
    return total;
}

int tg_tokens_count_chat(enum tg_encoding enc, const char *body, size_t len, int64_t *out)
{
    struct tg_jv root, messages, msg, defs;
    struct tg_json_iter it;
    struct chat c = {.failed = false};
    static const char *const def_keys[] = {"tools", "functions"};

    if (tg_json_parse(body, len, &root, NULL) != 0 || root.type != TG_JSON_OBJECT ||
        !tg_json_get(&root, "messages", &messages) || messages.type != TG_JSON_ARRAY)
        return -1;
    tg_token_counter_init(&c.c, enc);
    int64_t total = TOKENS_REPLY;
    tg_json_iter_init(&it, &messages);
    while (tg_json_next_elem(&it, &msg))
        total += count_message(&c, &msg);
    for (size_t k = 0; k < TG_ARRAY_LEN(def_keys); k++) {
        if (tg_json_get(&root, def_keys[k], &defs) && defs.type != TG_JSON_NULL)
            total += count_raw(&c, &defs);
    }
    tg_token_counter_cleanup(&c.c);
    if (c.failed)
        return -1;
    *out = total;
    return 0;
}
