# lib.sh: helpers for integration tests (sourced). Each test gets its own database (from the
# migrated template), its own Redis key prefix, its own spool dir and its own processes, so
# tests run in parallel; everything it started is stopped on exit, pass or fail.

set -euo pipefail

: "${TG_SERVICES_ENV:?run through ctest (services fixture), or set TG_SERVICES_ENV}"
# shellcheck disable=SC1090
source "$TG_SERVICES_ENV"
: "${TOLLGATE_BIN:?}"
: "${FAKE_UPSTREAM_BIN:=}"

TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
T=$(mktemp -d "/tmp/tg-${TEST_NAME}.XXXXXX")
chmod 755 "$T"
TG_PIDS=()
TG_DBS=()
TEST_FAILED=0

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }

tg_cleanup() {
    local rc=$?
    for pid in "${TG_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${TG_PIDS[@]:-}"; do
        [ -n "$pid" ] && { for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done; kill -KILL "$pid" 2>/dev/null || true; }
    done
    for db in "${TG_DBS[@]:-}"; do
        [ -n "$db" ] && psql_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    if [ "$rc" != 0 ] || [ "$TEST_FAILED" != 0 ]; then
        log "FAILED (exit $rc); logs in $T"
        for f in "$T"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $f (last 40 lines)" >&2
            tail -n 40 "$f" >&2
        done
    else
        rm -rf "$T"
    fi
}
trap tg_cleanup EXIT

fail() {
    TEST_FAILED=1
    log "FAIL: $*"
    exit 1
}

assert_eq() { # expected actual message
    [ "$1" == "$2" ] || fail "$3: expected [$1], got [$2]"
}

assert_contains() { # haystack needle message
    [[ "$1" == *"$2"* ]] || fail "$3: [$2] not found in [${1:0:2000}]"
}

assert_not_contains() {
    [[ "$1" != *"$2"* ]] || fail "$3: [$2] unexpectedly found"
}

psql_admin() {
    psql -h "$TG_TEST_PGHOST" -p "$TG_TEST_PGPORT" -U postgres -qAt -v ON_ERROR_STOP=1 "$@"
}

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    fail "no free port"
}

# new_db NAME: a fresh migrated database; prints its URL.
new_db() {
    local name="t_${1}_$$_$RANDOM"
    psql_admin -d postgres -c "CREATE DATABASE \"$name\" TEMPLATE tg_template" >/dev/null
    TG_DBS+=("$name")
    echo "postgresql://postgres@127.0.0.1:$TG_TEST_PGPORT/$name"
}

# psql_db URL args...
psql_db() {
    local url=$1; shift
    psql "$url" -qAt -v ON_ERROR_STOP=1 "$@"
}

redis() {
    redis-cli -p "$TG_TEST_REDIS_PORT" "$@"
}

wait_http() { # url [seconds]
    local url=$1 deadline=$(( $(date +%s) + ${2:-20} ))
    until curl -fsS -o /dev/null "$url" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $url"
        sleep 0.05
    done
}

wait_until() { # seconds description command...
    local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what"
        sleep 0.05
    done
}

# start_fake [NAME] [extra args]: sets FAKE_URL, FAKE_PID, FAKE_PORT
start_fake() {
    local name=${1:-fake}; shift || true
    [ -x "$FAKE_UPSTREAM_BIN" ] || fail "fake_upstream not built"
    rm -f "$T/$name.port"
    "$FAKE_UPSTREAM_BIN" --listen 127.0.0.1:0 --port-file "$T/$name.port" "$@" \
        >"$T/$name.log" 2>&1 &
    FAKE_PID=$!
    TG_PIDS+=("$FAKE_PID")
    wait_until 10 "fake upstream port" test -s "$T/$name.port"
    FAKE_PORT=$(cat "$T/$name.port")
    if [[ " $* " == *" --tls-cert "* ]]; then
        FAKE_URL="https://localhost:$FAKE_PORT"
        wait_until 10 "fake upstream (TLS)" curl -ksf -o /dev/null "$FAKE_URL/health/liveliness"
    else
        FAKE_URL="http://127.0.0.1:$FAKE_PORT"
        wait_http "$FAKE_URL/health/liveliness"
    fi
}

# start_tollgate NAME VAR=VALUE...: starts tollgate with a fresh port, the test's database
# (DB_URL), Redis prefix and spool; sets TG_URL, TG_PID, TG_PORT, TG_LOG.
start_tollgate() {
    local name=$1; shift
    TG_PORT=$(free_port)
    TG_URL="http://127.0.0.1:$TG_PORT"
    TG_LOG="$T/$name.log"
    mkdir -p "$T/spool-$name"
    env -i PATH="$PATH" HOME="${HOME:-/root}" \
        TOLLGATE_LISTEN="127.0.0.1:$TG_PORT" \
        TOLLGATE_WORKERS="${TOLLGATE_WORKERS:-2}" \
        DATABASE_URL="${DB_URL:?}" \
        REDIS_URL="redis://127.0.0.1:$TG_TEST_REDIS_PORT/0" \
        REDIS_KEY_PREFIX="${REDIS_PREFIX:-t$$:}" \
        UPSTREAM_URL="${UPSTREAM:-$FAKE_URL}" \
        LEDGER_SPOOL_DIR="$T/spool-$name" \
        LEDGER_FLUSH_MS=5 \
        "$@" \
        "$TOLLGATE_BIN" >"$TG_LOG" 2>&1 &
    TG_PID=$!
    TG_PIDS+=("$TG_PID")
    local deadline=$(( $(date +%s) + 20 ))
    until curl -fsS -o /dev/null "$TG_URL/healthz" 2>/dev/null; do
        kill -0 "$TG_PID" 2>/dev/null || fail "tollgate exited at start-up: $(tail -n 5 "$TG_LOG")"
        [ "$(date +%s)" -lt "$deadline" ] || fail "tollgate did not come up"
        sleep 0.05
    done
    # /healthz answers before the workers' Redis connections are up; wait (at most 5 s, since
    # some tests start with Redis down on purpose) until several /readyz in a row, landing on
    # different workers, see Redis connected.
    local ok=0 until=$(( $(date +%s) + 5 ))
    while [ "$ok" -lt 8 ] && [ "$(date +%s)" -lt "$until" ]; do
        if curl -sS "$TG_URL/readyz" 2>/dev/null | grep -q '"redis":"ok"'; then
            ok=$((ok + 1))
        else
            ok=0; sleep 0.02
        fi
    done
}

stop_tollgate() { # pid: SIGTERM and wait for a clean exit; prints the exit status
    local pid=$1 rc=0
    kill -TERM "$pid"
    wait "$pid" || rc=$?
    echo "$rc"
}

# request log lines of tollgate (msg == "request") as JSON, one per line
request_logs() {
    grep '"msg":"request"' "${1:-$TG_LOG}" || true
}

# log_for REQUEST_ID: the request's log line
log_for() {
    local deadline=$(( $(date +%s) + 10 ))
    while :; do
        local line
        line=$(grep "\"request_id\":\"$1\"" "${2:-$TG_LOG}" | grep '"msg":"request"' || true)
        if [ -n "$line" ]; then echo "$line"; return 0; fi
        [ "$(date +%s)" -lt "$deadline" ] || fail "no log line for request $1"
        sleep 0.05
    done
}

# log_for_client CLIENT_REQUEST_ID [LOG]: the request line of the request the client named so
# (log lines are written in batches within ~10 ms: poll, don't grep once)
log_for_client() {
    local deadline=$(( $(date +%s) + 10 ))
    while :; do
        local line
        line=$(grep "\"client_request_id\":\"$1\"" "${2:-$TG_LOG}" | grep '"msg":"request"' || true)
        if [ -n "$line" ]; then echo "$line"; return 0; fi
        [ "$(date +%s)" -lt "$deadline" ] || fail "no log line for client request $1"
        sleep 0.05
    done
}

# curl_tg ARGS...: curl with headers dumped to $T/h and body to stdout
curl_tg() {
    curl -sS -D "$T/h" "$@"
}

header() { # name (from the last curl_tg)
    grep -i "^$1:" "$T/h" | head -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ //'
}

status() {
    head -n 1 "$T/h" | awk '{print $2}'
}

SERVICE_KEY=svc-0123456789abcdef0123456789
ADMIN_KEY=adm-0123456789abcdef0123456789
