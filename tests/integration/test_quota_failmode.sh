#!/usr/bin/env bash
# Issue 5 §8: Redis away. QUOTA_FAIL_MODE=closed answers 503 (OpenAI error) within 100 ms when
# redis-server is stopped, and within REDIS_TIMEOUT_MS when it hangs, never reaching the
# upstream; QUOTA_FAIL_MODE=open serves and bills in the ledger. When Redis comes back tollgate
# reconnects by itself and the counters are right again: used == the ledger's sum, including
# what was served meanwhile, even when the restarted Redis loaded an older snapshot. Uses its
# own redis-server (stopped, paused and restarted here).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

start_fake
own_redis_start
DB_URL=$(new_db qfail)
ensure_user fc-user
set_quota user fc-user 1000000
ensure_user fo-user
set_quota user fo-user 1000

start_tollgate_own_redis closed TOLLGATE_SERVICE_KEY=$SERVICE_KEY REDIS_TIMEOUT_MS=200
CLOSED=$TG_URL
TOLLGATE_WORKERS=1 start_tollgate_own_redis open TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_FAIL_MODE=open \
    REDIS_TIMEOUT_MS=200
OPEN=$TG_URL
nc=0 no=0

# timed_chat URL USER usage: one streamed request; sets ST (status), MS (curl's total ms)
timed_chat() {
    local out
    out=$(curl -sS -o "$T/body" -D "$T/h" -w '%{http_code} %{time_total}' "$1/v1/chat/completions" \
        -H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: $2" -H 'Content-Type: application/json' \
        -H "x-fake-usage: $3" -d "$(chat_body true 16)")
    ST=${out%% *}
    MS=$(awk -v t="${out#* }" 'BEGIN { printf "%d", t * 1000 }')
}
check_503() { # what max_ms: tollgate's own latency (its log line) within max_ms; the client
    # sees the answer within a second however busy the machine is (no hang)
    assert_eq 503 "$ST" "$1: closed mode answers 503"
    local lat
    lat=$(log_for "$(header x-request-id)" "$T/closed.log" | jq -r .latency_ms)
    [ "$lat" -le "$2" ] || fail "$1: 503 took $lat ms in tollgate (limit $2 ms)"
    [ "$MS" -le 1000 ] || fail "$1: the client waited $MS ms for the 503"
    assert_eq "server_error quota_unavailable" "$(jq -r '"\(.error.type) \(.error.code)"' "$T/body")" "$1: OpenAI error"
    assert_contains "$(jq -r .error.message "$T/body")" "quota service is unavailable" "$1: message"
}

TG_URL=$CLOSED
timed_chat "$CLOSED" fc-user 10,10; nc=$((nc + 1))
assert_eq 200 "$ST" "closed: served while Redis is up"
timed_chat "$OPEN" fo-user 50,50; no=$((no + 1))
assert_eq 200 "$ST" "open: served while Redis is up"
wait_ledger fc-user $nc
wait_ledger fo-user $no
fake_clear

# ---- Redis hangs (SIGSTOP): closed fails after REDIS_TIMEOUT_MS (200), no hang --------------
kill -STOP "$OWN_REDIS_PID"
for i in 1 2 3; do
    timed_chat "$CLOSED" fc-user 1,1
    check_503 "hung Redis, request $i" 1000
done
kill -CONT "$OWN_REDIS_PID"
assert_eq 0 "$(fake_requests)" "closed mode: nothing reached the upstream"
# the timed-out reserves reached Redis all the same; on reconnect tollgate gives them back
# instead of letting them hold the user's room for QUOTA_RESERVATION_TTL_S
released() { grep -c 'releasing [0-9]* reservations of failed requests' "$T/closed.log" || true; }
test_released() { [ "$(released)" -ge 1 ]; }
wait_until 30 "the reconnect that releases them" test_released
wait_eq 10 "no reservation left after the hang" 0 redis_res fc-user

# ---- Redis stopped: closed answers 503 at once -------------------------------------------
# SAVE first: the restarted server will load this older snapshot (the counters before the
# outage), which the open-mode instance must not trust afterwards
wait_until 20 "Redis answering again" own_redis_ping
qredis SAVE >/dev/null
own_redis_stop
for i in 1 2 3 4 5; do
    timed_chat "$CLOSED" fc-user 1,1
    check_503 "stopped Redis, request $i" 100
done
assert_eq 0 "$(fake_requests)" "closed mode: nothing reached the upstream"
assert_eq $nc "$(ledger_count fc-user)" "closed mode: the 503s are not billed"

# ---- open mode serves and bills in the ledger --------------------------------------------
for u in 300,100 200,100 50,50; do
    timed_chat "$OPEN" fo-user "$u"; no=$((no + 1))
    assert_eq 200 "$ST" "open mode serves without Redis ($u)"
    assert_eq "" "$(header x-quota-used-tokens)" "open mode: no quota figures to show"
done
assert_eq 3 "$(fake_requests)" "open mode: the requests reached the upstream"
wait_ledger fo-user $no
assert_eq 900 "$(ledger_sum fo-user)" "open mode billed everything in the ledger"

# ---- Redis comes back with its old snapshot -----------------------------------------------
own_redis_start "$OWN_REDIS_PORT"
loaded=$(grep -o 'keys loaded: [0-9]*' "$T/redis-own.log" | tail -n 1)
[ "${loaded#keys loaded: }" -ge 2 ] || fail "the restarted Redis loaded the old snapshot ($loaded)"
# the open instance reconnects by itself and drops the counter it served around (the
# snapshot's used=100); without that the next request would see 100
wait_eq 30 "the stale counter dropped on reconnect" "" quota_key fo-user
timed_chat "$OPEN" fo-user 10,10; no=$((no + 1))
assert_eq 200 "$ST" "open: served after the restart"
assert_eq "900 1000 warning" "$(header x-quota-used-tokens) $(header x-quota-limit-tokens) $(header x-quota-state)" \
    "open: the counter rebuilt from the ledger, with what was served while Redis was away"
wait_ledger fo-user $no
assert_eq "$(ledger_sum fo-user)" "$(redis_used fo-user)" "open: Redis used == ledger sum"
# the rebuilt figure crossed 80 %: the alert is queued once
wait_eq 10 "the warning crossing found by the rebuild" 1 outbox_count fo-user

# the closed instance reconnects by itself too (its 503s bill nothing: the sum stays)
before=$(ledger_sum fc-user)
for _ in $(seq 1 200); do
    timed_chat "$CLOSED" fc-user 3,4
    [ "$ST" = 503 ] || break
    sleep 0.1
done
assert_eq 200 "$ST" "closed: served again after Redis came back"
nc=$((nc + 1))
assert_eq "$before" "$(header x-quota-used-tokens)" "closed: used == ledger sum before the request"
wait_ledger fc-user $nc
assert_eq "$(ledger_sum fc-user)" "$(redis_used fc-user)" "closed: Redis used == ledger sum"
assert_eq 0 "$(redis_res fc-user)" "closed: no reservation left behind"
log "ok"
