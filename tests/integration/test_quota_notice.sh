#!/usr/bin/env bash
# Issue 5 §4: the 80 % warning reaches a chat user: one extra content chunk just before the
# finish chunk of the first eligible streamed chat reply after the crossing; pending through
# tool-call turns, non-streamed (title) requests, n > 1 and Responses streams; shown once even
# to concurrent streams; stripped from assistant history before forwarding (the upstream's
# record shows it); never billed; off with QUOTA_WARN_INLINE=off.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

start_fake
DB_URL=$(new_db qnotice)
U=nt-user
ensure_user $U
set_quota user $U 100
start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_WARN_PERCENT=80
n=0
step() { # what usage [curl args...]: one streamed chat request into $T/out
    local what=$1 usage=$2; shift 2
    chat $U true 16 -H "x-fake-usage: $usage" "$@" >"$T/out"
    assert_eq 200 "$(status)" "$what: served"
    n=$((n + 1))
    wait_ledger $U $n
}

step "below the threshold" 30,30
assert_eq 0 "$(any_notice "$T/out")" "no notice below 80 %"
step "the crossing request" 10,15
assert_eq 0 "$(any_notice "$T/out")" "the reply that crosses 80 % cannot carry it (it is already sent)"
assert_eq 85 "$(redis_used $U)" "used after the crossing"
assert_eq 1 "$(qredis HGET "$(quota_key $U)" notice)" "a notice is pending"

# not eligible: a tool-call turn, a non-streamed (title) request, n = 2, a Responses stream
step "tool-call turn" 1,0 -H 'x-fake-tool-calls: 1'
assert_eq tool_calls "$(sse_chunks "$T/out" | jq -r '[.[] | .choices[0].finish_reason? // empty] | last')" "a tool-call turn"
assert_eq 0 "$(any_notice "$T/out")" "no notice in a tool-call turn"
assert_eq 1 "$(qredis HGET "$(quota_key $U)" notice)" "still pending after the tool-call turn"
chat $U false 16 -H 'x-fake-usage: 1,0' >"$T/out"; n=$((n + 1)); wait_ledger $U $n
assert_eq 0 "$(any_notice "$T/out")" "no notice in a non-streamed reply"
as_user $U /v1/chat/completions -H 'x-fake-usage: 1,0' \
    -d '{"model":"m","stream":true,"n":2,"max_tokens":8,"messages":[{"role":"user","content":"hi"}]}' >"$T/out"
n=$((n + 1)); wait_ledger $U $n
assert_eq 0 "$(any_notice "$T/out")" "no notice when n = 2"
as_user $U /v1/responses -H 'x-fake-usage: 1,0' -d '{"model":"m","input":"hi","stream":true}' >"$T/out"
n=$((n + 1)); wait_ledger $U $n
assert_eq 0 "$(any_notice "$T/out")" "no notice in a Responses stream"
assert_eq warning "$(header x-quota-state)" "the Responses stream's header says warning"
assert_eq 1 "$(qredis HGET "$(quota_key $U)" notice)" "still pending after the ineligible replies"

# the first eligible reply carries it, once, right before the finish chunk
used=$(redis_used $U)
pct=$((used * 100 / 100))
step "eligible reply" 2,3
assert_eq "1 1 stop" "$(notice_report "$T/out" "$pct")" "one notice chunk, just before the finish chunk"
assert_eq "tok0 tok1 tok2 tok3 tok4 $(notice_text "$pct")" "$(sse_text "$T/out")" "the text the user reads"
rid=$(header x-request-id)
assert_eq true "$(log_for "$rid" | jq -r .quota_notice)" "log: quota_notice"
assert_eq 5 "$(psql_db "$DB_URL" -c "SELECT total_tokens FROM ledger WHERE request_id = '$rid'")" \
    "the notice is never billed (the gateway's count only)"
assert_eq "$(ledger_sum $U)" "$(redis_used $U)" "Redis used == ledger sum"
assert_eq 0 "$(qredis HGET "$(quota_key $U)" notice)" "nothing pending after it was shown"
step "the next reply" 1,1
assert_eq 0 "$(any_notice "$T/out")" "shown only once per period"

# LibreChat re-sends the history: tollgate strips its notice before forwarding
answer="tok0 tok1 tok2 tok3 tok4 $(notice_text "$pct")"
fake_clear
body=$(jq -cn --arg a "$answer" --arg p "Earlier answer.$(notice_text 91)" '{model:"m",stream:true,max_tokens:8,
    messages:[{role:"user",content:"hi"},{role:"assistant",content:$a},{role:"user",content:"more"},
              {role:"assistant",content:[{type:"text",text:$p}]},{role:"user",content:"again"}]}')
as_user $U /v1/chat/completions -H 'x-fake-usage: 1,1' -d "$body" >"$T/out"
assert_eq 200 "$(status)" "request with a notice in its history"
n=$((n + 1)); wait_ledger $U $n
curl -fsS "$FAKE_URL/_fake/requests" | jq '[.[] | select(.method == "POST")] | last' >"$T/rec.json"
assert_eq '"tok0 tok1 tok2 tok3 tok4 "' "$(jq -c '.body_json.messages[1].content' "$T/rec.json")" \
    "the notice was stripped from a string assistant message"
assert_eq '[{"type":"text","text":"Earlier answer."}]' "$(jq -c '.body_json.messages[3].content' "$T/rec.json")" \
    "the notice was stripped from a content-part assistant message"
assert_eq 0 "$(jq -r .body "$T/rec.json" | grep -c 'AI quota' || true)" "the upstream never saw a notice"
assert_eq '"hi"' "$(jq -c '.body_json.messages[0].content' "$T/rec.json")" "user messages untouched"

# concurrent eligible streams: exactly one of them shows the notice
U=nt-conc
ensure_user $U
set_quota user $U 100
n=0
step "crossing for the concurrent test" 40,45
pids=()
for i in 1 2 3; do
    chat $U true 16 -H 'x-fake-usage: 1,1' -H 'x-fake-delay-ms: 100' >"$T/c$i.out" &
    pids+=($!)
done
wait "${pids[@]}"
shown=0
for i in 1 2 3; do shown=$((shown + $(any_notice "$T/c$i.out"))); done
assert_eq 1 "$shown" "three concurrent streams: the notice appears in exactly one"

# QUOTA_WARN_INLINE=off: headers only
REDIS_PREFIX="off$$:" Q_PREFIX="off$$:"
start_tollgate off TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_WARN_INLINE=off
U=nt-off
ensure_user $U
set_quota user $U 100
n=0
step "crossing with inline off" 45,40
step "after the crossing, inline off" 1,1
assert_eq warning "$(header x-quota-state)" "the header still says warning"
assert_eq 0 "$(any_notice "$T/out")" "QUOTA_WARN_INLINE=off: no notice in the reply"
step "again, inline off" 1,1
assert_eq 0 "$(any_notice "$T/out")" "QUOTA_WARN_INLINE=off: never"
log "ok"
