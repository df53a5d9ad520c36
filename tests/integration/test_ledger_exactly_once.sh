#!/usr/bin/env bash
# (a) Exactly once: N rows appended from K producers are in the ledger once each, with exact
# token sums (also when the rings are full and rows wait in the overflow lists); appending the same rows again (same request ids) changes nothing; run_after_flush
# sees every row committed; a second process on the same spool directory is refused.
source "$(dirname "$0")/test_ledger_lib.sh"

PORT=$TG_TEST_PGPORT
DB=$(new_db "$PORT")
CI=$(conninfo "$PORT" "$DB")
K=4 N=5000 START=1767225600000 # 2026-01-01T00:00:00Z
ARGS=(--conninfo "$CI" --spool-dir "$WORK/spool" --producers $K --rows $N --run-id 11
      --start-ms $START --step-ms 3 --batch 500 --flush-ms 10 --check-flush)

log "first run: $K x $N rows, as fast as possible into 64 KiB rings (rows overflow to memory)"
"$DRIVER" "${ARGS[@]}" --ring-bytes 65536 >"$WORK/run1.out" 2>"$WORK/run1.log" || fail "driver failed"
grep -q "^flush conn=1 count=$((K * N))$" "$WORK/run1.out" ||
    fail "run_after_flush did not see all rows committed: $(grep '^flush' "$WORK/run1.out")"
[ "$(stat_of "$WORK/run1.out" stopped committed)" = $((K * N)) ] || fail "committed counter"
[ "$(stat_of "$WORK/run1.out" stopped duplicates)" = 0 ] || fail "duplicates counter"
[ "$(stat_of "$WORK/run1.out" stopped spooled)" = 0 ] || fail "nothing should be spooled"
[ "$(stat_of "$WORK/run1.out" stopped queue_depth)" = 0 ] || fail "queue not drained"
[ "$(stat_of "$WORK/run1.out" stopped overflow)" -gt 0 ] || fail "the overflow path was not exercised"
log "$(grep ^stopped "$WORK/run1.out")"
check_rows "$PORT" "$DB" 11 $K $N $START 3 0

log "second run with the same request ids"
"$DRIVER" "${ARGS[@]}" >"$WORK/run2.out" 2>"$WORK/run2.log" || fail "driver failed (2)"
[ "$(stat_of "$WORK/run2.out" stopped committed)" = 0 ] || fail "rows inserted twice"
[ "$(stat_of "$WORK/run2.out" stopped duplicates)" = $((K * N)) ] || fail "duplicates not counted"
check_rows "$PORT" "$DB" 11 $K $N $START 3 0

log "a second process on the same spool directory is refused"
"$DRIVER" "${ARGS[@]}" --rows 200000 --rate 2000 >"$WORK/run3.out" 2>"$WORK/run3.log" &
BG_PIDS+=($!)
wait_until 30 "first driver running" grep -q '^opened' "$WORK/run3.out"
set +e
"$DRIVER" "${ARGS[@]}" >"$WORK/run4.out" 2>"$WORK/run4.log"
rc=$?
set -e
[ $rc = 2 ] || fail "second driver on the same spool dir exited $rc, want 2"
grep -q "is in use by another process" "$WORK/run4.log" || fail "no clear error: $(cat "$WORK/run4.log")"
kill -9 "${BG_PIDS[0]}"
wait "${BG_PIDS[0]}" 2>/dev/null || true
log "PASS"
