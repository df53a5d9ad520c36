/* admin_api.h: the JSON admin API under /admin/api/ (SPEC §7). */
#ifndef TG_ADMIN_API_H
#define TG_ADMIN_API_H

struct tg_conn;

/* Authenticates (admin JWT or TOLLGATE_ADMIN_KEY) and answers an /admin/api request. */
void tg_admin_dispatch(struct tg_conn *c);

#endif
