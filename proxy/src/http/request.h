/* request.h: one proxied request from its head to its log line (SPEC §2-§6). */
#ifndef TG_REQUEST_H
#define TG_REQUEST_H

#include "core/common.h"
#include "http/identity.h"
#include "meter/body_scan.h"
#include "meter/reply_text.h"
#include "meter/inspect.h"
#include "meter/sse.h"
#include "meter/tokenizer/tokenizer.h"
#include "meter/usage.h"
#include "quota/quota_math.h"

struct tg_worker;
struct tg_conn;
struct tg_uconn;
struct evbuffer;

enum tg_req_state {
    TG_REQ_AUTH,    /* credential checked, user record being resolved */
    TG_REQ_RESERVE, /* quota reservation in flight (Redis) */
    TG_REQ_FORWARD, /* request sent upstream, waiting for the reply head */
    TG_REQ_STREAM,  /* relaying the reply */
    TG_REQ_DRAIN,   /* client gone, reading the upstream to its end (STREAM_ABORT_POLICY=drain) */
    TG_REQ_DONE,    /* finished: settled, ledgered, logged */
};

/* Ledger status (SPEC §6). */
enum tg_req_status {
    TG_STATUS_OK,
    TG_STATUS_UPSTREAM_ERROR,
    TG_STATUS_CLIENT_ABORTED,
    TG_STATUS_BLOCKED,
};

enum tg_reply_mode {
    TG_MODE_NONE,      /* nothing sent to the client yet */
    TG_MODE_PASS,      /* body passed through as it arrives (JSON replies, errors) */
    TG_MODE_SSE,       /* event stream relayed event by event */
    TG_MODE_SSE_ERROR, /* error status with an SSE body: collected, then sent as JSON */
};

/* The quota picture of one subject (user or team) for this request. */
struct tg_req_quota {
    bool active;      /* this subject has a finite limit and is checked */
    int64_t limit;    /* -1 unlimited */
    int64_t used;     /* settled tokens this period, from the last script answer */
    int64_t reserved; /* this request's reservation */
    struct tg_period_bounds bounds;
    char tag[160];   /* "{u:alice}" */
    bool reserve_ok; /* a reservation is held */
    bool need_init;  /* the period's hash was missing */
};

struct event;

struct tg_request {
    struct tg_worker *w;     /* borrowed; outlives the request */
    struct tg_conn *conn;    /* borrowed; NULL once the client is gone */
    struct tg_uconn *up;     /* the upstream exchange; NULL when none */
    enum tg_req_state state; /* written only by tg_request_set_state() */
    unsigned pending;        /* async operations (Redis, db pool) still to call back */
    bool finished;           /* tg_request_finish() has run */
    bool end_reply;          /* finish sends r->out and ends the reply after the ledger row */
    struct event *end_ev;    /* a stream's end after its terminal event (lazily created) */
    bool client_gone;
    enum tg_req_status status;

    /* identity of the request */
    char id[37];
    uint8_t id_bin[16];
    int64_t started_ms; /* == the UUIDv7 timestamp */
    int64_t t0_us;      /* monotonic start */
    char client_request_id[129];
    enum tg_route route;
    bool is_metered;
    struct tg_principal who;
    struct tg_user_rec user;

    /* the request body */
    struct tg_req_info info;
    int64_t prompt_estimate;
    enum tg_encoding enc;
    struct evbuffer *upreq; /* the bytes sent upstream */

    /* quota */
    struct tg_req_quota uq, tq; /* user and team */
    bool quota_skipped;         /* Redis unavailable and QUOTA_FAIL_MODE=open */
    bool notice_claimed;        /* this request holds the pending 80 % notice */
    bool notice_placed;
    int quota_state; /* enum tg_quota_state, for headers and logs */
    void *quota_ctx; /* req_quota.c: the reservation in flight */

    /* reply */
    enum tg_reply_mode mode;
    int client_status;
    int upstream_status;
    char upstream_call_id[129];
    uint64_t upstream_conn;
    bool upstream_reused;
    int64_t t_first_byte_us;
    int64_t t_sent_us;
    struct tg_sse_parser sse;
    struct tg_stream_meter meter;
    struct evbuffer *raw;      /* stream bytes not yet forwarded or dropped */
    uint64_t raw_base;         /* stream offset of the first byte in raw */
    uint64_t fed;              /* stream bytes fed to the parser */
    bool sse_passthrough;      /* an oversized event: relay the rest unparsed */
    struct evbuffer *out;      /* assembled bytes for the client */
    struct evbuffer *errbody;  /* TG_MODE_SSE_ERROR: the collected body (bounded) */
    struct tg_body_scan scan;  /* TG_MODE_PASS: usage and error capture */
    struct tg_reply_text text; /* TG_MODE_PASS: the model's text, to completion_counter */
    bool scan_active;
    struct tg_token_counter completion_counter;
    bool counter_active;
    bool upstream_failed;
    int up_err_kind; /* enum tg_up_err_kind of a failure */
    char error_detail[200];

    /* results */
    struct tg_usage usage;
    bool count_estimated;
    int64_t ttfb_ms;
    int64_t latency_ms;
    int64_t finished_at_us; /* wall clock; the ledger row and the settle share it */
};

/* Handles a metered route (or GET /v1/models when models is true): takes over the conn. */
void tg_request_start(struct tg_conn *c, enum tg_route route);

/* Transitions (logged at debug). */
void tg_request_set_state(struct tg_request *r, enum tg_req_state s);
/* Every outcome ends here; idempotent. */
void tg_request_finish(struct tg_request *r, enum tg_req_status status);
/* Frees when finished and nothing is pending. */
void tg_request_release(struct tg_request *r);

/* Continuations called by identity.c and req_quota.c. */
void tg_request_on_user(struct tg_request *r, int result, const char *message);
void tg_request_on_reserved(struct tg_request *r);

/* The canonical route path with its /v1 prefix. */
const char *tg_route_path(enum tg_route route);

#endif
