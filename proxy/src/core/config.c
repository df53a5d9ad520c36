/* config.c: the settings table; parsing, defaults, --help, .env.example and redaction. */
#include "core/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum cfg_kind {
    K_STR,    /* free text */
    K_SECRET, /* free text, redacted */
    K_INT,    /* int within [min, max] */
    K_INT64,  /* int64 within [min, max] */
    K_BOOL,   /* on/off */
    K_ENUM,   /* one of `choices`, stored as its index in an int-sized enum */
    K_PATH,   /* a path, not checked */
    K_FILE,   /* a readable file when set */
    K_URL,    /* http(s) URL when set */
};

#define F_REQUIRED 1u
#define F_SECRET   2u

struct cfg_entry {
    const char *name;
    enum cfg_kind kind;
    size_t off;  /* offset of the field in struct tg_config */
    size_t size; /* size of the field (strings) */
    const char *def;
    int64_t min, max;
    const char *choices; /* K_ENUM: "a|b|c" */
    unsigned flags;
    const char *help;
};

#define S(field) offsetof(struct tg_config, field), sizeof(((struct tg_config *)0)->field)

static const struct cfg_entry table[] = {
    /* server */
    {"TOLLGATE_LISTEN", K_STR, S(listen), "0.0.0.0:8080", 0, 0, NULL, 0,
     "address:port to serve (IPv6 as [::]:8080)"},
    {"TOLLGATE_WORKERS", K_INT, S(workers), "0", 0, 256, NULL, 0,
     "event-loop threads; 0 = number of cores"},
    {"MAX_BODY_BYTES", K_INT64, S(max_body_bytes), "10485760", 1024, 1073741824, NULL, 0,
     "largest request body accepted (413 above)"},
    {"TOLLGATE_DRAIN_S", K_INT, S(drain_s), "30", 0, 86400, NULL, 0,
     "on SIGTERM, how long in-flight requests may take to finish"},
    {"TOLLGATE_CLIENT_IDLE_TIMEOUT_S", K_INT, S(client_idle_timeout_s), "75", 1, 86400, NULL, 0,
     "close an idle keep-alive client connection after this long"},
    {"TOLLGATE_CLIENT_HEADER_TIMEOUT_S", K_INT, S(client_header_timeout_s), "30", 1, 3600, NULL, 0,
     "a client must send its request head and body within this time"},
    {"TOLLGATE_PASSTHROUGH_PATHS", K_STR, S(passthrough_paths), "", 0, 0, NULL, 0,
     "comma-separated path prefixes forwarded to the upstream unmetered (authenticated)"},
    {"DASHBOARD_DIR", K_PATH, S(dashboard_dir), "", 0, 0, NULL, 0,
     "where dashboard-static/ is served from (empty = built-in path)"},
    {"TOLLGATE_SCHEMA_DIR", K_PATH, S(schema_dir), "", 0, 0, NULL, 0,
     "where schema/ migrations are read from (empty = built-in path)"},
    {"TOLLGATE_INSTANCE_ID", K_STR, S(instance_id), "", 0, 0, NULL, 0,
     "name of this instance in logs and metrics (empty = hostname:pid)"},
    /* stores */
    {"DATABASE_URL", K_SECRET, S(database_url), NULL, 0, 0, NULL, F_REQUIRED,
     "libpq connection string (ledger, users, quotas)"},
    {"REDIS_URL", K_SECRET, S(redis_url_raw), NULL, 0, 0, NULL, F_REQUIRED,
     "redis://[:password@]host:port/db"},
    {"REDIS_TIMEOUT_MS", K_INT, S(redis_timeout_ms), "200", 5, 60000, NULL, 0,
     "a Redis command not answered within this time fails (then QUOTA_FAIL_MODE applies)"},
    {"REDIS_KEY_PREFIX", K_STR, S(redis_key_prefix), "tg:", 0, 0, NULL, 0,
     "prefix of every Redis key and channel tollgate uses"},
    {"DB_POOL_SIZE", K_INT, S(db_pool_size), "2", 1, 64, NULL, 0,
     "PostgreSQL connections for look-ups and the admin API (off the event loops)"},
    /* upstream */
    {"UPSTREAM_URL", K_URL, S(upstream_url_raw), NULL, 0, 0, NULL, F_REQUIRED,
     "base URL of the LiteLLM proxy, http or https"},
    {"UPSTREAM_API_KEY", K_SECRET, S(upstream_api_key), "", 0, 0, NULL, 0,
     "key tollgate sends upstream (LiteLLM master/virtual key)"},
    {"UPSTREAM_CA_FILE", K_FILE, S(upstream_ca_file), "", 0, 0, NULL, 0,
     "CA bundle for an https upstream (verification is always on); empty = system CAs"},
    {"UPSTREAM_CONNECT_TIMEOUT_MS", K_INT, S(upstream_connect_timeout_ms), "5000", 1, 600000, NULL,
     0, "connecting to the upstream; then 502"},
    {"UPSTREAM_FIRST_BYTE_TIMEOUT_S", K_INT, S(upstream_first_byte_timeout_s), "600", 1, 86400,
     NULL, 0, "request sent -> first reply byte; then 504"},
    {"UPSTREAM_IDLE_TIMEOUT_S", K_INT, S(upstream_idle_timeout_s), "300", 1, 86400, NULL, 0,
     "longest silence between two reply chunks"},
    {"UPSTREAM_TOTAL_TIMEOUT_S", K_INT, S(upstream_total_timeout_s), "0", 0, 86400, NULL, 0,
     "longest whole upstream exchange; 0 = no limit"},
    {"UPSTREAM_POOL_SIZE", K_INT, S(upstream_pool_size), "64", 0, 100000, NULL, 0,
     "idle keep-alive upstream connections kept per worker"},
    {"UPSTREAM_POOL_IDLE_S", K_INT, S(upstream_pool_idle_s), "4", 1, 86400, NULL, 0,
     "close a pooled upstream connection idle for this long (below the gateway's keep-alive)"},
    /* identity */
    {"JWT_SECRET", K_SECRET, S(jwt_secret), "", 0, 0, NULL, 0,
     "HMAC secret: accepts HS256/384/512 tokens"},
    {"JWT_PUBLIC_KEY_FILE", K_FILE, S(jwt_public_key_file), "", 0, 0, NULL, 0,
     "PEM public key: accepts RS256/384/512 or ES256/384/512 tokens"},
    {"JWT_JWKS_FILE", K_FILE, S(jwt_jwks_file), "", 0, 0, NULL, 0,
     "JWKS file (keys chosen by kid)"},
    {"JWT_JWKS_URL", K_URL, S(jwt_jwks_url_raw), "", 0, 0, NULL, 0,
     "JWKS URL, refreshed every JWT_JWKS_REFRESH_S (last good set kept on failure)"},
    {"JWT_JWKS_REFRESH_S", K_INT, S(jwt_jwks_refresh_s), "300", 5, 86400, NULL, 0,
     "how often JWT_JWKS_URL is fetched again"},
    {"JWT_ISSUER", K_STR, S(jwt_issuer), "", 0, 0, NULL, 0, "required iss claim when set"},
    {"JWT_AUDIENCE", K_STR, S(jwt_audience), "", 0, 0, NULL, 0, "required aud claim when set"},
    {"JWT_LEEWAY_S", K_INT, S(jwt_leeway_s), "30", 0, 3600, NULL, 0,
     "clock skew allowed on exp/nbf"},
    {"TOLLGATE_SERVICE_KEY", K_SECRET, S(service_key), "", 0, 0, NULL, 0,
     "shared key of a trusted front end that names the user in X-Tollgate-User"},
    {"TOLLGATE_ADMIN_KEY", K_SECRET, S(admin_key), "", 0, 0, NULL, 0,
     "key that grants the admin API (besides admin JWTs)"},
    {"TOLLGATE_API_KEYS", K_BOOL, S(api_keys), "off", 0, 0, NULL, 0,
     "accept personal API keys (tg-...) created in the admin API"},
    {"AUTH_CACHE_ENTRIES", K_INT, S(auth_cache_entries), "10000", 16, 10000000, NULL, 0,
     "verified credentials and user records cached per worker"},
    {"AUTH_CACHE_TTL_S", K_INT, S(auth_cache_ttl_s), "300", 1, 86400, NULL, 0,
     "longest time a cached API key or user record is trusted without a refresh"},
    /* quotas */
    {"QUOTA_DEFAULT_TOKENS", K_INT64, S(quota_default_tokens), "1000000", -1, INT64_MAX / 4, NULL,
     0, "quota for a user with none set; 0 = blocked, -1 = unlimited"},
    {"QUOTA_PERIOD", K_STR, S(quota_period), "month", 0, 0, NULL, 0,
     "month, week, day or none (a balance that never resets)"},
    {"QUOTA_TIMEZONE", K_STR, S(quota_timezone), "UTC", 0, 0, NULL, 0,
     "IANA zone in which periods start"},
    {"QUOTA_WARN_PERCENT", K_INT, S(quota_warn_percent), "80", 1, 100, NULL, 0,
     "the warning threshold"},
    {"QUOTA_WARN_INLINE", K_BOOL, S(quota_warn_inline), "on", 0, 0, NULL, 0,
     "put the warning in the chat reply"},
    {"QUOTA_BLOCK_STATUS", K_INT, S(quota_block_status), "402", 402, 429, NULL, 0,
     "HTTP status of a quota block: 402, 403 or 429"},
    {"QUOTA_FAIL_MODE", K_ENUM, S(quota_fail_mode), "closed", 0, 0, "closed|open", 0,
     "when Redis cannot answer: closed (503 at once) or open (serve, bill in the ledger)"},
    {"QUOTA_RESERVE_DEFAULT_TOKENS", K_INT64, S(quota_reserve_default_tokens), "1024", 0,
     INT64_MAX / 4, NULL, 0, "completion tokens reserved when a request sets no max_tokens"},
    {"QUOTA_RESERVE_MAX_TOKENS", K_INT64, S(quota_reserve_max_tokens), "131072", 1, INT64_MAX / 4,
     NULL, 0, "cap on one request's reservation"},
    {"QUOTA_RESERVATION_TTL_S", K_INT, S(quota_reservation_ttl_s), "1800", 10, 604800, NULL, 0,
     "a reservation not settled within this time (killed process) stops counting"},
    {"ALERT_WEBHOOK_URL", K_URL, S(alert_webhook_url_raw), "", 0, 0, NULL, 0,
     "receives quota events (JSON POST)"},
    /* ledger */
    {"LEDGER_SPOOL_DIR", K_PATH, S(ledger_spool_dir), "./spool", 0, 0, NULL, 0,
     "durable local spool for ledger rows PostgreSQL has not taken yet"},
    {"LEDGER_BATCH_ROWS", K_INT, S(ledger_batch_rows), "2000", 1, 100000, NULL, 0,
     "largest batch written to PostgreSQL at once"},
    {"LEDGER_FLUSH_MS", K_INT, S(ledger_flush_ms), "20", 1, 60000, NULL, 0,
     "longest time a finished row waits before its batch is written"},
    {"LEDGER_RING_BYTES", K_INT64, S(ledger_ring_bytes), "8388608", 65536, 1073741824, NULL, 0,
     "size of each worker's crash-safe ledger ring file"},
    /* streams */
    {"STREAM_ABORT_POLICY", K_ENUM, S(stream_abort_policy), "cancel", 0, 0, "cancel|drain", 0,
     "when a client leaves mid-stream: cancel the upstream or drain it to bill exact usage"},
    {"STREAM_DRAIN_MAX_S", K_INT, S(stream_drain_max_s), "30", 1, 86400, NULL, 0,
     "longest drain of an abandoned stream"},
    {"STREAM_DRAIN_MAX_CONCURRENT", K_INT, S(stream_drain_max_concurrent), "64", 0, 100000, NULL, 0,
     "drains at once per worker; beyond that abandoned streams are cancelled"},
    {"SSE_MAX_EVENT_BYTES", K_INT64, S(sse_max_event_bytes), "1048576", 1024, 67108864, NULL, 0,
     "largest single SSE event parsed for metering (larger ones pass through unparsed)"},
    /* logs */
    {"LOG_LEVEL", K_ENUM, S(log_level), "info", 0, 0, "debug|info|warn|error", 0,
     "debug, info, warn or error"},
    {"LOG_FORMAT", K_ENUM, S(log_format), "json", 0, 0, "json|text", 0,
     "json (one object a line) or text"},
};

/* ---- parsers --------------------------------------------------------------------------- */

TG_PRINTF(4, 5)
static int set_err(char *err, size_t errlen, const char *name, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (name != NULL)
        snprintf(err, errlen, "%s: %s", name, msg);
    else
        snprintf(err, errlen, "%s", msg);
    return -1;
}

static int parse_port(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

int tg_config_parse_url(const char *s, struct tg_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *p;
    if (strncmp(s, "http://", 7) == 0) {
        p = s + 7;
        out->port = 80;
    } else if (strncmp(s, "https://", 8) == 0) {
        p = s + 8;
        out->is_https = true;
        out->port = 443;
    } else {
        return set_err(err, errlen, NULL, "must start with http:// or https:// (got \"%s\")", s);
    }
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return set_err(err, errlen, NULL, "must not contain spaces or control characters");
    const char *host_end;
    const char *host = p;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (host_end == NULL)
            return set_err(err, errlen, NULL, "unterminated IPv6 address in \"%s\"", s);
        host = p + 1;
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/?#");
        p = host_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof(out->host))
        return set_err(err, errlen, NULL, "has no host (\"%s\")", s);
    if (memchr(host, '@', hlen) != NULL)
        return set_err(err, errlen, NULL, "must not carry credentials (\"%s\")", s);
    memcpy(out->host, host, hlen);
    if (*p == ':') {
        p++;
        size_t plen = strcspn(p, "/?#");
        if (parse_port(p, plen, &out->port) != 0)
            return set_err(err, errlen, NULL, "has an invalid port (\"%s\")", s);
        p += plen;
    }
    if (strpbrk(p, "?#") != NULL)
        return set_err(err, errlen, NULL, "must not have a query or fragment (\"%s\")", s);
    size_t plen = strlen(p);
    while (plen > 0 && p[plen - 1] == '/')
        plen--;
    if (plen >= sizeof(out->path))
        return set_err(err, errlen, NULL, "path too long");
    memcpy(out->path, p, plen);
    return 0;
}

int tg_config_parse_redis_url(const char *s, struct tg_redis_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(s, "redis://", 8) != 0) {
        if (strncmp(s, "rediss://", 9) == 0)
            return set_err(err, errlen, NULL,
                           "TLS (rediss://) is not supported by Debian 12's hiredis 0.14");
        return set_err(err, errlen, NULL, "must look like redis://[:password@]host:port/db");
    }
    const char *p = s + 8;
    const char *at = strrchr(p, '@');
    if (at != NULL) {
        const char *cred = p;
        const char *colon = memchr(cred, ':', (size_t)(at - cred));
        const char *pw = colon ? colon + 1 : cred;
        size_t pwlen = (size_t)(at - pw);
        if (pwlen >= sizeof(out->password))
            return set_err(err, errlen, NULL, "password too long");
        memcpy(out->password, pw, pwlen);
        p = at + 1;
    }
    const char *host = p, *host_end;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (host_end == NULL)
            return set_err(err, errlen, NULL, "unterminated IPv6 address");
        host = p + 1;
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/");
        p = host_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof(out->host))
        return set_err(err, errlen, NULL, "has no host");
    memcpy(out->host, host, hlen);
    if (*p == ':') {
        p++;
        size_t plen = strcspn(p, "/");
        if (parse_port(p, plen, &out->port) != 0)
            return set_err(err, errlen, NULL, "has an invalid port");
        p += plen;
    }
    if (*p == '/' && p[1] != '\0') {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (*end != '\0' || db < 0 || db > 1000000)
            return set_err(err, errlen, NULL, "has an invalid database number");
        out->db = (int)db;
    } else if (*p != '\0' && strcmp(p, "/") != 0) {
        return set_err(err, errlen, NULL, "must look like redis://[:password@]host:port/db");
    }
    return 0;
}

int tg_config_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *err,
                           size_t errlen)
{
    memset(ss, 0, sizeof(*ss));
    const char *colon;
    char host[256];
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return set_err(err, errlen, NULL, "must be address:port, e.g. [::]:8080 (got \"%s\")",
                           s);
        size_t hl = (size_t)(rb - s - 1);
        if (hl >= sizeof(host))
            return set_err(err, errlen, NULL, "address too long");
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return set_err(err, errlen, NULL,
                           "must be address:port, e.g. 0.0.0.0:8080 (got \"%s\")", s);
        size_t hl = (size_t)(colon - s);
        if (hl >= sizeof(host))
            return set_err(err, errlen, NULL, "address too long");
        memcpy(host, s, hl);
        host[hl] = '\0';
    }
    uint16_t port;
    if (parse_port(colon + 1, strlen(colon + 1), &port) != 0)
        return set_err(err, errlen, NULL, "has an invalid port (got \"%s\")", s);
    if (host[0] == '\0' || strcmp(host, "*") == 0)
        strcpy(host, "0.0.0.0");
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof(*a6);
        return 0;
    }
    return set_err(err, errlen, NULL, "is not an IP address:port (got \"%s\")", s);
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"on", "true", "1", "yes"};
    static const char *no[] = {"off", "false", "0", "no"};
    for (size_t i = 0; i < TG_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_int64(const char *s, int64_t *out)
{
    if (*s == '\0')
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

static int enum_index(const char *choices, const char *s)
{
    int idx = 0;
    const char *p = choices;
    size_t slen = strlen(s);
    while (*p) {
        size_t n = strcspn(p, "|");
        if (n == slen && strncasecmp(p, s, n) == 0)
            return idx;
        p += n;
        if (*p == '|')
            p++;
        idx++;
    }
    return -1;
}

static int apply(const struct cfg_entry *e, const char *val, struct tg_config *cfg, char *err,
                 size_t errlen)
{
    char *field = (char *)cfg + e->off;
    switch (e->kind) {
    case K_STR:
    case K_SECRET:
    case K_PATH:
    case K_FILE:
    case K_URL: {
        size_t n = strlen(val);
        if (n >= e->size)
            return set_err(err, errlen, e->name, "value too long");
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)val[i] < 0x20 && val[i] != '\t')
                return set_err(err, errlen, e->name, "must not contain control characters");
        memcpy(field, val, n + 1);
        if (e->kind == K_FILE && n > 0 && access(val, R_OK) != 0) {
            char msg[300];
            snprintf(msg, sizeof(msg), "cannot read %s: %s", val, strerror(errno));
            return set_err(err, errlen, e->name, "%s", msg);
        }
        if (e->kind == K_URL && n > 0) {
            struct tg_url u;
            char uerr[256];
            if (tg_config_parse_url(val, &u, uerr, sizeof(uerr)) != 0)
                return set_err(err, errlen, e->name, "%s", uerr);
        }
        return 0;
    }
    case K_INT:
    case K_INT64: {
        int64_t v;
        if (!parse_int64(val, &v))
            return set_err(err, errlen, e->name, "must be an integer (got \"%s\")", val);
        if (v < e->min || v > e->max) {
            char msg[200];
            snprintf(msg, sizeof(msg), "must be between %lld and %lld (got %s)", (long long)e->min,
                     (long long)e->max, val);
            return set_err(err, errlen, e->name, "%s", msg);
        }
        if (e->kind == K_INT)
            *(int *)field = (int)v;
        else
            *(int64_t *)field = v;
        return 0;
    }
    case K_BOOL: {
        bool b;
        if (!parse_bool(val, &b))
            return set_err(err, errlen, e->name, "must be on or off (got \"%s\")", val);
        *(bool *)field = b;
        return 0;
    }
    case K_ENUM: {
        int idx = enum_index(e->choices, val);
        if (idx < 0) {
            char msg[200];
            snprintf(msg, sizeof(msg), "must be one of %s (got \"%s\")", e->choices, val);
            return set_err(err, errlen, e->name, "%s", msg);
        }
        *(int *)field = idx;
        return 0;
    }
    }
    return -1;
}

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

int tg_config_load(tg_config_get_fn get, void *arg, struct tg_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < TG_ARRAY_LEN(table); i++) {
        const struct cfg_entry *e = &table[i];
        const char *val = get(e->name, arg);
        if (val == NULL || (val[0] == '\0' && (e->flags & F_REQUIRED))) {
            if (e->flags & F_REQUIRED)
                return set_err(err, errlen, e->name, "is required but not set");
            val = e->def;
        }
        if (val != NULL && apply(e, val, cfg, err, errlen) != 0)
            return -1;
    }

    char sub[300];
    if (tg_config_parse_listen(cfg->listen, &cfg->listen_addr, &cfg->listen_addr_len, sub,
                               sizeof(sub)) != 0)
        return set_err(err, errlen, "TOLLGATE_LISTEN", "%s", sub);
    if (tg_config_parse_url(cfg->upstream_url_raw, &cfg->upstream, sub, sizeof(sub)) != 0)
        return set_err(err, errlen, "UPSTREAM_URL", "%s", sub);
    if (tg_config_parse_redis_url(cfg->redis_url_raw, &cfg->redis, sub, sizeof(sub)) != 0)
        return set_err(err, errlen, "REDIS_URL", "%s", sub);
    if (strcmp(cfg->quota_period, "month") != 0 && strcmp(cfg->quota_period, "week") != 0 &&
        strcmp(cfg->quota_period, "day") != 0 && strcmp(cfg->quota_period, "none") != 0)
        return set_err(err, errlen, "QUOTA_PERIOD", "must be month, week, day or none (got \"%s\")",
                       cfg->quota_period);
    if (cfg->quota_block_status != 402 && cfg->quota_block_status != 403 &&
        cfg->quota_block_status != 429)
        return set_err(err, errlen, "QUOTA_BLOCK_STATUS", "must be 402, 403 or 429");
    if (!is_set(cfg->quota_timezone))
        return set_err(err, errlen, "QUOTA_TIMEZONE", "must not be empty");
    if (cfg->quota_reserve_default_tokens > cfg->quota_reserve_max_tokens)
        return set_err(err, errlen, "QUOTA_RESERVE_DEFAULT_TOKENS",
                       "must not exceed QUOTA_RESERVE_MAX_TOKENS");
    if (strchr(cfg->redis_key_prefix, '{') || strchr(cfg->redis_key_prefix, '}'))
        return set_err(err, errlen, "REDIS_KEY_PREFIX", "must not contain { or }");
    if (is_set(cfg->jwt_jwks_url_raw) && is_set(cfg->jwt_jwks_file))
        return set_err(err, errlen, "JWT_JWKS_URL", "set JWT_JWKS_URL or JWT_JWKS_FILE, not both");
    if (is_set(cfg->service_key) && strlen(cfg->service_key) < 16)
        return set_err(err, errlen, "TOLLGATE_SERVICE_KEY", "must be at least 16 characters");
    if (is_set(cfg->admin_key) && strlen(cfg->admin_key) < 16)
        return set_err(err, errlen, "TOLLGATE_ADMIN_KEY", "must be at least 16 characters");
    if (is_set(cfg->jwt_secret) && strlen(cfg->jwt_secret) < 32)
        return set_err(err, errlen, "JWT_SECRET",
                       "must be at least 32 characters (256 bits for HS256)");
    bool any_auth = is_set(cfg->jwt_secret) || is_set(cfg->jwt_public_key_file) ||
                    is_set(cfg->jwt_jwks_file) || is_set(cfg->jwt_jwks_url_raw) ||
                    is_set(cfg->service_key) || cfg->api_keys;
    if (!any_auth)
        return set_err(err, errlen, NULL,
                       "no way to authenticate users is configured: set JWT_SECRET, "
                       "JWT_PUBLIC_KEY_FILE, JWT_JWKS_FILE, JWT_JWKS_URL, TOLLGATE_SERVICE_KEY "
                       "or TOLLGATE_API_KEYS=on");
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n > 0 ? (int)TG_MIN(n, 256) : 1;
    }
    if (!is_set(cfg->instance_id)) {
        char hn[48] = "tollgate";
        gethostname(hn, sizeof(hn) - 1);
        hn[sizeof(hn) - 1] = '\0';
        snprintf(cfg->instance_id, sizeof(cfg->instance_id), "%s:%d", hn, (int)getpid());
    }
    return 0;
}

/* ---- output ------------------------------------------------------------------------------ */

static const char *def_text(const struct cfg_entry *e)
{
    if (e->flags & F_REQUIRED)
        return "(required)";
    if (e->def == NULL || e->def[0] == '\0')
        return "(empty)";
    return e->def;
}

void tg_config_print_help(FILE *out)
{
    fprintf(out, "Environment variables (also read from --env-file FILE; the real environment "
                 "wins):\n\n");
    for (size_t i = 0; i < TG_ARRAY_LEN(table); i++) {
        const struct cfg_entry *e = &table[i];
        fprintf(out, "  %-32s %s\n  %-32s default: %s\n", e->name, e->help, "", def_text(e));
    }
}

void tg_config_print_env_example(FILE *out)
{
    fprintf(out, "# tollgate configuration: every variable with its default.\n"
                 "# Generated by `tollgate --print-env-example`; the real environment wins over "
                 "this file.\n\n");
    for (size_t i = 0; i < TG_ARRAY_LEN(table); i++) {
        const struct cfg_entry *e = &table[i];
        fprintf(out, "# %s%s\n", e->help, (e->flags & F_REQUIRED) ? " (required)" : "");
        if (e->flags & F_REQUIRED) {
            const char *ex = "";
            if (strcmp(e->name, "DATABASE_URL") == 0)
                ex = "postgresql://tollgate:tollgate@127.0.0.1:5432/tollgate";
            else if (strcmp(e->name, "REDIS_URL") == 0)
                ex = "redis://127.0.0.1:6379/0";
            else if (strcmp(e->name, "UPSTREAM_URL") == 0)
                ex = "http://127.0.0.1:4000";
            fprintf(out, "%s=%s\n\n", e->name, ex);
        } else {
            fprintf(out, "%s=%s\n\n", e->name, e->def ? e->def : "");
        }
    }
}

static void redact_url_password(const char *in, char *out, size_t cap)
{
    /* scheme://user:password@host → scheme://user:***@host; libpq key=value password=... too */
    snprintf(out, cap, "%s", in);
    char *scheme = strstr(out, "://");
    if (scheme != NULL) {
        char *at = strrchr(scheme, '@');
        char *colon = scheme + 3;
        colon = at ? memchr(colon, ':', (size_t)(at - colon)) : NULL;
        if (at != NULL && colon != NULL) {
            char rest[1024];
            snprintf(rest, sizeof(rest), "%s", at);
            snprintf(colon + 1, cap - (size_t)(colon + 1 - out), "***%s", rest);
        }
    }
    char *pw = strstr(out, "password=");
    if (pw != NULL) {
        char *end = pw + 9 + strcspn(pw + 9, " ");
        char rest[1024];
        snprintf(rest, sizeof(rest), "%s", end);
        snprintf(pw + 9, cap - (size_t)(pw + 9 - out), "***%s", rest);
    }
}

void tg_config_print_effective(const struct tg_config *cfg, FILE *out)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(table); i++) {
        const struct cfg_entry *e = &table[i];
        const char *field = (const char *)cfg + e->off;
        char buf[1100];
        switch (e->kind) {
        case K_SECRET:
            if (strcmp(e->name, "DATABASE_URL") == 0 || strcmp(e->name, "REDIS_URL") == 0)
                redact_url_password(field, buf, sizeof(buf));
            else
                snprintf(buf, sizeof(buf), "%s", field[0] ? "(set, redacted)" : "(empty)");
            break;
        case K_INT:
        case K_ENUM:
            if (e->kind == K_ENUM) {
                int idx = *(const int *)field;
                const char *p = e->choices;
                for (int k = 0; k < idx && *p; k++)
                    p += strcspn(p, "|") + 1;
                snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(p, "|"), p);
            } else {
                snprintf(buf, sizeof(buf), "%d", *(const int *)field);
            }
            break;
        case K_INT64:
            snprintf(buf, sizeof(buf), "%lld", (long long)*(const int64_t *)field);
            break;
        case K_BOOL:
            snprintf(buf, sizeof(buf), "%s", *(const bool *)field ? "on" : "off");
            break;
        default:
            snprintf(buf, sizeof(buf), "%s", field);
            break;
        }
        fprintf(out, "  %s=%s\n", e->name, buf);
    }
}

/* ---- dotenv ------------------------------------------------------------------------------ */

struct tg_dotenv {
    size_t n;
    char **names;
    char **values;
};

void tg_dotenv_destroy(struct tg_dotenv *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->names[i]);
        free(d->values[i]);
    }
    free(d->names);
    free(d->values);
    free(d);
}

const char *tg_dotenv_get(const struct tg_dotenv *d, const char *name)
{
    if (d == NULL)
        return NULL;
    for (size_t i = d->n; i-- > 0;)
        if (strcmp(d->names[i], name) == 0)
            return d->values[i];
    return NULL;
}

static int dotenv_add(struct tg_dotenv *d, const char *name, size_t nlen, const char *val,
                      size_t vlen)
{
    char **nn = realloc(d->names, (d->n + 1) * sizeof(*nn));
    if (nn == NULL)
        return -1;
    d->names = nn;
    char **nv = realloc(d->values, (d->n + 1) * sizeof(*nv));
    if (nv == NULL)
        return -1;
    d->values = nv;
    d->names[d->n] = strndup(name, nlen);
    d->values[d->n] = strndup(val, vlen);
    if (d->names[d->n] == NULL || d->values[d->n] == NULL) {
        free(d->names[d->n]);
        free(d->values[d->n]);
        return -1;
    }
    d->n++;
    return 0;
}

int tg_dotenv_load(const char *path, struct tg_dotenv **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "--env-file: cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct tg_dotenv *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        fclose(f);
        snprintf(err, errlen, "--env-file: out of memory");
        return -1;
    }
    char line[8192];
    int lineno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            goto fail;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        if (strncmp(p, "export ", 7) == 0)
            p += 7;
        char *eq = strchr(p, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%d: expected NAME=value", path, lineno);
            goto fail;
        }
        char *name_end = eq;
        while (name_end > p && (name_end[-1] == ' ' || name_end[-1] == '\t'))
            name_end--;
        for (char *c = p; c < name_end; c++) {
            if (!(isalnum((unsigned char)*c) || *c == '_')) {
                snprintf(err, errlen, "%s:%d: invalid variable name", path, lineno);
                goto fail;
            }
        }
        char *v = eq + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t vlen;
        if (*v == '"' || *v == '\'') {
            char q = *v++;
            char *close = strrchr(v, q);
            if (close == NULL) {
                snprintf(err, errlen, "%s:%d: unterminated quote", path, lineno);
                goto fail;
            }
            vlen = (size_t)(close - v);
        } else {
            /* unquoted: a " #" starts a comment */
            char *hash = strstr(v, " #");
            vlen = hash ? (size_t)(hash - v) : strlen(v);
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
        }
        if (dotenv_add(d, p, (size_t)(name_end - p), v, vlen) != 0) {
            snprintf(err, errlen, "--env-file: out of memory");
            goto fail;
        }
    }
    fclose(f);
    *out = d;
    return 0;
fail:
    fclose(f);
    tg_dotenv_destroy(d);
    return -1;
}
