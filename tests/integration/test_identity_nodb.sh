#!/usr/bin/env bash
# Issue 4 (and SPEC §2): no database round trip per request in the steady state. A JWT user and
# a personal-API-key user are warmed, then the users table is locked (ACCESS EXCLUSIVE, held by
# an open transaction): every lookup of a user record or a key (which joins users) would wait
# on it. The warm users are still served promptly, while a cold user (the control) waits on the
# lock until it is released.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_identity.sh"

SECRET="hs-secret-for-the-nodb-test-0123456789"
start_fake
DB_URL=$(new_db ident_nodb)
sql() { psql_db "$DB_URL" -c "$1"; }
# timed TOKEN: "<status> <seconds>" of one chat request
timed() {
    curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 \
        "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $1" \
        -H "Content-Type: application/json" -d "$CHAT"
}
# served_fast NAME TOKEN: 200 in well under a second
served_fast() {
    local out
    out=$(timed "$2")
    assert_eq 200 "${out% *}" "$1: status"
    awk -v t="${out#* }" 'BEGIN { exit !(t < 0.5) }' ||
        fail "$1: took ${out#* } s (a database round trip waiting on the lock?)"
}

# one worker: one in-process cache, so warming it is deterministic
TOLLGATE_WORKERS=1 ident_tollgate tg JWT_SECRET="$SECRET" TOLLGATE_API_KEYS=on
jwt_tok=$(jwt HS256 "secret:$SECRET" '{"sub":"nodb-jwt","email":"j@example.com","team":"nodb-team","exp":"now+600"}')
read -r _ key < <(new_api_key "$DB_URL" nodb-key)
cold_tok=$(jwt HS256 "secret:$SECRET" '{"sub":"nodb-cold","exp":"now+600"}')
for _ in 1 2 3; do
    served_fast "warm-up (JWT)" "$jwt_tok"
    served_fast "warm-up (API key)" "$key"
done
assert_eq 1 "$(sql "SELECT count(*) FROM users WHERE id = 'nodb-jwt' AND team_id = 'nodb-team'")" \
    "the JWT user was created on first sight"

# hold the lock in a psql session of its own
rm -f "$T/lock.fifo" "$T/lock.out"
mkfifo "$T/lock.fifo"
psql_db "$DB_URL" <"$T/lock.fifo" >"$T/lock.out" 2>&1 &
lock_pid=$!
exec 7>"$T/lock.fifo"
echo "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; SELECT 'locked';" >&7
wait_until 10 "the lock on users" grep -q locked "$T/lock.out"
release_lock() {
    [ -n "${lock_pid:-}" ] || return 0
    echo "ROLLBACK;" >&7 || true
    exec 7>&- || true
    wait "$lock_pid" || true
    lock_pid=
}

# the control: a cold user needs its record, so its request waits on the lock
curl -sS -o "$T/cold.body" -w '%{http_code}' --max-time 30 "$TG_URL/v1/chat/completions" \
    -H "Authorization: Bearer $cold_tok" -H "Content-Type: application/json" -d "$CHAT" \
    >"$T/cold.code" 2>&1 &
cold_pid=$!
waiting() {
    [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
              AND datname = current_database() AND pid <> pg_backend_pid()")" -ge 1 ]
}
wait_until 10 "the cold user's lookup to wait on the lock" waiting

t0=$(date +%s%3N)
for i in 1 2 3 4 5; do
    served_fast "JWT user, users locked ($i)" "$jwt_tok"
    served_fast "API-key user, users locked ($i)" "$key"
done
log "ok: 10 requests of warm users served in $(( $(date +%s%3N) - t0 )) ms with users locked"
kill -0 "$cold_pid" 2>/dev/null || fail "the cold user's request finished while users was locked: $(cat "$T/cold.code")"
waiting || fail "the cold user's lookup stopped waiting on the lock"

release_lock
wait "$cold_pid" || true
assert_eq 200 "$(cat "$T/cold.code")" "the cold user is served once the lock is gone"
assert_eq 1 "$(sql "SELECT count(*) FROM users WHERE id = 'nodb-cold'")" "the cold user was created"
wait_until 10 "ledger rows of the requests served under the lock" sql_at_least "$DB_URL" 8 \
    "SELECT count(*) FROM ledger WHERE user_id = 'nodb-jwt'"
wait_until 10 "ledger rows of the API-key user" sql_at_least "$DB_URL" 8 \
    "SELECT count(*) FROM ledger WHERE user_id = 'nodb-key'"
log "PASS"
