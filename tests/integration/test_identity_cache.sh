#!/usr/bin/env bash
# Issue 4 §6: verified credentials and user records are cached in-process: a cached key keeps
# working without the database until AUTH_CACHE_TTL_S, then the database is asked again; the
# cache holds at most AUTH_CACHE_ENTRIES (least recently used evicted); a cached JWT never
# outlives its exp; an invalidation message drops the entry at once; a lost subscription
# (messages possibly missed) flushes everything. Changes are made with SQL alone (no PUBLISH)
# where the point is to see what the cache still believes.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_identity.sh"

SECRET="hs-secret-for-the-cache-test-0123456789"
start_fake
DB_URL=$(new_db ident_cache)
sql() { psql_db "$DB_URL" -c "$1"; }
code() { code_of "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $1" \
    -H "Content-Type: application/json" -d "$CHAT"; }
is_code() { [ "$(code "$2")" = "$1" ]; }
now_ms() { date +%s%3N; }

# ---- expiry: AUTH_CACHE_TTL_S=2, one worker ----------------------------------------------------
TOLLGATE_WORKERS=1 ident_tollgate ttl TOLLGATE_API_KEYS=on JWT_SECRET="$SECRET" JWT_LEEWAY_S=0 \
    AUTH_CACHE_TTL_S=2
read -r A_ID A < <(new_api_key "$DB_URL" amy)
assert_eq 200 "$(code "$A")" "key A first use"
sql "UPDATE api_keys SET revoked_at = now() WHERE id = '$A_ID'" # no PUBLISH
t0=$(now_ms)
assert_eq 200 "$(code "$A")" "key A revoked behind the cache's back: still cached"
wait_until 6 "the cached key to expire" is_code 401 "$A"
log "ok: cached key served without the database, asked again after the TTL ($(( $(now_ms) - t0 )) ms)"

read -r _ B < <(new_api_key "$DB_URL" bea)
assert_eq 200 "$(code "$B")" "bea first use"
sql "UPDATE users SET disabled = true WHERE id = 'bea'" # no PUBLISH
assert_eq 200 "$(code "$B")" "bea disabled behind the cache's back: still cached"
wait_until 6 "the cached user record to expire" is_code 403 "$B"
log "ok: cached user record expires after the TTL"

# a cached JWT is re-checked against its exp on every use
short=$(jwt HS256 "secret:$SECRET" '{"sub":"short","exp":"now+3"}')
assert_eq 200 "$(code "$short")" "short-lived JWT"
assert_eq 200 "$(code "$short")" "short-lived JWT (cached)"
wait_until 8 "the JWT to expire" is_code 401 "$short"
log "ok: a cached JWT does not outlive exp"

# ---- size: AUTH_CACHE_ENTRIES=16, long TTL --------------------------------------------------
TOLLGATE_WORKERS=1 ident_tollgate lru TOLLGATE_API_KEYS=on AUTH_CACHE_ENTRIES=16 AUTH_CACHE_TTL_S=300 \
    JWT_SECRET="$SECRET"
read -r C_ID C < <(new_api_key "$DB_URL" carl)
assert_eq 200 "$(code "$C")" "key C first use"
ids=()
keys=()
for i in $(seq 1 20); do
    read -r id k < <(new_api_key "$DB_URL" "filler$i")
    ids+=("$id")
    keys+=("$k")
done
for k in "${keys[@]}"; do assert_eq 200 "$(code "$k")" "filler key"; done
# C is the least recently used of 21 keys in a cache of 16: gone; the last filler is still there
sql "UPDATE api_keys SET revoked_at = now() WHERE id IN ('$C_ID', '${ids[19]}')" # no PUBLISH
assert_eq 401 "$(code "$C")" "evicted key C asked the database again"
assert_eq 200 "$(code "${keys[19]}")" "most recent key still cached"
log "ok: the cache holds at most AUTH_CACHE_ENTRIES (LRU evicted)"
# a hit makes an entry recent again. Now cached, least recent first: fillers 6..20, C (the
# refusal). Use fillers 6..20 (hits), then filler 5 (a miss: inserted, evicting C): the order is
# 6..20, 5. A hit on 6 (the oldest insertion) makes it the most recent; 15 new keys then evict
# 7..20 and 5, not 6.
for k in "${keys[@]:5:15}"; do assert_eq 200 "$(code "$k")" "filler key (hit)"; done
assert_eq 200 "$(code "${keys[4]}")" "filler 5 (a miss: it had been evicted)"
assert_eq 200 "$(code "${keys[5]}")" "filler 6 (a hit: most recent again)"
for i in $(seq 1 15); do
    read -r _ k < <(new_api_key "$DB_URL" "more$i")
    assert_eq 200 "$(code "$k")" "new key"
done
sql "UPDATE api_keys SET revoked_at = now() WHERE id IN ('${ids[4]}', '${ids[5]}')" # no PUBLISH
assert_eq 200 "$(code "${keys[5]}")" "filler 6, inserted first but used recently, is still cached"
assert_eq 401 "$(code "${keys[4]}")" "filler 5, inserted later but not used since, was evicted"
log "ok: least recently used, not least recently inserted"

# ---- invalidation: the message drops the entry at once; a lost subscription flushes all -------
read -r E_ID E < <(new_api_key "$DB_URL" eve)
assert_eq 200 "$(code "$E")" "key E first use"
t0=$(now_ms)
revoke_key "$DB_URL" "$E_ID"
wait_until 2 "revocation through the invalidation channel" is_code 401 "$E"
log "ok: invalidation applied in $(( $(now_ms) - t0 )) ms"

# a lookup that read the database before an invalidation arrived must not be cached: hold the
# lookup on a lock, let an invalidation through, release it (the lookup reads the row as it
# was), then change the row behind the cache's back: the next request must ask again.
# held_lookup CRED LOCK_SQL INVALIDATION PROBE PROBE_INVALIDATION PROBE_WANT: PROBE is a cached
# credential whose row was already changed behind the cache's back; its invalidation is
# published after INVALIDATION, so once PROBE gets PROBE_WANT the worker has applied both.
held_lookup() {
    local cred=$1 lock=$2 inval=$3 probe=$4 probe_inval=$5 probe_want=$6
    rm -f "$T/lock.fifo" "$T/lock.out"
    mkfifo "$T/lock.fifo"
    psql_db "$DB_URL" <"$T/lock.fifo" >"$T/lock.out" 2>&1 &
    local lp=$!
    exec 7>"$T/lock.fifo"
    echo "BEGIN; $lock; SELECT 'locked';" >&7
    wait_until 10 "the lock" grep -q locked "$T/lock.out"
    code "$cred" >"$T/held.code" &
    local cp=$!
    waiting() { [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() AND pid <> pg_backend_pid()")" -ge 1 ]; }
    wait_until 10 "the lookup to wait on the lock" waiting
    publish_invalidation "$inval"
    publish_invalidation "$probe_inval"
    wait_until 10 "the invalidations applied" is_code "$probe_want" "$probe"
    echo "ROLLBACK;" >&7
    exec 7>&-
    wait "$lp" || true
    wait "$cp"
    assert_eq 200 "$(cat "$T/held.code")" "the held request itself is served"
}
# a key lookup held by a table lock; the probe is a JWT user (no api_keys involved)
probe1=$(jwt HS256 "secret:$SECRET" '{"sub":"probe1","exp":"now+600"}')
assert_eq 200 "$(code "$probe1")" "probe1"
sql "UPDATE users SET disabled = true WHERE id = 'probe1'"
read -r G_ID G < <(new_api_key "$DB_URL" gil)
held_lookup "$G" "LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE" "key $G_ID" "$probe1" "user probe1" 403
sql "UPDATE api_keys SET revoked_at = now() WHERE id = '$G_ID'" # no PUBLISH
assert_eq 401 "$(code "$G")" "a key lookup older than an invalidation was cached"
log "ok: a key lookup older than an invalidation is not cached"
# a user record load held by a row lock (a JWT: no key lookup); the probe is another user's key
read -r P_ID P < <(new_api_key "$DB_URL" probe2)
assert_eq 200 "$(code "$P")" "probe2"
sql "UPDATE api_keys SET revoked_at = now() WHERE id = '$P_ID'"
new_user "$DB_URL" hal
hal=$(jwt HS256 "secret:$SECRET" '{"sub":"hal","exp":"now+600"}')
held_lookup "$hal" "SELECT 1 FROM users WHERE id = 'hal' FOR UPDATE" "user hal" "$P" "key $P_ID" 401
sql "UPDATE users SET disabled = true WHERE id = 'hal'" # no PUBLISH
assert_eq 403 "$(code "$hal")" "a user record loaded before an invalidation was cached"
log "ok: a user record older than an invalidation is not cached"

read -r F_ID F < <(new_api_key "$DB_URL" fay)
assert_eq 200 "$(code "$F")" "key F first use"
sql "UPDATE api_keys SET revoked_at = now() WHERE id = '$F_ID'" # no PUBLISH: missed message
assert_eq 200 "$(code "$F")" "F still cached"
# drop this tollgate's subscriber connection (only ours: found by its local port)
ports=$(ss -tnpH state established "( dport = :$TG_TEST_REDIS_PORT )" | grep "pid=$TG_PID," |
    awk '{print $3}' | sed 's/.*://')
killed=0
while read -r line; do
    id=$(echo "$line" | sed -n 's/.*\bid=\([0-9]*\).*/\1/p')
    port=$(echo "$line" | sed -n 's/.*\baddr=[^ ]*:\([0-9]*\) .*/\1/p')
    if echo "$ports" | grep -qx "$port"; then
        redis CLIENT KILL ID "$id" >/dev/null
        killed=$((killed + 1))
    fi
done < <(redis CLIENT LIST TYPE pubsub)
assert_eq 1 "$killed" "this tollgate's subscriber connection found"
wait_until 10 "a flush after the subscriber reconnects" is_code 401 "$F"
log "ok: a lost subscription flushes the caches when it comes back"
log "PASS"
