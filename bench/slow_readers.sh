#!/usr/bin/env bash
# slow_readers.sh: T3's hard case alone, in ~1.5 min: a fresh tollgate (1 worker) with its own
# PostgreSQL and Redis (tests/integration/services.sh), the fake upstream sending 1 000-byte
# events every 50 ms, and 1 000 clients (bench/streams) that read their 4 KB socket buffer once
# a second. Prints the RESULT line of bench/streams (peak RSS and KiB per stream). Used to
# measure each step of docs/benchmarks.md §4; bench/run.sh runs the same case in its part (c).
#
#   bench/slow_readers.sh [BUILD_DIR] [TOLLGATE_BIN]     as root (PostgreSQL runs as postgres)
#   N=1000 CHUNKS=200 WRAP="valgrind --tool=massif --massif-out-file=m.out" bench/slow_readers.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
BIN=${2:-$BUILD/proxy/tollgate}
KEY=svc-0123456789abcdef0123456789
S=$(mktemp -d /tmp/tg-slow.XXXXXX)
chmod 755 "$S" # PostgreSQL (run as postgres) keeps its data below
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    "$ROOT/tests/integration/services.sh" stop "$S/svc" >/dev/null 2>&1 || true
    rm -rf "$S"
}
trap cleanup EXIT
SERVICES_OWNER_PID=$$ TOLLGATE_BIN=$BIN "$ROOT/tests/integration/services.sh" start "$S/svc" >/dev/null
# shellcheck disable=SC1091
source "$S/svc/services.env"
"$BUILD/tests/fake_upstream/fake_upstream" --listen 127.0.0.1:0 --port-file "$S/fake.port" >"$S/fake.log" 2>&1 &
PIDS+=($!)
until [ -s "$S/fake.port" ]; do sleep 0.05; done
psql -h 127.0.0.1 -p "$TG_TEST_PGPORT" -U postgres -qAt -c "CREATE DATABASE tg_slow TEMPLATE tg_template" >/dev/null
PORT=$((40000 + RANDOM % 5000))
mkdir -p "$S/spool"
# shellcheck disable=SC2086
env -i PATH="$PATH" TOLLGATE_LISTEN="127.0.0.1:$PORT" TOLLGATE_WORKERS=1 \
    DATABASE_URL="postgresql://postgres@127.0.0.1:$TG_TEST_PGPORT/tg_slow" \
    REDIS_URL="redis://127.0.0.1:$TG_TEST_REDIS_PORT/0" UPSTREAM_URL="http://127.0.0.1:$(cat "$S/fake.port")" \
    TOLLGATE_SERVICE_KEY=$KEY QUOTA_DEFAULT_TOKENS=1000000000000 REDIS_TIMEOUT_MS=2000 \
    LEDGER_SPOOL_DIR="$S/spool" LOG_LEVEL=info ${WRAP:-} "$BIN" >"$S/tg.log" 2>&1 &
TPID=$!
PIDS+=("$TPID")
until curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null; do
    kill -0 "$TPID" 2>/dev/null || { tail -n 5 "$S/tg.log" >&2; exit 1; }
    sleep 0.05
done
for i in $(seq 1 100); do echo "X-Tollgate-User: slow-$i"; done >"$S/users.txt"
printf '%s' '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Write a long story about a lighthouse keeper."}]}' >"$S/body.json"
"$BUILD/bench/streams" --url "http://127.0.0.1:$PORT/v1/chat/completions" --streams "${N:-1000}" \
    --pid "$TPID" --sample-ms 50 --samples-file "${SAMPLES:-$S/samples.csv}" --body-file "$S/body.json" \
    --header-file "$S/users.txt" --header "Authorization: Bearer $KEY" \
    --header "x-fake-chunks: ${CHUNKS:-200}" --header "x-fake-delay-ms: 50" \
    --header "x-fake-chunk-bytes: 1000" --read-pause-ms 1000 --rcvbuf 4096 --timeout-s 300 |
    grep '^RESULT'
kill -INT "$TPID"
wait "$TPID" 2>/dev/null || true
