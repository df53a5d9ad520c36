/* control.h: the control thread: cache invalidation across instances (Redis pub/sub), JWKS
 * refresh, webhook delivery, batched key-use updates, upstream health. */
#ifndef TG_CONTROL_H
#define TG_CONTROL_H

#include "core/common.h"

struct tg_worker;

/* Starts the thread; waits up to wait_jwks_ms for a first JWKS fetch when JWT_JWKS_URL is
 * set. Returns 0 or -1 with err. */
TG_MUST_CHECK int tg_control_start(int wait_jwks_ms, char *err, size_t errlen);
void tg_control_stop(void);

/* Publishes an invalidation to every instance ("user <id>", "key <id>", "all") and applies
 * it to this instance's workers at once. Any thread. */
void tg_control_invalidate(const char *msg);
/* Applies an invalidation message to this instance's workers (no publishing). */
void tg_control_apply_invalidation(const char *msg, size_t len);

/* Upstream reachability seen by the last probe: 1 yes, 0 no, -1 not probed yet. */
int tg_control_upstream_health(char *detail, size_t cap);
/* Wakes the webhook sender (a crossing was queued). */
void tg_control_kick_webhooks(void);

#endif
