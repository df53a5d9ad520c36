#!/usr/bin/env bash
# Issue 6 item 2 (kill -9), end to end: under a steady load of real requests, PostgreSQL (a
# private cluster) goes down, tollgate spools, and is killed with SIGKILL while spooling — rows
# are then both in spool segments and, with LEDGER_FLUSH_MS=1000, still in the ring files. A
# new tollgate on the same port and LEDGER_SPOOL_DIR starts while PostgreSQL is still down, then
# PostgreSQL comes back. The load client runs through all of it.
#
# Afterwards every request whose client got a complete answer has exactly one row with the
# tokens it was told; no client request has two rows; no row belongs to a request no client
# made. Requests without a complete answer — in flight at the kill (connection cut), refused
# while tollgate was down, answered 503 by the new process while it could not load the user
# from PostgreSQL — may have a row or not (at most one); the test reports how many have one.
source "$(dirname "$0")/lib_ledger.sh"

RATE=${LEDGER_LOAD_RATE:-20} # attempts/s per loop, 4 loops
USERS=(kill-a kill-b kill-c)
priv_pg_init
priv_pg_start
DB_URL=$(priv_new_db kill9)
start_fake
SPOOL=$T/spool
PORT=$(free_port)
TG_ENV=("TOLLGATE_SERVICE_KEY=$SERVICE_KEY" AUTH_CACHE_TTL_S=3600 "LEDGER_SPOOL_DIR=$SPOOL" LEDGER_FLUSH_MS=1000)
start_tollgate_at tg1 "$PORT" "${TG_ENV[@]}"
TG1=$TG_PID
warm_users "${USERS[@]}"
wait_until 20 "the warm-up rows" ledger_drained

# streams of 4 chunks 25 ms apart: some are always in flight
start_load load --run K --loops 4 --rate "$RATE" --stream-delay-ms 25 --timeout-ms 20000 \
    --users "$(IFS=,; echo "${USERS[*]}")"
LOAD=$LOAD_PID
over() { [ "$(load_completed load)" -ge "$1" ]; }
wait_until 30 "load before the outage" over 200
log "stopping PostgreSQL (immediate); tollgate spools"
priv_pg_stop immediate
spooling() { [ "$(metric tollgate_ledger_spool_bytes)" -gt 0 ]; }
wait_until 30 "spooling" spooling
n=$(load_completed load)
wait_until 30 "load while spooling" over $((n + 150))
kill -9 "$TG1"
wait "$TG1" 2>/dev/null || true
at_kill=$(load_completed load)
log "killed -9 after $at_kill complete answers; spool dir: $(cd "$SPOOL" && ls | tr '\n' ' ')"
refused() { [ "$(grep -c 'ECONNREFUSED' "$T/load.jsonl" || true)" -ge 8 ]; }
wait_until 30 "clients refused while tollgate is down" refused

log "restarting tollgate on the same port and spool directory (PostgreSQL still down)"
start_tollgate_at tg2 "$PORT" "${TG_ENV[@]}"
recovered=$(grep -o 'ring [^ ]*: [0-9]* rows left by the previous run are queued' "$TG_LOG" |
    awk '{s += $3} END {print s + 0}')
log "the new process found $recovered ring rows of the killed one; $(grep -o '[0-9]* spool files ([0-9]* bytes) from an earlier run' "$TG_LOG" || echo 'no spool files')"
[ "$recovered" -gt 0 ] || fail "no ring rows recovered (the kill should leave some in the rings)"
grep -q 'spool files (.*) from an earlier run to replay' "$TG_LOG" || fail "the killed process's spool files were not picked up"
unavailable() { [ "$(grep -c '"http":503' "$T/load.jsonl" || true)" -ge 8 ]; }
wait_until 30 "503s while the new process cannot load users" unavailable

priv_pg_start
log "PostgreSQL back"
drained_spool() { [ "$(metric tollgate_ledger_spool_bytes)" = 0 ] && [ "$(metric tollgate_ledger_spool_files)" = 0 ]; }
wait_until 120 "the spool to be replayed" drained_spool
n=$(load_completed load)
wait_until 60 "load after the restart" over $((n + 150))
stop_load load "$LOAD"
wait_until 60 "the ledger to drain" ledger_drained
assert_eq 0 "$(metric tollgate_ledger_torn_records_total)" "torn records"
ls "$SPOOL"/spool-*.log >/dev/null 2>&1 && fail "spool segments left after the replay"

summary=$(check_load "$DB_URL" crash "$T/warm.jsonl" "$T/load.jsonl")
# how the requests without a complete answer ended, and whether they have a row
psql_db "$DB_URL" -F ' ' -c "SELECT count(*), count(l.request_id), CASE
        WHEN a.http = 0 THEN 'no reply head (refused or cut before the head)'
        WHEN a.http = 200 THEN 'head received, body cut at the kill'
        ELSE 'HTTP ' || a.http END
    FROM client_attempts a LEFT JOIN ledger l ON l.client_request_id = a.cid
    WHERE NOT a.ok GROUP BY 3 ORDER BY 3" | while read -r total with_row what; do
    log "incomplete: $total × $what; $with_row of them have a row"
done
log "PASS: $summary; $recovered ring rows recovered after kill -9"
