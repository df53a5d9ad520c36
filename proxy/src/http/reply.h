/* reply.h: OpenAI-shaped error replies and small JSON replies. */
#ifndef TG_REPLY_H
#define TG_REPLY_H

#include "core/buf.h"
#include "http/server.h"

/* Formats {"error":{"message":…,"type":…,"param":null,"code":…}} into out (code NULL → null). */
TG_MUST_CHECK int tg_reply_error_body(struct tg_buf *out, const char *message, const char *type,
                                      const char *code);
/* Sends an OpenAI-shaped error reply. request_id (may be NULL) is added as X-Request-Id and
 * into the message ("… (request id …)") for 5xx replies; 401 adds WWW-Authenticate: Bearer. */
void tg_reply_error(struct tg_conn *c, int status, const char *message, const char *type,
                    const char *code, const char *request_id);
/* Sends a JSON reply (body already JSON). */
void tg_reply_json(struct tg_conn *c, int status, const char *json, size_t len);

#endif
