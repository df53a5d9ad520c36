#!/usr/bin/env bash
# Issue 4 §1: JWT_JWKS_URL served by a local HTTP server: the key chosen by kid, the set
# refreshed in the background every JWT_JWKS_REFRESH_S, the last good set kept when a refresh
# fails (server down, HTTP 500, garbage, a set without usable keys), rotated keys picked up and
# retired keys refused (verified tokens are not cached past a key change).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_identity.sh"

K="$T/keys"
make_keys "$K"
REFRESH_S=5 # the smallest JWT_JWKS_REFRESH_S tollgate accepts
start_fake
DB_URL=$(new_db ident_jwks)

tok_r1=$(jwt RS256 "$K/rsa.key" '{"sub":"u-r1","exp":"now+900"}' '{"kid":"r1"}')
tok_r2=$(jwt RS256 "$K/rsa2.key" '{"sub":"u-r2","exp":"now+900"}' '{"kid":"r2"}')
tok_e3=$(jwt ES256 "$K/ec256.key" '{"sub":"u-e3","exp":"now+900"}' '{"kid":"e3"}')

code() { code_of "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $1" \
    -H "Content-Type: application/json" -d "$CHAT"; }
is_code() { [ "$(code "$2")" = "$1" ]; }
# wait_fetches N: until the server has been asked N more times than now (so at least one whole
# fetch started after the caller changed what the server serves)
wait_fetches() {
    local want=$(($(jwks_fetches) + $1))
    wait_until $((REFRESH_S * ($1 + 2))) "$1 more JWKS fetches" fetches_at_least "$want"
}
fetches_at_least() { [ "$(jwks_fetches)" -ge "$1" ]; }
warnings() { grep -c 'JWT_JWKS_URL.*keeping the last good keys' "$TG_LOG" || true; }
warnings_at_least() { [ "$(warnings)" -ge "$1" ]; }

make_jwks "r1=$K/rsa.pub" >"$T/served.json"
start_jwks_server "$T/served.json"
ident_tollgate jwks JWT_JWKS_URL="$JWKS_URL" JWT_JWKS_REFRESH_S=$REFRESH_S

# the first fetch happens before tollgate serves
assert_eq 200 "$(code "$tok_r1")" "kid r1 accepted at start"
body=$(chat_as "$tok_r1")
assert_eq u-r1 "$(user_of "$(header x-request-id)")" "kid r1 billed to its sub"
body=$(chat_as "$tok_r2")
expect_401 "kid r2 not (yet) in the set" "$body"

# refreshed in the background, periodically
n0=$(jwks_fetches)
t0=$(date +%s)
wait_fetches 2
elapsed=$(($(date +%s) - t0))
[ "$elapsed" -ge $((REFRESH_S - 1)) ] || fail "two refreshes in ${elapsed}s: faster than JWT_JWKS_REFRESH_S"
log "ok: refreshed in the background ($n0 -> $(jwks_fetches) fetches in ${elapsed}s)"

# rotation: r2 added, then r1 retired
make_jwks "r1=$K/rsa.pub" "r2=$K/rsa2.pub" >"$T/served.json"
wait_until $((REFRESH_S * 3)) "rotated key r2 accepted" is_code 200 "$tok_r2"
assert_eq 200 "$(code "$tok_r1")" "r1 still accepted next to r2"
log "ok: added key picked up"
make_jwks "r2=$K/rsa2.pub" >"$T/served.json"
wait_until $((REFRESH_S * 3)) "retired key r1 refused" is_code 401 "$tok_r1"
assert_eq 200 "$(code "$tok_r2")" "r2 accepted after r1 was retired"
log "ok: retired key refused (the token cache does not outlive the key)"

# failed refreshes keep the last good set: garbage, HTTP 500, an empty set, a set of
# unusable keys
for bad in garbage status500 nokeys weakkey; do
    w0=$(warnings)
    case $bad in
        garbage) printf 'this is not JSON {' >"$T/served.json" ;;
        status500) echo 500 >"$T/served.json.status" ;;
        nokeys) echo '{"keys":[]}' >"$T/served.json" ;;
        weakkey) openssl genrsa 1024 2>/dev/null | openssl rsa -pubout 2>/dev/null >"$T/weak.pub"
                 make_jwks "w=$T/weak.pub" >"$T/served.json" ;;
    esac
    wait_fetches 2
    rm -f "$T/served.json.status"
    [ "$(warnings)" -gt "$w0" ] || fail "$bad: no 'keeping the last good keys' warning"
    assert_eq 200 "$(code "$tok_r2")" "$bad: last good set kept (r2)"
    assert_eq 401 "$(code "$tok_r1")" "$bad: r1 stays refused"
    log "ok: refresh with $bad -> last good set kept"
done

# the server goes away: still the last good set; it comes back with a new set: picked up
kill -TERM "$JWKS_PID"
wait "$JWKS_PID" 2>/dev/null || true
w0=$(warnings)
wait_until $((REFRESH_S * 4)) "a failed refresh while the JWKS server is down" \
    warnings_at_least $((w0 + 2))
assert_eq 200 "$(code "$tok_r2")" "server down: last good set kept"
log "ok: JWKS server down -> last good set kept"
make_jwks "e3=$K/ec256.pub" "r2=$K/rsa2.pub" >"$T/served.json"
start_jwks_server "$T/served.json" "$JWKS_PORT"
wait_until $((REFRESH_S * 4)) "new key e3 after the server came back" is_code 200 "$tok_e3"
assert_eq 200 "$(code "$tok_r2")" "r2 still in the set"
log "ok: server back -> new set picked up"

# a tollgate started while the JWKS URL is down serves (JWTs refused) and picks the keys up later
kill -TERM "$JWKS_PID"
wait "$JWKS_PID" 2>/dev/null || true
ident_tollgate late JWT_JWKS_URL="$JWKS_URL" JWT_JWKS_REFRESH_S=$REFRESH_S
body=$(chat_as "$tok_e3")
expect_401 "no JWKS yet" "$body"
start_jwks_server "$T/served.json" "$JWKS_PORT"
wait_until $((REFRESH_S * 4)) "keys fetched once the server is up" is_code 200 "$tok_e3"
log "ok: started without the JWKS server, keys picked up later"
log "PASS"
