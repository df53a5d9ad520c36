#!/usr/bin/env bash
# Issue 4 §3 and §5: personal API keys (TOLLGATE_API_KEYS=on) through real sockets: accepted
# (Authorization or x-api-key) and billed to the key's user, stored only as a hash, refused when
# unknown, revoked or when keys are off; revocation (401) and disabling the user (403) take effect
# within 1 s on every worker of two tollgate processes sharing the Redis, while both are being
# hammered; last_used_at written in batches, not per request.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_identity.sh"

SECRET="hs-secret-for-the-apikey-test-0123456789"
HAMMER="$TG_SOURCE_DIR/tests/node/identity_hammer.mjs"
start_fake
DB_URL=$(new_db ident_key)
# count every change of last_used_at, with the time it was written
psql_db "$DB_URL" <<'SQL'
CREATE TABLE t_keyuse_writes (key_id uuid, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION t_keyuse_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO t_keyuse_writes (key_id) VALUES (NEW.id); RETURN NEW; END $$;
CREATE TRIGGER t_keyuse AFTER UPDATE OF last_used_at ON api_keys FOR EACH ROW
    WHEN (OLD.last_used_at IS DISTINCT FROM NEW.last_used_at) EXECUTE FUNCTION t_keyuse_write();
SQL

COMMON=(TOLLGATE_API_KEYS=on JWT_SECRET="$SECRET" TOLLGATE_SERVICE_KEY="$SERVICE_KEY" AUTH_CACHE_TTL_S=300)
TOLLGATE_WORKERS=2 ident_tollgate a "${COMMON[@]}"
A_URL=$TG_URL A_LOG=$TG_LOG
TOLLGATE_WORKERS=2 ident_tollgate b "${COMMON[@]}"
B_URL=$TG_URL B_LOG=$TG_LOG

# ---- basics ---------------------------------------------------------------------------------
read -r K1_ID K1 < <(new_api_key "$DB_URL" bob laptop)
TG_URL=$A_URL TG_LOG=$A_LOG
body=$(chat_as "$K1")
assert_eq 200 "$(status)" "personal key: status ($body)"
rid=$(header x-request-id)
assert_eq bob "$(user_of "$rid")" "personal key: billed to the key's user"
assert_eq api_key "$(log_for "$rid" | jq -r .auth)" "personal key: auth kind"
body=$(curl_tg "$TG_URL/v1/chat/completions" -H "x-api-key: $K1" -H "Content-Type: application/json" -d "$CHAT")
assert_eq 200 "$(status)" "personal key in x-api-key: status"
assert_eq bob "$(user_of "$(header x-request-id)")" "x-api-key: user"
# X-Tollgate-User is ignored with a personal key
body=$(chat_as "$K1" -H "X-Tollgate-User: mallory" -H "X-Tollgate-User-Email: m@evil.example")
assert_eq 200 "$(status)" "personal key + X-Tollgate-User: status"
assert_eq bob "$(user_of "$(header x-request-id)")" "personal key + X-Tollgate-User: still the key's user"
assert_eq 0 "$(psql_db "$DB_URL" -c "SELECT count(*) FROM users WHERE id = 'mallory' OR email = 'm@evil.example'")" \
    "the header named no user"
log "ok: personal key accepted and billed to its user"

# unknown, malformed, other instance, keys off
unknown="tg-$(openssl rand 32 | b64url)"
body=$(chat_as "$unknown"); expect_401 "unknown key" "$body"
body=$(chat_as "${K1:0:45}"); expect_401 "key cut short" "$body"
body=$(chat_as "${K1}A"); expect_401 "key one character longer" "$body"
body=$(chat_as "${K1:0:10}!${K1:11}"); expect_401 "key with a character outside base64url" "$body"
body=$(chat_as "$(echo "$K1" | tr 'a-z' 'A-Z')"); expect_401 "key in upper case" "$body"
TG_URL=$B_URL TG_LOG=$B_LOG
body=$(chat_as "$K1")
assert_eq 200 "$(status)" "the key works on the other instance"
ident_tollgate off JWT_SECRET="$SECRET"
body=$(chat_as "$K1"); expect_401 "personal key with TOLLGATE_API_KEYS=off" "$body"
OFF_LOG=$TG_LOG
TG_URL=$A_URL TG_LOG=$A_LOG

# stored only as a hash: the key's text is nowhere in the database, nor in the logs
"$TG_TEST_PGBIN/pg_dump" -h 127.0.0.1 -p "$TG_TEST_PGPORT" -U postgres "${DB_URL##*/}" >"$T/dump.sql"
assert_not_contains "$(cat "$T/dump.sql")" "${K1:3}" "the key's text in the database"
want_hash=$(printf '%s' "$K1" | sha256sum | cut -d' ' -f1)
assert_eq "\\x$want_hash" "$(psql_db "$DB_URL" -c "SELECT key_hash FROM api_keys WHERE id = '$K1_ID'")" \
    "stored as SHA-256 of the whole key"
for f in "$A_LOG" "$B_LOG" "$OFF_LOG"; do
    assert_not_contains "$(cat "$f")" "${K1:3}" "the key's text in $(basename "$f")"
done
log "ok: only the hash is stored; the key is not logged"

# a revoked key and a disabled user's key, looked up for the first time (no cache)
read -r K2_ID K2 < <(new_api_key "$DB_URL" carol)
psql_db "$DB_URL" -c "UPDATE api_keys SET revoked_at = now() WHERE id = '$K2_ID'"
body=$(chat_as "$K2"); expect_401 "revoked key (first sight)" "$body"
read -r _ K3 < <(new_api_key "$DB_URL" dora)
psql_db "$DB_URL" -c "UPDATE users SET disabled = true WHERE id = 'dora'"
body=$(chat_as "$K3")
assert_eq 403 "$(status)" "disabled user's key (first sight): status"
assert_eq permission_error "$(echo "$body" | jq -r .error.type)" "disabled user: error type"
log "ok: revoked -> 401, disabled -> 403 (database path)"

# ---- revocation and disabling under load, two instances x two workers -----------------------
# summarise OUT T_REV WANT: every request that started more than 1 s after T_REV got WANT,
# requests before T_REV succeeded, and each instance had requests in both windows
check_window() {
    local out=$1 t_rev=$2 want=$3 name=$4
    awk -v t="$t_rev" -v want="$want" -v name="$name" '
        { n++ }
        $1 < t && $3 == 200 { before[$4]++ }
        $1 < t && $3 != 200 { badbefore++ }
        $1 > t + 1000 { after[$4]++; if ($3 != want) { wrong++; if (!ex) ex = $0 } }
        $1 >= t && $3 == 200 { if ($1 - t > last) last = $1 - t }
        END {
            printf "%s: %d requests; last 200 started %d ms after the change\n", name, n, last
            for (i in before) printf "  target %s: %d ok before\n", i, before[i]
            for (i in after) printf "  target %s: %d after +1 s\n", i, after[i]
            if (wrong) { printf "  %d requests after +1 s did not get %s, e.g. %s\n", wrong, want, ex; exit 1 }
            if (badbefore) { printf "  %d requests failed before the change\n", badbefore; exit 1 }
        }' "$out" >&2 || fail "$name: see above"
}
targets_have() { # OUT WINDOW(before|after) T_REV N_TARGETS MIN: every target has MIN requests
    local c
    for i in $(seq 0 $(($4 - 1))); do
        if [ "$2" = before ]; then
            c=$(awk -v t="$3" -v i="$i" '$4 == i && $1 < t' "$1" | wc -l)
        else
            c=$(awk -v t="$3" -v i="$i" '$4 == i && $1 > t + 1000' "$1" | wc -l)
        fi
        [ "$c" -ge "$5" ] || fail "target $i had only $c requests $2 the change"
    done
}

read -r K4_ID K4 < <(new_api_key "$DB_URL" erin)
node "$HAMMER" "$T/revoke.out" 5000 3 "$A_URL|$K4" "$B_URL|$K4" &
hp=$!
sleep 2
t_rev=$(date +%s%3N)
revoke_key "$DB_URL" "$K4_ID"
wait "$hp"
check_window "$T/revoke.out" "$t_rev" 401 "revocation"
targets_have "$T/revoke.out" before "$t_rev" 2 20
targets_have "$T/revoke.out" after "$t_rev" 2 20
log "ok: revocation took effect within 1 s on both instances"

# disabling a user: the personal key, the service key naming the user and a JWT all get 403;
# enabling again brings them back
read -r K5_ID K5 < <(new_api_key "$DB_URL" fred)
JWT_FRED=$(jwt HS256 "secret:$SECRET" '{"sub":"fred","exp":"now+900"}')
node "$HAMMER" "$T/disable.out" 5000 2 "$A_URL|$K5" "$B_URL|$K5" "$A_URL|$SERVICE_KEY|fred" \
    "$B_URL|$SERVICE_KEY|fred" "$A_URL|$JWT_FRED" "$B_URL|$JWT_FRED" &
hp=$!
sleep 2
t_rev=$(date +%s%3N)
set_disabled "$DB_URL" fred true
wait "$hp"
check_window "$T/disable.out" "$t_rev" 403 "disabling"
targets_have "$T/disable.out" before "$t_rev" 6 5
targets_have "$T/disable.out" after "$t_rev" 6 5
log "ok: disabling took effect within 1 s for key, service key and JWT on both instances"
node "$HAMMER" "$T/enable.out" 4000 2 "$A_URL|$K5" "$B_URL|$K5" "$A_URL|$JWT_FRED" "$B_URL|$JWT_FRED" &
hp=$!
sleep 1.5
t_rev=$(date +%s%3N)
set_disabled "$DB_URL" fred false
wait "$hp"
bad=$(awk -v t="$t_rev" '$1 > t + 1000 && $3 != 200' "$T/enable.out" | wc -l)
assert_eq 0 "$bad" "requests after enabling (+1 s) not 200"
log "ok: enabling took effect within 1 s"

# ---- last_used_at: appears within ~15 s, written in batches ----------------------------------
read -r K6_ID K6 < <(new_api_key "$DB_URL" gina)
TG_URL=$A_URL TG_LOG=$A_LOG
t_use=$(date +%s)
body=$(chat_as "$K6")
assert_eq 200 "$(status)" "gina's key"
used_set() { [ "$(psql_db "$DB_URL" -c "SELECT last_used_at IS NOT NULL FROM api_keys WHERE id = '$K6_ID'")" = t ]; }
wait_until 16 "last_used_at written" used_set
lag=$(($(date +%s) - t_use))
at=$(psql_db "$DB_URL" -c "SELECT extract(epoch FROM last_used_at)::bigint FROM api_keys WHERE id = '$K6_ID'")
[ $((at - t_use)) -ge -1 ] && [ $((at - t_use)) -le 2 ] || fail "last_used_at $at is not the use time $t_use"
log "ok: last_used_at written ${lag}s after the use, with the use time"

written() { [ -n "$(psql_db "$DB_URL" -c "SELECT 1 FROM t_keyuse_writes WHERE key_id = '$1' LIMIT 1")" ]; }
# the hammered keys: hundreds of requests, a handful of writes per instance (one per ~10 s)
for k in "$K4_ID:revoke" "$K5_ID:disable"; do
    id=${k%%:*} out=$T/${k##*:}.out
    uses=$(awk '$3 == 200' "$out" | wc -l)
    wait_until 16 "last_used_at of the hammered key" written "$id"
    writes=$(psql_db "$DB_URL" -c "SELECT count(*) FROM t_keyuse_writes WHERE key_id = '$id'")
    log "key ${k##*:}: $uses successful uses, $writes last_used_at writes"
    [ "$uses" -ge 50 ] || fail "too few uses ($uses) to judge batching"
    [ "$writes" -le 6 ] || fail "$writes writes of last_used_at for $uses uses: not batched"
done
log "PASS"
