/* json_scan.c: zero-allocation JSON validation and lookup. */
#include "core/json_scan.h"

#include <string.h>

/* ---- validation ------------------------------------------------------------------------ */

struct scan {
    const char *p;
    const char *end;
    const char *err;
};

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && is_ws(*s->p))
        s->p++;
}

static bool fail(struct scan *s)
{
    if (s->err == NULL)
        s->err = s->p;
    return false;
}

static bool hexval(char c, unsigned *v)
{
    if (c >= '0' && c <= '9')
        *v = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
        *v = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
        *v = (unsigned)(c - 'A' + 10);
    else
        return false;
    return true;
}

static bool scan_string(struct scan *s)
{
    /* s->p at the opening quote */
    s->p++;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return fail(s);
        if (c == '\\') {
            s->p++;
            if (s->p >= s->end)
                return fail(s);
            switch (*s->p) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                s->p++;
                break;
            case 'u': {
                s->p++;
                for (int i = 0; i < 4; i++) {
                    unsigned v;
                    if (s->p >= s->end || !hexval(*s->p, &v))
                        return fail(s);
                    s->p++;
                }
                break;
            }
            default:
                return fail(s);
            }
            continue;
        }
        s->p++;
    }
    return fail(s);
}

static bool scan_digits(struct scan *s)
{
    const char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start;
}

static bool scan_number(struct scan *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return fail(s);
    if (*s->p == '0') {
        s->p++;
    } else if (*s->p >= '1' && *s->p <= '9') {
        scan_digits(s);
    } else {
        return fail(s);
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!scan_digits(s))
            return fail(s);
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!scan_digits(s))
            return fail(s);
    }
    return true;
}

static bool scan_literal(struct scan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return fail(s);
    s->p += n;
    return true;
}

static bool scan_value(struct scan *s, int depth, enum tg_json_type *type);

static bool scan_container(struct scan *s, int depth, char close, bool is_object)
{
    if (depth >= TG_JSON_MAX_DEPTH)
        return fail(s);
    s->p++; /* opening bracket */
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return true;
    }
    for (;;) {
        enum tg_json_type t;
        if (is_object) {
            if (s->p >= s->end || *s->p != '"' || !scan_string(s))
                return fail(s);
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return fail(s);
            s->p++;
            skip_ws(s);
        }
        if (!scan_value(s, depth + 1, &t))
            return false;
        skip_ws(s);
        if (s->p >= s->end)
            return fail(s);
        if (*s->p == ',') {
            s->p++;
            skip_ws(s);
            continue;
        }
        if (*s->p == close) {
            s->p++;
            return true;
        }
        return fail(s);
    }
}

static bool scan_value(struct scan *s, int depth, enum tg_json_type *type)
{
    if (s->p >= s->end)
        return fail(s);
    switch (*s->p) {
    case '{':
        *type = TG_JSON_OBJECT;
        return scan_container(s, depth, '}', true);
    case '[':
        *type = TG_JSON_ARRAY;
        return scan_container(s, depth, ']', false);
    case '"':
        *type = TG_JSON_STRING;
        return scan_string(s);
    case 't':
        *type = TG_JSON_TRUE;
        return scan_literal(s, "true", 4);
    case 'f':
        *type = TG_JSON_FALSE;
        return scan_literal(s, "false", 5);
    case 'n':
        *type = TG_JSON_NULL;
        return scan_literal(s, "null", 4);
    default:
        *type = TG_JSON_NUMBER;
        return scan_number(s);
    }
}

int tg_json_parse(const char *p, size_t n, struct tg_jv *root, size_t *err_off)
{
    struct scan s = {.p = p, .end = p + n, .err = NULL};
    enum tg_json_type t = TG_JSON_NONE;
    root->p = NULL;
    root->n = 0;
    root->type = TG_JSON_NONE;
    skip_ws(&s);
    const char *start = s.p;
    if (!scan_value(&s, 0, &t))
        goto bad;
    const char *stop = s.p;
    skip_ws(&s);
    if (s.p != s.end) {
        fail(&s);
        goto bad;
    }
    root->p = start;
    root->n = (size_t)(stop - start);
    root->type = t;
    return 0;
bad:
    if (err_off != NULL)
        *err_off = (size_t)((s.err ? s.err : s.p) - p);
    return -1;
}

/* ---- iteration over validated input ---------------------------------------------------- */

/* Skips one validated value starting at p; returns the byte after it. */
static const char *skip_value(const char *p, const char *end, enum tg_json_type *type)
{
    switch (*p) {
    case '"':
        *type = TG_JSON_STRING;
        for (p++; p < end; p++) {
            if (*p == '\\')
                p++;
            else if (*p == '"')
                return p + 1;
        }
        return end;
    case '{':
    case '[': {
        *type = *p == '{' ? TG_JSON_OBJECT : TG_JSON_ARRAY;
        int depth = 0;
        for (; p < end; p++) {
            char c = *p;
            if (c == '"') {
                for (p++; p < end; p++) {
                    if (*p == '\\')
                        p++;
                    else if (*p == '"')
                        break;
                }
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return p + 1;
            }
        }
        return end;
    }
    case 't':
        *type = TG_JSON_TRUE;
        return p + 4;
    case 'f':
        *type = TG_JSON_FALSE;
        return p + 5;
    case 'n':
        *type = TG_JSON_NULL;
        return p + 4;
    default:
        *type = TG_JSON_NUMBER;
        while (p < end && (*p == '-' || *p == '+' || *p == '.' || *p == 'e' || *p == 'E' ||
                           (*p >= '0' && *p <= '9')))
            p++;
        return p;
    }
}

void tg_json_iter_init(struct tg_json_iter *it, const struct tg_jv *container)
{
    if (container->type != TG_JSON_OBJECT && container->type != TG_JSON_ARRAY) {
        it->p = it->end = NULL;
        return;
    }
    it->p = container->p + 1;
    it->end = container->p + container->n - 1; /* the closing bracket */
}

static void iter_skip_ws_comma(struct tg_json_iter *it)
{
    while (it->p < it->end && (is_ws(*it->p) || *it->p == ','))
        it->p++;
}

bool tg_json_next_elem(struct tg_json_iter *it, struct tg_jv *value)
{
    iter_skip_ws_comma(it);
    if (it->p == NULL || it->p >= it->end)
        return false;
    value->p = it->p;
    it->p = skip_value(it->p, it->end, &value->type);
    value->n = (size_t)(it->p - value->p);
    return true;
}

bool tg_json_next_member(struct tg_json_iter *it, struct tg_jv *key, struct tg_jv *value)
{
    iter_skip_ws_comma(it);
    if (it->p == NULL || it->p >= it->end || *it->p != '"')
        return false;
    key->p = it->p;
    it->p = skip_value(it->p, it->end, &key->type);
    key->n = (size_t)(it->p - key->p);
    while (it->p < it->end && (is_ws(*it->p) || *it->p == ':'))
        it->p++;
    if (it->p >= it->end)
        return false;
    value->p = it->p;
    it->p = skip_value(it->p, it->end, &value->type);
    value->n = (size_t)(it->p - value->p);
    return true;
}

/* ---- strings ----------------------------------------------------------------------------- */

static size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t hex4(const char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned d = 0;
        hexval(p[i], &d);
        v = (v << 4) | d;
    }
    return v;
}

void tg_json_string_decode(const struct tg_jv *s, tg_json_emit_fn emit, void *arg)
{
    if (s->type != TG_JSON_STRING || s->n < 2)
        return;
    const char *p = s->p + 1, *end = s->p + s->n - 1;
    const char *run = p;
    while (p < end) {
        if (*p != '\\') {
            p++;
            continue;
        }
        if (p > run)
            emit(run, (size_t)(p - run), arg);
        p++;
        char out[4];
        size_t olen = 1;
        switch (*p) {
        case 'b':
            out[0] = '\b';
            break;
        case 'f':
            out[0] = '\f';
            break;
        case 'n':
            out[0] = '\n';
            break;
        case 'r':
            out[0] = '\r';
            break;
        case 't':
            out[0] = '\t';
            break;
        case 'u': {
            uint32_t cp = hex4(p + 1);
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 7 && p[1] == '\\' && p[2] == 'u') {
                uint32_t lo = hex4(p + 3);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            olen = utf8_encode(cp, out);
            break;
        }
        default: /* '"', '\\', '/' */
            out[0] = *p;
            break;
        }
        emit(out, olen, arg);
        p++;
        run = p;
    }
    if (p > run)
        emit(run, (size_t)(p - run), arg);
}

struct copy_ctx {
    char *dst;
    size_t cap;
    size_t len;
    bool overflow;
};

static void copy_emit(const char *p, size_t n, void *arg)
{
    struct copy_ctx *c = arg;
    if (c->len + n > c->cap) {
        size_t room = c->cap - c->len;
        memcpy(c->dst + c->len, p, room);
        c->len = c->cap;
        c->overflow = true;
        return;
    }
    memcpy(c->dst + c->len, p, n);
    c->len += n;
}

ssize_t tg_json_string_copy(const struct tg_jv *s, char *dst, size_t cap)
{
    if (s->type != TG_JSON_STRING)
        return -1;
    struct copy_ctx c = {.dst = dst, .cap = cap, .len = 0, .overflow = false};
    tg_json_string_decode(s, copy_emit, &c);
    return c.overflow ? -1 : (ssize_t)c.len;
}

static void len_emit(const char *p, size_t n, void *arg)
{
    (void)p;
    *(size_t *)arg += n;
}

size_t tg_json_string_len(const struct tg_jv *s)
{
    size_t n = 0;
    tg_json_string_decode(s, len_emit, &n);
    return n;
}

struct eq_ctx {
    const char *lit;
    size_t litlen;
    size_t pos;
    bool ok;
};

static void eq_emit(const char *p, size_t n, void *arg)
{
    struct eq_ctx *c = arg;
    if (!c->ok)
        return;
    if (c->pos + n > c->litlen || memcmp(c->lit + c->pos, p, n) != 0) {
        c->ok = false;
        return;
    }
    c->pos += n;
}

bool tg_json_string_eq(const struct tg_jv *s, const char *lit, size_t litlen)
{
    if (s->type != TG_JSON_STRING)
        return false;
    /* fast path: no escapes and same length */
    if (s->n == litlen + 2 && memcmp(s->p + 1, lit, litlen) == 0)
        return true;
    if (memchr(s->p, '\\', s->n) == NULL)
        return false;
    struct eq_ctx c = {.lit = lit, .litlen = litlen, .pos = 0, .ok = true};
    tg_json_string_decode(s, eq_emit, &c);
    return c.ok && c.pos == litlen;
}

bool tg_json_key_is(const struct tg_jv *key, const char *lit)
{
    return tg_json_string_eq(key, lit, strlen(lit));
}

/* ---- lookup ------------------------------------------------------------------------------ */

static bool get_n(const struct tg_jv *obj, const char *key, size_t keylen, struct tg_jv *out)
{
    bool found = false;
    out->type = TG_JSON_NONE;
    if (obj->type != TG_JSON_OBJECT)
        return false;
    struct tg_json_iter it;
    struct tg_jv k, v;
    tg_json_iter_init(&it, obj);
    while (tg_json_next_member(&it, &k, &v)) {
        if (tg_json_string_eq(&k, key, keylen)) {
            *out = v;
            found = true;
        }
    }
    return found;
}

bool tg_json_get(const struct tg_jv *obj, const char *key, struct tg_jv *out)
{
    return get_n(obj, key, strlen(key), out);
}

bool tg_json_at(const struct tg_jv *arr, size_t index, struct tg_jv *out)
{
    out->type = TG_JSON_NONE;
    if (arr->type != TG_JSON_ARRAY)
        return false;
    struct tg_json_iter it;
    struct tg_jv v;
    tg_json_iter_init(&it, arr);
    for (size_t i = 0; tg_json_next_elem(&it, &v); i++) {
        if (i == index) {
            *out = v;
            return true;
        }
    }
    return false;
}

bool tg_json_path(const struct tg_jv *root, const char *path, struct tg_jv *out)
{
    struct tg_jv cur = *root;
    const char *seg = path;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
        bool numeric = len > 0;
        size_t index = 0;
        for (size_t i = 0; i < len; i++) {
            if (seg[i] < '0' || seg[i] > '9') {
                numeric = false;
                break;
            }
            index = index * 10 + (size_t)(seg[i] - '0');
        }
        struct tg_jv next;
        bool ok;
        if (numeric && cur.type == TG_JSON_ARRAY)
            ok = tg_json_at(&cur, index, &next);
        else
            ok = get_n(&cur, seg, len, &next);
        if (!ok) {
            out->type = TG_JSON_NONE;
            return false;
        }
        cur = next;
        if (dot == NULL)
            break;
        seg = dot + 1;
    }
    *out = cur;
    return true;
}

int tg_json_int64(const struct tg_jv *v, int64_t *out)
{
    if (v->type != TG_JSON_NUMBER || v->n == 0)
        return -1;
    const char *p = v->p, *end = v->p + v->n;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    uint64_t acc = 0;
    const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (acc > (limit - d) / 10)
            return -1;
        acc = acc * 10 + d;
    }
    if (p < end && *p == '.') {
        for (p++; p < end && *p == '0'; p++)
            ;
    }
    if (p != end)
        return -1;
    *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return 0;
}

bool tg_json_is_true(const struct tg_jv *v)
{
    return v->type == TG_JSON_TRUE;
}

/* ---- output ------------------------------------------------------------------------------ */

/* Length of a valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t need;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return need;
}

int tg_json_escape(struct tg_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (tg_buf_reserve(b, n + 2) != 0)
        return -1;
    b->data[b->len++] = '"';
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned char c = *p;
        char esc[8];
        size_t elen = 0;
        size_t adv = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            elen = 2;
        } else if (c == '\r') {
            memcpy(esc, "\\r", 2);
            elen = 2;
        } else if (c == '\t') {
            memcpy(esc, "\\t", 2);
            elen = 2;
        } else if (c < 0x20 || c == 0x7F) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xF];
            elen = 6;
        } else if (c >= 0x80) {
            adv = utf8_seq(p, end);
            if (adv == 0) {
                memcpy(esc, "\xEF\xBF\xBD", 3);
                elen = 3;
                adv = 1;
            }
        }
        if (elen == 0) {
            if (tg_buf_append(b, p, adv) != 0)
                return -1;
        } else if (tg_buf_append(b, esc, elen) != 0) {
            return -1;
        }
        p += adv;
    }
    return tg_buf_append(b, "\"", 1);
}
