#!/usr/bin/env bash
# ledger_serve_bench.sh: ledger rows/s into a local PostgreSQL while tollgate serves real
# requests (issue 6 item 6). wrk → tollgate (2 workers, quota checks in Redis on) → the fake
# upstream; tollgate's own ledger writer is the only writer. Everything runs on this machine:
# PostgreSQL 15 and redis-server are started privately (as tests/integration/services.sh does),
# so wrk, tollgate, the fake, Redis and PostgreSQL share its cores.
#
# Per configuration (LEDGER_BATCH_ROWS:LEDGER_FLUSH_MS) it reports: requests/s served (wrk,
# 2xx), ledger rows/s committed during the same window (tollgate_ledger_rows_committed_total),
# the check that the ledger holds exactly one row per request, the largest queue seen
# (tollgate_ledger_queue_rows sampled every 200 ms), append → commit latency of every row
# (PostgreSQL runs with track_commit_timestamp=on: pg_xact_commit_timestamp(xmin) minus
# finished_at, which tollgate sets just before it appends the row to its ring), wrk's request
# latency, the CPU time of tollgate, the fake, Redis and wrk, and the whole machine's busy time
# (PostgreSQL, the kernel's loopback networking and anything else running get the rest).
#
# SIDE_RATE=20000 also runs bench/ledger_bench.c's writer (a second ledger writer, 2 producer
# threads, into another database of the same PostgreSQL) at that many rows/s during the wrk
# window: the ledger's headroom while tollgate serves on the same cores.
#
#   bench/ledger_serve_bench.sh [BUILD_DIR]           (root: PostgreSQL runs via runuser)
#   DURATION=15 CONNS=64 CONFIGS="2000:20 2000:5 2000:100 500:20 100:20" MODES="durable fixture"
#   QUOTA_TOKENS=1000000000000 LOG_LEVEL=info SIDE_RATE=0 TOLLGATE_BIN=... FAKE_UPSTREAM_BIN=... LEDGER_BENCH_BIN=...
#   bench/ledger_serve_bench.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
DURATION=${DURATION:-15}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
CONFIGS=${CONFIGS:-"2000:20 2000:5 2000:100 500:20 100:20"}
MODES=${MODES:-durable}
QUOTA_TOKENS=${QUOTA_TOKENS:-1000000000000} # per user and month; -1 = unlimited (still counted in Redis)
LOG_LEVEL=${LOG_LEVEL:-info}
WORKERS=${WORKERS:-2}
USERS=${USERS:-200}
SIDE_RATE=${SIDE_RATE:-0}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
KEY=svc-bench-0123456789abcdef0123456789

BENCH_NAME=ledger_serve_bench.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root (PostgreSQL is started with runuser -u postgres)"
command -v wrk >/dev/null || die "wrk is not installed"
TOLLGATE_BIN=${TOLLGATE_BIN:-$BUILD/proxy/tollgate}
FAKE_UPSTREAM_BIN=${FAKE_UPSTREAM_BIN:-$BUILD/tests/fake_upstream/fake_upstream}
if [ ! -x "$TOLLGATE_BIN" ] || [ ! -x "$FAKE_UPSTREAM_BIN" ]; then
    cmake -S "$ROOT" -B "$BUILD" >/dev/null
    cmake --build "$BUILD" --target tollgate fake_upstream -j2 >/dev/null
fi
[ -x "$TOLLGATE_BIN" ] && [ -x "$FAKE_UPSTREAM_BIN" ] || die "tollgate or fake_upstream not built in $BUILD"
if [ "$SIDE_RATE" -gt 0 ]; then
    LEDGER_BENCH_BIN=${LEDGER_BENCH_BIN:-$(find "$BUILD" -type f -name ledger_bench -perm -u+x | head -n 1)}
    if [ ! -x "$LEDGER_BENCH_BIN" ]; then
        cmake --build "$BUILD" --target ledger_bench -j2 >/dev/null
        LEDGER_BENCH_BIN=$(find "$BUILD" -type f -name ledger_bench -perm -u+x | head -n 1)
    fi
    [ -x "$LEDGER_BENCH_BIN" ] || die "ledger_bench not built in $BUILD"
fi

WORK=$(mktemp -d /tmp/ledger_serve_bench.XXXXXX)
chmod 755 "$WORK"
PORT="" PIDS=() TG_PID=""
cleanup() {
    for pid in "${PIDS[@]}" $TG_PID; do kill -TERM "$pid" 2>/dev/null || true; done
    kill_pg
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

pq() { psql -h 127.0.0.1 -p "$PORT" -U postgres -qAtX -v ON_ERROR_STOP=1 -d "${DB:-ledger_bench}" "$@"; }

prepare_db() { # database name
    psql -h 127.0.0.1 -p "$PORT" -U postgres -qAtX -d postgres \
        -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
    DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/$1" TOLLGATE_SCHEMA_DIR="$ROOT/schema" \
        "$TOLLGATE_BIN" migrate >"$WORK/migrate.log" 2>&1 || die "migration failed: $(cat "$WORK/migrate.log")"
    DB=$1 pq -c "INSERT INTO model_prices (model, input_usd_per_mtok, cached_input_usd_per_mtok,
        output_usd_per_mtok, effective_from) VALUES ('gpt-4o-mini', 0.15, 0.075, 0.6, '2020-01-01Z')" >/dev/null
}

# Redis and the fake upstream: once.
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --dir "$WORK" --logfile "$WORK/redis.log" </dev/null >/dev/null 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
wait_until 10 "redis" redis-cli -p "$REDIS_PORT" ping
"$FAKE_UPSTREAM_BIN" --listen 127.0.0.1:0 --port-file "$WORK/fake.port" >"$WORK/fake.log" 2>&1 &
FAKE_PID=$!
PIDS+=("$FAKE_PID")
wait_until 10 "the fake upstream" test -s "$WORK/fake.port"
FAKE_URL="http://127.0.0.1:$(cat "$WORK/fake.port")"

cat >"$WORK/post.lua" <<EOF
-- one non-streamed chat request per call, spread over $USERS users
local n = 0
local body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one short sentence."}]}'
request = function()
    n = n + 1
    local headers = {}
    headers["Authorization"] = "Bearer $KEY"
    headers["Content-Type"] = "application/json"
    headers["X-Tollgate-User"] = "bench-user-" .. (n % $USERS)
    headers["x-fake-usage"] = "120,40,30,5"
    return wrk.format("POST", "/v1/chat/completions", headers, body)
end
EOF

cpu_ticks() { # pids... → utime + stime in clock ticks, summed
    local t=0 pid f
    for pid in "$@"; do
        f=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        f=${f##*) }
        set -- $f
        t=$((t + ${12} + ${13}))
    done
    echo "$t"
}
busy_ticks() { # CPU ticks of the whole machine outside idle and iowait (all cores)
    local _c u n sy _idle _io irq sirq st
    read -r _c u n sy _idle _io irq sirq st _ </proc/stat
    echo $((u + n + sy + irq + sirq + st))
}
metric() { curl -fsS "$TG_URL/metrics" | awk -v n="$1" '$1 == n {print $2; exit}'; }
HZ=$(getconf CLK_TCK)

RESULTS=()
run_config() { # mode batch flush
    local mode=$1 batch=$2 flush=$3
    pq -c "TRUNCATE ledger" -c "CHECKPOINT" >/dev/null
    rm -rf "$WORK/spool"
    local port
    port=$(free_port)
    TG_URL="http://127.0.0.1:$port"
    env -i PATH="$PATH" TOLLGATE_LISTEN="127.0.0.1:$port" TOLLGATE_WORKERS="$WORKERS" \
        DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/ledger_bench" \
        REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" REDIS_KEY_PREFIX="b$RANDOM:" UPSTREAM_URL="$FAKE_URL" \
        TOLLGATE_SERVICE_KEY="$KEY" LEDGER_SPOOL_DIR="$WORK/spool" LEDGER_BATCH_ROWS="$batch" \
        LEDGER_FLUSH_MS="$flush" LOG_LEVEL="$LOG_LEVEL" QUOTA_DEFAULT_TOKENS="$QUOTA_TOKENS" \
        "$TOLLGATE_BIN" >"$WORK/tollgate.log" 2>&1 &
    TG_PID=$!
    wait_until 20 "tollgate ($(tail -n 3 "$WORK/tollgate.log" 2>/dev/null))" curl -fsS -o /dev/null "$TG_URL/healthz"
    # warm-up: user records, quota periods, upstream connections
    wrk -t"$THREADS" -c"$CONNS" -d2s -s "$WORK/post.lua" "$TG_URL" >/dev/null
    wait_until 60 "the warm-up rows" sh -c "[ \"\$(curl -fsS $TG_URL/metrics | awk '\$1 == \"tollgate_ledger_queue_rows\" {print \$2}')\" = 0 ]"
    local warm_rows
    warm_rows=$(pq -c "SELECT count(*) FROM ledger")
    pq -c "TRUNCATE ledger" >/dev/null
    local c0 t0 cpu_tg0 cpu_fake0 cpu_all0 cpu_redis0
    c0=$(metric tollgate_ledger_rows_committed_total)
    cpu_tg0=$(cpu_ticks "$TG_PID") cpu_fake0=$(cpu_ticks "$FAKE_PID") cpu_redis0=$(cpu_ticks "$REDIS_PID")
    cpu_all0=$(busy_ticks)
    t0=$(date +%s%N)
    (while :; do curl -fsS "$TG_URL/metrics" 2>/dev/null | awk '$1 == "tollgate_ledger_queue_rows" {print $2}'; sleep 0.2; done) \
        >"$WORK/queue.samples" &
    local sampler=$!
    local side_pid=""
    if [ "$SIDE_RATE" -gt 0 ]; then
        DB=ledger_side pq -c "TRUNCATE ledger" >/dev/null
        rm -rf "$WORK/side-spool"
        (
            TIMEFORMAT='%R %U %S'
            time "$LEDGER_BENCH_BIN" --conninfo "host=127.0.0.1 port=$PORT user=postgres dbname=ledger_side" \
                --spool-dir "$WORK/side-spool" --rows $((SIDE_RATE * DURATION)) --rate "$SIDE_RATE" \
                --batch 2000 --flush-ms 20 --model gpt-4o-mini >"$WORK/side.out" 2>"$WORK/side.log"
        ) 2>"$WORK/side.time" &
        side_pid=$!
    fi
    local TIMEFORMAT='%R %U %S'
    { time wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$TG_URL" \
        >"$WORK/wrk.out"; } 2>"$WORK/wrk.time"
    local t1 c1
    t1=$(date +%s%N)
    c1=$(metric tollgate_ledger_rows_committed_total)
    local cpu_tg cpu_fake cpu_all cpu_redis
    cpu_tg=$(($(cpu_ticks "$TG_PID") - cpu_tg0)) cpu_fake=$(($(cpu_ticks "$FAKE_PID") - cpu_fake0))
    cpu_redis=$(($(cpu_ticks "$REDIS_PID") - cpu_redis0)) cpu_all=$(($(busy_ticks) - cpu_all0))
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    local side="-"
    if [ -n "$side_pid" ]; then
        wait "$side_pid" || die "ledger_bench failed: $(tail -3 "$WORK/side.log")"
        side=$(awk '{for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            printf "%s/%s/%s", v["rows_per_s"], v["latency_ms_p50"], v["latency_ms_p99"]}' "$WORK/side.out")
        side="$side/$(awk '{printf "%d", ($2 + $3) * 100 / $1}' "$WORK/side.time")"
    fi
    wait_until 120 "the ledger to drain" sh -c "[ \"\$(curl -fsS $TG_URL/metrics | awk '\$1 == \"tollgate_ledger_queue_rows\" {print \$2}')\" = 0 ]"
    local secs reqs non2xx rps rows_per_s rows lat
    secs=$(echo "scale=3; ($t1 - $t0) / 1000000000" | bc)
    reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.out")
    non2xx=${non2xx:-0}
    rps=$(echo "scale=0; ($reqs - $non2xx) / $secs" | bc)
    rows_per_s=$(echo "scale=0; ($c1 - $c0) / $secs" | bc)
    # rows: one per request. wrk counts the answers it read; the requests still in flight when
    # it stops (at most one per connection) have a row too (ok if tollgate had finished them,
    # client_aborted otherwise) without being counted by wrk.
    local aborted
    rows=$(pq -c "SELECT count(*) FROM ledger")
    aborted=$(pq -c "SELECT count(*) FROM ledger WHERE status <> 'ok'")
    lat=$(pq -F ' ' -c "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY d)::numeric, 1),
        round(percentile_cont(0.99) WITHIN GROUP (ORDER BY d)::numeric, 1), round(max(d)::numeric, 1)
        FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - finished_at) * 1000 AS d FROM ledger) s")
    local p50 p99 pmax
    read -r p50 p99 pmax <<<"$lat"
    local qmax wp50 wp99 wrk_cpu
    qmax=$(sort -n "$WORK/queue.samples" | tail -n 1)
    wp50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.out")
    wp99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")
    wrk_cpu=$(awk '{printf "%d", ($2 + $3) * 100 / $1}' "$WORK/wrk.time")
    pct() { echo "scale=0; $1 * 100 / $HZ / $secs" | bc; }
    local line
    line="mode=$mode batch=$batch flush_ms=$flush rps=$rps rows_per_s=$rows_per_s requests=$reqs non2xx=$non2xx rows=$rows aborted=$aborted p50=$p50 p99=$p99 max=$pmax qmax=$qmax wrk_p50=$wp50 wrk_p99=$wp99 cpu_tollgate=$(pct $cpu_tg) cpu_fake=$(pct $cpu_fake) cpu_all=$(pct $cpu_all) cpu_redis=$(pct $cpu_redis) cpu_wrk=$wrk_cpu side=$side warm_rows=$warm_rows"
    echo "$line" >&2
    [ "$rows" -ge "$reqs" ] && [ "$rows" -le $((reqs + CONNS)) ] ||
        echo "WARNING: $rows rows for $reqs answers + at most $CONNS in flight (non-2xx $non2xx)" >&2
    RESULTS+=("$line")
    kill -TERM "$TG_PID"
    wait "$TG_PID" || die "tollgate did not exit cleanly: $(tail -3 "$WORK/tollgate.log")"
    TG_PID=""
}

for mode in $MODES; do
    case $mode in
    durable) start_pg -c max_connections=100 -c shared_buffers=128MB -c track_commit_timestamp=on "" ;;
    fixture) start_pg -c max_connections=100 -c shared_buffers=128MB -c track_commit_timestamp=on "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" ;;
    *) die "unknown mode $mode" ;;
    esac
    prepare_db ledger_bench
    [ "$SIDE_RATE" -gt 0 ] && prepare_db ledger_side
    for c in $CONFIGS; do
        run_config "$mode" "${c%%:*}" "${c##*:}"
    done
    stop_pg
done

val() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
echo
echo "| PostgreSQL | LEDGER_BATCH_ROWS | LEDGER_FLUSH_MS | requests/s served | ledger rows/s committed | rows vs. answers | append→commit p50 ms | p99 ms | max ms | max queue | wrk p50 | wrk p99 | CPU % tollgate / fake / Redis / wrk / whole machine (of $(($(nproc) * 100))) | side writer rows/s / p50 ms / p99 ms / CPU % |"
echo "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
for r in "${RESULTS[@]}"; do
    case $(val "$r" mode) in
    durable) pg="fsync=on (default)" ;;
    fixture) pg="fsync=off, synchronous_commit=off" ;;
    esac
    same="$(val "$r" rows) rows / $(val "$r" requests) answers (+$(($(val "$r" rows) - $(val "$r" requests))) in flight at wrk's stop, $(val "$r" aborted) of them client_aborted)"
    [ "$(val "$r" rows)" -ge "$(val "$r" requests)" ] && [ "$(val "$r" rows)" -le $(($(val "$r" requests) + CONNS)) ] ||
        same="NO: $(val "$r" rows) rows / $(val "$r" requests) answers"
    echo "| $pg | $(val "$r" batch) | $(val "$r" flush_ms) | $(val "$r" rps) | $(val "$r" rows_per_s) | $same | $(val "$r" p50) | $(val "$r" p99) | $(val "$r" max) | $(val "$r" qmax) | $(val "$r" wrk_p50) | $(val "$r" wrk_p99) | $(val "$r" cpu_tollgate) / $(val "$r" cpu_fake) / $(val "$r" cpu_redis) / $(val "$r" cpu_wrk) / $(val "$r" cpu_all) | $(val "$r" side) |"
done
echo
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s, non-streamed chat completions, $USERS users, QUOTA_DEFAULT_TOKENS=$QUOTA_TOKENS, LOG_LEVEL=$LOG_LEVEL, TOLLGATE_WORKERS=$WORKERS, SIDE_RATE=$SIDE_RATE, $(nproc) cores."
