/* admin_api.c: the admin API under /admin/api: authorization, then the route table. */
#include "admin/admin_api.h"

#include <stdio.h>
#include <string.h>

#include "http/identity.h"
#include "http/reply.h"
#include "http/server.h"

void tg_admin_dispatch(struct tg_conn *c)
{
    struct tg_principal who;
    char msg[300];
    int rc = tg_identity_check_admin(c, &who, msg, sizeof(msg));
    if (rc == TG_AUTH_UNAUTHORIZED) {
        tg_reply_error(c, 401, msg, "authentication_error", "invalid_api_key", NULL);
        return;
    }
    if (rc != TG_AUTH_OK) {
        tg_reply_error(c, 403, msg, "permission_error", "forbidden", NULL);
        return;
    }
    tg_reply_error(c, 404, "Unknown admin route.", "invalid_request_error", "not_found", NULL);
}
