#!/usr/bin/env bash
# Issue 3 §6: keep-alive upstream pool, https with verification, hop-by-hop headers,
# X-Request-Id, credentials (the client's never leaves; UPSTREAM_API_KEY does).
source "$(dirname "$0")/lib.sh"

start_fake
DB_URL=$(new_db conn)
start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY UPSTREAM_API_KEY=sk-upstream-secret \
    TOLLGATE_WORKERS=1

AUTH=(-H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: conn-user" -H "Content-Type: application/json")
B='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'

# ---- keep-alive: many sequential requests reuse one upstream connection
curl -s -X DELETE "$FAKE_URL/_fake/stats" >/dev/null
curl -s -X DELETE "$FAKE_URL/_fake/requests" >/dev/null
for i in $(seq 1 30); do
    curl -s -o /dev/null "$TG_URL/v1/chat/completions" "${AUTH[@]}" -d "$B"
done
# (only the chat requests: tollgate's control thread probes GET /health/liveliness every 5 s
# on a connection of its own, and the fake records those too)
chat=$(curl -s "$FAKE_URL/_fake/requests" | jq -c '[.[] | select(.path | test("chat/completions"))]')
assert_eq 30 "$(echo "$chat" | jq length)" "requests seen upstream"
assert_eq 1 "$(echo "$chat" | jq '[.[].connection_id] | unique | length')" \
    "upstream connections for 30 requests"
log "ok: 30 sequential requests on one upstream connection"

# ---- headers: the client's credential never leaves, UPSTREAM_API_KEY does; hop-by-hop
# headers are dropped; other headers pass; X-Request-Id is tollgate's, returned to the client
curl -s -X DELETE "$FAKE_URL/_fake/requests" >/dev/null
curl_tg "$TG_URL/v1/chat/completions" "${AUTH[@]}" -H "x-api-key: client-secret" \
    -H "Connection: keep-alive, X-Hop" -H "X-Hop: must-go" -H "Keep-Alive: timeout=5" \
    -H "TE: trailers" -H "Upgrade: h2c" -H "Proxy-Authorization: Basic abc" \
    -H "X-Custom: stays" -H "anthropic-version: 2023-06-01" -H "X-Request-Id: client-id-123" \
    -H "x-litellm-customer-id: someone-else" -H "Accept-Encoding: gzip" -d "$B" >/dev/null
h=$(curl -s "$FAKE_URL/_fake/requests" | jq -c '[.[] | select(.path | test("chat/completions"))] | .[-1].headers')
assert_eq "Bearer sk-upstream-secret" "$(echo "$h" | jq -r .authorization)" "upstream credential"
for gone in x-api-key x-hop keep-alive te upgrade proxy-authorization x-tollgate-user x-litellm-customer-id; do
    assert_eq null "$(echo "$h" | jq -r --arg k "$gone" '.[$k]')" "header $gone must not reach the upstream"
done
assert_not_contains "$h" "$SERVICE_KEY" "the service key reached the upstream"
assert_eq stays "$(echo "$h" | jq -r '.["x-custom"]')" "ordinary header"
assert_eq 2023-06-01 "$(echo "$h" | jq -r '.["anthropic-version"]')" "anthropic-version"
assert_eq identity "$(echo "$h" | jq -r '.["accept-encoding"]')" "accept-encoding"
rid=$(header x-request-id)
[[ "$rid" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] ||
    fail "X-Request-Id is not tollgate's UUIDv7: $rid"
assert_eq "$rid" "$(echo "$h" | jq -r '.["x-request-id"]')" "request id sent upstream"
line=$(log_for "$rid")
assert_eq client-id-123 "$(echo "$line" | jq -r .client_request_id)" "client's id kept as client_request_id"
# a client id that is not printable or too long is ignored
curl_tg "$TG_URL/v1/chat/completions" "${AUTH[@]}" -H "X-Request-Id: $(head -c 200 /dev/zero | tr '\0' a)" -d "$B" >/dev/null
assert_eq null "$(log_for "$(header x-request-id)" | jq -r .client_request_id)" "overlong client id ignored"
# hop-by-hop headers of the upstream's reply don't reach the client either
curl_tg "$TG_URL/v1/chat/completions" "${AUTH[@]}" -H "x-fake-close: 1" -d "$B" >/dev/null
assert_eq "" "$(header connection | grep -i close || true)" "upstream's Connection: close passed on"
log "ok: headers"

# ---- https: verification against a configured CA, and a failure with the wrong CA
"$TG_SOURCE_DIR/tests/fake_upstream/gen_certs.sh" "$T/certs" >/dev/null
start_fake tls --tls-cert "$T/certs/server.pem" --tls-key "$T/certs/server.key"
TLS_PORT=$FAKE_PORT
UPSTREAM="https://localhost:$TLS_PORT" start_tollgate tls TOLLGATE_SERVICE_KEY=$SERVICE_KEY \
    UPSTREAM_CA_FILE="$T/certs/ca.pem"
body=$(curl_tg "$TG_URL/v1/chat/completions" "${AUTH[@]}" -d "$B")
assert_eq 200 "$(status)" "https upstream with the right CA"
assert_eq chat.completion "$(echo "$body" | jq -r .object)" "https body"
UPSTREAM="https://localhost:$TLS_PORT" start_tollgate tlsbad TOLLGATE_SERVICE_KEY=$SERVICE_KEY \
    UPSTREAM_CA_FILE="$T/certs/other-ca.pem"
body=$(curl_tg "$TG_URL/v1/chat/completions" "${AUTH[@]}" -d "$B")
assert_eq 502 "$(status)" "https upstream with the wrong CA must fail"
wait_until 5 "the verification error in the log" grep -q "certificate verify failed\|verification failed" "$TG_LOG"
log "ok: https verification"
log "connection handling ok"
