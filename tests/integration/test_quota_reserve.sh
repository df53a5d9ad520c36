#!/usr/bin/env bash
# Issue 5 §1 / SPEC §5: the reservation held while a request runs is the estimated prompt
# (exactly what `tollgate tokens --messages` prints for the body) + the request's
# max_completion_tokens / max_tokens (QUOTA_RESERVE_DEFAULT_TOKENS when it sets none), and the
# whole reservation is capped by QUOTA_RESERVE_MAX_TOKENS ("cap on one request's reservation").
# It is read from the user's period hash in Redis (`res`) while a slow stream is held open, and
# is gone once the reply is settled.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

start_fake
DB_URL=$(new_db qreserve)
U=rsv-user
MODEL=gpt-4o-mini
CONTENT="Please summarise the quarterly report in three short bullet points, in Portuguese: ação, informação."
ensure_user $U
set_quota user $U 1000000

# body EXTRA_JSON: a streamed chat body with EXTRA_JSON merged in
body() {
    jq -cn --arg m "$MODEL" --arg c "$CONTENT" --argjson x "$1" \
        '{model:$m,stream:true,messages:[{role:"system",content:"You are terse."},{role:"user",content:$c}]} + $x'
}
prompt_estimate() { # BODY: what the operator's tool says the prompt costs
    printf '%s' "$1" | "$TOLLGATE_BIN" tokens --messages --model "$MODEL"
}
n=0
# hold BODY: a slow stream of BODY; the user's reservation in Redis while it is in flight goes
# to $T/held.res (read it with held_res)
hold() {
    fake_clear
    as_user $U /v1/chat/completions -d "$1" -H 'x-fake-chunks: 10' -H 'x-fake-delay-ms: 200' \
        -o "$T/held.out" &
    local pid=$!
    wait_fake_running 1
    redis_res $U >"$T/held.res"
    wait "$pid"
    assert_eq 200 "$(status)" "the held stream was served"
    n=$((n + 1))
    wait_ledger $U $n
    wait_eq 10 "the reservation released after the settle" 0 redis_res $U
    assert_eq "$(ledger_sum $U)" "$(redis_used $U)" "Redis used == ledger sum after the settle"
}
held_res() { cat "$T/held.res"; }

start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY
# a first request creates the user's counter (rebuilt from the empty ledger)
chat $U true 16 >/dev/null
n=1
wait_ledger $U 1
assert_eq 0 "$(redis_res $U)" "nothing reserved at rest"

b=$(body '{"max_completion_tokens":500}')
P=$(prompt_estimate "$b")
[ "$P" -gt 20 ] && [ "$P" -lt 100 ] || fail "prompt estimate $P: the test wants 20 < P < 100"
log "prompt estimate (tollgate tokens --messages): $P"
hold "$b"
assert_eq $((P + 500)) "$(held_res)" "max_completion_tokens 500: reservation = prompt + 500"
hold "$(body '{"max_tokens":300}')"
assert_eq $((P + 300)) "$(held_res)" "max_tokens 300: reservation = prompt + 300"
hold "$(body '{}')"
assert_eq $((P + 1024)) "$(held_res)" "no max tokens: reservation = prompt + QUOTA_RESERVE_DEFAULT_TOKENS (1024)"
log "ok: reservation = prompt estimate + max tokens"
stop_tollgate "$TG_PID" >/dev/null

# the cap caps the whole reservation (prompt included), not only the completion part
start_tollgate capped TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_RESERVE_MAX_TOKENS=100 \
    QUOTA_RESERVE_DEFAULT_TOKENS=50
hold "$b"
assert_eq 100 "$(held_res)" "QUOTA_RESERVE_MAX_TOKENS=100, prompt $P + 500: reservation = the cap (not prompt + 100)"
hold "$(body '{"max_completion_tokens":20}')"
assert_eq $((P + 20)) "$(held_res)" "QUOTA_RESERVE_MAX_TOKENS=100, prompt $P + 20: under the cap, untouched"
hold "$(body '{}')"
want=$((P + 50 < 100 ? P + 50 : 100))
assert_eq $want "$(held_res)" "QUOTA_RESERVE_MAX_TOKENS=100, prompt $P + default 50: min(prompt + 50, cap)"
log "ok: QUOTA_RESERVE_MAX_TOKENS caps the reservation"
log "PASS"
