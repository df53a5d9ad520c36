/* reply_text.h: the text a model produced, pulled out of a non-streamed JSON reply as its bytes
 * pass, for counting completion tokens when the gateway reports no usage (SPEC §4 `estimated`).
 *
 * Incremental and allocation-free: fed the body in pieces split anywhere, it emits the decoded
 * UTF-8 of the string values the model wrote, in order, in pieces that may split anywhere
 * (tg_token_counter takes them as they come). Nothing of the body is kept. What counts as the
 * model's text is the same as for streams (usage.c): within the route's top-level member
 * (`choices` for chat and completions, `output` for Responses, `content` for Anthropic
 * messages), every string value whose member name is `content`, `text`, `refusal`,
 * `reasoning_content`, `reasoning`, `name` or `arguments`. Embeddings have no text. */
#ifndef TG_REPLY_TEXT_H
#define TG_REPLY_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

/* Receives a piece of decoded text (borrowed for the call). */
typedef void (*tg_reply_text_fn)(void *arg, const char *p, size_t n);

#define TG_REPLY_TEXT_MAX_DEPTH 64 /* deeper structures are not followed (extraction stops) */

struct tg_reply_text {
    /* set by init */
    const char *top_key; /* NULL: nothing to extract for this route */
    tg_reply_text_fn emit;
    void *arg;
    /* private */
    uint8_t state;     /* lexer state */
    uint8_t ret;       /* state to return to after a scalar or string value */
    bool dead;         /* malformed, too deep, or done: ignore the rest */
    bool str_is_key;   /* the current string is a member name */
    bool str_emits;    /* the current string value is model text */
    bool in_top;       /* inside the value of the root's top_key member */
    bool key_wanted;   /* the last member name read is one of the text names */
    bool key_top;      /* the last member name read at depth 1 is top_key */
    bool member_value; /* a ':' was read and its value has not started yet */
    uint16_t depth;    /* containers open (the root object is depth 1) */
    uint64_t is_obj;   /* bit d-1: the container at depth d is an object */
    uint8_t key_len;   /* bytes of the member name in key[] (raw) */
    bool key_long;     /* the member name did not fit (or had escapes): matches nothing */
    char key[24];      /* raw member name */
    uint8_t hex_n;     /* hex digits of a \u escape read so far */
    uint32_t hex;      /* their value */
    uint32_t high;     /* a pending high surrogate (0 = none) */
};

/* Prepares t for a reply of `route`, emitting text to emit(arg, ...). */
void tg_reply_text_init(struct tg_reply_text *t, enum tg_route route, tg_reply_text_fn emit,
                        void *arg);

/* Feeds the next n bytes of the reply body. Malformed JSON stops the extraction quietly. */
void tg_reply_text_feed(struct tg_reply_text *t, const char *p, size_t n);

#endif
