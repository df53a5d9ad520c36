#!/usr/bin/env bash
# auth_bench.sh: what authentication costs (issue 4 §6). Requests/s of non-streamed chat
# completions through tollgate to the fake upstream, with each kind of credential, measured with
# wrk (bench/auth_wrk.lua), on a private PostgreSQL + Redis (tests/integration/services.sh):
#
#   direct             the fake upstream alone, no tollgate (the ceiling of this machine)
#   service            TOLLGATE_SERVICE_KEY + X-Tollgate-User
#   apikey             a personal API key (tg-…), cached after the first lookup
#   jwt-hs256          one HS256 JWT (JWT_SECRET), cached after the first verification
#   jwt-rs256          one RS256 JWT (JWT_PUBLIC_KEY_FILE, 2048-bit key), cached likewise
#   jwt-rs256-nocache  2000 distinct RS256 JWTs in turn against AUTH_CACHE_ENTRIES=16: every
#                      request verifies a signature
#
#   bench/auth_bench.sh [BUILD_DIR]                  (default build; run as root: PostgreSQL)
#   SECONDS_EACH=10 ROUNDS=3 THREADS=2 CONNS=32 WORKERS=2 MODES="service apikey" bench/auth_bench.sh
#   TOLLGATE_BIN=… FAKE_UPSTREAM_BIN=… bench/auth_bench.sh    (binaries built elsewhere)
#   KEEP_WORK=1 bench/auth_bench.sh                  (keep the logs of tollgate and the fake)
#
# Prints a markdown table: per mode the median over ROUNDS rounds (the modes take turns, so a
# change in the machine's load hits them all alike) and the range. The figures are only
# comparable with each other on one machine at one time: wrk, tollgate, the fake upstream,
# PostgreSQL and Redis share the same cores.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
SECONDS_EACH=${SECONDS_EACH:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
WORKERS=${WORKERS:-2}
MODES=${MODES:-"direct service apikey jwt-hs256 jwt-rs256 jwt-rs256-nocache"}
# generous: on a busy shared machine Redis answers late, and the point here is the credential
REDIS_TIMEOUT_MS=${REDIS_TIMEOUT_MS:-2000}
ROUNDS=${ROUNDS:-3}
LUA="$ROOT/bench/auth_wrk.lua"
JWT_TOOL="$ROOT/tests/node/identity_jwt.mjs"

BENCH_NAME=auth_bench.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
command -v wrk >/dev/null || die "wrk is not installed"
command -v node >/dev/null || die "node is not installed (it signs the JWTs)"
if [ -z "${TOLLGATE_BIN:-}" ] || [ -z "${FAKE_UPSTREAM_BIN:-}" ]; then
    cmake -S "$ROOT" -B "$BUILD" >/dev/null
    cmake --build "$BUILD" --target tollgate fake_upstream -j2 >/dev/null
fi
TOLLGATE_BIN=${TOLLGATE_BIN:-$BUILD/proxy/tollgate}
FAKE_UPSTREAM_BIN=${FAKE_UPSTREAM_BIN:-$BUILD/tests/fake_upstream/fake_upstream}
[ -x "$TOLLGATE_BIN" ] && [ -x "$FAKE_UPSTREAM_BIN" ] || die "tollgate or fake_upstream not built"

WORK=$(mktemp -d /tmp/auth_bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
    "$ROOT/tests/integration/services.sh" stop "$WORK/svc" >/dev/null 2>&1 || true
    if [ -n "${KEEP_WORK:-}" ]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT


TOLLGATE_BIN=$TOLLGATE_BIN "$ROOT/tests/integration/services.sh" start "$WORK/svc" >/dev/null
# shellcheck disable=SC1091
source "$WORK/svc/services.env"
psql -h 127.0.0.1 -p "$TG_TEST_PGPORT" -U postgres -qAt \
    -c "CREATE DATABASE bench TEMPLATE tg_template" >/dev/null
DB_URL="postgresql://postgres@127.0.0.1:$TG_TEST_PGPORT/bench"

"$FAKE_UPSTREAM_BIN" --listen 127.0.0.1:0 --port-file "$WORK/fake.port" >"$WORK/fake.log" 2>&1 &
PIDS+=($!)
wait_until 10 "the fake upstream" test -s "$WORK/fake.port"
FAKE_URL="http://127.0.0.1:$(cat "$WORK/fake.port")"

# credentials
SECRET=$(openssl rand -hex 32)
SERVICE_KEY="svc-$(openssl rand -hex 16)"
node "$JWT_TOOL" keys "$WORK/keys"
TOK_HS=$(node "$JWT_TOOL" sign HS256 "secret:$SECRET" '{"sub":"bench-hs","exp":"now+3600"}')
TOK_RS=$(node "$JWT_TOOL" sign RS256 "$WORK/keys/rsa.key" '{"sub":"bench-rs","exp":"now+3600"}')
node "$JWT_TOOL" many 2000 RS256 "$WORK/keys/rsa.key" '{"sub":"bench-rs-nc","exp":"now+3600"}' \
    >"$WORK/tokens.txt"
API_KEY="tg-$(openssl rand 32 | basenc --base64url -w0 | tr -d '=')"
HASH=$(printf '%s' "$API_KEY" | sha256sum | cut -d' ' -f1)
psql "$DB_URL" -qAt -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO users (id) VALUES ('bench-key');
INSERT INTO api_keys (user_id, name, key_hash, prefix) VALUES ('bench-key', 'bench', '\\x$HASH', '${API_KEY:0:8}');
SQL

start_tollgate() { # NAME VAR=VALUE...: sets STARTED_URL (not run in $(...): PIDS must be kept)
    local name=$1 port
    shift
    port=$(free_port)
    mkdir -p "$WORK/spool-$name"
    env -i PATH="$PATH" HOME="${HOME:-/root}" TOLLGATE_LISTEN="127.0.0.1:$port" \
        TOLLGATE_WORKERS="$WORKERS" DATABASE_URL="$DB_URL" \
        REDIS_URL="redis://127.0.0.1:$TG_TEST_REDIS_PORT/0" REDIS_KEY_PREFIX="bench-$name:" \
        UPSTREAM_URL="$FAKE_URL" LEDGER_SPOOL_DIR="$WORK/spool-$name" QUOTA_DEFAULT_TOKENS=-1 \
        JWT_SECRET="$SECRET" JWT_PUBLIC_KEY_FILE="$WORK/keys/rsa.pub" TOLLGATE_API_KEYS=on \
        TOLLGATE_SERVICE_KEY="$SERVICE_KEY" REDIS_TIMEOUT_MS="$REDIS_TIMEOUT_MS" "$@" \
        "$TOLLGATE_BIN" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    STARTED_URL="http://127.0.0.1:$port"
    wait_until 20 "tollgate $name" all_ready "$STARTED_URL"
}
all_ready() { # URL: /readyz on several fresh connections (each worker's Redis is up)
    for _ in 1 2 3 4 5 6 7 8; do curl -fsS -o /dev/null "$1/readyz" || return 1; done
}
start_tollgate main
TG_URL=$STARTED_URL
start_tollgate nocache AUTH_CACHE_ENTRIES=16
TG_NC_URL=$STARTED_URL

run_wrk() { # URL SECONDS (credentials in the AUTH_* environment)
    wrk -t"$THREADS" -c"$CONNS" -d"$2s" --latency -s "$LUA" "$1/v1/chat/completions" |
        grep '^RESULT' || die "wrk gave no result"
}
measure() { # MODE: one markdown row
    local mode=$1 url=$TG_URL
    unset AUTH_BEARER AUTH_USER AUTH_TOKENS_FILE
    case $mode in
        direct) url=$FAKE_URL; export AUTH_BEARER=unused ;;
        service) export AUTH_BEARER=$SERVICE_KEY AUTH_USER=bench-svc ;;
        apikey) export AUTH_BEARER=$API_KEY ;;
        jwt-hs256) export AUTH_BEARER=$TOK_HS ;;
        jwt-rs256) export AUTH_BEARER=$TOK_RS ;;
        jwt-rs256-nocache) url=$TG_NC_URL; export AUTH_TOKENS_FILE=$WORK/tokens.txt ;;
        *) die "unknown mode $mode" ;;
    esac
    run_wrk "$url" 2 >/dev/null # warm-up: connections, caches, user records
    local r log=$WORK/main.log before
    [ "$mode" != jwt-rs256-nocache ] || log=$WORK/nocache.log
    before=$(wc -l <"$log")
    r=$(run_wrk "$url" "$SECONDS_EACH")
    if [ "$mode" != direct ]; then # what the refused requests got, from tollgate's request log
        # (status 0: requests wrk abandoned when it stopped, not errors)
        tail -n +"$((before + 1))" "$log" | grep '"msg":"request"' |
            sed -n 's/.*"status":\([0-9]*\).*/\1/p' | grep -v '^200$' | grep -v '^0$' | sort | uniq -c |
            sed "s/^/  $mode: status /" >&2 || true
    fi
    val() { echo "$r" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    echo "$mode $(val rps) $(val p50_us) $(val p99_us) $(($(val non200) + $(val socket_errors)))" \
        >>"$WORK/results"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
summary_row() { # MODE: median requests/s (range over the rounds), median latencies, errors
    local rows
    rows=$(awk -v m="$1" '$1 == m' "$WORK/results")
    printf '| %s | %s | %s–%s | %s | %s | %s |\n' "$1" \
        "$(echo "$rows" | awk '{print $2}' | median)" \
        "$(echo "$rows" | awk '{print $2}' | sort -n | head -n 1)" \
        "$(echo "$rows" | awk '{print $2}' | sort -n | tail -n 1)" \
        "$(echo "$rows" | awk '{print $3}' | median | awk '{ printf "%.2f", $1 / 1000 }')" \
        "$(echo "$rows" | awk '{print $4}' | median | awk '{ printf "%.2f", $1 / 1000 }')" \
        "$(echo "$rows" | awk '{ s += $5 } END { print s }')"
}

echo "tollgate auth benchmark: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
    "wrk -t$THREADS -c$CONNS, ${SECONDS_EACH}s per mode and round, $ROUNDS rounds (modes" \
    "interleaved), TOLLGATE_WORKERS=$WORKERS"
for _ in $(seq 1 "$ROUNDS"); do
    for m in $MODES; do measure "$m"; done
done
echo
echo "| mode | requests/s (median) | range | p50 ms | p99 ms | errors |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for m in $MODES; do summary_row "$m"; done
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
