/* keyuse.h: api_keys.last_used_at, collected in memory and written in batches. */
#ifndef TG_KEYUSE_H
#define TG_KEYUSE_H

#include <libpq-fe.h>

#include "core/common.h"

/* Records that key_id was used at ms (any thread; cheap, mutex-protected). */
void tg_keyuse_note(const char *key_id, int64_t ms);
/* True when some use is waiting to be written. */
bool tg_keyuse_pending(void);
/* Writes the collected times with one UPDATE (control thread). Returns rows written or -1. */
int tg_keyuse_flush(PGconn *conn);

#endif
