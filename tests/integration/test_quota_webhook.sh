#!/usr/bin/env bash
# Issue 5 §5: quota.warning and quota.exhausted go to ALERT_WEBHOOK_URL once per user and per
# team per period, as JSON (id, type, user_id, team_id, used_tokens, limit_tokens, period,
# period_start, at) with Idempotency-Key = id; a receiver that fails the first attempts (500,
# then a dropped connection) gets them again with growing delays and the same key, and ends
# with each event accepted exactly once, though two instances share the outbox.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

start_fake
DB_URL=$(new_db qhook)
node "$TG_SOURCE_DIR/tests/node/quota_webhook_receiver.mjs" "$T/hook.port" "$T/hook.jsonl" --fail 2 \
    >"$T/receiver.log" 2>&1 &
TG_PIDS+=($!)
wait_until 20 "the webhook receiver" test -s "$T/hook.port"
HOOK="http://127.0.0.1:$(cat "$T/hook.port")/hooks/quota"

ensure_user wh-a ops
ensure_user wh-b ops
set_quota user wh-a 100
set_quota user wh-b 1000
set_quota team ops 150
start_tollgate one TOLLGATE_SERVICE_KEY=$SERVICE_KEY ALERT_WEBHOOK_URL="$HOOK"
URL_ONE=$TG_URL
start_tollgate two TOLLGATE_SERVICE_KEY=$SERVICE_KEY ALERT_WEBHOOK_URL="$HOOK"
URL_TWO=$TG_URL

na=0 nb=0
req() { # URL USER usage
    TG_URL=$1 chat "$2" true 16 -H "x-fake-usage: $3" >/dev/null
    assert_eq 200 "$(status)" "$2 ($3) served"
    if [ "$2" = wh-a ]; then na=$((na + 1)); wait_ledger wh-a $na; else nb=$((nb + 1)); wait_ledger wh-b $nb; fi
}
req "$URL_ONE" wh-a 40,45 # a: 85 of 100 -> user warning; team 85 of 150
req "$URL_TWO" wh-b 20,20 # team 125 -> team warning (80 % = 120)
req "$URL_TWO" wh-a 5,5   # a: 95; team 135
req "$URL_ONE" wh-a 5,5   # a: 105 -> user exhausted; team 145
req "$URL_ONE" wh-b 5,5   # team 155 -> team exhausted
TG_URL=$URL_TWO chat wh-a true 16 >/dev/null
assert_eq 402 "$(status)" "a is blocked"
TG_URL=$URL_ONE chat wh-b true 16 >/dev/null
assert_eq 402 "$(status)" "b is blocked by the team"

START=$(date -u +%Y-%m-01T00:00:00Z)
delivered() { jq -s '[.[] | select(.outcome == "ok")] | length' "$T/hook.jsonl" 2>/dev/null || echo 0; }
wait_eq 60 "four events accepted" 4 delivered
sleep 3 # a late duplicate would show up within this window (the sender polls every second)
assert_eq 4 "$(delivered)" "each event accepted once, no more"
assert_eq 12 "$(jq -s length "$T/hook.jsonl")" "three attempts per event (two failures, one success)"

jq -s -c '[.[] | select(.outcome == "ok") | .body | fromjson]' "$T/hook.jsonl" >"$T/events.json"
event() { # type kind subject: the accepted event
    jq -c --arg t "$1" --arg id "$1:$2:$3:m$(date -u +%Y-%m)" \
        '[.[] | select(.type == $t and .id == $id)] | if length == 1 then .[0] else error("\(length) events") end' "$T/events.json"
}
check_event() { # type kind subject user team used limit
    local e
    e=$(event "$1" "$2" "$3") || fail "event $1 $2 $3 accepted once"
    assert_eq "$4 $5 $6 $7 month $START" \
        "$(jq -r '"\(.user_id) \(.team_id) \(.used_tokens) \(.limit_tokens) \(.period) \(.period_start)"' <<<"$e")" \
        "$1 for $2 $3: payload"
    local at
    at=$(date -d "$(jq -r .at <<<"$e")" +%s) || fail "$1 $2 $3: 'at' is not a time"
    [ $(( $(date +%s) - at )) -lt 120 ] || fail "$1 $2 $3: 'at' is not recent"
}
check_event quota.warning user wh-a wh-a ops 85 100
check_event quota.warning team ops wh-b ops 125 150
check_event quota.exhausted user wh-a wh-a ops 105 100
check_event quota.exhausted team ops wh-b ops 155 150

# every attempt of an event: POST, JSON, the same Idempotency-Key (= id) and the same body;
# growing delays between attempts (backoff)
for id in $(jq -r '.[].id' "$T/events.json"); do
    jq -s -c --arg id "$id" '[.[] | select((.body | fromjson | .id) == $id)]' "$T/hook.jsonl" >"$T/att.json"
    assert_eq "500 drop ok" "$(jq -r '[.[].outcome] | join(" ")' "$T/att.json")" "$id: attempts"
    assert_eq "$id" "$(jq -r '[.[].idempotency_key] | unique | join(",")' "$T/att.json")" "$id: the same Idempotency-Key on every attempt"
    assert_eq 1 "$(jq -r '[.[].body] | unique | length' "$T/att.json")" "$id: the same body on every attempt"
    assert_eq POST "$(jq -r '[.[].method] | unique | join(",")' "$T/att.json")" "$id: POST"
    assert_eq "/hooks/quota" "$(jq -r '[.[].path] | unique | join(",")' "$T/att.json")" "$id: the URL path"
    assert_contains "$(jq -r '.[0].content_type' "$T/att.json")" application/json "$id: content type"
    gap1=$(jq '.[1].t_ms - .[0].t_ms' "$T/att.json")
    gap2=$(jq '.[2].t_ms - .[1].t_ms' "$T/att.json")
    log "$id: retried after $gap1 ms, then $gap2 ms"
    [ "$gap1" -ge 1000 ] || fail "$id: retried too soon ($gap1 ms)"
    [ "$gap2" -gt "$gap1" ] || fail "$id: no backoff ($gap1 ms, then $gap2 ms)"
done
# the outbox records the delivery
assert_eq "4 4" "$(psql_db "$DB_URL" -F ' ' -c "SELECT count(*) FILTER (WHERE delivered_at IS NOT NULL), count(*) FILTER (WHERE attempts = 3) FROM webhook_outbox")" \
    "outbox: delivered, three attempts each"
log "ok"
