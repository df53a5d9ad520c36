/* tok_ranks_data.h: the embedded rank files, [sym, sym_end) (internal; see tok_ranks_data.c). */
#ifndef TG_TOK_RANKS_DATA_H
#define TG_TOK_RANKS_DATA_H

#include <stdint.h>

extern const uint8_t tg_tok_o200k_bin[];
extern const uint8_t tg_tok_o200k_bin_end[];
extern const uint8_t tg_tok_cl100k_bin[];
extern const uint8_t tg_tok_cl100k_bin_end[];

#endif
