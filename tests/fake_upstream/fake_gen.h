/* fake_gen.h: the fake upstream's reply bodies: deterministic token counts, JSON bodies and
 * SSE events of the OpenAI chat/completions/embeddings, Responses and Anthropic formats. */
#ifndef TG_FAKE_GEN_H
#define TG_FAKE_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "core/common.h"

enum tg_fake_api {
    TG_FAKE_API_CHAT,        /* chat/completions */
    TG_FAKE_API_COMPLETIONS, /* legacy completions */
    TG_FAKE_API_EMBEDDINGS,  /* embeddings (never streamed) */
    TG_FAKE_API_RESPONSES,   /* Responses API */
    TG_FAKE_API_MESSAGES,    /* Anthropic Messages */
};

/* Everything a reply depends on, decided once per request from its body and x-fake-* knobs. */
struct tg_fake_plan {
    enum tg_fake_api api;
    uint64_t seq;            /* request number: ids are chatcmpl-<seq>, resp_<seq>, msg_<seq> ... */
    int64_t created_s;       /* unix seconds for "created" / "created_at" */
    char *model;             /* JSON-escaped model name, owned */
    char *tool_name;         /* JSON-escaped function name for tool calls, owned */
    char *finish_reason;     /* JSON-escaped finish reason (OpenAI vocabulary), owned */
    char *instructions_json; /* Responses: the request's `instructions` as JSON text, owned */
    bool is_stream;          /* request `stream: true` */
    bool include_usage;      /* request `stream_options.include_usage: true` */
    bool has_usage;          /* false with x-fake-no-usage: usage is never sent */
    bool is_tool_call;       /* x-fake-tool-calls: the content chunks are tool-call arguments */
    bool is_incomplete;      /* cut by max_tokens: Responses end with response.incomplete */
    bool crlf;               /* x-fake-crlf: SSE lines end in CR LF */
    int choices;             /* request `n` (chat and completions), >= 1 */
    long chunks;             /* content chunks per choice */
    long reasoning;          /* reasoning chunks per choice, sent before the content */
    long chunk_bytes;        /* pad each chunk's text to this many bytes (0: no padding) */
    int64_t prompt_tokens;   /* the usage figures reported (after x-fake-usage) */
    int64_t completion_tokens;
    int64_t cached_tokens;
    int64_t reasoning_tokens;
    long inputs;    /* embeddings: number of inputs */
    int dim;        /* embeddings: vector length */
    bool is_base64; /* embeddings: encoding_format "base64" */
};

/* Frees the owned strings of the plan (NULL-safe) and zeroes it. */
void tg_fake_plan_cleanup(struct tg_fake_plan *p);

/*
 * The deterministic prompt-token count of a request body for `api`:
 * max(1, ceil(B / 4) + 3 * M), B = bytes of the request's text, M = messages (see README.md).
 */
int64_t tg_fake_prompt_tokens(enum tg_fake_api api, const json_t *body);

/* Returns a newly allocated JSON-escaped copy of s[0..n) (no quotes), or NULL on OOM. */
TG_MUST_CHECK char *tg_fake_json_escape(const char *s, size_t n);

/* The OpenAI error `type` the fake uses for an HTTP status. Static string. */
const char *tg_fake_error_type(int status);

/* Appends {"error":{"message":...,"type":...,"param":null,"code":"<status>"}};
 * message_json is already JSON-escaped. */
void tg_fake_gen_error(struct evbuffer *out, int status, const char *type,
                       const char *message_json);

/* Appends the whole non-streamed reply body of the plan. */
void tg_fake_gen_body(const struct tg_fake_plan *p, struct evbuffer *out);

/* What the next event of a stream is, for the driver's knobs. */
enum tg_fake_step {
    TG_FAKE_STEP_PRE,       /* an event before the content chunks */
    TG_FAKE_STEP_REASONING, /* a reasoning chunk */
    TG_FAKE_STEP_CONTENT,   /* a content chunk (text or tool-call arguments) */
    TG_FAKE_STEP_POST,      /* an event after the content chunks */
    TG_FAKE_STEP_END,       /* the stream is complete */
};

#define TG_FAKE_MAX_PHASES 24

/* A stream being generated, one SSE event at a time. */
struct tg_fake_stream {
    const struct tg_fake_plan *plan; /* borrowed; outlives the stream */
    int phases[TG_FAKE_MAX_PHASES];  /* the event kinds of this stream, in order */
    int num_phases;
    int content_phase; /* index of the content loop in phases[] */
    int phase;         /* current index into phases[] */
    long index;        /* iteration inside a loop phase */
    long sequence;     /* Responses sequence_number of the next event */
};

/* Prepares the stream of a plan (plan is borrowed). */
void tg_fake_stream_init(struct tg_fake_stream *s, const struct tg_fake_plan *p);

/* Kind of the next event, without producing it. */
enum tg_fake_step tg_fake_stream_peek(const struct tg_fake_stream *s);

/* Appends the next SSE event (with its blank line) and advances; no-op at the end. */
void tg_fake_stream_emit(struct tg_fake_stream *s, struct evbuffer *out);

/* Appends the route's mid-stream error event. message_json is JSON-escaped; NULL uses the
 * default message ("fake mid-stream error", Anthropic "Overloaded"). */
void tg_fake_stream_error(struct tg_fake_stream *s, struct evbuffer *out, const char *message_json);

/* Appends `data: {"error":...}` + blank line, the LiteLLM first-chunk streaming error. */
void tg_fake_gen_stream_error_event(struct evbuffer *out, bool crlf, int status, const char *type,
                                    const char *message_json);

#endif
