#!/usr/bin/env bash
# A row PostgreSQL refuses (a CHECK violation: cached_tokens > prompt_tokens) is isolated: the
# other rows of its batch are committed, it is written to rejected-<date>.log with the error,
# counted and logged; the rejected lines load back with COPY once fixed.
source "$(dirname "$0")/test_ledger_lib.sh"

PORT=$TG_TEST_PGPORT
DB=$(new_db "$PORT")
CI=$(conninfo "$PORT" "$DB")
K=2 N=1000 START=1767225600000 BAD=10
"$DRIVER" --conninfo "$CI" --spool-dir "$WORK/spool" --producers $K --rows $N --run-id 41 \
    --start-ms $START --bad-every $BAD --batch 400 --check-flush \
    >"$WORK/run.out" 2>"$WORK/run.log" || fail "driver failed"
nbad=$((K * N / BAD))
[ "$(stat_of "$WORK/run.out" stopped rejected)" = $nbad ] || fail "rejected counter: $(grep ^stopped "$WORK/run.out")"
[ "$(stat_of "$WORK/run.out" stopped committed)" = $((K * N - nbad)) ] || fail "committed counter"
grep -q "^flush conn=1 count=$((K * N - nbad))$" "$WORK/run.out" || fail "flush: $(grep ^flush "$WORK/run.out")"
grep -q "PostgreSQL refused row" "$WORK/run.log" || fail "rejection not logged"
rows=$(pq "$PORT" "$DB" -c "SELECT count(*), count(*) FILTER (WHERE (split_part(client_request_id, '-', 3)::int % $BAD) = $((BAD - 1))) FROM ledger")
[ "$rows" = "$((K * N - nbad))|0" ] || fail "ledger rows: $rows"
files=("$WORK"/spool/rejected-*.log)
[ ${#files[@]} = 1 ] && [ -f "${files[0]}" ] || fail "no rejected log"
[ "$(grep -c '^-- rejected' "${files[0]}")" = $nbad ] || fail "rejected log entries"
grep -q 'ledger_cached_tokens_check\|violates check constraint' "${files[0]}" || fail "error text missing"
# The rejected rows are valid COPY lines: load them into a copy of the stage table.
grep -v '^--' "${files[0]}" >"$WORK/rejected.copy"
loaded=$(pq "$PORT" "$DB" <<SQL
CREATE TEMP TABLE fix (request_id uuid, user_id text, team_id text, model text, route text, status text,
  prompt_tokens bigint, completion_tokens bigint, cached_tokens bigint, reasoning_tokens bigint,
  total_tokens bigint, count_source text, upstream_status integer, started_at timestamptz,
  finished_at timestamptz, ttfb_ms integer, latency_ms integer, upstream_call_id text, client_request_id text);
\copy fix FROM '$WORK/rejected.copy'
SELECT count(*), count(*) FILTER (WHERE cached_tokens = prompt_tokens + 1) FROM fix;
SQL
)
[ "$loaded" = "$nbad|$nbad" ] || fail "reloading rejected rows: $loaded"
log "rejected $nbad rows isolated, $((K * N - nbad)) committed"
log "PASS"
