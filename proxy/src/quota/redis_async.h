/* redis_async.h: exactly-once async Redis client over hiredis 0.14 + libevent: per-command
 * time-outs, reconnect with backoff, EVALSHA with NOSCRIPT fallback, pub/sub subscriber. */
#ifndef TG_REDIS_ASYNC_H
#define TG_REDIS_ASYNC_H

#include <hiredis/hiredis.h>

#include "core/common.h"

struct event_base;
struct tg_redis;

/* Why a callback got no reply. */
enum tg_redis_status {
    TG_REDIS_OK = 0,        /* reply != NULL (it may be an error reply: REDIS_REPLY_ERROR) */
    TG_REDIS_TIMEOUT,       /* a command on the connection got no reply within timeout_ms: every
                               command in flight failed and the connection was dropped */
    TG_REDIS_DISCONNECTED,  /* the connection broke while the command was in flight */
    TG_REDIS_NOT_CONNECTED, /* not connected (or still connecting) when issued: failed at once */
    TG_REDIS_SHUTDOWN,      /* tg_redis_destroy ran before the reply */
};

/* "ok", "timeout", "disconnected", "not connected", "shutdown". */
const char *tg_redis_status_name(enum tg_redis_status st);

/* Completion of one command: called exactly once, never from inside the call that issued the
 * command. reply is borrowed (valid until the callback returns), NULL unless st == TG_REDIS_OK.
 * The callback may issue commands and may call tg_redis_destroy. */
typedef void (*tg_redis_cb)(void *arg, const redisReply *reply, enum tg_redis_status st);

/* Connection state changes: ready = AUTH, SELECT and PING (and SUBSCRIBE for a subscriber)
 * succeeded; !ready = the connection was lost. */
typedef void (*tg_redis_state_cb)(void *arg, bool ready);

struct tg_redis_opts {
    const char *host; /* copied */
    int port;
    const char *password;       /* copied; NULL or "" for none */
    int db;                     /* SELECTed when > 0 */
    int timeout_ms;             /* per command, and for connect + AUTH/SELECT/PING; > 0 */
    int reconnect_min_ms;       /* first retry delay after a failure (0: 100) */
    int reconnect_max_ms;       /* the delay doubles up to this (0: 5000) */
    tg_redis_state_cb on_state; /* optional */
    void *state_arg;
};

/* Counters for metrics and tests. */
struct tg_redis_stats {
    uint64_t commands;    /* commands issued */
    uint64_t failed_fast; /* failed with TG_REDIS_NOT_CONNECTED */
    uint64_t timeouts;    /* connections dropped for a time-out */
    uint64_t connects;    /* times the connection became ready */
    uint64_t disconnects; /* times a ready connection was lost */
    uint64_t noscript;    /* EVALSHA retried as EVAL after NOSCRIPT */
};

/* Creates a client on `base` and starts connecting (the first attempt is made at once; later
 * ones after the backoff). Commands fail with TG_REDIS_NOT_CONNECTED until it is ready.
 * opts' strings are copied. Returns NULL on bad options or out of memory. The caller owns the
 * client: tg_redis_destroy. All calls must come from the thread running `base`. */
TG_MUST_CHECK struct tg_redis *tg_redis_create(struct event_base *base,
                                               const struct tg_redis_opts *o);

/* Creates a subscriber on its own connection: SUBSCRIBEs `channel` after every (re)connect.
 * on_message(arg, payload, len) gets each message (payload borrowed for the call);
 * on_subscribed(arg) runs every time the subscription is (re)established; messages published
 * while it was down are lost, so a cache should be flushed then. Commands are refused (-1).
 * Returns NULL on bad options or out of memory; free with tg_redis_destroy. */
typedef void (*tg_redis_message_cb)(void *arg, const char *payload, size_t len);
typedef void (*tg_redis_subscribed_cb)(void *arg);
TG_MUST_CHECK struct tg_redis *
tg_redis_subscribe(struct event_base *base, const struct tg_redis_opts *o, const char *channel,
                   tg_redis_message_cb on_message, tg_redis_subscribed_cb on_subscribed, void *arg);

/* Fails every pending command exactly once (TG_REDIS_SHUTDOWN, or its own earlier status),
 * closes the connection and frees the client. Callbacks may run inside this call. May be
 * called from a callback of this client: memory is then released once the callback chain
 * has unwound. NULL is accepted. */
void tg_redis_destroy(struct tg_redis *r);

/* True when commands are being sent to a connection that passed its handshake. */
bool tg_redis_is_ready(const struct tg_redis *r);

/* The last connection or protocol error (borrowed; "" when none). */
const char *tg_redis_last_error(const struct tg_redis *r);

void tg_redis_get_stats(const struct tg_redis *r, struct tg_redis_stats *out);

/* Issues a command (hiredis format: "SET %s %b", ...). Returns 0 and calls cb exactly once
 * later, or -1 (cb never called) when the format is invalid, on a subscriber, or out of
 * memory. The command is pipelined; a command issued while the client is not ready fails with
 * TG_REDIS_NOT_CONNECTED on the next loop turn, without touching the network. */
TG_MUST_CHECK int tg_redis_command(struct tg_redis *r, tg_redis_cb cb, void *arg, const char *fmt,
                                   ...);

/* Same with an argument vector (argv/argvlen borrowed for the call; argvlen NULL = strlen). */
TG_MUST_CHECK int tg_redis_command_argv(struct tg_redis *r, tg_redis_cb cb, void *arg, int argc,
                                        const char **argv, const size_t *argvlen);

/* Formats a command in the Redis protocol (RESP), byte for byte as hiredis'
 * redisFormatCommandArgv does, without printf. argvlen NULL = strlen. On success *out is a
 * NUL-terminated malloc'd buffer the caller frees with free(), and the return value is its
 * length; -1 (and *out NULL) when argc <= 0, the command exceeds INT_MAX bytes or out of
 * memory. */
TG_MUST_CHECK int tg_redis_format_argv(char **out, int argc, const char **argv,
                                       const size_t *argvlen);

/* A Lua script compiled into the binary. */
struct tg_redis_script {
    const char *name; /* for logs */
    const char *sha1; /* 40 lowercase hex digits of source */
    size_t source_len;
    const char *source;
};

/* EVALSHA script nkeys argv... (argv holds the nkeys keys, then the arguments, at most 64 in
 * all; borrowed for the call; argvlen NULL = strlen). When Redis answers NOSCRIPT the same call is
 * sent once as EVAL (which also loads the script), and cb sees only that reply. Same return
 * contract as tg_redis_command. */
TG_MUST_CHECK int tg_redis_evalsha(struct tg_redis *r, const struct tg_redis_script *s, int nkeys,
                                   int argc, const char **argv, const size_t *argvlen,
                                   tg_redis_cb cb, void *arg);

#endif
