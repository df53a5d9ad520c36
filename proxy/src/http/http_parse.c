/* http_parse.c: HTTP/1.1 heads and chunked framing (RFC 9112), no allocation. */
#include "http/http_parse.h"

#include <string.h>
#include <strings.h>

static bool is_tchar(unsigned char c)
{
    /* token characters of RFC 9110 §5.6.2 */
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr(extra, c) != NULL;
}

/* Finds the end of the line starting at p: returns a pointer to its '\n' or NULL.
 * *line_end is set to the end of the content (before an optional '\r'). */
static const char *find_eol(const char *p, const char *end, const char **line_end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL)
        return NULL;
    *line_end = (nl > p && nl[-1] == '\r') ? nl - 1 : nl;
    return nl;
}

/* Parses header lines from p until the blank line. Returns pointer after the blank line,
 * NULL for need-more, or (const char *)-1 cast for error with *err. */
static int parse_headers(const char *p, const char *end, struct tg_http_header *hs, size_t *num,
                         const char **after, int *err)
{
    *num = 0;
    for (;;) {
        const char *le;
        const char *nl = find_eol(p, end, &le);
        if (nl == NULL)
            return TG_HTTP_NEED_MORE;
        if (le == p) { /* blank line */
            *after = nl + 1;
            return 0;
        }
        if (*p == ' ' || *p == '\t') { /* obsolete line folding: refused (RFC 9112 §5.2) */
            *err = 400;
            return TG_HTTP_ERROR;
        }
        const char *colon = p;
        while (colon < le && is_tchar((unsigned char)*colon))
            colon++;
        if (colon == p || colon >= le || *colon != ':') {
            *err = 400;
            return TG_HTTP_ERROR;
        }
        const char *v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t'))
            v++;
        const char *ve = le;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *c = v; c < ve; c++) {
            unsigned char uc = (unsigned char)*c;
            if ((uc < 0x20 && uc != '\t') || uc == 0x7f) {
                *err = 400;
                return TG_HTTP_ERROR;
            }
        }
        if (*num == TG_HTTP_MAX_HEADERS) {
            *err = 431;
            return TG_HTTP_ERROR;
        }
        hs[*num].name = p;
        hs[*num].name_len = (size_t)(colon - p);
        hs[*num].value = v;
        hs[*num].value_len = (size_t)(ve - v);
        (*num)++;
        p = nl + 1;
    }
}

static int parse_version(const char *p, const char *end, int *minor)
{
    if (end - p != 8 || memcmp(p, "HTTP/1.", 7) != 0)
        return -1;
    if (p[7] != '0' && p[7] != '1')
        return -1;
    *minor = p[7] - '0';
    return 0;
}

ssize_t tg_http_parse_request(const char *buf, size_t len, struct tg_http_request_head *h,
                              int *err_status)
{
    const char *p = buf, *end = buf + len;
    *err_status = 400;
    /* RFC 9112 §2.2: ignore at least one empty line before the request line */
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    const char *le;
    const char *nl = find_eol(p, end, &le);
    if (nl == NULL)
        return TG_HTTP_NEED_MORE;
    const char *sp1 = memchr(p, ' ', (size_t)(le - p));
    if (sp1 == NULL || sp1 == p)
        return TG_HTTP_ERROR;
    for (const char *c = p; c < sp1; c++)
        if (!is_tchar((unsigned char)*c))
            return TG_HTTP_ERROR;
    const char *t = sp1 + 1;
    const char *sp2 = memchr(t, ' ', (size_t)(le - t));
    if (sp2 == NULL || sp2 == t)
        return TG_HTTP_ERROR;
    for (const char *c = t; c < sp2; c++) {
        unsigned char uc = (unsigned char)*c;
        if (uc <= 0x20 || uc >= 0x7f)
            return TG_HTTP_ERROR;
    }
    if (parse_version(sp2 + 1, le, &h->minor_version) != 0) {
        if (le - (sp2 + 1) >= 5 && memcmp(sp2 + 1, "HTTP/", 5) == 0)
            *err_status = 505;
        return TG_HTTP_ERROR;
    }
    h->method = p;
    h->method_len = (size_t)(sp1 - p);
    h->target = t;
    h->target_len = (size_t)(sp2 - t);
    const char *after;
    int rc = parse_headers(nl + 1, end, h->headers, &h->num_headers, &after, err_status);
    if (rc != 0)
        return rc;
    return after - buf;
}

ssize_t tg_http_parse_response(const char *buf, size_t len, struct tg_http_response_head *h)
{
    const char *p = buf, *end = buf + len;
    const char *le;
    const char *nl = find_eol(p, end, &le);
    if (nl == NULL)
        return TG_HTTP_NEED_MORE;
    if (le - p < 12 || parse_version(p, p + 8, &h->minor_version) != 0 || p[8] != ' ')
        return TG_HTTP_ERROR;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return TG_HTTP_ERROR;
        status = status * 10 + (p[i] - '0');
    }
    if (status < 100)
        return TG_HTTP_ERROR;
    if (le - p > 12 && p[12] != ' ')
        return TG_HTTP_ERROR;
    h->status = status;
    h->reason = le - p > 13 ? p + 13 : le;
    h->reason_len = (size_t)(le - h->reason);
    const char *after;
    int err = 0;
    int rc = parse_headers(nl + 1, end, h->headers, &h->num_headers, &after, &err);
    if (rc != 0)
        return rc;
    return after - buf;
}

const struct tg_http_header *tg_http_find_header(const struct tg_http_header *hs, size_t n,
                                                 const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (hs[i].name_len == nl && strncasecmp(hs[i].name, name, nl) == 0)
            return &hs[i];
    return NULL;
}

bool tg_http_has_token(const char *value, size_t len, const char *token)
{
    size_t tl = strlen(token);
    const char *p = value, *end = value + len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
            return true;
    }
    return false;
}

bool tg_http_is_hop_by_hop(const char *name, size_t len)
{
    static const char *const hop[] = {
        "connection", "keep-alive", "proxy-connection",   "transfer-encoding",   "te",
        "trailer",    "upgrade",    "proxy-authenticate", "proxy-authorization",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(hop); i++)
        if (strlen(hop[i]) == len && strncasecmp(hop[i], name, len) == 0)
            return true;
    return false;
}

int tg_http_parse_content_length(const char *v, size_t n, int64_t *out)
{
    if (n == 0 || n > 18)
        return -1;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return 0;
}

/* ---- chunked ----------------------------------------------------------------------------- */

enum {
    CH_SIZE = 0,      /* reading hex digits */
    CH_EXT,           /* chunk extension until LF */
    CH_DATA,          /* payload */
    CH_DATA_CR,       /* expecting CR or LF after payload */
    CH_DATA_LF,       /* expecting LF after CR */
    CH_TRAILER_START, /* start of a trailer line (or the final blank line) */
    CH_TRAILER,       /* inside a trailer line */
    CH_LAST_LF,       /* CR seen on the final blank line */
    CH_DONE,
};

#define CH_MAX_LINE 4096

enum tg_chunk_rc tg_chunked_next(struct tg_chunked *c, const char *p, size_t n, size_t *skip,
                                 size_t *data)
{
    size_t i = 0;
    *skip = 0;
    *data = 0;
    while (i < n) {
        unsigned char ch = (unsigned char)p[i];
        switch (c->state) {
        case CH_SIZE: {
            int v = -1;
            if (ch >= '0' && ch <= '9')
                v = ch - '0';
            else if (ch >= 'a' && ch <= 'f')
                v = ch - 'a' + 10;
            else if (ch >= 'A' && ch <= 'F')
                v = ch - 'A' + 10;
            if (v >= 0) {
                if (c->digits >= 15)
                    return TG_CHUNK_ERROR;
                c->remaining = c->remaining * 16 + (uint64_t)v;
                c->digits++;
                i++;
                break;
            }
            if (c->digits == 0)
                return TG_CHUNK_ERROR;
            if (ch == ';' || ch == ' ' || ch == '\t' || ch == '\r') {
                c->state = CH_EXT;
                c->line_bytes = 0;
                i++;
                break;
            }
            if (ch == '\n') {
                i++;
                goto size_done;
            }
            return TG_CHUNK_ERROR;
        }
        case CH_EXT:
            if (++c->line_bytes > CH_MAX_LINE)
                return TG_CHUNK_ERROR;
            i++;
            if (ch == '\n')
                goto size_done;
            break;
        case CH_DATA: {
            size_t avail = n - i;
            size_t take = avail < c->remaining ? avail : (size_t)c->remaining;
            c->remaining -= take;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            *skip = i;
            *data = take;
            return TG_CHUNK_DATA;
        }
        case CH_DATA_CR:
            if (ch == '\r') {
                c->state = CH_DATA_LF;
            } else if (ch == '\n') {
                c->state = CH_SIZE;
            } else {
                return TG_CHUNK_ERROR;
            }
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return TG_CHUNK_ERROR;
            c->state = CH_SIZE;
            i++;
            break;
        case CH_TRAILER_START:
            i++;
            if (ch == '\r') {
                c->state = CH_LAST_LF;
            } else if (ch == '\n') {
                c->state = CH_DONE;
                *skip = i;
                return TG_CHUNK_DONE;
            } else {
                c->state = CH_TRAILER;
                c->line_bytes = 1;
            }
            break;
        case CH_TRAILER:
            if (++c->line_bytes > CH_MAX_LINE)
                return TG_CHUNK_ERROR;
            i++;
            if (ch == '\n')
                c->state = CH_TRAILER_START;
            break;
        case CH_LAST_LF:
            if (ch != '\n')
                return TG_CHUNK_ERROR;
            i++;
            c->state = CH_DONE;
            *skip = i;
            return TG_CHUNK_DONE;
        case CH_DONE:
            *skip = i;
            return TG_CHUNK_DONE;
        default:
            return TG_CHUNK_ERROR;
        }
        continue;
    size_done:
        c->digits = 0;
        if (c->remaining == 0) {
            c->state = CH_TRAILER_START;
        } else {
            c->state = CH_DATA;
        }
    }
    *skip = i;
    if (c->state == CH_DONE)
        return TG_CHUNK_DONE;
    return TG_CHUNK_NEED_MORE;
}

size_t tg_http_unfinished_credential(const char *buf, size_t len)
{
    static const char *const names[] = {"authorization", "x-api-key", "api-key"};
    const char *end = buf + len;
    const char *nl = memrchr(buf, '\n', len);
    if (nl == NULL)
        return 0; /* still in the request line */
    const char *line = nl + 1;
    const char *colon = memchr(line, ':', (size_t)(end - line));
    if (colon == NULL)
        return 0;
    size_t nlen = (size_t)(colon - line);
    for (size_t i = 0; i < TG_ARRAY_LEN(names); i++) {
        if (nlen == strlen(names[i]) && strncasecmp(line, names[i], nlen) == 0)
            return (size_t)(end - colon - 1);
    }
    return 0;
}
