#!/usr/bin/env bash
# Issue 5 §7: three tollgate processes on one Redis and one database; 200 concurrent streamed
# requests for one user whose quota fits about 50. Total settled ≤ limit + the largest single
# reservation; every refused request was refused before the upstream (the fake's record holds
# exactly the accepted ones); the ledger agrees with Redis at the end.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

N=200
MAX_TOKENS=20
USAGE=10,10 # 20 tokens each, within the reservation (prompt estimate + max_tokens)
LIMIT=1000  # about 50 requests of 20 tokens
start_fake
DB_URL=$(new_db qconc)
U=flood-user
ensure_user $U
set_quota user $U $LIMIT
ensure_user probe-user
set_quota user probe-user 1000000
urls=()
for i in 1 2 3; do
    TOLLGATE_WORKERS=2 start_tollgate tg$i TOLLGATE_SERVICE_KEY=$SERVICE_KEY
    urls+=("$TG_URL")
done

# the reservation of one such request, measured while it streams
chat probe-user true $MAX_TOKENS -H 'x-fake-delay-ms: 300' >/dev/null &
PROBE=$!
wait_fake_running 1
RESERVATION=$(redis_res probe-user)
wait "$PROBE"
[ "${RESERVATION:-0}" -gt "$MAX_TOKENS" ] || fail "a reservation covers prompt + max_tokens (got $RESERVATION)"
log "one request reserves $RESERVATION tokens"
fake_clear
# warm every worker's user cache (a first sight goes to the database and would only slow
# one instance down): GET /v1/quota bills nothing
for url in "${urls[@]}"; do
    for _ in 1 2 3 4 5 6; do TG_URL=$url get_quota $U >/dev/null; done
done

node "$TG_SOURCE_DIR/tests/node/quota_flood.mjs" "$(IFS=,; echo "${urls[*]}")" "$SERVICE_KEY" $U $N \
    $MAX_TOKENS "x-fake-usage: $USAGE" "x-fake-chunks: 5" "x-fake-delay-ms: 20" >"$T/flood.jsonl"
assert_eq $N "$(wc -l <"$T/flood.jsonl")" "every request answered"
assert_eq 0 "$(jq -s '[.[] | select(.error)] | length' "$T/flood.jsonl")" "no transport errors"
accepted=$(jq -s '[.[] | select(.status == 200)] | length' "$T/flood.jsonl")
refused=$(jq -s '[.[] | select(.status == 402)] | length' "$T/flood.jsonl")
log "accepted $accepted, refused $refused"
assert_eq $N $((accepted + refused)) "every request either served (200) or blocked (402)"
assert_eq "$accepted" "$(jq -s '[.[] | select(.status == 200 and .done == true)] | length' "$T/flood.jsonl")" \
    "every accepted stream ran to its end"
assert_eq "$refused" "$(jq -s '[.[] | select(.status == 402 and .code == "insufficient_quota" and .should_retry == "false" and .retry_after == null)] | length' "$T/flood.jsonl")" \
    "every refusal is the quota block"
[ "$accepted" -ge 30 ] && [ "$accepted" -le $((LIMIT / 20 + 1)) ] || fail "about 50 accepted (got $accepted)"
# each instance answered its third of the flood (which one wins the room is a matter of
# timing; that the others refused is what shows they share the counter)
for i in 1 2 3; do
    c=$(jq -s --arg u "${urls[$((i - 1))]}" '[.[] | select(.url == $u and .status == 200)] | length' "$T/flood.jsonl")
    a=$(grep '"msg":"request"' "$T/tg$i.log" | jq -s --arg u $U '[.[] | select(.user == $u and .route == "/v1/chat/completions")] | length')
    log "instance $i answered $a, served $c"
    [ "$a" -ge $((N / 3)) ] || fail "instance $i answered only $a requests"
done

# refused before the upstream: the fake saw exactly the accepted requests, by id
jq -rs '[.[] | select(.status == 200) | .request_id] | sort | join(",")' "$T/flood.jsonl" >"$T/acc.ids"
curl -fsS "$FAKE_URL/_fake/requests" |
    jq -r '[.[] | select(.method == "POST") | .headers["x-request-id"]] | sort | join(",")' >"$T/up.ids"
assert_eq "$(cat "$T/acc.ids")" "$(cat "$T/up.ids")" "the upstream saw exactly the accepted requests"

# the ledger: one row per request; settled total within limit + one reservation
wait_ledger $U $N
assert_eq "$accepted $refused" "$(psql_db "$DB_URL" -F ' ' -c "SELECT count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status = 'blocked') FROM ledger WHERE user_id = '$U'")" \
    "ledger rows by status"
total=$(ledger_sum $U)
assert_eq $((accepted * 20)) "$total" "settled total = accepted × 20"
log "settled $total of $LIMIT (bound $((LIMIT + RESERVATION)))"
[ "$total" -le $((LIMIT + RESERVATION)) ] || fail "overspent: $total > $LIMIT + $RESERVATION"
# Redis agrees with the ledger; nothing left reserved
wait_eq 10 "Redis used == ledger sum" "$total" redis_used $U
assert_eq 0 "$(redis_res $U)" "no reservation left"
# the three instances' log lines agree: N requests, accepted 200s
logs=$(cat "$T"/tg1.log "$T"/tg2.log "$T"/tg3.log | grep '"msg":"request"' | jq -c "select(.user == \"$U\" and .route == \"/v1/chat/completions\")")
assert_eq $N "$(wc -l <<<"$logs")" "one log line per request across the instances"
assert_eq "$accepted" "$(jq -s '[.[] | select(.status == 200)] | length' <<<"$logs")" "accepted in the logs"
log "ok"
