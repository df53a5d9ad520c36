#!/usr/bin/env bash
# Issue 3 §5: streaming behaviour: early first chunk, backpressure, client aborts (cancel and
# drain), a client leaving before the first byte, upstream errors before and during a stream,
# connection refused (502) and time-outs (504).
source "$(dirname "$0")/lib.sh"

start_fake
DB_URL=$(new_db stream)
start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY UPSTREAM_FIRST_BYTE_TIMEOUT_S=2 \
    UPSTREAM_IDLE_TIMEOUT_S=2
TG1=$TG_URL
TG1_LOG=$TG_LOG
TG1_PID=$TG_PID

AUTH=(-H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: stream-user" -H "Content-Type: application/json")
S='{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Count please"}]}'
now_ms() { date +%s%3N; }

last_fake() { curl -s "$FAKE_URL/_fake/requests" | jq -c '[.[] | select(.path | test("chat"))] | last'; }

# ---- 1. the first chunk reaches the client long before the upstream finishes
t0=$(now_ms)
{ IFS= read -r first; t1=$(now_ms); cat >/dev/null; } < <(curl -sN "$TG1/v1/chat/completions" "${AUTH[@]}" \
    -H "x-fake-chunks: 6" -H "x-fake-delay-ms: 400" -d "$S")
t2=$(now_ms)
[ $((t1 - t0)) -lt 1000 ] || fail "first chunk after $((t1 - t0)) ms"
[ $((t2 - t0)) -ge 2000 ] || fail "stream ended after only $((t2 - t0)) ms"
assert_contains "$first" "data: " "first line is an event"
log "ok: first chunk after $((t1 - t0)) ms, stream done after $((t2 - t0)) ms"

# ---- 2. backpressure: a client that stops reading does not make tollgate's memory grow
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
mkfifo "$T/slow"
curl -sN "$TG1/v1/chat/completions" "${AUTH[@]}" -H "x-fake-chunks: 200000" \
    -H "x-fake-chunk-bytes: 1000" -d "$S" >"$T/slow" &
SLOW_CURL=$!
TG_PIDS+=("$SLOW_CURL")
exec 7<"$T/slow"             # opened, never read: curl and then tollgate's socket back up
head -c 100000 <&7 >/dev/null # read a little so the stream is flowing
sleep 1
r1=$(rss "$TG1_PID")
sent1=$(last_fake | jq .chunks_sent)
sleep 3
r2=$(rss "$TG1_PID")
sent2=$(last_fake | jq .chunks_sent)
log "backpressure: tollgate RSS ${r1} kB -> ${r2} kB, upstream chunks ${sent1} -> ${sent2} of 200000"
[ "$sent2" -lt 20000 ] || fail "upstream kept producing ($sent2 chunks) while the client did not read"
[ $((r2 - r1)) -lt 8192 ] || fail "RSS grew by $((r2 - r1)) kB while the client did not read"
exec 7<&-
kill "$SLOW_CURL" 2>/dev/null || true
wait "$SLOW_CURL" 2>/dev/null || true

# ---- 3. cancel: a client that disconnects mid-stream closes the upstream within 1 s; the
# tokens produced so far are counted (estimated)
curl -sN --max-time 1.2 "$TG1/v1/chat/completions" "${AUTH[@]}" -H "x-request-id: cancel-1" \
    -H "x-fake-chunks: 50" -H "x-fake-delay-ms: 100" -d "$S" >"$T/cancel.out" || true
t_gone=$(now_ms)
wait_until 5 "upstream closed" bash -c "curl -s '$FAKE_URL/_fake/requests' | jq -e '[.[] | select(.headers[\"x-fake-chunks\"]==\"50\")] | last | .client_closed' >/dev/null"
rec=$(curl -s "$FAKE_URL/_fake/requests" | jq -c '[.[] | select(.headers["x-fake-chunks"]=="50")] | last')
closed_at=$(echo "$rec" | jq .closed_at_ms)
[ $((closed_at - t_gone)) -lt 1000 ] || fail "upstream closed $((closed_at - t_gone)) ms after the client left"
line=$(log_for_client cancel-1 "$TG1_LOG")
assert_eq client_aborted "$(echo "$line" | jq -r .ledger_status)" "cancel: ledger status"
assert_eq estimated "$(echo "$line" | jq -r .count_source)" "cancel: count source"
got_chunks=$(grep -c '"content":"tok' "$T/cancel.out" || true)
comp=$(echo "$line" | jq .completion_tokens)
# each "tokN " delta is 2-3 tokens in o200k: the count follows what was produced
[ "$comp" -ge "$got_chunks" ] && [ "$comp" -le $(( (got_chunks + 2) * 3 )) ] ||
    fail "cancel: completion_tokens $comp for $got_chunks chunks received"
[ "$(echo "$line" | jq .prompt_tokens)" -gt 0 ] || fail "cancel: prompt not counted"
log "ok: cancel closed the upstream $((closed_at - t_gone)) ms after the client; $comp tokens for $got_chunks chunks"

# ---- 4. a client that leaves before the first reply byte is noticed too
curl -sN --max-time 1 "$TG1/v1/chat/completions" "${AUTH[@]}" -H "x-request-id: early-1" \
    -H "x-fake-first-byte-delay-ms: 1500" -H "x-fake-chunks: 3" -d "$S" >/dev/null || true
t_gone=$(now_ms)
wait_until 5 "early leave logged" bash -c "grep -q '\"client_request_id\":\"early-1\"' '$TG1_LOG'"
t_logged=$(now_ms)
line=$(log_for_client early-1 "$TG1_LOG")
assert_eq client_aborted "$(echo "$line" | jq -r .ledger_status)" "early leave: status"
[ $((t_logged - t_gone)) -lt 1000 ] || fail "early leave noticed after $((t_logged - t_gone)) ms"
log "ok: a client leaving before the first byte was noticed in $((t_logged - t_gone)) ms"

# ---- 5. an error LiteLLM sends as the first stream event becomes a plain JSON error
body=$(curl_tg "$TG1/v1/chat/completions" "${AUTH[@]}" -H "x-fake-stream-error-status: 429" -d "$S")
assert_eq 429 "$(status)" "first-event error status"
assert_contains "$(header content-type)" "application/json" "first-event error content type"
assert_eq "fake error 429" "$(echo "$body" | jq -r .error.message)" "first-event error body"
[ -n "$(header x-request-id)" ] || fail "first-event error: no request id"

# ---- 6. an upstream that drops mid-stream: a final SSE error event in OpenAI shape, and the
# partial count
out=$(curl -sN "$TG1/v1/chat/completions" "${AUTH[@]}" -H "x-request-id: drop-1" \
    -H "x-fake-drop-after: 3" -H "x-fake-chunks: 10" -d "$S")
lastev=$(printf '%s\n' "$out" | grep '^data: ' | tail -n 1 | sed 's/^data: //')
echo "$lastev" | jq -e '.error.message and .error.type' >/dev/null || fail "mid-stream drop: last event $lastev"
line=$(log_for_client drop-1 "$TG1_LOG")
assert_eq upstream_error "$(echo "$line" | jq -r .ledger_status)" "drop: status"
assert_eq estimated "$(echo "$line" | jq -r .count_source)" "drop: count source"
[ "$(echo "$line" | jq .completion_tokens)" -ge 3 ] || fail "drop: partial count missing"
log "ok: mid-stream drop ends with an error event; partial count $(echo "$line" | jq .completion_tokens)"

# ---- 7. the upstream's idle time-out mid-stream also ends with an error event
out=$(curl -sN "$TG1/v1/chat/completions" "${AUTH[@]}" -H "x-fake-delay-ms: 3000" -H "x-fake-chunks: 3" -d "$S")
printf '%s\n' "$out" | grep '^data: ' | tail -n 1 | grep -q 'upstream_timeout' || fail "idle time-out: $out"

# ---- 8. no first byte within the time-out: 504 with the request id
body=$(curl_tg "$TG1/v1/chat/completions" "${AUTH[@]}" -H "x-fake-first-byte-delay-ms: 4000" -d "$S")
assert_eq 504 "$(status)" "first-byte time-out"
rid=$(header x-request-id)
assert_contains "$(echo "$body" | jq -r .error.message)" "$rid" "504 body carries the request id"

# ---- 9. drain: the upstream is read to its end and the gateway's usage billed
start_tollgate drain TOLLGATE_SERVICE_KEY=$SERVICE_KEY STREAM_ABORT_POLICY=drain STREAM_DRAIN_MAX_S=10
curl -sN --max-time 0.8 "$TG_URL/v1/chat/completions" "${AUTH[@]}" -H "x-request-id: drain-1" \
    -H "x-fake-chunks: 20" -H "x-fake-delay-ms: 100" -H "x-fake-usage: 11,20,0,0" -d "$S" >/dev/null || true
wait_until 10 "drain logged" bash -c "grep -q '\"client_request_id\":\"drain-1\"' '$TG_LOG'"
line=$(log_for_client drain-1 "$TG_LOG")
assert_eq client_aborted "$(echo "$line" | jq -r .ledger_status)" "drain: status"
assert_eq upstream "$(echo "$line" | jq -r .count_source)" "drain: the gateway's usage is billed"
assert_eq 20 "$(echo "$line" | jq .completion_tokens)" "drain: completion tokens"
rec=$(curl -s "$FAKE_URL/_fake/requests" | jq -c '[.[] | select(.headers["x-request-id"] != null and .headers["x-fake-chunks"]=="20")] | last')
assert_eq true "$(echo "$rec" | jq .finished)" "drain: upstream read to the end"

# ---- 10. connection refused: 502 with the request id
stop_tollgate "$TG_PID" >/dev/null
dead=$(free_port)
UPSTREAM="http://127.0.0.1:$dead" start_tollgate refused TOLLGATE_SERVICE_KEY=$SERVICE_KEY
body=$(curl_tg "$TG_URL/v1/chat/completions" "${AUTH[@]}" -d "$S")
assert_eq 502 "$(status)" "connection refused"
assert_contains "$(echo "$body" | jq -r .error.message)" "$(header x-request-id)" "502 carries the request id"
assert_eq server_error "$(echo "$body" | jq -r .error.type)" "502 type"

log "streaming behaviour ok"
