/* admin_api.h: the JSON admin API under /admin/api/ (SPEC §7). */
#ifndef TG_ADMIN_API_H
#define TG_ADMIN_API_H

struct tg_conn;
struct tg_request;

/* Authenticates (admin JWT or TOLLGATE_ADMIN_KEY) and answers an /admin/api request: the route
 * table of admin_routes.c decides the handler, 404 and 405. Takes over the conn. */
void tg_admin_dispatch(struct tg_conn *c);

/* Publishes a finished metered request on the live feed (GET /admin/api/events) as an event
 * of type "request". Cheap when nobody listens; never blocks. Call from tg_request_finish
 * (worker thread); r is borrowed for the call. */
void tg_admin_event_request(const struct tg_request *r);

#endif
