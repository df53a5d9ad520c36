/* bench_cli.h: the plumbing the benchmark clients (loadgen, streams) share: a monotonic clock,
 * reading a file, a file of header lines, and an http:// URL resolved to a socket address.
 * Failures return an error text for the caller's one-line message; nothing here exits. */
#ifndef TG_BENCH_CLI_H
#define TG_BENCH_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* CLOCK_MONOTONIC in microseconds. */
int64_t tg_bench_mono_us(void);

/* The whole file, malloc'd (not NUL-terminated), its length in *len; NULL when unreadable. */
char *tg_bench_read_file(const char *path, size_t *len);

/* The non-empty lines of a file (a trailing \r dropped), each malloc'd, in a malloc'd array
 * of *n. NULL with *err set when the file is unreadable, has no lines, or out of memory. */
char **tg_bench_read_lines(const char *path, size_t *n, const char **err);

/* Frees what tg_bench_read_lines returned. */
void tg_bench_free_lines(char **lines, size_t n);

/* Splits http://HOST[:PORT][/PATH] into hostport ("HOST:PORT" as written, for the Host
 * header) and path ("/" when absent), and resolves HOST into *addr. 0, or -1 with *err set. */
int tg_bench_parse_url(const char *url, char *hostport, size_t hpcap, char *path, size_t pcap,
                       struct sockaddr_storage *addr, socklen_t *addr_len, const char **err);

/* A request sent many times: prefix (request line, Host, fixed headers, Content-Type and
 * Content-Length when there is a body), then one line of `rot` when there are any (the caller
 * chooses which), then suffix (the blank line and the body). */
struct tg_bench_request {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char *prefix;
    size_t prefix_len;
    char *suffix;
    size_t suffix_len;
    char **rot;
    size_t nrot;
};

/* Builds `rq` from the command line's parts: url (http://…), method (NULL = POST with a body,
 * else GET), body or body_file (or neither), extra header lines, header_file (NULL = none;
 * else its lines are rotated). 0, or -1 with *err naming the option and the problem. */
int tg_bench_request_init(struct tg_bench_request *rq, const char *url, const char *method,
                          const char *body, const char *body_file, const char *const *headers,
                          int nheaders, const char *header_file, const char **err);

/* Frees what tg_bench_request_init allocated. */
void tg_bench_request_free(struct tg_bench_request *rq);

#endif
