/* events.h: the live feed behind GET /admin/api/events: finished requests, quota crossings,
 * admin changes. Publishing never blocks and never waits for a slow reader: each subscriber
 * has a bounded buffer, and a subscriber that falls behind is dropped. */
#ifndef TG_EVENTS_H
#define TG_EVENTS_H

#include "core/common.h"

struct tg_conn;

/* Bytes a subscriber may have waiting (in its buffer plus its socket's output). */
#define TG_EVENTS_MAX_BACKLOG (256 * 1024)

/* Publishes one event (any thread). `json` is one JSON object. */
void tg_events_publish(const char *type, const char *json, size_t len);
/* Cheap check before building an event. */
bool tg_events_has_listeners(void);
/* Turns the conn's request into a subscriber (an SSE reply that lasts until the client goes). */
void tg_events_subscribe(struct tg_conn *c);
/* Number of subscribers dropped for falling behind (tests, metrics). */
uint64_t tg_events_dropped(void);

#endif
