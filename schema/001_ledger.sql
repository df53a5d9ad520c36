-- 001_ledger.sql: the ledger (SPEC §6), its monthly partitions, model prices and the cost formula.
-- Applied by `tollgate migrate` in one transaction; never edit an applied migration, add a new one.

-- request_id is tollgate's UUIDv7; started_at is EXACTLY the UUID's 48-bit millisecond timestamp.
CREATE FUNCTION tg_uuid7_time(id uuid) RETURNS timestamptz
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql AS $$
  SELECT timestamptz 'epoch' + (('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint) * interval '1 millisecond' $$;

COMMENT ON FUNCTION tg_uuid7_time(uuid) IS
    'The millisecond timestamp in the first 48 bits of a UUIDv7 (ledger.started_at of that request).';

-- The smallest UUID whose first 48 bits are this millisecond: request_id >= tg_uuid7_min(t) is
-- exactly started_at >= t (truncated to the millisecond), so a time range can bound a scan of
-- the primary key, which is in request_id order = time order.
CREATE FUNCTION tg_uuid7_min(ts timestamptz) RETURNS uuid
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql AS $$
  SELECT (lpad(to_hex(greatest(floor(extract(epoch FROM ts) * 1000)::bigint, 0)), 12, '0') || '00000000000000000000')::uuid $$;

COMMENT ON FUNCTION tg_uuid7_min(timestamptz) IS
    'Lowest UUID with this millisecond as its UUIDv7 time: a request_id bound equivalent to a started_at bound.';

-- Prices in USD per million tokens, effective from a moment on; a change is a new row.
CREATE TABLE model_prices (
    model                     text        NOT NULL CHECK (model <> ''),
    input_usd_per_mtok        numeric     NOT NULL CHECK (input_usd_per_mtok >= 0 AND input_usd_per_mtok <= 10000),
    cached_input_usd_per_mtok numeric              CHECK (cached_input_usd_per_mtok >= 0 AND cached_input_usd_per_mtok <= 10000),
    output_usd_per_mtok       numeric     NOT NULL CHECK (output_usd_per_mtok >= 0 AND output_usd_per_mtok <= 10000),
    effective_from            timestamptz NOT NULL,
    created_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, effective_from)
);

COMMENT ON TABLE model_prices IS
    'USD per million tokens; the row with the latest effective_from <= started_at prices a request. cached_input NULL = input price.';

CREATE TABLE ledger (
    request_id        uuid        NOT NULL,
    user_id           text        NOT NULL,
    team_id           text,
    model             text        NOT NULL DEFAULT '',
    route             text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('ok', 'upstream_error', 'client_aborted', 'blocked')),
    prompt_tokens     bigint      NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens bigint      NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cached_tokens     bigint      NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0 AND cached_tokens <= prompt_tokens),
    reasoning_tokens  bigint      NOT NULL DEFAULT 0 CHECK (reasoning_tokens >= 0 AND reasoning_tokens <= completion_tokens),
    total_tokens      bigint      NOT NULL DEFAULT 0 CHECK (total_tokens = prompt_tokens + completion_tokens),
    cost_usd          numeric,
    count_source      text        NOT NULL CHECK (count_source IN ('upstream', 'estimated')),
    upstream_status   integer,
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz NOT NULL,
    ttfb_ms           integer,
    latency_ms        integer     NOT NULL,
    upstream_call_id  text,
    client_request_id text,
    PRIMARY KEY (request_id, started_at),
    CONSTRAINT ledger_started_at_is_request_time CHECK (started_at = tg_uuid7_time(request_id))
) PARTITION BY RANGE (started_at);

COMMENT ON TABLE ledger IS
    'One row per request tollgate handled (SPEC §6). Partitioned by month (UTC): ledger_YYYY_MM, plus ledger_default.';

-- Newest-first pages of one user's lines (statement, admin ledger?user=), quota rebuilds.
CREATE INDEX ledger_user_started_idx ON ledger (user_id, started_at, request_id);
-- Team quota rebuilds and team statements.
CREATE INDEX ledger_team_started_idx ON ledger (team_id, started_at) WHERE team_id IS NOT NULL;
-- Time ranges inside a month (usage by day, exports): tiny, and nearly free to maintain because
-- rows arrive in started_at order.
CREATE INDEX ledger_started_brin ON ledger USING brin (started_at);

-- Rows whose month has no partition (clock skew, a replay into a detached month) land here
-- instead of being refused; tg_ensure_ledger_partitions moves them out when it creates the month.
CREATE TABLE ledger_default PARTITION OF ledger DEFAULT;

-- Creates the monthly partitions (UTC months) from the month of p_from through p_months_ahead
-- months later that do not exist yet; returns how many it created. Idempotent and safe to run
-- from several instances at once (transaction-scoped advisory lock; a partition another caller
-- created in the meantime is skipped). Rows already in ledger_default for a new month are moved
-- into it. Call it in READ COMMITTED (the default).
CREATE FUNCTION tg_ensure_ledger_partitions(p_from timestamptz, p_months_ahead int) RETURNS int
    LANGUAGE plpgsql
    SET lock_timeout = '10s'
AS $$
DECLARE
    ns         text;
    first_m    timestamp;
    m          timestamp;
    lo         text;
    hi         text;
    part       text;
    created    int := 0;
BEGIN
    IF p_from IS NULL OR p_months_ahead IS NULL OR p_months_ahead < 0 OR p_months_ahead > 240 THEN
        RAISE EXCEPTION 'tg_ensure_ledger_partitions: from must be set and months_ahead in 0..240 (got %, %)',
            p_from, p_months_ahead USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT n.nspname INTO ns
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = 'ledger'::regclass;
    -- One creator at a time across every instance; the key is 'tgpart' in ASCII.
    PERFORM pg_advisory_xact_lock(x'746770617274'::bigint);
    first_m := date_trunc('month', p_from AT TIME ZONE 'UTC');
    FOR i IN 0 .. p_months_ahead LOOP
        m := first_m + make_interval(months => i);
        part := 'ledger_' || to_char(m, 'YYYY_MM');
        -- A query (fresh snapshot), not the relation cache, so a partition committed by the
        -- caller we waited for is seen.
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                               WHERE n.nspname = ns AND c.relname = part);
        lo := to_char(m, 'YYYY-MM-DD HH24:MI:SS') || '+00';
        hi := to_char(m + interval '1 month', 'YYYY-MM-DD HH24:MI:SS') || '+00';
        BEGIN
            -- Built detached and then attached: ATTACH needs only SHARE UPDATE EXCLUSIVE on
            -- ledger, so inserts and reads go on; the CHECK spares the validation scan.
            EXECUTE format('CREATE TABLE %I.%I (LIKE %I.ledger INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                           ns, part, ns);
            EXECUTE format('ALTER TABLE %I.%I ADD CONSTRAINT %I CHECK (started_at >= %L AND started_at < %L)',
                           ns, part, part || '_bounds', lo, hi);
            IF EXISTS (SELECT 1 FROM ledger_default WHERE started_at >= lo::timestamptz AND started_at < hi::timestamptz) THEN
                EXECUTE format('LOCK TABLE %I.ledger_default IN ACCESS EXCLUSIVE MODE', ns);
                EXECUTE format('WITH moved AS (DELETE FROM %I.ledger_default WHERE started_at >= %L AND started_at < %L RETURNING *) '
                               'INSERT INTO %I.%I SELECT * FROM moved', ns, lo, hi, ns, part);
            END IF;
            EXECUTE format('ALTER TABLE %I.ledger ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                           ns, ns, part, lo, hi);
            EXECUTE format('ALTER TABLE %I.%I DROP CONSTRAINT %I', ns, part, part || '_bounds');
            created := created + 1;
        EXCEPTION WHEN duplicate_table THEN
            NULL;  -- created by someone who did not take our lock (a manual CREATE)
        END;
    END LOOP;
    RETURN created;
END
$$;

COMMENT ON FUNCTION tg_ensure_ledger_partitions(timestamptz, int) IS
    'Create missing monthly ledger partitions from the month of "from" through months_ahead months later (UTC); returns how many.';

-- SPEC §6: ((prompt - cached) * input + cached * coalesce(cached_input, input) + completion * output)
-- / 1 000 000 with the model's price row of the latest effective_from <= started_at; NULL when
-- there is none. Multiplying by 0.000001 instead of dividing keeps numeric exact: the result is
-- never rounded at all.
CREATE FUNCTION tg_ledger_cost(model text, started_at timestamptz, prompt bigint, cached bigint,
                               completion bigint) RETURNS numeric
    STABLE PARALLEL SAFE LANGUAGE sql AS $$
  SELECT ((tg_ledger_cost.prompt - tg_ledger_cost.cached)::numeric * p.input_usd_per_mtok
          + tg_ledger_cost.cached::numeric * coalesce(p.cached_input_usd_per_mtok, p.input_usd_per_mtok)
          + tg_ledger_cost.completion::numeric * p.output_usd_per_mtok) * 0.000001
    FROM model_prices p
   WHERE p.model = tg_ledger_cost.model AND p.effective_from <= tg_ledger_cost.started_at
   ORDER BY p.effective_from DESC
   LIMIT 1 $$;

COMMENT ON FUNCTION tg_ledger_cost(text, timestamptz, bigint, bigint, bigint) IS
    'Exact cost in USD of one request (SPEC §6 formula); NULL when the model has no price at started_at.';

SELECT tg_ensure_ledger_partitions(now(), 3);
