/* notice.h: the 80 % quota notice: its text, its SSE chunk, and stripping it from history. */
#ifndef TG_NOTICE_H
#define TG_NOTICE_H

#include "core/buf.h"
#include "core/common.h"

/* U+26A0 U+FE0F (warning sign, emoji presentation) in UTF-8. */
#define TG_NOTICE_SIGN "\xE2\x9A\xA0\xEF\xB8\x8F"

/* Largest text tg_notice_format produces, NUL included. */
#define TG_NOTICE_MAX_BYTES 128

/* Writes the notice appended to an assistant reply, NUL-terminated, e.g.
 *   "\n\n> ⚠️ You have used 82 % of your monthly AI quota; it resets on 1 December."
 * period is "month" | "week" | "day" (monthly/weekly/daily) or "none" ("...of your AI quota;
 * it does not reset."; the reset date is then ignored). The year is added ("1 January 2027")
 * only when reset_year differs from current_year. Plain text, no wording that clients take for
 * a context overflow. percent 0..1000000, reset_day 1..31, reset_month 1..12.
 * Returns the length (without the NUL), or -1 on a bad argument or when cap is too small. */
TG_MUST_CHECK int tg_notice_format(char *dst, size_t cap, int percent, const char *period,
                                   int reset_day, int reset_month, int reset_year,
                                   int current_year);

/* Appends one complete SSE event carrying `text` as a content delta:
 *   data: {"id":<chunk_id>,"object":"chat.completion.chunk","created":<created>,
 *          "model":<model>,"choices":[{"index":0,"delta":{"content":<text>},
 *          "finish_reason":null}]}\n\n
 * chunk_id and model are NUL-terminated (decoded, taken from the upstream's chunks); all
 * strings are escaped here. Returns 0, or -1 on allocation failure (out unchanged). */
TG_MUST_CHECK int tg_notice_chunk(struct tg_buf *out, const char *chunk_id, int64_t created,
                                  const char *model, const char *text, size_t text_len);

/* Splits a finish chunk that also carries content (the JSON of its `data:`), so the proxy can
 * send content -> notice -> finish. Appends to content_part the same chunk with every non-null
 * `finish_reason` set to null and a non-null top-level `usage` set to null; appends to
 * finish_part the same chunk with every choice's `delta` set to {} and a non-null `logprobs`
 * set to null (finish_reason and usage kept). Both are byte splices of data (raw JSON, no
 * `data:` prefix). Returns 0, or -1 when data is not an object with a `choices` array or on
 * allocation failure (both buffers unchanged). data is borrowed. */
TG_MUST_CHECK int tg_notice_split_finish(const char *data, size_t len, struct tg_buf *content_part,
                                         struct tg_buf *finish_part);

/* Removes every notice from a decoded assistant text, in place: a line starting with
 * "> ⚠️ You have used <N> % of your <words >AI quota; " (the U+FE0F and the space before '%'
 * optional) up to the end of that line, with the blank line before it ("\n\n", else "\n"; at
 * the very start of the text the line break after it instead). Text without a notice is left
 * untouched. Returns the new length. Idempotent. */
size_t tg_notice_strip(char *text, size_t len);

#endif
