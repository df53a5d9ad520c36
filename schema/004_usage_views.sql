-- 004_usage_views.sql: usage_daily and usage_monthly, the finance views of SPEC §6 (UTC).
--
-- One row per (day or month, user_id, team_id, model). team_id is the team recorded on the
-- ledger row (the user's team when the request was made), not the user's team today.
-- requests counts every row, blocked ones included (they have zero tokens and cost).
-- cost_usd is SUM(cost_usd): rows without a price (cost_usd NULL) add nothing, and a group in
-- which no row is priced has cost_usd NULL; unpriced_requests says how many rows were left out.

CREATE VIEW usage_daily AS
SELECT (l.started_at AT TIME ZONE 'UTC')::date                  AS day,
       l.user_id,
       l.team_id,
       l.model,
       count(*)                                                 AS requests,
       sum(l.prompt_tokens)::bigint                             AS prompt_tokens,
       sum(l.completion_tokens)::bigint                         AS completion_tokens,
       sum(l.cached_tokens)::bigint                             AS cached_tokens,
       sum(l.reasoning_tokens)::bigint                          AS reasoning_tokens,
       sum(l.total_tokens)::bigint                              AS total_tokens,
       sum(l.cost_usd)                                          AS cost_usd,
       count(*) FILTER (WHERE l.cost_usd IS NULL)               AS unpriced_requests
  FROM ledger l
 GROUP BY 1, l.user_id, l.team_id, l.model;

COMMENT ON VIEW usage_daily IS
    'Per UTC day, user, team and model: requests, token sums, cost (NULL costs ignored; see unpriced_requests).';

CREATE VIEW usage_monthly AS
SELECT date_trunc('month', l.started_at AT TIME ZONE 'UTC')::date AS month,
       l.user_id,
       l.team_id,
       l.model,
       count(*)                                                 AS requests,
       sum(l.prompt_tokens)::bigint                             AS prompt_tokens,
       sum(l.completion_tokens)::bigint                         AS completion_tokens,
       sum(l.cached_tokens)::bigint                             AS cached_tokens,
       sum(l.reasoning_tokens)::bigint                          AS reasoning_tokens,
       sum(l.total_tokens)::bigint                              AS total_tokens,
       sum(l.cost_usd)                                          AS cost_usd,
       count(*) FILTER (WHERE l.cost_usd IS NULL)               AS unpriced_requests
  FROM ledger l
 GROUP BY 1, l.user_id, l.team_id, l.model;

COMMENT ON VIEW usage_monthly IS
    'Per UTC month (its first day), user, team and model: requests, token sums, cost (NULL costs ignored; see unpriced_requests).';
