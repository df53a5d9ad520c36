#!/usr/bin/env bash
# A PostgreSQL backend that stops answering mid-batch (SIGSTOP): the writer gives up after
# query_timeout_ms, spools, reconnects; when the backend resumes, its half-done transaction
# (whose outcome the writer never learnt) and the spool replay still leave exactly one row
# per request. Uses its own PostgreSQL cluster (a stopped backend may hold shared locks).
source "$(dirname "$0")/test_ledger_lib.sh"

priv_pg_init
priv_pg_start
DB=$(new_db "$PRIV_PORT")
CI=$(conninfo "$PRIV_PORT" "$DB")
K=2 RATE=500 N=5000 START=1767225600000
"$DRIVER" --conninfo "$CI" --spool-dir "$WORK/spool" --producers $K --rows $N --rate $RATE \
    --run-id 81 --start-ms $START --batch 200 --flush-ms 20 --retry-ms 300 --query-timeout-ms 1500 \
    --wait-drained-ms 120000 --check-flush --stop-timeout-ms 60000 \
    >"$WORK/driver.out" 2>"$WORK/driver.log" &
DRIVER_PID=$!
BG_PIDS+=($DRIVER_PID)
committed_over() { [ "$(pq "$PRIV_PORT" "$DB" -c "SELECT count(*) FROM ledger")" -gt "$1" ]; }
wait_until 60 "rows committed" committed_over 500
backend=$(pq "$PRIV_PORT" postgres -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'tollgate-ledger'")
[ -n "$backend" ] || fail "no ledger backend found"
log "SIGSTOP the ledger's backend $backend"
kill -STOP "$backend"
BG_PIDS+=("-CONT $backend")
wait_until 30 "the time-out to be noticed" grep -q "no answer from PostgreSQL within 1500 ms" "$WORK/driver.log"
wait_until 30 "rows spooled" sh -c "ls $WORK/spool/spool-*.log"
sleep 2
log "SIGCONT the backend"
kill -CONT "$backend"
wait "$DRIVER_PID" || fail "driver failed"
BG_PIDS=()
grep '^stopped' "$WORK/driver.out"
[ "$(stat_of "$WORK/driver.out" stopped spooled)" -gt 0 ] || fail "nothing spooled"
[ "$(stat_of "$WORK/driver.out" stopped queue_depth)" = 0 ] || fail "queue not drained"
grep -q "^flush conn=1 count=$((K * N))$" "$WORK/driver.out" || fail "flush: $(grep ^flush "$WORK/driver.out")"
check_rows "$PRIV_PORT" "$DB" 81 $K $N $START 1 0
log "PASS"
