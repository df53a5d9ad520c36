#!/usr/bin/env bash
# services.sh: throwaway PostgreSQL cluster and redis-server on free loopback ports.
#
#   services.sh start STATE_DIR   start both, write STATE_DIR/services.env, create the
#                                 migrated template database "tg_template" (when a tollgate
#                                 binary is given in TOLLGATE_BIN)
#   services.sh stop STATE_DIR    stop both and remove the data
#
# A watchdog stops everything when the process that called `start` (ctest) goes away, so an
# interrupted run leaves nothing behind. Readiness is polled, never slept for.
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

die() { echo "services.sh: $*" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 12000))
        if port_free "$p"; then echo "$p"; return 0; fi
    done
    die "no free port found"
}

wait_until() { # deadline_s description command...
    local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || die "timed out waiting for $what"
        sleep 0.05
    done
}

start_pg() {
    local dir=$1 port
    mkdir -p "$dir/pg"
    chown postgres:postgres "$dir/pg"
    chmod 700 "$dir/pg"
    runuser -u postgres -- "$PGBIN/initdb" -D "$dir/pg/data" -A trust -U postgres -E UTF8 \
        --locale=C.UTF-8 >"$dir/pg/initdb.log" 2>&1 || { cat "$dir/pg/initdb.log" >&2; die "initdb failed"; }
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 30 \
            -o "-p $port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 -c shared_buffers=128MB" \
            start >/dev/null 2>&1; then
            echo "$port" >"$dir/pg.port"
            wait_until 30 "PostgreSQL on $port" "$PGBIN/pg_isready" -h 127.0.0.1 -p "$port"
            return 0
        fi
        [ "$attempt" -lt 5 ] || { cat "$dir/pg/server.log" >&2; die "PostgreSQL did not start"; }
    done
}

start_redis() {
    local dir=$1 port
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        setsid redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
            --daemonize no --dir "$dir" --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 &
        echo $! >"$dir/redis.pid"
        local ok=0
        for _ in $(seq 1 100); do
            if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then ok=1; break; fi
            kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null || break
            sleep 0.05
        done
        if [ $ok = 1 ]; then echo "$port" >"$dir/redis.port"; return 0; fi
        kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    done
    die "redis-server did not start"
}

stop_all() {
    local dir=$1
    [ -d "$dir" ] || return 0
    if [ -f "$dir/watchdog.pid" ]; then kill "$(cat "$dir/watchdog.pid")" 2>/dev/null || true; fi
    if [ -f "$dir/redis.pid" ]; then kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; fi
    if [ -d "$dir/pg/data" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: services.sh start|stop STATE_DIR"

case "$cmd" in
start)
    [ "$(id -u)" = 0 ] || die "must run as root (PostgreSQL is started with runuser -u postgres)"
    stop_all "$dir"
    mkdir -p "$dir"
    chmod 755 "$dir"
    start_pg "$dir"
    start_redis "$dir"
    pgport=$(cat "$dir/pg.port"); redisport=$(cat "$dir/redis.port")
    cat >"$dir/services.env" <<EOF
export TG_TEST_PGHOST=127.0.0.1
export TG_TEST_PGPORT=$pgport
export TG_TEST_PGBIN=$PGBIN
export TG_TEST_PGDATA=$dir/pg/data
export TG_TEST_REDIS_PORT=$redisport
export TG_TEST_REDIS_PID=$(cat "$dir/redis.pid")
export TG_TEST_STATE_DIR=$dir
EOF
    if [ -n "${TOLLGATE_BIN:-}" ] && [ -x "${TOLLGATE_BIN}" ]; then
        psql -h 127.0.0.1 -p "$pgport" -U postgres -qAt -c "CREATE DATABASE tg_template" >/dev/null
        DATABASE_URL="postgresql://postgres@127.0.0.1:$pgport/tg_template" "$TOLLGATE_BIN" migrate \
            >"$dir/migrate.log" 2>&1 || { cat "$dir/migrate.log" >&2; die "migrations failed"; }
        psql -h 127.0.0.1 -p "$pgport" -U postgres -qAt \
            -c "UPDATE pg_database SET datistemplate = true WHERE datname = 'tg_template'" >/dev/null
    fi
    # Watchdog: when our caller (ctest) exits without running `stop`, clean up.
    caller=${SERVICES_OWNER_PID:-$PPID}
    (
        trap '' HUP
        while kill -0 "$caller" 2>/dev/null && [ -d "$dir" ]; do sleep 1; done
        "$0" stop "$dir" >/dev/null 2>&1 || true
    ) </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/watchdog.pid"
    echo "services up: PostgreSQL 127.0.0.1:$pgport, Redis 127.0.0.1:$redisport ($dir)"
    ;;
stop)
    stop_all "$dir"
    echo "services down"
    ;;
*)
    die "unknown command $cmd"
    ;;
esac
