#!/usr/bin/env bash
# Issue 4 §4: the service key (TOLLGATE_SERVICE_KEY) with X-Tollgate-User and
# X-Tollgate-User-Email, as LibreChat sends them; the body's "user" when the header is empty or
# a literal {{...}} placeholder; 400 with a clear message when no user is named (except
# GET /v1/models); user ids that are not 1-128 bytes of UTF-8 without control characters refused
# with 400; the header ignored with a JWT or a personal key (the credential's user is billed, in
# the log, the ledger and what the upstream sees).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_identity.sh"

SECRET="hs-secret-for-the-service-test-0123456789"
start_fake
DB_URL=$(new_db ident_svc)
ident_tollgate svc TOLLGATE_SERVICE_KEY="$SERVICE_KEY" JWT_SECRET="$SECRET" TOLLGATE_API_KEYS=on

# svc BODY [curl args]: a chat completion with the service key
svc() {
    local b=$1; shift
    curl_tg "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $SERVICE_KEY" \
        -H "Content-Type: application/json" "$@" -d "$b"
}
billed() { # NAME WANT_USER: the last answer was 200 and billed to WANT_USER
    assert_eq 200 "$(status)" "$1: status"
    local rid
    rid=$(header x-request-id)
    assert_eq "$2" "$(user_of "$rid")" "$1: billed user (log)"
    LAST_RID=$rid
    log "ok: $1 -> $2"
}
refused400() { # NAME BODY_OF_ANSWER [MESSAGE_PART]
    assert_eq 400 "$(status)" "$1: status"
    assert_eq invalid_request_error "$(echo "$2" | jq -r .error.type)" "$1: error type"
    [ -z "${3:-}" ] || assert_contains "$(echo "$2" | jq -r .error.message)" "$3" "$1: message"
    log "ok: $1 -> 400"
}
with_user() { # USER: the chat body with a "user" field
    jq -cn --arg u "$1" '{model:"gpt-4o-mini",messages:[{role:"user",content:"Hello"}],user:$u}'
}

# ---- who is billed -------------------------------------------------------------------------
svc "$CHAT" -H "X-Tollgate-User: 64f0c0ffee0000000000beef" >/dev/null
billed "X-Tollgate-User" 64f0c0ffee0000000000beef
assert_eq service_key "$(log_for "$LAST_RID" | jq -r .auth)" "auth kind in the log"
svc "$CHAT" -H "X-Tollgate-User: ulrike" -H "X-Tollgate-User-Email: ulrike@example.com" >/dev/null
billed "X-Tollgate-User + email" ulrike
assert_eq ulrike@example.com "$(psql_db "$DB_URL" -c "SELECT email FROM users WHERE id = 'ulrike'")" \
    "X-Tollgate-User-Email recorded"
svc "$CHAT" -H "X-Tollgate-User: ulrike" -H "X-Tollgate-User-Email: ulrike@corp.example" >/dev/null
billed "changed email" ulrike
assert_eq ulrike@corp.example "$(psql_db "$DB_URL" -c "SELECT email FROM users WHERE id = 'ulrike'")" \
    "changed X-Tollgate-User-Email recorded"
svc "$CHAT" -H "X-Tollgate-User: ulrike" -H "X-Tollgate-User-Email: {{LIBRECHAT_USER_EMAIL}}" >/dev/null
billed "email placeholder" ulrike
svc "$CHAT" -H "X-Tollgate-User: ulrike" -H "X-Tollgate-User-Email: a$(printf '\t')b@example.com" >/dev/null
billed "email with a tab" ulrike
svc "$CHAT" -H "X-Tollgate-User: ulrike" -H "X-Tollgate-User-Email: $(printf 'u\xffu@example.com')" >/dev/null
billed "email not UTF-8" ulrike
assert_eq ulrike@corp.example "$(psql_db "$DB_URL" -c "SELECT email FROM users WHERE id = 'ulrike'")" \
    "a placeholder or invalid email is not recorded"
long_email="$(printf 'é%.0s' $(seq 1 140))@example.com" # 292 bytes
svc "$CHAT" -H "X-Tollgate-User: ulrike" -H "X-Tollgate-User-Email: $long_email" >/dev/null
billed "292-byte UTF-8 email" ulrike
assert_eq "$long_email" "$(psql_db "$DB_URL" -c "SELECT email FROM users WHERE id = 'ulrike'")" \
    "a long UTF-8 email is recorded"

svc "$(with_user body-user)" -H "X-Tollgate-User: header-user" >/dev/null
billed "header and body: the header wins" header-user
svc "$(with_user body-user)" -H "X-Tollgate-User;" >/dev/null
billed "empty header: body user" body-user
svc "$(with_user body-user2)" -H "X-Tollgate-User: {{LIBRECHAT_USER_ID}}" >/dev/null
billed "literal placeholder: body user" body-user2
svc "$(with_user body-user3)" -H "X-Tollgate-User: {{}}" >/dev/null
billed "empty placeholder: body user" body-user3
svc "$(with_user body-user4)" >/dev/null
billed "no header: body user" body-user4
# what the upstream saw: the billed user in "user"
curl -s -X DELETE "$FAKE_URL/_fake/requests" >/dev/null
svc "$(with_user body-user5)" -H "X-Tollgate-User: {{LIBRECHAT_USER_ID}}" >/dev/null
billed "placeholder again" body-user5
seen=$(curl -s "$FAKE_URL/_fake/requests" | jq -r '[.[] | select(.path == "/v1/chat/completions")][-1].body | fromjson | .user')
assert_eq body-user5 "$seen" "the upstream got the billed user"

# ---- no user named -------------------------------------------------------------------------
body=$(svc "$CHAT")
refused400 "no header, no body user" "$body" "X-Tollgate-User"
body=$(svc "$CHAT" -H "X-Tollgate-User: {{LIBRECHAT_USER_ID}}")
refused400 "placeholder, no body user" "$body" "X-Tollgate-User"
body=$(svc "$(with_user "")" -H "X-Tollgate-User;")
refused400 "empty header, empty body user" "$body"
# GET /v1/models needs only the key (LibreChat's model fetch sends no user)
body=$(curl_tg "$TG_URL/v1/models" -H "Authorization: Bearer $SERVICE_KEY")
assert_eq 200 "$(status)" "models with the service key only"
assert_contains "$body" '"gpt-4o-mini"' "model list from the upstream"
body=$(curl_tg "$TG_URL/models" -H "Authorization: Bearer $SERVICE_KEY")
assert_eq 200 "$(status)" "/models with the service key only"
body=$(curl_tg "$TG_URL/v1/models")
assert_eq 401 "$(status)" "models without any credential"
log "ok: /v1/models needs only the key"

# ---- user ids that are not valid -----------------------------------------------------------
u128=$(printf 'x%.0s' $(seq 1 128))
svc "$CHAT" -H "X-Tollgate-User: $u128" >/dev/null
billed "128-byte user id" "$u128"
body=$(svc "$CHAT" -H "X-Tollgate-User: ${u128}y")
refused400 "129-byte user id" "$body" "user id"
body=$(svc "$(with_user "${u128}y")")
refused400 "129-byte body user" "$body" "user id"
svc "$CHAT" -H "X-Tollgate-User: Zoë-Ånström-李" >/dev/null
billed "UTF-8 user id" "Zoë-Ånström-李"
body=$(svc "$CHAT" -H "X-Tollgate-User: a$(printf '\t')b")
refused400 "tab in the header" "$body" "user id"
body=$(svc "$CHAT" -H "X-Tollgate-User: $(printf 'a\xffb')")
refused400 "invalid UTF-8 in the header" "$body" "user id"
body=$(svc "$CHAT" -H "X-Tollgate-User: $(printf 'a\xc2\x85b')")
refused400 "C1 control (U+0085) in the header" "$body" "user id"
for esc in '\n' '\r' '\u0000' '\u0001' '\u001b' '\u007f' '\u0085'; do
    body=$(svc "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"user\":\"a${esc}b\"}")
    refused400 "body user with $esc" "$body" "user id"
done
# CR, LF and other control bytes in a header are not HTTP: the parser refuses them (400)
raw() { # HEADER_LINE (printf format): the status line of the answer
    (
        trap '' PIPE
        exec 3<>"/dev/tcp/127.0.0.1/$TG_PORT"
        printf "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $SERVICE_KEY\r\n$1\r\nContent-Type: application/json\r\nContent-Length: ${#CHAT}\r\nConnection: close\r\n\r\n$CHAT" >&3 2>/dev/null || true
        timeout 10 cat <&3 2>/dev/null | head -n 1 | tr -d '\r' || true
    )
}
assert_contains "$(raw 'X-Tollgate-User: a\rb')" " 400" "CR inside X-Tollgate-User"
assert_contains "$(raw 'X-Tollgate-User: a\x01b')" " 400" "control byte inside X-Tollgate-User"
assert_contains "$(raw 'X-Tollgate-User: a\0b')" " 400" "NUL inside X-Tollgate-User"
# an LF ends the header line: "b" alone is not a header line -> 400
assert_contains "$(raw 'X-Tollgate-User: a\nb')" " 400" "LF inside X-Tollgate-User"
log "ok: CR, LF, NUL and control bytes in the header -> 400"
assert_eq 0 "$(psql_db "$DB_URL" -c "SELECT count(*) FROM users WHERE id ~ '[[:cntrl:]]' OR octet_length(id) > 128")" \
    "no invalid user id reached the database"

# ---- the header is ignored with any other credential -----------------------------------------
tok=$(jwt HS256 "secret:$SECRET" '{"sub":"jwt-user","exp":"now+600","email":"jwt@example.com"}')
curl -s -X DELETE "$FAKE_URL/_fake/requests" >/dev/null
chat_as "$tok" -H "X-Tollgate-User: someone-else" -H "X-Tollgate-User-Email: else@example.com" >/dev/null
billed "JWT + X-Tollgate-User" jwt-user
assert_eq jwt "$(log_for "$LAST_RID" | jq -r .auth)" "JWT + header: auth kind"
assert_eq jwt-user "$(curl -s "$FAKE_URL/_fake/requests" | jq -r '[.[] | select(.path == "/v1/chat/completions")][-1].body | fromjson | .user')" \
    "JWT + header: the upstream got the JWT's user"
body=$(curl_tg "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $tok" -H "Content-Type: application/json" \
    -d "$(with_user body-someone)")
billed "JWT + body user" jwt-user
# an invalid header does not matter either: it is not read
chat_as "$tok" -H "X-Tollgate-User: a$(printf '\t')b" >/dev/null
billed "JWT + invalid X-Tollgate-User" jwt-user
read -r _ key < <(new_api_key "$DB_URL" key-user)
chat_as "$key" -H "X-Tollgate-User: someone-else" >/dev/null
billed "personal key + X-Tollgate-User" key-user
assert_eq 0 "$(psql_db "$DB_URL" -c "SELECT count(*) FROM users WHERE id IN ('someone-else', 'body-someone')")" \
    "the ignored names were never created"
assert_eq jwt@example.com "$(psql_db "$DB_URL" -c "SELECT email FROM users WHERE id = 'jwt-user'")" \
    "the JWT's email, not the header's"
# the ledger agrees
wait_until 20 "ledger row of the JWT request" \
    sql_at_least "$DB_URL" 3 "SELECT count(*) FROM ledger WHERE user_id = 'jwt-user'"
assert_eq 0 "$(psql_db "$DB_URL" -c "SELECT count(*) FROM ledger WHERE user_id IN ('someone-else', 'body-someone')")" \
    "no ledger row for an ignored name"

# ---- near misses of the service key ----------------------------------------------------------
for bad in "${SERVICE_KEY}x" "${SERVICE_KEY:0:${#SERVICE_KEY}-1}" "${SERVICE_KEY:0:${#SERVICE_KEY}-1}X" \
    "$(echo "$SERVICE_KEY" | tr 'a-z' 'A-Z')"; do
    body=$(chat_as "$bad" -H "X-Tollgate-User: u")
    expect_401 "service key near miss" "$body"
done
log "PASS"
