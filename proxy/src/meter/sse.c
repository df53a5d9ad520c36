/* sse.c: incremental SSE parser: line framing, fields, event accumulation, raw offsets. */
#include "meter/sse.h"

#include <stdlib.h>
#include <string.h>

enum line_state {
    LS_START = 0,   /* at the first byte of a line */
    LS_FIELD,       /* reading a field name */
    LS_VALUE_START, /* just after the colon: one space may be skipped */
    LS_VALUE,       /* reading a field value */
    LS_COMMENT,     /* in a line starting with ':' */
};

enum field_kind {
    F_NONE = 0,
    F_DATA,
    F_EVENT,
    F_IGNORE, /* id, retry and unknown fields */
};

static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};

static size_t max_bytes(const struct tg_sse_parser *p)
{
    return p->max_event_bytes ? p->max_event_bytes : TG_SSE_DEFAULT_MAX_EVENT_BYTES;
}

static int fail(struct tg_sse_parser *p, int code)
{
    p->error = code;
    return code;
}

static void end_block(struct tg_sse_parser *p)
{
    p->name_len = 0;
    p->data_len = 0;
    p->tail_len = 0;
    p->field = F_NONE;
    p->in_block = false;
    p->has_data = false;
}

/* Room for `more` accumulated bytes; the whole accumulator never exceeds max_event_bytes. */
static int acc_reserve(struct tg_sse_parser *p, size_t more)
{
    size_t used = p->name_len + p->data_len + p->tail_len;
    size_t max = max_bytes(p);
    if (more > max - used)
        return fail(p, TG_SSE_ERR_TOO_BIG);
    size_t need = used + more;
    if (need <= p->acc_cap)
        return 0;
    size_t cap = p->acc_cap ? p->acc_cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > max)
        cap = max;
    char *a = realloc(p->acc, cap);
    if (a == NULL)
        return fail(p, TG_SSE_ERR_NOMEM);
    p->acc = a;
    p->acc_cap = cap;
    return 0;
}

static int append(struct tg_sse_parser *p, const char *s, size_t n)
{
    int rc = acc_reserve(p, n);
    if (rc)
        return rc;
    if (p->field == F_DATA) {
        memcpy(p->acc + p->name_len + p->data_len, s, n);
        p->data_len += n;
    } else {
        memcpy(p->acc + p->name_len + p->data_len + p->tail_len, s, n);
        p->tail_len += n;
    }
    return 0;
}

static void reverse(char *a, size_t n)
{
    for (size_t i = 0, j = n - 1; i < j; i++, j--) {
        char t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* The value of a finished "event:" line (the tail) becomes the event name: the layout goes
 * from [old name][data][tail] to [tail][data] in place. */
static void install_name(struct tg_sse_parser *p)
{
    char *a = p->acc;
    size_t nl = p->name_len, dl = p->data_len, tl = p->tail_len;
    if (a != NULL && nl > 0)
        memmove(a, a + nl, dl + tl);
    if (dl > 0 && tl > 0) {
        reverse(a, dl);
        reverse(a + dl, tl);
        reverse(a, dl + tl);
    }
    p->name_len = tl;
    p->tail_len = 0;
}

static enum field_kind classify(const struct tg_sse_parser *p)
{
    if (p->fname_len == 4 && memcmp(p->fname, "data", 4) == 0)
        return F_DATA;
    if (p->fname_len == 5 && memcmp(p->fname, "event", 5) == 0)
        return F_EVENT;
    return F_IGNORE;
}

static int begin_value(struct tg_sse_parser *p)
{
    p->field = (uint8_t)classify(p);
    if (p->field == F_DATA) {
        if (p->has_data) {
            int rc = append(p, "\n", 1);
            if (rc)
                return rc;
        }
        p->has_data = true;
    }
    return 0;
}

static void end_value(struct tg_sse_parser *p)
{
    if (p->field == F_EVENT)
        install_name(p);
    p->field = F_NONE;
}

static bool dispatchable(const struct tg_sse_parser *p)
{
    return p->has_data || p->name_len > 0;
}

/* The raw bytes of the current block up to abs_end must fit in max_event_bytes. */
static int check_raw(struct tg_sse_parser *p, uint64_t abs_end)
{
    if (abs_end - p->block_start > (uint64_t)max_bytes(p))
        return fail(p, TG_SSE_ERR_TOO_BIG);
    return 0;
}

static int dispatch(struct tg_sse_parser *p, uint64_t abs_end, size_t end_offset,
                    tg_sse_event_fn cb, void *arg)
{
    int rc = check_raw(p, abs_end);
    if (rc)
        return rc;
    struct tg_sse_event ev = {
        .event = p->name_len ? p->acc : "",
        .event_len = p->name_len,
        .data = p->data_len ? p->acc + p->name_len : "",
        .data_len = p->data_len,
        .end_offset = end_offset,
    };
    end_block(p);
    p->block_start = abs_end;
    return cb(&ev, arg);
}

/* Index of the first '\r' or '\n' in s[0..n), or n. */
static size_t find_eol(const char *s, size_t n)
{
    const char *nl = memchr(s, '\n', n);
    size_t lim = nl ? (size_t)(nl - s) : n;
    const char *cr = memchr(s, '\r', lim);
    return cr ? (size_t)(cr - s) : lim;
}

/* Consumes the line end buf[*i] ('\r' or '\n') of a non-blank line. */
static int line_end(struct tg_sse_parser *p, const char *buf, uint64_t base, size_t *i)
{
    if (buf[*i] == '\r')
        p->after_cr = true;
    (*i)++;
    p->state = LS_START;
    return check_raw(p, base + *i);
}

/* Resolves bytes that started like a BOM but were not one: they begin a field name. */
static void bom_mismatch(struct tg_sse_parser *p)
{
    p->bom_done = true;
    if (p->bom_seen == 0)
        return;
    p->state = LS_FIELD;
    p->in_block = true;
    p->block_start = 0;
    memcpy(p->fname, bom, p->bom_seen);
    p->fname_len = p->bom_seen;
}

int tg_sse_feed(struct tg_sse_parser *p, const char *buf, size_t len, tg_sse_event_fn cb, void *arg)
{
    if (p->error)
        return p->error;
    const uint64_t base = p->pos;
    size_t i = 0;
    int rc;

    while (!p->bom_done && i < len) {
        if ((unsigned char)buf[i] == bom[p->bom_seen]) {
            i++;
            if (++p->bom_seen == sizeof(bom))
                p->bom_done = true;
        } else {
            bom_mismatch(p);
        }
    }
    if (p->cr_dispatch && i < len) {
        p->cr_dispatch = false;
        if (buf[i] == '\n')
            i++;
        rc = dispatch(p, base + i, i, cb, arg);
        if (rc) {
            if (p->error == 0)
                p->pos = base + i;
            return rc;
        }
    }

    while (i < len) {
        switch (p->state) {
        case LS_START: {
            char c = buf[i];
            if (p->after_cr) {
                p->after_cr = false;
                if (c == '\n') {
                    i++;
                    continue;
                }
            }
            if (!p->in_block)
                p->block_start = base + i;
            if (c == '\n' || c == '\r') {
                i++;
                if (dispatchable(p)) {
                    if (c == '\r') {
                        if (i == len) {
                            p->cr_dispatch = true;
                            continue;
                        }
                        if (buf[i] == '\n')
                            i++;
                    }
                    rc = dispatch(p, base + i, i, cb, arg);
                    if (rc) {
                        if (p->error == 0)
                            p->pos = base + i;
                        return rc;
                    }
                } else {
                    p->after_cr = c == '\r';
                    rc = check_raw(p, base + i);
                    if (rc)
                        return rc;
                    end_block(p);
                }
                continue;
            }
            if (c == ':') {
                p->state = LS_COMMENT;
                i++;
                continue;
            }
            p->state = LS_FIELD;
            p->in_block = true;
            p->fname_len = 0;
            continue;
        }
        case LS_FIELD: {
            while (i < len) {
                char c = buf[i];
                if (c == ':' || c == '\n' || c == '\r')
                    break;
                if (p->fname_len < sizeof(p->fname)) {
                    p->fname[p->fname_len] = c;
                    p->fname_len++;
                } else {
                    p->fname_len = sizeof(p->fname) + 1; /* longer than any known field */
                }
                i++;
            }
            if (i == len)
                continue;
            rc = begin_value(p);
            if (rc)
                return rc;
            if (buf[i] == ':') {
                i++;
                p->state = LS_VALUE_START;
                continue;
            }
            end_value(p);
            rc = line_end(p, buf, base, &i);
            if (rc)
                return rc;
            continue;
        }
        case LS_VALUE_START:
            if (buf[i] == ' ')
                i++;
            p->state = LS_VALUE;
            continue;
        case LS_VALUE: {
            size_t n = find_eol(buf + i, len - i);
            if (n > 0 && p->field != F_IGNORE) {
                rc = append(p, buf + i, n);
                if (rc)
                    return rc;
            }
            i += n;
            if (i == len)
                continue;
            end_value(p);
            rc = line_end(p, buf, base, &i);
            if (rc)
                return rc;
            continue;
        }
        default: /* LS_COMMENT */
            i += find_eol(buf + i, len - i);
            if (i == len)
                continue;
            rc = line_end(p, buf, base, &i);
            if (rc)
                return rc;
            continue;
        }
    }
    p->pos = base + len;
    if (!tg_sse_is_idle(p))
        return check_raw(p, p->pos);
    p->block_start = p->pos;
    return 0;
}

int tg_sse_finish(struct tg_sse_parser *p, tg_sse_event_fn cb, void *arg)
{
    int rc = p->error;
    if (rc)
        goto out;
    if (!p->bom_done)
        bom_mismatch(p);
    if (!p->cr_dispatch) {
        switch (p->state) {
        case LS_FIELD:
            rc = begin_value(p);
            if (rc)
                goto out;
            end_value(p);
            break;
        case LS_VALUE_START:
        case LS_VALUE:
            end_value(p);
            break;
        default:
            break;
        }
    }
    if (!tg_sse_is_idle(p)) {
        rc = check_raw(p, p->pos);
        if (rc)
            goto out;
    }
    if (dispatchable(p))
        rc = dispatch(p, p->pos, 0, cb, arg);
out:
    tg_sse_reset(p);
    return rc;
}

bool tg_sse_is_idle(const struct tg_sse_parser *p)
{
    return p->state == LS_START && !p->in_block && !p->cr_dispatch &&
           (p->bom_done || p->bom_seen == 0);
}

void tg_sse_reset(struct tg_sse_parser *p)
{
    char *acc = p->acc;
    size_t cap = p->acc_cap, max = p->max_event_bytes;
    memset(p, 0, sizeof(*p));
    p->acc = acc;
    p->acc_cap = cap;
    p->max_event_bytes = max;
}

void tg_sse_cleanup(struct tg_sse_parser *p)
{
    if (p == NULL)
        return;
    free(p->acc);
    memset(p, 0, sizeof(*p));
}
