#!/usr/bin/env bash
# run.sh: tollgate's speed and memory benchmarks, against a plain nginx proxy_pass on the same
# machine to the same upstream (the fake LiteLLM). Starts everything it needs in a temporary
# directory on free loopback ports: PostgreSQL (initdb, default durability: fsync on), Redis,
# the fake upstream, nginx (worker_processes 1 and auto) and tollgate (TOLLGATE_WORKERS=1 and 2,
# HS256 JWTs signed here, quota and ledger on). Then:
#   (a) throughput: wrk at a few connection counts (closed loop): requests/s and latency
#   (b) latency at a fixed rate (open loop, bench/loadgen): direct, through nginx, through
#       tollgate; the p99 tollgate adds
#   (c) 1 000 concurrent streams through tollgate (bench/streams): peak RSS, cost per stream
#   (d) where the time goes: tollgate variants (service key, unmetered route, no Redis) and,
#       when perf works, a CPU profile of the proxy path
# Writes a markdown report to bench/results/ (git-ignored) and prints the headline figures.
#
#   bench/run.sh BUILD_DIR [full|quick|smoke|ab]       (as root: PostgreSQL runs via runuser)
#
# Modes: full (default, ~20 min), quick (~4 min, one repetition), smoke (~40 s, tiny
# parameters: proves the tools work; the figures mean nothing), ab (TOLLGATE_BIN against
# TOLLGATE_BIN_B: REPS alternating runs of the fully metered request, CPU µs per request of
# each; nothing else). Each tollgate instance writes its own database, and after (a) the
# metering check holds every instance's ledger rows against its own counters, exactly.
# Don't edit this file while it runs (bash reads it as it goes). Every setting below can be
# overridden from the environment, e.g. CONNS="32 128" REPS=5 bench/run.sh build.
# Binaries: TOLLGATE_BIN, FAKE_UPSTREAM_BIN, LOADGEN_BIN, STREAMS_BIN (default: BUILD_DIR's);
# NO_BUILD=1 skips `cmake --build`. RESULTS_DIR (default bench/results). KEEP=1 keeps the
# temporary directory (logs, configs).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
MODE=${2:-full}

case "$MODE" in
full)
    : "${CONNS:=16 64 256}" "${REPS:=3}" "${DURATION_S:=10}" "${WARMUP_S:=2}"
    : "${LAT_RATE:=1000}" "${LAT_DURATION_S:=12}" "${LAT_WARMUP_S:=3}" "${LAT_REPS:=5}"
    : "${STREAMS:=1000}" "${STREAM_CHUNKS:=200}" "${STREAM_DELAY_MS:=100}" "${SLOW_STREAMS:=1}"
    : "${ISO_CONNS:=64}" "${PERF:=auto}"
    ;;
quick)
    : "${CONNS:=64}" "${REPS:=1}" "${DURATION_S:=5}" "${WARMUP_S:=1}"
    : "${LAT_RATE:=1000}" "${LAT_DURATION_S:=10}" "${LAT_WARMUP_S:=2}" "${LAT_REPS:=1}"
    : "${STREAMS:=1000}" "${STREAM_CHUNKS:=50}" "${STREAM_DELAY_MS:=100}" "${SLOW_STREAMS:=0}"
    : "${ISO_CONNS:=64}" "${PERF:=0}"
    ;;
smoke)
    : "${CONNS:=4}" "${REPS:=1}" "${DURATION_S:=1}" "${WARMUP_S:=0}"
    : "${LAT_RATE:=100}" "${LAT_DURATION_S:=1}" "${LAT_WARMUP_S:=0.5}" "${LAT_REPS:=1}"
    : "${STREAMS:=10}" "${STREAM_CHUNKS:=5}" "${STREAM_DELAY_MS:=20}" "${SLOW_STREAMS:=1}"
    : "${SLOW_PAUSE_MS:=100}"
    : "${ISO_CONNS:=4}" "${PERF:=0}"
    ;;
ab)
    # A/B of two tollgate binaries (TOLLGATE_BIN = A, TOLLGATE_BIN_B = B), both one worker,
    # fully metered, same services: REPS alternating wrk runs of each; CPU µs per request
    : "${REPS:=5}" "${DURATION_S:=10}" "${WARMUP_S:=2}" "${ISO_CONNS:=64}" "${PERF:=0}"
    : "${CONNS:=$ISO_CONNS}" "${LAT_RATE:=1000}" "${LAT_DURATION_S:=1}" "${LAT_WARMUP_S:=0}"
    : "${LAT_REPS:=1}" "${STREAMS:=10}" "${STREAM_CHUNKS:=5}" "${STREAM_DELAY_MS:=20}"
    : "${SLOW_STREAMS:=0}"
    ;;
*)
    echo "usage: bench/run.sh BUILD_DIR [full|quick|smoke|ab]" >&2
    exit 2
    ;;
esac
: "${WRK_THREADS:=1}" "${LAT_CONNS:=32}" "${USERS:=100}"
# slow readers in (c): 1 KB events every SLOW_DELAY_MS, each client reads at most its small
# socket buffer (--rcvbuf 4096) every SLOW_PAUSE_MS, slower than the stream is produced
: "${SLOW_CHUNK_BYTES:=1000}" "${SLOW_DELAY_MS:=50}" "${SLOW_PAUSE_MS:=1000}"
: "${RESULTS_DIR:=$ROOT/bench/results}"
# tollgate's REDIS_TIMEOUT_MS: 200 ms by default, but on a busy shared machine Redis sometimes
# answers later than that, and tollgate then takes Redis for down (503s, counters rebuilt):
# that failure mode is not what the throughput figures are about
: "${BENCH_REDIS_TIMEOUT_MS:=2000}"
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

BENCH_NAME=run.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (PostgreSQL is started with runuser -u postgres)"
for tool in nginx wrk redis-server redis-cli openssl curl psql basenc; do
    command -v "$tool" >/dev/null || die "$tool is missing (make deps-bench installs nginx-light and wrk)"
done
[ -x "$PGBIN/initdb" ] || die "PostgreSQL binaries not found (PGBIN)"

if [ "${NO_BUILD:-0}" != 1 ]; then
    say "building tollgate, fake_upstream, loadgen, streams in $BUILD"
    cmake -S "$ROOT" -B "$BUILD" >/dev/null
    cmake --build "$BUILD" --target tollgate fake_upstream loadgen streams -j"$(nproc)" >/dev/null
fi
: "${TOLLGATE_BIN:=$BUILD/proxy/tollgate}"
: "${FAKE_UPSTREAM_BIN:=$BUILD/tests/fake_upstream/fake_upstream}"
: "${LOADGEN_BIN:=$BUILD/bench/loadgen}"
: "${STREAMS_BIN:=$BUILD/bench/streams}"
for b in "$TOLLGATE_BIN" "$FAKE_UPSTREAM_BIN" "$LOADGEN_BIN" "$STREAMS_BIN"; do
    [ -x "$b" ] || die "$b is not built (is add_subdirectory(bench) in CMakeLists.txt?)"
done

W=$(mktemp -d /tmp/tg-bench.XXXXXX)
BENCH_PORTS_FILE=$W/ports
chmod 755 "$W"
touch "$W/pids" "$W/tollgates"
mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
REPORT=$RESULTS_DIR/bench-$STAMP-$MODE.md
RAW=$RESULTS_DIR/bench-$STAMP-$MODE.log
: >"$RAW"

# ---- processes and clean-up ---------------------------------------------------------------

stop_everything() {
    local pid
    while read -r pid; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done <"$W/pids"
    while read -r pid; do
        [ -n "$pid" ] || continue
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null || true
    done <"$W/pids"
    if [ -d "$W/pg/data" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

cleanup() {
    local rc=$?
    [ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null || true
    stop_everything
    if [ "$rc" != 0 ]; then
        say "FAILED (exit $rc); logs in $W"
        for f in "$W"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $f (last 15 lines)" >&2
            tail -n 15 "$f" >&2
        done
    elif [ "${KEEP:-0}" = 1 ]; then
        say "kept $W"
    else
        rm -rf "$W"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A killed run (ctest time-out, SIGKILL) leaves nothing behind: the watchdog cleans up.
(
    trap '' HUP INT
    trap 'exit 0' TERM # cleanup() stops the watchdog first: it then keeps what it decided to keep
    while kill -0 $$ 2>/dev/null; do sleep 1; done
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$W/pids"
    [ -d "$W/pg/data" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate \
        -w stop >/dev/null 2>&1
    [ "${KEEP:-0}" = 1 ] || rm -rf "$W"
) </dev/null >/dev/null 2>&1 &
WATCHDOG=$!

track() { echo "$1" >>"$W/pids"; }

load_avg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- services -------------------------------------------------------------------------------

start_bench_pg() { # PostgreSQL's defaults (fsync, synchronous_commit, full_page_writes on)
    WORK=$W start_pg
    PGPORT=$PORT
}

start_redis() {
    local attempt
    for attempt in 1 2 3 4 5; do
        REDIS_PORT=$(free_port)
        # Redis's own defaults (RDB snapshots on, no AOF), data in the temp dir.
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$W" --daemonize no \
            --logfile "$W/redis.log" </dev/null >/dev/null 2>&1 &
        REDIS_PID=$!
        track "$REDIS_PID"
        for _ in $(seq 1 100); do
            redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.05
        done
    done
    die "redis-server did not start"
}

start_fake() {
    "$FAKE_UPSTREAM_BIN" --listen 127.0.0.1:0 --port-file "$W/fake.port" >"$W/fake.log" 2>&1 &
    FAKE_PID=$!
    track "$FAKE_PID"
    wait_until 10 "fake upstream" test -s "$W/fake.port"
    FAKE_PORT=$(cat "$W/fake.port")
    FAKE_URL="http://127.0.0.1:$FAKE_PORT"
    wait_until 10 "fake upstream" curl -fsS -o /dev/null "$FAKE_URL/health/liveliness"
}

start_nginx() { # NAME WORKER_PROCESSES: sets NGX_PORT_<NAME>, NGX_WORKER_<NAME> (a worker pid)
    local name=$1 workers=$2 port d
    port=$(free_port)
    d=$W/nginx-$name
    mkdir -p "$d/tmp"
    cat >"$d/nginx.conf" <<EOF
# minimal reverse proxy: proxy_pass to the fake upstream over keep-alive connections
worker_processes $workers;
worker_rlimit_nofile 65536;
user root;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 16384; }
http {
    access_log $d/access.log;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    keepalive_requests 1000000;
    # chat bodies carry whole conversations: keep them in memory (the default 16k sends
    # larger ones through a temporary file, which costs nginx ~40 ms a request here)
    client_body_buffer_size 1m;
    upstream fake {
        server 127.0.0.1:$FAKE_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / {
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf" -g 'daemon off;' >"$d/stdout.log" 2>&1 &
    local pid=$!
    track "$pid"
    wait_until 10 "nginx $name" curl -fsS -o /dev/null "http://127.0.0.1:$port/health/liveliness"
    printf -v "NGX_PORT_$name" '%s' "$port"
    printf -v "NGX_PID_$name" '%s' "$pid"
}

# the first worker process of an nginx master
nginx_worker_pid() { pgrep -o -P "$1"; }

# Every tollgate instance writes its ledger into its own database (tg_<NAME>, a copy of the
# migrated template), so that the metering check can hold each instance's rows against that
# instance's own counters: exact, whatever the other instances (warm-ups, variants) did.
start_tollgate() { # NAME WORKERS [VAR=VALUE...]: sets TG_PORT_<NAME>, TG_PID_<NAME>, TG_DB_<NAME>
    local name=$1 workers=$2 port pid db
    shift 2
    port=$(free_port)
    mkdir -p "$W/spool-$name"
    db="postgresql://postgres@127.0.0.1:$PGPORT/tg_$name"
    psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qAt -c "CREATE DATABASE tg_$name TEMPLATE tollgate" \
        >/dev/null || die "cannot create the database of tollgate $name"
    env -i PATH="$PATH" HOME="${HOME:-/root}" \
        TOLLGATE_LISTEN="127.0.0.1:$port" \
        TOLLGATE_WORKERS="$workers" \
        DATABASE_URL="$db" \
        REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
        REDIS_KEY_PREFIX="tgbench:" \
        UPSTREAM_URL="$FAKE_URL" \
        JWT_SECRET="$JWT_SECRET" \
        TOLLGATE_SERVICE_KEY="$SERVICE_KEY" \
        QUOTA_DEFAULT_TOKENS=1000000000000 \
        REDIS_TIMEOUT_MS="$BENCH_REDIS_TIMEOUT_MS" \
        LEDGER_SPOOL_DIR="$W/spool-$name" \
        LOG_LEVEL=info \
        "$@" \
        "${TG_BIN:-$TOLLGATE_BIN}" >>"$W/tg-$name.log" 2>&1 &
    pid=$!
    track "$pid"
    local deadline=$(($(date +%s) + 30))
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || die "tollgate $name exited: $(tail -n 5 "$W/tg-$name.log")"
        [ "$(date +%s)" -lt "$deadline" ] || die "tollgate $name did not come up"
        sleep 0.05
    done
    printf -v "TG_PORT_$name" '%s' "$port"
    printf -v "TG_PID_$name" '%s' "$pid"
    printf -v "TG_DB_$name" '%s' "$db"
    echo "$name $pid" >>"$W/tollgates"
}

stop_pid() { # PID: SIGTERM and wait
    sed -i "/ $1\$/d" "$W/tollgates"
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
    kill -KILL "$1" 2>/dev/null || true
}

# ---- credentials and requests ----------------------------------------------------------------

b64url() { basenc --base64url -w0 | tr -d '='; }

jwt_hs256() { # SUB: a token valid for two days
    local h p s exp
    exp=$(($(date +%s) + 172800))
    h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
    p=$(printf '{"sub":"%s","exp":%d}' "$1" "$exp" | b64url)
    s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -mac HMAC -macopt "key:$JWT_SECRET" -binary | b64url)
    printf '%s.%s.%s' "$h" "$p" "$s"
}

make_requests() {
    JWT_SECRET=$(openssl rand -hex 32)
    SERVICE_KEY=svc-$(openssl rand -hex 16)
    : >"$W/auth-all.txt"
    local i
    for i in $(seq 1 "$USERS"); do
        echo "Authorization: Bearer $(jwt_hs256 "bench-user-$i")" >>"$W/auth-all.txt"
    done
    head -n 1 "$W/auth-all.txt" >"$W/auth-one.txt"
    printf 'Authorization: Bearer %s\nX-Tollgate-User: bench-svc-user\n' "$SERVICE_KEY" \
        >"$W/auth-service.txt"
    # a small non-streamed chat request; the fake answers ~0.5 KB of JSON with usage
    printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello to the benchmark in five words."}],"max_tokens":16}' \
        >"$W/chat.json"
    printf '%s' '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Write a long story about a lighthouse keeper."}]}' \
        >"$W/chat-stream.json"
    # what LibreChat sends after a few turns: the whole conversation (~16 KB of English prose)
    awk 'BEGIN {
        split("the keeper climbed stairs every evening to light lamp that guided ships past rocks while storm gathered over grey sea and gulls cried above harbour where fishermen mended nets talking about weather prices news from town", w, " ")
        n = length(w); seed = 7
        printf "{\"model\":\"gpt-4o-mini\",\"max_tokens\":256,\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful assistant. Answer in plain English.\"}"
        for (t = 0; t < 10; t++) {
            printf ",{\"role\":\"%s\",\"content\":\"", (t % 2) ? "assistant" : "user"
            for (i = 0; i < 260; i++) { seed = (seed * 1103515245 + 12345) % 2147483648; printf "%s%s", w[1 + seed % n], (i % 17 == 16) ? ". " : " " }
            printf "\"}"
        }
        printf "]}"
    }' >"$W/chat-16k.json"
}

# RESULT-line field
kv() { awk -v k="$2" '{for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) {print substr($i, length(k) + 2); exit}}' <<<"$1"; }

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR==0) print ""; else if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }

us_ms() { awk -v u="$1" 'BEGIN {printf "%.2f", u/1000}'; }

# Between runs the request logs are emptied (they grow by ~0.5 KB a request); the last lines
# of each are kept in *.prev for a post-mortem.
truncate_logs() {
    local f
    for f in "$W"/tg-*.log "$W"/nginx-*/access.log; do
        [ -f "$f" ] || continue
        tail -n 50 "$f" >"$f.prev"
        : >"$f"
    done
    return 0
}

# every tollgate still runs (a crash under load is a finding: stop and show it)
check_alive() {
    local pid name
    while read -r name pid; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "---- $W/tg-$name.log (not request lines)" >&2
            cat "$W/tg-$name.log.prev" "$W/tg-$name.log" 2>/dev/null | grep -v '"msg":"request"' | tail -n 20 >&2
            die "tollgate $name (pid $pid) died during the benchmark"
        fi
    done <"$W/tollgates"
}

# wrk_run URL CONNS SECONDS HEADERS [BODY_FILE|-] [METHOD]: prints the RESULT line. HEADERS is a
# file of header lines sent with every request, or rotate:FILE (one line per request in turn).
wrk_run() {
    local url=$1 conns=$2 secs=$3 hfile=$4 body=${5:--} method=${6:-POST} rfile="" out
    [ "$body" = - ] && body=""
    if [[ "$hfile" == rotate:* ]]; then
        rfile=${hfile#rotate:}
        hfile=""
    fi
    out=$(WRK_METHOD=$method WRK_BODY_FILE=$body WRK_HEADER_FILE=$hfile WRK_ROTATE_FILE=$rfile \
        wrk -t"$WRK_THREADS" -c"$conns" -d"${secs}s" --timeout 10s -s "$ROOT/bench/wrk_post.lua" \
        "$url" 2>&1) || { echo "$out" >>"$RAW"; die "wrk failed against $url"; }
    { echo "== wrk $url c=$conns ${secs}s"; echo "$out"; } >>"$RAW"
    check_alive
    grep '^RESULT' <<<"$out" | tail -n 1
}

# ---- start ------------------------------------------------------------------------------------

say "mode $MODE; work dir $W; report $REPORT"
LOAD_START=$(load_avg)
start_bench_pg
psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qAt -c "CREATE DATABASE tollgate" >/dev/null
DB_URL="postgresql://postgres@127.0.0.1:$PGPORT/tollgate"
DATABASE_URL=$DB_URL "$TOLLGATE_BIN" migrate >"$W/migrate.log" 2>&1 || die "migrations failed"
start_redis
start_fake
make_requests
start_nginx w1 1
start_nginx auto auto
start_tollgate w1 1
start_tollgate w2 2
# for (b) and (d): the same without Redis (unreachable, fail-open: no reserve/settle) and
# without the request log line
DEAD_REDIS_PORT=$(free_port)
start_tollgate nored 1 REDIS_URL="redis://127.0.0.1:$DEAD_REDIS_PORT/0" QUOTA_FAIL_MODE=open
start_tollgate nolog 1 LOG_LEVEL=warn
say "PostgreSQL :$PGPORT, Redis :$REDIS_PORT, fake :$FAKE_PORT, nginx :$NGX_PORT_w1 (1 worker) :$NGX_PORT_auto (auto), tollgate :$TG_PORT_w1 (1 worker) :$TG_PORT_w2 (2 workers)"

CHAT=/v1/chat/completions
declare -A URL=(
    [direct]="$FAKE_URL$CHAT"
    [nginx-w1]="http://127.0.0.1:$NGX_PORT_w1$CHAT"
    [nginx-auto]="http://127.0.0.1:$NGX_PORT_auto$CHAT"
    [tollgate-w1]="http://127.0.0.1:$TG_PORT_w1$CHAT"
    [tollgate-w2]="http://127.0.0.1:$TG_PORT_w2$CHAT"
    [tollgate-w1-no-redis]="http://127.0.0.1:$TG_PORT_nored$CHAT"
)
TARGETS="direct nginx-w1 nginx-auto tollgate-w1 tollgate-w2"

# every target answers the benchmark request with 200 before anything is measured
for t in $TARGETS; do
    code=$(curl -s -o "$W/check-$t.json" -w '%{http_code}' -H @"$W/auth-one.txt" \
        -H 'Content-Type: application/json' --data-binary @"$W/chat.json" "${URL[$t]}")
    [ "$code" = 200 ] || die "$t answered $code: $(head -c 300 "$W/check-$t.json")"
done
grep -qi '^x-quota-state' <(curl -s -D - -o /dev/null -H @"$W/auth-one.txt" \
    -H 'Content-Type: application/json' --data-binary @"$W/chat.json" "${URL[tollgate-w1]}") ||
    die "tollgate's reply has no quota headers: is the quota on?"

# warm every user into the caches and the quota counters (first sight goes to PostgreSQL)
"$LOADGEN_BIN" --url "${URL[tollgate-w1]}" --rate 200 --duration 1 --warmup 0 --connections 8 \
    --body-file "$W/chat.json" --header-file "$W/auth-all.txt" >>"$RAW" 2>&1 ||
    die "warm-up through tollgate-w1 failed (see $RAW)"
for port in "$TG_PORT_w2" "$TG_PORT_nored" "$TG_PORT_nolog"; do
    "$LOADGEN_BIN" --url "http://127.0.0.1:$port$CHAT" --rate 200 --duration 1 --warmup 0 \
        --connections 8 --body-file "$W/chat.json" --header-file "$W/auth-all.txt" >>"$RAW" 2>&1 ||
        die "warm-up through tollgate on port $port failed (see $RAW)"
done

{
    echo "# tollgate benchmarks — $(date -u +%Y-%m-%dT%H:%M:%SZ) ($MODE)"
    echo
    echo "- machine: $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); kernel $(uname -r)"
    echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)'); build: $BUILD ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null))"
    echo "- load average (1/5/15 min) at start: $LOAD_START"
    echo "- everything on this machine over loopback: wrk/loadgen, nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), tollgate, the fake upstream (one thread), Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') (fsync on)"
    echo "- request: POST /v1/chat/completions, $(wc -c <"$W/chat.json") B JSON body, non-streamed reply ($(wc -c <"$W/check-direct.json") B) with usage; tollgate: HS256 JWT, quota reserve + settle in Redis, ledger row to PostgreSQL, one JSON log line, all on; REDIS_TIMEOUT_MS=$BENCH_REDIS_TIMEOUT_MS (default 200: see docs/benchmarks.md)"
    echo
} >"$REPORT"

# ---- A/B of two binaries (mode ab) ------------------------------------------------------------

cpu_ticks() { # PID...: user + system clock ticks, summed
    local p s=0 t
    for p in "$@"; do
        t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
        s=$((s + t))
    done
    echo "$s"
}
pg_pids() { # this run's PostgreSQL: the postmaster and its children (not other clusters)
    local pm
    pm=$(head -n 1 "$W/pg/data/postmaster.pid" 2>/dev/null) || return 0
    echo "$pm $(pgrep -d ' ' -P "$pm" 2>/dev/null || true)"
}
# PostgreSQL's processes come and go (backends, autovacuum workers): its CPU over a run is the
# growth of the processes alive at the end (a process that exited meanwhile takes its ticks
# with it; one that started counts whole), never a difference of two different sets
pg_snapshot() { # prints "pid ticks" per PostgreSQL process
    local p
    for p in $(pg_pids); do
        awk -v p="$p" '{print p, $14 + $15}' "/proc/$p/stat" 2>/dev/null || true
    done
}
pg_delta() { # SNAPSHOT_BEFORE SNAPSHOT_AFTER: ticks
    awk 'NR == FNR {t0[$1] = $2; next} {d += $2 - (($1 in t0) ? t0[$1] : 0)} END {print d + 0}' \
        <(printf '%s\n' "$1") <(printf '%s\n' "$2")
}
HZ=$(getconf CLK_TCK)
per_req() { awk -v d="$1" -v n="$2" -v hz="$HZ" 'BEGIN {printf "%.1f", (n > 0) ? d/hz/n*1e6 : 0}'; }

if [ "$MODE" = ab ]; then
    [ -x "${TOLLGATE_BIN_B:-}" ] || die "mode ab needs TOLLGATE_BIN_B (the binary to compare with TOLLGATE_BIN)"
    TG_BIN=$TOLLGATE_BIN_B start_tollgate b 1
    "$LOADGEN_BIN" --url "http://127.0.0.1:$TG_PORT_b$CHAT" --rate 200 --duration 1 --warmup 0 \
        --connections 8 --body-file "$W/chat.json" --header-file "$W/auth-all.txt" >>"$RAW" 2>&1 ||
        die "warm-up of tollgate b failed"
    say "A/B: A = $TOLLGATE_BIN, B = $TOLLGATE_BIN_B; $REPS × ${DURATION_S}s each, wrk -c$ISO_CONNS, alternating"
    declare -A AB_CPU AB_RPS AB_RED AB_PG
    for side in a b; do
        [ "$WARMUP_S" = 0 ] && continue
        port=$TG_PORT_w1
        [ "$side" = b ] && port=$TG_PORT_b
        wrk_run "http://127.0.0.1:$port$CHAT" "$ISO_CONNS" "$WARMUP_S" "rotate:$W/auth-all.txt" "$W/chat.json" >/dev/null
    done
    for r in $(seq 1 "$REPS"); do
        for side in a b; do
            pid=$TG_PID_w1 port=$TG_PORT_w1
            [ "$side" = b ] && pid=$TG_PID_b port=$TG_PORT_b
            truncate_logs
            # shellcheck disable=SC2046
            p0=$(cpu_ticks "$pid") r0=$(cpu_ticks "$REDIS_PID") g0=$(pg_snapshot)
            res=$(wrk_run "http://127.0.0.1:$port$CHAT" "$ISO_CONNS" "$DURATION_S" "rotate:$W/auth-all.txt" "$W/chat.json")
            # shellcheck disable=SC2046
            p1=$(cpu_ticks "$pid") r1=$(cpu_ticks "$REDIS_PID") g1=$(pg_snapshot)
            n=$(kv "$res" requests)
            AB_CPU[$side]+="$(per_req $((p1 - p0)) "$n") "
            AB_RED[$side]+="$(per_req $((r1 - r0)) "$n") "
            AB_PG[$side]+="$(per_req "$(pg_delta "$g0" "$g1")" "$n") "
            AB_RPS[$side]+="$(kv "$res" rps) "
            say "  $side run $r: $(kv "$res" rps) req/s, $(per_req $((p1 - p0)) "$n") us CPU/request (load $(load_avg))"
        done
    done
    # shellcheck disable=SC2086
    {
        echo "## A/B: CPU per fully metered request (1 worker)"
        echo
        echo "A = \`$TOLLGATE_BIN\`, B = \`$TOLLGATE_BIN_B\`; \`wrk -t$WRK_THREADS -c$ISO_CONNS -d${DURATION_S}s\`, $REPS runs each, alternating A, B; medians. Load average at start $LOAD_START, at end $(load_avg)."
        echo
        echo "| binary | proxy CPU µs/req (median) | runs | req/s (median) | Redis µs/req | PostgreSQL µs/req |"
        echo "| --- | ---: | --- | ---: | ---: | ---: |"
        for side in a b; do
            printf '| %s | %s | %s | %.0f | %s | %s |\n' "$side" "$(median ${AB_CPU[$side]})" "${AB_CPU[$side]% }" \
                "$(median ${AB_RPS[$side]})" "$(median ${AB_RED[$side]})" "$(median ${AB_PG[$side]})"
        done
        echo
    } >>"$REPORT"
    cp "$REPORT" "$RESULTS_DIR/latest-$MODE.md"
    sed -n '/^## A\/B/,$p' "$REPORT"
    exit 0
fi

# ---- (a) throughput -------------------------------------------------------------------------

say "(a) throughput: wrk -t$WRK_THREADS, connections $CONNS, $REPS × ${DURATION_S}s per target"
LOAD_A=$(load_avg)
declare -A RPS P50 P99 ERRS
for c in $CONNS; do
    for t in $TARGETS; do
        # warm the connection pools at this concurrency
        if [ "$WARMUP_S" != 0 ]; then
            wrk_run "${URL[$t]}" "$c" "$WARMUP_S" "rotate:$W/auth-all.txt" "$W/chat.json" >/dev/null
        fi
    done
    for r in $(seq 1 "$REPS"); do
        for t in $TARGETS; do
            truncate_logs
            res=$(wrk_run "${URL[$t]}" "$c" "$DURATION_S" "rotate:$W/auth-all.txt" "$W/chat.json")
            RPS[$t,$c]+="$(kv "$res" rps) "
            P50[$t,$c]+="$(kv "$res" p50_us) "
            P99[$t,$c]+="$(kv "$res" p99_us) "
            e=$(($(kv "$res" errors_connect) + $(kv "$res" errors_read) + $(kv "$res" errors_write) + $(kv "$res" errors_status) + $(kv "$res" errors_timeout)))
            ERRS[$t,$c]=$((${ERRS[$t,$c]:-0} + e))
            say "  $t c=$c run $r: $(kv "$res" rps) req/s, p50 $(kv "$res" p50_us) us, p99 $(kv "$res" p99_us) us, errors $e"
        done
    done
done
LOAD_A_END=$(load_avg)

declare -A MED
{
    echo "## (a) Throughput (wrk, closed loop)"
    echo
    echo "\`wrk -t$WRK_THREADS -cN -d${DURATION_S}s -s bench/wrk_post.lua\` (the requests carry the JWTs of $USERS users in turn), $REPS run(s) per cell, targets interleaved; median req/s (all runs), wrk's latency percentiles (medians). Load average: $LOAD_A at start, $LOAD_A_END at end."
    echo
    echo "| target | connections | req/s (median) | runs | p50 ms | p99 ms | errors | × nginx-w1 |"
    echo "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"
    for c in $CONNS; do
        for t in $TARGETS; do
            # shellcheck disable=SC2086
            MED[$t,$c]=$(median ${RPS[$t,$c]})
        done
        for t in $TARGETS; do
            # shellcheck disable=SC2086
            ratio=$(awk -v a="${MED[$t,$c]}" -v b="${MED[nginx-w1,$c]}" 'BEGIN {printf "%.2f", a/b}')
            # shellcheck disable=SC2086
            printf '| %s | %s | %.0f | %s | %s | %s | %s | %s |\n' "$t" "$c" "${MED[$t,$c]}" \
                "$(printf '%.0f ' ${RPS[$t,$c]} | sed 's/ $//')" "$(us_ms "$(median ${P50[$t,$c]})")" \
                "$(us_ms "$(median ${P99[$t,$c]})")" "${ERRS[$t,$c]}" "$ratio"
        done
    done
    echo
} >>"$REPORT"

# best figure over the connection counts
best() { local t=$1 b=0 c; for c in $CONNS; do b=$(awk -v a="${MED[$t,$c]}" -v b="$b" 'BEGIN {print (a>b)?a:b}'); done; echo "$b"; }
BEST_TG1=$(best tollgate-w1)
BEST_NG1=$(best nginx-w1)
THR_RATIO=$(awk -v a="$BEST_TG1" -v b="$BEST_NG1" 'BEGIN {printf "%.2f", a/b}')
MIN_RATIO=$(for c in $CONNS; do awk -v a="${MED[tollgate-w1,$c]}" -v b="${MED[nginx-w1,$c]}" 'BEGIN {printf "%.2f\n", a/b}'; done | sort -g | sed -n 1p)

# The ledger really took one row per metered request, per instance (each has its own database):
# once the instance is idle (no client connection but ours, its ledger queue and spool empty,
# two snapshots of its counters alike), the rows in its database must be exactly the metered
# requests it finished (tollgate_count_source_total: every metered request, answered, refused
# or cut off by the client), exactly the rows its writer committed, with no request id twice.
# "ok" rows and 2xx replies are shown, not compared: a request wrk leaves in flight when it
# stops is billed as client_aborted whatever its reply's status was.
metric_sum() { # METRICS_TEXT REGEX: sum of the values of the matching series
    awk -v re="$2" '$0 ~ re {s += $NF} END {printf "%.0f\n", s + 0}' <<<"$1"
}
metering_check() { # NAME...: appends one line per instance to the report; sets METER_OK=0 on a mismatch
    local name port_var db_var m prev="" snap deadline rows distinct okrows aborted metered
    local committed chat2xx chatall unavail
    for name in "$@"; do
        port_var=TG_PORT_$name db_var=TG_DB_$name
        deadline=$(($(date +%s) + 60))
        while :; do
            m=$(curl -s "http://127.0.0.1:${!port_var}/metrics")
            snap=$(awk '/^tollgate_(ledger_queue_rows|ledger_spool_files|ledger_rows_committed_total|count_source_total|open_connections|active_streams)/' <<<"$m")
            if [ "$snap" = "$prev" ] && [ "$(metric_sum "$m" '^tollgate_ledger_queue_rows ')" = 0 ] &&
                [ "$(metric_sum "$m" '^tollgate_ledger_spool_files ')" = 0 ] &&
                [ "$(metric_sum "$m" '^tollgate_active_streams ')" = 0 ] &&
                [ "$(metric_sum "$m" '^tollgate_open_connections ')" -le 1 ]; then
                break
            fi
            [ "$(date +%s)" -lt "$deadline" ] || { say "tollgate $name did not settle: $snap"; break; }
            prev=$snap
            sleep 0.1
        done
        metered=$(metric_sum "$m" '^tollgate_count_source_total\{')
        committed=$(metric_sum "$m" '^tollgate_ledger_rows_committed_total ')
        chat2xx=$(metric_sum "$m" '^tollgate_requests_total\{route="/v1/chat/completions",code="2xx"\}')
        chatall=$(metric_sum "$m" '^tollgate_requests_total\{route="/v1/chat/completions",')
        unavail=$(metric_sum "$m" '^tollgate_quota_unavailable_total ')
        IFS='|' read -r rows distinct okrows aborted < <(psql "${!db_var}" -qAt -c \
            "SELECT count(*), count(DISTINCT request_id), count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status = 'client_aborted') FROM ledger")
        local verdict=exact
        if [ "$rows" != "$metered" ] || [ "$rows" != "$committed" ] || [ "$rows" != "$distinct" ] ||
            [ "$metered" = 0 ]; then
            verdict=MISMATCH
            METER_OK=0
        fi
        METER_REQS=$((METER_REQS + metered))
        METER_ROWS=$((METER_ROWS + rows))
        echo "- Metering check tollgate-$name: metered=$metered rows=$rows distinct_ids=$distinct committed=$committed: $verdict (chat replies: $chatall, $chat2xx with 2xx; rows ok=$okrows client_aborted=$aborted; refused for want of Redis: $unavail)"
    done
}
METER_OK=1 METER_REQS=0 METER_ROWS=0
{
    echo "Metering check, per instance (each writes its own database; PostgreSQL with fsync on): \`metered\` = the instance's tollgate_count_source_total (every metered request it finished), \`rows\` and \`distinct_ids\` = its ledger table, \`committed\` = its tollgate_ledger_rows_committed_total, read once the instance is idle and its ledger queue and spool are empty. All four must be equal."
    echo
    metering_check w1 w2 nored nolog
    echo
    echo "Metering check: tollgate finished $METER_REQS metered requests; the ledgers hold $METER_ROWS rows: $([ "$METER_OK" = 1 ] && echo exact || echo MISMATCH)."
    echo
} >>"$REPORT"
[ "$METER_OK" = 1 ] || say "METERING MISMATCH: see the report"

# ---- (b) latency at a fixed rate ----------------------------------------------------------------

say "(b) latency: loadgen at $LAT_RATE req/s, $LAT_CONNS connections, ${LAT_DURATION_S}s (+${LAT_WARMUP_S}s warm-up), $LAT_REPS run(s)"
LAT_TARGETS="direct nginx-w1 tollgate-w1 tollgate-w2 tollgate-w1-no-redis"
LOAD_B=$(load_avg)
declare -A LP50 LP90 LP99 LP999 LMAX LOK LERR OVER1 OVERN
declare -A TG_PORT_OF=([tollgate-w1]=$TG_PORT_w1 [tollgate-w2]=$TG_PORT_w2 [tollgate-w1-no-redis]=$TG_PORT_nored)
# tollgate's own histogram of arrival -> forwarded upstream (auth, body, reservation): requests
# at most 1 ms, and all
overhead_counts() {
    curl -s "http://127.0.0.1:$1/metrics" |
        awk '/^tollgate_overhead_seconds_bucket\{le="0.001"\}/ {a=$2} /^tollgate_overhead_seconds_count/ {n=$2} END {print a+0, n+0}'
}
for r in $(seq 1 "$LAT_REPS"); do
    for t in $LAT_TARGETS; do
        truncate_logs
        if [ -n "${TG_PORT_OF[$t]:-}" ]; then read -r o1a ona < <(overhead_counts "${TG_PORT_OF[$t]}"); fi
        out=$("$LOADGEN_BIN" --url "${URL[$t]}" --rate "$LAT_RATE" --duration "$LAT_DURATION_S" \
            --warmup "$LAT_WARMUP_S" --connections "$LAT_CONNS" --body-file "$W/chat.json" \
            --header-file "$W/auth-all.txt" 2>&1) || true
        { echo "== loadgen $t run $r"; echo "$out"; } >>"$RAW"
        check_alive
        res=$(grep '^RESULT' <<<"$out" | tail -n 1)
        [ -n "$res" ] || die "loadgen against $t printed no result: $out"
        LP50[$t]+="$(kv "$res" p50_us) "
        LP90[$t]+="$(kv "$res" p90_us) "
        LP99[$t]+="$(kv "$res" p99_us) "
        LP999[$t]+="$(kv "$res" p999_us) "
        LMAX[$t]+="$(kv "$res" max_us) "
        LOK[$t]=$((${LOK[$t]:-0} + $(kv "$res" ok)))
        LERR[$t]=$((${LERR[$t]:-0} + $(kv "$res" errors) + $(kv "$res" bad_status) + $(kv "$res" unanswered)))
        if [ -n "${TG_PORT_OF[$t]:-}" ]; then
            read -r o1b onb < <(overhead_counts "${TG_PORT_OF[$t]}")
            OVER1[$t]=$((${OVER1[$t]:-0} + (onb - ona) - (o1b - o1a)))
            OVERN[$t]=$((${OVERN[$t]:-0} + onb - ona))
        fi
        say "  $t run $r: p50 $(kv "$res" p50_us) us, p99 $(kv "$res" p99_us) us, p99.9 $(kv "$res" p999_us) us, max $(kv "$res" max_us) us"
    done
done
LOAD_B_END=$(load_avg)
# shellcheck disable=SC2086
{
    L99_DIRECT=$(median ${LP99[direct]})
    L99_NGX=$(median ${LP99[nginx-w1]})
    L99_TG1=$(median ${LP99[tollgate-w1]})
    ADD_DIRECT=$(awk -v a="$L99_TG1" -v b="$L99_DIRECT" 'BEGIN {printf "%.0f", a-b}')
    ADD_NGX=$(awk -v a="$L99_TG1" -v b="$L99_NGX" 'BEGIN {printf "%.0f", a-b}')
    echo "## (b) Latency at $LAT_RATE req/s (open loop)"
    echo
    echo "\`bench/loadgen --rate $LAT_RATE --connections $LAT_CONNS --duration $LAT_DURATION_S --warmup $LAT_WARMUP_S\` (each request timed from the moment it was due; $USERS users' JWTs in turn), $LAT_REPS run(s) per target, medians of the runs' percentiles, in microseconds. Load average: $LOAD_B at start, $LOAD_B_END at end."
    echo
    echo "| target | p50 | p90 | p99 | p99.9 | max | requests | errors | p99 added vs direct | tollgate's own part > 1 ms |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for t in $LAT_TARGETS; do
        own="—"
        if [ -n "${OVERN[$t]:-}" ] && [ "${OVERN[$t]}" -gt 0 ]; then
            own=$(awk -v a="${OVER1[$t]}" -v n="${OVERN[$t]}" 'BEGIN {printf "%.2f %%", 100*a/n}')
        fi
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$(median ${LP50[$t]})" \
            "$(median ${LP90[$t]})" "$(median ${LP99[$t]})" "$(median ${LP999[$t]})" \
            "$(median ${LMAX[$t]})" "${LOK[$t]}" "${LERR[$t]}" \
            "$(awk -v a="$(median ${LP99[$t]})" -v b="$L99_DIRECT" 'BEGIN {printf "%+.0f", a-b}')" "$own"
    done
    echo
    echo "The last column is tollgate's own \`tollgate_overhead_seconds\` histogram (request head in → request written upstream: authentication, body inspection, prompt count, the Redis reservation), share of the requests above 1 ms."

    echo
    echo "p99 runs (µs): $(for t in $LAT_TARGETS; do printf '%s: %s; ' "$t" "${LP99[$t]% }"; done)"
    echo
} >>"$REPORT"

# ---- (c) concurrent streams -----------------------------------------------------------------------

stream_run() { # NAME PID URL EXTRA_STREAMS_ARGS...: prints the RESULT line
    local name=$1 pid=$2 url=$3 out
    shift 3
    out=$("$STREAMS_BIN" --url "$url" --streams "$STREAMS" --pid "$pid" --sample-ms 50 \
        --samples-file "$RESULTS_DIR/streams-$STAMP-$name.csv" --body-file "$W/chat-stream.json" \
        --header-file "$W/auth-all.txt" --header "x-fake-chunks: $STREAM_CHUNKS" \
        --header "x-fake-delay-ms: $STREAM_DELAY_MS" --timeout-s 300 "$@" 2>&1) || true
    { echo "== streams $name"; echo "$out"; } >>"$RAW"
    check_alive
    grep '^RESULT' <<<"$out" | tail -n 1
}

say "(c) $STREAMS concurrent streams (x-fake-chunks $STREAM_CHUNKS, x-fake-delay-ms $STREAM_DELAY_MS) through a fresh tollgate (1 worker)"
LOAD_C=$(load_avg)
# stop the throughput instances so that the fake and the machine are free
stop_pid "$TG_PID_w2"
start_tollgate s1 1
"$LOADGEN_BIN" --url "http://127.0.0.1:$TG_PORT_s1$CHAT" --rate 200 --duration 1 --warmup 0 \
    --connections 8 --body-file "$W/chat.json" --header-file "$W/auth-all.txt" >>"$RAW" 2>&1 ||
    die "warm-up of tollgate s1 failed"
S_TG=$(stream_run tollgate-normal "$TG_PID_s1" "http://127.0.0.1:$TG_PORT_s1$CHAT")
[ -n "$S_TG" ] || die "streams printed no result"
say "  tollgate: $(kv "$S_TG" ok)/$STREAMS ok, max open $(kv "$S_TG" max_open), RSS $(kv "$S_TG" rss_before_kb) -> $(kv "$S_TG" rss_peak_kb) KiB"
if [ "$SLOW_STREAMS" = 1 ]; then
    # slow readers: what backpressure holds per stream
    S_SLOW=$(STREAM_DELAY_MS=$SLOW_DELAY_MS stream_run tollgate-slow "$TG_PID_s1" \
        "http://127.0.0.1:$TG_PORT_s1$CHAT" --read-pause-ms "$SLOW_PAUSE_MS" --rcvbuf 4096 \
        --header "x-fake-chunk-bytes: $SLOW_CHUNK_BYTES")
    say "  tollgate, slow readers: $(kv "$S_SLOW" ok)/$STREAMS ok, RSS $(kv "$S_SLOW" rss_before_kb) -> $(kv "$S_SLOW" rss_peak_kb) KiB"
    # the same slow readers on a fresh process (T3 as stated: 1 000 streams, whatever the
    # clients do), without the memory the first run left in the allocator's free lists
    start_tollgate s2 1
    "$LOADGEN_BIN" --url "http://127.0.0.1:$TG_PORT_s2$CHAT" --rate 200 --duration 1 --warmup 0 \
        --connections 8 --body-file "$W/chat.json" --header-file "$W/auth-all.txt" >>"$RAW" 2>&1 ||
        die "warm-up of tollgate s2 failed"
    S_SLOW2=$(STREAM_DELAY_MS=$SLOW_DELAY_MS stream_run tollgate-slow-fresh "$TG_PID_s2" \
        "http://127.0.0.1:$TG_PORT_s2$CHAT" --read-pause-ms "$SLOW_PAUSE_MS" --rcvbuf 4096 \
        --header "x-fake-chunk-bytes: $SLOW_CHUNK_BYTES")
    say "  tollgate, slow readers, fresh process: $(kv "$S_SLOW2" ok)/$STREAMS ok, RSS $(kv "$S_SLOW2" rss_before_kb) -> $(kv "$S_SLOW2" rss_peak_kb) KiB"
    stop_pid "$TG_PID_s2"
fi
NGX_WORKER=$(nginx_worker_pid "$NGX_PID_w1")
S_NGX=$(stream_run nginx-w1 "$NGX_WORKER" "http://127.0.0.1:$NGX_PORT_w1$CHAT")
say "  nginx worker: $(kv "$S_NGX" ok)/$STREAMS ok, RSS $(kv "$S_NGX" rss_before_kb) -> $(kv "$S_NGX" rss_peak_kb) KiB"
LOAD_C_END=$(load_avg)
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k/1024}'; }
stream_row() { # LABEL RESULT
    printf '| %s | %s/%s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$(kv "$2" ok)" \
        "$STREAMS" "$(kv "$2" max_open)" "$(mib "$(kv "$2" rss_before_kb)")" \
        "$(mib "$(kv "$2" rss_peak_kb)")" "$(mib "$(kv "$2" anon_at_peak_kb)")" \
        "$(mib "$(kv "$2" file_at_peak_kb)")" "$(mib "$(kv "$2" shmem_at_peak_kb)")" \
        "$(kv "$2" per_stream_kb)" "$(kv "$2" ttfb_p99_ms)"
}
{
    echo "## (c) $STREAMS concurrent streams"
    echo
    echo "\`bench/streams --streams $STREAMS\`: streamed chat requests opened at once, fake upstream with \`x-fake-chunks: $STREAM_CHUNKS\`, \`x-fake-delay-ms: $STREAM_DELAY_MS\` (each stream stays open ~$(awk -v c="$STREAM_CHUNKS" -v d="$STREAM_DELAY_MS" 'BEGIN {printf "%.0f", c*d/1000}') s); the proxy's /proc/PID/status sampled every 50 ms (VmHWM reset first). A fresh tollgate with 1 worker, warmed with one request per user. Load average: $LOAD_C at start, $LOAD_C_END at end."
    echo
    echo "| proxy | ok | max open | RSS before MiB | peak RSS MiB | anon MiB | file MiB | shmem MiB | KiB per stream | head p99 ms |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    stream_row "tollgate (1 worker)" "$S_TG"
    if [ -n "${S_SLOW:-}" ]; then stream_row "tollgate, slow readers ($SLOW_CHUNK_BYTES B events every $SLOW_DELAY_MS ms, client reads its 4 KB socket buffer every $SLOW_PAUSE_MS ms), after the reading run" "$S_SLOW"; fi
    if [ -n "${S_SLOW2:-}" ]; then stream_row "tollgate, the same slow readers, fresh process" "$S_SLOW2"; fi
    stream_row "nginx worker (reference)" "$S_NGX"
    echo
    echo "Per stream = (peak RSS − RSS before) / streams open at once. Samples: \`streams-$STAMP-*.csv\` beside this report."
    echo
} >>"$REPORT"
stop_pid "$TG_PID_s1"

# ---- (d) where the time goes ---------------------------------------------------------------------

say "(d) isolating the metering pieces (1 worker, wrk -c$ISO_CONNS, ${DURATION_S}s each)"
LOAD_D=$(load_avg)
NGW=$(nginx_worker_pid "$NGX_PID_w1")
MODELS=/v1/models

declare -a ISO_ROWS=(
    "nginx: chat (reference)|$NGW|http://127.0.0.1:$NGX_PORT_w1$CHAT|rotate:$W/auth-all.txt|$W/chat.json|POST"
    "tollgate: chat, JWT, quota, ledger, log (full)|$TG_PID_w1|http://127.0.0.1:$TG_PORT_w1$CHAT|rotate:$W/auth-all.txt|$W/chat.json|POST"
    "tollgate: chat, service key + X-Tollgate-User|$TG_PID_w1|http://127.0.0.1:$TG_PORT_w1$CHAT|$W/auth-service.txt|$W/chat.json|POST"
    "tollgate: chat, JWT, no request log line (LOG_LEVEL=warn)|$TG_PID_nolog|http://127.0.0.1:$TG_PORT_nolog$CHAT|rotate:$W/auth-all.txt|$W/chat.json|POST"
    "tollgate: chat, JWT, Redis unreachable (fail-open: no reserve/settle)|$TG_PID_nored|http://127.0.0.1:$TG_PORT_nored$CHAT|rotate:$W/auth-all.txt|$W/chat.json|POST"
    "nginx: chat with a 16 KB conversation (reference)|$NGW|http://127.0.0.1:$NGX_PORT_w1$CHAT|rotate:$W/auth-all.txt|$W/chat-16k.json|POST"
    "tollgate: chat with a 16 KB conversation (full)|$TG_PID_w1|http://127.0.0.1:$TG_PORT_w1$CHAT|rotate:$W/auth-all.txt|$W/chat-16k.json|POST"
    "nginx: GET /v1/models (reference)|$NGW|http://127.0.0.1:$NGX_PORT_w1$MODELS|rotate:$W/auth-all.txt|-|GET"
    "tollgate: GET /v1/models, JWT (auth + forward, nothing metered)|$TG_PID_w1|http://127.0.0.1:$TG_PORT_w1$MODELS|rotate:$W/auth-all.txt|-|GET"
)
{
    echo "## (d) Where the time goes"
    echo
    echo "Variants of the request, each through a proxy with one worker, \`wrk -t$WRK_THREADS -c$ISO_CONNS -d${DURATION_S}s\`, one run each (load average $LOAD_D at start). CPU µs per request = user + system time of the process (from /proc/PID/stat, 1/$HZ s ticks) over the run ÷ requests; it depends much less on the machine's other load than req/s does. The proxy's column is the whole process (tollgate: event loop + ledger thread + db pool + control thread; nginx: its one worker)."
    echo
    echo "| variant | req/s | p50 ms | p99 ms | errors | proxy CPU µs/req | Redis µs/req | PostgreSQL µs/req | fake µs/req | 1 core at this cost, req/s |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} >>"$REPORT"
declare -A ISO_CPU
for row in "${ISO_ROWS[@]}"; do
    IFS='|' read -r label ppid url hfile body method <<<"$row"
    if [ "$WARMUP_S" != 0 ]; then
        wrk_run "$url" "$ISO_CONNS" "$WARMUP_S" "$hfile" "$body" "$method" >/dev/null
    fi
    truncate_logs
    # shellcheck disable=SC2046
    p0=$(cpu_ticks "$ppid"); r0=$(cpu_ticks "$REDIS_PID"); g0=$(pg_snapshot); f0=$(cpu_ticks "$FAKE_PID")
    res=$(wrk_run "$url" "$ISO_CONNS" "$DURATION_S" "$hfile" "$body" "$method")
    # shellcheck disable=SC2046
    p1=$(cpu_ticks "$ppid"); r1=$(cpu_ticks "$REDIS_PID"); g1=$(pg_snapshot); f1=$(cpu_ticks "$FAKE_PID")
    n=$(kv "$res" requests)
    e=$(($(kv "$res" errors_connect) + $(kv "$res" errors_read) + $(kv "$res" errors_write) + $(kv "$res" errors_status) + $(kv "$res" errors_timeout)))
    pc=$(per_req $((p1 - p0)) "$n")
    ISO_CPU[$label]=$pc
    printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$(kv "$res" rps)" \
        "$(us_ms "$(kv "$res" p50_us)")" "$(us_ms "$(kv "$res" p99_us)")" "$e" "$pc" \
        "$(per_req $((r1 - r0)) "$n")" "$(per_req "$(pg_delta "$g0" "$g1")" "$n")" "$(per_req $((f1 - f0)) "$n")" \
        "$(awk -v c="$pc" 'BEGIN {printf "%.0f", (c > 0) ? 1e6/c : 0}')" >>"$REPORT"
    say "  $label: $(kv "$res" rps) req/s, proxy $pc us CPU/request, errors $e"
done
echo >>"$REPORT"
CPU_TG=${ISO_CPU["tollgate: chat, JWT, quota, ledger, log (full)"]}
CPU_NG=${ISO_CPU["nginx: chat (reference)"]}
CPU_RATIO=$(awk -v t="$CPU_TG" -v n="$CPU_NG" 'BEGIN {printf "%.2f", (t > 0) ? n/t : 0}')

if [ "$PERF" = auto ]; then
    if command -v perf >/dev/null && perf record -e cpu-clock -o "$W/perf-probe.data" -- true >/dev/null 2>&1; then
        PERF=1
    else
        PERF=0
    fi
fi
if [ "$PERF" = 1 ]; then
    say "  perf profile of tollgate-w1 during wrk -c$ISO_CONNS"
    PERF_S=$(awk -v d="$DURATION_S" 'BEGIN {print (d > 5) ? 5 : d}')
    (
        sleep 1
        perf record -e cpu-clock -F 500 --call-graph dwarf,16384 -p "$TG_PID_w1" -o "$W/perf.data" \
            -- sleep "$PERF_S" >"$W/perf-record.log" 2>&1
    ) &
    perf_pid=$!
    wrk_run "${URL[tollgate-w1]}" "$ISO_CONNS" "$(awk -v p="$PERF_S" 'BEGIN {print p + 2}')" \
        "rotate:$W/auth-all.txt" "$W/chat.json" >/dev/null
    wait "$perf_pid" || true
    PERF_TXT=$RESULTS_DIR/perf-$STAMP.txt
    strip_perf() { grep -E '^ +[0-9]' | sed 's/ *- *- *$//'; }
    {
        echo "# perf record -e cpu-clock --call-graph dwarf -p <tollgate, 1 worker> under wrk -c$ISO_CONNS"
        echo "## by library"
        perf report -i "$W/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | strip_perf | sed -n 1,12p || true
        echo "## functions, self time"
        perf report -i "$W/perf.data" --no-children --sort dso,symbol --stdio -g none \
            --percent-limit 0.3 2>/dev/null | strip_perf | sed -n 1,80p || true
        echo "## stages of a request, inclusive time (children)"
        perf report -i "$W/perf.data" --children --sort symbol --stdio -g none --percent-limit 0.5 \
            2>/dev/null | strip_perf | grep -E '\] (tg_request_start|tg_identity_authenticate|after_credential|tg_inspect_parse|estimate_prompt|tg_inspect_prompt_text|tg_req_quota_reserve|forward|tg_inspect_rewrite|build_upstream_request|tg_upstream_start|on_up_head|on_up_data|on_up_end|tg_request_finish|log_request|tg_req_ledger_append|tg_req_quota_settle|redisProcessCallbacks|redisAsyncHandleWrite|evbuffer_write_atmost|evbuffer_read|epoll_ctl|__GI_epoll_ctl|epoll_wait|thread_main|__vfprintf_internal|flush_logs|tg_log_flush)( |$)' || true
    } >"$PERF_TXT"
    {
        echo "CPU profile of tollgate (1 worker) under wrk -c$ISO_CONNS (\`perf record -e cpu-clock --call-graph dwarf\`, ${PERF_S}s); share of samples by library, the stages of a request (inclusive) and the top functions (self). All of it: \`$(basename "$PERF_TXT")\`."
        echo
        echo '```'
        sed -n '/^## by library/,/^## functions/p' "$PERF_TXT" | grep -v '^##'
        echo
        sed -n '/^## stages/,$p' "$PERF_TXT" | grep -v '^##'
        echo
        sed -n '/^## functions/,/^## stages/p' "$PERF_TXT" | grep -v '^##' | sed -n 1,25p
        echo '```'
        echo
    } >>"$REPORT"
fi
LOAD_END=$(load_avg)

# ---- headline -----------------------------------------------------------------------------------

verdict() { awk -v ok="$1" 'BEGIN {print ok ? "met" : "NOT met"}'; }
PEAK_MIB=$(mib "$(kv "$S_TG" rss_peak_kb)")
SLOW_LINE=
if [ -n "${S_SLOW2:-}" ]; then
    SLOW_MIB=$(mib "$(kv "$S_SLOW2" rss_peak_kb)")
    SLOW_LINE="| $STREAMS concurrent streams to slow readers in ≤ 64 MiB RSS (fresh process) | peak **${SLOW_MIB} MiB** ($(kv "$S_SLOW2" per_stream_kb) KiB per stream; $(mib "$(kv "$S_SLOW" rss_peak_kb)") MiB after the reading run) | $(verdict "$(awk -v m="$SLOW_MIB" -v ok="$(kv "$S_SLOW2" ok)" -v n="$STREAMS" 'BEGIN {print (m <= 64 && ok == n)}')") |"
fi
HEAD=$(
    cat <<EOF
## Headline (targets from the brief)

| target | measured | verdict |
| --- | --- | --- |
| tollgate, 1 event loop, fully metered ≥ 0.8 × nginx proxy_pass req/s | best $(printf '%.0f' "$BEST_TG1") vs $(printf '%.0f' "$BEST_NG1") req/s = **${THR_RATIO} ×** (lowest ratio at one connection count: $MIN_RATIO ×) | $(verdict "$(awk -v r="$THR_RATIO" 'BEGIN {print (r >= 0.8)}')") |
| (the same, per core: CPU per request of the proxy process) | tollgate $CPU_TG µs vs nginx $CPU_NG µs per request = **${CPU_RATIO} ×** the requests per core | $(verdict "$(awk -v r="$CPU_RATIO" 'BEGIN {print (r >= 0.8)}')") |
| ≤ 1 ms p99 added at $LAT_RATE req/s | **+${ADD_DIRECT} µs** vs direct, **+${ADD_NGX} µs** vs nginx (p99 $L99_TG1 / $L99_DIRECT / $L99_NGX µs) | $(verdict "$(awk -v a="$ADD_DIRECT" 'BEGIN {print (a <= 1000)}')") |
| $STREAMS concurrent streams in ≤ 64 MiB RSS | peak **${PEAK_MIB} MiB** with $(kv "$S_TG" max_open) open ($(kv "$S_TG" per_stream_kb) KiB per stream) | $(verdict "$(awk -v m="$PEAK_MIB" -v ok="$(kv "$S_TG" ok)" -v n="$STREAMS" 'BEGIN {print (m <= 64 && ok == n)}')") |
$SLOW_LINE

Load average (1/5/15 min): $LOAD_START at start, $LOAD_END at end. Raw tool output: \`$(basename "$RAW")\`.
EOF
)
{
    echo "$HEAD"
    echo
} >>"$REPORT"
cp "$REPORT" "$RESULTS_DIR/latest-$MODE.md"
echo
echo "$HEAD"
echo
echo "report: $REPORT"
