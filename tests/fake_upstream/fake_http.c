/* fake_http.c: request-head parsing and chunked-body decoding for the fake upstream (pure). */
#include "fake_http.h"

#include <string.h>
#include <strings.h>

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Returns the end of the line starting at p (pointing at '\n'), or NULL. */
static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl;
}

/* Length of the line content (without CR LF). */
static size_t line_len(const char *p, const char *nl)
{
    size_t n = (size_t)(nl - p);
    if (n > 0 && p[n - 1] == '\r')
        n--;
    return n;
}

static int parse_request_line(const char *p, size_t n, struct tg_fake_head *head)
{
    const char *end = p + n;
    const char *s = p;
    while (s < end && is_tchar((unsigned char)*s))
        s++;
    if (s == p || s == end || *s != ' ')
        return TG_FAKE_ERROR;
    head->method = p;
    head->method_len = (size_t)(s - p);
    const char *t = ++s;
    while (s < end && (unsigned char)*s > ' ' && (unsigned char)*s != 0x7f)
        s++;
    if (s == t || s == end || *s != ' ')
        return TG_FAKE_ERROR;
    head->target = t;
    head->target_len = (size_t)(s - t);
    s++;
    if (end - s != 8 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1'))
        return TG_FAKE_ERROR;
    head->minor_version = s[7] - '0';
    return 0;
}

static int parse_header_line(const char *p, size_t n, struct tg_fake_head *head)
{
    const char *end = p + n;
    const char *s = p;
    while (s < end && is_tchar((unsigned char)*s))
        s++;
    if (s == p || s == end || *s != ':')
        return TG_FAKE_ERROR;
    if (head->num_headers == TG_FAKE_MAX_HEADERS)
        return TG_FAKE_ERROR;
    struct tg_fake_header *h = &head->headers[head->num_headers++];
    h->name = p;
    h->name_len = (size_t)(s - p);
    s++;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    const char *v_end = end;
    while (v_end > s && (v_end[-1] == ' ' || v_end[-1] == '\t'))
        v_end--;
    for (const char *c = s; c < v_end; c++) {
        unsigned char u = (unsigned char)*c;
        if ((u < ' ' && u != '\t') || u == 0x7f)
            return TG_FAKE_ERROR;
    }
    h->value = s;
    h->value_len = (size_t)(v_end - s);
    return 0;
}

int tg_fake_http_parse_head(const char *buf, size_t len, struct tg_fake_head *head)
{
    const char *p = buf;
    const char *end = buf + len;
    head->num_headers = 0;

    /* Skip empty lines before the request line (RFC 9112 §2.2). */
    for (;;) {
        if (p == end)
            return TG_FAKE_NEED_MORE;
        if (*p == '\n') {
            p++;
        } else if (*p == '\r') {
            if (p + 1 == end)
                return TG_FAKE_NEED_MORE;
            if (p[1] != '\n')
                return TG_FAKE_ERROR;
            p += 2;
        } else {
            break;
        }
    }

    const char *nl = line_end(p, end);
    if (nl == NULL)
        return TG_FAKE_NEED_MORE;
    if (parse_request_line(p, line_len(p, nl), head) != 0)
        return TG_FAKE_ERROR;
    p = nl + 1;

    for (;;) {
        nl = line_end(p, end);
        if (nl == NULL)
            return TG_FAKE_NEED_MORE;
        size_t n = line_len(p, nl);
        if (n == 0)
            return (int)(nl + 1 - buf);
        if (*p == ' ' || *p == '\t')
            return TG_FAKE_ERROR; /* obsolete line folding */
        if (parse_header_line(p, n, head) != 0)
            return TG_FAKE_ERROR;
        p = nl + 1;
    }
}

const struct tg_fake_header *tg_fake_http_find(const struct tg_fake_head *head, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < head->num_headers; i++) {
        const struct tg_fake_header *h = &head->headers[i];
        if (h->name_len == n && strncasecmp(h->name, name, n) == 0)
            return h;
    }
    return NULL;
}

bool tg_fake_http_has_token(const char *value, size_t value_len, const char *token)
{
    size_t tn = strlen(token);
    const char *p = value;
    const char *end = value + value_len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        const char *s = p;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        const char *t = e;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - s) == tn && strncasecmp(s, token, tn) == 0)
            return true;
        p = comma ? comma + 1 : end;
    }
    return false;
}

enum {
    CH_SIZE = 0,   /* reading hex digits of a chunk size */
    CH_EXT,        /* skipping a chunk extension up to LF */
    CH_SIZE_LF,    /* CR seen after the size, LF expected */
    CH_DATA,       /* inside chunk data */
    CH_DATA_CR,    /* CRLF after chunk data expected */
    CH_DATA_LF,    /* LF after chunk data expected */
    CH_TRAILER,    /* at the start of a trailer line (or the final empty line) */
    CH_TRAILER_IN, /* inside a trailer line */
    CH_FINAL_LF,   /* CR of the final empty line seen, LF expected */
};

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The size line ended: move to data or trailers. */
static int size_line_done(struct tg_fake_chunked *d)
{
    if (d->digits == 0)
        return TG_FAKE_ERROR;
    d->digits = 0;
    d->state = d->remaining == 0 ? CH_TRAILER : CH_DATA;
    return 0;
}

long tg_fake_chunked_feed(struct tg_fake_chunked *d, const char *in, size_t len,
                          tg_fake_chunk_data_fn on_data, void *arg)
{
    size_t i = 0;
    while (i < len) {
        char c = in[i];
        switch (d->state) {
        case CH_SIZE: {
            int v = hex_value(c);
            if (v >= 0) {
                if (d->digits >= 15)
                    return TG_FAKE_ERROR;
                d->remaining = d->remaining * 16 + (uint64_t)v;
                d->digits++;
            } else if (c == ';' || c == ' ' || c == '\t') {
                if (d->digits == 0)
                    return TG_FAKE_ERROR;
                d->state = CH_EXT;
            } else if (c == '\r') {
                d->state = CH_SIZE_LF;
            } else if (c == '\n') {
                if (size_line_done(d) != 0)
                    return TG_FAKE_ERROR;
            } else {
                return TG_FAKE_ERROR;
            }
            i++;
            break;
        }
        case CH_EXT:
            if (c == '\n' && size_line_done(d) != 0)
                return TG_FAKE_ERROR;
            i++;
            break;
        case CH_SIZE_LF:
            if (c != '\n' || size_line_done(d) != 0)
                return TG_FAKE_ERROR;
            i++;
            break;
        case CH_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > d->remaining)
                n = (size_t)d->remaining;
            if (on_data(arg, in + i, n) != 0)
                return TG_FAKE_ERROR;
            d->remaining -= n;
            i += n;
            if (d->remaining == 0)
                d->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (c == '\r')
                d->state = CH_DATA_LF;
            else if (c == '\n')
                d->state = CH_SIZE;
            else
                return TG_FAKE_ERROR;
            i++;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                return TG_FAKE_ERROR;
            d->state = CH_SIZE;
            i++;
            break;
        case CH_TRAILER:
            i++;
            if (c == '\n')
                return (long)i;
            d->state = c == '\r' ? CH_FINAL_LF : CH_TRAILER_IN;
            break;
        case CH_TRAILER_IN:
            if (c == '\n')
                d->state = CH_TRAILER;
            i++;
            break;
        case CH_FINAL_LF:
            if (c != '\n')
                return TG_FAKE_ERROR;
            return (long)(i + 1);
        default:
            return TG_FAKE_ERROR;
        }
    }
    return TG_FAKE_NEED_MORE;
}
