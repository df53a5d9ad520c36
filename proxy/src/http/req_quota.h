/* req_quota.h: the request's side of the quota: reserve before forwarding, settle after,
 * rebuild from the ledger, fail modes, the block reply and the notice text. */
#ifndef TG_REQ_QUOTA_H
#define TG_REQ_QUOTA_H

#include "core/common.h"

struct tg_request;
struct tg_worker;

/* Reserves for the user (and team); ends in tg_request_on_reserved() or in a block / 503
 * reply that finishes the request. */
void tg_req_quota_reserve(struct tg_request *r);
/* Replaces the reservation with the real count (fire and forget; failures mark the subject
 * for a rebuild). Called by tg_request_finish(). */
void tg_req_quota_settle(struct tg_request *r);
/* The notice text for this request's user; returns its length or -1. */
int tg_req_quota_notice_text(struct tg_request *r, char *dst, size_t cap);

/* Redis of worker w became ready again: subjects served while it was away are rebuilt. */
void tg_req_quota_on_redis_ready(struct tg_worker *w);

/* The webhook outbox id of a crossing: "quota.warning:user:alice:m2026-11". */
int tg_quota_outbox_id(char *dst, size_t cap, bool exhausted, char kind, const char *subject,
                       const char *period_key);

#endif
