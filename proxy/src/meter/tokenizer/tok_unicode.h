/* tok_unicode.h: code point classes and UTF-8 decoding for the pre-tokeniser (internal). */
#ifndef TG_TOK_UNICODE_H
#define TG_TOK_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* The classes the tiktoken patterns distinguish (Unicode 16.0, see tok_unicode_table.c).
 * \p{L} = UPPER|LOWER|LETTER; o200k's upper set = UPPER|LETTER|MARK and its lower set =
 * LOWER|LETTER|MARK; \p{N} = NUMBER; \s = SPACE (the White_Space property). */
enum tg_tok_uclass {
    TG_TOK_U_OTHER = 0,
    TG_TOK_U_UPPER = 1,  /* Lu, Lt */
    TG_TOK_U_LOWER = 2,  /* Ll */
    TG_TOK_U_LETTER = 3, /* Lm, Lo */
    TG_TOK_U_MARK = 4,   /* Mn, Mc, Me */
    TG_TOK_U_NUMBER = 5, /* Nd, Nl, No */
    TG_TOK_U_SPACE = 6,  /* White_Space */
};

extern const uint8_t tg_tok_ustage1[4352];
extern const uint8_t tg_tok_ustage2[];

/* Class of a code point (cp <= 0x10FFFF). */
static inline enum tg_tok_uclass tg_tok_uclass_of(uint32_t cp)
{
    uint32_t i = (uint32_t)tg_tok_ustage1[cp >> 8] * 128u + ((cp & 0xffu) >> 1);
    return (enum tg_tok_uclass)((tg_tok_ustage2[i] >> ((cp & 1u) * 4u)) & 0x0fu);
}

/* Decodes one UTF-8 character from p[0..avail) (avail >= 1).
 * Returns its length (1..4) and sets *cp; 0 when p holds a valid but incomplete prefix of a
 * character (more bytes are needed); -1 when p[0] does not start a valid character. */
static inline int tg_tok_utf8_decode(const uint8_t *p, size_t avail, uint32_t *cp)
{
    uint8_t b0 = p[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    int len;
    uint32_t c;
    uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        len = 2;
        c = b0 & 0x1fu;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        len = 3;
        c = b0 & 0x0fu;
        if (b0 == 0xe0)
            lo = 0xa0;
        else if (b0 == 0xed)
            hi = 0x9f;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        len = 4;
        c = b0 & 0x07u;
        if (b0 == 0xf0)
            lo = 0x90;
        else if (b0 == 0xf4)
            hi = 0x8f;
    } else {
        return -1;
    }
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= avail)
            return 0;
        uint8_t b = p[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf))
            return -1;
        c = (c << 6) | (b & 0x3fu);
    }
    *cp = c;
    return len;
}

#endif
