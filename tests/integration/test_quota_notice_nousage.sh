#!/usr/bin/env bash
# Issue 5 §4 + issue 9 §3: the inline quota notice is never billed, also when the gateway reports
# no usage (x-fake-no-usage) and tollgate counts the reply itself: the eligible streamed reply
# after crossing QUOTA_WARN_PERCENT carries the notice, and its ledger row and log line bill the
# prompt estimate plus the tokens of the text the model produced, WITHOUT the notice
# (count_source estimated), as `tollgate tokens` counts them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

start_fake
DB_URL=$(new_db qnotice_nu)
U=nu-user
MODEL=gpt-4o-mini
ensure_user $U
set_quota user $U 1000
start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_WARN_PERCENT=80
count() { printf '%s' "$1" | "$TOLLGATE_BIN" tokens --model "$MODEL"; }

chat $U true 16 -H 'x-fake-usage: 400,450' >"$T/out"
assert_eq 200 "$(status)" "the crossing request"
wait_ledger $U 1
assert_eq 850 "$(redis_used $U)" "used after the crossing"
assert_eq 1 "$(qredis HGET "$(quota_key $U)" notice)" "a notice is pending"

# the eligible reply, without usage from the gateway
body=$(chat_body true 16)
chat $U true 16 -H 'x-fake-no-usage: 1' >"$T/out"
assert_eq 200 "$(status)" "the eligible reply"
rid=$(header x-request-id)
assert_eq "1 1 stop" "$(notice_report "$T/out" 85)" "one notice chunk, just before the finish chunk"
notice=$(notice_text 85)
text=$(sse_text "$T/out")
model_text=${text%"$notice"}
[ "$model_text" != "$text" ] || fail "the streamed text does not end with the notice: [$text]"
[ -n "$model_text" ] || fail "no model text before the notice"
assert_eq 0 "$(sse_chunks "$T/out" | jq '[.[] | select(.usage != null)] | length')" \
    "no usage anywhere in the reply (the gateway sent none)"
C=$(count "$model_text")
C_with=$(count "$text")
P=$(printf '%s' "$body" | "$TOLLGATE_BIN" tokens --messages --model "$MODEL")
[ "$C_with" -gt "$C" ] || fail "the notice should add tokens ($C_with vs $C)"
log "model text: $C tokens; with the notice: $C_with; prompt estimate: $P"

wait_ledger $U 2
assert_eq "estimated $P $C $((P + C))" \
    "$(psql_db "$DB_URL" -F' ' -c "SELECT count_source, prompt_tokens, completion_tokens, total_tokens
                                   FROM ledger WHERE request_id = '$rid'")" \
    "ledger: estimated, the prompt estimate and the model's text only (the notice not billed)"
line=$(log_for "$rid")
assert_eq "estimated $P $C true" \
    "$(jq -r '"\(.count_source) \(.prompt_tokens) \(.completion_tokens) \(.quota_notice)"' <<<"$line")" \
    "log line: the same counts, and the notice was shown"
wait_eq 10 "Redis used" "$((850 + P + C))" redis_used $U
assert_eq "$(ledger_sum $U)" "$(redis_used $U)" "Redis used == ledger sum"
assert_eq 0 "$(qredis HGET "$(quota_key $U)" notice)" "the notice is no longer pending"
log "PASS"
