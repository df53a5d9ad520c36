#!/usr/bin/env bash
# (b) PostgreSQL stopped for 30 s under steady appends: rows are spooled (fsync'd), then all
# replayed when it is back; the ledger holds exactly one row per appended row with exact sums.
# Uses its own PostgreSQL cluster (the fixture's is shared with parallel tests).
source "$(dirname "$0")/test_ledger_lib.sh"

OUTAGE_S=${LEDGER_OUTAGE_S:-30}
priv_pg_init
priv_pg_start
DB=$(new_db "$PRIV_PORT")
CI=$(conninfo "$PRIV_PORT" "$DB")
K=2 RATE=500 START=1767225600000
N=$(((OUTAGE_S + 15) * RATE / K)) # appends last the outage plus ~15 s
log "driver: $K producers, $N rows each at $RATE rows/s; PostgreSQL on $PRIV_PORT"
"$DRIVER" --conninfo "$CI" --spool-dir "$WORK/spool" --producers $K --rows $N --rate $RATE \
    --run-id 61 --start-ms $START --batch 200 --flush-ms 20 --retry-ms 500 --progress-ms 500 \
    --wait-drained-ms 120000 --check-flush --stop-timeout-ms 60000 \
    >"$WORK/driver.out" 2>"$WORK/driver.log" &
DRIVER_PID=$!
BG_PIDS+=($DRIVER_PID)
committed() { pq "$PRIV_PORT" "$DB" -c "SELECT count(*) FROM ledger" 2>/dev/null || echo 0; }
committed_over() { [ "$(committed)" -gt "$1" ]; }
wait_until 60 "rows committed before the outage" committed_over 1000
before=$(committed)
log "stopping PostgreSQL for ${OUTAGE_S}s ($before rows committed so far)"
priv_pg_stop
stopped_at=$(date +%s)
progress() { grep '^progress' "$WORK/driver.out" | tail -n $K | sed 's/.*n=//' | paste -sd+ | bc; }
p0=$(progress)
wait_until 30 "a spool segment" sh -c "ls $WORK/spool/spool-*.log"
sleep $((OUTAGE_S - ($(date +%s) - stopped_at)))  # the outage itself lasts OUTAGE_S seconds
p1=$(progress)
segs=$(ls "$WORK"/spool/spool-*.log | wc -l)
bytes=$(cat "$WORK"/spool/spool-*.log | wc -c)
log "during the outage: appends went on ($p0 -> $p1 rows), spool: $segs segments, $bytes bytes"
[ "$p1" -gt $((p0 + RATE * (OUTAGE_S - 5))) ] || fail "appends stalled during the outage"
[ "$bytes" -gt 0 ] || fail "nothing spooled"
priv_pg_start
log "PostgreSQL back"
wait "$DRIVER_PID" || fail "driver failed"
BG_PIDS=()
grep '^stopped' "$WORK/driver.out"
spooled=$(stat_of "$WORK/driver.out" stopped spooled)
[ "$spooled" -gt $((RATE * (OUTAGE_S - 5))) ] || fail "too few rows spooled ($spooled)"
[ "$(stat_of "$WORK/driver.out" stopped replayed)" = "$spooled" ] || fail "replayed != spooled"
[ "$(stat_of "$WORK/driver.out" stopped torn)" = 0 ] || fail "torn records"
# a batch whose COMMIT reached PostgreSQL as it was shutting down (the writer never saw the
# answer) is spooled and, replayed, found already there: counted as duplicates, not twice
committed=$(stat_of "$WORK/driver.out" stopped committed)
dups=$(stat_of "$WORK/driver.out" stopped duplicates)
[ $((committed + dups)) = $((K * N)) ] || fail "committed ($committed) + duplicates ($dups) != $((K * N))"
grep -q "^flush conn=1 count=$((K * N))$" "$WORK/driver.out" || fail "flush: $(grep ^flush "$WORK/driver.out")"
ls "$WORK"/spool/spool-*.log >/dev/null 2>&1 && fail "spool segments left"
grep -q "spooling rows to" "$WORK/driver.log" || fail "spooling not logged"
grep -q "spool replayed" "$WORK/driver.log" || fail "replay not logged"
check_rows "$PRIV_PORT" "$DB" 61 $K $N $START 1 0
log "PASS"
