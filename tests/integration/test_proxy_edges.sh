#!/usr/bin/env bash
# Issue 3 §2, §3, §6 edges: what the upstream receives and what the client gets back.
# 1. the client's credential (JWT, personal API key, service key; in Authorization or x-api-key)
#    never reaches the upstream, with UPSTREAM_API_KEY empty (no Authorization at all) or set
#    (exactly "Bearer <that key>");
# 2. the forwarded body: stream_options.include_usage on chat/completions streams only, `user`
#    (metadata.user_id on /v1/messages) when absent, a client's own value kept, nothing else
#    changed;
# 3. estimated counts when the upstream reports no usage, on all five routes, stream and not;
# 4. upstream errors (429, 500) reach the client with the upstream's status, content type and
#    body byte for byte.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_identity.sh"

SECRET="hs-secret-for-the-proxy-edges-test-0123456789"
UPKEY="sk-upstream-edges-0123456789abcdef"
start_fake
DB_URL=$(new_db edges)
COMMON=(TOLLGATE_API_KEYS=on JWT_SECRET="$SECRET" TOLLGATE_SERVICE_KEY="$SERVICE_KEY")
ident_tollgate nokey "${COMMON[@]}"
NOKEY_URL=$TG_URL NOKEY_LOG=$TG_LOG
ident_tollgate withkey "${COMMON[@]}" UPSTREAM_API_KEY="$UPKEY"
WITHKEY_URL=$TG_URL
TG_URL=$NOKEY_URL TG_LOG=$NOKEY_LOG

JSON=(-H "Content-Type: application/json")
SVC=(-H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: edge-user")

# rec_of REQUEST_ID: the fake's record of the request tollgate forwarded with that id
rec_of() {
    local deadline=$(( $(date +%s) + 10 )) rec
    while :; do
        rec=$(curl -s "$FAKE_URL/_fake/requests" |
            jq -c --arg id "$1" '[.[] | select(.headers["x-request-id"] == $id)] | last // empty')
        if [ -n "$rec" ]; then echo "$rec"; return 0; fi
        [ "$(date +%s)" -lt "$deadline" ] || fail "the upstream never saw request $1"
        sleep 0.05
    done
}

# ---- 1. credentials ------------------------------------------------------------------------
TOK=$(jwt HS256 "secret:$SECRET" '{"sub":"edge-jwt","exp":"now+600"}')
read -r _ PKEY < <(new_api_key "$DB_URL" edge-key)
# strings that must never leave tollgate: each credential, its distinctive parts, the secret
SECRETS=("$TOK" "${TOK##*.}" "$PKEY" "${PKEY#tg-}" "$SERVICE_KEY" "$SECRET")
CHAT_S='{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}]}'
MSGS='{"model":"claude-3-5-sonnet","max_tokens":50,"messages":[{"role":"user","content":"Hi"}]}'

# send_all URL: one request per kind of credential and place; sets IDS to the request ids
send_all() {
    local url=$1 spec name hdr path body
    IDS=()
    for spec in "jwt-auth|Authorization: Bearer $TOK|/v1/chat/completions|$CHAT" \
        "jwt-xapikey|x-api-key: $TOK|/v1/messages|$MSGS" \
        "jwt-stream|Authorization: Bearer $TOK|/v1/chat/completions|$CHAT_S" \
        "key-auth|Authorization: Bearer $PKEY|/v1/chat/completions|$CHAT" \
        "key-xapikey|x-api-key: $PKEY|/v1/messages|$MSGS" \
        "service|Authorization: Bearer $SERVICE_KEY|/v1/chat/completions|$CHAT" \
        "service-xapikey|x-api-key: $SERVICE_KEY|/v1/embeddings|{\"model\":\"text-embedding-3-small\",\"input\":\"x\"}"; do
        IFS='|' read -r name hdr path body <<<"$spec"
        curl_tg "$url$path" -H "$hdr" -H "X-Tollgate-User: edge-user" "${JSON[@]}" -d "$body" >/dev/null
        assert_eq 200 "$(status)" "credentials $name: status"
        IDS+=("$(header x-request-id)")
    done
    # the model list needs only the key, and is forwarded too
    curl_tg "$url/v1/models" -H "Authorization: Bearer $SERVICE_KEY" >/dev/null
    assert_eq 200 "$(status)" "credentials models: status"
    IDS+=("$(header x-request-id)")
}

check_no_secret() { # NAME RECORD
    local s
    for s in "${SECRETS[@]}"; do
        assert_not_contains "$2" "$s" "$1: a client secret reached the upstream"
    done
    assert_eq null "$(echo "$2" | jq -r '.headers["x-api-key"]')" "$1: x-api-key sent upstream"
    assert_eq null "$(echo "$2" | jq -r '.headers["api-key"]')" "$1: api-key sent upstream"
}

send_all "$NOKEY_URL"
assert_eq 8 "${#IDS[@]}" "request ids of the credential requests"
for id in "${IDS[@]}"; do
    rec=$(rec_of "$id")
    check_no_secret "no UPSTREAM_API_KEY ($id)" "$rec"
    assert_eq false "$(echo "$rec" | jq '.headers | has("authorization")')" \
        "no UPSTREAM_API_KEY: an Authorization header went upstream ($id)"
done
log "ok: without UPSTREAM_API_KEY no credential reaches the upstream (${#IDS[@]} requests)"

send_all "$WITHKEY_URL"
for id in "${IDS[@]}"; do
    rec=$(rec_of "$id")
    check_no_secret "UPSTREAM_API_KEY ($id)" "$rec"
    assert_eq "Bearer $UPKEY" "$(echo "$rec" | jq -r '.headers.authorization')" \
        "UPSTREAM_API_KEY: the upstream's Authorization ($id)"
done
log "ok: with UPSTREAM_API_KEY exactly 'Bearer <key>' reaches the upstream"

# ---- 2. the forwarded body -------------------------------------------------------------------
# fwd_check NAME PATH CLIENT_BODY JQ_EXPECTED: the upstream got exactly JQ_EXPECTED applied to
# the client's body (as JSON; key order aside)
fwd_check() {
    local name=$1 path=$2 body=$3 expect=$4 rec want got
    curl_tg -N "$TG_URL$path" "${SVC[@]}" "${JSON[@]}" -d "$body" >/dev/null
    assert_eq 200 "$(status)" "$name: status"
    rec=$(rec_of "$(header x-request-id)")
    want=$(echo "$body" | jq -cS "$expect")
    got=$(echo "$rec" | jq -cS .body_json)
    assert_eq "$want" "$got" "$name: body the upstream received"
    log "ok: forwarded body of $name"
}
U='. + {user: "edge-user"}'
IU='. + {user: "edge-user", stream_options: {include_usage: true}}'
fwd_check chat /v1/chat/completions "$CHAT" "$U"
fwd_check chat-stream /v1/chat/completions "$CHAT_S" "$IU"
fwd_check chat-stream-usage-false /v1/chat/completions \
    '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"Hi"}]}' "$IU"
fwd_check chat-own-user /v1/chat/completions \
    '{"model":"gpt-4o-mini","user":"client-chosen-id","messages":[{"role":"user","content":"Hi"}]}' .
fwd_check chat-stream-own-user /v1/chat/completions \
    '{"model":"gpt-4o-mini","stream":true,"user":"client-chosen-id","messages":[{"role":"user","content":"Hi"}]}' \
    '. + {stream_options: {include_usage: true}}'
fwd_check completions /completions '{"model":"gpt-3.5-turbo-instruct","prompt":"Say hi"}' "$U"
fwd_check completions-stream /v1/completions '{"model":"gpt-3.5-turbo-instruct","prompt":"Say hi","stream":true}' "$IU"
fwd_check embeddings /v1/embeddings '{"model":"text-embedding-3-small","input":["a","b"]}' "$U"
fwd_check embeddings-own-user /v1/embeddings '{"model":"text-embedding-3-small","input":"a","user":"client-chosen-id"}' .
fwd_check responses /v1/responses '{"model":"gpt-4o-mini","input":"Hello"}' "$U"
fwd_check responses-stream /v1/responses '{"model":"gpt-4o-mini","input":"Hello","stream":true}' "$U"
fwd_check responses-own-user /v1/responses '{"model":"gpt-4o-mini","input":"Hello","user":"client-chosen-id"}' .
fwd_check messages /v1/messages "$MSGS" '. + {metadata: {user_id: "edge-user"}}'
fwd_check messages-stream /v1/messages \
    '{"model":"claude-3-5-sonnet","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"Hi"}]}' \
    '. + {metadata: {user_id: "edge-user"}}'
fwd_check messages-own-user /v1/messages \
    '{"model":"claude-3-5-sonnet","max_tokens":50,"metadata":{"user_id":"client-chosen-id"},"messages":[{"role":"user","content":"Hi"}]}' .

# ---- 3. no usage from the upstream: tollgate counts -----------------------------------------
# no_usage NAME PATH BODY: count_source estimated, prompt > 0, completion follows the 5 chunks
# the fake produced (0 for embeddings), total = prompt + completion
no_usage() {
    local name=$1 path=$2 body=$3 out line p c
    out=$(curl_tg -N "$TG_URL$path" "${SVC[@]}" "${JSON[@]}" -H "x-fake-no-usage: 1" \
        -H "x-fake-chunks: 5" -d "$body")
    assert_eq 200 "$(status)" "$name: status"
    assert_not_contains "$out" '"usage":{' "$name: the fake reported usage after all"
    line=$(log_for "$(header x-request-id)")
    assert_eq ok "$(echo "$line" | jq -r .ledger_status)" "$name: ledger status"
    assert_eq estimated "$(echo "$line" | jq -r .count_source)" "$name: count_source"
    p=$(echo "$line" | jq .prompt_tokens)
    c=$(echo "$line" | jq .completion_tokens)
    [ "$p" -gt 0 ] || fail "$name: prompt_tokens $p"
    if [[ "$path" == *embeddings ]]; then
        assert_eq 0 "$c" "$name: completion_tokens of embeddings"
    else
        # five "tokN " words: 1-3 tokens each, plus a little framing at most
        [ "$c" -ge 5 ] && [ "$c" -le 21 ] || fail "$name: completion_tokens $c for 5 chunks"
    fi
    assert_eq "$((p + c))" "$(echo "$line" | jq .total_tokens)" "$name: total_tokens"
    echo "$c" >"$T/completion-$name"
    log "ok: no usage on $name: estimated prompt $p, completion $c"
}
# each case runs in a subshell, so one failing route does not hide the others; the test fails
# at the end if any did
FAILED_CASES=()
case_() { # NAME FUNCTION ARGS...
    local name=$1
    shift
    if ! ("$@"); then FAILED_CASES+=("$name"); fi
}
case_ "no usage chat" no_usage chat /v1/chat/completions "$CHAT"
case_ "no usage chat-stream" no_usage chat-stream /v1/chat/completions "$CHAT_S"
case_ "no usage completions" no_usage completions /v1/completions '{"model":"gpt-3.5-turbo-instruct","prompt":"Say hi"}'
case_ "no usage completions-stream" no_usage completions-stream /v1/completions '{"model":"gpt-3.5-turbo-instruct","prompt":"Say hi","stream":true}'
case_ "no usage embeddings" no_usage embeddings /v1/embeddings '{"model":"text-embedding-3-small","input":["alpha","beta"]}'
case_ "no usage responses" no_usage responses /v1/responses '{"model":"gpt-4o-mini","input":"Hello"}'
case_ "no usage responses-stream" no_usage responses-stream /v1/responses '{"model":"gpt-4o-mini","input":"Hello","stream":true}'
case_ "no usage messages" no_usage messages /v1/messages "$MSGS"
case_ "no usage messages-stream" no_usage messages-stream /v1/messages \
    '{"model":"claude-3-5-sonnet","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"Hi"}]}'
# the same five words streamed or not are the same count
for name in chat completions responses messages; do
    [ -f "$T/completion-$name" ] && [ -f "$T/completion-$name-stream" ] || continue
    [ "$(cat "$T/completion-$name")" = "$(cat "$T/completion-$name-stream")" ] ||
        FAILED_CASES+=("$name: completion $(cat "$T/completion-$name") non-streamed, $(cat "$T/completion-$name-stream") streamed")
done

# ---- 4. upstream errors pass through unchanged ------------------------------------------------
# err_check NAME PATH BODY STATUS [extra curl args]: what the fake answers directly and what the
# client gets through tollgate have the same status, content type, length and bytes
err_check() {
    local name=$1 path=$2 body=$3 st=$4
    shift 4
    curl -sS -D "$T/hd" -o "$T/direct.body" "$FAKE_URL$path" "${JSON[@]}" -H "x-fake-status: $st" \
        "$@" -d "$body"
    curl_tg -o "$T/via.body" "$TG_URL$path" "${SVC[@]}" "${JSON[@]}" -H "x-fake-status: $st" \
        "$@" -d "$body"
    local dst dct dcl
    dst=$(head -n 1 "$T/hd" | awk '{print $2}')
    dct=$(grep -i '^content-type:' "$T/hd" | cut -d: -f2- | tr -d '\r' | sed 's/^ //')
    dcl=$(grep -i '^content-length:' "$T/hd" | cut -d: -f2- | tr -d '\r' | sed 's/^ //')
    assert_eq "$st" "$dst" "$name: the fake's own status"
    assert_eq "$dst" "$(status)" "$name: status"
    assert_eq "$dct" "$(header content-type)" "$name: content type"
    assert_eq "$dcl" "$(header content-length)" "$name: content length"
    cmp -s "$T/direct.body" "$T/via.body" ||
        fail "$name: body differs: direct [$(cat "$T/direct.body")] via tollgate [$(cat "$T/via.body")]"
    local rid line
    rid=$(header x-request-id)
    [ -n "$rid" ] || fail "$name: no X-Request-Id"
    line=$(log_for "$rid")
    assert_eq upstream_error "$(echo "$line" | jq -r .ledger_status)" "$name: ledger status"
    assert_eq "$st" "$(echo "$line" | jq -r .upstream_status)" "$name: logged upstream status"
    assert_eq 0 "$(echo "$line" | jq .total_tokens)" "$name: an error reply is not billed"
    log "ok: $name passed through ($(wc -c <"$T/via.body") bytes)"
}
for st in 429 500; do
    case_ "chat $st" err_check "chat $st" /v1/chat/completions "$CHAT" "$st"
    case_ "chat-stream $st" err_check "chat-stream $st" /v1/chat/completions "$CHAT_S" "$st"
    case_ "embeddings $st" err_check "embeddings $st" /v1/embeddings '{"model":"text-embedding-3-small","input":"a"}' "$st"
    case_ "messages $st" err_check "messages $st" /v1/messages "$MSGS" "$st" -H "x-fake-error-message: quota «über» \"x\""
done

[ "${#FAILED_CASES[@]}" = 0 ] || fail "failed cases: ${FAILED_CASES[*]}"
log "proxy edges ok"
