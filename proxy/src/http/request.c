/* request.c: the metered request: authenticate, reserve, forward, relay and count, finish. */
#include "http/request.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/admin_api.h"
#include "core/json_scan.h"
#include "core/log.h"
#include "http/reply.h"
#include "http/req_ledger.h"
#include "http/quota_api.h"
#include "http/req_quota.h"
#include "http/server.h"
#include "http/worker.h"
#include "meter/notice.h"
#include "upstream/upstream.h"

#define SSE_ERROR_BODY_MAX (64 * 1024)

static const char *const state_names[] = {"auth", "reserve", "forward", "stream", "drain", "done"};
static const char *const status_names[] = {"ok", "upstream_error", "client_aborted", "blocked"};

static void on_client_writable(void *arg);
static void on_client_gone(void *arg);
static void flush_out(struct tg_request *r);
static bool stream_complete(const struct tg_request *r);
static void schedule_stream_end(struct tg_request *r);
static const struct tg_conn_owner_ops owner_ops = {on_client_writable, on_client_gone};

static void after_credential(struct tg_request *r);
static void after_user(struct tg_request *r);
static void forward(struct tg_request *r);
static void fail_reply(struct tg_request *r, int status, const char *message, const char *type,
                       const char *code, enum tg_req_status ledger_status);

const char *tg_route_path(enum tg_route route)
{
    switch (route) {
    case TG_ROUTE_CHAT:
        return "/v1/chat/completions";
    case TG_ROUTE_COMPLETIONS:
        return "/v1/completions";
    case TG_ROUTE_EMBEDDINGS:
        return "/v1/embeddings";
    case TG_ROUTE_RESPONSES:
        return "/v1/responses";
    case TG_ROUTE_MESSAGES:
        return "/v1/messages";
    case TG_ROUTE_MODELS:
        return "/v1/models";
    default:
        return "";
    }
}

void tg_request_set_state(struct tg_request *r, enum tg_req_state s)
{
    if (tg_log_enabled(TG_LOG_DEBUG)) {
        struct tg_logline l;
        tg_logline_begin(&l, TG_LOG_DEBUG, "request state");
        tg_logline_str(&l, "request_id", r->id);
        tg_logline_str(&l, "from", state_names[r->state]);
        tg_logline_str(&l, "to", state_names[s]);
        tg_logline_end(&l);
    }
    r->state = s;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- release ------------------------------------------------------------------------------ */

void tg_request_release(struct tg_request *r)
{
    if (!r->finished || r->pending > 0)
        return;
    if (r->up != NULL) {
        tg_upstream_cancel(r->up);
        r->up = NULL;
    }
    if (r->end_ev != NULL)
        event_free(r->end_ev);
    tg_sse_cleanup(&r->sse);
    if (r->scan_active)
        tg_body_scan_cleanup(&r->scan);
    if (r->counter_active)
        tg_token_counter_cleanup(&r->completion_counter);
    if (r->raw != NULL)
        evbuffer_free(r->raw);
    if (r->out != NULL)
        evbuffer_free(r->out);
    if (r->errbody != NULL)
        evbuffer_free(r->errbody);
    if (r->upreq != NULL)
        evbuffer_free(r->upreq);
    atomic_fetch_sub_explicit(&r->w->inflight, 1, memory_order_relaxed);
    free(r);
}

/* ---- finish: the one place that bills ----------------------------------------------------- */

static void compute_usage(struct tg_request *r)
{
    struct tg_usage u = {0};
    bool have = false;
    if (r->mode == TG_MODE_SSE || r->state == TG_REQ_DRAIN ||
        (r->meter.saw_any && r->mode != TG_MODE_PASS)) {
        if (r->meter.usage.has_usage && r->meter.has_output_usage) {
            u = r->meter.usage;
            have = true;
        }
    } else if (r->scan_active) {
        have = tg_body_scan_usage(&r->scan, r->route, &u);
    }
    int64_t estimated_completion = 0;
    if (r->counter_active)
        estimated_completion = tg_token_counter_finish(&r->completion_counter);
    if (have) {
        r->usage = u;
        r->count_estimated = false;
        if (r->counter_active && r->route != TG_ROUTE_EMBEDDINGS) {
            int64_t d = estimated_completion - u.completion_tokens;
            tg_metric_inc(&r->w->metrics.estimate_compared, 1);
            tg_metric_inc(&r->w->metrics.estimate_abs_diff_tokens, (uint64_t)(d < 0 ? -d : d));
        }
    } else if (r->status == TG_STATUS_BLOCKED || r->upreq == NULL || r->upstream_status >= 400 ||
               (r->mode == TG_MODE_NONE && r->up_err_kind == TG_UPERR_CONNECT &&
                r->upstream_failed)) {
        /* nothing was produced: refused here, refused by the gateway, or never delivered */
        memset(&r->usage, 0, sizeof(r->usage));
        r->count_estimated = true;
    } else {
        /* no usage from the gateway: count what was sent and what came back */
        memset(&u, 0, sizeof(u));
        if (r->meter.usage.has_usage) /* e.g. Anthropic message_start gave the prompt side */
            u = r->meter.usage;
        else
            u.prompt_tokens = r->prompt_estimate;
        u.completion_tokens = estimated_completion;
        if (u.cached_tokens > u.prompt_tokens)
            u.cached_tokens = u.prompt_tokens;
        if (u.reasoning_tokens > u.completion_tokens)
            u.reasoning_tokens = u.completion_tokens;
        u.total_tokens = u.prompt_tokens + u.completion_tokens;
        u.has_usage = false;
        r->usage = u;
        r->count_estimated = true;
    }
    r->usage.total_tokens = r->usage.prompt_tokens + r->usage.completion_tokens;
}

static void log_request(struct tg_request *r)
{
    enum tg_log_level lvl = TG_LOG_INFO;
    if (r->client_status >= 500 || r->status == TG_STATUS_UPSTREAM_ERROR)
        lvl = TG_LOG_WARN;
    struct tg_logline l;
    tg_logline_begin(&l, lvl, "request");
    tg_logline_str(&l, "request_id", r->id);
    if (r->client_request_id[0])
        tg_logline_str(&l, "client_request_id", r->client_request_id);
    tg_logline_str(&l, "user", r->who.user_id[0] ? r->who.user_id : NULL);
    if (r->user.team_id[0])
        tg_logline_str(&l, "team", r->user.team_id);
    tg_logline_str(&l, "auth",
                   r->who.kind == TG_WHO_JWT       ? "jwt"
                   : r->who.kind == TG_WHO_APIKEY  ? "api_key"
                   : r->who.kind == TG_WHO_SERVICE ? "service_key"
                                                   : "none");
    tg_logline_str(&l, "model", r->info.has_model ? r->info.model : NULL);
    tg_logline_str(&l, "route", tg_route_path(r->route));
    tg_logline_bool(&l, "stream", r->info.stream);
    tg_logline_int(&l, "status", r->client_status);
    if (r->upstream_status)
        tg_logline_int(&l, "upstream_status", r->upstream_status);
    tg_logline_str(&l, "ledger_status", status_names[r->status]);
    if (r->is_metered) {
        tg_logline_str(&l, "count_source", r->count_estimated ? "estimated" : "upstream");
        tg_logline_int(&l, "prompt_tokens", r->usage.prompt_tokens);
        tg_logline_int(&l, "completion_tokens", r->usage.completion_tokens);
        tg_logline_int(&l, "cached_tokens", r->usage.cached_tokens);
        tg_logline_int(&l, "reasoning_tokens", r->usage.reasoning_tokens);
        tg_logline_int(&l, "total_tokens", r->usage.total_tokens);
        tg_logline_str(&l, "quota_state", tg_quota_state_name(r->quota_state));
        if (r->notice_placed)
            tg_logline_bool(&l, "quota_notice", true);
    }
    if (r->ttfb_ms >= 0)
        tg_logline_int(&l, "ttfb_ms", r->ttfb_ms);
    tg_logline_int(&l, "latency_ms", r->latency_ms);
    if (r->upstream_conn) {
        tg_logline_int(&l, "upstream_conn", (int64_t)r->upstream_conn);
        tg_logline_bool(&l, "upstream_reused", r->upstream_reused);
    }
    if (r->upstream_call_id[0])
        tg_logline_str(&l, "upstream_call_id", r->upstream_call_id);
    if (r->error_detail[0])
        tg_logline_str(&l, "error", r->error_detail);
    tg_logline_end(&l);
}

void tg_request_finish(struct tg_request *r, enum tg_req_status status)
{
    if (r->finished)
        return;
    r->finished = true;
    r->status = status;
    if (r->up != NULL) {
        tg_upstream_cancel(r->up);
        r->up = NULL;
    }
    if (r->state == TG_REQ_DRAIN) {
        r->w->drains_active--;
    }
    if (r->mode == TG_MODE_SSE)
        atomic_fetch_sub_explicit(&r->w->metrics.active_streams, 1, memory_order_relaxed);
    r->latency_ms = (mono_us() - r->t0_us) / 1000;
    r->finished_at_us = tg_now_us();
    if (r->finished_at_us < r->started_ms * 1000)
        r->finished_at_us = r->started_ms * 1000; /* the wall clock stepped back */
    if (r->t_first_byte_us > 0)
        r->ttfb_ms = (r->t_first_byte_us - r->t0_us) / 1000;
    if (r->is_metered) {
        compute_usage(r);
        struct tg_metrics *m = &r->w->metrics;
        tg_metric_inc(&m->tokens_prompt, (uint64_t)r->usage.prompt_tokens);
        tg_metric_inc(&m->tokens_completion, (uint64_t)r->usage.completion_tokens);
        tg_metric_inc(&m->tokens_cached, (uint64_t)r->usage.cached_tokens);
        tg_metric_inc(&m->tokens_reasoning, (uint64_t)r->usage.reasoning_tokens);
        tg_metric_inc(r->count_estimated ? &m->count_estimated : &m->count_upstream, 1);
        if (status == TG_STATUS_CLIENT_ABORTED)
            tg_metric_inc(&m->client_aborts, 1);
        /* the ledger row first: from here the bill is safe even from kill -9 */
        if (r->who.user_id[0] != '\0')
            tg_req_ledger_append(r);
    }
    if (r->conn != NULL) {
        /* only now the reply's last bytes (held back in r->out) and its end reach the client:
         * a client that has its whole answer has its row in the ring */
        if (r->end_reply && r->conn->owner == r) {
            flush_out(r);
            tg_conn_reply_end(r->conn);
        }
        /* the reply is complete and the server has taken the connection back (it may serve
         * the next request or close while our settle is still pending): let go of it; if a
         * reply were still open here, cut it rather than leave the client waiting */
        if (r->conn != NULL && r->conn->owner == r)
            tg_conn_reply_abort(r->conn);
        r->conn = NULL;
    }
    if (r->is_metered)
        tg_req_quota_settle(r);
    int sc = r->client_status / 100;
    tg_metric_inc(&r->w->metrics.requests[r->route < TG_METRIC_ROUTES ? r->route : 0]
                                         [sc >= 1 && sc <= 5 ? sc : 0],
                  1);
    tg_request_set_state(r, TG_REQ_DONE);
    log_request(r);
    if (r->is_metered)
        tg_admin_event_request(r);
    tg_request_release(r);
}

/* ---- client side -------------------------------------------------------------------------- */

static void add_quota_headers(struct tg_request *r)
{
    if (!r->is_metered || r->conn == NULL || r->quota_skipped || !r->uq.active)
        return;
    struct tg_quota_headers h;
    tg_quota_headers_fill(&h, r->uq.used, r->uq.limit, &r->uq.bounds, tg_app->tz,
                          tg_app->cfg.quota_warn_percent);
    tg_conn_add_header(r->conn, "x-quota-limit-tokens", h.limit);
    tg_conn_add_header(r->conn, "x-quota-used-tokens", h.used);
    tg_conn_add_header(r->conn, "x-quota-remaining-tokens", h.remaining);
    if (h.reset[0] != '\0')
        tg_conn_add_header(r->conn, "x-quota-reset", h.reset);
    tg_conn_add_header(r->conn, "x-quota-state", h.state);
}

/* An error tollgate produces itself, before any reply byte. */
static void fail_reply(struct tg_request *r, int status, const char *message, const char *type,
                       const char *code, enum tg_req_status ledger_status)
{
    r->client_status = status;
    if (r->error_detail[0] == '\0')
        snprintf(r->error_detail, sizeof(r->error_detail), "%s", message);
    if (r->conn != NULL) {
        add_quota_headers(r);
        tg_reply_error(r->conn, status, message, type, code, r->id);
    }
    tg_request_finish(r, ledger_status);
}

static void flush_out(struct tg_request *r)
{
    if (r->conn == NULL) {
        evbuffer_drain(r->out, evbuffer_get_length(r->out));
        return;
    }
    if (evbuffer_get_length(r->out) > 0)
        tg_conn_reply_send(r->conn, r->out);
    if (r->up != NULL && tg_conn_out_pending(r->conn) > TG_CONN_HIGH_WATERMARK)
        tg_upstream_pause(r->up);
}

static void on_client_writable(void *arg)
{
    struct tg_request *r = arg;
    if (r->up != NULL && r->conn != NULL && tg_conn_out_pending(r->conn) <= TG_CONN_LOW_WATERMARK)
        tg_upstream_resume(r->up);
}

static void on_client_gone(void *arg)
{
    struct tg_request *r = arg;
    r->conn = NULL;
    r->client_gone = true;
    if (r->finished)
        return;
    snprintf(r->error_detail, sizeof(r->error_detail), "client closed the connection");
    if (r->up == NULL) {
        /* not forwarded yet (auth or reservation in flight): nothing reaches the upstream */
        if (r->pending == 0)
            tg_request_finish(r, TG_STATUS_CLIENT_ABORTED);
        return;
    }
    const struct tg_config *cfg = &tg_app->cfg;
    if (cfg->stream_abort_policy == TG_ABORT_DRAIN && r->is_metered &&
        r->w->drains_active < cfg->stream_drain_max_concurrent) {
        r->w->drains_active++;
        tg_metric_inc(&r->w->metrics.drains_started, 1);
        tg_request_set_state(r, TG_REQ_DRAIN);
        tg_upstream_set_total_timeout(r->up, cfg->stream_drain_max_s * 1000);
        tg_upstream_resume(r->up);
        return;
    }
    if (cfg->stream_abort_policy == TG_ABORT_DRAIN)
        tg_metric_inc(&r->w->metrics.drains_cancelled, 1);
    tg_upstream_cancel(r->up);
    r->up = NULL;
    tg_request_finish(r, TG_STATUS_CLIENT_ABORTED);
}

/* ---- start -------------------------------------------------------------------------------- */

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

void tg_request_start(struct tg_conn *c, enum tg_route route)
{
    struct tg_worker *w = c->w;
    struct tg_request *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        tg_reply_error(c, 503, "Out of memory.", "server_error", "overloaded", NULL);
        return;
    }
    atomic_fetch_add_explicit(&w->inflight, 1, memory_order_relaxed);
    r->w = w;
    r->conn = c;
    r->route = route;
    r->is_metered = route != TG_ROUTE_MODELS && route != TG_ROUTE_NONE && route != TG_ROUTE_QUOTA &&
                    route != TG_ROUTE_STATEMENT;
    r->t0_us = mono_us();
    r->ttfb_ms = -1;
    r->started_ms = tg_uuid7_next(&w->ids, tg_now_ms(), r->id_bin);
    tg_uuid_format(r->id_bin, r->id);
    r->state = TG_REQ_AUTH;
    r->enc = TG_ENC_O200K;
    c->request_logged = true; /* log_request() writes this request's line */
    tg_conn_set_owner(c, &owner_ops, r);
    const struct tg_http_header *rid = tg_conn_header(c, "x-request-id");
    if (rid != NULL && rid->value_len > 0 && rid->value_len <= 128 &&
        printable(rid->value, rid->value_len)) {
        memcpy(r->client_request_id, rid->value, rid->value_len);
        r->client_request_id[rid->value_len] = '\0';
    }
    char msg[300];
    int rc = tg_identity_authenticate(r, msg, sizeof(msg));
    if (rc == TG_AUTH_PENDING) {
        r->pending++;
        return;
    }
    r->pending++; /* tg_request_on_credential() takes it back */
    tg_request_on_credential(r, rc, msg);
}

void tg_request_on_credential(struct tg_request *r, int rc, const char *msg)
{
    r->pending--;
    if (r->finished || r->client_gone) {
        if (!r->finished)
            tg_request_finish(r, TG_STATUS_CLIENT_ABORTED);
        tg_request_release(r);
        return;
    }
    switch (rc) {
    case TG_AUTH_OK:
        after_credential(r);
        return;
    case TG_AUTH_UNAUTHORIZED:
        tg_metric_inc(&r->w->metrics.auth_failures, 1);
        r->is_metered = false; /* nobody to bill */
        fail_reply(r, 401, msg, "authentication_error", "invalid_api_key", TG_STATUS_OK);
        return;
    case TG_AUTH_FORBIDDEN:
        r->is_metered = false;
        fail_reply(r, 403, msg, "permission_error", "forbidden", TG_STATUS_OK);
        return;
    case TG_AUTH_BAD_REQUEST:
        r->is_metered = false;
        fail_reply(r, 400, msg, "invalid_request_error", "invalid_user", TG_STATUS_OK);
        return;
    default:
        r->is_metered = false;
        fail_reply(r, 503, msg, "server_error", "unavailable", TG_STATUS_OK);
        return;
    }
}

static void after_credential(struct tg_request *r)
{
    char msg[300];
    struct evbuffer *body = r->conn->body;
    if (r->route == TG_ROUTE_QUOTA || r->route == TG_ROUTE_STATEMENT) {
        /* the caller's own figures: a user is needed, nothing is forwarded or billed */
        if (r->who.kind == TG_WHO_SERVICE) {
            int rc = tg_identity_service_user(r, msg, sizeof(msg));
            if (rc != TG_AUTH_OK) {
                fail_reply(r, 400, msg, "invalid_request_error", "missing_user", TG_STATUS_OK);
                return;
            }
        }
        int rc = tg_identity_load_user(r, msg, sizeof(msg));
        if (rc == TG_AUTH_PENDING) {
            r->pending++;
            return;
        }
        r->pending++;
        tg_request_on_user(r, rc, msg);
        return;
    }
    if (!r->is_metered) {
        /* the model list and operator pass-through paths: authenticated, not metered (the
         * service key alone is enough) */
        forward(r);
        return;
    }
    size_t len = evbuffer_get_length(body);
    const char *p = (const char *)evbuffer_pullup(body, -1);
    if (p == NULL)
        p = "";
    if (tg_inspect_parse(r->route, p, len, &r->info, msg, sizeof(msg)) != 0) {
        r->is_metered = false;
        fail_reply(r, 400, msg, "invalid_request_error", "invalid_request_body", TG_STATUS_OK);
        return;
    }
    if (r->who.kind == TG_WHO_SERVICE) {
        int rc = tg_identity_service_user(r, msg, sizeof(msg));
        if (rc != TG_AUTH_OK) {
            r->is_metered = false;
            fail_reply(r, rc == TG_AUTH_UNAUTHORIZED ? 401 : 400, msg,
                       rc == TG_AUTH_UNAUTHORIZED ? "authentication_error"
                                                  : "invalid_request_error",
                       "missing_user", TG_STATUS_OK);
            return;
        }
    }
    int rc = tg_identity_load_user(r, msg, sizeof(msg));
    if (rc == TG_AUTH_PENDING) {
        r->pending++;
        return;
    }
    r->pending++;
    tg_request_on_user(r, rc, msg);
}

void tg_request_on_user(struct tg_request *r, int rc, const char *msg)
{
    r->pending--;
    if (r->finished || r->client_gone) {
        if (!r->finished)
            tg_request_finish(r, TG_STATUS_CLIENT_ABORTED);
        tg_request_release(r);
        return;
    }
    if (rc == TG_AUTH_FORBIDDEN) {
        r->is_metered = false;
        fail_reply(r, 403, msg, "permission_error", "user_disabled", TG_STATUS_OK);
        return;
    }
    if (rc != TG_AUTH_OK) {
        r->is_metered = false;
        fail_reply(r, 503, msg, "server_error", "unavailable", TG_STATUS_OK);
        return;
    }
    after_user(r);
}

/* Token estimate of the prompt (for the reservation and for counts without usage). */
struct prompt_count {
    struct tg_token_counter tc;
    enum tg_encoding enc; /* the model's */
    int64_t messages;
    int64_t ids;
};

static void prompt_emit(void *arg, const char *p, size_t n, int part)
{
    struct prompt_count *pc = arg;
    if (part == TG_PROMPT_TOKEN_IDS) {
        pc->ids += (int64_t)n;
        return;
    }
    if (part == TG_PROMPT_MESSAGE)
        pc->messages++;
    if (part != TG_PROMPT_TEXT) {
        /* segments are tokenised separately */
        pc->ids += tg_token_counter_finish(&pc->tc);
        tg_token_counter_cleanup(&pc->tc);
        tg_token_counter_init(&pc->tc, pc->enc);
    }
    if (n > 0)
        tg_token_counter_feed(&pc->tc, p, n);
}

/* A chat body is counted by tg_tokens_count_chat, the function `tollgate tokens --messages`
 * prints (checked against the reference tokenizer), so an operator can redo the gateway's
 * figure by hand; the other routes by what tg_inspect_prompt_text says the model reads. */
static int64_t estimate_prompt(struct tg_request *r, const char *body, size_t len)
{
    struct prompt_count pc = {.enc = tg_tokenizer_for_model(r->info.model)};
    r->enc = pc.enc;
    int64_t chat;
    if (r->route == TG_ROUTE_CHAT && tg_tokens_count_chat(r->enc, body, len, &chat) == 0)
        return chat;
    tg_token_counter_init(&pc.tc, r->enc);
    tg_inspect_prompt_text(r->route, body, len, prompt_emit, &pc);
    int64_t total = pc.ids + tg_token_counter_finish(&pc.tc);
    tg_token_counter_cleanup(&pc.tc);
    if (pc.messages > 0)
        total += 3 * pc.messages + 3; /* OpenAI chat format overhead */
    return total;
}

static void after_user(struct tg_request *r)
{
    if (r->route == TG_ROUTE_QUOTA || r->route == TG_ROUTE_STATEMENT) {
        tg_quota_api_respond(r);
        return;
    }
    struct evbuffer *body = r->conn->body;
    size_t len = evbuffer_get_length(body);
    const char *p = (const char *)evbuffer_pullup(body, -1);
    r->prompt_estimate = estimate_prompt(r, p ? p : "", len);
    tg_request_set_state(r, TG_REQ_RESERVE);
    tg_req_quota_reserve(r);
}

/* Called by req_quota.c once the reservation is decided (or skipped). */
void tg_request_on_reserved(struct tg_request *r)
{
    if (r->finished)
        return;
    if (r->client_gone) {
        tg_request_finish(r, TG_STATUS_CLIENT_ABORTED);
        return;
    }
    forward(r);
}

/* ---- upstream request ---------------------------------------------------------------------- */

static bool forward_header_allowed(const char *name, size_t n)
{
    static const char *const drop[] = {
        "host",
        "content-length",
        "authorization",
        "x-api-key",
        "api-key",
        "x-litellm-api-key",
        "x-goog-api-key",
        "cookie",
        "accept-encoding",
        "expect",
        "x-request-id",
        "x-litellm-customer-id",
        "x-litellm-end-user-id",
    };
    if (tg_http_is_hop_by_hop(name, n))
        return false;
    if (n >= 11 && strncasecmp(name, "x-tollgate-", 11) == 0)
        return false;
    for (size_t i = 0; i < TG_ARRAY_LEN(drop); i++)
        if (strlen(drop[i]) == n && strncasecmp(drop[i], name, n) == 0)
            return false;
    return true;
}

static void build_upstream_request(struct tg_request *r, const char *body, size_t body_len)
{
    const struct tg_upstream_target *t = tg_app_upstream_target();
    struct tg_conn *c = r->conn;
    struct evbuffer *b = r->upreq;
    /* path: the upstream's base path + the client's path as given (with or without /v1) and
     * query */
    evbuffer_add(b, c->head.method, c->head.method_len);
    evbuffer_add_printf(b, " %s", t->url.path);
    evbuffer_add(b, c->path, c->path_len);
    if (c->query_len > 0) {
        evbuffer_add(b, "?", 1);
        evbuffer_add(b, c->query, c->query_len);
    }
    evbuffer_add_printf(b, " HTTP/1.1\r\nHost: %s\r\n", t->host_header);
    const struct tg_http_header *connh = tg_conn_header(c, "connection");
    for (size_t i = 0; i < c->head.num_headers; i++) {
        const struct tg_http_header *h = &c->head.headers[i];
        if (!forward_header_allowed(h->name, h->name_len))
            continue;
        /* headers named in Connection are hop-by-hop too */
        if (connh != NULL) {
            char nm[64];
            if (h->name_len < sizeof(nm)) {
                memcpy(nm, h->name, h->name_len);
                nm[h->name_len] = '\0';
                if (tg_http_has_token(connh->value, connh->value_len, nm))
                    continue;
            }
        }
        evbuffer_add(b, h->name, h->name_len);
        evbuffer_add(b, ": ", 2);
        evbuffer_add(b, h->value, h->value_len);
        evbuffer_add(b, "\r\n", 2);
    }
    if (tg_app->cfg.upstream_api_key[0])
        evbuffer_add_printf(b, "Authorization: Bearer %s\r\n", tg_app->cfg.upstream_api_key);
    evbuffer_add_printf(b, "X-Request-Id: %s\r\nAccept-Encoding: identity\r\n", r->id);
    if (body_len > 0 || r->is_metered)
        evbuffer_add_printf(b, "Content-Length: %zu\r\n", body_len);
    evbuffer_add(b, "\r\n", 2);
    if (body_len > 0)
        evbuffer_add(b, body, body_len);
}

static void count_text(void *arg, const char *p, size_t n)
{
    tg_token_counter_feed(arg, p, n);
}

static void on_up_head(void *arg, const struct tg_http_response_head *h);
static void on_up_data(void *arg, struct evbuffer *data);

/* A piece of a non-streamed reply: usage and error capture, and the text to the counter. */
static void scan_feed(struct tg_request *r, const char *p, size_t n)
{
    tg_body_scan_feed(&r->scan, p, n);
    if (r->counter_active)
        tg_reply_text_feed(&r->text, p, n);
}
static void on_up_end(void *arg);
static void on_up_error(void *arg, enum tg_up_err_kind kind, const char *detail);
static const struct tg_up_cbs up_cbs = {on_up_head, on_up_data, on_up_end, on_up_error};

static void forward(struct tg_request *r)
{
    const struct tg_config *cfg = &tg_app->cfg;
    r->upreq = evbuffer_new();
    r->raw = evbuffer_new();
    r->out = evbuffer_new();
    if (r->upreq == NULL || r->raw == NULL || r->out == NULL) {
        fail_reply(r, 503, "Out of memory.", "server_error", "overloaded",
                   TG_STATUS_UPSTREAM_ERROR);
        return;
    }
    struct evbuffer *body = r->conn->body;
    size_t len = evbuffer_get_length(body);
    const char *p = len ? (const char *)evbuffer_pullup(body, -1) : "";
    struct tg_buf rewritten = {0};
    bool changed = false;
    if (r->is_metered) {
        struct tg_rewrite_opts opts = {
            .include_usage = r->route == TG_ROUTE_CHAT || r->route == TG_ROUTE_COMPLETIONS,
            .user_id = r->who.user_id,
            .user_id_len = r->who.user_id_len,
            .strip_notice = true,
        };
        if (tg_inspect_rewrite(r->route, p, len, &opts, &rewritten, &changed) != 0) {
            tg_buf_cleanup(&rewritten);
            fail_reply(r, 500, "Could not prepare the request.", "server_error", "internal",
                       TG_STATUS_UPSTREAM_ERROR);
            return;
        }
    }
    if (changed)
        build_upstream_request(r, rewritten.data, rewritten.len);
    else
        build_upstream_request(r, p, len);
    tg_buf_cleanup(&rewritten);

    r->meter.route = r->route;
    tg_stream_meter_init(&r->meter, r->route);
    r->sse.max_event_bytes = (size_t)cfg->sse_max_event_bytes;
    tg_token_counter_init(&r->completion_counter, r->enc);
    r->counter_active = true;
    r->meter.on_text = count_text;
    r->meter.text_arg = &r->completion_counter;

    struct tg_up_timeouts to = {
        .connect_ms = cfg->upstream_connect_timeout_ms,
        .first_byte_ms = cfg->upstream_first_byte_timeout_s * 1000,
        .idle_ms = cfg->upstream_idle_timeout_s * 1000,
        .total_ms = cfg->upstream_total_timeout_s * 1000,
    };
    tg_request_set_state(r, TG_REQ_FORWARD);
    r->t_sent_us = mono_us();
    tg_hist_observe(&r->w->metrics.overhead, r->t_sent_us - r->t0_us);
    r->up = tg_upstream_start(r->w->pool, tg_app_upstream_target(), r->upreq, &to, &up_cbs, r);
    if (r->up == NULL) {
        fail_reply(r, 502, "Could not reach the upstream gateway.", "server_error",
                   "upstream_unavailable", TG_STATUS_UPSTREAM_ERROR);
        return;
    }
    r->upstream_conn = tg_upstream_conn_id(r->up);
    r->upstream_reused = tg_upstream_conn_reused(r->up);
}

/* ---- upstream reply ------------------------------------------------------------------------ */

static bool header_is(const struct tg_http_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

static bool copy_reply_header(const struct tg_http_header *h)
{
    if (tg_http_is_hop_by_hop(h->name, h->name_len))
        return false;
    return !header_is(h, "content-length") && !header_is(h, "content-type") &&
           !header_is(h, "x-request-id") && !header_is(h, "content-encoding") &&
           !header_is(h, "date");
}

static void on_up_head(void *arg, const struct tg_http_response_head *h)
{
    struct tg_request *r = arg;
    r->upstream_status = h->status;
    r->t_first_byte_us = mono_us();
    tg_hist_observe(&r->w->metrics.upstream_ttfb, r->t_first_byte_us - r->t_sent_us);
    const struct tg_http_header *ct =
        tg_http_find_header(h->headers, h->num_headers, "content-type");
    const struct tg_http_header *cid =
        tg_http_find_header(h->headers, h->num_headers, "x-litellm-call-id");
    const struct tg_http_header *ce =
        tg_http_find_header(h->headers, h->num_headers, "content-encoding");
    if (cid != NULL && cid->value_len < sizeof(r->upstream_call_id) &&
        printable(cid->value, cid->value_len)) {
        memcpy(r->upstream_call_id, cid->value, cid->value_len);
        r->upstream_call_id[cid->value_len] = '\0';
    }
    bool is_sse =
        ct != NULL && ct->value_len >= 17 && strncasecmp(ct->value, "text/event-stream", 17) == 0;
    bool encoded =
        ce != NULL && !(ce->value_len == 8 && strncasecmp(ce->value, "identity", 8) == 0);
    tg_request_set_state(r, r->state == TG_REQ_DRAIN ? TG_REQ_DRAIN : TG_REQ_STREAM);
    char ctype[256] = "application/json";
    if (ct != NULL && ct->value_len < sizeof(ctype)) {
        memcpy(ctype, ct->value, ct->value_len);
        ctype[ct->value_len] = '\0';
    }
    if (h->status >= 400 && is_sse && r->is_metered) {
        /* LiteLLM's first-event error: collect, then answer with a plain JSON error */
        r->mode = TG_MODE_SSE_ERROR;
        r->errbody = evbuffer_new();
        r->client_status = h->status;
        return;
    }
    r->client_status = h->status;
    if (r->conn == NULL)
        return; /* draining */
    struct tg_conn *c = r->conn;
    for (size_t i = 0; i < h->num_headers; i++) {
        const struct tg_http_header *hh = &h->headers[i];
        if (copy_reply_header(hh)) {
            char name[128];
            if (hh->name_len >= sizeof(name))
                continue;
            memcpy(name, hh->name, hh->name_len);
            name[hh->name_len] = '\0';
            tg_conn_add_headern(c, name, hh->value, hh->value_len);
        }
    }
    if (encoded) {
        /* we asked for identity; a gateway that still compresses is passed through unparsed */
        const char *v = ce->value;
        char enc[64];
        size_t n = TG_MIN(ce->value_len, sizeof(enc) - 1);
        memcpy(enc, v, n);
        enc[n] = '\0';
        tg_conn_add_header(c, "Content-Encoding", enc);
    }
    tg_conn_add_header(c, "X-Request-Id", r->id);
    add_quota_headers(r);
    if (is_sse && h->status < 400 && !encoded && r->is_metered) {
        r->mode = TG_MODE_SSE;
        atomic_fetch_add_explicit(&r->w->metrics.active_streams, 1, memory_order_relaxed);
        tg_conn_add_header(c, "Cache-Control", "no-cache");
        tg_conn_add_header(c, "X-Accel-Buffering", "no");
        tg_conn_reply_start(c, h->status, ctype);
        return;
    }
    r->mode = TG_MODE_PASS;
    if (!encoded && r->is_metered) {
        tg_body_scan_init(&r->scan);
        /* the reply's text is counted as it passes, for when the gateway reports no usage */
        tg_reply_text_init(&r->text, r->route, count_text, &r->completion_counter);
        r->scan_active = true;
    }
    const struct tg_http_header *cl =
        tg_http_find_header(h->headers, h->num_headers, "content-length");
    int64_t len;
    if (cl != NULL && tg_http_parse_content_length(cl->value, cl->value_len, &len) == 0)
        tg_conn_reply_start_length(c, h->status, ctype, len);
    else
        tg_conn_reply_start(c, h->status, ctype);
}

/* Forwards or drops the first `len` bytes of r->raw. */
static void take_raw(struct tg_request *r, size_t len, bool forward_it)
{
    if (forward_it && r->conn != NULL)
        evbuffer_remove_buffer(r->raw, r->out, len);
    else
        evbuffer_drain(r->raw, len);
    r->raw_base += len;
}

static bool notice_eligible(struct tg_request *r)
{
    return r->notice_claimed && !r->notice_placed && r->route == TG_ROUTE_CHAT && r->info.n == 1 &&
           strcmp(r->meter.finish_reason, "stop") == 0 && r->conn != NULL;
}

static void place_notice(struct tg_request *r, const struct tg_sse_event *ev, size_t raw_len)
{
    char text[TG_NOTICE_MAX_BYTES];
    int len = tg_req_quota_notice_text(r, text, sizeof(text));
    struct tg_buf chunk = {0};
    if (len <= 0 || tg_notice_chunk(&chunk, r->meter.chunk_id, r->meter.created, r->meter.model,
                                    text, (size_t)len) != 0) {
        tg_buf_cleanup(&chunk);
        take_raw(r, raw_len, true);
        return;
    }
    if (tg_usage_chunk_has_content(ev->data, ev->data_len)) {
        struct tg_buf content = {0}, finish = {0};
        if (tg_notice_split_finish(ev->data, ev->data_len, &content, &finish) == 0) {
            evbuffer_add(r->out, "data: ", 6);
            evbuffer_add(r->out, content.data, content.len);
            evbuffer_add(r->out, "\n\n", 2);
            evbuffer_add(r->out, chunk.data, chunk.len);
            evbuffer_add(r->out, "data: ", 6);
            evbuffer_add(r->out, finish.data, finish.len);
            evbuffer_add(r->out, "\n\n", 2);
            take_raw(r, raw_len, false);
        } else {
            evbuffer_add(r->out, chunk.data, chunk.len);
            take_raw(r, raw_len, true);
        }
        tg_buf_cleanup(&content);
        tg_buf_cleanup(&finish);
    } else {
        evbuffer_add(r->out, chunk.data, chunk.len);
        take_raw(r, raw_len, true);
    }
    tg_buf_cleanup(&chunk);
    r->notice_placed = true;
    tg_metric_inc(&r->w->metrics.quota_warnings_sent, 1);
}

struct feed_ctx {
    struct tg_request *r;
    uint64_t feed_base; /* stream offset of the buffer being fed */
};

static int on_sse_event(const struct tg_sse_event *ev, void *arg)
{
    struct feed_ctx *fc = arg;
    struct tg_request *r = fc->r;
    size_t raw_len = (size_t)(fc->feed_base + ev->end_offset - r->raw_base);
    enum tg_ev_kind kind =
        tg_stream_meter_event(&r->meter, ev->event, ev->event_len, ev->data, ev->data_len);
    switch (kind) {
    case TG_EV_USAGE_ONLY:
        take_raw(r, raw_len, r->info.client_include_usage);
        break;
    case TG_EV_INVALID:
        /* never pass on a data: line that is not JSON */
        take_raw(r, raw_len, false);
        break;
    case TG_EV_FINISH:
        if (notice_eligible(r))
            place_notice(r, ev, raw_len);
        else
            take_raw(r, raw_len, true);
        break;
    default:
        take_raw(r, raw_len, true);
        break;
    }
    return 0;
}

static void relay_sse(struct tg_request *r, struct evbuffer *data)
{
    if (r->sse_passthrough) {
        if (r->conn != NULL)
            evbuffer_add_buffer(r->out, data);
        else
            evbuffer_drain(data, evbuffer_get_length(data));
        return;
    }
    /* keep the raw bytes: they are forwarded (or dropped) event by event; the parser reads
     * them where they now sit in r->raw (take_raw only frees chains it has fully read) */
    size_t before = evbuffer_get_length(r->raw);
    evbuffer_add_buffer(r->raw, data);
    struct evbuffer_ptr pos;
    if (evbuffer_ptr_set(r->raw, &pos, before, EVBUFFER_PTR_SET) != 0)
        return;
    int nvec = evbuffer_peek(r->raw, -1, &pos, NULL, 0);
    struct evbuffer_iovec vs[8];
    struct evbuffer_iovec *v = nvec <= 8 ? vs : malloc(sizeof(*v) * (size_t)nvec);
    if (v == NULL) {
        r->sse_passthrough = true;
        take_raw(r, evbuffer_get_length(r->raw), true);
        return;
    }
    evbuffer_peek(r->raw, -1, &pos, v, nvec);
    struct feed_ctx fc = {.r = r};
    for (int i = 0; i < nvec; i++) {
        fc.feed_base = r->fed;
        int rc = tg_sse_feed(&r->sse, v[i].iov_base, v[i].iov_len, on_sse_event, &fc);
        r->fed += v[i].iov_len;
        if (rc < 0) {
            /* an event larger than SSE_MAX_EVENT_BYTES: relay the rest without parsing */
            r->sse_passthrough = true;
            struct tg_logline l;
            tg_logline_begin(&l, TG_LOG_WARN, "oversized SSE event: relaying unparsed");
            tg_logline_str(&l, "request_id", r->id);
            tg_logline_end(&l);
            take_raw(r, evbuffer_get_length(r->raw), true);
            break;
        }
    }
    if (v != vs)
        free(v);
    /* comments and blank lines between events (keep-alives) go out at once */
    if (!r->sse_passthrough && tg_sse_is_idle(&r->sse) && evbuffer_get_length(r->raw) > 0)
        take_raw(r, evbuffer_get_length(r->raw), true);
}

static void on_up_data(void *arg, struct evbuffer *data)
{
    struct tg_request *r = arg;
    switch (r->mode) {
    case TG_MODE_SSE:
        relay_sse(r, data);
        if (r->conn == NULL) {
            evbuffer_drain(r->out, evbuffer_get_length(r->out));
        } else if (stream_complete(r)) {
            /* the terminal event is held back in r->out: the stream ends (and the row is
             * written before it goes out) when the upstream ends its body in this same read,
             * else on the next loop turn, without waiting for the upstream */
            schedule_stream_end(r);
        } else {
            flush_out(r);
        }
        return;
    case TG_MODE_SSE_ERROR: {
        size_t n = evbuffer_get_length(data);
        size_t room = SSE_ERROR_BODY_MAX -
                      TG_MIN(evbuffer_get_length(r->errbody), (size_t)SSE_ERROR_BODY_MAX);
        evbuffer_remove_buffer(data, r->errbody, TG_MIN(n, room));
        evbuffer_drain(data, evbuffer_get_length(data));
        return;
    }
    case TG_MODE_PASS:
    default:
        if (r->scan_active) {
            int nvec = evbuffer_peek(data, -1, NULL, NULL, 0);
            struct evbuffer_iovec vs[16];
            if (nvec <= 16) {
                evbuffer_peek(data, -1, NULL, vs, nvec);
                for (int i = 0; i < nvec; i++)
                    scan_feed(r, vs[i].iov_base, vs[i].iov_len);
            } else {
                size_t n = evbuffer_get_length(data);
                scan_feed(r, (const char *)evbuffer_pullup(data, (ssize_t)n), n);
            }
        }
        if (r->conn != NULL) {
            /* the last byte stays in r->out until the ledger row is written (finish sends it) */
            evbuffer_add_buffer(r->out, data);
            size_t held = evbuffer_get_length(r->out);
            if (held > 1) {
                evbuffer_remove_buffer(r->out, data, held - 1);
                tg_conn_reply_send(r->conn, data);
            }
            if (r->up != NULL && tg_conn_out_pending(r->conn) > TG_CONN_HIGH_WATERMARK)
                tg_upstream_pause(r->up);
        } else {
            evbuffer_drain(data, evbuffer_get_length(data));
        }
        return;
    }
}

/* Sends the collected SSE error body as {"error":…} with the upstream's status. */
static void send_sse_error_as_json(struct tg_request *r)
{
    size_t n = evbuffer_get_length(r->errbody);
    const char *p = (const char *)evbuffer_pullup(r->errbody, (ssize_t)n);
    struct tg_buf json = {0};
    /* find the first data: line that parses as a JSON object with "error" */
    const char *s = p, *end = p + n;
    bool found = false;
    while (s < end && !found) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        const char *line_end = (le > s && le[-1] == '\r') ? le - 1 : le;
        if (line_end - s > 5 && memcmp(s, "data:", 5) == 0) {
            const char *d = s + 5;
            if (*d == ' ')
                d++;
            struct tg_jv root, err;
            if (tg_json_parse(d, (size_t)(line_end - d), &root, NULL) == 0 &&
                tg_json_get(&root, "error", &err) && err.type == TG_JSON_OBJECT) {
                (void)!tg_buf_puts(&json, "{\"error\":");
                (void)!tg_buf_append(&json, err.p, err.n);
                (void)!tg_buf_puts(&json, "}");
                found = true;
            }
        }
        s = nl ? nl + 1 : end;
    }
    if (!found) {
        (void)!tg_reply_error_body(&json, "The upstream gateway returned an error.",
                                   "upstream_error", NULL);
    }
    if (r->conn != NULL) {
        tg_conn_add_header(r->conn, "X-Request-Id", r->id);
        add_quota_headers(r);
        tg_conn_reply(r->conn, r->client_status, "application/json", json.data, json.len);
    }
    tg_buf_cleanup(&json);
}

static void on_up_end(void *arg)
{
    struct tg_request *r = arg;
    r->up = NULL;
    enum tg_req_status st = r->upstream_status >= 400 ? TG_STATUS_UPSTREAM_ERROR : TG_STATUS_OK;
    if (r->state == TG_REQ_DRAIN)
        st = TG_STATUS_CLIENT_ABORTED;
    switch (r->mode) {
    case TG_MODE_SSE: {
        struct feed_ctx fc = {.r = r, .feed_base = r->fed};
        if (!r->sse_passthrough)
            (void)!tg_sse_finish(&r->sse, on_sse_event, &fc);
        if (evbuffer_get_length(r->raw) > 0)
            take_raw(r, evbuffer_get_length(r->raw), true);
        if (r->meter.saw_error && st == TG_STATUS_OK)
            st = TG_STATUS_UPSTREAM_ERROR;
        r->end_reply = true; /* r->out and the end go out after the ledger row */
        break;
    }
    case TG_MODE_SSE_ERROR:
        send_sse_error_as_json(r);
        break;
    default:
        r->end_reply = true;
        break;
    }
    tg_request_finish(r, st);
}

/* The stream is over for the client once its terminal event is relayed: `data: [DONE]` on
 * chat and completions (clients ignore anything after it), the terminal event on Responses
 * and Messages (which send no [DONE]). */
static bool stream_complete(const struct tg_request *r)
{
    if (r->sse_passthrough || r->state == TG_REQ_DRAIN)
        return false;
    if (r->route == TG_ROUTE_RESPONSES || r->route == TG_ROUTE_MESSAGES)
        return r->meter.saw_terminal && !r->meter.saw_error;
    return r->meter.saw_done;
}

static void on_stream_end_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_request *r = arg;
    if (r->finished)
        return;
    /* the upstream keeps its body open after the terminal event: don't wait for it (its
     * connection is closed, not pooled) */
    if (tg_sse_is_idle(&r->sse) && evbuffer_get_length(r->raw) > 0)
        take_raw(r, evbuffer_get_length(r->raw), true);
    r->end_reply = true;
    tg_request_finish(r, TG_STATUS_OK);
}

static void schedule_stream_end(struct tg_request *r)
{
    if (r->end_ev == NULL) {
        r->end_ev = evtimer_new(r->w->base, on_stream_end_ev, r);
        if (r->end_ev == NULL) {
            flush_out(r); /* out of memory: end when the upstream does */
            return;
        }
    }
    static const struct timeval now = {0, 0};
    evtimer_add(r->end_ev, &now);
}

static void on_up_error(void *arg, enum tg_up_err_kind kind, const char *detail)
{
    struct tg_request *r = arg;
    r->up = NULL;
    r->upstream_failed = true;
    r->up_err_kind = kind;
    snprintf(r->error_detail, sizeof(r->error_detail), "upstream: %s", detail);
    if (r->state == TG_REQ_DRAIN) {
        tg_request_finish(r, TG_STATUS_CLIENT_ABORTED);
        return;
    }
    if (r->mode == TG_MODE_NONE || r->mode == TG_MODE_SSE_ERROR) {
        if (kind == TG_UPERR_TIMEOUT)
            fail_reply(r, 504, "The upstream gateway did not answer in time.", "server_error",
                       "upstream_timeout", TG_STATUS_UPSTREAM_ERROR);
        else
            fail_reply(r, 502, "Could not reach the upstream gateway.", "server_error",
                       "upstream_unavailable", TG_STATUS_UPSTREAM_ERROR);
        return;
    }
    if (r->mode == TG_MODE_SSE) {
        /* close the stream with one OpenAI-shaped error event; the partial count is billed */
        if (r->conn != NULL) {
            if (evbuffer_get_length(r->raw) > 0 && tg_sse_is_idle(&r->sse))
                take_raw(r, evbuffer_get_length(r->raw), true);
            evbuffer_drain(r->raw, evbuffer_get_length(r->raw));
            struct tg_buf ev = {0};
            char msg[300];
            snprintf(msg, sizeof(msg),
                     kind == TG_UPERR_TIMEOUT
                         ? "The upstream gateway stopped sending (time-out). (request id %s)"
                         : "The upstream gateway closed the stream early. (request id %s)",
                     r->id);
            (void)!tg_buf_puts(&ev, "data: ");
            (void)!tg_reply_error_body(&ev, msg, "server_error",
                                       kind == TG_UPERR_TIMEOUT ? "upstream_timeout"
                                                                : "upstream_error");
            (void)!tg_buf_puts(&ev, "\n\n");
            evbuffer_add(r->out, ev.data, ev.len);
            tg_buf_cleanup(&ev);
            flush_out(r);
            tg_conn_reply_end(r->conn);
        }
        tg_request_finish(r, TG_STATUS_UPSTREAM_ERROR);
        return;
    }
    /* a JSON body cut in the middle cannot be repaired: cut the client's reply too */
    if (r->conn != NULL) {
        r->client_status = r->client_status ? r->client_status : 502;
        tg_conn_reply_abort(r->conn);
    }
    tg_request_finish(r, TG_STATUS_UPSTREAM_ERROR);
}
