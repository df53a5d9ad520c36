#!/usr/bin/env bash
# (e) Cost: cost_usd from the model_prices row in effect at started_at (a price change in the
# middle of the run, a NULL cached price, a price not yet effective, a free model), NULL for an
# unpriced model (counted as unpriced), 0 for blocked rows; checked against figures computed
# here independently of tg_ledger_cost.
source "$(dirname "$0")/test_ledger_lib.sh"

PORT=$TG_TEST_PGPORT
DB=$(new_db "$PORT")
CI=$(conninfo "$PORT" "$DB")
K=2 N=4000 START=1767225600000 STEP=2
CHANGE_MS=$((START + 2000 * STEP)) # rows i >= 2000 get priced-a's second price
pq "$PORT" "$DB" -v change="$CHANGE_MS" <<'SQL' >/dev/null
INSERT INTO model_prices (model, input_usd_per_mtok, cached_input_usd_per_mtok, output_usd_per_mtok, effective_from) VALUES
  ('priced-a', 2.5, 1.25, 10, '2020-01-01'),
  ('priced-a', 3, 0.5, 12, timestamptz 'epoch' + :change * interval '1 millisecond'),
  ('priced-b', 0.15, NULL, 0.6, '2020-01-01'),
  ('priced-b', 99, 99, 99, '2099-01-01'),
  ('late-d', 1, 1, 1, '2099-01-01'),
  ('free-e', 0, 0, 0, '2020-01-01');
SQL
MODELS=priced-a,priced-b,unpriced-c,late-d,free-e
"$DRIVER" --conninfo "$CI" --spool-dir "$WORK/spool" --producers $K --rows $N --run-id 21 \
    --start-ms $START --step-ms $STEP --models $MODELS --status-cycle --batch 700 \
    >"$WORK/run.out" 2>"$WORK/run.log" || fail "driver failed"
check_rows "$PORT" "$DB" 21 $K $N $START $STEP 1 \
    "(ARRAY['priced-a','priced-b','unpriced-c','late-d','free-e'])[i % 5 + 1]"

res=$(pq "$PORT" "$DB" -v change="$CHANGE_MS" <<'SQL'
WITH r AS (
    SELECT l.*, CASE
        WHEN status = 'blocked' THEN 0
        WHEN model = 'priced-a' AND started_at < timestamptz 'epoch' + :change * interval '1 millisecond'
            THEN ((prompt_tokens - cached_tokens) * 2.5 + cached_tokens * 1.25 + completion_tokens * 10) / 1000000.0
        WHEN model = 'priced-a'
            THEN ((prompt_tokens - cached_tokens) * 3 + cached_tokens * 0.5 + completion_tokens * 12) / 1000000.0
        WHEN model = 'priced-b' THEN (prompt_tokens * 0.15 + completion_tokens * 0.6) / 1000000.0
        WHEN model = 'free-e' THEN 0
        END AS want
      FROM ledger l WHERE client_request_id LIKE '21-%')
SELECT count(*) FILTER (WHERE cost_usd IS DISTINCT FROM want),
       count(*) FILTER (WHERE cost_usd IS NULL),
       count(*) FILTER (WHERE status = 'blocked' AND cost_usd = 0),
       count(*) FILTER (WHERE status = 'blocked'),
       count(*) FILTER (WHERE model = 'priced-a' AND started_at >= timestamptz 'epoch' + :change * interval '1 millisecond' AND status <> 'blocked')
  FROM r;
SQL
)
IFS='|' read -r wrong nulls blocked_zero blocked second_price <<<"$res"
log "cost: wrong=$wrong null=$nulls blocked_zero=$blocked_zero/$blocked second_price_rows=$second_price"
[ "$wrong" = 0 ] || fail "$wrong rows with a wrong cost_usd"
[ "$blocked_zero" = "$blocked" ] && [ "$blocked" = $((K * N / 4)) ] || fail "blocked rows must cost exactly 0"
[ "$second_price" -gt 0 ] || fail "no row priced with the second price"
[ "$nulls" = "$(stat_of "$WORK/run.out" stopped unpriced)" ] || fail "unpriced counter $(stat_of "$WORK/run.out" stopped unpriced) != $nulls NULL costs"
[ "$nulls" -gt 0 ] || fail "no unpriced rows"
# Spot checks against hand-computed figures (p=0):
#   i=0    priced-a, ok, 100/25/20 tokens: (75*2.5 + 25*1.25 + 20*10)/1e6 = 0.00041875
#   i=1    priced-b (cached price NULL = input), upstream_error, 107/26/31:
#          (107*0.15 + 31*0.6)/1e6 = 0.00003465
#   i=2    unpriced-c: NULL;  i=3 late-d, blocked: 0
#   i=2005 priced-a second price, upstream_error, 135/33/75: (102*3 + 33*0.5 + 75*12)/1e6 = 0.0012225
spot=$(pq "$PORT" "$DB" <<'SQL'
SELECT (SELECT cost_usd = 0.00041875 FROM ledger WHERE client_request_id = '21-0-0'),
       (SELECT cost_usd = 0.00003465 FROM ledger WHERE client_request_id = '21-0-1'),
       (SELECT cost_usd IS NULL FROM ledger WHERE client_request_id = '21-0-2'),
       (SELECT cost_usd = 0 AND status = 'blocked' AND model = 'late-d' FROM ledger WHERE client_request_id = '21-0-3'),
       (SELECT prompt_tokens || '/' || cached_tokens || '/' || completion_tokens || '=' ||
               (cost_usd = 0.0012225) FROM ledger WHERE client_request_id = '21-0-2005');
SQL
)
[ "$spot" = "t|t|t|t|135/33/75=true" ] || fail "spot checks: $spot"
log "PASS"
