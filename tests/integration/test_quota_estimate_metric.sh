#!/usr/bin/env bash
# Issue 9 §3: the per-request comparison of tollgate's own count with the gateway's usage, in
# /metrics: a streamed reply whose reported usage differs from what was really streamed adds 1
# to tollgate_token_estimate_compared_total and exactly |streamed − reported| (the streamed
# text counted with `tollgate tokens`) to tollgate_token_estimate_abs_diff_total; a reply whose
# usage is right adds 0 to the difference; embeddings (no completion) and replies without usage
# (nothing to compare) change neither.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

start_fake
DB_URL=$(new_db qestimate)
U=est-user
MODEL=gpt-4o-mini
start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY
metric() { curl -fsS "$TG_URL/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
compared() { metric tollgate_token_estimate_compared_total; }
absdiff() { metric tollgate_token_estimate_abs_diff_total; }
[ -n "$(compared)" ] && [ -n "$(absdiff)" ] || fail "estimate counters missing from /metrics"
n=0
# stream REPORTED_COMPLETION [curl args]: a streamed chat reply whose usage reports that many
# completion tokens; sets REAL (the streamed text's count) and RID
stream() {
    local c0 d0 reported=$1; shift
    chat $U true 16 -H "x-fake-usage: 7,$reported" -H 'x-fake-chunks: 9' "$@" >"$T/out"
    assert_eq 200 "$(status)" "streamed reply"
    RID=$(header x-request-id)
    n=$((n + 1))
    wait_ledger $U $n
    REAL=$(sse_text "$T/out" | "$TOLLGATE_BIN" tokens --model "$MODEL")
    [ "$REAL" -gt 0 ] || fail "nothing streamed"
}

c0=$(compared) d0=$(absdiff)
stream 3
assert_eq 3 "$(psql_db "$DB_URL" -c "SELECT completion_tokens FROM ledger WHERE request_id = '$RID'")" \
    "the gateway's figure is what is billed"
[ "$REAL" -gt 3 ] || fail "the test wants more than 3 real tokens, got $REAL"
wait_eq 10 "compared +1" $((c0 + 1)) compared
assert_eq $((d0 + REAL - 3)) "$(absdiff)" "abs diff + (real $REAL - reported 3)"
log "ok: reported 3, streamed $REAL: disagreement $((REAL - 3))"

# the other direction: the gateway reports more than was streamed
c0=$(compared) d0=$(absdiff)
stream $((REAL + 40))
wait_eq 10 "compared +1" $((c0 + 1)) compared
assert_eq $((d0 + 40)) "$(absdiff)" "abs diff + 40 (reported real + 40)"

# the gateway is right: compared, no disagreement
c0=$(compared) d0=$(absdiff)
stream "$REAL"
wait_eq 10 "compared +1" $((c0 + 1)) compared
assert_eq "$d0" "$(absdiff)" "agreeing counts add nothing"
log "ok: both directions, and agreement"

# nothing to compare: embeddings, and a stream without usage
c0=$(compared) d0=$(absdiff)
as_user $U /v1/embeddings -H 'x-fake-usage: 5,0' \
    -d '{"model":"text-embedding-3-small","input":["one text","another text"]}' >/dev/null
assert_eq 200 "$(status)" "embeddings"
n=$((n + 1))
wait_ledger $U $n
chat $U true 16 -H 'x-fake-no-usage: 1' >/dev/null
assert_eq 200 "$(status)" "a stream without usage"
n=$((n + 1))
wait_ledger $U $n
# a last compared request, so the checks below follow everything before it
stream "$REAL"
assert_eq $((c0 + 1)) "$(compared)" "embeddings and a reply without usage are not compared"
assert_eq "$d0" "$(absdiff)" "embeddings and a reply without usage add no disagreement"
log "PASS"
