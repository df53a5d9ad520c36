/* fake_upstream.c: the fake LiteLLM — an OpenAI-compatible HTTP/1.1 (+TLS) server with fault
 * knobs, used by the integration tests, `make run`'s demo mode and the benchmarks. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "fake_gen.h"
#include "fake_http.h"
#include "fake_record.h"

#define MAX_HEAD_BYTES  (64 * 1024)
#define MAX_BODY_BYTES  (64 * 1024 * 1024)
#define OUT_HIGH_BYTES  (64 * 1024)   /* produce stream events while the output is below this */
#define IN_HIGH_BYTES   (1024 * 1024) /* stop reading a connection with this much unprocessed */
#define STORE_RECORDS   10000
#define STORE_BYTES     ((size_t)512 * 1024 * 1024)
#define SPLIT_DELAY_MS  2
#define MAX_CHUNKS      100000000L
#define MAX_CHUNK_BYTES 1000000L
#define MAX_DELAY_MS    3600000L
#define VERSION         "1.0.0-fake"
#define DEFAULT_MODELS  "fake-model,gpt-4o-mini,text-embedding-3-small,claude-sonnet-4-5"

/* Appends a string literal without its NUL. */
#define ADD_LIT(out, lit) evbuffer_add((out), (lit), sizeof(lit) - 1)

struct conn;

struct server {
    struct event_base *base;
    struct evconnlistener *listener;
    SSL_CTX *ssl_ctx; /* NULL: plain HTTP */
    struct tg_fake_store store;
    const char *require_key; /* borrowed from argv, or NULL */
    long default_chunks;     /* --default-chunks: x-fake-chunks when absent */
    long default_delay_ms;   /* --default-delay-ms: x-fake-delay-ms when absent */
    char *models_body;       /* the GET /v1/models reply, owned */
    struct conn *conns;      /* every open connection (doubly linked) */
    uint64_t next_conn_id;
    uint64_t next_seq;
    uint64_t next_call;
    uint64_t uuid_bits; /* random per process: the fixed part of call ids */
    uint64_t tcp_accepted;
    uint64_t tcp_open;
    uint64_t api_accepted; /* connections that carried a non-/_fake request */
    uint64_t api_open;
    uint64_t requests;
    time_t date_s;
    char date[40];    /* HTTP date of date_s */
    bool is_stopping; /* shutting down: open replies are not client closes */
};

enum conn_state {
    CS_HEAD,    /* reading a request head */
    CS_BODY,    /* reading its body */
    CS_REPLY,   /* replying; pipelined input waits */
    CS_CLOSING, /* reply done, waiting for the output to drain, then close */
};

/* What the connection waits for while replying. */
enum reply_wait {
    W_NONE,
    W_FIRST_BYTE,  /* timer: x-fake-first-byte-delay-ms before the head */
    W_DRAIN,       /* write callback: output below OUT_HIGH_BYTES (backpressure) */
    W_DELAY,       /* timer: x-fake-delay-ms before a chunk */
    W_SPLIT_DRAIN, /* write callback: first half of a split event written */
    W_SPLIT_DELAY, /* timer: then the second half */
    W_DROP_DRAIN,  /* write callback: output drained, then x-fake-drop-after closes */
    W_CLOSE_DRAIN, /* write callback: output drained, then Connection: close closes */
};

/* The reply being sent on a connection. */
struct reply {
    struct tg_fake_plan plan;     /* what the body says */
    struct tg_fake_stream stream; /* the SSE generator (streams only) */
    struct evbuffer *pre;         /* head (+ whole body unless streamed), sent first */
    struct evbuffer *ev;          /* scratch: the event being written */
    int status;
    bool is_stream;        /* SSE events follow `pre` */
    bool is_chunked;       /* chunked framing (HTTP/1.1); else the body ends at close */
    size_t drop_pre_bytes; /* non-streamed drop-after: bytes of `pre` sent before closing */
    long first_byte_delay_ms;
    long delay_ms;
    long drop_after; /* -1: off */
    long mid_error;  /* -1: off */
    bool has_keepalive_comments;
    bool is_split;
    bool is_rst;
    bool is_delay_done;  /* the delay before the next chunk has been waited */
    char *error_message; /* JSON-escaped x-fake-error-message, owned, or NULL */
    enum reply_wait wait;
};

struct conn {
    struct server *srv;
    struct bufferevent *bev;
    struct conn *prev, *next; /* server->conns */
    struct event *timer;
    uint64_t id;
    enum conn_state state;
    bool is_counted;  /* counted in api_accepted / api_open */
    bool is_busy;     /* inside process_input() */
    bool should_free; /* free at the end of the current callback */
    /* the current request */
    struct tg_fake_record *rec; /* owned reference */
    bool is_control;            /* a /_fake/ route: not recorded */
    bool keep_alive;
    bool is_http10;
    bool is_chunked_body;
    uint64_t body_left;
    struct tg_fake_chunked dec;
    struct evbuffer *body;
    struct reply rp;
};

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status >= 500 ? "Server Error" : "Client Error";
    }
}

static const char *http_date(struct server *s)
{
    time_t t = time(NULL);
    if (t != s->date_s) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_s = t;
    }
    return s->date;
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- connection lifetime ----------------------------------------------------------------- */

static void end_request(struct conn *c)
{
    tg_fake_record_release(c->rec);
    c->rec = NULL;
    tg_fake_plan_cleanup(&c->rp.plan);
    free(c->rp.error_message);
    struct evbuffer *pre = c->rp.pre;
    struct evbuffer *ev = c->rp.ev;
    evbuffer_drain(pre, evbuffer_get_length(pre));
    evbuffer_drain(ev, evbuffer_get_length(ev));
    memset(&c->rp, 0, sizeof(c->rp));
    c->rp.pre = pre;
    c->rp.ev = ev;
    evbuffer_drain(c->body, evbuffer_get_length(c->body));
    memset(&c->dec, 0, sizeof(c->dec));
    c->is_control = false;
}

/* Marks the request as ended by the client or a drop, and writes its record line. */
static void close_record(struct conn *c, bool by_client)
{
    struct tg_fake_record *r = c->rec;
    if (r == NULL || r->closed_at_ms >= 0)
        return;
    r->is_client_closed = by_client;
    r->closed_at_ms = now_ms();
    if (!c->is_control)
        tg_fake_store_log(&c->srv->store, r);
}

static void conn_free(struct conn *c)
{
    struct server *s = c->srv;
    if (c->state == CS_REPLY)
        close_record(c, !s->is_stopping);
    end_request(c);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->tcp_open--;
    if (c->is_counted)
        s->api_open--;
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    evbuffer_free(c->rp.pre);
    evbuffer_free(c->rp.ev);
    evbuffer_free(c->body);
    free(c);
}

/* Ends the connection at the end of the current callback. */
static void conn_close(struct conn *c)
{
    c->should_free = true;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
}

static void arm_timer(struct conn *c, long ms, enum reply_wait wait)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    c->rp.wait = wait;
    evtimer_add(c->timer, &tv);
}

static struct evbuffer *output(struct conn *c)
{
    return bufferevent_get_output(c->bev);
}

/* ---- reply heads and simple replies ------------------------------------------------------ */

/* content_length < 0: chunked (HTTP/1.1) or close-delimited (HTTP/1.0). */
static void put_head(struct conn *c, struct evbuffer *out, int status, const char *content_type,
                     long long content_length, const char *model, size_t model_len)
{
    struct server *s = c->srv;
    char call_id[40];
    uint64_t n = ++s->next_call;
    snprintf(call_id, sizeof(call_id), "%08" PRIx32 "-%04x-4%03x-%04x-%012" PRIx64,
             (uint32_t)(s->uuid_bits >> 32), (unsigned)((s->uuid_bits >> 16) & 0xffff),
             (unsigned)(s->uuid_bits & 0xfff), (unsigned)(0x8000 | ((n >> 48) & 0x3fff)),
             (uint64_t)(n & 0xffffffffffffULL));
    if (c->rec != NULL)
        memcpy(c->rec->call_id, call_id, sizeof(call_id));
    c->rp.status = status;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\ndate: %s\r\nserver: uvicorn\r\ncontent-type: %s\r\n",
                        status, reason_phrase(status), http_date(s), content_type);
    if (content_length >= 0)
        evbuffer_add_printf(out, "content-length: %lld\r\n", content_length);
    else if (!c->is_http10)
        ADD_LIT(out, "transfer-encoding: chunked\r\n");
    if (!c->keep_alive)
        ADD_LIT(out, "connection: close\r\n");
    else if (c->is_http10)
        ADD_LIT(out, "connection: keep-alive\r\n");
    evbuffer_add_printf(out, "x-litellm-call-id: %s\r\nx-litellm-model-id: %016" PRIx64 "\r\n",
                        call_id, fnv1a(model, model_len));
    ADD_LIT(out, "x-litellm-model-group: ");
    for (size_t i = 0; i < model_len && i < 256; i++) {
        unsigned char ch = (unsigned char)model[i];
        evbuffer_add(out, ch < 0x20 || ch == 0x7f ? "_" : (const char *)&model[i], 1);
    }
    ADD_LIT(out, "\r\nx-litellm-version: " VERSION "\r\n\r\n");
}

/* Prepares a complete JSON reply (head + body) in rp.pre. */
static void prepare_json(struct conn *c, int status, struct evbuffer *body, const char *model)
{
    struct evbuffer *pre = c->rp.pre;
    put_head(c, pre, status, "application/json", (long long)evbuffer_get_length(body), model,
             strlen(model));
    evbuffer_add_buffer(pre, body);
}

static void prepare_error(struct conn *c, int status, const char *message, const char *model)
{
    struct evbuffer *body = evbuffer_new();
    char *esc = c->rp.error_message ? NULL : tg_fake_json_escape(message, strlen(message));
    tg_fake_gen_error(body, status, tg_fake_error_type(status),
                      c->rp.error_message ? c->rp.error_message
                      : esc               ? esc
                                          : "");
    free(esc);
    prepare_json(c, status, body, model);
    evbuffer_free(body);
}

/* A reply to a request the server could not parse: always closes the connection. */
static void fail_request(struct conn *c, int status, const char *message)
{
    c->keep_alive = false;
    c->state = CS_REPLY;
    prepare_error(c, status, message, "");
    if (c->rec != NULL)
        c->rec->status = status;
    evbuffer_add_buffer(output(c), c->rp.pre);
    c->state = CS_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    c->rp.wait = W_CLOSE_DRAIN;
}

/* ---- sending ----------------------------------------------------------------------------- */

static void process_input(struct conn *c);

/* Moves `data` to the output as one HTTP chunk (or raw on HTTP/1.0). */
static void write_chunk(struct conn *c, struct evbuffer *data)
{
    struct evbuffer *out = output(c);
    size_t n = evbuffer_get_length(data);
    if (n == 0)
        return;
    if (c->rp.is_chunked)
        evbuffer_add_printf(out, "%zx\r\n", n);
    evbuffer_add_buffer(out, data);
    if (c->rp.is_chunked)
        ADD_LIT(out, "\r\n");
}

static void reply_done(struct conn *c)
{
    struct tg_fake_record *r = c->rec;
    r->is_finished = true;
    r->closed_at_ms = now_ms();
    if (!c->is_control)
        tg_fake_store_log(&c->srv->store, r);
    end_request(c);
    if (!c->keep_alive) {
        c->state = CS_CLOSING;
        bufferevent_disable(c->bev, EV_READ);
        if (evbuffer_get_length(output(c)) == 0)
            conn_close(c);
        else
            c->rp.wait = W_CLOSE_DRAIN;
        return;
    }
    c->state = CS_HEAD;
    process_input(c);
}

static void do_drop(struct conn *c)
{
    close_record(c, false);
    if (c->rp.is_rst) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    c->state = CS_CLOSING;
    conn_close(c);
}

static void start_drop(struct conn *c)
{
    c->rec->is_dropped = true;
    if (evbuffer_get_length(output(c)) == 0)
        do_drop(c);
    else
        c->rp.wait = W_DROP_DRAIN;
}

static void end_stream(struct conn *c)
{
    if (c->rp.is_chunked)
        ADD_LIT(output(c), "0\r\n\r\n");
    reply_done(c);
}

static void write_comment(struct conn *c)
{
    if (c->rp.plan.crlf)
        ADD_LIT(c->rp.ev, ": keep-alive\r\n\r\n");
    else
        ADD_LIT(c->rp.ev, ": keep-alive\n\n");
    write_chunk(c, c->rp.ev);
}

/* Writes stream events until the output is full, a delay is due, or the stream ends. */
static void pump(struct conn *c)
{
    struct reply *rp = &c->rp;
    struct evbuffer *out = output(c);
    for (;;) {
        if (evbuffer_get_length(out) > OUT_HIGH_BYTES) {
            rp->wait = W_DRAIN;
            return;
        }
        enum tg_fake_step step = tg_fake_stream_peek(&rp->stream);
        bool is_chunk = step == TG_FAKE_STEP_CONTENT || step == TG_FAKE_STEP_REASONING;
        bool at_content =
            step == TG_FAKE_STEP_CONTENT || step == TG_FAKE_STEP_POST || step == TG_FAKE_STEP_END;
        if (at_content && rp->drop_after >= 0 && c->rec->chunks_sent == rp->drop_after) {
            start_drop(c);
            return;
        }
        if (at_content && rp->mid_error >= 0 && c->rec->chunks_sent == rp->mid_error) {
            tg_fake_stream_error(&rp->stream, rp->ev, rp->error_message);
            write_chunk(c, rp->ev);
            end_stream(c);
            return;
        }
        if (step == TG_FAKE_STEP_END) {
            end_stream(c);
            return;
        }
        if (is_chunk && rp->delay_ms > 0 && !rp->is_delay_done) {
            rp->is_delay_done = true;
            arm_timer(c, rp->delay_ms, W_DELAY);
            return;
        }
        rp->is_delay_done = false;
        if (is_chunk && rp->has_keepalive_comments)
            write_comment(c);
        tg_fake_stream_emit(&rp->stream, rp->ev);
        if (step == TG_FAKE_STEP_CONTENT)
            c->rec->chunks_sent++;
        if (rp->is_split) {
            struct evbuffer *first = evbuffer_new();
            evbuffer_remove_buffer(rp->ev, first, evbuffer_get_length(rp->ev) / 2);
            write_chunk(c, first);
            evbuffer_free(first);
            rp->wait = W_SPLIT_DRAIN;
            return;
        }
        write_chunk(c, rp->ev);
    }
}

/* Sends the prepared head (and body); streams continue in pump(). */
static void reply_send(struct conn *c)
{
    struct reply *rp = &c->rp;
    if (c->rec != NULL)
        c->rec->status = rp->status;
    if (rp->drop_pre_bytes > 0) {
        evbuffer_remove_buffer(rp->pre, output(c), rp->drop_pre_bytes);
        start_drop(c);
        return;
    }
    evbuffer_add_buffer(output(c), rp->pre);
    if (rp->is_stream)
        pump(c);
    else
        reply_done(c);
}

static void reply_start(struct conn *c)
{
    if (c->rp.first_byte_delay_ms > 0)
        arm_timer(c, c->rp.first_byte_delay_ms, W_FIRST_BYTE);
    else
        reply_send(c);
}

/* ---- knobs and plans --------------------------------------------------------------------- */

/* Reads an integer knob; returns 0 (value or default in *out) or -1 when malformed. */
static int knob_long(const struct tg_fake_record *r, const char *name, long def, long min, long max,
                     long *out)
{
    size_t n;
    const char *v = tg_fake_record_header(r, name, &n);
    *out = def;
    if (v == NULL)
        return 0;
    char tmp[32];
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    long x = strtol(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || x < min || x > max)
        return -1;
    *out = x;
    return 0;
}

static bool knob_flag(const struct tg_fake_record *r, const char *name)
{
    size_t n;
    const char *v = tg_fake_record_header(r, name, &n);
    return v != NULL && !(n == 1 && v[0] == '0') && !(n == 5 && strncasecmp(v, "false", 5) == 0);
}

/* x-fake-usage: P,C[,CACHED[,REASONING]] */
static int parse_usage_knob(const struct tg_fake_record *r, struct tg_fake_plan *p)
{
    size_t n;
    const char *v = tg_fake_record_header(r, "x-fake-usage", &n);
    if (v == NULL)
        return 0;
    char tmp[128];
    if (n >= sizeof(tmp))
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    int64_t vals[4] = {0, 0, 0, 0};
    int count = 0;
    char *s = tmp;
    while (count < 4) {
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (errno != 0 || end == s || x < 0)
            return -1;
        vals[count++] = x;
        while (*end == ' ')
            end++;
        if (*end == '\0')
            break;
        if (*end != ',')
            return -1;
        s = end + 1;
    }
    if (count < 2 || (count == 4 && *s != '\0' && strchr(s, ',') != NULL))
        return -1;
    p->prompt_tokens = vals[0];
    p->completion_tokens = vals[1];
    p->cached_tokens = vals[2];
    p->reasoning_tokens = vals[3];
    return 0;
}

static char *escape_string(const char *s)
{
    return tg_fake_json_escape(s, strlen(s));
}

static char *escape_json_string_value(const json_t *v, const char *def)
{
    if (json_is_string(v))
        return tg_fake_json_escape(json_string_value(v), json_string_length(v));
    return escape_string(def);
}

/* The first tool's function name in the request, or "fake_tool". */
static char *tool_name(enum tg_fake_api api, const json_t *body)
{
    const json_t *tool = json_array_get(json_object_get(body, "tools"), 0);
    const json_t *name = json_object_get(tool, "name");
    if (api == TG_FAKE_API_CHAT)
        name = json_object_get(json_object_get(tool, "function"), "name");
    return escape_json_string_value(name, "fake_tool");
}

static long max_tokens_of(enum tg_fake_api api, const json_t *body)
{
    const json_t *v = NULL;
    switch (api) {
    case TG_FAKE_API_CHAT:
        v = json_object_get(body, "max_completion_tokens");
        if (!json_is_integer(v))
            v = json_object_get(body, "max_tokens");
        break;
    case TG_FAKE_API_COMPLETIONS:
    case TG_FAKE_API_MESSAGES:
        v = json_object_get(body, "max_tokens");
        break;
    case TG_FAKE_API_RESPONSES:
        v = json_object_get(body, "max_output_tokens");
        break;
    case TG_FAKE_API_EMBEDDINGS:
        break;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    return json_integer_value(v) > MAX_CHUNKS ? MAX_CHUNKS : (long)json_integer_value(v);
}

static long embedding_inputs(const json_t *input)
{
    if (!json_is_array(input))
        return 1;
    if (json_array_size(input) == 0 || json_is_number(json_array_get(input, 0)))
        return 1; /* one input given as token ids */
    return (long)json_array_size(input);
}

/* Fills the plan from the body and knobs. Returns 0, or -1 with the offending knob in err. */
static int build_plan(struct conn *c, enum tg_fake_api api, const json_t *body, char *err,
                      size_t errlen)
{
    const struct tg_fake_record *r = c->rec;
    struct tg_fake_plan *p = &c->rp.plan;
    p->api = api;
    p->seq = r->seq;
    p->created_s = (int64_t)time(NULL);
    p->model = escape_json_string_value(json_object_get(body, "model"), "fake-model");
    p->is_stream = api != TG_FAKE_API_EMBEDDINGS && json_is_true(json_object_get(body, "stream"));
    p->include_usage =
        json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));
    p->has_usage = !knob_flag(r, "x-fake-no-usage");
    p->crlf = knob_flag(r, "x-fake-crlf");
    p->is_tool_call = api != TG_FAKE_API_COMPLETIONS && api != TG_FAKE_API_EMBEDDINGS &&
                      knob_flag(r, "x-fake-tool-calls");
    p->choices = 1;
    const json_t *n = json_object_get(body, "n");
    if ((api == TG_FAKE_API_CHAT || api == TG_FAKE_API_COMPLETIONS) && json_is_integer(n) &&
        json_integer_value(n) > 1)
        p->choices = json_integer_value(n) > 128 ? 128 : (int)json_integer_value(n);
    long dim;
    const char *bad = NULL;
    if (knob_long(r, "x-fake-chunks", c->srv->default_chunks, 0, MAX_CHUNKS, &p->chunks) != 0)
        bad = "x-fake-chunks";
    else if (knob_long(r, "x-fake-chunk-bytes", 0, 0, MAX_CHUNK_BYTES, &p->chunk_bytes) != 0)
        bad = "x-fake-chunk-bytes";
    else if (knob_long(r, "x-fake-reasoning", 0, 0, MAX_CHUNKS, &p->reasoning) != 0)
        bad = "x-fake-reasoning";
    else if (knob_long(r, "x-fake-embedding-dim", 8, 1, 65536, &dim) != 0)
        bad = "x-fake-embedding-dim";
    if (bad != NULL) {
        snprintf(err, errlen, "fake_upstream: invalid %s", bad);
        return -1;
    }
    if (api == TG_FAKE_API_COMPLETIONS || api == TG_FAKE_API_EMBEDDINGS)
        p->reasoning = 0;
    p->tool_name = p->is_tool_call ? tool_name(api, body) : NULL;

    size_t fr_len;
    const char *fr = tg_fake_record_header(r, "x-fake-finish-reason", &fr_len);
    long limit = max_tokens_of(api, body);
    bool is_cut = limit >= 0 && p->reasoning + p->chunks > limit;
    if (is_cut) {
        p->reasoning = p->reasoning < limit ? p->reasoning : limit;
        p->chunks = limit - p->reasoning;
    }
    if (fr != NULL)
        p->finish_reason = tg_fake_json_escape(fr, fr_len);
    else
        p->finish_reason = escape_string(is_cut            ? "length"
                                         : p->is_tool_call ? "tool_calls"
                                                           : "stop");
    p->is_incomplete = strcmp(p->finish_reason, "length") == 0;

    const json_t *instr = json_object_get(body, "instructions");
    if (api == TG_FAKE_API_RESPONSES && instr != NULL && !json_is_null(instr))
        p->instructions_json = json_dumps(instr, JSON_COMPACT | JSON_ENCODE_ANY);

    p->prompt_tokens = tg_fake_prompt_tokens(api, body);
    p->completion_tokens = (int64_t)p->choices * (p->chunks + p->reasoning);
    p->reasoning_tokens = (int64_t)p->choices * p->reasoning;
    if (api == TG_FAKE_API_EMBEDDINGS) {
        p->completion_tokens = 0;
        p->inputs = embedding_inputs(json_object_get(body, "input"));
        p->dim = (int)dim;
        const json_t *fmt = json_object_get(body, "encoding_format");
        p->is_base64 = json_is_string(fmt) && strcmp(json_string_value(fmt), "base64") == 0;
    }
    if (parse_usage_knob(r, p) != 0) {
        snprintf(err, errlen,
                 "fake_upstream: invalid x-fake-usage (want P,C[,CACHED[,REASONING]])");
        return -1;
    }
    if (p->model == NULL || p->finish_reason == NULL || (p->is_tool_call && p->tool_name == NULL)) {
        snprintf(err, errlen, "fake_upstream: out of memory");
        return -1;
    }
    return 0;
}

/* Reads the reply-shaping knobs common to every API route. Returns 0 or -1 (err set). */
static int read_reply_knobs(struct conn *c, char *err, size_t errlen)
{
    struct reply *rp = &c->rp;
    const struct tg_fake_record *r = c->rec;
    const char *bad = NULL;
    if (knob_long(r, "x-fake-first-byte-delay-ms", 0, 0, MAX_DELAY_MS, &rp->first_byte_delay_ms))
        bad = "x-fake-first-byte-delay-ms";
    else if (knob_long(r, "x-fake-delay-ms", c->srv->default_delay_ms, 0, MAX_DELAY_MS,
                       &rp->delay_ms))
        bad = "x-fake-delay-ms";
    else if (knob_long(r, "x-fake-drop-after", -1, 0, MAX_CHUNKS, &rp->drop_after))
        bad = "x-fake-drop-after";
    else if (knob_long(r, "x-fake-mid-stream-error", -1, 0, MAX_CHUNKS, &rp->mid_error))
        bad = "x-fake-mid-stream-error";
    if (bad != NULL) {
        snprintf(err, errlen, "fake_upstream: invalid %s", bad);
        return -1;
    }
    rp->has_keepalive_comments = knob_flag(r, "x-fake-keepalive");
    rp->is_split = knob_flag(r, "x-fake-split-writes");
    size_t n;
    const char *mode = tg_fake_record_header(r, "x-fake-drop-mode", &n);
    rp->is_rst = mode != NULL && n == 3 && strncasecmp(mode, "rst", 3) == 0;
    const char *msg = tg_fake_record_header(r, "x-fake-error-message", &n);
    if (msg != NULL)
        rp->error_message = tg_fake_json_escape(msg, n);
    if (knob_flag(r, "x-fake-close"))
        c->keep_alive = false;
    return 0;
}

/* ---- routes ------------------------------------------------------------------------------ */

static bool path_is(const char *path, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(path, want, n) == 0;
}

static void reply_control(struct conn *c, const char *method, size_t mlen, const char *path,
                          size_t plen)
{
    struct server *s = c->srv;
    struct evbuffer *body = evbuffer_new();
    int status = 200;
    bool is_get = path_is(method, mlen, "GET");
    bool is_delete = path_is(method, mlen, "DELETE");
    if (path_is(path, plen, "/_fake/requests") && is_get) {
        char *dump = tg_fake_store_dump(&s->store);
        if (dump != NULL)
            evbuffer_add(body, dump, strlen(dump));
        else
            ADD_LIT(body, "[]");
        free(dump);
    } else if (path_is(path, plen, "/_fake/requests") && is_delete) {
        evbuffer_add_printf(body, "{\"cleared\":%zu}", tg_fake_store_clear(&s->store));
    } else if (path_is(path, plen, "/_fake/stats") && (is_get || is_delete)) {
        if (is_delete) {
            s->api_accepted = 0;
            s->requests = 0;
        }
        evbuffer_add_printf(
            body,
            "{\"connections_accepted\":%" PRIu64 ",\"requests\":%" PRIu64
            ",\"open_connections\":%" PRIu64 ",\"tcp_connections_accepted\":%" PRIu64
            ",\"tcp_open_connections\":%" PRIu64 "}",
            s->api_accepted, s->requests, s->api_open, s->tcp_accepted, s->tcp_open);
    } else {
        status = 404;
        tg_fake_gen_error(body, 404, tg_fake_error_type(404), "Not Found");
    }
    prepare_json(c, status, body, "");
    evbuffer_free(body);
    reply_start(c);
}

static bool is_authorized(const struct conn *c)
{
    const char *key = c->srv->require_key;
    if (key == NULL)
        return true;
    size_t klen = strlen(key);
    size_t n;
    const char *v = tg_fake_record_header(c->rec, "authorization", &n);
    if (v != NULL && n == klen + 7 && strncasecmp(v, "Bearer ", 7) == 0 &&
        memcmp(v + 7, key, klen) == 0)
        return true;
    v = tg_fake_record_header(c->rec, "x-api-key", &n);
    return v != NULL && n == klen && memcmp(v, key, klen) == 0;
}

/* Route of an API path (after the optional /v1); returns false when unknown. */
static bool api_route(const char *path, size_t n, enum tg_fake_api *api, bool *is_models)
{
    static const struct {
        const char *path;
        enum tg_fake_api api;
    } routes[] = {
        {"/chat/completions", TG_FAKE_API_CHAT}, {"/completions", TG_FAKE_API_COMPLETIONS},
        {"/embeddings", TG_FAKE_API_EMBEDDINGS}, {"/responses", TG_FAKE_API_RESPONSES},
        {"/messages", TG_FAKE_API_MESSAGES},
    };
    if (n >= 3 && memcmp(path, "/v1", 3) == 0 && (n == 3 || path[3] == '/')) {
        path += 3;
        n -= 3;
    } else if (n >= 13 && memcmp(path, "/anthropic/v1", 13) == 0) {
        path += 13;
        n -= 13;
    }
    *is_models = path_is(path, n, "/models");
    if (*is_models)
        return true;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (path_is(path, n, routes[i].path)) {
            *api = routes[i].api;
            return true;
        }
    }
    return false;
}

static void reply_api(struct conn *c, enum tg_fake_api api, bool is_models)
{
    struct tg_fake_record *r = c->rec;
    struct reply *rp = &c->rp;
    char err[160];
    if (read_reply_knobs(c, err, sizeof(err)) != 0) {
        prepare_error(c, 400, err, "");
        reply_start(c);
        return;
    }
    json_t *body = NULL;
    const char *model = is_models ? "" : "fake-model";
    size_t model_len = strlen(model);
    if (!is_models) {
        json_error_t jerr;
        body = json_loadb(r->body, r->body_len, 0, &jerr);
        if (!json_is_object(body)) {
            json_decref(body);
            char msg[300];
            snprintf(msg, sizeof(msg), "Invalid JSON in request body: %s", jerr.text);
            prepare_error(c, 400, msg, "");
            reply_start(c);
            return;
        }
        const json_t *m = json_object_get(body, "model");
        if (json_is_string(m)) {
            model = json_string_value(m);
            model_len = json_string_length(m);
        }
    }
    long status;
    long stream_status;
    if (knob_long(r, "x-fake-status", 200, 200, 599, &status) != 0 ||
        knob_long(r, "x-fake-stream-error-status", 0, 200, 599, &stream_status) != 0) {
        prepare_error(c, 400, "fake_upstream: invalid x-fake-status", model);
    } else if (status != 200 && status < 400) {
        prepare_error(c, 400, "fake_upstream: invalid x-fake-status (want 400..599)", model);
    } else if (status != 200) {
        char msg[40];
        snprintf(msg, sizeof(msg), "fake error %ld", status);
        prepare_error(c, (int)status, msg, model);
    } else if (stream_status != 0) {
        struct evbuffer *pre = rp->pre;
        char msg[40];
        snprintf(msg, sizeof(msg), "fake error %ld", stream_status);
        rp->is_chunked = !c->is_http10;
        if (c->is_http10)
            c->keep_alive = false;
        put_head(c, pre, (int)stream_status, "text/event-stream; charset=utf-8", -1, model,
                 model_len);
        tg_fake_gen_stream_error_event(rp->ev, knob_flag(r, "x-fake-crlf"), (int)stream_status,
                                       tg_fake_error_type((int)stream_status),
                                       rp->error_message ? rp->error_message : msg);
        size_t n = evbuffer_get_length(rp->ev);
        if (rp->is_chunked)
            evbuffer_add_printf(pre, "%zx\r\n", n);
        evbuffer_add_buffer(pre, rp->ev);
        if (rp->is_chunked)
            ADD_LIT(pre, "\r\n0\r\n\r\n");
    } else if (is_models) {
        struct evbuffer *b = evbuffer_new();
        evbuffer_add(b, c->srv->models_body, strlen(c->srv->models_body));
        prepare_json(c, 200, b, "");
        evbuffer_free(b);
    } else if (build_plan(c, api, body, err, sizeof(err)) != 0) {
        prepare_error(c, 400, err, model);
    } else if (rp->plan.is_stream) {
        rp->is_stream = true;
        rp->is_chunked = !c->is_http10;
        if (c->is_http10)
            c->keep_alive = false;
        put_head(c, rp->pre, 200, "text/event-stream; charset=utf-8", -1, model, model_len);
        tg_fake_stream_init(&rp->stream, &rp->plan);
    } else {
        struct evbuffer *b = evbuffer_new();
        tg_fake_gen_body(&rp->plan, b);
        size_t body_len = evbuffer_get_length(b);
        put_head(c, rp->pre, 200, "application/json", (long long)body_len, model, model_len);
        evbuffer_add_buffer(rp->pre, b);
        evbuffer_free(b);
        if (rp->drop_after >= 0)
            rp->drop_pre_bytes = evbuffer_get_length(rp->pre) - body_len + body_len / 2;
    }
    json_decref(body);
    reply_start(c);
}

static void reply_health(struct conn *c, bool is_live)
{
    struct evbuffer *b = evbuffer_new();
    if (is_live)
        ADD_LIT(b, "\"I'm alive!\"");
    else
        ADD_LIT(b, "{\"status\":\"healthy\",\"db\":\"Not connected\",\"cache\":null,"
                   "\"litellm_version\":\"" VERSION "\",\"success_callbacks\":[]}");
    prepare_json(c, 200, b, "");
    evbuffer_free(b);
    reply_start(c);
}

/* The whole request has arrived: record it and start the reply. */
static void dispatch(struct conn *c)
{
    struct server *s = c->srv;
    struct tg_fake_record *r = c->rec;
    c->state = CS_REPLY;
    r->received_at_ms = now_ms();
    const char *path = r->target;
    const char *q = memchr(path, '?', r->target_len);
    size_t plen = q ? (size_t)(q - path) : r->target_len;
    if (plen >= 7 && memcmp(path, "/_fake/", 7) == 0) {
        c->is_control = true;
        reply_control(c, r->method, r->method_len, path, plen);
        return;
    }
    r->seq = ++s->next_seq;
    r->connection_id = c->id;
    tg_fake_store_add(&s->store, r);
    s->requests++;
    if (!c->is_counted) {
        c->is_counted = true;
        s->api_accepted++;
        s->api_open++;
    }
    bool is_get = path_is(r->method, r->method_len, "GET");
    bool is_post = path_is(r->method, r->method_len, "POST");
    enum tg_fake_api api = TG_FAKE_API_CHAT;
    bool is_models = false;
    if (path_is(path, plen, "/health/liveliness") || path_is(path, plen, "/health/liveness") ||
        path_is(path, plen, "/health/readiness")) {
        if (!is_get) {
            prepare_error(c, 405, "Method Not Allowed", "");
            reply_start(c);
            return;
        }
        reply_health(c, !path_is(path, plen, "/health/readiness"));
        return;
    }
    if (!api_route(path, plen, &api, &is_models)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Not Found: %.*s", (int)(plen < 200 ? plen : 200), path);
        prepare_error(c, 404, msg, "");
        reply_start(c);
        return;
    }
    if ((is_models && !is_get) || (!is_models && !is_post)) {
        prepare_error(c, 405, "Method Not Allowed", "");
        reply_start(c);
        return;
    }
    if (!is_authorized(c)) {
        prepare_error(c, 401,
                      "Authentication Error, Invalid proxy server token passed. "
                      "Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
                      "");
        reply_start(c);
        return;
    }
    reply_api(c, api, is_models);
}

/* ---- reading requests -------------------------------------------------------------------- */

static int on_body_data(void *arg, const char *data, size_t len)
{
    struct conn *c = arg;
    if (evbuffer_get_length(c->body) + len > MAX_BODY_BYTES)
        return -1;
    return evbuffer_add(c->body, data, len);
}

/* Returns true when the state advanced. */
static bool read_head(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in);
    if (len == 0)
        return false;
    size_t n = len < MAX_HEAD_BYTES ? len : MAX_HEAD_BYTES;
    const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    struct tg_fake_head head;
    int rc = tg_fake_http_parse_head(buf, n, &head);
    if (rc == TG_FAKE_NEED_MORE) {
        if (n == MAX_HEAD_BYTES)
            fail_request(c, 431, "Request header fields too large");
        return false;
    }
    if (rc == TG_FAKE_ERROR) {
        fail_request(c, 400, "Malformed HTTP request");
        return false;
    }
    c->rec = tg_fake_record_create(buf, (size_t)rc, &head);
    if (c->rec == NULL) {
        fail_request(c, 500, "Out of memory");
        return false;
    }
    evbuffer_drain(in, (size_t)rc);
    struct tg_fake_record *r = c->rec;
    c->is_http10 = head.minor_version == 0;
    size_t vn;
    const char *v = tg_fake_record_header(r, "connection", &vn);
    if (c->is_http10)
        c->keep_alive = v != NULL && tg_fake_http_has_token(v, vn, "keep-alive");
    else
        c->keep_alive = v == NULL || !tg_fake_http_has_token(v, vn, "close");
    c->is_chunked_body = false;
    c->body_left = 0;
    size_t te_len;
    const char *te = tg_fake_record_header(r, "transfer-encoding", &te_len);
    const char *cl = tg_fake_record_header(r, "content-length", &vn);
    if (te != NULL) {
        if (!tg_fake_http_has_token(te, te_len, "chunked")) {
            fail_request(c, 501, "Unsupported transfer-encoding");
            return false;
        }
        c->is_chunked_body = true;
    } else if (cl != NULL) {
        uint64_t x = 0;
        if (vn == 0 || vn > 18) {
            fail_request(c, 400, "Invalid content-length");
            return false;
        }
        for (size_t i = 0; i < vn; i++) {
            if (cl[i] < '0' || cl[i] > '9') {
                fail_request(c, 400, "Invalid content-length");
                return false;
            }
            x = x * 10 + (uint64_t)(cl[i] - '0');
        }
        if (x > MAX_BODY_BYTES) {
            fail_request(c, 413, "Request body too large");
            return false;
        }
        c->body_left = x;
    }
    const char *expect = tg_fake_record_header(r, "expect", &vn);
    bool has_body = c->is_chunked_body || c->body_left > 0;
    if (expect != NULL && !c->is_http10 && has_body && evbuffer_get_length(in) == 0 &&
        tg_fake_http_has_token(expect, vn, "100-continue"))
        ADD_LIT(output(c), "HTTP/1.1 100 Continue\r\n\r\n");
    c->state = CS_BODY;
    return true;
}

static bool body_complete(struct conn *c)
{
    struct tg_fake_record *r = c->rec;
    size_t n = evbuffer_get_length(c->body);
    char *b = malloc(n + 1);
    if (b == NULL) {
        fail_request(c, 500, "Out of memory");
        return false;
    }
    evbuffer_remove(c->body, b, n);
    b[n] = '\0';
    free(r->body);
    r->body = b;
    r->body_len = n;
    dispatch(c);
    return true;
}

static bool read_body(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (c->is_chunked_body) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return false;
        const char *buf = (const char *)evbuffer_pullup(in, -1);
        long rc = tg_fake_chunked_feed(&c->dec, buf, len, on_body_data, c);
        if (rc == TG_FAKE_ERROR) {
            fail_request(c, 400, "Malformed chunked request body");
            return false;
        }
        evbuffer_drain(in, rc == TG_FAKE_NEED_MORE ? len : (size_t)rc);
        if (rc == TG_FAKE_NEED_MORE)
            return false;
        return body_complete(c);
    }
    if (c->body_left > 0) {
        size_t len = evbuffer_get_length(in);
        size_t n = (uint64_t)len < c->body_left ? len : (size_t)c->body_left;
        evbuffer_remove_buffer(in, c->body, n);
        c->body_left -= n;
        if (c->body_left > 0)
            return false;
    }
    return body_complete(c);
}

static void process_input(struct conn *c)
{
    if (c->is_busy)
        return;
    c->is_busy = true;
    bool progressed = true;
    while (progressed && !c->should_free) {
        if (c->state == CS_HEAD)
            progressed = read_head(c);
        else if (c->state == CS_BODY)
            progressed = read_body(c);
        else
            progressed = false;
    }
    c->is_busy = false;
}

/* ---- libevent callbacks ------------------------------------------------------------------ */

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    process_input(c);
    if (c->should_free)
        conn_free(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    enum reply_wait w = c->rp.wait;
    switch (w) {
    case W_DRAIN:
        c->rp.wait = W_NONE;
        pump(c);
        break;
    case W_SPLIT_DRAIN:
        arm_timer(c, SPLIT_DELAY_MS, W_SPLIT_DELAY);
        break;
    case W_DROP_DRAIN:
        c->rp.wait = W_NONE;
        do_drop(c);
        break;
    case W_CLOSE_DRAIN:
        c->rp.wait = W_NONE;
        conn_close(c);
        break;
    default:
        break;
    }
    if (c->should_free)
        conn_free(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    enum reply_wait w = c->rp.wait;
    c->rp.wait = W_NONE;
    switch (w) {
    case W_FIRST_BYTE:
        reply_send(c);
        break;
    case W_DELAY:
        pump(c);
        break;
    case W_SPLIT_DELAY:
        write_chunk(c, c->rp.ev);
        pump(c);
        break;
    default:
        break;
    }
    if (c->should_free)
        conn_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        conn_free(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    struct server *s = arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct conn *c = calloc(1, sizeof(*c));
    SSL *ssl = NULL;
    if (c == NULL)
        goto fail;
    c->srv = s;
    c->id = ++s->next_conn_id;
    c->rp.pre = evbuffer_new();
    c->rp.ev = evbuffer_new();
    c->body = evbuffer_new();
    c->timer = evtimer_new(s->base, on_timer, c);
    if (s->ssl_ctx != NULL) {
        ssl = SSL_new(s->ssl_ctx);
        if (ssl != NULL)
            c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
        if (c->bev != NULL)
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->rp.pre == NULL || c->rp.ev == NULL || c->body == NULL || c->timer == NULL ||
        c->bev == NULL)
        goto fail;
    s->tcp_accepted++;
    s->tcp_open++;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, IN_HIGH_BYTES);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return;
fail:
    fprintf(stderr, "fake_upstream: cannot set up a connection (out of memory)\n");
    if (c != NULL) {
        if (c->bev != NULL)
            bufferevent_free(c->bev);
        else if (ssl != NULL)
            SSL_free(ssl);
        if (c->bev == NULL)
            evutil_closesocket(fd);
        if (c->timer != NULL)
            event_free(c->timer);
        if (c->rp.pre != NULL)
            evbuffer_free(c->rp.pre);
        if (c->rp.ev != NULL)
            evbuffer_free(c->rp.ev);
        if (c->body != NULL)
            evbuffer_free(c->body);
        free(c);
    } else {
        evutil_closesocket(fd);
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

/* ---- start-up ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fake_upstream --listen HOST:PORT [options]\n"
            "A fake LiteLLM / OpenAI-compatible upstream with fault knobs (see README.md).\n"
            "\n"
            "  --listen HOST:PORT     address to listen on; PORT 0 picks a free port\n"
            "  --port-file FILE       write the chosen port to FILE once listening\n"
            "  --record FILE          append one JSON line per request when its reply ends\n"
            "  --tls-cert CERT        serve HTTPS with this certificate chain (PEM) ...\n"
            "  --tls-key KEY          ... and this private key (PEM)\n"
            "  --require-key KEY      401 unless 'Authorization: Bearer KEY' or 'x-api-key: KEY'\n"
            "  --models A,B,...       model ids listed by GET /v1/models (default " DEFAULT_MODELS
            ")\n"
            "  --default-chunks N     content chunks when x-fake-chunks is absent (default 5)\n"
            "  --default-delay-ms D   delay before each chunk when x-fake-delay-ms is absent\n"
            "                         (default 0; e.g. 50 for a demo that visibly streams)\n"
            "  --help                 this text\n"
            "\n"
            "Runs until SIGTERM or SIGINT, then exits 0.\n");
}

static char *models_body(const char *list)
{
    json_t *data = json_array();
    const char *p = list;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n > 0)
            json_array_append_new(data,
                                  json_pack("{s:s%,s:s,s:i,s:s}", "id", p, n, "object", "model",
                                            "created", 1677610602, "owned_by", "openai"));
        p += n + (comma ? 1 : 0);
    }
    json_t *o = json_pack("{s:s,s:o}", "object", "list", "data", data);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

/* HOST:PORT or [V6]:PORT with a numeric host; PORT may be 0 (libevent's parser refuses 0). */
static int parse_listen(const char *addr, struct sockaddr_storage *ss, int *sslen)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon[1] == '\0' || strlen(addr) > 200)
        return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return -1;
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%.*s:1", (int)(colon - addr), addr);
    if (evutil_parse_sockaddr_port(tmp, (struct sockaddr *)ss, sslen) != 0)
        return -1;
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    return 0;
}

static SSL_CTX *make_ssl_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"port-file", required_argument, NULL, 'p'},
        {"record", required_argument, NULL, 'r'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"require-key", required_argument, NULL, 'a'},
        {"models", required_argument, NULL, 'm'},
        {"default-chunks", required_argument, NULL, 'n'},
        {"default-delay-ms", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen_addr = NULL, *port_file = NULL, *record = NULL, *cert = NULL, *key = NULL;
    const char *models = DEFAULT_MODELS;
    struct server s;
    memset(&s, 0, sizeof(s));
    s.default_chunks = 5;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            listen_addr = optarg;
            break;
        case 'p':
            port_file = optarg;
            break;
        case 'r':
            record = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'a':
            s.require_key = optarg;
            break;
        case 'm':
            models = optarg;
            break;
        case 'n':
        case 'd': {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            long max = opt == 'n' ? MAX_CHUNKS : MAX_DELAY_MS;
            if (errno != 0 || *end != '\0' || end == optarg || v < 0 || v > max) {
                fprintf(stderr, "fake_upstream: --%s: want an integer 0..%ld\n",
                        opt == 'n' ? "default-chunks" : "default-delay-ms", max);
                return 2;
            }
            *(opt == 'n' ? &s.default_chunks : &s.default_delay_ms) = v;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || listen_addr == NULL || (cert == NULL) != (key == NULL)) {
        fprintf(stderr, "fake_upstream: %s\n",
                listen_addr == NULL ? "--listen is required"
                : optind != argc    ? "unexpected argument"
                                    : "--tls-cert and --tls-key go together");
        usage(stderr);
        return 2;
    }
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    if (parse_listen(listen_addr, &ss, &sslen) != 0) {
        fprintf(stderr, "fake_upstream: --listen: cannot parse '%s' (want HOST:PORT)\n",
                listen_addr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    FILE *rec_file = NULL;
    if (record != NULL && (rec_file = fopen(record, "a")) == NULL) {
        fprintf(stderr, "fake_upstream: --record: cannot open '%s': %s\n", record, strerror(errno));
        return 2;
    }
    if (tg_fake_store_init(&s.store, STORE_RECORDS, STORE_BYTES, rec_file) != 0) {
        fprintf(stderr, "fake_upstream: out of memory\n");
        return 1;
    }
    if (RAND_bytes((unsigned char *)&s.uuid_bits, sizeof(s.uuid_bits)) != 1)
        s.uuid_bits = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    s.models_body = models_body(models);
    if (cert != NULL && (s.ssl_ctx = make_ssl_ctx(cert, key)) == NULL) {
        fprintf(stderr, "fake_upstream: --tls-cert/--tls-key: cannot load '%s' / '%s'\n", cert,
                key);
        return 2;
    }
    s.base = event_base_new();
    if (s.base == NULL || s.models_body == NULL) {
        fprintf(stderr, "fake_upstream: cannot initialise libevent\n");
        return 1;
    }
    s.listener = evconnlistener_new_bind(
        s.base, on_accept, &s, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
        1024, (struct sockaddr *)&ss, sslen);
    if (s.listener == NULL) {
        fprintf(stderr, "fake_upstream: --listen: cannot listen on '%s': %s\n", listen_addr,
                strerror(errno));
        return 2;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    getsockname(evconnlistener_get_fd(s.listener), (struct sockaddr *)&bound, &blen);
    int port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    if (port_file != NULL && write_port_file(port_file, port) != 0) {
        fprintf(stderr, "fake_upstream: --port-file: cannot write '%s': %s\n", port_file,
                strerror(errno));
        return 2;
    }
    struct event *sigterm = evsignal_new(s.base, SIGTERM, on_signal, s.base);
    struct event *sigint = evsignal_new(s.base, SIGINT, on_signal, s.base);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    fprintf(stderr, "fake_upstream: listening on %s port %d (%s)\n", listen_addr, port,
            s.ssl_ctx ? "https" : "http");

    event_base_dispatch(s.base);

    s.is_stopping = true;
    while (s.conns != NULL)
        conn_free(s.conns);
    event_free(sigterm);
    event_free(sigint);
    evconnlistener_free(s.listener);
    tg_fake_store_cleanup(&s.store);
    free(s.models_body);
    SSL_CTX_free(s.ssl_ctx);
    event_base_free(s.base);
    return 0;
}
