#!/usr/bin/env bash
# Issue 5 §6: GET /v1/quota and GET /v1/quota/statement?from=&to= give the caller's own
# figures and ledger lines (another user's rows never appear); bad from/to/limit → 400.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

start_fake
DB_URL=$(new_db qapi)
start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY
RESET=$(month_reset_rfc3339)
ensure_user qa-1 squad
ensure_user qa-2
set_quota user qa-1 1000
set_quota user qa-2 -1
set_quota team squad 5000

n1=0 n2=0
use() { # user usage client-request-id
    chat "$1" true 16 -H "x-fake-usage: $2" -H "X-Request-Id: $3" >/dev/null
    assert_eq 200 "$(status)" "$1 served"
    if [ "$1" = qa-1 ]; then n1=$((n1 + 1)); wait_ledger qa-1 $n1; else n2=$((n2 + 1)); wait_ledger qa-2 $n2; fi
}
use qa-1 100,50 c1-a
use qa-2 7,7 c2-a
use qa-1 200,100 c1-b
use qa-2 8,8 c2-b
use qa-1 1,1 c1-c

# each settle leaves a d:<request id> marker (a repeated settle is ignored); it must expire
# within minutes, not live for the period (that would be ~140 bytes of Redis per request)
rz=$(qredis --scan --pattern "${Q_PREFIX}{u:qa-1}:*:rz" | head -n 1)
[ -n "$rz" ] || fail "no :rz key for qa-1"
now_ms=$(( $(date +%s) * 1000 ))
markers=$(qredis ZRANGE "$rz" 0 -1 WITHSCORES | paste - - | grep '^d:' || true)
assert_eq 3 "$(grep -c . <<<"$markers")" "one settle marker per request of qa-1"
while read -r m score; do
    [ "$score" -gt "$now_ms" ] && [ "$score" -le $((now_ms + 130000)) ] ||
        fail "marker $m expires at $score, now $now_ms: not within ~2 minutes"
done <<<"$markers"

# ---- GET /v1/quota -----------------------------------------------------------------------
get_quota qa-1 >"$T/q1.json"
assert_eq 200 "$(status)" "GET /v1/quota"
assert_contains "$(header content-type)" application/json "content type"
assert_eq "{\"user_id\":\"qa-1\",\"period\":\"month\",\"limit_tokens\":1000,\"used_tokens\":452,\"remaining_tokens\":548,\"percent\":45,\"state\":\"ok\",\"reset\":\"$RESET\",\"team\":{\"team_id\":\"squad\",\"period\":\"month\",\"limit_tokens\":5000,\"used_tokens\":452,\"remaining_tokens\":4548,\"percent\":9,\"state\":\"ok\",\"reset\":\"$RESET\"}}" \
    "$(jq -c . "$T/q1.json")" "qa-1's figures (with the team's)"
get_quota qa-2 >"$T/q2.json"
assert_eq "{\"user_id\":\"qa-2\",\"period\":\"month\",\"limit_tokens\":-1,\"used_tokens\":30,\"remaining_tokens\":-1,\"percent\":0,\"state\":\"ok\",\"reset\":\"$RESET\"}" \
    "$(jq -c . "$T/q2.json")" "qa-2's own figures (unlimited, no team)"
use qa-1 300,100 c1-d
assert_eq "852 85 warning" "$(get_quota qa-1 | jq -r '"\(.used_tokens) \(.percent) \(.state)"')" "warning state"
use qa-1 100,100 c1-e
assert_eq "1052 0 105 exhausted" "$(get_quota qa-1 | jq -r '"\(.used_tokens) \(.remaining_tokens) \(.percent) \(.state)"')" \
    "exhausted state"
chat qa-1 true 16 >/dev/null
assert_eq 402 "$(status)" "qa-1 blocked"
n1=$((n1 + 1)); wait_ledger qa-1 $n1
get_quota qa-1 >/dev/null
assert_eq 200 "$(status)" "GET /v1/quota works for a blocked user"
curl_tg "$TG_URL/v1/quota" >/dev/null
assert_eq 401 "$(status)" "GET /v1/quota needs a credential"

# ---- GET /v1/quota/statement ---------------------------------------------------------------
stmt() { # user query
    curl_tg "$TG_URL/v1/quota/statement$2" -H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: $1"
}
own_ids() { # user: the user's ledger ids, newest first
    psql_db "$DB_URL" -c "SELECT request_id FROM ledger WHERE user_id = '$1' ORDER BY started_at DESC, request_id DESC" | paste -sd,
}
stmt qa-1 "" >"$T/s1.json"
assert_eq 200 "$(status)" "statement"
assert_eq "$(own_ids qa-1)" "$(jq -r '[.data[].request_id] | join(",")' "$T/s1.json")" \
    "the statement is the caller's own rows, newest first"
assert_eq 6 "$(jq '.data | length' "$T/s1.json")" "five served and one blocked"
assert_eq "1052" "$(jq '[.data[].total_tokens] | add' "$T/s1.json")" "the statement's tokens"
assert_eq "blocked ok ok ok ok ok" "$(jq -r '[.data[].status] | join(" ")' "$T/s1.json")" "statuses"
assert_eq "c1-e c1-d c1-c c1-b c1-a" "$(jq -r '[.data[] | select(.status == "ok") | .client_request_id] | join(" ")' "$T/s1.json")" \
    "the client's own request ids are shown"
assert_eq "/v1/chat/completions gpt-4o-mini 200 100 upstream" \
    "$(jq -r '.data[1] | "\(.route) \(.model) \(.total_tokens) \(.completion_tokens) \(.count_source)"' "$T/s1.json")" \
    "one line's fields"
for ((i = 0; i < 6; i++)); do
    started=$(jq -r ".data[$i].started_at" "$T/s1.json")
    [[ "$started" =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z$ ]] || fail "started_at is RFC 3339 UTC: $started"
done
stmt qa-2 "" >"$T/s2.json"
assert_eq "$(own_ids qa-2)" "$(jq -r '[.data[].request_id] | join(",")' "$T/s2.json")" "qa-2 sees only its rows"
for id in $(jq -r '.data[].request_id' "$T/s2.json"); do
    assert_not_contains "$(own_ids qa-1)" "$id" "qa-2's rows never in qa-1's statement"
done

# from (inclusive) / to (exclusive)
mid=$(psql_db "$DB_URL" -c "SELECT to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM ledger WHERE client_request_id = 'c1-c'")
assert_eq "c1-e c1-d c1-c" "$(stmt qa-1 "?from=$mid" | jq -r '[.data[] | select(.status == "ok") | .client_request_id] | join(" ")')" \
    "from is inclusive"
assert_eq "c1-b c1-a" "$(stmt qa-1 "?to=$mid" | jq -r '[.data[].client_request_id] | join(" ")')" "to is exclusive"
tomorrow=$(date -u -d tomorrow +%Y-%m-%d)
assert_eq 0 "$(stmt qa-1 "?from=$tomorrow" | jq '.data | length')" "nothing from tomorrow on"
assert_eq 6 "$(stmt qa-1 "?from=2000-01-01T00:00:00Z&to=$tomorrow" | jq '.data | length')" "a wide range"
stmt qa-1 "?to=2000-01-01T00:00:00Z" >"$T/old.json"
assert_eq "200 0" "$(status) $(jq '.data | length' "$T/old.json")" "to alone: open toward the past (not the period start)"
stmt qa-1 "?from=2000-01-01" >"$T/old.json"
assert_eq "200 6" "$(status) $(jq '.data | length' "$T/old.json")" "from alone: open toward the future"
enc=$(jq -rn --arg v "$(date -u +%Y-%m-%dT00:00:00+00:00)" '$v | @uri')
assert_eq 6 "$(stmt qa-1 "?from=$enc" | jq '.data | length')" "from with an explicit offset"
assert_eq 2 "$(stmt qa-1 "?limit=2" | jq '.data | length')" "limit"
for q in "?from=yesterday" "?to=2026-13-01" "?from=$tomorrow&to=2000-01-01" "?limit=0" "?limit=x"; do
    stmt qa-1 "$q" >"$T/bad.json"
    assert_eq 400 "$(status)" "statement$q: 400"
    assert_eq invalid_request_error "$(jq -r .error.type "$T/bad.json")" "statement$q: error type"
done
assert_contains "$(stmt qa-1 "?from=yesterday" | jq -r .error.message)" "'from'" "the message names from"
assert_contains "$(stmt qa-1 "?to=nope" | jq -r .error.message)" "'to'" "the message names to"
curl_tg "$TG_URL/v1/quota/statement" >/dev/null
assert_eq 401 "$(status)" "the statement needs a credential"
log "ok"
