#!/usr/bin/env bash
# Issue 5 §2: Redis is a cache of the ledger. After FLUSHALL mid-run (with streams in flight)
# and after a restart of redis-server without persistence, the next request's
# x-quota-used-tokens and GET /v1/quota show the used figure rebuilt from PostgreSQL, exactly
# the ledger's sum (never zero), and nothing is counted twice. Uses its own redis-server.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

start_fake
own_redis_start
DB_URL=$(new_db qrebuild)
U=rb-user
ensure_user $U
set_quota user $U 1000000
start_tollgate_own_redis tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY
n=0

# one request (retried while a worker has not reconnected yet: a 503 bills nothing)
served_chat() { # usage [extra curl args]
    local usage=$1; shift
    for _ in $(seq 1 100); do
        chat $U true 16 -H "x-fake-usage: $usage" "$@" >"$T/last.out"
        [ "$(status)" = 503 ] || break
        sleep 0.1
    done
    assert_eq 200 "$(status)" "request served"
    n=$((n + 1))
}
# the used figure in the headers of the last reply == the ledger's sum before it
check_used() { # expected what
    assert_eq "$1" "$(header x-quota-used-tokens)" "$2: x-quota-used-tokens"
}
quota_used() { get_quota $U | jq -r .used_tokens; }

for u in 11,22 5,6 100,200; do served_chat $u; wait_ledger $U $n; done
sum=$(ledger_sum $U)
assert_eq 344 "$sum" "ledger sum of the first requests"
assert_eq "$sum" "$(redis_used $U)" "Redis agrees with the ledger"

# ---- FLUSHALL while one stream runs ------------------------------------------------------
chat $U true 16 -H 'x-fake-usage: 40,60' -H 'x-fake-chunks: 10' -H 'x-fake-delay-ms: 100' \
    >"$T/s1.out" &
S1=$!
wait_fake_running 1
qredis FLUSHALL >/dev/null
assert_eq "" "$(quota_key $U)" "FLUSHALL removed the counter"
assert_eq "$sum" "$(quota_used)" "GET /v1/quota right after FLUSHALL: the ledger's figure"
wait "$S1"
n=$((n + 1))
wait_ledger $U $n
sum=$(ledger_sum $U)
assert_eq 444 "$sum" "the stream that ran through the FLUSHALL is billed"
served_chat 1,2
check_used "$sum" "first request after FLUSHALL"
wait_ledger $U $n
sum=$(ledger_sum $U)
assert_eq "$sum" "$(redis_used $U)" "rebuilt counter == ledger sum (the stream counted once)"
assert_eq "$sum" "$(quota_used)" "GET /v1/quota after the rebuild"

# ---- FLUSHALL, then the rebuild happens while another stream is still running ------------
chat $U true 16 -H 'x-fake-usage: 70,30' -H 'x-fake-chunks: 20' -H 'x-fake-delay-ms: 100' \
    >"$T/s2.out" &
S2=$!
wait_fake_running 1
qredis FLUSHALL >/dev/null
served_chat 3,4
check_used "$sum" "request rebuilding while a stream runs"
wait "$S2"
n=$((n + 1))
wait_ledger $U $n
sum=$(ledger_sum $U)
wait_eq 10 "Redis == ledger after the in-flight stream settled" "$sum" redis_used $U
assert_eq 0 "$(redis_res $U)" "no reservation left behind"

# ---- a storm: many requests of one user find the counter missing at once -----------------
# they wait for one sum per worker (tollgate_quota_rebuilds_total), not one each
rebuilds() { curl -s "$TG_URL/metrics" | awk '/^tollgate_quota_rebuilds_total/ {print $2}'; }
before=$(rebuilds)
qredis FLUSHALL >/dev/null
storm=()
for i in $(seq 1 40); do
    chat $U false 16 -H 'x-fake-usage: 1,1' -H 'x-fake-delay-ms: 300' -o /dev/null -D /dev/null \
        -w '%{http_code}\n' >"$T/storm.$i" 2>/dev/null &
    storm+=($!)
done
wait "${storm[@]}"
assert_eq 40 "$(cat "$T"/storm.* | grep -c '^200$')" "the storm's 40 requests served"
added=$(( $(rebuilds) - before ))
[ "$added" -ge 1 ] && [ "$added" -le 2 ] || fail "40 requests after FLUSHALL made $added ledger sums (want 1 per worker, 2 workers)"
n=$((n + 40))
wait_ledger $U $n
sum=$(ledger_sum $U)
wait_eq 10 "Redis == ledger after the storm" "$sum" redis_used $U

# ---- redis-server restarted without persistence -----------------------------------------
own_redis_stop
own_redis_start "$OWN_REDIS_PORT"
assert_eq "" "$(quota_key $U)" "the restarted Redis is empty"
served_chat 5,5
check_used "$sum" "first request after the Redis restart"
wait_ledger $U $n
sum=$(ledger_sum $U)
assert_eq "$sum" "$(redis_used $U)" "rebuilt after the restart == ledger sum"
assert_eq "$sum" "$(quota_used)" "GET /v1/quota after the restart"
[ "$sum" -gt 0 ] || fail "nothing billed"

# ---- the rebuild also knows the crossings that already happened (no second alert) ---------
set_quota user $U $((sum + 10))
served_chat 5,5
wait_ledger $U $n
wait_eq 10 "the outbox rows of the crossings" 2 outbox_count $U
qredis FLUSHALL >/dev/null
set_quota user $U 1000000000
served_chat 1,1
wait_ledger $U $n
assert_eq 1 "$(qredis HGET "$(quota_key $U)" warned)" "warned flag restored from the outbox"
assert_eq 1 "$(qredis HGET "$(quota_key $U)" exhausted)" "exhausted flag restored from the outbox"
assert_eq 2 "$(outbox_count $U)" \
    "no alert repeated after the rebuild"
log "ok"
