#!/usr/bin/env bash
# Issue 4 §2: every bad token is refused through real sockets with the same 401 (OpenAI error
# shape, WWW-Authenticate: Bearer, one message whatever the cause), and accepted tokens around
# the edges (leeway, aud arrays) show the checks are not simply refusing everything.
# Decided here and documented in docs/librechat.md ("What a client sees when auth fails"):
#   - a token over 64 KiB does not fit the request head limit: 431 from the HTTP layer, before
#     any credential is looked at (RFC 6585); tokens between 8 KiB and 64 KiB get the 401;
#   - a raw NUL (or any control character but tab) in a header is not HTTP (RFC 9110 §5.5):
#     400 from the HTTP layer; a token whose decoded JSON holds NUL bytes gets the 401.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_identity.sh"

K="$T/keys"
make_keys "$K"
SECRET="hs-secret-for-the-reject-test-0123456789"
ISS="https://idp.example/realms/x"
AUD="tollgate"
start_fake
DB_URL=$(new_db ident_reject)
ident_tollgate hs JWT_SECRET="$SECRET" JWT_ISSUER="$ISS" JWT_AUDIENCE="$AUD" JWT_LEEWAY_S=30
HS_URL=$TG_URL

good_claims() { # extra members merged into valid claims
    echo "{\"sub\":\"ok-user\",\"iss\":\"$ISS\",\"aud\":\"$AUD\",\"exp\":\"now+600\"${1:+,$1}}"
}
hs() { jwt HS256 "secret:$SECRET" "$@"; }
accepted() { # NAME TOKEN
    local body
    body=$(chat_as "$2")
    assert_eq 200 "$(status)" "$1: status ($body)"
    log "ok: $1 -> 200"
}
# rejected NAME REASON TOKEN: the generic 401, and the log (never the client) names REASON
# (tg_jwt_status_name; "-" when the credential is not a JWT at all), so each case is shown to
# fail for the reason it is meant to test
rejected() {
    local body rid why
    body=$(chat_as "$3")
    expect_401 "$1" "$body"
    rid=$(header x-request-id)
    log_for "$rid" >/dev/null # the request's line comes after its "jwt rejected" line
    why=$({ grep '"msg":"jwt rejected"' "$TG_LOG" || true; } |
        { grep "\"request_id\":\"$rid\"" || true; } | jq -r .reason)
    assert_eq "$2" "${why:--}" "$1: reason in the log"
    # nothing that helps an attacker: no reason in the body or headers
    for word in expired signature kid issuer audience alg subject malformed; do
        assert_not_contains "$(tr 'A-Z' 'a-z' <"$T/h")$body" "$word" "$1: leaks '$word'"
    done
}

accepted "valid token" "$(hs "$(good_claims)")"
GOOD=$(hs "$(good_claims)")
H=${GOOD%%.*}
REST=${GOOD#*.}
P=${REST%%.*}
S=${GOOD##*.}
enc() { printf '%s' "$1" | b64url; }

# ---- alg none and friends --------------------------------------------------------------------
NONE_H=$(enc '{"alg":"none","typ":"JWT"}')
rejected "alg none, empty signature" bad_alg "$NONE_H.$P."
rejected "alg none, with the HS signature" bad_alg "$NONE_H.$P.$S"
rejected "alg None" bad_alg "$(enc '{"alg":"None"}').$P.$S"
rejected "alg hs256 (case)" bad_alg "$(enc '{"alg":"hs256"}').$P.$S"
rejected "alg missing" malformed "$(enc '{"typ":"JWT"}').$P.$S"
rejected "alg RS256 on an HS-only server" bad_alg "$(jwt RS256 "$K/rsa.key" "$(good_claims)")"
rejected "crit header" malformed "$(hs "$(good_claims)" '{"crit":["exp"],"exp":1}')"
rejected "typ JWE" malformed "$(hs "$(good_claims)" '{"typ":"JWE"}')"

# ---- signatures ----------------------------------------------------------------------------
flip() { # change the first character of the signature
    local s=$1 c=${1:0:1}
    [ "$c" = A ] && c=B || c=A
    echo "$c${s:1}"
}
rejected "bad signature (one character changed)" bad_signature "$H.$P.$(flip "$S")"
rejected "signature of another token" bad_signature "$H.$(enc "$(good_claims '"role":"admin"' | sed 's/"now+600"/9999999999/')").$S"
rejected "signature truncated" bad_signature "$H.$P.${S:0:20}"
rejected "payload changed, signature kept" bad_signature "$H.$(enc "{\"sub\":\"mallory\",\"iss\":\"$ISS\",\"aud\":\"$AUD\",\"exp\":9999999999}").$S"
rejected "secret with a trailing newline" bad_signature "$(jwt HS256 "secret:$SECRET
" "$(good_claims)")"

# ---- time ----------------------------------------------------------------------------------
rejected "expired 120 s ago (leeway 30)" expired "$(hs "$(good_claims | sed 's/"now+600"/"now-120"/')")"
accepted "expired 10 s ago (within the leeway)" "$(hs "$(good_claims | sed 's/"now+600"/"now-10"/')")"
rejected "exp missing" no_exp "$(hs "{\"sub\":\"ok-user\",\"iss\":\"$ISS\",\"aud\":\"$AUD\"}")"
rejected "exp a string" bad_claim "$(hs "{\"sub\":\"ok-user\",\"iss\":\"$ISS\",\"aud\":\"$AUD\",\"exp\":\"tomorrow\"}")"
rejected "nbf 300 s ahead" not_yet_valid "$(hs "$(good_claims '"nbf":"now+300"')")"
accepted "nbf 10 s ahead (within the leeway)" "$(hs "$(good_claims '"nbf":"now+10"')")"

# ---- issuer, audience, subject -------------------------------------------------------------
rejected "wrong iss" bad_issuer "$(hs "{\"sub\":\"ok-user\",\"iss\":\"https://evil.example\",\"aud\":\"$AUD\",\"exp\":\"now+600\"}")"
rejected "iss missing (required)" bad_issuer "$(hs "{\"sub\":\"ok-user\",\"aud\":\"$AUD\",\"exp\":\"now+600\"}")"
rejected "wrong aud" bad_audience "$(hs "{\"sub\":\"ok-user\",\"iss\":\"$ISS\",\"aud\":\"other\",\"exp\":\"now+600\"}")"
rejected "aud missing (required)" bad_audience "$(hs "{\"sub\":\"ok-user\",\"iss\":\"$ISS\",\"exp\":\"now+600\"}")"
accepted "aud array containing ours" "$(hs "{\"sub\":\"ok-user\",\"iss\":\"$ISS\",\"aud\":[\"x\",\"$AUD\"],\"exp\":\"now+600\"}")"
rejected "sub missing" no_subject "$(hs "{\"iss\":\"$ISS\",\"aud\":\"$AUD\",\"exp\":\"now+600\"}")"
rejected "sub empty" no_subject "$(hs "{\"sub\":\"\",\"iss\":\"$ISS\",\"aud\":\"$AUD\",\"exp\":\"now+600\"}")"
rejected "sub with a newline" bad_claim "$(hs "{\"sub\":\"a\\nb\",\"iss\":\"$ISS\",\"aud\":\"$AUD\",\"exp\":\"now+600\"}")"
# libjwt's JSON parser refuses \u0000 before the claims are read
rejected "sub with a NUL" bad_signature "$(hs "{\"sub\":\"a\\u0000b\",\"iss\":\"$ISS\",\"aud\":\"$AUD\",\"exp\":\"now+600\"}")"
rejected "sub over 128 bytes" bad_claim "$(hs "{\"sub\":\"$(printf 'u%.0s' $(seq 1 129))\",\"iss\":\"$ISS\",\"aud\":\"$AUD\",\"exp\":\"now+600\"}")"
rejected "sub a number" bad_claim "$(hs "{\"sub\":42,\"iss\":\"$ISS\",\"aud\":\"$AUD\",\"exp\":\"now+600\"}")"

# ---- malformed -----------------------------------------------------------------------------
rejected "two dots only" malformed ".."
rejected "one dot" malformed "$H.$P"
rejected "empty signature" bad_signature "$H.$P."
rejected "empty header" malformed ".$P.$S"
rejected "four dots" malformed "$H.$P.$S.$S.$S"
rejected "three dots" malformed "$H.$P.$S."
rejected "non-base64 characters" malformed "$H.$P.${S:0:10}!@${S:12}"
rejected "standard base64 (+)" malformed "$H.$P.+${S:1}"
rejected "standard base64 (/)" malformed "$H.$P./${S:1}"
rejected "base64 padding" malformed "$H.$P.$S=="
rejected "header not JSON" malformed "$(enc 'not json').$P.$S"
rejected "payload not JSON" malformed "$H.$(enc 'not json').$S"
rejected "payload a JSON array" malformed "$H.$(enc '[1,2]').$S"
rejected "raw NUL bytes inside the decoded payload" malformed "$H.$(printf '{"sub":"a\0b","exp":9999999999}' | b64url).$S"
rejected "header with duplicate alg" malformed "$(enc '{"alg":"HS256","alg":"none"}').$P.$S"
rejected "garbage without dots" - "dGhpcyBpcyBub3QgYSB0b2tlbg"
rejected "tg- prefix but not a key" - "tg-short"
rejected "20 KiB token" too_long "$H.$(head -c 15000 /dev/zero | tr '\0' 'A' | b64url).$S"

# a 100 KiB token overflows the 64 KiB request head: the HTTP layer sees that the line it is
# in is a credential (longer than any token identity accepts) and answers as for any invalid
# credential: 401, WWW-Authenticate: Bearer, the generic message; the connection closes
big="$H.$(head -c 75000 /dev/zero | tr '\0' 'A' | b64url).$S"
body=$(chat_as "$big")
expect_401 "100 KiB token" "$body"
body=$(curl_tg "$TG_URL/v1/chat/completions" -H "X-Api-Key: tg-$(head -c 100000 /dev/zero | tr '\0' 'k')" \
    -H "Content-Type: application/json" -d "$CHAT")
expect_401 "100 KiB X-Api-Key" "$body"
# any other oversized head stays 431 (it says nothing about a credential)
body=$(curl_tg "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $(hs "$(good_claims)")" \
    -H "X-Padding: $(head -c 70000 /dev/zero | tr '\0' 'p')" -H "Content-Type: application/json" -d "$CHAT")
assert_eq 431 "$(status)" "70 KiB other header: status"
assert_eq request_header_too_large "$(echo "$body" | jq -r .error.code)" "70 KiB other header: OpenAI error code"
log "ok: 100 KiB credential -> 401, 70 KiB other header -> 431"

# a raw NUL byte in the Authorization header: 400 from the HTTP parser, in OpenAI shape
raw_request() { # RAW_HEAD: sends it on a fresh connection, prints the answer's head and body
    ( # the server may answer and close before the whole request is written: no SIGPIPE death
        trap '' PIPE
        exec 3<>"/dev/tcp/127.0.0.1/$TG_PORT"
        printf "$1" >&3 2>/dev/null || true
        timeout 10 cat <&3 2>/dev/null || true
    )
}
ans=$(raw_request "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $H\0.$P.$S\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}" | tr -d '\0')
assert_contains "$(echo "$ans" | head -n 1)" " 400 " "NUL in the header: status"
assert_contains "$ans" '"error":{' "NUL in the header: OpenAI error body"
log "ok: NUL byte in the header -> 400"

# no credential at all, or another scheme: 401 too (with its own hint)
body=$(curl_tg "$TG_URL/v1/chat/completions" -H "Content-Type: application/json" -d "$CHAT")
assert_eq 401 "$(status)" "no credential: status"
assert_eq Bearer "$(header www-authenticate)" "no credential: WWW-Authenticate"
body=$(curl_tg "$TG_URL/v1/chat/completions" -H "Authorization: Basic dTpw" -H "Content-Type: application/json" -d "$CHAT")
assert_eq 401 "$(status)" "Basic scheme: status"
assert_eq authentication_error "$(echo "$body" | jq -r .error.type)" "Basic scheme: type"

# ---- algorithm confusion and unknown kid: an RSA public key and a JWKS ---------------------
make_jwks "e1=$K/ec256.pub" >"$T/jwks.json"
ident_tollgate pk JWT_PUBLIC_KEY_FILE="$K/rsa.pub"
accepted "RS256 with the public key" "$(jwt RS256 "$K/rsa.key" '{"sub":"x","exp":"now+600"}')"
rejected "algorithm confusion: HS256 signed with the public key PEM" bad_alg \
    "$(jwt HS256 "file:$K/rsa.pub" '{"sub":"x","exp":"now+600"}')"
rejected "algorithm confusion: HS512 signed with the public key PEM" bad_alg \
    "$(jwt HS512 "file:$K/rsa.pub" '{"sub":"x","exp":"now+600"}')"
rejected "alg none against a public key" bad_alg "$NONE_H.$(enc '{"sub":"x","exp":9999999999}')."
ident_tollgate jwks JWT_JWKS_FILE="$T/jwks.json"
accepted "JWKS kid e1" "$(jwt ES256 "$K/ec256.key" '{"sub":"x","exp":"now+600"}' '{"kid":"e1"}')"
rejected "unknown kid" unknown_kid "$(jwt ES256 "$K/ec256.key" '{"sub":"x","exp":"now+600"}' '{"kid":"e2"}')"
rejected "kid of a JWKS key, token signed by another P-256 key" bad_signature \
    "$(jwt ES256 "$K/ec256b.key" '{"sub":"x","exp":"now+600"}' '{"kid":"e1"}')"
rejected "jwk embedded in the header (the signer's own key) is ignored" bad_signature \
    "$(jwt ES256 "$K/ec256b.key" '{"sub":"x","exp":"now+600"}' "{\"kid\":\"e1\",\"jwk\":$(make_jwks "e1=$K/ec256b.pub" | jq -c '.keys[0]')}")"
rejected "jku in the header is ignored" bad_signature \
    "$(jwt ES256 "$K/ec256b.key" '{"sub":"x","exp":"now+600"}' '{"kid":"e1","jku":"http://127.0.0.1:1/jwks.json"}')"

# every refusal above was counted, and the server is still healthy
TG_URL=$HS_URL
assert_eq 200 "$(code_of "$TG_URL/healthz")" "still healthy"
n=$(curl -s "$TG_URL/metrics" | awk '/^tollgate_auth_failures_total /{print $2}')
[ "${n:-0}" -ge 40 ] || fail "auth failures counted: $n"
log "PASS"
