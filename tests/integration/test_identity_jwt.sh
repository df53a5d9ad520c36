#!/usr/bin/env bash
# Issue 4 §1: JWTs verified with JWT_SECRET (HS256/384/512), JWT_PUBLIC_KEY_FILE (RS256/384/512,
# ES256/384/512) and JWT_JWKS_FILE (key chosen by kid), through real sockets; users created on
# first sight with email, name and team from the claims, and updated when the claims change.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_identity.sh"

K="$T/keys"
make_keys "$K"
SECRET="hs-secret-for-the-identity-test-0123456789"
start_fake
DB_URL=$(new_db ident_jwt)

# ok NAME TOKEN USER: the token is accepted and the request billed to USER
ok() {
    local name=$1 tok=$2 user=$3 body rid
    body=$(chat_as "$tok")
    assert_eq 200 "$(status)" "$name: status ($body)"
    rid=$(header x-request-id)
    assert_eq "$user" "$(user_of "$rid")" "$name: billed user"
    assert_eq jwt "$(log_for "$rid" | jq -r .auth)" "$name: auth kind in the log"
    log "ok: $name"
}
rejected() { # NAME TOKEN
    local body
    body=$(chat_as "$2")
    expect_401 "$1" "$body"
}

# ---- JWT_SECRET and an RSA JWT_PUBLIC_KEY_FILE together --------------------------------------
ident_tollgate hs_rs JWT_SECRET="$SECRET" JWT_PUBLIC_KEY_FILE="$K/rsa.pub"
for alg in HS256 HS384 HS512; do
    ok "$alg" "$(jwt $alg "secret:$SECRET" "{\"sub\":\"u-$alg\",\"exp\":\"now+600\"}")" "u-$alg"
done
for alg in RS256 RS384 RS512; do
    ok "$alg" "$(jwt $alg "$K/rsa.key" "{\"sub\":\"u-$alg\",\"exp\":\"now+600\"}")" "u-$alg"
done
# a token from another RSA key, an HS token with another secret: not ours
rejected "RS256 from an unknown key" "$(jwt RS256 "$K/rsa2.key" '{"sub":"x","exp":"now+600"}')"
rejected "HS256 with another secret" "$(jwt HS256 "secret:not-$SECRET" '{"sub":"x","exp":"now+600"}')"
# ES is not allowed by an RSA key
rejected "ES256 against an RSA key" "$(jwt ES256 "$K/ec256.key" '{"sub":"x","exp":"now+600"}')"
# the Anthropic SDK's x-api-key header carries a credential too
tok=$(jwt HS256 "secret:$SECRET" '{"sub":"u-xapikey","exp":"now+600"}')
body=$(curl_tg "$TG_URL/v1/chat/completions" -H "x-api-key: $tok" -H "Content-Type: application/json" -d "$CHAT")
assert_eq 200 "$(status)" "x-api-key JWT: status ($body)"
assert_eq u-xapikey "$(user_of "$(header x-request-id)")" "x-api-key JWT: user"

# ---- users on first sight, updated when the claims change ------------------------------------
# two instances sharing the database and the Redis: each caches alice's record per worker
H1_URL=$TG_URL H1_LOG=$TG_LOG
ident_tollgate hs2 JWT_SECRET="$SECRET"
H2_URL=$TG_URL H2_LOG=$TG_LOG
on() { TG_URL=$1 TG_LOG=$2; }
on "$H1_URL" "$H1_LOG"
claims='{"sub":"alice","exp":"now+600","email":"alice@example.com","name":"Alice A","team":"research"}'
ok "first sight" "$(jwt HS256 "secret:$SECRET" "$claims")" alice
row=$(psql_db "$DB_URL" -c "SELECT email, name, team_id, disabled FROM users WHERE id = 'alice'")
assert_eq "alice@example.com|Alice A|research|f" "$row" "user created from the claims"
assert_eq 1 "$(psql_db "$DB_URL" -c "SELECT count(*) FROM teams WHERE id = 'research'")" "team created"
created=$(psql_db "$DB_URL" -c "SELECT updated_at FROM users WHERE id = 'alice'")
# the same claims again (another token, same content), on every worker of both instances:
# nothing to update
bare=$(jwt HS256 "secret:$SECRET" '{"sub":"alice","exp":"now+600"}')
for i in 1 2 3 4 5 6; do
    ok "same claims ($i)" "$(jwt HS384 "secret:$SECRET" "$claims")" alice
    on "$H2_URL" "$H2_LOG"
    ok "same claims, other instance ($i)" "$bare" alice
    on "$H1_URL" "$H1_LOG"
done
assert_eq "$created" "$(psql_db "$DB_URL" -c "SELECT updated_at FROM users WHERE id = 'alice'")" \
    "unchanged claims do not rewrite the user"
claims2='{"sub":"alice","exp":"now+600","email":"alice@corp.example","name":"Alice B","team":"platform"}'
ok "changed claims" "$(jwt RS256 "$K/rsa.key" "$claims2")" alice
row=$(psql_db "$DB_URL" -c "SELECT email, name, team_id FROM users WHERE id = 'alice'")
assert_eq "alice@corp.example|Alice B|platform" "$row" "user updated from the new claims"
assert_eq 1 "$(psql_db "$DB_URL" -c "SELECT count(*) FROM teams WHERE id = 'platform'")" "new team created"
# claims that are absent keep what is recorded; every worker of both instances now bills the
# new team (the change invalidated the records they had cached)
teams_billed() { # LOG: the teams of alice's requests after the change, one per line
    grep '"msg":"request"' "$1" | jq -r 'select(.user == "alice") | .team' | tail -n "$2" | sort -u
}
for i in 1 2 3 4 5 6; do
    ok "claims absent ($i)" "$bare" alice
    on "$H2_URL" "$H2_LOG"
    ok "claims absent, other instance ($i)" "$bare" alice
    on "$H1_URL" "$H1_LOG"
done
assert_eq platform "$(teams_billed "$H1_LOG" 6)" "team billed after the change, instance 1"
assert_eq platform "$(teams_billed "$H2_LOG" 6)" "team billed after the change, instance 2"
row=$(psql_db "$DB_URL" -c "SELECT email, name, team_id FROM users WHERE id = 'alice'")
assert_eq "alice@corp.example|Alice B|platform" "$row" "absent claims do not erase the record"
# the ledger bills the JWT's user and the team of the moment
wait_until 20 "ledger rows for alice" \
    sql_at_least "$DB_URL" 26 "SELECT count(*) FROM ledger WHERE user_id = 'alice'"
assert_eq platform "$(psql_db "$DB_URL" -c "SELECT string_agg(DISTINCT team_id, ',') FROM (SELECT team_id FROM ledger WHERE user_id = 'alice' ORDER BY started_at DESC LIMIT 12) l")" \
    "the ledger rows after the change carry the new team"
assert_eq research "$(psql_db "$DB_URL" -c "SELECT team_id FROM ledger WHERE user_id = 'alice' ORDER BY started_at LIMIT 1")" \
    "the ledger rows before the change keep the old team"

# ---- EC public key files: each curve allows only its own ES algorithm -------------------------
for spec in ec256:ES256 ec384:ES384 ec521:ES512; do
    key=${spec%%:*} alg=${spec##*:}
    ident_tollgate "$key" JWT_PUBLIC_KEY_FILE="$K/$key.pub"
    ok "$alg" "$(jwt "$alg" "$K/$key.key" "{\"sub\":\"u-$alg\",\"exp\":\"now+600\"}")" "u-$alg"
    rejected "RS256 against an $alg key" "$(jwt RS256 "$K/rsa.key" '{"sub":"x","exp":"now+600"}')"
    rejected "HS256 with no secret configured" "$(jwt HS256 "secret:$SECRET" '{"sub":"x","exp":"now+600"}')"
done
# a P-256 token against the P-521 key (the last one started)
rejected "ES256 token at the P-521 key" "$(jwt ES256 "$K/ec256.key" '{"sub":"x","exp":"now+600"}')"

# ---- JWT_JWKS_FILE: the key chosen by kid -------------------------------------------------------
make_jwks "r1=$K/rsa.pub:RS256" "r2=$K/rsa2.pub" "e1=$K/ec256.pub" "e3=$K/ec384.pub" >"$T/jwks.json"
ident_tollgate jwks JWT_JWKS_FILE="$T/jwks.json"
ok "JWKS kid r1 (alg pinned RS256)" "$(jwt RS256 "$K/rsa.key" '{"sub":"k1","exp":"now+600"}' '{"kid":"r1"}')" k1
ok "JWKS kid r2 RS512" "$(jwt RS512 "$K/rsa2.key" '{"sub":"k2","exp":"now+600"}' '{"kid":"r2"}')" k2
ok "JWKS kid e1 ES256" "$(jwt ES256 "$K/ec256.key" '{"sub":"k3","exp":"now+600"}' '{"kid":"e1"}')" k3
ok "JWKS kid e3 ES384" "$(jwt ES384 "$K/ec384.key" '{"sub":"k4","exp":"now+600"}' '{"kid":"e3"}')" k4
rejected "JWKS key pinned to RS256, token RS384" \
    "$(jwt RS384 "$K/rsa.key" '{"sub":"x","exp":"now+600"}' '{"kid":"r1"}')"
rejected "JWKS right key, wrong kid" \
    "$(jwt RS256 "$K/rsa.key" '{"sub":"x","exp":"now+600"}' '{"kid":"r2"}')"
rejected "JWKS unknown kid" \
    "$(jwt RS256 "$K/rsa.key" '{"sub":"x","exp":"now+600"}' '{"kid":"nope"}')"
rejected "JWKS several keys, no kid" "$(jwt RS256 "$K/rsa.key" '{"sub":"x","exp":"now+600"}')"
log "PASS"
