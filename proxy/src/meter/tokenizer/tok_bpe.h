/* tok_bpe.h: rank tables (embedded, loaded once) and byte-pair merging of one pre-token (internal).
 */
#ifndef TG_TOK_BPE_H
#define TG_TOK_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "meter/tokenizer/tokenizer.h"

/* Pieces up to this many bytes merge with tiktoken's own linear-scan loop on the stack;
 * longer ones with a heap and a linked list in a scratch area (O(n log n)). */
#define TG_TOK_BPE_SMALL     64
/* Pieces longer than this are merged in chunks of this size (bounded memory; see docs). */
#define TG_TOK_BPE_MAX_PIECE (1u << 20)

struct tg_tok_table;

/* The table of an encoding (TG_ENC_APPROX uses o200k_base), loaded on first use
 * (pthread_once); never NULL, read-only, shared by all threads. */
const struct tg_tok_table *tg_tok_table_get(enum tg_encoding enc);

/* Rank of the token whose bytes are p[0..n), or UINT32_MAX when there is none. */
uint32_t tg_tok_rank(const struct tg_tok_table *t, const uint8_t *p, size_t n);

/* Number of tokens of one pre-token p[0..n) (n >= 1), as tiktoken's byte_pair_encode.
 * *scratch / *scratch_cap: a caller-owned work area, grown with realloc when a long piece
 * needs it (the caller frees it). Returns SIZE_MAX when growing it fails. */
size_t tg_tok_bpe_count(const struct tg_tok_table *t, const uint8_t *p, size_t n, void **scratch,
                        size_t *scratch_cap);

/* The two merge loops on their own (for tests; n >= 2 and no whole-piece shortcut).
 * tg_tok_bpe_small needs n <= TG_TOK_BPE_SMALL. */
size_t tg_tok_bpe_small(const struct tg_tok_table *t, const uint8_t *p, size_t n);
size_t tg_tok_bpe_heap(const struct tg_tok_table *t, const uint8_t *p, size_t n, void **scratch,
                       size_t *scratch_cap);

/* Bytes used by an encoding's table: the embedded rank data plus the index built at load. */
size_t tg_tok_table_bytes(enum tg_encoding enc);
/* Number of tokens (ranks) of an encoding's table. */
size_t tg_tok_table_tokens(enum tg_encoding enc);

#endif
