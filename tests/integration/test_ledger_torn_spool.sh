#!/usr/bin/env bash
# (d) A spool file whose last record is torn: the rows before the tear are replayed, the tear is
# reported (log line + torn counter) and the file kept as .torn; a checksummed record that does
# not decode is reported and kept in the rejected log; run_after_flush gets conn=NULL while
# PostgreSQL is unreachable.
source "$(dirname "$0")/test_ledger_lib.sh"

PORT=$TG_TEST_PGPORT
DB=$(new_db "$PORT")
CI=$(conninfo "$PORT" "$DB")
for _ in $(seq 1 50); do
    DEAD=$((20000 + RANDOM % 40000))
    port_free "$DEAD" && break
done
K=2 N=3000 START=1767225600000
ARGS=(--spool-dir "$WORK/spool" --producers $K --rows $N --run-id 51 --start-ms $START --batch 250)
log "PostgreSQL unreachable (port $DEAD): every row goes to the spool"
"$DRIVER" "${ARGS[@]}" --conninfo "host=127.0.0.1 port=$DEAD user=postgres dbname=x" \
    --retry-ms 200 --check-flush --segment-bytes 65536 >"$WORK/spool.out" 2>"$WORK/spool.log" ||
    fail "driver failed"
[ "$(stat_of "$WORK/spool.out" stopped spooled)" = $((K * N)) ] || fail "not all rows spooled: $(grep ^stopped "$WORK/spool.out")"
grep -q '^flush conn=0 count=-1$' "$WORK/spool.out" || fail "run_after_flush should get conn NULL"
last=$(ls "$WORK"/spool/spool-*.log | sort | tail -n 1)
[ "$(ls "$WORK"/spool/spool-*.log | wc -l)" -gt 1 ] || fail "expected several segments"
size=$(stat -c %s "$last")
truncate -s $((size - 3)) "$last"
log "truncated $last by 3 bytes (mid-record)"
first=$(ls "$WORK"/spool/spool-*.log | sort | head -n 1)
"$DRIVER" --append-junk-record "$first" || fail "cannot append the junk record"
log "appended a checksummed record that is not a row to $first"

"$DRIVER" "${ARGS[@]}" --conninfo "$CI" --recover-only --wait-drained-ms 60000 \
    >"$WORK/replay.out" 2>"$WORK/replay.log" || fail "replay driver failed"
# The tear and the undecodable record.
[ "$(stat_of "$WORK/replay.out" stopped torn)" = 2 ] || fail "tear not counted: $(grep ^stopped "$WORK/replay.out")"
[ "$(stat_of "$WORK/replay.out" stopped replayed)" = $((K * N - 1)) ] || fail "replayed counter"
grep -q "torn last spool record in $last" "$WORK/replay.log" || fail "tear not logged: $(cat "$WORK/replay.log")"
[ -f "$last.torn" ] || fail "torn segment not kept as .torn"
grep -q "undecodable 85-byte record in a spool file" "$WORK/replay.log" || fail "undecodable record not logged"
grep -A1 -- "-- undecodable record from a spool file" "$WORK"/spool/rejected-*.log | grep -q "^7fabab" ||
    fail "undecodable record not kept in the rejected log"
ls "$WORK"/spool/spool-*.log >/dev/null 2>&1 && fail "spool segments left after replay"
cnt=$(pq "$PORT" "$DB" -c "SELECT count(*) FROM ledger")
[ "$cnt" = $((K * N - 1)) ] || fail "ledger has $cnt rows, want $((K * N - 1))"
missing=$(pq "$PORT" "$DB" -c "SELECT string_agg(p || '-' || i, ' ') FROM generate_series(0, $K - 1) p,
    generate_series(0, $N - 1) i WHERE NOT EXISTS (SELECT 1 FROM ledger WHERE client_request_id = '51-' || p || '-' || i)")
[[ $missing == *-$((N - 1)) ]] || fail "the torn record should be a producer's last row, missing: $missing"
log "replayed up to the tear; missing row $missing (the torn record)"
# The client still has that row: appending everything again fills exactly that gap.
"$DRIVER" "${ARGS[@]}" --conninfo "$CI" >"$WORK/again.out" 2>"$WORK/again.log" || fail "driver failed (again)"
[ "$(stat_of "$WORK/again.out" stopped committed)" = 1 ] || fail "re-append: $(grep ^stopped "$WORK/again.out")"
check_rows "$PORT" "$DB" 51 $K $N $START 1 0
log "PASS"
