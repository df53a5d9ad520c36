#!/usr/bin/env bash
# Issue 2 §2: configuration. Bad configuration stops start-up with one line naming the variable
# and the problem, exit 2; --env-file, --help, --version, --check-config; .env.example in sync.
source "$(dirname "$0")/lib.sh"

start_fake
DB_URL=$(new_db cli)
REDIS_OK="redis://127.0.0.1:$TG_TEST_REDIS_PORT/0"

# run_tg VAR=VALUE... -- ARGS...: runs tollgate with exactly that environment; sets OUT, RC
run_tg() {
    local envs=() args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    args=("$@")
    RC=0
    OUT=$(cd "$T" && timeout 20 env -i PATH="$PATH" "${envs[@]}" "$TOLLGATE_BIN" "${args[@]}" 2>&1) || RC=$?
}

BASE=(DATABASE_URL="$DB_URL" REDIS_URL="$REDIS_OK" UPSTREAM_URL="$FAKE_URL"
      TOLLGATE_SERVICE_KEY="$SERVICE_KEY" LEDGER_SPOOL_DIR="$T/spool")

# expect_fail WANT_SUBSTRING VAR=VALUE...: exit 2 and exactly one line naming the problem
expect_fail() {
    local want=$1; shift
    run_tg "$@"
    [ "$RC" = 2 ] || fail "expected exit 2 for [$*], got $RC: $OUT"
    [ "$(printf '%s\n' "$OUT" | wc -l)" = 1 ] || fail "more than one line for [$*]: $OUT"
    assert_contains "$OUT" "$want" "message for [$*]"
    log "ok: $OUT"
}

without() { # NAME: BASE without NAME
    local v
    for v in "${BASE[@]}"; do [[ "$v" == "$1="* ]] || printf '%s\n' "$v"; done
}

mapfile -t no_db < <(without DATABASE_URL)
expect_fail "DATABASE_URL: is required" "${no_db[@]}"
expect_fail "UPSTREAM_URL: must start with http:// or https://" "${BASE[@]}" UPSTREAM_URL=localhost:4000
expect_fail "UPSTREAM_URL: has an invalid port" "${BASE[@]}" UPSTREAM_URL=http://h:0
expect_fail "TOLLGATE_LISTEN: must be address:port" "${BASE[@]}" TOLLGATE_LISTEN=eighty
expect_fail "TOLLGATE_LISTEN: is not an IP address" "${BASE[@]}" TOLLGATE_LISTEN=999.1.1.1:80
expect_fail "QUOTA_PERIOD: must be month, week, day or none" "${BASE[@]}" QUOTA_PERIOD=fortnight
expect_fail "QUOTA_TIMEZONE:" "${BASE[@]}" QUOTA_TIMEZONE=Mars/Olympus_Mons
expect_fail "JWT_PUBLIC_KEY_FILE: cannot read $T/missing.pem" "${BASE[@]}" JWT_PUBLIC_KEY_FILE="$T/missing.pem"
echo "not a key" >"$T/garbage.pem"
expect_fail "JWT_PUBLIC_KEY_FILE:" "${BASE[@]}" JWT_PUBLIC_KEY_FILE="$T/garbage.pem"
mapfile -t no_auth < <(without TOLLGATE_SERVICE_KEY)
expect_fail "no way to authenticate users is configured" "${no_auth[@]}"
expect_fail "REDIS_URL: must look like redis://" "${BASE[@]}" REDIS_URL=localhost:6379
expect_fail "QUOTA_FAIL_MODE: must be one of closed|open" "${BASE[@]}" QUOTA_FAIL_MODE=sometimes
expect_fail "TOLLGATE_SERVICE_KEY: must be at least 16 characters" "${BASE[@]}" TOLLGATE_SERVICE_KEY=short

# the port is in use: one line, exit 2
busy=$(free_port)
python3 - "$busy" >/dev/null 2>&1 <<'EOF' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); time.sleep(30)
EOF
HOLDER=$!
TG_PIDS+=("$HOLDER")
wait_until 5 "port holder" bash -c "(exec 3<>/dev/tcp/127.0.0.1/$busy) 2>/dev/null"
expect_fail "TOLLGATE_LISTEN: cannot listen on 127.0.0.1:$busy: Address already in use" \
    "${BASE[@]}" TOLLGATE_LISTEN=127.0.0.1:$busy
kill "$HOLDER" 2>/dev/null || true

# --help and --version
run_tg -- --help
assert_eq 0 "$RC" "--help exit"
for v in DATABASE_URL REDIS_URL UPSTREAM_URL QUOTA_WARN_PERCENT LEDGER_SPOOL_DIR STREAM_ABORT_POLICY; do
    assert_contains "$OUT" "$v" "--help lists $v"
done
run_tg -- --version
assert_eq 0 "$RC" "--version exit"
[[ "$OUT" =~ ^tollgate\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--version: $OUT"

# .env.example is exactly what --print-env-example writes (one table drives both)
"$TOLLGATE_BIN" --print-env-example | diff - "$TG_SOURCE_DIR/.env.example" >/dev/null ||
    fail ".env.example is out of date: run make env-example"

# --env-file: the file is read, the real environment wins
cat >"$T/test.env" <<EOF
# a comment
export DATABASE_URL="$DB_URL"
REDIS_URL=$REDIS_OK
UPSTREAM_URL='$FAKE_URL'
TOLLGATE_SERVICE_KEY=$SERVICE_KEY
QUOTA_PERIOD=week
LEDGER_SPOOL_DIR=$T/spool
EOF
run_tg QUOTA_PERIOD=day -- --env-file "$T/test.env" --check-config
assert_eq 0 "$RC" "--check-config with --env-file: $OUT"
assert_contains "$OUT" "QUOTA_PERIOD=day" "the real environment wins over the file"
assert_contains "$OUT" "postgresql: ok" "check-config postgresql"
assert_contains "$OUT" "redis: ok" "check-config redis"
assert_contains "$OUT" "upstream: ok" "check-config upstream"
assert_not_contains "$OUT" "$SERVICE_KEY" "check-config must redact secrets"
run_tg -- --env-file "$T/nonexistent.env"
assert_eq 2 "$RC" "missing env file"
assert_contains "$OUT" "--env-file: cannot read" "missing env file message"
printf 'GOOD=1\nthis line is wrong\n' >"$T/bad.env"
run_tg -- --env-file "$T/bad.env"
assert_eq 2 "$RC" "bad env file"
assert_contains "$OUT" "bad.env:2" "bad env file names the line"

# --check-config reports a failing part and exits 1
dead=$(free_port)
run_tg "${BASE[@]}" REDIS_URL="redis://127.0.0.1:$dead/0" -- --check-config
assert_eq 1 "$RC" "check-config with Redis down"
assert_contains "$OUT" "redis: FAILED" "check-config names redis"
run_tg "${BASE[@]}" UPSTREAM_URL="http://127.0.0.1:$dead" -- --check-config
assert_eq 1 "$RC" "check-config with the upstream down"
assert_contains "$OUT" "upstream: FAILED" "check-config names the upstream"

# migrate: configuration errors exit 2 with one line
run_tg -- migrate
assert_eq 2 "$RC" "migrate without DATABASE_URL"
run_tg DATABASE_URL="$DB_URL" -- migrate
assert_eq 0 "$RC" "migrate on a migrated database: $OUT"

# tokens: the operator's counting tool
out=$(printf 'Hello, world!' | "$TOLLGATE_BIN" tokens --model gpt-4o)
assert_eq 4 "$out" "tollgate tokens"
log "configuration and command line ok"
