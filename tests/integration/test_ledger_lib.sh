#!/usr/bin/env bash
# test_ledger_lib.sh: shared helpers for the ledger integration tests (sourced, not run).
#   $1 = ledger_driver binary, $2 = tg_migrate binary (optional: psql applies schema/*.sql)
# Each test gets its own database (on the fixture's cluster or a private one) and its own
# spool directory, so the tests run in parallel.
set -euo pipefail

DRIVER=${1:?ledger_driver path}
MIGRATE=${2:-}
: "${TG_SERVICES_ENV:?run under ctest (services fixture)}"
# shellcheck disable=SC1090
source "$TG_SERVICES_ENV"
SCHEMA_DIR=${TG_SOURCE_DIR:?}/schema
PGBIN=$TG_TEST_PGBIN
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/${TEST_NAME}.XXXXXX")
chmod 755 "$WORK"
DBS_TO_DROP=()
PRIV_DIR=""
PRIV_PORT=""
BG_PIDS=()

# core/log.c keeps a per-thread line buffer (__thread struct tg_buf) that is never freed when
# a thread exits; the ledger thread logs and exits at tg_ledger_stop, so LeakSanitizer reports
# that one buffer in sanitizer builds. Suppressed here, for that allocation only.
printf 'leak:tg_log\n' >"$WORK/lsan.supp"
export LSAN_OPTIONS="suppressions=$WORK/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

log() { echo "[$(date +%H:%M:%S)] $*"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

cleanup() {
    local rc=$?
    for pid in "${BG_PIDS[@]}"; do
        case $pid in
        -CONT*) kill -CONT "${pid#-CONT }" 2>/dev/null || true ;;
        *) kill -9 "$pid" 2>/dev/null || true ;;
        esac
    done
    for entry in "${DBS_TO_DROP[@]}"; do
        psql -h 127.0.0.1 -p "${entry%%/*}" -U postgres -qAtX -d postgres \
            -c "DROP DATABASE IF EXISTS ${entry#*/} WITH (FORCE)" >/dev/null 2>&1 || true
    done
    if [ -n "$PRIV_DIR" ] && [ -d "$PRIV_DIR/data" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PRIV_DIR/data" -m immediate -w stop \
            >/dev/null 2>&1 || true
    fi
    if [ $rc -ne 0 ]; then
        echo "--- work dir $WORK (kept on failure: logs below)" >&2
        for f in "$WORK"/*.log "$WORK"/*.out; do
            [ -f "$f" ] || continue
            echo "--- $f (last 40 lines)" >&2
            tail -n 40 "$f" >&2
        done
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_until() { # deadline_s description command...
    local deadline=$(($(date +%s) + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what"
        sleep 0.05
    done
}

# psql against database $2 on port $1; extra args follow.
pq() {
    local port=$1 db=$2
    shift 2
    psql -h 127.0.0.1 -p "$port" -U postgres -qAtX -v ON_ERROR_STOP=1 -d "$db" "$@"
}

conninfo() { echo "host=127.0.0.1 port=$1 user=postgres dbname=$2"; }

apply_schema() { # port db
    local port=$1 db=$2
    ls "$SCHEMA_DIR"/*.sql >/dev/null 2>&1 || fail "no schema/*.sql in $SCHEMA_DIR"
    if [ -n "$MIGRATE" ] && [ -x "$MIGRATE" ]; then
        DATABASE_URL="postgresql://postgres@127.0.0.1:$port/$db" "$MIGRATE" \
            --schema-dir "$SCHEMA_DIR" >"$WORK/migrate-$db.out" 2>&1 ||
            fail "tg_migrate failed: $(cat "$WORK/migrate-$db.out")"
    else
        for f in $(ls "$SCHEMA_DIR"/*.sql | sort); do
            pq "$port" "$db" -1 -f "$f" >/dev/null || fail "applying $f failed"
        done
    fi
    pq "$port" "$db" -c "SELECT 1 FROM ledger LIMIT 0" >/dev/null || fail "schema has no ledger table"
}

new_db() { # port -> prints the name of a fresh, migrated database
    local port=$1 db
    db="tg_${TEST_NAME#test_}_$$_$RANDOM"
    pq "$port" postgres -c "CREATE DATABASE $db" >/dev/null
    DBS_TO_DROP+=("$port/$db")
    apply_schema "$port" "$db"
    echo "$db"
}

# A private cluster, because these tests stop and start PostgreSQL (the fixture's cluster is
# shared with tests running in parallel). Same settings as services.sh unless PRIV_PG_OPTS.
priv_pg_opts() {
    echo "-p $PRIV_PORT -k $PRIV_DIR -c listen_addresses=127.0.0.1 ${PRIV_PG_OPTS:--c fsync=off -c synchronous_commit=off -c full_page_writes=off} -c max_connections=50 -c shared_buffers=128MB"
}

priv_pg_init() {
    PRIV_DIR=$WORK/pg
    mkdir -p "$PRIV_DIR"
    chown postgres:postgres "$PRIV_DIR"
    chmod 700 "$PRIV_DIR"
    runuser -u postgres -- "$PGBIN/initdb" -D "$PRIV_DIR/data" -A trust -U postgres -E UTF8 \
        --locale=C.UTF-8 >"$WORK/initdb.out" 2>&1 || fail "initdb failed"
    for _ in $(seq 1 50); do
        PRIV_PORT=$((20000 + RANDOM % 40000))
        port_free "$PRIV_PORT" && return 0
    done
    fail "no free port"
}

priv_pg_start() {
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PRIV_DIR/data" -l "$PRIV_DIR/server.log" -w -t 60 \
        -o "$(priv_pg_opts)" start >/dev/null || {
        tail -20 "$PRIV_DIR/server.log" >&2
        fail "private PostgreSQL did not start on $PRIV_PORT"
    }
    wait_until 30 "PostgreSQL on $PRIV_PORT" "$PGBIN/pg_isready" -h 127.0.0.1 -p "$PRIV_PORT"
}

priv_pg_stop() {
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PRIV_DIR/data" -m fast -w -t 60 stop >/dev/null
}

# key=value from the last line of file $1 starting with tag $2
stat_of() { # file tag key
    grep "^$2 " "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$3=//p"
}

# Checks every row of run $3 column by column against the driver's formulas, and the count.
#   check_rows port db run producers rows_per_producer start_ms step_ms status_cycle model_expr
# Rows must be exactly (p, i) for p < producers, i < rows_per_producer (one each);
# rows_per_producer is one number or a comma-separated count per producer.
check_rows() {
    local port=$1 db=$2 run=$3 k=$4 n=$5 start=$6 step=$7 cycle=$8 model=${9:-"'gpt-test'"}
    local out
    if [[ $n != *,* ]]; then
        n=$(printf "$n%.0s," $(seq 1 "$k"))
        n=${n%,}
    fi
    out=$(pq "$port" "$db" -v run="$run" -v k="$k" -v n="$n" -v start="$start" -v step="$step" \
        -v cycle="$cycle" -v model="$model" <<'SQL'
WITH r AS (
    SELECT l.*, split_part(client_request_id, '-', 2)::int AS p,
           split_part(client_request_id, '-', 3)::bigint AS i
      FROM ledger l WHERE client_request_id LIKE :'run' || '-%'
), e AS (
    SELECT r.*,
           CASE WHEN :cycle = 1 THEN (ARRAY['ok','upstream_error','client_aborted','blocked'])[i % 4 + 1]
                ELSE 'ok' END AS e_status,
           100 + (i * 7 + p * 13) % 1000 AS e_prompt,
           20 + (i * 11 + p * 3) % 500 AS e_completion
      FROM r
), x AS (
    SELECT e.*,
           CASE WHEN e_status = 'blocked' THEN 0 ELSE e_prompt END AS xp,
           CASE WHEN e_status = 'blocked' THEN 0 ELSE e_completion END AS xc
      FROM e
)
SELECT count(*),
       count(DISTINCT (p, i)),
       count(*) FILTER (WHERE NOT (
            p >= 0 AND p < :k AND i >= 0 AND i < (string_to_array(:'n', ','))[p + 1]::bigint
        AND request_id = (lpad(to_hex(:start::bigint + i * :step), 12, '0') || '7' ||
                          lpad(to_hex(:run), 3, '0') || '80' || lpad(to_hex(p), 2, '0') ||
                          lpad(to_hex(i), 12, '0'))::uuid
        AND started_at = timestamptz 'epoch' + (:start::bigint + i * :step) * interval '1 millisecond'
        AND finished_at = timestamptz 'epoch' + (:start::bigint + i * :step) * interval '1 millisecond'
                          + interval '1.5 seconds' + (i % 1000) * interval '1 microsecond'
        AND status = e_status
        AND route = (ARRAY['/v1/chat/completions','/v1/completions','/v1/embeddings',
                           '/v1/responses','/v1/messages'])[i % 5 + 1]
        AND count_source = CASE WHEN i % 2 = 1 THEN 'estimated' ELSE 'upstream' END
        AND prompt_tokens = xp AND completion_tokens = xc
        AND cached_tokens = xp / 4 AND reasoning_tokens = xc / 5 AND total_tokens = xp + xc
        AND upstream_status IS NOT DISTINCT FROM CASE WHEN e_status = 'blocked' THEN NULL ELSE 200 END
        AND ttfb_ms IS NOT DISTINCT FROM CASE WHEN e_status = 'blocked' THEN NULL ELSE 100 + (i % 50)::int END
        AND latency_ms = 1500
        AND user_id = CASE WHEN i % 1000 = 0 THEN E'w\t\n\\\r\b\f\x0b|\u00e9|\x01\x7f|\uFFFD|' || i ELSE 'u' || p || '-' || (i % 10) END
        AND team_id IS NOT DISTINCT FROM CASE WHEN i % 3 = 0 THEN NULL ELSE 'team-' || (i % 3) END
        AND model = :model
        AND upstream_call_id = 'call-' || :run || '-' || p || '-' || i
       )),
       coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),
       coalesce(sum(cached_tokens), 0), coalesce(sum(reasoning_tokens), 0),
       coalesce(sum(total_tokens), 0)
  FROM x;
SQL
    ) || fail "check query failed"
    local want
    want=$(pq "$port" "$db" -v k="$k" -v n="$n" -v cycle="$cycle" <<'SQL'
WITH g AS (
    SELECT p, i,
           CASE WHEN :cycle = 1 AND i % 4 = 3 THEN 0 ELSE 100 + (i * 7 + p * 13) % 1000 END AS pr,
           CASE WHEN :cycle = 1 AND i % 4 = 3 THEN 0 ELSE 20 + (i * 11 + p * 3) % 500 END AS co
      FROM generate_series(0, :k - 1) p,
           LATERAL generate_series(0, (string_to_array(:'n', ','))[p + 1]::bigint - 1) i
)
SELECT count(*), count(*), 0, sum(pr), sum(co), sum(pr / 4), sum(co / 5), sum(pr + co) FROM g;
SQL
    )
    [ "$out" = "$want" ] || fail "ledger rows of run $run: got count|distinct|mismatches|prompt|completion|cached|reasoning|total = $out, want $want"
    log "run $run: $out (count|distinct|mismatches|prompt|completion|cached|reasoning|total) as expected"
}
