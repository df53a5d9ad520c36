/* common.h: macros shared by every module (no dependencies). */
#ifndef TG_COMMON_H
#define TG_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_MUST_CHECK   __attribute__((warn_unused_result))
#define TG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define TG_UNUSED       __attribute__((unused))
#define TG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TG_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define TG_MAX(a, b)    ((a) > (b) ? (a) : (b))
#define TG_LIKELY(x)    __builtin_expect(!!(x), 1)
#define TG_UNLIKELY(x)  __builtin_expect(!!(x), 0)

/* The routes tollgate meters (and the one it forwards without metering). */
enum tg_route {
    TG_ROUTE_NONE = 0,
    TG_ROUTE_CHAT,        /* /v1/chat/completions */
    TG_ROUTE_COMPLETIONS, /* /v1/completions */
    TG_ROUTE_EMBEDDINGS,  /* /v1/embeddings */
    TG_ROUTE_RESPONSES,   /* /v1/responses */
    TG_ROUTE_MESSAGES,    /* /v1/messages (Anthropic) */
    TG_ROUTE_MODELS,      /* GET /v1/models: forwarded, not metered */
    TG_ROUTE_QUOTA,       /* GET /v1/quota: the caller's own figures (answered here) */
    TG_ROUTE_STATEMENT,   /* GET /v1/quota/statement: the caller's own ledger lines */
};

/* Token figures of one request, as SPEC §4 fills the ledger columns. */
struct tg_usage {
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cached_tokens;    /* part of prompt_tokens */
    int64_t reasoning_tokens; /* part of completion_tokens */
    int64_t total_tokens;     /* always prompt + completion */
    bool has_usage;           /* the upstream reported usage (count_source=upstream) */
};

#endif
