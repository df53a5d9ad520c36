/* tokenizer.h: exact BPE token counts for OpenAI's o200k_base and cl100k_base encodings.
 *
 * Counts equal tiktoken's len(encode_ordinary(text)) (reference: npm tiktoken@1.0.22, the WASM
 * build of OpenAI's Rust tiktoken). Rank tables are embedded in the library and loaded once per
 * process on first use (pthread_once); all functions are thread-safe. Text is UTF-8; an invalid
 * byte is counted as a one-byte "other" character (never a crash), see docs/tokenizer.md. */
#ifndef TG_TOKENIZER_H
#define TG_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

enum tg_encoding {
    TG_ENC_O200K,  /* o200k_base: gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1, o3, o4 */
    TG_ENC_CL100K, /* cl100k_base: gpt-4, gpt-3.5, text-embedding-3, ada-002 */
    TG_ENC_APPROX, /* a model whose tokenizer is unknown: counted as o200k_base */
};

/* Longest pre-token the incremental counter keeps before it cuts it (see
 * tg_token_counter_feed). */
#define TG_TOKEN_COUNTER_MAX_TAIL (1u << 20)

/* Encoding of a model name. A provider prefix ("openai/", "azure/", anything up to the last
 * '/') and a fine-tune prefix "ft:" are ignored; matching is case-insensitive. NULL or an
 * unknown model gives TG_ENC_APPROX. */
enum tg_encoding tg_tokenizer_for_model(const char *model);

/* "o200k_base", "cl100k_base" or "approx" (static string). */
const char *tg_encoding_name(enum tg_encoding enc);

/* Parses "o200k_base" / "cl100k_base" (also "o200k" / "cl100k"). Returns 0 or -1. */
TG_MUST_CHECK int tg_encoding_parse(const char *name, enum tg_encoding *out);

/* Number of tokens of text[0..len) (tiktoken encode_ordinary: special tokens are plain text).
 * Uses the thread's BPE work area for pre-tokens longer than 64 bytes (grown when needed,
 * kept while small); returns (size_t)-1 only if growing it fails. */
size_t tg_tokens_count(enum tg_encoding enc, const char *text, size_t len);

/* Incremental counter for streamed text: pieces may split anywhere, even inside a UTF-8
 * character; the total equals tg_tokens_count() of the concatenation. It keeps only the
 * unfinished tail — the pre-token that may still grow, rescanned each time it doubles so a long
 * one costs O(n) — plus the last piece fed; the tail buffer is reused while small (≤ 4 KiB)
 * and given back after a long pre-token. The BPE work area is one per thread, shared by all
 * counters on it (tokenizer.c). A single
 * pre-token longer than TG_TOKEN_COUNTER_MAX_TAIL is cut there (the count may then differ from
 * the whole-text count by a few tokens). Zero-filled is NOT valid: call tg_token_counter_init(). */
struct tg_token_counter {
    enum tg_encoding enc; /* set by init */
    int64_t total;        /* tokens of the pre-tokens already closed */
    char *buf;            /* owned: bytes not yet counted (unfinished tail) */
    size_t len;           /* bytes in buf */
    size_t cap;           /* allocated size of buf */
    size_t scan_at;       /* rescan when len reaches this (amortises long tails) */
    bool failed;          /* an allocation failed: finish returns -1 */
};

/* Prepares c for enc; allocates nothing. */
void tg_token_counter_init(struct tg_token_counter *c, enum tg_encoding enc);
/* Counts p[0..n) after what was fed before; p is borrowed for the call only. */
void tg_token_counter_feed(struct tg_token_counter *c, const char *p, size_t n);
/* Closes the text and returns its total, or -1 after an allocation failure. The counter is
 * then empty again (same encoding) and can be fed a new text; its buffers are kept. */
int64_t tg_token_counter_finish(struct tg_token_counter *c);
/* Frees the buffers; c may be re-initialised afterwards. Accepts a never-fed counter. */
void tg_token_counter_cleanup(struct tg_token_counter *c);

/* Prompt tokens of a chat completions request body as OpenAI bills them: per message 3 + the
 * tokens of every string field (role, content, name +1, tool_call_id, ...), text parts of an
 * array content, and each tool call's function name and arguments; +3 for the reply priming;
 * plus the tokens of the raw JSON text of "tools" / "functions" when present (approximation,
 * see docs/tokenizer.md). Returns 0 and sets *out, or -1 when body is not JSON with a
 * "messages" array (or on allocation failure). */
TG_MUST_CHECK int tg_tokens_count_chat(enum tg_encoding enc, const char *body, size_t len,
                                       int64_t *out);

/* The `tollgate tokens` sub-command (argv[0] = "tokens"): reads stdin, prints the count on
 * stdout. Returns the exit status: 0, or 2 after printing one error line on stderr. */
int tg_tokens_main(int argc, char **argv);

#endif
