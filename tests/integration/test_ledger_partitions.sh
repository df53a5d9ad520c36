#!/usr/bin/env bash
# (f) Rows across a month (and year) boundary land in both monthly partitions, which the ledger
# writer creates (tg_ensure_ledger_partitions) before inserting; nothing goes to ledger_default.
source "$(dirname "$0")/test_ledger_lib.sh"

PORT=$TG_TEST_PGPORT
DB=$(new_db "$PORT")
CI=$(conninfo "$PORT" "$DB")
BOUNDARY_S=$(date -u -d '2031-01-01 00:00:00' +%s)
K=2 N=2000 START=$((BOUNDARY_S * 1000 - 1000)) # rows i < 1000 in December 2030
exists=$(pq "$PORT" "$DB" -c "SELECT count(*) FROM pg_class WHERE relname IN ('ledger_2030_12', 'ledger_2031_01')")
[ "$exists" = 0 ] || fail "partitions exist before the test"
"$DRIVER" --conninfo "$CI" --spool-dir "$WORK/spool" --producers $K --rows $N --run-id 31 \
    --start-ms $START --step-ms 1 --batch 300 >"$WORK/run.out" 2>"$WORK/run.log" || fail "driver failed"
check_rows "$PORT" "$DB" 31 $K $N $START 1 0
got=$(pq "$PORT" "$DB" -c "SELECT string_agg(t || '=' || c, ' ' ORDER BY t) FROM (
        SELECT tableoid::regclass::text AS t, count(*) AS c FROM ledger GROUP BY 1) s")
want="ledger_2030_12=$((K * 1000)) ledger_2031_01=$((K * (N - 1000)))"
[ "$got" = "$want" ] || fail "partitions: got '$got' want '$want'"
bounds=$(pq "$PORT" "$DB" -c "SELECT max(started_at) FILTER (WHERE tableoid = 'ledger_2030_12'::regclass)::text || ' ' ||
        min(started_at) FILTER (WHERE tableoid = 'ledger_2031_01'::regclass)::text FROM ledger")
[ "$bounds" = "2030-12-31 23:59:59.999+00 2031-01-01 00:00:00+00" ] || fail "boundary rows: $bounds"
log "partitions: $got"
log "PASS"
