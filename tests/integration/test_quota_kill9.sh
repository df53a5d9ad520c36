#!/usr/bin/env bash
# Issue 5 §1: the reservation of a process killed mid-stream (kill -9) holds the user's room
# only until QUOTA_RESERVATION_TTL_S; then another instance admits the user again, and the
# counters agree with the ledger.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

TTL=10
start_fake
DB_URL=$(new_db qkill)
U=k9-user
ensure_user $U
set_quota user $U 100

start_tollgate a TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_RESERVATION_TTL_S=$TTL
A_PID=$TG_PID
# a long stream whose reservation (prompt + max_tokens 200) is larger than the whole quota
as_user $U /v1/chat/completions -d "$(chat_body true 200)" -H 'x-fake-chunks: 100' \
    -H 'x-fake-delay-ms: 200' >"$T/stream.out" 2>/dev/null &
CURL_PID=$!
stream_started() {
    [ "$(curl -fsS "$FAKE_URL/_fake/requests" | jq '[.[] | select(.method == "POST" and .chunks_sent >= 1)] | length')" -ge 1 ]
}
wait_until 20 "the stream to run" stream_started
res=$(redis_res $U)
[ "${res:-0}" -ge 200 ] || fail "the stream's reservation is held in Redis (res=$res)"
t_reserved=$(now_ms)
kill -KILL "$A_PID"
wait "$CURL_PID" 2>/dev/null || true
assert_eq "$res" "$(redis_res $U)" "the killed process's reservation is still held"

start_tollgate b TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_RESERVATION_TTL_S=$TTL
body=$(chat $U true 16)
assert_eq 402 "$(status)" "the leaked reservation holds the room at first"
assert_eq "You have used 0 % of your monthly AI quota (100 tokens). It resets on $(date -u -d "$(date -u +%Y-%m-01) +1 month" '+%-d %B'). Requests still in progress hold the rest of it." \
    "$(jq -r .error.message <<<"$body" | sed 's/ 20[0-9][0-9]\././')" "message when in-flight reservations hold the room"
blocked=1
while :; do
    chat $U true 16 >/dev/null
    [ "$(status)" = 200 ] && break
    assert_eq 402 "$(status)" "blocked while the reservation lives"
    blocked=$((blocked + 1))
    [ $(($(now_ms) - t_reserved)) -lt $(((TTL + 15) * 1000)) ] || fail "the reservation never expired"
    sleep 0.5
done
elapsed=$(($(now_ms) - t_reserved))
log "room back after ${elapsed} ms ($blocked blocked attempts; TTL ${TTL} s)"
[ "$elapsed" -ge $(((TTL - 1) * 1000)) ] || fail "the reservation expired too early (${elapsed} ms)"
assert_eq "100 0 ok" "$(header x-quota-limit-tokens) $(header x-quota-used-tokens) $(header x-quota-state)" \
    "the user's room is back, nothing was billed for the killed stream"
wait_ledger $U $((blocked + 1))
wait_eq 10 "the settle" 0 redis_res $U
assert_eq "$(ledger_sum $U)" "$(redis_used $U)" "Redis used == ledger sum after the expiry"
log "ok"
