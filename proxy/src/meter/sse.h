/* sse.h: pure incremental Server-Sent Events parser (WHATWG EventSource framing). */
#ifndef TG_SSE_H
#define TG_SSE_H

/* Framing, as the WHATWG EventSource algorithm and openai-node accept it:
 * - lines end with "\n", "\r\n" or "\r" (a "\r" ending one buffer and a "\n" starting the
 *   next are one line end); a blank line ends an event; a UTF-8 BOM at stream start is skipped;
 * - "field:value" with one optional space after the colon; a line without a colon is a field
 *   with an empty value; field names are case-sensitive; lines starting with ':' are comments;
 * - data lines are joined with '\n'; "id" and "retry" (and unknown fields) are ignored;
 * - an event is dispatched when it has a data line or a non-empty "event:" name. An event
 *   name without data IS dispatched (data_len 0), as openai-node's SSEDecoder does
 *   (WHATWG would drop it): the proxy must see every event it forwards.
 *
 * Raw-offset contract: consecutive events own consecutive byte ranges. The raw bytes of an
 * event run from the end of the previous event (stream start for the first) to its
 * end_offset, terminating blank line included ("\r\n" whole), so a caller that holds the
 * bytes fed since the last event can forward or drop exactly those when the event arrives.
 * Comment and blank lines before an event belong to it, unless the caller flushed them
 * earlier when tg_sse_is_idle() said it could. When a blank line ends with "\r" as the last
 * byte of a buffer, the event is dispatched on the next feed (end_offset 1 when that feed
 * starts with "\n", else 0) or by tg_sse_finish.
 *
 * max_event_bytes bounds the raw bytes of one event (from its first field line to the end
 * of its blank line) and of any single line: it bounds the accumulator, and the raw bytes
 * a caller holds for the pending event as long as it flushes whenever tg_sse_is_idle(). */

#include "core/common.h"

/* Default cap on the raw bytes of one event (all its lines, line ends included). */
#define TG_SSE_DEFAULT_MAX_EVENT_BYTES ((size_t)1 << 20)

/* Error codes (always < 0, so callbacks should stop the parser with positive values). */
#define TG_SSE_ERR_TOO_BIG (-1) /* an event (or a lone line) exceeded max_event_bytes */
#define TG_SSE_ERR_NOMEM   (-2) /* the accumulator could not grow */

/* One dispatched event. The views are borrowed: valid only while the callback runs,
 * never NULL (an empty name or data points at ""). */
struct tg_sse_event {
    const char *event; /* "event:" name; empty if none */
    size_t event_len;
    const char *data; /* data lines joined with '\n' (no trailing '\n') */
    size_t data_len;
    size_t end_offset; /* offset in the buffer passed to THIS tg_sse_feed call just past the
                          event's terminating blank line; 0 for events dispatched by
                          tg_sse_finish or completed by the first byte of this buffer not
                          being the '\n' of a "\r\n" */
};

/* Called once per dispatched event. Return 0 to go on; any other value stops tg_sse_feed
 * (or tg_sse_finish), which returns that value. */
typedef int (*tg_sse_event_fn)(const struct tg_sse_event *ev, void *arg);

/* Parser state. Valid when zero-filled; set max_event_bytes before the first feed if the
 * default does not suit. All other fields are private to sse.c. */
struct tg_sse_parser {
    size_t max_event_bytes; /* caller: 0 = TG_SSE_DEFAULT_MAX_EVENT_BYTES */

    char *acc;            /* owned: [event name][data][value of a pending "event:" line] */
    size_t acc_cap;       /* allocated size of acc */
    size_t name_len;      /* bytes of the event name at acc[0] */
    size_t data_len;      /* bytes of data after the name */
    size_t tail_len;      /* bytes of an "event:" value still being read, after the data */
    uint64_t pos;         /* bytes consumed since the stream started (absolute offset) */
    uint64_t block_start; /* absolute offset where the current event's raw bytes start */
    int error;            /* sticky TG_SSE_ERR_* once failed; cleared by tg_sse_reset */
    uint8_t state;        /* line state (enum in sse.c) */
    uint8_t field;        /* field of the current line (enum in sse.c) */
    uint8_t fname_len;    /* bytes of the field name seen, saturating */
    char fname[6];        /* the field name's first bytes */
    uint8_t bom_seen;     /* BOM bytes matched at stream start */
    bool bom_done;        /* past the point where a BOM may appear */
    bool after_cr;        /* the last line ended with '\r': a following '\n' belongs to it */
    bool cr_dispatch;     /* a blank line ended with '\r' at a buffer end: event waits for the
                             next byte to know whether a '\n' belongs to its terminator */
    bool in_block;        /* the current event has at least one field line */
    bool has_data;        /* at least one data line in the current event */
};

/* Feeds buf[0..len) (any split of the stream). Calls cb for each complete event, in order.
 * Returns 0 when all bytes were consumed and more are needed, TG_SSE_ERR_TOO_BIG when an
 * event's raw bytes exceed max_event_bytes, TG_SSE_ERR_NOMEM, or the callback's nonzero
 * value. After a callback stop the parser has consumed exactly buf[0..ev->end_offset) and
 * may be fed the rest (buf + end_offset). Errors are sticky until tg_sse_reset. */
TG_MUST_CHECK int tg_sse_feed(struct tg_sse_parser *p, const char *buf, size_t len,
                              tg_sse_event_fn cb, void *arg);

/* At end of stream: completes a partial last line and dispatches a pending event that had
 * no terminating blank line (end_offset 0). Returns 0, a TG_SSE_ERR_* code, or the
 * callback's nonzero value. The parser is then reset for a new stream. */
TG_MUST_CHECK int tg_sse_finish(struct tg_sse_parser *p, tg_sse_event_fn cb, void *arg);

/* True when every byte fed so far belongs to a dispatched event or to comment/blank lines
 * outside any event: a caller holding the raw bytes of the pending event may forward them
 * now (keep-alive comments need not wait for the next event). */
bool tg_sse_is_idle(const struct tg_sse_parser *p);

/* Forgets the stream (for a new one); keeps the accumulator memory and max_event_bytes. */
void tg_sse_reset(struct tg_sse_parser *p);

/* Frees the accumulator and zero-fills the parser. NULL-safe. */
void tg_sse_cleanup(struct tg_sse_parser *p);

#endif
