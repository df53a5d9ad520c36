-- test_cost.sql: cost_usd (tg_ledger_cost, model_prices CHECKs) and the ledger's partitions and
-- keys, asserted in SQL. Run by test_cost.sh on a freshly migrated database with
-- tests/fixtures/finance/uuid7.sql loaded; any failed assertion raises and stops psql.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.eq(got anyelement, want anyelement, what text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF got IS DISTINCT FROM want THEN
        RAISE EXCEPTION 'FAIL %: got %, want %', what, coalesce(got::text, 'NULL'), coalesce(want::text, 'NULL');
    END IF;
END $$;

-- The statement must fail with this SQLSTATE (and, when given, mention this constraint).
CREATE FUNCTION pg_temp.fails(stmt text, want_state text, what text, want_constraint text DEFAULT NULL)
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    st text;
    cn text;
    msg text;
BEGIN
    BEGIN
        EXECUTE stmt;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, cn = CONSTRAINT_NAME, msg = MESSAGE_TEXT;
        IF st <> want_state THEN
            RAISE EXCEPTION 'FAIL %: SQLSTATE % (%), want %', what, st, msg, want_state;
        END IF;
        IF want_constraint IS NOT NULL AND cn IS DISTINCT FROM want_constraint THEN
            RAISE EXCEPTION 'FAIL %: constraint %, want %', what, cn, want_constraint;
        END IF;
        RETURN;
    END;
    RAISE EXCEPTION 'FAIL %: succeeded: %', what, stmt;
END $$;

-- Inserts one ledger row the way the ledger writer does (cost from tg_ledger_cost in the same
-- statement, zero for blocked rows) and returns its request_id.
CREATE FUNCTION pg_temp.put(ts timestamptz, seed bigint, p_model text, prompt bigint, cached bigint,
                            completion bigint, reasoning bigint, p_status text DEFAULT 'ok',
                            p_user text DEFAULT 'alice', p_team text DEFAULT 'eng') RETURNS uuid
    LANGUAGE sql AS $$
  INSERT INTO ledger (request_id, user_id, team_id, model, route, status, prompt_tokens, completion_tokens,
                      cached_tokens, reasoning_tokens, total_tokens, cost_usd, count_source, upstream_status,
                      started_at, finished_at, ttfb_ms, latency_ms, upstream_call_id)
  VALUES (tg_test_uuid7(ts, seed), p_user, p_team, p_model, '/v1/chat/completions', p_status, prompt, completion,
          cached, reasoning, prompt + completion,
          CASE WHEN p_status = 'blocked' THEN 0 ELSE tg_ledger_cost(p_model, ts, prompt, cached, completion) END,
          'upstream', CASE WHEN p_status = 'blocked' THEN NULL ELSE 200 END, ts, ts + interval '1.5 s',
          CASE WHEN p_status = 'blocked' THEN NULL ELSE 120 END, 1500, 'call-' || seed)
  RETURNING request_id $$;

\echo cost: known prices, cached and reasoning tokens
INSERT INTO model_prices (model, input_usd_per_mtok, cached_input_usd_per_mtok, output_usd_per_mtok, effective_from) VALUES
    ('gpt-4o', 2.50, 1.25, 10, '2020-01-01T00:00:00Z'),
    ('gpt-4o', 2.00, NULL, 8, '2026-03-15T00:00:00Z'),      -- price change; cached NULL = input price
    ('tiny', 0.000001, NULL, 0, '2020-01-01T00:00:00Z'),
    ('precise', 1.23456789012345, 0.98765432109876, 3.3333333333333, '2020-01-01T00:00:00Z'),
    ('embed', 0.02, NULL, 0, '2020-01-01T00:00:00Z'),
    ('big', 10000, 10000, 10000, '2020-01-01T00:00:00Z'),
    ('free', 0, 0, 0, '2020-01-01T00:00:00Z');

-- (1000 - 400) * 2.50 + 400 * 1.25 + 300 * 10 = 1500 + 500 + 3000 = 5000 -> 0.005
SELECT pg_temp.eq(tg_ledger_cost('gpt-4o', '2026-03-14T23:59:59.999Z', 1000, 400, 300), 0.005, 'gpt-4o before the change');
-- The cached tokens are priced once, at the cached price: 1000 prompt, all cached, no output.
SELECT pg_temp.eq(tg_ledger_cost('gpt-4o', '2026-01-01Z', 1000, 1000, 0), 0.00125, 'all-cached prompt');
SELECT pg_temp.eq(tg_ledger_cost('gpt-4o', '2026-01-01Z', 0, 0, 1), 0.00001, 'one output token');
-- After the change (at exactly effective_from): cached at the input price.
-- 600 * 2 + 400 * 2 + 300 * 8 = 1200 + 800 + 2400 = 4400 -> 0.0044
SELECT pg_temp.eq(tg_ledger_cost('gpt-4o', '2026-03-15T00:00:00Z', 1000, 400, 300), 0.0044, 'gpt-4o at the change');
SELECT pg_temp.eq(tg_ledger_cost('gpt-4o', '2030-01-01Z', 1000, 400, 300), 0.0044, 'gpt-4o long after the change');
SELECT pg_temp.eq(tg_ledger_cost('gpt-4o', '2019-12-31T23:59:59.999Z', 1000, 400, 300), NULL::numeric, 'before any price');
SELECT pg_temp.eq(tg_ledger_cost('no-such-model', '2026-01-01Z', 1000, 0, 10), NULL::numeric, 'unpriced model');
SELECT pg_temp.eq(tg_ledger_cost('embed', '2026-01-01Z', 12345, 0, 0), 0.0002469, 'embeddings');
SELECT pg_temp.eq(tg_ledger_cost('free', '2026-01-01Z', 12345, 45, 678), 0::numeric, 'a free model costs 0, not NULL');
SELECT pg_temp.eq(tg_ledger_cost('big', '2026-01-01Z', 1000000000000, 0, 1000000000000), 20000000000::numeric, '10^12 tokens at the highest price');

\echo cost: exactness (numeric, never rounded)
SELECT pg_temp.eq(tg_ledger_cost('tiny', '2026-01-01Z', 1, 0, 0)::text, '0.000000000001', '1 token at 0.000001 USD/Mtok');
SELECT pg_temp.eq(tg_ledger_cost('tiny', '2026-01-01Z', 1, 0, 0), 0.000000000001, '1 token at 0.000001 USD/Mtok (numeric)');
SELECT pg_temp.eq(tg_ledger_cost('tiny', '2026-01-01Z', 3, 3, 0), 0.000000000003, 'cached NULL falls back to input');
-- 7 * 1.23456789012345 + 2 * 0.98765432109876 + 5 * 3.3333333333333
--   = 8.64197523086415 + 1.97530864219752 + 16.6666666666665 = 27.28395053972817 -> / 10^6
SELECT pg_temp.eq(tg_ledger_cost('precise', '2026-01-01Z', 9, 2, 5), 0.00002728395053972817, '20 significant digits kept');
SELECT pg_temp.eq(pg_typeof(tg_ledger_cost('gpt-4o', '2026-01-01Z', 1, 0, 0))::text, 'numeric', 'cost type');
-- A sum of many tiny exact costs stays exact: 10^6 requests of 1 token at 0.000001 USD/Mtok.
SELECT pg_temp.eq(sum(tg_ledger_cost('tiny', '2026-01-01Z', 1, 0, 0)), 0.000001, 'sum of 10^6 tiny costs')
  FROM generate_series(1, 1000000);

\echo cost: negative or absurd prices refused
SELECT pg_temp.fails($$INSERT INTO model_prices VALUES ('neg', -1, NULL, 1, now())$$, '23514', 'negative input price');
SELECT pg_temp.fails($$INSERT INTO model_prices VALUES ('neg', 1, -0.01, 1, now())$$, '23514', 'negative cached price');
SELECT pg_temp.fails($$INSERT INTO model_prices VALUES ('neg', 1, NULL, -0.000001, now())$$, '23514', 'negative output price');
SELECT pg_temp.fails($$INSERT INTO model_prices VALUES ('abs', 10000.000001, NULL, 1, now())$$, '23514', 'absurd input price');
SELECT pg_temp.fails($$INSERT INTO model_prices VALUES ('abs', 1, 20000, 1, now())$$, '23514', 'absurd cached price');
SELECT pg_temp.fails($$INSERT INTO model_prices VALUES ('abs', 1, NULL, 1e9, now())$$, '23514', 'absurd output price');
SELECT pg_temp.fails($$INSERT INTO model_prices VALUES ('nan', 'NaN', NULL, 1, now())$$, '23514', 'NaN price');
SELECT pg_temp.fails($$INSERT INTO model_prices VALUES ('', 1, NULL, 1, now())$$, '23514', 'empty model name');
SELECT pg_temp.fails($$INSERT INTO model_prices VALUES ('nulls', NULL, NULL, 1, now())$$, '23502', 'missing input price');
SELECT pg_temp.fails($$INSERT INTO model_prices VALUES ('gpt-4o', 1, NULL, 1, '2026-03-15T00:00:00Z')$$, '23505', 'two prices at one moment');
SELECT pg_temp.fails($$UPDATE model_prices SET output_usd_per_mtok = -5 WHERE model = 'gpt-4o'$$, '23514', 'update to a negative price');

\echo cost: rows priced on both sides of a price change, blocked rows, unpriced rows
SELECT pg_temp.put('2026-03-14T23:59:59.999Z', 1, 'gpt-4o', 1000, 400, 300, 100);
SELECT pg_temp.put('2026-03-15T00:00:00.000Z', 2, 'gpt-4o', 1000, 400, 300, 100);
SELECT pg_temp.put('2026-03-15T00:00:00.001Z', 3, 'gpt-4o', 0, 0, 0, 0, 'blocked');
SELECT pg_temp.put('2026-03-15T00:00:00.002Z', 4, 'no-such-model', 10, 0, 5, 0);
SELECT pg_temp.eq(cost_usd, 0.005, 'row before the change') FROM ledger WHERE request_id = tg_test_uuid7('2026-03-14T23:59:59.999Z', 1);
SELECT pg_temp.eq(cost_usd, 0.0044, 'row after the change') FROM ledger WHERE request_id = tg_test_uuid7('2026-03-15T00:00:00.000Z', 2);
SELECT pg_temp.eq(cost_usd, 0::numeric, 'blocked row costs 0') FROM ledger WHERE request_id = tg_test_uuid7('2026-03-15T00:00:00.001Z', 3);
SELECT pg_temp.eq(cost_usd, NULL::numeric, 'unpriced row') FROM ledger WHERE request_id = tg_test_uuid7('2026-03-15T00:00:00.002Z', 4);
-- usage_daily: per UTC day and model; NULL costs are left out of the sum and counted apart.
SELECT pg_temp.eq(array_agg(ROW(day, model, requests, prompt_tokens, completion_tokens, cached_tokens,
                                reasoning_tokens, total_tokens, cost_usd, unpriced_requests)::text ORDER BY day, model),
                  ARRAY['(2026-03-14,gpt-4o,1,1000,300,400,100,1300,0.00500000,0)',
                        '(2026-03-15,gpt-4o,2,1000,300,400,100,1300,0.00440000,0)',
                        '(2026-03-15,no-such-model,1,10,5,0,0,15,,1)'], 'usage_daily of the March rows')
  FROM usage_daily WHERE day BETWEEN '2026-03-01' AND '2026-03-31';
SELECT pg_temp.eq(array_agg(ROW(month, requests, total_tokens, cost_usd, unpriced_requests)::text),
                  ARRAY['(2026-03-01,4,2615,0.00940000,1)'], 'usage_monthly of March')
  FROM (SELECT month, sum(requests) AS requests, sum(total_tokens) AS total_tokens, sum(cost_usd) AS cost_usd,
               sum(unpriced_requests) AS unpriced_requests
          FROM usage_monthly WHERE month = '2026-03-01' GROUP BY month) m;

\echo partitions: rows on both sides of a month boundary
SELECT pg_temp.eq(tg_ensure_ledger_partitions('2026-01-01Z', 2), 3, 'partitions for January to March 2026');
SET TIME ZONE 'America/New_York';   -- partition bounds and the views are UTC whatever the session says
SELECT pg_temp.put('2026-01-31T23:59:59.999Z', 10, 'gpt-4o', 100, 0, 10, 0);
SELECT pg_temp.put('2026-02-01T00:00:00.000Z', 11, 'gpt-4o', 200, 0, 20, 0);
SELECT pg_temp.put('2026-02-01T00:30:00.000Z', 12, 'gpt-4o', 300, 0, 30, 0);  -- 31 January in New York
SELECT pg_temp.eq(tableoid::regclass::text, 'ledger_2026_01', 'last millisecond of January')
  FROM ledger WHERE request_id = tg_test_uuid7('2026-01-31T23:59:59.999Z', 10);
SELECT pg_temp.eq(tableoid::regclass::text, 'ledger_2026_02', 'first millisecond of February')
  FROM ledger WHERE request_id = tg_test_uuid7('2026-02-01T00:00:00.000Z', 11);
SELECT pg_temp.eq(tableoid::regclass::text, 'ledger_2026_02', '00:30 UTC on 1 February')
  FROM ledger WHERE request_id = tg_test_uuid7('2026-02-01T00:30:00.000Z', 12);
SELECT pg_temp.eq(array_agg(ROW(day, requests, total_tokens)::text ORDER BY day),
                  ARRAY['(2026-01-31,1,110)', '(2026-02-01,2,550)'], 'usage_daily days are UTC days')
  FROM usage_daily WHERE day BETWEEN '2026-01-01' AND '2026-02-28';
SELECT pg_temp.eq(array_agg(ROW(month, requests)::text ORDER BY month),
                  ARRAY['(2026-01-01,1)', '(2026-02-01,2)'], 'usage_monthly months are UTC months')
  FROM usage_monthly WHERE month BETWEEN '2026-01-01' AND '2026-02-01';
-- A range query on started_at reads only the partitions it needs.
SELECT pg_temp.eq((SELECT count(*) FROM ledger WHERE started_at >= '2026-02-01T00:00:00Z' AND started_at < '2026-03-01T00:00:00Z'),
                  2::bigint, 'February by range');
RESET TIME ZONE;

\echo partitions: a month without a partition lands in ledger_default, then moves out
SELECT pg_temp.put('2033-07-04T12:00:00Z', 20, 'gpt-4o', 1, 0, 1, 0);
SELECT pg_temp.eq(tableoid::regclass::text, 'ledger_default', 'row for a month without partition')
  FROM ledger WHERE request_id = tg_test_uuid7('2033-07-04T12:00:00Z', 20);
SELECT pg_temp.eq(tg_ensure_ledger_partitions('2033-06-10Z', 2), 3, 'partitions June to August 2033');
SELECT pg_temp.eq(tableoid::regclass::text, 'ledger_2033_07', 'row moved to its month')
  FROM ledger WHERE request_id = tg_test_uuid7('2033-07-04T12:00:00Z', 20);
SELECT pg_temp.eq((SELECT count(*) FROM ledger_default), 0::bigint, 'default partition empty again');

\echo keys and checks: started_at must be the UUID time, request_id unique
SELECT pg_temp.fails($$INSERT INTO ledger (request_id, user_id, route, status, count_source, started_at, finished_at, latency_ms)
                       VALUES (tg_test_uuid7('2026-02-10T10:00:00.000Z', 30), 'alice', '/v1/chat/completions', 'ok', 'upstream',
                               '2026-02-10T10:00:00.001Z', '2026-02-10T10:00:01Z', 1)$$,
                     '23514', 'started_at 1 ms off the UUID time', 'ledger_started_at_is_request_time');
SELECT pg_temp.fails($$INSERT INTO ledger (request_id, user_id, route, status, count_source, started_at, finished_at, latency_ms)
                       VALUES (tg_test_uuid7('2026-02-10T10:00:00.000Z', 31), 'alice', '/v1/chat/completions', 'ok', 'upstream',
                               '2026-01-10T10:00:00.000Z', '2026-02-10T10:00:01Z', 1)$$,
                     '23514', 'started_at in another month than the UUID time', 'ledger_started_at_is_request_time');
SELECT pg_temp.put('2026-02-10T10:00:00.000Z', 32, 'gpt-4o', 5, 0, 5, 0);
SELECT pg_temp.fails($$SELECT pg_temp.put('2026-02-10T10:00:00.000Z', 32, 'gpt-4o', 7, 0, 7, 0)$$,
                     '23505', 'the same request_id twice', 'ledger_2026_02_pkey');
-- What the writer does on a replay: the second copy is ignored, the first stays.
INSERT INTO ledger (request_id, user_id, route, status, count_source, started_at, finished_at, latency_ms, total_tokens, prompt_tokens)
VALUES (tg_test_uuid7('2026-02-10T10:00:00.000Z', 32), 'alice', '/v1/chat/completions', 'ok', 'upstream',
        '2026-02-10T10:00:00.000Z', '2026-02-10T10:00:01Z', 1, 99, 99)
ON CONFLICT DO NOTHING;
SELECT pg_temp.eq(total_tokens, 10::bigint, 'replayed row ignored') FROM ledger WHERE request_id = tg_test_uuid7('2026-02-10T10:00:00.000Z', 32);
SELECT pg_temp.eq(count(*), 1::bigint, 'one row per request_id') FROM ledger WHERE request_id = tg_test_uuid7('2026-02-10T10:00:00.000Z', 32);
SELECT pg_temp.fails($$SELECT pg_temp.put('2026-02-11Z', 40, 'gpt-4o', 10, 11, 5, 0)$$, '23514', 'cached > prompt');
SELECT pg_temp.fails($$SELECT pg_temp.put('2026-02-11Z', 41, 'gpt-4o', 10, 0, 5, 6)$$, '23514', 'reasoning > completion');
SELECT pg_temp.fails($$SELECT pg_temp.put('2026-02-11Z', 42, 'gpt-4o', 10, 0, 5, 0, 'cancelled')$$, '23514', 'unknown status');
SELECT pg_temp.fails($$INSERT INTO ledger (request_id, user_id, route, status, count_source, started_at, finished_at, latency_ms, prompt_tokens, total_tokens)
                       VALUES (tg_test_uuid7('2026-02-11Z', 43), 'a', '/v1/embeddings', 'ok', 'upstream', '2026-02-11Z', '2026-02-11Z', 1, 10, 11)$$,
                     '23514', 'total != prompt + completion');
SELECT pg_temp.fails($$INSERT INTO ledger (request_id, user_id, route, status, count_source, started_at, finished_at, latency_ms)
                       VALUES (tg_test_uuid7('2026-02-11Z', 44), 'a', '/v1/embeddings', 'ok', 'guessed', '2026-02-11Z', '2026-02-11Z', 1)$$,
                     '23514', 'unknown count_source');

\echo uuid helpers: tg_uuid7_time and tg_uuid7_min
SELECT pg_temp.eq(tg_uuid7_time(tg_test_uuid7('2026-05-06T07:08:09.123Z', 50)), '2026-05-06T07:08:09.123Z'::timestamptz, 'UUID time');
SELECT pg_temp.eq(tg_uuid7_time('01a202b2-c57b-7c4c-8238-a0b923820dcc'), '2026-11-22T10:00:00.123Z'::timestamptz, 'UUID time of a known id');
SELECT pg_temp.eq(tg_uuid7_min('2026-11-22T10:00:00.123Z'), '01a202b2-c57b-0000-0000-000000000000'::uuid, 'lowest UUID of a millisecond');
SELECT pg_temp.eq(tg_test_uuid7('2026-11-22T10:00:00.123Z', g) >= tg_uuid7_min('2026-11-22T10:00:00.123Z')
                  AND tg_test_uuid7('2026-11-22T10:00:00.123Z', g) < tg_uuid7_min('2026-11-22T10:00:00.124Z'), true,
                  'request_id bounds match started_at bounds')
  FROM generate_series(1, 200) g;

\echo accounts: ids, quotas, keys, outbox
SELECT pg_temp.fails($$INSERT INTO users (id) VALUES ('')$$, '23514', 'empty user id');
SELECT pg_temp.fails($$INSERT INTO users (id) VALUES (repeat('x', 129))$$, '23514', 'user id of 129 bytes');
SELECT pg_temp.fails($$INSERT INTO users (id) VALUES (repeat('é', 65))$$, '23514', 'user id of 130 bytes in 65 characters');
SELECT pg_temp.fails($$INSERT INTO users (id) VALUES (E'a\nb')$$, '23514', 'user id with a newline');
SELECT pg_temp.fails($$INSERT INTO users (id) VALUES (E'a\u0085b')$$, '23514', 'user id with a C1 control');
SELECT pg_temp.fails($$INSERT INTO users (id) VALUES (E'a\u007fb')$$, '23514', 'user id with DEL');
SELECT pg_temp.fails($$INSERT INTO users (id, role) VALUES ('x', 'root')$$, '23514', 'unknown role');
INSERT INTO users (id, email, team_id) VALUES (repeat('x', 128), NULL, NULL), ('José Müller 👩‍💻', 'j@example.com', 'eng');
SELECT pg_temp.eq(role || disabled::text, 'userfalse', 'user defaults') FROM users WHERE id = repeat('x', 128);
UPDATE users SET updated_at = '2000-01-01Z', name = 'J' WHERE id = 'José Müller 👩‍💻';
SELECT pg_temp.eq(updated_at > '2001-01-01Z', true, 'updated_at maintained') FROM users WHERE id = 'José Müller 👩‍💻';
INSERT INTO quotas (subject_kind, subject_id, limit_tokens, period) VALUES
    ('default', '', 1000000, 'month'), ('user', 'alice', -1, NULL), ('team', 'eng', 0, 'week'), ('user', 'bob', NULL, NULL);
SELECT pg_temp.fails($$INSERT INTO quotas VALUES ('user', 'carol', -2, 'month')$$, '23514', 'limit below -1');
SELECT pg_temp.fails($$INSERT INTO quotas VALUES ('user', 'carol', 5, 'year')$$, '23514', 'unknown period');
SELECT pg_temp.fails($$INSERT INTO quotas VALUES ('default', 'x', 5, 'month')$$, '23514', 'default with a subject id');
SELECT pg_temp.fails($$INSERT INTO quotas VALUES ('user', '', 5, 'month')$$, '23514', 'user quota without id');
SELECT pg_temp.fails($$INSERT INTO quotas VALUES ('org', 'x', 5, 'month')$$, '23514', 'unknown subject kind');
SELECT pg_temp.fails($$INSERT INTO quotas VALUES ('user', 'alice', 5, 'month')$$, '23505', 'two quotas for one user');
INSERT INTO users (id) VALUES ('alice');
INSERT INTO api_keys (user_id, name, key_hash, prefix) VALUES ('alice', 'laptop', sha256('tg-secret-1'), 'tg-secr');
SELECT pg_temp.eq(count(*), 1::bigint, 'key found by hash') FROM api_keys WHERE key_hash = sha256('tg-secret-1') AND revoked_at IS NULL;
SELECT pg_temp.fails($$INSERT INTO api_keys (user_id, key_hash, prefix) VALUES ('alice', sha256('tg-secret-1'), 'tg-secr')$$, '23505', 'same key twice');
SELECT pg_temp.fails($$INSERT INTO api_keys (user_id, key_hash, prefix) VALUES ('nobody', sha256('tg-secret-2'), 'tg-secr')$$, '23503', 'key of an unknown user');
SELECT pg_temp.fails($$INSERT INTO api_keys (user_id, key_hash, prefix) VALUES ('alice', decode(md5('x'), 'hex'), 'tg-x')$$, '23514', 'hash that is not SHA-256');
INSERT INTO audit_log (actor, action, target, before, after) VALUES ('admin', 'quota.set', 'user:alice', '{"limit_tokens": 5}', '{"limit_tokens": -1}');
SELECT pg_temp.eq(after->>'limit_tokens', '-1', 'audit row') FROM audit_log;
INSERT INTO webhook_outbox (id, type, subject_kind, subject_id, period_key, payload)
VALUES ('quota.warning:user:alice:m2026-11', 'quota.warning', 'user', 'alice', 'm2026-11', '{"id": "quota.warning:user:alice:m2026-11"}');
SELECT pg_temp.fails($$INSERT INTO webhook_outbox (id, type, subject_kind, subject_id, period_key, payload)
                       VALUES ('other-id', 'quota.warning', 'user', 'alice', 'm2026-11', '{}')$$, '23505', 'second warning in a period');
SELECT pg_temp.fails($$INSERT INTO webhook_outbox (id, type, subject_kind, subject_id, period_key, payload)
                       VALUES ('x', 'quota.reset', 'user', 'alice', 'm2026-11', '{}')$$, '23514', 'unknown event type');
SELECT pg_temp.eq(count(*), 1::bigint, 'pending outbox') FROM webhook_outbox WHERE delivered_at IS NULL AND next_attempt_at <= now();

\echo test_cost.sql: all assertions passed
