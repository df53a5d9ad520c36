# shellcheck shell=bash
# lib_ledger.sh: helpers for the end-to-end ledger tests (sourced after nothing: it sources
# lib.sh itself). Adds a private PostgreSQL cluster that a test may stop and start (the
# fixture's cluster is shared with tests running in parallel), the node load client, reading
# tollgate's /metrics, and the comparison of what clients were told with the ledger.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODE_DIR=${TG_SOURCE_DIR:?}/tests/node
PGBIN=${TG_TEST_PGBIN:?}
PRIV_DIR=""
PRIV_PORT=""
LOAD_PIDS=()

# Stops what lib.sh does not know about (load clients, the private cluster), then runs
# lib.sh's clean-up with the original exit status.
ledger_cleanup() {
    local rc=$?
    for pid in "${LOAD_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done
    # stop tollgate here (SIGTERM, clean exit) so that a sanitizer build's reports are in its
    # log, and fail on them
    for pid in "${TG_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${TG_PIDS[@]:-}"; do
        [ -n "$pid" ] && { for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done; }
    done
    local bad
    bad=$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log 2>/dev/null || true)
    if [ -n "$bad" ]; then
        log "sanitizer reports in: $bad"
        [ "$rc" != 0 ] || rc=1
    fi
    if [ -n "$PRIV_DIR" ] && [ -d "$PRIV_DIR/data" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PRIV_DIR/data" -m immediate -w stop \
            >/dev/null 2>&1 || true
        if [ "$rc" != 0 ] || [ "$TEST_FAILED" != 0 ]; then
            cp "$PRIV_DIR/server.log" "$T/postgresql.log" 2>/dev/null || true
        fi
    fi
    set +e
    (exit "$rc") # tg_cleanup reads the status from $?
    tg_cleanup
}
trap ledger_cleanup EXIT

# use_new_db NAME: sets DB_URL to a fresh migrated database on the fixture's cluster. (lib.sh's
# new_db registers the database for dropping in TG_DBS, but `DB_URL=$(new_db x)` runs it in a
# subshell, so the registration is lost; this registers it in the test's own shell.)
use_new_db() {
    DB_URL=$(new_db "$1")
    TG_DBS+=("${DB_URL##*/}")
}

# ---- a private PostgreSQL cluster ----------------------------------------------------------------
# As services.sh, but with synchronous_commit on: these tests crash PostgreSQL (pg_ctl -m
# immediate), and with synchronous_commit=off a crash loses transactions it had already
# acknowledged — ledger rows tollgate was told were committed (it then advanced its rings).
# fsync stays off: the machine itself does not crash, and the WAL written at each commit is in
# the page cache.

priv_pg_init() {
    PRIV_DIR=$T/pg
    mkdir -p "$PRIV_DIR"
    chown postgres:postgres "$PRIV_DIR"
    chmod 700 "$PRIV_DIR"
    runuser -u postgres -- "$PGBIN/initdb" -D "$PRIV_DIR/data" -A trust -U postgres -E UTF8 \
        --locale=C.UTF-8 >"$T/initdb.out" 2>&1 || fail "initdb failed: $(tail -5 "$T/initdb.out")"
    PRIV_PORT=$(free_port)
}

priv_pg_start() {
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PRIV_DIR/data" -l "$PRIV_DIR/server.log" -w -t 60 \
        -o "-p $PRIV_PORT -k $PRIV_DIR -c listen_addresses=127.0.0.1 ${PRIV_PG_OPTS:--c fsync=off -c synchronous_commit=on -c full_page_writes=off} -c max_connections=100 -c shared_buffers=128MB" \
        start >/dev/null || fail "private PostgreSQL did not start on $PRIV_PORT: $(tail -5 "$PRIV_DIR/server.log")"
    wait_until 30 "PostgreSQL on $PRIV_PORT" "$PGBIN/pg_isready" -q -U postgres -d postgres -h 127.0.0.1 -p "$PRIV_PORT"
}

priv_pg_stop() { # [mode] (fast by default; immediate = as if the server crashed)
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PRIV_DIR/data" -m "${1:-fast}" -w -t 60 stop \
        >/dev/null || fail "private PostgreSQL did not stop"
}

# priv_new_db NAME: a database on the private cluster migrated by `tollgate migrate`; prints
# its URL.
priv_new_db() {
    local name="l_${1}_$$"
    psql -h 127.0.0.1 -p "$PRIV_PORT" -U postgres -qAt -v ON_ERROR_STOP=1 -d postgres \
        -c "CREATE DATABASE \"$name\"" >/dev/null
    local url="postgresql://postgres@127.0.0.1:$PRIV_PORT/$name"
    DATABASE_URL="$url" TOLLGATE_SCHEMA_DIR="$TG_SOURCE_DIR/schema" "$TOLLGATE_BIN" migrate \
        >"$T/migrate-$name.out" 2>&1 || fail "tollgate migrate failed: $(tail -5 "$T/migrate-$name.out")"
    echo "$url"
}

# ---- tollgate's own figures ---------------------------------------------------------------------

# metric NAME [BASE_URL]: the value of an unlabelled metric in GET /metrics (empty if absent)
metric() {
    curl -fsS "${2:-$TG_URL}/metrics" 2>/dev/null | awk -v n="$1" '$1 == n {print $2; exit}'
}

# True once every ledger row tollgate holds is committed: nothing queued, nothing spooled,
# PostgreSQL reachable.
ledger_drained() {
    local m
    m=$(curl -fsS "${1:-$TG_URL}/metrics" 2>/dev/null) || return 1
    [ "$(awk '$1 == "tollgate_ledger_queue_rows" {print $2}' <<<"$m")" = 0 ] &&
        [ "$(awk '$1 == "tollgate_ledger_spool_files" {print $2}' <<<"$m")" = 0 ] &&
        [ "$(awk '$1 == "tollgate_ledger_spool_bytes" {print $2}' <<<"$m")" = 0 ] &&
        [ "$(awk '$1 == "tollgate_ledger_pg_up" {print $2}' <<<"$m")" = 1 ]
}

# ---- the load client (tests/node/ledger_load.mjs) -----------------------------------------------

# start_load NAME ARGS...: starts the client in the background writing $T/NAME.jsonl; sets LOAD_PID
start_load() {
    local name=$1; shift
    node "$NODE_DIR/ledger_load.mjs" --url "$TG_URL" --key "$SERVICE_KEY" --out "$T/$name.jsonl" \
        --stop-file "$T/$name.stop" "$@" >"$T/$name.out" 2>"$T/$name.err.log" &
    LOAD_PID=$!
    LOAD_PIDS+=("$LOAD_PID")
}

stop_load() { # NAME PID: asks the client to stop, waits for it; fails if it failed
    touch "$T/$1.stop"
    wait "$2" || fail "load client $1 failed: $(tail -5 "$T/$1.err.log")"
    log "load $1: $(cat "$T/$1.out")"
}

load_completed() { # NAME: complete answers so far
    [ -f "$T/$1.jsonl" ] || { echo 0; return; }
    grep -c '"ok":true' "$T/$1.jsonl" || true
}

# check_load DB_URL MODE FILES...: loads the clients' records into the database and compares
# them with the ledger. MODE strict: every attempt must have had a complete answer and the
# ledger holds nothing else. MODE crash: attempts without a complete answer (in flight at a
# kill -9, refused while tollgate was down) may have a row or not, but at most one.
# Prints "completed=<n> incomplete=<n> incomplete_with_row=<n> tokens=<sum>".
check_load() {
    local url=$1 mode=$2; shift 2
    cat "$@" | jq -r '[.cid, (.rid // null), .ok, (.p // 0), (.c // 0), (.ca // 0), (.re // 0),
        (.t // 0), .kind, (.http // 0)] | @csv' >"$T/attempts.csv"
    psql_db "$url" >/dev/null <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS client_attempts;
CREATE TABLE client_attempts (cid text PRIMARY KEY, rid uuid, ok boolean, p bigint, c bigint,
    ca bigint, re bigint, t bigint, kind text, http int);
\copy client_attempts FROM '$T/attempts.csv' WITH (FORMAT csv)
SQL
    local out
    out=$(psql_db "$url" -F ' ' <<'SQL'
WITH a AS (SELECT * FROM client_attempts),
     per_cid AS (SELECT client_request_id AS cid, count(*) AS n FROM ledger GROUP BY 1)
SELECT
  (SELECT count(*) FROM a WHERE ok),
  (SELECT count(*) FROM a WHERE NOT ok),
  -- complete answers without exactly one row under the id the client was given
  (SELECT count(*) FROM a WHERE ok AND (SELECT count(*) FROM ledger l
       WHERE l.request_id = a.rid) <> 1),
  -- complete answers whose row differs from what the client was told
  (SELECT count(*) FROM a JOIN ledger l ON l.request_id = a.rid WHERE a.ok AND NOT (
       l.client_request_id = a.cid AND l.status = 'ok' AND l.count_source = 'upstream'
       AND l.prompt_tokens = a.p AND l.completion_tokens = a.c AND l.cached_tokens = a.ca
       AND l.reasoning_tokens = a.re AND l.total_tokens = a.t AND l.upstream_status = 200)),
  -- rows of requests no client made
  (SELECT count(*) FROM ledger l WHERE NOT EXISTS (SELECT 1 FROM a WHERE a.cid = l.client_request_id)),
  -- a client request billed twice
  (SELECT count(*) FROM per_cid WHERE n > 1),
  -- attempts without a complete answer that have a row
  (SELECT count(*) FROM a JOIN per_cid USING (cid) WHERE NOT a.ok),
  (SELECT count(*) FROM ledger),
  (SELECT coalesce(sum(t), 0) FROM a WHERE ok),
  (SELECT coalesce(sum(l.total_tokens), 0) FROM ledger l JOIN a ON a.cid = l.client_request_id WHERE a.ok),
  (SELECT coalesce(sum(total_tokens), 0) FROM ledger)
SQL
)
    local ok bad missing differ extra twice inc_row rows told billed all_tokens
    read -r ok bad missing differ extra twice inc_row rows told billed all_tokens <<<"$out"
    log "check_load ($mode): complete=$ok incomplete=$bad rows=$rows missing=$missing differ=$differ extra=$extra twice=$twice incomplete_with_row=$inc_row tokens told=$told billed=$billed all=$all_tokens"
    [ "$ok" -gt 0 ] || fail "no complete answers"
    assert_eq 0 "$missing" "complete answers without exactly one ledger row"
    assert_eq 0 "$differ" "rows that differ from what the client was told"
    assert_eq 0 "$extra" "ledger rows of requests no client made"
    assert_eq 0 "$twice" "client requests with more than one row"
    assert_eq "$told" "$billed" "tokens billed for the complete answers"
    if [ "$mode" = strict ]; then
        assert_eq 0 "$bad" "requests without a complete answer"
        assert_eq "$ok" "$rows" "ledger rows"
        assert_eq "$told" "$all_tokens" "tokens in the ledger"
    else
        assert_eq $((ok + inc_row)) "$rows" "ledger rows (complete answers + incomplete ones with a row)"
    fi
    echo "completed=$ok incomplete=$bad incomplete_with_row=$inc_row tokens=$told"
}

# ---- tollgate on a given port (a restart where the clients keep their address) ----------------

# start_tollgate_at NAME PORT VAR=VALUE...: as lib.sh's start_tollgate, but on PORT (sets
# TG_URL, TG_PID, TG_PORT, TG_LOG). Pass LEDGER_SPOOL_DIR=... to reuse a spool directory.
start_tollgate_at() {
    local name=$1 port=$2; shift 2
    TG_PORT=$port
    TG_URL="http://127.0.0.1:$TG_PORT"
    TG_LOG="$T/$name.log"
    mkdir -p "$T/spool-$name"
    env -i PATH="$PATH" HOME="${HOME:-/root}" \
        TOLLGATE_LISTEN="127.0.0.1:$TG_PORT" \
        TOLLGATE_WORKERS="${TOLLGATE_WORKERS:-2}" \
        DATABASE_URL="${DB_URL:?}" \
        REDIS_URL="redis://127.0.0.1:$TG_TEST_REDIS_PORT/0" \
        REDIS_KEY_PREFIX="${REDIS_PREFIX:-t$$:}" \
        UPSTREAM_URL="${UPSTREAM:-$FAKE_URL}" \
        LEDGER_SPOOL_DIR="$T/spool-$name" \
        LEDGER_FLUSH_MS=5 \
        "$@" \
        "$TOLLGATE_BIN" >"$TG_LOG" 2>&1 &
    TG_PID=$!
    TG_PIDS+=("$TG_PID")
    local deadline=$(($(date +%s) + 20))
    until curl -fsS -o /dev/null "$TG_URL/healthz" 2>/dev/null; do
        kill -0 "$TG_PID" 2>/dev/null || fail "tollgate exited at start-up: $(tail -n 5 "$TG_LOG")"
        [ "$(date +%s)" -lt "$deadline" ] || fail "tollgate did not come up"
        sleep 0.05
    done
}

# warm_users USER...: 16 requests per user on fresh connections (SO_REUSEPORT spreads them over
# the workers), so every worker has every user record cached before PostgreSQL goes away.
# Records them in $T/warm.jsonl in the load client's format (they are in the ledger too).
warm_users() {
    local u i rid
    for u in "$@"; do
        for i in $(seq 1 16); do
            curl -fsS -D "$T/warm.h" -o "$T/warm.body" "$TG_URL/v1/chat/completions" \
                -H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: $u" \
                -H "X-Request-Id: warm-$u-$i" -H 'x-fake-usage: 3,2' -H 'Content-Type: application/json' \
                -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' ||
                fail "warm-up request for $u failed"
            rid=$(grep -i '^x-request-id:' "$T/warm.h" | cut -d: -f2- | tr -d '\r ')
            jq -c --arg cid "warm-$u-$i" --arg rid "$rid" '{cid: $cid, rid: $rid, ok: true, http: 200,
                kind: "warmup", p: .usage.prompt_tokens, c: .usage.completion_tokens, ca: 0, re: 0,
                t: .usage.total_tokens}' "$T/warm.body" >>"$T/warm.jsonl"
        done
    done
}
