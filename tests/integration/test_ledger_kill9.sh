#!/usr/bin/env bash
# (c) kill -9 of the writer while it is spooling (PostgreSQL down), restart on the same spool
# directory, bring PostgreSQL back: every row the dead process appended is in the ledger exactly
# once (rows still in its ring files and rows in its spool files), with exact token figures,
# also when the restarted process is configured with fewer workers.
source "$(dirname "$0")/test_ledger_lib.sh"

priv_pg_init
priv_pg_start
DB=$(new_db "$PRIV_PORT")
CI=$(conninfo "$PRIV_PORT" "$DB")
K=3 RATE=600 START=1767225600000
# A long flush interval keeps rows waiting in the ring files, so the restart must recover
# both ring records and spool segments.
"$DRIVER" --conninfo "$CI" --spool-dir "$WORK/spool" --producers $K --rows 10000000 --rate $RATE \
    --run-id 71 --start-ms $START --batch 5000 --flush-ms 1500 --retry-ms 300 --progress-ms 50 \
    >"$WORK/first.out" 2>"$WORK/first.log" &
FIRST=$!
BG_PIDS+=($FIRST)
committed() { pq "$PRIV_PORT" "$DB" -c "SELECT count(*) FROM ledger" 2>/dev/null || echo 0; }
committed_over() { [ "$(committed)" -gt "$1" ]; }
wait_until 60 "rows committed" committed_over 500
log "stopping PostgreSQL; the writer spools"
priv_pg_stop
wait_until 30 "a spooled segment" sh -c "test -s \"\$(ls $WORK/spool/spool-*.log | tail -n 1)\""
sleep 2.3  # let more rows arrive after the last spool flush, into the ring files
kill -9 $FIRST
wait $FIRST 2>/dev/null || true
BG_PIDS=()
last_progress=()
for p in $(seq 0 $((K - 1))); do
    last_progress+=("$(grep "^progress p=$p " "$WORK/first.out" | tail -n 1 | sed 's/.*n=//')")
done
log "killed -9 after appending at least ${last_progress[*]} rows per producer; spool: $(ls "$WORK"/spool | tr '\n' ' ')"

log "restart on the same spool directory with PostgreSQL still down, configured with 1 worker"
# ring-1.bin and ring-2.bin belong to workers the new configuration does not have: they are
# drained all the same.
"$DRIVER" --conninfo "$CI" --spool-dir "$WORK/spool" --producers 1 --run-id 71 --retry-ms 300 \
    --recover-only --wait-drained-ms 120000 --check-flush \
    >"$WORK/second.out" 2>"$WORK/second.log" &
SECOND=$!
BG_PIDS+=($SECOND)
wait_until 30 "the restarted writer" grep -q '^opened' "$WORK/second.out"
recovered=$(stat_of "$WORK/second.out" opened recovered)
log "restarted: $(grep ^opened "$WORK/second.out")"
[ "$recovered" -gt 0 ] || fail "no ring records recovered"
wait_until 30 "the recovered ring rows spooled" grep -q 'spooling rows to' "$WORK/second.log"
priv_pg_start
log "PostgreSQL back"
wait $SECOND || fail "restarted driver failed"
BG_PIDS=()
grep '^stopped' "$WORK/second.out"
[ "$(stat_of "$WORK/second.out" stopped torn)" = 0 ] || fail "torn records"
[ "$(stat_of "$WORK/second.out" stopped queue_depth)" = 0 ] || fail "queue not drained"
[ "$(stat_of "$WORK/second.out" stopped spool_files)" = 0 ] || fail "spool not drained"
ls "$WORK"/spool/spool-*.log >/dev/null 2>&1 && fail "spool segments left"
counts=$(pq "$PRIV_PORT" "$DB" -c "SELECT string_agg(c::text, ',' ORDER BY p) FROM (
    SELECT split_part(client_request_id, '-', 2)::int AS p, count(*) AS c FROM ledger GROUP BY 1) s")
log "rows per producer in the ledger: $counts"
IFS=, read -r -a per <<<"$counts"
[ ${#per[@]} = $K ] || fail "rows of $K producers expected"
for p in $(seq 0 $((K - 1))); do
    [ "${per[$p]}" -ge "${last_progress[$p]}" ] || fail "producer $p: ${per[$p]} rows < ${last_progress[$p]} appended"
done
grep -q "^flush conn=1 count=$((${per[0]} + ${per[1]} + ${per[2]}))$" "$WORK/second.out" ||
    fail "flush: $(grep ^flush "$WORK/second.out")"
# Exactly rows 0..count-1 of each producer, once each, every column as appended.
check_rows "$PRIV_PORT" "$DB" 71 $K "$counts" $START 1 0
log "PASS"
