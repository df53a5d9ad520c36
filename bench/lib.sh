# bench/lib.sh: what the benchmark scripts share. Source it after setting BENCH_NAME (for
# messages) and, for the private PostgreSQL, WORK (a temp dir readable by postgres) and PGBIN.
# BENCH_PORTS_FILE, when set, records the ports handed out so none is handed out twice (free_port
# runs in $(...) subshells, so a file, not a variable).

die() { echo "${BENCH_NAME:-bench}: $*" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 12000))
        port_free "$p" || continue
        if [ -n "${BENCH_PORTS_FILE:-}" ]; then
            grep -qx "$p" "$BENCH_PORTS_FILE" 2>/dev/null && continue
            echo "$p" >>"$BENCH_PORTS_FILE"
        fi
        echo "$p"
        return 0
    done
    die "no free port"
}

wait_until() { # seconds description command...
    local deadline=$(($(date +%s) + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || die "timed out waiting for $what"
        sleep 0.05
    done
}

# A private PostgreSQL cluster in $WORK/pg (initdb on first start, as postgres), on $PORT
# (chosen on first start): start_pg [EXTRA POSTGRES OPTIONS], stop_pg, kill_pg (cleanup).
start_pg() {
    if [ ! -d "$WORK/pg/data" ]; then
        mkdir -p "$WORK/pg"
        chown postgres:postgres "$WORK/pg"
        chmod 700 "$WORK/pg"
        runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg/data" -A trust -U postgres -E UTF8 \
            --locale=C.UTF-8 >"$WORK/initdb.log" 2>&1 || die "initdb failed"
        PORT=$(free_port)
    fi
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w -t 60 \
        -o "-p $PORT -k $WORK/pg -c listen_addresses=127.0.0.1 $*" start >/dev/null ||
        die "PostgreSQL did not start: $(tail -n 3 "$WORK/pg/server.log")"
    wait_until 30 "PostgreSQL" "$PGBIN/pg_isready" -q -U postgres -d postgres -h 127.0.0.1 -p "$PORT"
}
stop_pg() { runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m fast -w stop >/dev/null; }
kill_pg() {
    [ -d "$WORK/pg/data" ] || return 0
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
}
