#!/usr/bin/env bash
# Issue 3 §5 edges: the limits of STREAM_ABORT_POLICY=drain (STREAM_DRAIN_MAX_S ends a drain;
# STREAM_DRAIN_MAX_CONCURRENT cancels the drains beyond the cap, and a finished drain frees its
# place), a client that leaves before the first reply byte while the upstream is still silent,
# the connect time-out (502) and the total time-out (a final SSE error event mid-stream, 504
# before the head), each with the request id and the count in the request's log line.
source "$(dirname "$0")/lib.sh"

start_fake
DB_URL=$(new_db timeouts)

AUTH=(-H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: timeout-user" -H "Content-Type: application/json")
S='{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Count please"}]}'
now_ms() { date +%s%3N; }
ts_ms() { date -d "$1" +%s%3N; } # the "ts" of a log line in ms

# rec_chunks N: the fake's last record of a request with x-fake-chunks: N
rec_chunks() {
    curl -s "$FAKE_URL/_fake/requests" |
        jq -c --arg n "$1" '[.[] | select(.headers["x-fake-chunks"] == $n)] | last // empty'
}
rec_closed() { # N: that record is closed
    [ "$(rec_chunks "$1" | jq -r '.closed_at_ms // "null"')" != null ]
}

# abort_after SECONDS CLIENT_ID CHUNKS OUT [curl args]: a stream of CHUNKS × 100 ms the client
# leaves after SECONDS; writes the time it left (ms) to OUT.gone
abort_after() {
    local secs=$1 cid=$2 chunks=$3 out=$4
    shift 4
    curl -sN --max-time "$secs" "$TG_URL/v1/chat/completions" "${AUTH[@]}" -H "x-request-id: $cid" \
        -H "x-fake-chunks: $chunks" -H "x-fake-delay-ms: 100" "$@" -d "$S" >"$out" || true
    now_ms >"$out.gone"
}

# ---- 1. STREAM_DRAIN_MAX_S ends a drain: the upstream is closed about 1 s after the abort, the
# tokens read until then are counted (estimated: the gateway's usage never came)
start_tollgate drain1 TOLLGATE_SERVICE_KEY=$SERVICE_KEY STREAM_ABORT_POLICY=drain STREAM_DRAIN_MAX_S=1
abort_after 0.5 drainmax-1 60 "$T/dm.out"
t_gone=$(cat "$T/dm.out.gone")
wait_until 10 "drain cut" rec_closed 60
rec=$(rec_chunks 60)
closed=$(echo "$rec" | jq .closed_at_ms)
sent=$(echo "$rec" | jq .chunks_sent)
client_chunks=$(grep -c '"content":"tok' "$T/dm.out" || true)
log "drain max: upstream closed $((closed - t_gone)) ms after the client left; $sent of 60 chunks produced, $client_chunks reached the client"
assert_eq true "$(echo "$rec" | jq .client_closed)" "drain max: tollgate closed the upstream"
assert_eq false "$(echo "$rec" | jq .finished)" "drain max: the stream was cut, not finished"
[ $((closed - t_gone)) -ge 700 ] || fail "drain max: upstream closed $((closed - t_gone)) ms after the abort (not drained)"
[ $((closed - t_gone)) -le 1800 ] || fail "drain max: upstream closed $((closed - t_gone)) ms after the abort (limit 1 s)"
[ "$sent" -ge $((client_chunks + 5)) ] || fail "drain max: the drain read only $sent chunks ($client_chunks before the abort)"
line=$(log_for_client drainmax-1)
assert_eq client_aborted "$(echo "$line" | jq -r .ledger_status)" "drain max: ledger status"
assert_eq estimated "$(echo "$line" | jq -r .count_source)" "drain max: count source"
comp=$(echo "$line" | jq .completion_tokens)
# each "tokN " is 2-3 tokens: the count covers what the drain read, not only what the client got
[ "$comp" -ge $((sent - 2)) ] && [ "$comp" -le $(( (sent + 2) * 3 )) ] ||
    fail "drain max: completion_tokens $comp for $sent chunks produced"
[ "$(echo "$line" | jq .prompt_tokens)" -gt 0 ] || fail "drain max: prompt not counted"
assert_eq "$(( $(echo "$line" | jq .prompt_tokens) + comp ))" "$(echo "$line" | jq .total_tokens)" "drain max: total"
lat=$(echo "$line" | jq .latency_ms)
[ "$lat" -ge 1200 ] && [ "$lat" -le 2800 ] || fail "drain max: latency $lat ms (abort at 0.5 s + 1 s drain)"
log "ok: STREAM_DRAIN_MAX_S=1 cut the drain; $comp tokens counted for $sent chunks"
stop_tollgate "$TG_PID" >/dev/null

# ---- 2. STREAM_DRAIN_MAX_CONCURRENT=1 on one worker: the second abandoned stream is cancelled
# while the first drains; once that drain is over, the next abandoned stream drains again
TOLLGATE_WORKERS=1 start_tollgate drain2 TOLLGATE_SERVICE_KEY=$SERVICE_KEY STREAM_ABORT_POLICY=drain \
    STREAM_DRAIN_MAX_S=20 STREAM_DRAIN_MAX_CONCURRENT=1
abort_after 1 cap-a 61 "$T/a.out" &
PA=$!
abort_after 2 cap-b 62 "$T/b.out" &
PB=$!
wait "$PA" "$PB"
tb_gone=$(cat "$T/b.out.gone")
ta_gone=$(cat "$T/a.out.gone")
[ "$ta_gone" -lt "$tb_gone" ] || fail "drain cap: the first client did not leave first"
wait_until 5 "second stream cancelled" rec_closed 62
recb=$(rec_chunks 62)
closed_b=$(echo "$recb" | jq .closed_at_ms)
assert_eq true "$(echo "$recb" | jq .client_closed)" "drain cap: the second upstream request was closed"
[ $((closed_b - tb_gone)) -lt 1000 ] || fail "drain cap: second upstream closed $((closed_b - tb_gone)) ms after its client"
reca=$(rec_chunks 61)
assert_eq null "$(echo "$reca" | jq .closed_at_ms)" "drain cap: the first stream is still being drained"
line=$(log_for_client cap-b)
assert_eq client_aborted "$(echo "$line" | jq -r .ledger_status)" "drain cap: second status"
assert_eq estimated "$(echo "$line" | jq -r .count_source)" "drain cap: second is counted by tollgate"
log "ok: drain cap: the second abandoned stream was cancelled $((closed_b - tb_gone)) ms after its client left, the first still drains"
wait_until 15 "first drain finished" rec_closed 61
reca=$(rec_chunks 61)
assert_eq true "$(echo "$reca" | jq .finished)" "drain cap: the first stream was read to its end"
line=$(log_for_client cap-a)
assert_eq client_aborted "$(echo "$line" | jq -r .ledger_status)" "drain cap: first status"
assert_eq upstream "$(echo "$line" | jq -r .count_source)" "drain cap: the drained stream bills the gateway's usage"
assert_eq 61 "$(echo "$line" | jq .completion_tokens)" "drain cap: the gateway's completion tokens"
# the finished drain gave its place back: the next abandoned stream drains (read to its end)
abort_after 0.5 cap-c 15 "$T/c.out"
wait_until 10 "third stream ended" rec_closed 15
recc=$(rec_chunks 15)
assert_eq true "$(echo "$recc" | jq .finished)" "drain cap: after the first drain ended, a new abort drains again"
assert_eq upstream "$(log_for_client cap-c | jq -r .count_source)" "drain cap: third count source"
log "ok: a finished drain frees its place under STREAM_DRAIN_MAX_CONCURRENT"
stop_tollgate "$TG_PID" >/dev/null

# ---- 3. a client that leaves before the first reply byte, the upstream silent for 5 s and the
# first-byte time-out 10 s: noticed at once, and the upstream request closed too
start_tollgate early TOLLGATE_SERVICE_KEY=$SERVICE_KEY UPSTREAM_FIRST_BYTE_TIMEOUT_S=10
curl -sN --max-time 1 "$TG_URL/v1/chat/completions" "${AUTH[@]}" -H "x-request-id: early-5s" \
    -H "x-fake-first-byte-delay-ms: 5000" -H "x-fake-chunks: 7" -d "$S" >/dev/null || true
t_gone=$(now_ms)
line=$(log_for_client early-5s)
t_logged=$(ts_ms "$(echo "$line" | jq -r .ts)")
assert_eq client_aborted "$(echo "$line" | jq -r .ledger_status)" "early leave: status"
[ $((t_logged - t_gone)) -lt 1000 ] || fail "early leave logged $((t_logged - t_gone)) ms after the client left"
[ "$(echo "$line" | jq .latency_ms)" -lt 2500 ] || fail "early leave: latency $(echo "$line" | jq .latency_ms) ms"
wait_until 5 "upstream request closed" rec_closed 7
rec=$(rec_chunks 7)
closed=$(echo "$rec" | jq .closed_at_ms)
assert_eq true "$(echo "$rec" | jq .client_closed)" "early leave: tollgate closed the upstream request"
[ $((closed - t_gone)) -lt 1000 ] || fail "early leave: upstream closed $((closed - t_gone)) ms after the client"
assert_eq 0 "$(echo "$rec" | jq .chunks_sent)" "early leave: the upstream never got to send"
log "ok: a client leaving before the first byte was logged after $((t_logged - t_gone)) ms, the upstream closed after $((closed - t_gone)) ms"
stop_tollgate "$TG_PID" >/dev/null

# ---- 4a. connect time-out: an upstream that never completes the TCP handshake (a listener whose
# accept queue is full: the kernel drops further SYNs) -> 502 after UPSTREAM_CONNECT_TIMEOUT_MS
cat >"$T/blackhole.py" <<'PY'
import os, signal, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(0)
port = s.getsockname()[1]
fill = []
for _ in range(4):  # fill the accept queue; never accept
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    fill.append(c)
time.sleep(0.2)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(port))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
signal.pause()
PY
python3 "$T/blackhole.py" "$T/blackhole.port" >"$T/blackhole.log" 2>&1 &
TG_PIDS+=("$!")
wait_until 10 "black-hole listener" test -s "$T/blackhole.port"
BH=$(cat "$T/blackhole.port")
# the black hole really holds a connect (else this test would pass on a refused connection)
rc=0; curl -s -o /dev/null --connect-timeout 0.5 "http://127.0.0.1:$BH/" || rc=$?
assert_eq 28 "$rc" "the black hole times out a connect (curl exit code)"
UPSTREAM="http://127.0.0.1:$BH" start_tollgate blackhole TOLLGATE_SERVICE_KEY=$SERVICE_KEY \
    UPSTREAM_CONNECT_TIMEOUT_MS=300
for i in 1 2; do
    t0=$(now_ms)
    body=$(curl_tg "$TG_URL/v1/chat/completions" "${AUTH[@]}" -d "$S")
    el=$(( $(now_ms) - t0 ))
    assert_eq 502 "$(status)" "connect time-out $i: status"
    [ "$el" -ge 250 ] && [ "$el" -lt 2000 ] || fail "connect time-out $i: answered after $el ms (limit 300 ms)"
    rid=$(header x-request-id)
    [ -n "$rid" ] || fail "connect time-out $i: no X-Request-Id"
    assert_eq server_error "$(echo "$body" | jq -r .error.type)" "connect time-out $i: error type"
    assert_contains "$(echo "$body" | jq -r .error.message)" "$rid" "connect time-out $i: the body carries the request id"
    line=$(log_for "$rid")
    assert_eq upstream_error "$(echo "$line" | jq -r .ledger_status)" "connect time-out $i: ledger status"
    assert_contains "$(echo "$line" | jq -r .error)" "connect time-out" "connect time-out $i: logged cause"
    assert_eq 0 "$(echo "$line" | jq .total_tokens)" "connect time-out $i: nothing billed"
    log "ok: connect time-out $i: 502 after $el ms"
done
stop_tollgate "$TG_PID" >/dev/null

# ---- 4b. total time-out: a 3 s stream under UPSTREAM_TOTAL_TIMEOUT_S=1 ends after about 1 s with
# a final SSE error event in OpenAI shape; the partial count is logged as estimated. Before the
# reply head the same limit gives 504.
start_tollgate total TOLLGATE_SERVICE_KEY=$SERVICE_KEY UPSTREAM_TOTAL_TIMEOUT_S=1
t0=$(now_ms)
out=$(curl_tg -N "$TG_URL/v1/chat/completions" "${AUTH[@]}" -H "x-request-id: total-1" \
    -H "x-fake-chunks: 30" -H "x-fake-delay-ms: 100" -d "$S")
el=$(( $(now_ms) - t0 ))
assert_eq 200 "$(status)" "total time-out: stream status"
[ "$el" -ge 900 ] && [ "$el" -lt 2000 ] || fail "total time-out: the stream ended after $el ms"
rid=$(header x-request-id)
lastev=$(printf '%s\n' "$out" | grep '^data: ' | tail -n 1 | sed 's/^data: //')
echo "$lastev" | jq -e '.error | (.message | type == "string") and .type == "server_error" and
    .code == "upstream_timeout" and has("param")' >/dev/null ||
    fail "total time-out: last event is not an OpenAI error: $lastev"
assert_contains "$(echo "$lastev" | jq -r .error.message)" "$rid" "total time-out: the error event carries the request id"
got=$(grep -c '"content":"tok' <<<"$out" || true)
[ "$got" -ge 3 ] && [ "$got" -lt 30 ] || fail "total time-out: $got content chunks before the error"
line=$(log_for_client total-1)
assert_eq upstream_error "$(echo "$line" | jq -r .ledger_status)" "total time-out: ledger status"
assert_eq estimated "$(echo "$line" | jq -r .count_source)" "total time-out: count source"
assert_contains "$(echo "$line" | jq -r .error)" "total time-out" "total time-out: logged cause"
comp=$(echo "$line" | jq .completion_tokens)
[ "$comp" -ge "$got" ] && [ "$comp" -le $(( (got + 2) * 3 )) ] ||
    fail "total time-out: completion_tokens $comp for $got chunks"
lat=$(echo "$line" | jq .latency_ms)
[ "$lat" -ge 900 ] && [ "$lat" -lt 2000 ] || fail "total time-out: latency $lat ms"
wait_until 5 "upstream closed" rec_closed 30
assert_eq false "$(rec_chunks 30 | jq .finished)" "total time-out: the upstream stream was cut"
log "ok: total time-out after $el ms: final error event, $comp tokens estimated for $got chunks"

t0=$(now_ms)
body=$(curl_tg "$TG_URL/v1/chat/completions" "${AUTH[@]}" -H "x-fake-first-byte-delay-ms: 3000" \
    -H "x-fake-chunks: 31" -d "$S")
el=$(( $(now_ms) - t0 ))
assert_eq 504 "$(status)" "total time-out before the head: status"
[ "$el" -ge 900 ] && [ "$el" -lt 2000 ] || fail "total time-out before the head: after $el ms"
assert_contains "$(echo "$body" | jq -r .error.message)" "$(header x-request-id)" "504 carries the request id"
log "ok: total time-out before the head: 504 after $el ms"

log "proxy time-outs ok"
