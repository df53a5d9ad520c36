/* config.h: every setting of tollgate, read from one table (env + --env-file). */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/common.h"

enum tg_abort_policy { TG_ABORT_CANCEL, TG_ABORT_DRAIN };
enum tg_fail_mode { TG_FAIL_CLOSED, TG_FAIL_OPEN };
enum tg_log_format { TG_LOGF_JSON, TG_LOGF_TEXT };
enum tg_log_level { TG_LOG_DEBUG, TG_LOG_INFO, TG_LOG_WARN, TG_LOG_ERROR };

/* A parsed http(s) URL. */
struct tg_url {
    bool is_https;
    char host[256];
    uint16_t port;
    char path[512]; /* base path without trailing '/', "" for none */
};

struct tg_redis_url {
    char host[256];
    uint16_t port;
    char password[256];
    int db;
};

struct tg_config {
    /* server */
    char listen[300]; /* as given */
    struct sockaddr_storage listen_addr;
    socklen_t listen_addr_len;
    int workers;
    int64_t max_body_bytes;
    int drain_s;
    int client_idle_timeout_s;
    int client_header_timeout_s;
    char passthrough_paths[1024]; /* comma-separated path prefixes forwarded unmetered */
    char dashboard_dir[1024];
    char schema_dir[1024];
    char instance_id[64];
    /* stores */
    char database_url[2048];
    char redis_url_raw[600];
    struct tg_redis_url redis;
    int redis_timeout_ms;
    char redis_key_prefix[64];
    int db_pool_size;
    /* upstream */
    char upstream_url_raw[1024];
    struct tg_url upstream;
    char upstream_api_key[1024];
    char upstream_ca_file[1024];
    int upstream_connect_timeout_ms;
    int upstream_first_byte_timeout_s;
    int upstream_idle_timeout_s;
    int upstream_total_timeout_s; /* 0 = none */
    int upstream_pool_size;       /* idle keep-alive connections kept per worker */
    int upstream_pool_idle_s;
    /* identity */
    char jwt_secret[1024];
    char jwt_public_key_file[1024];
    char jwt_jwks_file[1024];
    char jwt_jwks_url_raw[1024];
    int jwt_jwks_refresh_s;
    char jwt_issuer[512];
    char jwt_audience[512];
    int jwt_leeway_s;
    char service_key[512];
    char admin_key[512];
    bool api_keys;
    int auth_cache_entries;
    int auth_cache_ttl_s;
    /* quotas */
    int64_t quota_default_tokens;
    char quota_period[16];
    char quota_timezone[128];
    int quota_warn_percent;
    bool quota_warn_inline;
    int quota_block_status;
    enum tg_fail_mode quota_fail_mode;
    int64_t quota_reserve_default_tokens;
    int64_t quota_reserve_max_tokens;
    int quota_reservation_ttl_s;
    char alert_webhook_url_raw[1024];
    /* ledger */
    char ledger_spool_dir[1024];
    int ledger_batch_rows;
    int ledger_flush_ms;
    int64_t ledger_ring_bytes;
    /* streams */
    enum tg_abort_policy stream_abort_policy;
    int stream_drain_max_s;
    int stream_drain_max_concurrent;
    int64_t sse_max_event_bytes;
    /* logs */
    enum tg_log_level log_level;
    enum tg_log_format log_format;
};

/* Reads one variable: returns its value or NULL when unset. */
typedef const char *(*tg_config_get_fn)(const char *name, void *arg);

/* Fills `cfg` from the table's defaults and `get`. Returns 0, or -1 with one line in err
 * naming the variable and the problem ("UPSTREAM_URL: must start with http:// or https://").
 * Does not touch files other than checking that configured key files are readable. */
TG_MUST_CHECK int tg_config_load(tg_config_get_fn get, void *arg, struct tg_config *cfg, char *err,
                                 size_t errlen);

/* Writes the --help text of all variables (name, default, meaning). */
void tg_config_print_help(FILE *out);
/* Writes .env.example: every variable with its default and one line of meaning. */
void tg_config_print_env_example(FILE *out);
/* Writes "NAME=value" for every variable, secrets redacted (for --check-config). */
void tg_config_print_effective(const struct tg_config *cfg, FILE *out);

/* dotenv: parses FILE into a list of NAME=VALUE (export prefix, quotes, comments).
 * Returns 0, or -1 with "FILE:LINE: problem" in err. */
struct tg_dotenv;
TG_MUST_CHECK int tg_dotenv_load(const char *path, struct tg_dotenv **out, char *err,
                                 size_t errlen);
const char *tg_dotenv_get(const struct tg_dotenv *d, const char *name);
void tg_dotenv_destroy(struct tg_dotenv *d);

/* Pure parsers, exposed for tests and for other modules. */
TG_MUST_CHECK int tg_config_parse_url(const char *s, struct tg_url *out, char *err, size_t errlen);
TG_MUST_CHECK int tg_config_parse_redis_url(const char *s, struct tg_redis_url *out, char *err,
                                            size_t errlen);
TG_MUST_CHECK int tg_config_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                                         char *err, size_t errlen);

#endif
