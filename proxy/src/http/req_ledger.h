/* req_ledger.h: the request's ledger row (SPEC §6). */
#ifndef TG_REQ_LEDGER_H
#define TG_REQ_LEDGER_H

struct tg_request;

/* Builds the row and appends it to the worker's crash-safe ring. Never fails silently: a row
 * the ledger refuses is logged with every field so it can be entered by hand. */
void tg_req_ledger_append(struct tg_request *r);

#endif
