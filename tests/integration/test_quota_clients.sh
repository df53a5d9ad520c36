#!/usr/bin/env bash
# Issue 5 §3 and §4 with real clients (tests/node/quota_clients.mjs): the openai SDK with its
# default retries and LangChain's ChatOpenAI configured as LibreChat configures it get the
# block at once, after exactly one HTTP attempt (counted by the client and in tollgate's log),
# with our message - for 402 and for QUOTA_BLOCK_STATUS=429, where only x-should-retry: false
# and the insufficient_quota code stop the retries; the upstream never sees the blocked
# requests; the model list still works; the 80 % notice arrives exactly once in the text both
# clients assemble.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

CLIENTS="$TG_SOURCE_DIR/tests/node/quota_clients.mjs"
start_fake
DB_URL=$(new_db qclients)
start_tollgate b402 TOLLGATE_SERVICE_KEY=$SERVICE_KEY
URL402=$TG_URL LOG402=$TG_LOG
start_tollgate b429 TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_BLOCK_STATUS=429
URL429=$TG_URL LOG429=$TG_LOG
TG_URL=$URL402

U=cb-user
ensure_user $U
set_quota user $U 10
chat $U true 16 -H 'x-fake-usage: 10,10' >/dev/null
assert_eq 200 "$(status)" "the request that exhausts the quota"
wait_ledger $U 1
body=$(chat $U true 16)
assert_eq 402 "$(status)" "blocked"
MSG=$(jq -r .error.message <<<"$body")
assert_eq "You have used 200 % of your monthly AI quota (10 tokens). It resets on $(month_reset_words)." "$MSG" "the block message"
fake_clear

log_lines() { # LOG USER: tollgate's request log lines for the user
    request_logs "$1" | jq -c --arg u "$2" 'select(.user == $u)' | wc -l
}
run_client() { # MODE URL LOG: runs it; checks exactly one request reached tollgate
    local before after
    before=$(log_lines "$3" $U)
    node "$CLIENTS" "$1" "$2" "$SERVICE_KEY" $U >"$T/client.json" || fail "$1: the client crashed"
    wait_eq 10 "$1: the request's log line" $((before + 1)) log_lines "$3" $U
    sleep 0.5 # a retry would come within LangChain's first back-off (>= 1 s) or the SDK's (0.5 s)
    after=$(log_lines "$3" $U)
    assert_eq $((before + 1)) "$after" "$1 via $2: exactly one request reached tollgate"
    assert_eq "false 1" "$(jq -r '"\(.ok) \(.attempts)"' "$T/client.json")" "$1: failed after one HTTP attempt"
    local ms
    ms=$(jq -r .elapsed_ms "$T/client.json")
    log "$1 via $2: error after $ms ms: $(jq -r .message "$T/client.json" | head -n 1)"
    [ "$ms" -lt 5000 ] || fail "$1: the error took $ms ms"
}

# 402: the SDK's message is "<status> <our message>"; LangChain leaves 402 messages untouched
run_client block-openai "$URL402" "$LOG402"
assert_eq "402 $MSG" "$(jq -r .message "$T/client.json")" "openai SDK: our message"
assert_eq "402 insufficient_quota" "$(jq -r '"\(.status) \(.code)"' "$T/client.json")" "openai SDK: status and code"
run_client block-langchain "$URL402" "$LOG402"
assert_eq "402 $MSG" "$(jq -r .message "$T/client.json")" "LangChain (LibreChat config): our message"

# 429: retried by both unless told not to (x-should-retry: false; code insufficient_quota)
run_client block-openai "$URL429" "$LOG429"
assert_eq "429 $MSG" "$(jq -r .message "$T/client.json")" "openai SDK, 429: our message"
run_client block-langchain "$URL429" "$LOG429"
assert_contains "$(jq -r .message "$T/client.json")" "429 $MSG" "LangChain, 429: our message (LangChain appends a troubleshooting line)"
assert_eq 0 "$(fake_requests)" "the upstream never saw a blocked request"

# the model list still works for the blocked user
node "$CLIENTS" models-openai "$URL402" "$SERVICE_KEY" $U >"$T/client.json"
assert_eq true "$(jq -r .ok "$T/client.json")" "models.list() for a blocked user"
assert_contains "$(jq -r '.ids | join(",")' "$T/client.json")" gpt-4o-mini "the model list"

# ---- the 80 % notice, exactly once, in the text each client assembles ---------------------
for client in openai langchain; do
    U=nt-$client
    ensure_user $U
    set_quota user $U 100
    chat $U true 16 -H 'x-fake-usage: 40,45' >/dev/null
    assert_eq 200 "$(status)" "$client: crossing 80 %"
    wait_ledger $U 1
    node "$CLIENTS" notice-$client "$URL402" "$SERVICE_KEY" $U >"$T/client.json"
    assert_eq "true 1" "$(jq -r '"\(.ok) \(.attempts)"' "$T/client.json")" "$client: the streamed reply"
    text=$(jq -j .text "$T/client.json")
    assert_eq "tok0 tok1 tok2 tok3 tok4 $(notice_text 85)" "$text" "$client: the reply's text ends with the notice"
    assert_eq 1 "$(grep -o 'AI quota; it resets' <<<"$text" | wc -l)" "$client: the notice arrives exactly once"
    [ "$client" = openai ] && assert_eq 1 "$(jq '.ids | length' "$T/client.json")" "openai: one completion id (the notice chunk has the reply's id)"
    wait_ledger $U 2
    node "$CLIENTS" notice-$client "$URL402" "$SERVICE_KEY" $U >"$T/client.json"
    assert_eq 0 "$(jq -r .text "$T/client.json" | grep -c 'AI quota' || true)" "$client: not repeated on the next reply"
done
log "ok"
