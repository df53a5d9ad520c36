/* quota_api.h: the caller's own quota figures and statement (SPEC §5). */
#ifndef TG_QUOTA_API_H
#define TG_QUOTA_API_H

struct tg_request;

/* Answers GET /v1/quota or GET /v1/quota/statement for the authenticated user in r (its user
 * record is loaded), then finishes r. */
void tg_quota_api_respond(struct tg_request *r);

#endif
