/* usage.h: pure per-route classification of stream events and usage extraction (SPEC §4). */
#ifndef TG_USAGE_H
#define TG_USAGE_H

#include "core/common.h"

/* Token counts above this are treated as absent (keeps sums far from int64 overflow). */
#define TG_USAGE_MAX_TOKENS ((int64_t)1000000000000000) /* 1e15 */

/* What one stream event is, for the proxy's forwarding decisions. */
enum tg_ev_kind {
    TG_EV_OTHER,      /* valid, nothing to act on (role chunk without choices, ping, lifecycle) */
    TG_EV_CONTENT,    /* generated output (chat/completions chunk with choices, text deltas) */
    TG_EV_FINISH,     /* chat/completions chunk with a string finish_reason; Messages
                         message_delta with a stop_reason */
    TG_EV_USAGE_ONLY, /* chat/completions chunk with "choices":[] and a usage object */
    TG_EV_DONE,       /* data: [DONE] (any route) */
    TG_EV_ERROR,      /* a truthy top-level "error", or an error event (Responses, Messages) */
    TG_EV_TERMINAL,   /* response.completed|incomplete|failed; Messages message_stop */
    TG_EV_INVALID,    /* data is not JSON (and not [DONE]) */
};

/* Metering state of one stream. Fields are read by the proxy after each event. */
struct tg_stream_meter {
    enum tg_route route;    /* set by init */
    struct tg_usage usage;  /* upstream figures so far (has_usage once any were reported) */
    bool has_output_usage;  /* the upstream reported the completion count: chat/completions
                               usage object, Responses terminal usage, Messages message_delta
                               (a Messages message_start alone gives only the prompt side) */
    char finish_reason[32]; /* chat: first string finish_reason; Responses: response.status
                               of the terminal event; Messages: stop_reason. "" if none */
    bool saw_done;          /* data: [DONE] seen */
    bool saw_terminal;      /* Responses terminal event or Messages message_stop seen */
    bool saw_error;         /* a TG_EV_ERROR event, or response.failed, seen */
    bool saw_any;           /* at least one event was classified */
    uint64_t events;        /* number of events classified (1 during the first call's return) */
    uint64_t text_bytes;    /* decoded bytes of generated text, for estimation */
    /* Optional (caller): receives decoded generated text in pieces, in stream order. */
    void (*on_text)(void *arg, const char *p, size_t n);
    void *text_arg;
    /* From the first chunk carrying an id (chat/completions chunk, Responses
     * response.created, Messages message_start): decoded, NUL-terminated, "" when absent
     * or too long. Used to synthesise a notice chunk. */
    char chunk_id[128];
    int64_t created; /* chat "created" / Responses "created_at"; 0 if absent */
    char model[256];
    /* private to usage.c */
    bool has_meta;
    int64_t a_input, a_cache_read, a_cache_creation, a_output; /* Messages components */
};

/* Zero-fills m and sets its route (on_text/text_arg may be set afterwards). */
void tg_stream_meter_init(struct tg_stream_meter *m, enum tg_route route);

/* Classifies one dispatched SSE event (name and data as tg_sse_feed gives them, borrowed
 * for the call only) and updates m: usage (last reported wins; Messages combines
 * message_start with the cumulative message_delta), finish reason, flags, text. */
enum tg_ev_kind tg_stream_meter_event(struct tg_stream_meter *m, const char *event,
                                      size_t event_len, const char *data, size_t data_len);

/* Usage of a non-streamed reply: json is a whole body (its top-level "usage" is used) or
 * just a usage object. Mapping per route as in SPEC §4; total = prompt + completion;
 * cached is capped at prompt and reasoning at completion. Returns 0 and fills *out
 * (has_usage true) when usage was found, else -1 with *out zeroed. */
TG_MUST_CHECK int tg_usage_from_json(enum tg_route route, const char *json, size_t len,
                                     struct tg_usage *out);

/* True when a chat/completions chunk (typically the finish chunk) carries generated
 * output in any choice: non-empty delta.content / reasoning_content / reasoning, a
 * non-empty delta.tool_calls array, or a non-empty completions "text". False for
 * invalid JSON. */
bool tg_usage_chunk_has_content(const char *json, size_t len);

#endif
