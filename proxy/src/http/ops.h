/* ops.h: operational endpoints (SPEC §8) and the routes served outside the proxy path. */
#ifndef TG_OPS_H
#define TG_OPS_H

struct tg_conn;

void tg_ops_healthz(struct tg_conn *c);
void tg_ops_readyz(struct tg_conn *c);
void tg_ops_metrics(struct tg_conn *c);

#endif
