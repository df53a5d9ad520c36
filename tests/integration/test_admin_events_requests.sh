#!/usr/bin/env bash
# Issue 8 §3: finished metered requests on the live feed (event `request`): one per request,
# with its id (= X-Request-Id), user, model, route, ledger status, HTTP status and tokens;
# blocked requests included, /v1/models (not metered) not (tg_request_finish calls
# tg_admin_event_request, admin/admin_api.h).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"
start_fake
DB_URL=$(new_db admin_evreq)
start_admin tg

curl -sN "$TG_URL/admin/api/events" -H "Authorization: Bearer $ADMIN_KEY" >"$T/sse" &
SSE=$!; TG_PIDS+=("$SSE")
wait_until 10 "the subscription" grep -q "tollgate events" "$T/sse"
request_events() { grep -A1 '^event: request$' "$T/sse" | grep '^data: ' | cut -c7-; }
event_for() { request_events | jq -c --arg id "$1" 'select(.request_id == $id)'; }
has_event() { [ -n "$(event_for "$1")" ]; }

curl_tg "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $SERVICE_KEY" -H 'X-Tollgate-User: ev-a' \
    -H 'x-fake-usage: 7,3' -H 'Content-Type: application/json' -d "$CHAT_BODY" >/dev/null
RID=$(header x-request-id)
wait_until 10 "the request event" has_event "$RID"
assert_eq '["ev-a","gpt-4o-mini","/v1/chat/completions","ok",200,7,3,10,"upstream"]' \
    "$(event_for "$RID" | jq -c '[.user_id, .model, .route, .status, .http_status, .prompt_tokens, .completion_tokens, .total_tokens, .count_source]')" \
    "a finished request"
adm_ok PUT /admin/api/users/ev-b/quota '{"limit_tokens":0}' >/dev/null
curl_tg "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $SERVICE_KEY" -H 'X-Tollgate-User: ev-b' \
    -H 'Content-Type: application/json' -d "$CHAT_BODY" >/dev/null
RID=$(header x-request-id)
assert_eq 402 "$(status)" "blocked"
wait_until 10 "the blocked request's event" has_event "$RID"
assert_eq '["blocked",402,0]' "$(event_for "$RID" | jq -c '[.status, .http_status, .total_tokens]')" "a blocked request"
curl_tg "$TG_URL/v1/models" -H "Authorization: Bearer $SERVICE_KEY" >/dev/null
RID=$(header x-request-id)
curl_tg "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $SERVICE_KEY" -H 'X-Tollgate-User: ev-a' \
    -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}' >/dev/null
RID2=$(header x-request-id)
wait_until 10 "the streamed request's event" has_event "$RID2"
[ -z "$(event_for "$RID")" ] || fail "GET /v1/models (not metered) was published"
assert_eq 3 "$(request_events | wc -l)" "one event per metered request"
log "ok: finished requests arrive live"
