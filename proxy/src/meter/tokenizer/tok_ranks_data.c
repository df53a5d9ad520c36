/* tok_ranks_data.c: embeds the committed rank files (data/<enc>.tgbpe) into the library. */
#include "meter/tokenizer/tok_ranks_data.h"

#ifndef TG_TOK_DATA_DIR
#error "TG_TOK_DATA_DIR must name the directory holding o200k_base.tgbpe and cl100k_base.tgbpe"
#endif

#define TG_TOK_EMBED(sym, file)                                                                    \
    __asm__(".section .rodata\n"                                                                   \
            ".balign 16\n"                                                                         \
            ".globl " #sym "\n"                                                                    \
            ".hidden " #sym "\n"                                                                   \
            ".type " #sym ", @object\n" #sym ":\n"                                                 \
            ".incbin \"" TG_TOK_DATA_DIR "/" file "\"\n"                                           \
            ".globl " #sym "_end\n"                                                                \
            ".hidden " #sym "_end\n" #sym "_end:\n"                                                \
            ".byte 0\n"                                                                            \
            ".size " #sym ", " #sym "_end - " #sym "\n"                                            \
            ".previous\n")

TG_TOK_EMBED(tg_tok_o200k_bin, "o200k_base.tgbpe");
TG_TOK_EMBED(tg_tok_cl100k_bin, "cl100k_base.tgbpe");
