#!/usr/bin/env bash
# make run: local PostgreSQL + Redis with data under .run/, migrations, the demo upstream when
# UPSTREAM_URL is unset, then tollgate in the foreground. Ctrl-C stops everything.
#
#   scripts/run.sh [BUILD_DIR]   BUILD_DIR relative to the project (default build) or absolute
#
# Overrides (for running several side by side, e.g. in tests); the defaults are those of make run:
#   TOLLGATE_RUN_DIR            data folder (default .run/)
#   TOLLGATE_RUN_PORT           preferred tollgate port (default 8080; TOLLGATE_LISTEN wins)
#   TOLLGATE_RUN_PGPORT         preferred PostgreSQL port (default 55432)
#   TOLLGATE_RUN_REDISPORT      preferred Redis port (default 56379)
#   TOLLGATE_RUN_UPSTREAM_PORT  preferred demo upstream port (default 54000)
# A preferred port that is taken is replaced by the next free one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${1:-build}
RUN=${TOLLGATE_RUN_DIR:-$ROOT/.run}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
TOLLGATE=$BUILD/proxy/tollgate
FAKE=$BUILD/tests/fake_upstream/fake_upstream

die() { echo "make run: $*" >&2; exit 1; }
[ -x "$TOLLGATE" ] || die "$TOLLGATE is not built"
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL is started with runuser -u postgres)"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() { # preferred
    local p=$1
    while ! port_free "$p"; do p=$((p + 1)); done
    echo "$p"
}

mkdir -p "$RUN"/{redis,spool,log}
chmod 755 "$RUN"
PIDS=()
cleanup() {
    echo
    echo "stopping..."
    for pid in "${PIDS[@]:-}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]:-}"; do wait "$pid" 2>/dev/null || true; done
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$RUN/pg" -m fast -w stop >/dev/null 2>&1 || true
    echo "stopped (data kept in $RUN)"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# --- secrets, made once and kept in .run/secrets.env
if [ ! -f "$RUN/secrets.env" ]; then
    rnd() { head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32; }
    cat >"$RUN/secrets.env" <<EOF
TOLLGATE_SERVICE_KEY=svc-$(rnd)
TOLLGATE_ADMIN_KEY=adm-$(rnd)
JWT_SECRET=$(rnd)$(rnd)
EOF
    chmod 600 "$RUN/secrets.env"
fi
# shellcheck disable=SC1091
source "$RUN/secrets.env"

# --- PostgreSQL
PGPORT=$(pick_port "${TOLLGATE_RUN_PGPORT:-55432}")
if [ ! -f "$RUN/pg/PG_VERSION" ]; then
    mkdir -p "$RUN/pg"
    chown postgres:postgres "$RUN/pg"
    chmod 700 "$RUN/pg"
    runuser -u postgres -- "$PGBIN/initdb" -D "$RUN/pg" -A trust -U postgres -E UTF8 \
        --locale=C.UTF-8 >"$RUN/log/initdb.log" 2>&1 || die "initdb failed (see $RUN/log/initdb.log)"
fi
chown postgres:postgres "$RUN/log"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$RUN/pg" -l "$RUN/log/postgresql.log" -w -t 60 \
    -o "-p $PGPORT -k $RUN/pg -c listen_addresses=127.0.0.1" start >/dev/null ||
    die "PostgreSQL did not start (see $RUN/log/postgresql.log)"
psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qAt -c "SELECT 1 FROM pg_database WHERE datname='tollgate'" |
    grep -q 1 || psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qAt -c "CREATE DATABASE tollgate"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/tollgate"
"$TOLLGATE" migrate

# --- Redis
REDISPORT=$(pick_port "${TOLLGATE_RUN_REDISPORT:-56379}")
redis-server --port "$REDISPORT" --bind 127.0.0.1 --dir "$RUN/redis" --save 60 1 \
    --appendonly no --daemonize no --logfile "$RUN/log/redis.log" </dev/null >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$REDISPORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
export REDIS_URL="redis://127.0.0.1:$REDISPORT/0"

# --- upstream
if [ -z "${UPSTREAM_URL:-}" ]; then
    [ -x "$FAKE" ] || die "$FAKE is not built"
    UPORT=$(pick_port "${TOLLGATE_RUN_UPSTREAM_PORT:-54000}")
    # a little delay between chunks so the streaming is visible
    "$FAKE" --listen "127.0.0.1:$UPORT" --default-delay-ms 40 >"$RUN/log/demo-upstream.log" 2>&1 &
    PIDS+=($!)
    export UPSTREAM_URL="http://127.0.0.1:$UPORT"
    for _ in $(seq 1 100); do curl -fs "$UPSTREAM_URL/health/liveliness" >/dev/null && break; sleep 0.05; done
    DEMO=1
    # demo prices (USD per million tokens) so the ledger shows costs; never touched otherwise
    psql "$DATABASE_URL" -qAt -c "INSERT INTO model_prices (model, input_usd_per_mtok,
        cached_input_usd_per_mtok, output_usd_per_mtok, effective_from)
        VALUES ('gpt-4o-mini', 0.15, 0.075, 0.60, '2024-01-01'), ('gpt-4o', 2.50, 1.25, 10, '2024-01-01')
        ON CONFLICT DO NOTHING" >/dev/null
else
    DEMO=0
fi

# --- tollgate
PORT=$(pick_port "${TOLLGATE_RUN_PORT:-8080}")
export TOLLGATE_LISTEN="${TOLLGATE_LISTEN:-0.0.0.0:$PORT}"
PORT=${TOLLGATE_LISTEN##*:}
export TOLLGATE_SERVICE_KEY TOLLGATE_ADMIN_KEY JWT_SECRET
export TOLLGATE_API_KEYS=${TOLLGATE_API_KEYS:-on}
export LEDGER_SPOOL_DIR="$RUN/spool"
export LOG_FORMAT=${LOG_FORMAT:-text}
"$TOLLGATE" &
TG_PID=$!
PIDS+=("$TG_PID")
for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    kill -0 "$TG_PID" 2>/dev/null || die "tollgate exited at start-up"
    sleep 0.05
done

cat <<EOF

================================================================================
 tollgate is running
   proxy:      http://127.0.0.1:$PORT/v1
   dashboard:  http://127.0.0.1:$PORT/dashboard/   (admin key below)
   metrics:    http://127.0.0.1:$PORT/metrics
   data:       $RUN  (PostgreSQL :$PGPORT, Redis :$REDISPORT)
EOF
if [ "$DEMO" = 1 ]; then
cat <<EOF

   *** DEMO MODE: UPSTREAM_URL is unset, replies come from the bundled fake upstream
   *** ($UPSTREAM_URL). Set UPSTREAM_URL=http://your-litellm:4000 to use a real gateway.
EOF
fi
cat <<EOF

 try it:
   curl -s http://127.0.0.1:$PORT/v1/chat/completions \\
     -H "Authorization: Bearer $TOLLGATE_SERVICE_KEY" \\
     -H "X-Tollgate-User: demo-user" -H "Content-Type: application/json" \\
     -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}'

 admin key:  $TOLLGATE_ADMIN_KEY
   curl -s http://127.0.0.1:$PORT/admin/api/users -H "Authorization: Bearer $TOLLGATE_ADMIN_KEY"
 Ctrl-C stops everything.
================================================================================
EOF
wait "$TG_PID"
