#!/usr/bin/env bash
# Issue 5 §1 and §3: x-quota-* headers on every metered reply; the block (402 by default,
# QUOTA_BLOCK_STATUS 403 / 429) with x-should-retry: false, no retry-after and the exact
# insufficient_quota body; the upstream never sees a blocked request; GET /v1/models still
# works for a blocked user; default quota from QUOTA_DEFAULT_TOKENS and from the default row;
# user and team quotas both enforced (the team's block says so).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

start_fake
DB_URL=$(new_db qblock)
start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_DEFAULT_TOKENS=100 \
    QUOTA_RESERVE_DEFAULT_TOKENS=16
TG402=$TG_URL

block_message() { # used limit [team]
    local pct=$(($1 * 100 / $2)) who="You have" whose="your"
    [ -n "${3:-}" ] && { who="Your team has"; whose="its"; }
    echo "$who used $pct % of $whose monthly AI quota ($(fmt_tokens "$2") tokens). It resets on $(month_reset_words)."
}

# headers of the last reply: every x-quota-* value as "limit used remaining state reset"
qheaders() {
    echo "$(header x-quota-limit-tokens) $(header x-quota-used-tokens)" \
         "$(header x-quota-remaining-tokens) $(header x-quota-state) $(header x-quota-reset)"
}

# ---- 1. every metered reply carries the x-quota-* headers ----------------------------------
RESET=$(month_reset_rfc3339)
U=hdr-user
ensure_user $U
set_quota user $U 100000
check_headers() { # what: the headers show the used figure from before the request
    assert_eq "100000 $before $((100000 - before)) ok $RESET" "$(qheaders)" "$1: x-quota-* headers"
}
fake_usage=(-H 'x-fake-usage: 7,5')
n=0
# metered REQUEST... : one request, its headers checked, its ledger row awaited
metered() {
    local what=$1; shift
    before=$(ledger_sum $U)
    "$@" >/dev/null
    check_headers "$what"
    n=$((n + 1))
    wait_ledger $U $n
}
metered "chat stream" chat $U true 16 "${fake_usage[@]}"
metered "chat" chat $U false 16 "${fake_usage[@]}"
metered "completions stream" as_user $U /v1/completions \
    -d '{"model":"m","prompt":"hi","max_tokens":4,"stream":true}' "${fake_usage[@]}"
metered "embeddings" as_user $U /v1/embeddings -d '{"model":"text-embedding-3-small","input":"hi"}'
metered "responses stream" as_user $U /v1/responses -d '{"model":"m","input":"hi","stream":true}'
metered "messages" as_user $U /v1/messages \
    -d '{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
metered "upstream error" chat $U true 16 -H 'x-fake-status: 500'
assert_eq 500 "$(status)" "upstream error passed on"
metered "first-event stream error" chat $U true 16 -H 'x-fake-stream-error-status: 429'
assert_eq 429 "$(status)" "first-event stream error passed on"
# used in the headers is what the ledger holds (the figure before this request)
[ "$(ledger_sum $U)" -gt 0 ] || fail "nothing billed"

# ---- 2. the default quota from QUOTA_DEFAULT_TOKENS, and the block -------------------------
U=dflt-user
fake_clear
used=0
blocked_body=""
for i in $(seq 1 20); do
    body=$(chat $U true 16 -H 'x-fake-usage: 10,20')
    st=$(status)
    if [ "$st" != 200 ]; then blocked_body=$body; break; fi
    assert_eq "100 $used $((100 - used)) $( [ $used -ge 80 ] && echo warning || echo ok) $RESET" \
        "$(qheaders)" "request $i: headers before the block"
    used=$((used + 30))
    wait_ledger $U $i
done
assert_eq 402 "$st" "the block's status (QUOTA_BLOCK_STATUS default)"
assert_eq 120 "$used" "requests admitted while used < limit (30 tokens each, limit 100)"
assert_eq "100 120 0 exhausted $RESET" "$(qheaders)" "the block's x-quota-* headers"
assert_eq false "$(header x-should-retry)" "x-should-retry on the block"
assert_eq "" "$(header retry-after)" "no retry-after on the block"
assert_contains "$(header content-type)" application/json "block content type"
expected=$(jq -Scn --arg m "$(block_message 120 100)" \
    '{error:{message:$m,type:"insufficient_quota",code:"insufficient_quota",param:null}}')
assert_eq "$expected" "$(jq -Sc . <<<"$blocked_body")" "the block body"
assert_eq 4 "$(fake_requests)" "the upstream saw only the admitted requests"
rid=$(header x-request-id)
line=$(log_for "$rid")
assert_eq blocked "$(jq -r .ledger_status <<<"$line")" "log: ledger status of the block"
wait_eq 20 "the blocked row" 1 psql_db "$DB_URL" \
    -c "SELECT count(*) FROM ledger WHERE request_id = '$rid' AND status = 'blocked' AND total_tokens = 0"

# every metered route is blocked before the upstream; the model list still works
for path in /v1/chat/completions /v1/completions /v1/embeddings /v1/responses /v1/messages; do
    as_user $U $path -d '{"model":"m","prompt":"x","input":"x","max_tokens":4,"messages":[{"role":"user","content":"x"}]}' >/dev/null
    assert_eq 402 "$(status)" "$path blocked"
    assert_eq false "$(header x-should-retry)" "$path x-should-retry"
done
chat $U false 16 >/dev/null
assert_eq 402 "$(status)" "non-streamed chat blocked"
assert_eq 4 "$(fake_requests)" "the upstream never saw a blocked request"
curl_tg "$TG_URL/v1/models" -H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: $U" >"$T/models.json"
assert_eq 200 "$(status)" "GET /v1/models for a blocked user"
assert_contains "$(jq -r '.data[].id' "$T/models.json")" gpt-4o-mini "model list"

# ---- 3. QUOTA_BLOCK_STATUS 403 and 429 -------------------------------------------------------
for s in 403 429; do
    start_tollgate tg$s TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_DEFAULT_TOKENS=100 QUOTA_BLOCK_STATUS=$s
    body=$(chat $U true 16)
    assert_eq $s "$(status)" "QUOTA_BLOCK_STATUS=$s"
    assert_eq false "$(header x-should-retry)" "$s: x-should-retry"
    assert_eq "" "$(header retry-after)" "$s: no retry-after"
    assert_eq "$expected" "$(jq -Sc . <<<"$body")" "$s: the block body"
done
assert_eq 4 "$(fake_requests)" "no blocked request reached the upstream"
TG_URL=$TG402

# ---- 4. user quotas (SQL + invalidation), unlimited, zero, and the default row -----------------
U=own-user
ensure_user $U
set_quota user $U 50
chat $U true 16 -H 'x-fake-usage: 30,30' >/dev/null
assert_eq "50 0 50 ok $RESET" "$(qheaders)" "the user's own limit applies"
wait_ledger $U 1
body=$(chat $U true 16)
assert_eq 402 "$(status)" "own limit 50 blocks at 60"
assert_eq "$(block_message 60 50)" "$(jq -r .error.message <<<"$body")" "own limit's message"
set_quota user $U -1
chat $U true 16 >/dev/null
assert_eq "200 -1 60 -1 ok" "$(status) $(header x-quota-limit-tokens) $(header x-quota-used-tokens) $(header x-quota-remaining-tokens) $(header x-quota-state)" \
    "unlimited (-1) serves and says so"
set_quota user $U 0
body=$(chat $U true 16)
assert_eq 402 "$(status)" "limit 0 blocks"
assert_eq "Your AI quota is 0 tokens, so AI requests are blocked. Ask your administrator for a quota." \
    "$(jq -r .error.message <<<"$body")" "limit 0 message"
set_quota default "" 70
chat fresh-user true 16 >/dev/null
assert_eq "200 70" "$(status) $(header x-quota-limit-tokens)" "the default row overrides QUOTA_DEFAULT_TOKENS"
set_quota user $U null
chat $U true 16 >/dev/null
assert_eq "70" "$(header x-quota-limit-tokens)" "limit null: back to the default"
psql_db "$DB_URL" -c "DELETE FROM quotas WHERE subject_kind = 'default'"
invalidate all
chat fresh-user true 16 >/dev/null
assert_eq "100" "$(header x-quota-limit-tokens)" "no default row: QUOTA_DEFAULT_TOKENS"

# ---- 5. team quotas: both must have room; the team's block names the team --------------------
ensure_user tm-a eng
ensure_user tm-b eng
ensure_user tm-c ops
set_quota user tm-a 1000
set_quota user tm-b 1000
set_quota user tm-c 1000
set_quota team eng 50
fake_clear
chat tm-a true 16 -H 'x-fake-usage: 20,20' >/dev/null
assert_eq "200 1000 0" "$(status) $(header x-quota-limit-tokens) $(header x-quota-used-tokens)" \
    "team member: headers are the user's own figures"
wait_ledger tm-a 1
chat tm-b true 16 -H 'x-fake-usage: 10,10' >/dev/null
assert_eq 200 "$(status)" "team at 40 of 50: served"
wait_ledger tm-b 1
body=$(chat tm-a true 16)
assert_eq 402 "$(status)" "team at 60 of 50: member a blocked"
assert_eq "$(block_message 60 50 team)" "$(jq -r .error.message <<<"$body")" "team block message"
assert_eq insufficient_quota "$(jq -r .error.code <<<"$body")" "team block code"
assert_eq false "$(header x-should-retry)" "team block x-should-retry"
body=$(chat tm-b true 16)
assert_eq 402 "$(status)" "member b blocked by the team too"
chat tm-c true 16 >/dev/null
assert_eq 200 "$(status)" "another team is not affected"
assert_eq 3 "$(fake_requests)" "blocked team members never reached the upstream"
get_quota tm-b >"$T/q.json"
assert_eq '{"team_id":"eng","limit_tokens":50,"used_tokens":60,"state":"exhausted"}' \
    "$(jq -c '.team | {team_id, limit_tokens, used_tokens, state}' "$T/q.json")" "GET /v1/quota team object"
# the user's own quota blocks even when the team has room
set_quota team eng 100000
set_quota user tm-b 20
body=$(chat tm-b true 16)
assert_eq 402 "$(status)" "user limit enforced inside a team with room"
assert_eq "$(block_message 20 20)" "$(jq -r .error.message <<<"$body")" "user block message inside a team"
# a team quota of 0 blocks every member, and says it is the team's
set_quota user tm-c 1000
set_quota team ops 0
body=$(chat tm-c true 16)
assert_eq 402 "$(status)" "team limit 0 blocks"
assert_eq "Your team's AI quota is 0 tokens, so AI requests are blocked. Ask your administrator for a quota." \
    "$(jq -r .error.message <<<"$body")" "team limit 0 message"
assert_eq 3 "$(fake_requests)" "still nothing blocked reached the upstream"
log "ok"
