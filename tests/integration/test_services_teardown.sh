#!/usr/bin/env bash
# Issue 2 §5: the harness tears PostgreSQL and Redis down even when the run is interrupted.
# services.sh start is called by a process that is then killed (as ctest is on Ctrl-C or a
# timeout): its watchdog stops PostgreSQL (and its backends) and Redis and removes the state
# directory within a few seconds. Same with SERVICES_OWNER_PID naming another process.
source "$(dirname "$0")/lib.sh"

SERVICES_SH="$(cd "$(dirname "$0")" && pwd)/services.sh"
OWNERS=()
DIRS=()

teardown_cleanup() {
    local rc=$?
    for pid in "${OWNERS[@]:-}"; do [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true; done
    for d in "${DIRS[@]:-}"; do [ -n "$d" ] && "$SERVICES_SH" stop "$d" >/dev/null 2>&1 || true; done
    set +e
    (exit "$rc") # tg_cleanup reads the status from $?
    tg_cleanup
}
trap teardown_cleanup EXIT

# pids that make up the services of state dir $1: postmaster and its children, redis, watchdog
service_pids() {
    local dir=$1 pg
    pg=$(head -n 1 "$dir/pg/data/postmaster.pid")
    echo "$pg"
    ps -o pid= --ppid "$pg"
    cat "$dir/redis.pid" "$dir/watchdog.pid"
}

all_gone() { # pids...
    local pid
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 1; done
    return 0
}

# check_up DIR: both services answer on the ports in DIR/services.env
check_up() {
    local dir=$1
    # shellcheck disable=SC1090
    (source "$dir/services.env"
     "$TG_TEST_PGBIN/pg_isready" -q -h 127.0.0.1 -p "$TG_TEST_PGPORT" || fail "$dir: PostgreSQL not up"
     redis-cli -p "$TG_TEST_REDIS_PORT" ping | grep -q PONG || fail "$dir: Redis not up"
     psql -h 127.0.0.1 -p "$TG_TEST_PGPORT" -U postgres -qAt -c "SELECT 1 FROM pg_database WHERE datname='tg_template'" |
         grep -qx 1 || fail "$dir: no tg_template database")
}

# check_down WHAT DIR PIDS...: everything gone within 6 s
check_down() {
    local what=$1 dir=$2; shift 2
    local t0
    t0=$(date +%s%3N)
    wait_until 6 "$what: PostgreSQL, Redis and the watchdog gone" all_gone "$@"
    wait_until 6 "$what: state directory removed" test ! -e "$dir"
    for p in "$PGPORT_SAVED" "$REDISPORT_SAVED"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then fail "$what: port $p still open"; fi
    done
    log "ok: $what: torn down in $(( $(date +%s%3N) - t0 )) ms"
}

# ---- 1: the caller of `start` (its parent, as ctest is) is killed with SIGKILL
DIR1="$T/svc1"
DIRS+=("$DIR1")
# bash runs services.sh as a child (so it is the caller, $PPID), then becomes `sleep`
bash -c '"$0" start "$1" >"$2" 2>&1; echo $? >"$3"; exec sleep 600' \
    "$SERVICES_SH" "$DIR1" "$T/start1.log" "$T/start1.rc" &
OWNER1=$!
OWNERS+=("$OWNER1")
wait_until 120 "services.sh start (1)" test -s "$T/start1.rc"
assert_eq 0 "$(cat "$T/start1.rc")" "services.sh start (1) status"
check_up "$DIR1"
mapfile -t PIDS1 < <(service_pids "$DIR1")
[ "${#PIDS1[@]}" -ge 4 ] || fail "too few service processes: ${PIDS1[*]}"
PGPORT_SAVED=$(cat "$DIR1/pg.port"); REDISPORT_SAVED=$(cat "$DIR1/redis.port")
all_gone "${PIDS1[@]}" && fail "services not running"
# still up while the caller lives (the watchdog checks once a second: let it check)
sleep 1.5
kill -0 "$(cat "$DIR1/watchdog.pid")" || fail "watchdog died while its caller lives"
check_up "$DIR1"
kill -KILL "$OWNER1"
wait "$OWNER1" 2>/dev/null || true
check_down "caller killed" "$DIR1" "${PIDS1[@]}"

# ---- 2: SERVICES_OWNER_PID names another process; killing it tears down
DIR2="$T/svc2"
DIRS+=("$DIR2")
sleep 600 &
OWNER2=$!
OWNERS+=("$OWNER2")
SERVICES_OWNER_PID=$OWNER2 "$SERVICES_SH" start "$DIR2" >"$T/start2.log" 2>&1 ||
    fail "services.sh start (2): $(cat "$T/start2.log")"
check_up "$DIR2"
mapfile -t PIDS2 < <(service_pids "$DIR2")
PGPORT_SAVED=$(cat "$DIR2/pg.port"); REDISPORT_SAVED=$(cat "$DIR2/redis.port")
kill -TERM "$OWNER2"
wait "$OWNER2" 2>/dev/null || true
check_down "SERVICES_OWNER_PID killed" "$DIR2" "${PIDS2[@]}"
