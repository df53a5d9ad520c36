/* reply.c: OpenAI-shaped errors (every error tollgate itself produces goes through here). */
#include "http/reply.h"

#include <string.h>

#include "core/json_scan.h"

int tg_reply_error_body(struct tg_buf *out, const char *message, const char *type, const char *code)
{
    if (tg_buf_puts(out, "{\"error\":{\"message\":") != 0 ||
        tg_json_escape(out, message, strlen(message)) != 0 || tg_buf_puts(out, ",\"type\":") != 0 ||
        tg_json_escape(out, type, strlen(type)) != 0 ||
        tg_buf_puts(out, ",\"param\":null,\"code\":") != 0)
        return -1;
    if (code == NULL)
        return tg_buf_puts(out, "null}}");
    if (tg_json_escape(out, code, strlen(code)) != 0)
        return -1;
    return tg_buf_puts(out, "}}");
}

void tg_reply_error(struct tg_conn *c, int status, const char *message, const char *type,
                    const char *code, const char *request_id)
{
    struct tg_buf b = {0};
    char msg[1200];
    if (request_id != NULL && status >= 500) {
        snprintf(msg, sizeof(msg), "%s (request id %s)", message, request_id);
        message = msg;
    }
    if (request_id != NULL)
        tg_conn_add_header(c, "X-Request-Id", request_id);
    if (status == 401)
        tg_conn_add_header(c, "WWW-Authenticate", "Bearer");
    if (tg_reply_error_body(&b, message, type, code) != 0) {
        tg_buf_cleanup(&b);
        tg_conn_reply(c, 500, "application/json", "{}", 2);
        return;
    }
    tg_conn_reply(c, status, "application/json", b.data, b.len);
    tg_buf_cleanup(&b);
}

void tg_reply_json(struct tg_conn *c, int status, const char *json, size_t len)
{
    tg_conn_reply(c, status, "application/json", json, len);
}
