/* inspect.h: request bodies: validation, metering fields, prompt text and byte-spliced rewrites. */
#ifndef TG_INSPECT_H
#define TG_INSPECT_H

#include "core/buf.h"
#include "core/common.h"

/* What tollgate needs to know about a request body before forwarding it. */
struct tg_req_info {
    enum tg_route route;
    char model[256]; /* decoded, NUL-terminated; 1..255 bytes, no control characters */
    bool has_model;
    bool stream;               /* "stream": true (null or absent: false) */
    bool client_include_usage; /* stream_options.include_usage === true in the client's body */
    bool has_user;             /* body "user" present and not null (messages: metadata.user_id) */
    char user[129];            /* its decoded value when a string of 1..128 bytes, else empty */
    size_t user_len;           /* 0 when absent, null, not a string or too long */
    int64_t max_tokens;        /* chat: max_tokens else max_completion_tokens; completions and
                                  messages: max_tokens; responses: max_output_tokens; -1 absent */
    int64_t n;                 /* "n" on chat/completions (1..128), else 1 */
};

/* Parses and validates a request body for `route`. Duplicate keys: the last one counts (as in
 * LiteLLM's Python). Validation is limited to what metering relies on: a JSON object, `model`
 * (required on the five metered routes), `stream`, the max-token fields, `n`, and the type of
 * `messages` / `prompt` / `input`. Unknown fields are accepted. A non-metered route accepts an
 * empty body. Returns 0 and fills *out, or -1 with a short client-facing sentence in err
 * (meant for a 400 invalid_request_error). `body` is borrowed; *out holds copies only. */
TG_MUST_CHECK int tg_inspect_parse(enum tg_route route, const char *body, size_t len,
                                   struct tg_req_info *out, char *err, size_t errlen);

/* `part` codes of tg_inspect_prompt_text. Text arrives in decoded UTF-8 pieces; a string may be
 * cut into several pieces, at escapes, never inside a UTF-8 sequence. */
enum tg_prompt_part {
    TG_PROMPT_TEXT = 0,      /* more text of the current segment */
    TG_PROMPT_MESSAGE = 1,   /* a new message starts; p/n is the first piece of its role name
                                (n == 0 when it has none). Sent once per message: count these
                                for per-message overhead (OpenAI: 3 tokens/message) */
    TG_PROMPT_SEGMENT = 2,   /* a new, separate string starts (content, name, arguments, a prompt
                                string, instructions, raw tool JSON); p/n is its first piece */
    TG_PROMPT_TOKEN_IDS = 3, /* p is NULL, n is a number of pre-tokenised ids (completions
                                `prompt` / embeddings `input` given as integer arrays) */
};

/* Receives one piece; `part` is an enum tg_prompt_part. p is borrowed for the call only. */
typedef void (*tg_inspect_emit_fn)(void *arg, const char *p, size_t n, int part);

/* Emits everything the model reads from a request body:
 *   chat: raw JSON of `tools` / `functions` / `response_format.json_schema`, then per message:
 *         role, name, content (string, or text/refusal parts; images ignored), tool_calls and
 *         function_call names and arguments;
 *   completions: `prompt` (string, array of strings, ids or id arrays), `suffix`;
 *   embeddings: `input` (same shapes);
 *   responses: `instructions`, raw `tools`, `input` (a string is one message; items give role,
 *         name, arguments, output and content text parts);
 *   messages: `system` (string or text blocks), raw `tools`, per message: role, content string
 *         or blocks (text; tool_use name and raw input; tool_result content).
 * Strings are never emitted with n == 0 except as a MESSAGE start. Emits nothing when the body
 * is not a valid JSON object. `body` is borrowed. */
void tg_inspect_prompt_text(enum tg_route route, const char *body, size_t len,
                            tg_inspect_emit_fn emit, void *arg);

/* Number of messages tg_inspect_prompt_text reports (TG_PROMPT_MESSAGE events). */
size_t tg_inspect_message_count(enum tg_route route, const char *body, size_t len);

/* Edits tg_inspect_rewrite may make. */
struct tg_rewrite_opts {
    bool include_usage;  /* chat and completions with "stream": true: make
                            stream_options.include_usage true (ignored when not streamed: the
                            upstream rejects stream_options without stream) */
    const char *user_id; /* non-NULL: set "user" (messages: metadata.user_id) when absent or
                            null; borrowed, raw bytes (escaped here) */
    size_t user_id_len;
    bool strip_notice; /* remove tollgate's quota notice from assistant messages in history */
};

/* Rewrites a request body by splicing bytes; everything not edited reaches the upstream byte
 * for byte (numbers, key order, whitespace, escapes).
 *   include_usage: no stream_options: `"stream_options":{"include_usage":true}` is inserted
 *     after the top-level `{`; an object without include_usage gets `"include_usage":true`
 *     merged in (other keys kept); include_usage present but not `true`: its value becomes
 *     `true`; stream_options null or not an object: the value becomes {"include_usage":true}.
 *   user_id: `"user":"<id>"` inserted after the top-level `{`, or a null value replaced; on
 *     /v1/messages `metadata.user_id` likewise (metadata created when absent, replaced when
 *     null; a metadata of another type is left for the upstream to reject). A present non-null
 *     user is never touched.
 *   strip_notice: chat and messages: assistant `messages[].content` strings and text parts;
 *     responses: `input` items with role assistant, string content and output_text/text parts.
 *     A string holding a notice is decoded, stripped with tg_notice_strip and re-escaped; other
 *     strings are left as they are. On /v1/messages a text block that would become empty is
 *     left unchanged (Anthropic rejects empty text blocks).
 * Duplicate keys: only the last occurrence is read and edited, because LiteLLM (Python json)
 * keeps the last one; earlier duplicates are dead for the upstream and are left untouched. A
 * duplicate stream_options therefore has its last copy merged or replaced, and never gets a
 * third copy inserted.
 * On success returns 0; when something changed, *changed is true and the new body is appended
 * to out (always valid JSON); otherwise *changed is false and out is untouched (forward the
 * original). Returns -1 when the body is not a JSON object or memory ran out (out unchanged).
 * `body` and `opts` are borrowed; out is owned by the caller. */
TG_MUST_CHECK int tg_inspect_rewrite(enum tg_route route, const char *body, size_t len,
                                     const struct tg_rewrite_opts *opts, struct tg_buf *out,
                                     bool *changed);

/* One byte-splice edit: delete src[off, off+del) and insert ins[0..ins_len) there. */
struct tg_splice {
    size_t off;
    size_t del;
    const char *ins; /* borrowed */
    size_t ins_len;
};

/* Appends src with the edits applied to out. Edits are sorted here by offset (in place, stable
 * for equal offsets) and must not overlap or reach past len. Returns 0, or -1 on overlapping
 * edits or allocation failure (out unchanged). */
TG_MUST_CHECK int tg_inspect_splice(const char *src, size_t len, struct tg_splice *edits,
                                    size_t n_edits, struct tg_buf *out);

#endif
