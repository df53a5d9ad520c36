/* bench_cli.c: see bench_cli.h. */
#include "bench_cli.h"

#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t tg_bench_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

char *tg_bench_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (nb == NULL)
            free(buf);
        buf = nb;
    }
    fclose(f);
    if (buf != NULL)
        *len = n;
    return buf;
}

void tg_bench_free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

char **tg_bench_read_lines(const char *path, size_t *n, const char **err)
{
    size_t len;
    *n = 0;
    char *text = tg_bench_read_file(path, &len);
    if (text == NULL) {
        *err = "cannot read --header-file";
        return NULL;
    }
    size_t cap = 16;
    char **lines = malloc(cap * sizeof(char *));
    const char *p = text, *end = text + len;
    *err = "out of memory";
    while (lines != NULL && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line = p;
        size_t ll = (size_t)((nl ? nl : end) - p);
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        p = nl ? nl + 1 : end;
        if (ll == 0)
            continue;
        if (*n == cap) {
            char **nr = realloc(lines, 2 * cap * sizeof(char *));
            if (nr == NULL)
                goto fail;
            lines = nr;
            cap *= 2;
        }
        if ((lines[*n] = strndup(line, ll)) == NULL)
            goto fail;
        (*n)++;
    }
    free(text);
    if (lines != NULL && *n == 0) {
        *err = "--header-file has no header lines";
        free(lines);
        return NULL;
    }
    return lines;
fail:
    free(text);
    if (lines != NULL)
        tg_bench_free_lines(lines, *n);
    *n = 0;
    return NULL;
}

int tg_bench_parse_url(const char *url, char *hostport, size_t hpcap, char *path, size_t pcap,
                       struct sockaddr_storage *addr, socklen_t *addr_len, const char **err)
{
    if (strncmp(url, "http://", 7) != 0) {
        *err = "--url must start with http://";
        return -1;
    }
    const char *hp = url + 7;
    const char *slash = strchr(hp, '/');
    size_t hl = slash ? (size_t)(slash - hp) : strlen(hp);
    const char *colon = memrchr(hp, ':', hl);
    size_t hn = colon ? (size_t)(colon - hp) : hl;
    char host[256];
    if (hl == 0 || hl >= hpcap || hn == 0 || hn >= sizeof(host)) {
        *err = "bad host in --url";
        return -1;
    }
    memcpy(hostport, hp, hl);
    hostport[hl] = '\0';
    memcpy(host, hp, hn);
    host[hn] = '\0';
    snprintf(path, pcap, "%s", slash ? slash : "/");
    const char *port = colon ? hostport + hn + 1 : "80";
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
        *err = "cannot resolve the host of --url";
        return -1;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Appends the NUL-terminated strings of `parts` (up to a NULL) to a malloc'd buffer. */
static bool append(char **buf, size_t *len, const char *const *parts)
{
    size_t add = 0;
    for (const char *const *q = parts; *q != NULL; q++)
        add += strlen(*q);
    char *nb = realloc(*buf, *len + add + 1);
    if (nb == NULL)
        return false;
    for (const char *const *q = parts; *q != NULL; q++) {
        size_t n = strlen(*q);
        memcpy(nb + *len, *q, n);
        *len += n;
    }
    nb[*len] = '\0';
    *buf = nb;
    return true;
}

int tg_bench_request_init(struct tg_bench_request *rq, const char *url, const char *method,
                          const char *body, const char *body_file, const char *const *headers,
                          int nheaders, const char *header_file, const char **err)
{
    memset(rq, 0, sizeof(*rq));
    char hostport[300], path[2048];
    if (tg_bench_parse_url(url, hostport, sizeof(hostport), path, sizeof(path), &rq->addr,
                           &rq->addr_len, err) != 0)
        return -1;
    size_t body_len = 0;
    char *body_owned = NULL;
    if (body_file != NULL) {
        body_owned = tg_bench_read_file(body_file, &body_len);
        if (body_owned == NULL) {
            *err = "cannot read --body-file";
            return -1;
        }
        body = body_owned;
    } else if (body != NULL) {
        body_len = strlen(body);
    }
    if (method == NULL)
        method = body ? "POST" : "GET";
    char clen[32];
    snprintf(clen, sizeof(clen), "%zu", body_len);
    const char *line[] = {method, " ", path, " HTTP/1.1\r\nHost: ", hostport, "\r\n", NULL};
    const char *framing[] = {"Content-Type: application/json\r\nContent-Length: ", clen, "\r\n",
                             NULL};
    bool ok = append(&rq->prefix, &rq->prefix_len, line);
    if (ok && body != NULL)
        ok = append(&rq->prefix, &rq->prefix_len, framing);
    for (int i = 0; ok && i < nheaders; i++) {
        const char *h[] = {headers[i], "\r\n", NULL};
        ok = append(&rq->prefix, &rq->prefix_len, h);
    }
    rq->suffix_len = 2 + body_len;
    rq->suffix = ok ? malloc(rq->suffix_len) : NULL;
    if (rq->suffix != NULL) {
        memcpy(rq->suffix, "\r\n", 2);
        if (body_len > 0)
            memcpy(rq->suffix + 2, body, body_len);
    }
    free(body_owned);
    if (rq->suffix == NULL) {
        *err = "out of memory";
        tg_bench_request_free(rq);
        return -1;
    }
    if (header_file != NULL) {
        rq->rot = tg_bench_read_lines(header_file, &rq->nrot, err);
        if (rq->rot == NULL) {
            tg_bench_request_free(rq);
            return -1;
        }
    }
    return 0;
}

void tg_bench_request_free(struct tg_bench_request *rq)
{
    if (rq->rot != NULL)
        tg_bench_free_lines(rq->rot, rq->nrot);
    free(rq->prefix);
    free(rq->suffix);
    memset(rq, 0, sizeof(*rq));
}
