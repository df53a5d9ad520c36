/* keyuse.c: batched last_used_at updates for personal API keys. */
#include "http/keyuse.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"

#define MAX_KEYS 4096

struct use {
    char key_id[37];
    int64_t ms;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct use uses[MAX_KEYS];
static size_t nuses;

void tg_keyuse_note(const char *key_id, int64_t ms)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nuses; i++) {
        if (strcmp(uses[i].key_id, key_id) == 0) {
            if (ms > uses[i].ms)
                uses[i].ms = ms;
            pthread_mutex_unlock(&mu);
            return;
        }
    }
    if (nuses < MAX_KEYS) {
        snprintf(uses[nuses].key_id, sizeof(uses[nuses].key_id), "%s", key_id);
        uses[nuses].ms = ms;
        nuses++;
    }
    pthread_mutex_unlock(&mu);
}

bool tg_keyuse_pending(void)
{
    pthread_mutex_lock(&mu);
    bool any = nuses > 0;
    pthread_mutex_unlock(&mu);
    return any;
}

int tg_keyuse_flush(PGconn *conn)
{
    static struct use batch[MAX_KEYS];
    pthread_mutex_lock(&mu);
    size_t n = nuses;
    memcpy(batch, uses, n * sizeof(*batch));
    nuses = 0;
    pthread_mutex_unlock(&mu);
    if (n == 0)
        return 0;
    struct tg_buf sql = {0};
    int rc = tg_buf_puts(&sql, "UPDATE api_keys k SET last_used_at = v.t FROM (VALUES ");
    size_t rows = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        /* key ids come from our own database (uuid text): still, only a uuid's shape passes
         * (anything else is dropped, never retried) */
        size_t len = strlen(batch[i].key_id);
        if (len != 36 || strspn(batch[i].key_id, "0123456789abcdef-") != len)
            continue;
        rc = tg_buf_printf(&sql, "%s('%s'::uuid, to_timestamp(%lld / 1000.0))", rows ? "," : "",
                           batch[i].key_id, (long long)batch[i].ms);
        rows++;
    }
    if (rows == 0) {
        tg_buf_cleanup(&sql);
        return 0;
    }
    rc |= tg_buf_puts(&sql, ") AS v(id, t) WHERE k.id = v.id AND (k.last_used_at IS NULL OR "
                            "k.last_used_at < v.t)");
    int written = -1;
    if (rc == 0 && conn != NULL) {
        PGresult *res = PQexec(conn, sql.data);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            written = atoi(PQcmdTuples(res));
        } else {
            tg_log(TG_LOG_WARN, "api key last_used_at: %s", PQresultErrorMessage(res));
        }
        PQclear(res);
    }
    if (written < 0) {
        /* put them back for the next attempt */
        for (size_t i = 0; i < n; i++)
            tg_keyuse_note(batch[i].key_id, batch[i].ms);
    }
    tg_buf_cleanup(&sql);
    return written;
}
