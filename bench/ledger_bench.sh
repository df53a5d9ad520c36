#!/usr/bin/env bash
# ledger_bench.sh: ledger writer throughput and commit latency into a private local PostgreSQL
# (started the way tests/integration/services.sh does), once with PostgreSQL's default
# durability (fsync=on, synchronous_commit=on) and once with the test fixture's settings
# (fsync=off, synchronous_commit=off, full_page_writes=off). Prints a markdown table.
#
#   bench/ledger_bench.sh [BUILD_DIR]        (default: build; must run as root for runuser)
#   ROWS=300000 RATE=20000 RATE_SECONDS=20 MODES="durable fixture" bench/ledger_bench.sh build
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
ROWS=${ROWS:-300000}
RATE=${RATE:-20000}
RATE_SECONDS=${RATE_SECONDS:-20}
MODES=${MODES:-"durable fixture"}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

BENCH_NAME=ledger_bench.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root (PostgreSQL is started with runuser -u postgres)"

cmake -S "$ROOT" -B "$BUILD" >/dev/null
cmake --build "$BUILD" --target ledger_bench tg_migrate -j2 >/dev/null
BENCH=$(find "$BUILD" -type f -name ledger_bench -perm -u+x | head -n 1)
MIGRATE=$(find "$BUILD" -type f -name tg_migrate -perm -u+x | head -n 1)
[ -x "$BENCH" ] && [ -x "$MIGRATE" ] || die "ledger_bench or tg_migrate not built in $BUILD"

WORK=$(mktemp -d /tmp/ledger_bench.XXXXXX)
chmod 755 "$WORK"
PORT=""
cleanup() {
    kill_pg
    rm -rf "$WORK"
}
trap cleanup EXIT

pq() { psql -h 127.0.0.1 -p "$PORT" -U postgres -qAtX -v ON_ERROR_STOP=1 "$@"; }

prepare_db() {
    pq -d postgres -c "DROP DATABASE IF EXISTS ledger_bench" -c "CREATE DATABASE ledger_bench" >/dev/null
    DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/ledger_bench" "$MIGRATE" \
        --schema-dir "$ROOT/schema" >"$WORK/migrate.log" 2>&1 || die "migration failed: $(cat "$WORK/migrate.log")"
    pq -d ledger_bench -c "INSERT INTO model_prices (model, input_usd_per_mtok, cached_input_usd_per_mtok,
        output_usd_per_mtok, effective_from) VALUES ('gpt-4o-mini', 0.15, 0.075, 0.6, '2020-01-01')" >/dev/null
}

RESULTS=()
run() { # mode label, bench args...
    local mode=$1
    shift
    pq -d ledger_bench -c "TRUNCATE ledger" -c "CHECKPOINT" >/dev/null
    rm -rf "$WORK/spool"
    local line
    line=$("$BENCH" --conninfo "host=127.0.0.1 port=$PORT user=postgres dbname=ledger_bench" \
        --spool-dir "$WORK/spool" "$@" 2>>"$WORK/bench.log") || die "ledger_bench failed: $(tail -5 "$WORK/bench.log")"
    echo "$mode $line" >&2
    RESULTS+=("$mode $line")
}

for mode in $MODES; do
    case $mode in
    durable) start_pg -c max_connections=50 -c shared_buffers=128MB "" ;;
    fixture) start_pg -c max_connections=50 -c shared_buffers=128MB "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" ;;
    *) die "unknown mode $mode" ;;
    esac
    prepare_db
    for batch in 100 500 2000 5000; do
        run "$mode" --rows "$ROWS" --batch "$batch" --flush-ms 20 --max-queue $((batch * 3 + 2048))
    done
    for flush in 5 20 100; do
        run "$mode" --rows $((RATE * RATE_SECONDS)) --rate "$RATE" --batch 2000 --flush-ms "$flush"
    done
    run "$mode" --rows $((RATE * RATE_SECONDS)) --rate "$RATE" --batch 500 --flush-ms 20
    stop_pg
done

val() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
echo
echo "| PostgreSQL | offered rows/s | batch_max_rows | flush_interval_ms | committed rows/s | rows/commit | commit ms avg | commit ms max | append→commit p50 ms | p99 ms | max queue |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for r in "${RESULTS[@]}"; do
    mode=${r%% *}
    case $mode in
    durable) pg="fsync=on (default)" ;;
    fixture) pg="fsync=off (test fixture)" ;;
    esac
    echo "| $pg | $(val "$r" offered) | $(val "$r" batch) | $(val "$r" flush_ms) | $(val "$r" rows_per_s) | $(val "$r" rows_per_batch) | $(val "$r" commit_ms_avg) | $(val "$r" commit_ms_max) | $(val "$r" latency_ms_p50) | $(val "$r" latency_ms_p99) | $(val "$r" max_queue_depth) |"
done
echo
echo "rows per max-rate run: $ROWS; fixed-rate runs: $RATE rows/s for $RATE_SECONDS s; 2 producer threads;"
echo "append→commit = time from a run_after_flush probe (every 50 ms) until the rows appended before it are committed."
