/* main.c: command line, configuration, sub-commands. No logic of its own. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "core/config.h"
#include "db/migrate.h"
#include "http/app.h"
#include "http/worker.h"
#include "meter/tokenizer/tokenizer.h"
#include "quota/tz.h"

#ifndef TG_VERSION
#define TG_VERSION "0.0.0"
#endif

static const char *get_env(const char *name, void *arg)
{
    (void)arg;
    return getenv(name);
}

static void usage(FILE *out)
{
    fprintf(out,
            "tollgate %s: a token-metering reverse proxy for LLM gateways\n\n"
            "Usage:\n"
            "  tollgate [--env-file FILE]                 serve\n"
            "  tollgate [--env-file FILE] --check-config  validate, connect to PostgreSQL, "
            "Redis and the upstream, report; exit 0/1\n"
            "  tollgate [--env-file FILE] migrate [--schema-dir DIR]\n"
            "                                             apply schema/ migrations\n"
            "  tollgate tokens --model M [--messages]     count tokens of stdin\n"
            "  tollgate --print-env-example               write .env.example\n"
            "  tollgate --version | --help\n\n"
            "Bad configuration stops start-up with one line naming the variable (exit 2).\n\n",
            TG_VERSION);
    tg_config_print_help(out);
}

/* Real environment wins over the file. */
static int load_env_file(const char *path)
{
    struct tg_dotenv *d = NULL;
    char err[512];
    if (tg_dotenv_load(path, &d, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    FILE *f = fopen(path, "r");
    char line[8192];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "export ", 7) == 0)
            p += 7;
        size_t n = strcspn(p, "= \t");
        if (n == 0 || p[0] == '#' || n >= 128)
            continue;
        char name[128];
        memcpy(name, p, n);
        name[n] = '\0';
        const char *v = tg_dotenv_get(d, name);
        if (v != NULL)
            setenv(name, v, 0);
    }
    if (f != NULL)
        fclose(f);
    tg_dotenv_destroy(d);
    return 0;
}

/* ---- --check-config ---------------------------------------------------------------------- */

static bool check_pg(const struct tg_config *cfg)
{
    const char *keys[] = {"dbname", "connect_timeout", NULL};
    const char *vals[] = {cfg->database_url, "5", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        printf("  postgresql: FAILED: %s", PQerrorMessage(c));
        PQfinish(c);
        return false;
    }
    PGresult *r = PQexec(c, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        printf("  postgresql: connected (server %d), but the schema is missing: run `tollgate "
               "migrate`\n",
               PQserverVersion(c));
        PQclear(r);
        PQfinish(c);
        return false;
    }
    printf("  postgresql: ok (server %d, schema version %s)\n", PQserverVersion(c),
           PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return true;
}

static bool check_redis(const struct tg_config *cfg)
{
    struct timeval tv = {3, 0};
    redisContext *c = redisConnectWithTimeout(cfg->redis.host, cfg->redis.port, tv);
    if (c == NULL || c->err) {
        printf("  redis: FAILED: %s\n", c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return false;
    }
    redisSetTimeout(c, tv);
    if (cfg->redis.password[0]) {
        redisReply *r = redisCommand(c, "AUTH %s", cfg->redis.password);
        bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
        if (!ok) {
            printf("  redis: FAILED: AUTH refused\n");
            redisFree(c);
            return false;
        }
    }
    redisReply *r = redisCommand(c, "PING");
    bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;
    printf("  redis: %s\n", ok ? "ok" : "FAILED: no answer to PING");
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

static bool check_upstream(const struct tg_config *cfg)
{
    const struct tg_url *u = &cfg->upstream;
    char port[8];
    snprintf(port, sizeof(port), "%u", u->port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(u->host, port, &hints, &res);
    if (rc != 0) {
        printf("  upstream: FAILED: cannot resolve %s: %s\n", u->host, gai_strerror(rc));
        return false;
    }
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        printf("  upstream: FAILED: cannot connect to %s:%u: %s\n", u->host, u->port,
               strerror(errno));
        freeaddrinfo(res);
        if (fd >= 0)
            close(fd);
        return false;
    }
    freeaddrinfo(res);
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s/health/liveliness HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     u->path, u->host);
    char resp[256] = "";
    bool ok = false;
    if (u->is_https) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (cfg->upstream_ca_file[0])
            SSL_CTX_load_verify_locations(ctx, cfg->upstream_ca_file, NULL);
        else
            SSL_CTX_set_default_verify_paths(ctx);
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        SSL_set_tlsext_host_name(ssl, u->host);
        struct in6_addr tmp;
        if (inet_pton(AF_INET, u->host, &tmp) == 1 || inet_pton(AF_INET6, u->host, &tmp) == 1)
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), u->host);
        else
            SSL_set1_host(ssl, u->host);
        if (SSL_connect(ssl) != 1) {
            long vr = SSL_get_verify_result(ssl);
            printf("  upstream: FAILED: TLS: %s\n",
                   vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "handshake failed");
        } else if (SSL_write(ssl, req, n) == n) {
            int got = SSL_read(ssl, resp, sizeof(resp) - 1);
            ok = got > 12;
            if (got > 0)
                resp[got] = '\0';
        }
        SSL_free(ssl);
        SSL_CTX_free(ctx);
    } else if (write(fd, req, (size_t)n) == n) {
        ssize_t got = read(fd, resp, sizeof(resp) - 1);
        ok = got > 12;
        if (got > 0)
            resp[got] = '\0';
    }
    close(fd);
    if (ok && strncmp(resp, "HTTP/1.", 7) == 0)
        printf("  upstream: ok (%s answered %.3s)\n", cfg->upstream_url_raw, resp + 9);
    else if (ok || resp[0] == '\0')
        printf("  upstream: FAILED: no HTTP answer from %s\n", cfg->upstream_url_raw);
    return ok && strncmp(resp, "HTTP/1.", 7) == 0;
}

static int check_config(struct tg_config *cfg)
{
    printf("tollgate %s configuration:\n", TG_VERSION);
    tg_config_print_effective(cfg, stdout);
    printf("checks:\n");
    char err[300];
    struct tg_tz *tz = tg_tz_load(cfg->quota_timezone, err, sizeof(err));
    bool ok = true;
    if (tz == NULL) {
        printf("  QUOTA_TIMEZONE: FAILED: %s\n", err);
        ok = false;
    } else {
        printf("  QUOTA_TIMEZONE: ok (%s)\n", cfg->quota_timezone);
        tg_tz_destroy(tz);
    }
    ok &= check_pg(cfg);
    ok &= check_redis(cfg);
    ok &= check_upstream(cfg);
    printf("result: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    int i = 1;
    bool want_check = false;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--env-file") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "--env-file: needs a file name\n");
                return 2;
            }
            if (load_env_file(argv[++i]) != 0)
                return 2;
        } else if (strncmp(argv[i], "--env-file=", 11) == 0) {
            if (load_env_file(argv[i] + 11) != 0)
                return 2;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("tollgate %s\n", TG_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--print-env-example") == 0) {
            tg_config_print_env_example(stdout);
            return 0;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            want_check = true;
        } else if (strcmp(argv[i], "migrate") == 0) {
            return tg_migrate_main(argc - i, argv + i);
        } else if (strcmp(argv[i], "tokens") == 0) {
            return tg_tokens_main(argc - i, argv + i);
        } else {
            fprintf(stderr, "tollgate: unknown argument %s (see --help)\n", argv[i]);
            return 2;
        }
    }
    static struct tg_app app;
    tg_app = &app;
    char err[600];
    if (tg_config_load(get_env, NULL, &app.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (want_check)
        return check_config(&app.cfg);
    return tg_app_run();
}
