/* body_scan.c: byte-at-a-time tracking of a JSON reply's top-level members and captures. */
#include "meter/body_scan.h"

#include <string.h>

#include "core/json_scan.h"
#include "meter/usage.h"

enum phase {
    PH_BEFORE = 0, /* before the root value */
    PH_ROOT,       /* inside the root object */
    PH_DONE,       /* the root object closed */
    PH_OTHER,      /* the root is not an object, or the structure broke: stop */
};

enum top {
    TP_KEY_OR_END = 0, /* after '{' or ',' */
    TP_KEY,            /* inside a member name */
    TP_COLON,          /* after a member name */
    TP_VALUE,          /* after ':' */
    TP_IN_VALUE,       /* inside a member value */
    TP_AFTER_VALUE,    /* after a member value */
};

enum target { T_NONE = 0, T_USAGE, T_ERROR, T_ID, T_MODEL };

enum vkind { VK_STRING = 0, VK_CONTAINER, VK_SCALAR };

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static struct tg_body_value *value_of(struct tg_body_scan *s)
{
    return s->target == T_USAGE ? &s->usage : &s->error;
}

static void capture(struct tg_body_scan *s, const char *p, size_t n)
{
    if (n == 0)
        return;
    switch (s->target) {
    case T_USAGE:
    case T_ERROR: {
        struct tg_body_value *v = value_of(s);
        if (v->truncated)
            return;
        if (n > TG_BODY_SCAN_MAX_VALUE_BYTES - v->raw.len || tg_buf_append(&v->raw, p, n) != 0)
            v->truncated = true;
        return;
    }
    case T_ID:
    case T_MODEL:
        if (s->str_long)
            return;
        if (n > sizeof(s->str) - s->str_len) {
            s->str_long = true;
            return;
        }
        memcpy(s->str + s->str_len, p, n);
        s->str_len += n;
        return;
    default:
        return;
    }
}

static enum target key_target(const struct tg_body_scan *s)
{
    struct tg_jv key;
    if (s->key_long || tg_json_parse(s->key, s->key_len, &key, NULL) != 0 ||
        key.type != TG_JSON_STRING)
        return T_NONE;
    if (tg_json_key_is(&key, "usage"))
        return T_USAGE;
    if (tg_json_key_is(&key, "error"))
        return T_ERROR;
    if (tg_json_key_is(&key, "id"))
        return T_ID;
    if (tg_json_key_is(&key, "model"))
        return T_MODEL;
    return T_NONE;
}

static void begin_value(struct tg_body_scan *s)
{
    s->target = (uint8_t)key_target(s);
    switch (s->target) {
    case T_USAGE:
    case T_ERROR: {
        struct tg_body_value *v = value_of(s);
        tg_buf_reset(&v->raw);
        v->seen = true;
        v->complete = false;
        v->truncated = false;
        break;
    }
    case T_ID:
        s->id[0] = '\0';
        s->str_len = 0;
        s->str_long = false;
        break;
    case T_MODEL:
        s->model[0] = '\0';
        s->str_len = 0;
        s->str_long = false;
        break;
    default:
        break;
    }
}

static void end_value(struct tg_body_scan *s)
{
    struct tg_jv v;
    switch (s->target) {
    case T_USAGE:
    case T_ERROR:
        value_of(s)->complete = true;
        break;
    case T_ID:
    case T_MODEL: {
        char *dst = s->target == T_ID ? s->id : s->model;
        size_t cap = s->target == T_ID ? sizeof(s->id) : sizeof(s->model);
        if (s->str_long || s->vkind != VK_STRING ||
            tg_json_parse(s->str, s->str_len, &v, NULL) != 0 || v.type != TG_JSON_STRING)
            break;
        ssize_t n = tg_json_string_copy(&v, dst, cap - 1);
        dst[n < 0 ? 0 : n] = '\0';
        break;
    }
    default:
        break;
    }
    s->target = T_NONE;
}

/* Consumes bytes of the current member value from p[*i]; returns true when it ended. */
static bool scan_value(struct tg_body_scan *s, const char *p, size_t n, size_t *i)
{
    size_t k = *i;
    bool ended = false;
    switch (s->vkind) {
    case VK_STRING:
        for (; k < n; k++) {
            char c = p[k];
            if (s->esc) {
                s->esc = false;
            } else if (c == '\\') {
                s->esc = true;
            } else if (c == '"') {
                k++;
                ended = true;
                break;
            }
        }
        break;
    case VK_CONTAINER:
        for (; k < n; k++) {
            char c = p[k];
            if (s->in_str) {
                if (s->esc)
                    s->esc = false;
                else if (c == '\\')
                    s->esc = true;
                else if (c == '"')
                    s->in_str = false;
            } else if (c == '"') {
                s->in_str = true;
            } else if (c == '{' || c == '[') {
                s->depth++;
            } else if ((c == '}' || c == ']') && --s->depth == 0) {
                k++;
                ended = true;
                break;
            }
        }
        break;
    default: /* VK_SCALAR: ends before the byte that follows it */
        for (; k < n; k++) {
            char c = p[k];
            if (is_ws(c) || c == ',' || c == '}' || c == ']') {
                ended = true;
                break;
            }
        }
        break;
    }
    capture(s, p + *i, k - *i);
    *i = k;
    return ended;
}

void tg_body_scan_init(struct tg_body_scan *s)
{
    memset(s, 0, sizeof(*s));
}

void tg_body_scan_feed(struct tg_body_scan *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s->phase == PH_DONE || s->phase == PH_OTHER)
            return;
        char c = p[i];
        if (s->phase == PH_BEFORE) {
            if (is_ws(c)) {
                i++;
            } else if (c == '{') {
                s->phase = PH_ROOT;
                s->top = TP_KEY_OR_END;
                i++;
            } else {
                s->phase = PH_OTHER;
            }
            continue;
        }
        switch (s->top) {
        case TP_KEY_OR_END:
            if (is_ws(c)) {
                i++;
            } else if (c == '"') {
                s->key[0] = c;
                s->key_len = 1;
                s->key_long = false;
                s->esc = false;
                s->top = TP_KEY;
                i++;
            } else if (c == '}') {
                s->phase = PH_DONE;
                i++;
            } else {
                s->phase = PH_OTHER;
            }
            break;
        case TP_KEY:
            if (s->key_len < sizeof(s->key))
                s->key[s->key_len++] = c;
            else
                s->key_long = true;
            i++;
            if (s->esc)
                s->esc = false;
            else if (c == '\\')
                s->esc = true;
            else if (c == '"')
                s->top = TP_COLON;
            break;
        case TP_COLON:
            if (is_ws(c)) {
                i++;
            } else if (c == ':') {
                s->top = TP_VALUE;
                i++;
            } else {
                s->phase = PH_OTHER;
            }
            break;
        case TP_VALUE:
            if (is_ws(c)) {
                i++;
                break;
            }
            if (c == '}' || c == ']' || c == ',' || c == ':') {
                s->phase = PH_OTHER;
                break;
            }
            begin_value(s);
            s->esc = false;
            s->in_str = false;
            s->depth = 0;
            if (c == '"') {
                s->vkind = VK_STRING;
                capture(s, p + i, 1);
                i++;
            } else {
                s->vkind = (c == '{' || c == '[') ? VK_CONTAINER : VK_SCALAR;
            }
            s->top = TP_IN_VALUE;
            break;
        case TP_IN_VALUE:
            if (scan_value(s, p, n, &i)) {
                end_value(s);
                s->top = TP_AFTER_VALUE;
            }
            break;
        default: /* TP_AFTER_VALUE */
            if (is_ws(c)) {
                i++;
            } else if (c == ',') {
                s->top = TP_KEY_OR_END;
                i++;
            } else if (c == '}') {
                s->phase = PH_DONE;
                i++;
            } else {
                s->phase = PH_OTHER;
            }
            break;
        }
    }
}

bool tg_body_scan_is_complete(const struct tg_body_scan *s)
{
    return s->phase == PH_DONE;
}

bool tg_body_scan_usage(const struct tg_body_scan *s, enum tg_route route, struct tg_usage *out)
{
    memset(out, 0, sizeof(*out));
    const struct tg_body_value *v = &s->usage;
    if (!v->seen || !v->complete || v->truncated || v->raw.data == NULL)
        return false;
    return tg_usage_from_json(route, v->raw.data, v->raw.len, out) == 0;
}

bool tg_body_scan_error(const struct tg_body_scan *s, const char **json, size_t *len)
{
    const struct tg_body_value *v = &s->error;
    if (!v->seen || !v->complete || v->truncated || v->raw.data == NULL) {
        *json = NULL;
        *len = 0;
        return false;
    }
    *json = v->raw.data;
    *len = v->raw.len;
    return true;
}

void tg_body_scan_cleanup(struct tg_body_scan *s)
{
    if (s == NULL)
        return;
    tg_buf_cleanup(&s->usage.raw);
    tg_buf_cleanup(&s->error.raw);
    memset(s, 0, sizeof(*s));
}
