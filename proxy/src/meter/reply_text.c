/* reply_text.c: see reply_text.h. A JSON lexer that follows the whole structure (objects and
 * arrays, member names, strings with escapes, scalars) one byte at a time, keeping only a
 * container-kind bit per depth and the member name being read. */
#include "meter/reply_text.h"

#include <string.h>

enum lex {
    L_VALUE = 0,    /* a value is expected */
    L_VALUE_OR_END, /* after '[': a value or ']' */
    L_KEY_OR_END,   /* after '{': a member name or '}' */
    L_KEY,          /* after ',' in an object: a member name */
    L_COLON,        /* after a member name */
    L_AFTER,        /* after a value: ',' or the container's end */
    L_STR,          /* inside a string */
    L_ESC,          /* after a backslash in a string */
    L_HEX,          /* inside a \u escape (four hex digits) */
    L_SCALAR,       /* inside a number or literal */
};

static const char *const text_names[] = {
    "content", "text", "refusal", "reasoning_content", "reasoning", "name", "arguments",
};

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void tg_reply_text_init(struct tg_reply_text *t, enum tg_route route, tg_reply_text_fn emit,
                        void *arg)
{
    memset(t, 0, sizeof(*t));
    t->emit = emit;
    t->arg = arg;
    switch (route) {
    case TG_ROUTE_CHAT:
    case TG_ROUTE_COMPLETIONS:
        t->top_key = "choices";
        break;
    case TG_ROUTE_RESPONSES:
        t->top_key = "output";
        break;
    case TG_ROUTE_MESSAGES:
        t->top_key = "content";
        break;
    default:
        t->dead = true;
        break;
    }
    t->state = L_VALUE;
}

static bool key_is(const struct tg_reply_text *t, const char *name)
{
    size_t n = strlen(name);
    return !t->key_long && t->key_len == n && memcmp(t->key, name, n) == 0;
}

static bool in_object(const struct tg_reply_text *t)
{
    return t->depth > 0 && (t->is_obj >> (t->depth - 1) & 1) != 0;
}

static void after_value(struct tg_reply_text *t)
{
    t->state = L_AFTER;
    if (t->depth == 1)
        t->in_top = false; /* a member of the root ended */
    if (t->depth == 0)
        t->dead = true; /* the root value ended: nothing more to read */
}

static void push(struct tg_reply_text *t, bool obj)
{
    if (t->depth >= TG_REPLY_TEXT_MAX_DEPTH) {
        t->dead = true;
        return;
    }
    if (t->depth == 0 && !obj) {
        t->dead = true; /* the root must be an object */
        return;
    }
    t->depth++;
    if (obj)
        t->is_obj |= (uint64_t)1 << (t->depth - 1);
    else
        t->is_obj &= ~((uint64_t)1 << (t->depth - 1));
    t->state = obj ? L_KEY_OR_END : L_VALUE_OR_END;
}

static void pop(struct tg_reply_text *t, char c)
{
    if (t->depth == 0 || in_object(t) != (c == '}')) {
        t->dead = true;
        return;
    }
    t->depth--;
    after_value(t);
}

/* Emits one code point as UTF-8. */
static void emit_cp(struct tg_reply_text *t, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18);
        b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    t->emit(t->arg, b, n);
}

/* A high surrogate not followed by its low half becomes U+FFFD (as decoders do). */
static void flush_high(struct tg_reply_text *t)
{
    if (t->high != 0 && t->str_emits)
        emit_cp(t, 0xFFFD);
    t->high = 0;
}

static void begin_string(struct tg_reply_text *t, bool is_key, bool member_value)
{
    t->str_is_key = is_key;
    t->str_emits = !is_key && member_value && t->in_top && t->depth >= 2 && t->key_wanted;
    t->high = 0;
    if (is_key) {
        t->key_len = 0;
        t->key_long = false;
    }
    t->state = L_STR;
}

static void end_key(struct tg_reply_text *t)
{
    if (t->depth == 1) {
        t->key_top = key_is(t, t->top_key);
    } else {
        t->key_wanted = false;
        for (size_t i = 0; i < TG_ARRAY_LEN(text_names); i++)
            if (key_is(t, text_names[i]))
                t->key_wanted = true;
    }
    t->state = L_COLON;
}

/* Consumes string bytes from p[*i]: plain runs are emitted (or copied into key[]) in one piece. */
static void scan_string(struct tg_reply_text *t, const char *p, size_t n, size_t *i)
{
    size_t k = *i;
    while (k < n && p[k] != '"' && p[k] != '\\')
        k++;
    if (k > *i) {
        if (t->str_is_key) {
            size_t len = k - *i;
            if (t->key_long || len > sizeof(t->key) - t->key_len) {
                t->key_long = true;
            } else {
                memcpy(t->key + t->key_len, p + *i, len);
                t->key_len = (uint8_t)(t->key_len + len);
            }
        } else if (t->str_emits) {
            flush_high(t);
            t->emit(t->arg, p + *i, k - *i);
        }
    }
    *i = k;
    if (k == n)
        return;
    *i = k + 1;
    if (p[k] == '\\') {
        if (t->str_is_key)
            t->key_long = true; /* escaped member names match nothing */
        t->state = L_ESC;
        return;
    }
    /* the closing quote */
    if (t->str_is_key) {
        end_key(t);
    } else {
        flush_high(t);
        after_value(t);
    }
}

static void escape(struct tg_reply_text *t, char c)
{
    static const char from[] = "\"\\/bfnrt";
    static const char to[] = "\"\\/\b\f\n\r\t";
    t->state = L_STR;
    if (c == 'u') {
        t->hex = 0;
        t->hex_n = 0;
        t->state = L_HEX;
        return;
    }
    const char *at = c != '\0' ? strchr(from, c) : NULL;
    if (at == NULL) {
        t->dead = true;
        return;
    }
    if (t->str_emits) {
        flush_high(t);
        t->emit(t->arg, &to[at - from], 1);
    }
}

static void hex_digit(struct tg_reply_text *t, char c)
{
    uint32_t v;
    if (c >= '0' && c <= '9')
        v = (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f')
        v = (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
        v = (uint32_t)(c - 'A' + 10);
    else {
        t->dead = true;
        return;
    }
    t->hex = t->hex << 4 | v;
    if (++t->hex_n < 4)
        return;
    t->state = L_STR;
    if (!t->str_emits)
        return;
    uint32_t u = t->hex;
    if (u >= 0xD800 && u <= 0xDBFF) {
        flush_high(t);
        t->high = u;
    } else if (u >= 0xDC00 && u <= 0xDFFF) {
        if (t->high != 0)
            emit_cp(t, 0x10000 + ((t->high - 0xD800) << 10) + (u - 0xDC00));
        else
            emit_cp(t, 0xFFFD);
        t->high = 0;
    } else {
        flush_high(t);
        emit_cp(t, u);
    }
}

void tg_reply_text_feed(struct tg_reply_text *t, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && !t->dead) {
        char c = p[i];
        switch (t->state) {
        case L_STR:
            scan_string(t, p, n, &i);
            continue;
        case L_ESC:
            escape(t, c);
            break;
        case L_HEX:
            hex_digit(t, c);
            break;
        case L_SCALAR:
            if (is_ws(c) || c == ',' || c == '}' || c == ']') {
                after_value(t);
                continue; /* L_AFTER takes this byte */
            }
            break;
        default:
            if (is_ws(c))
                break;
            switch (t->state) {
            case L_KEY_OR_END:
            case L_KEY:
                if (c == '"')
                    begin_string(t, true, false);
                else if (c == '}' && t->state == L_KEY_OR_END)
                    pop(t, c);
                else
                    t->dead = true;
                break;
            case L_COLON:
                if (c == ':') {
                    t->state = L_VALUE;
                    if (t->depth == 1)
                        t->in_top = t->key_top;
                    t->member_value = true;
                } else {
                    t->dead = true;
                }
                break;
            case L_AFTER:
                if (c == ',')
                    t->state = in_object(t) ? L_KEY : L_VALUE;
                else if (c == '}' || c == ']')
                    pop(t, c);
                else
                    t->dead = true;
                break;
            case L_VALUE_OR_END:
                if (c == ']') {
                    pop(t, c);
                    break;
                }
                t->state = L_VALUE; /* a value: this byte again */
                continue;
            default: /* L_VALUE */
                if (c == '"') {
                    begin_string(t, false, t->member_value);
                } else if (c == '{' || c == '[') {
                    push(t, c == '{');
                } else if (c == '}' || c == ']' || c == ',' || c == ':') {
                    t->dead = true;
                } else {
                    t->state = L_SCALAR;
                }
                t->member_value = false;
                break;
            }
            break;
        }
        i++;
    }
}
