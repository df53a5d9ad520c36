-- 002_accounts.sql: who may spend (users, teams, API keys), how much (quotas), and the audit log.

-- SPEC §2: a user id is 1-128 bytes of UTF-8 with no control characters (C0, DEL, C1). Spelled
-- out as code points so the answer does not depend on the database's locale.
CREATE FUNCTION tg_is_valid_id(id text) RETURNS boolean
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql AS $$
  SELECT octet_length(id) BETWEEN 1 AND 128 AND id !~ '[\u0001-\u001f\u007f-\u009f]' $$;

COMMENT ON FUNCTION tg_is_valid_id(text) IS
    'A user or team id: 1-128 bytes of UTF-8 without control characters (SPEC §2).';

-- Keeps updated_at honest whatever the writer forgets.
CREATE FUNCTION tg_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TABLE teams (
    id         text        PRIMARY KEY CHECK (tg_is_valid_id(id)),
    name       text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- team_id is deliberately not a foreign key: a JWT's `team` claim names a team on first sight,
-- before anyone has registered it in `teams` (which only gives it a display name).
CREATE TABLE users (
    id         text        PRIMARY KEY CHECK (tg_is_valid_id(id)),
    email      text,
    name       text,
    team_id    text        CHECK (team_id IS NULL OR tg_is_valid_id(team_id)),
    role       text        NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    disabled   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX users_team_idx ON users (team_id) WHERE team_id IS NOT NULL;

CREATE TRIGGER users_touch BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION tg_touch_updated_at();

-- One row per subject that has its own quota; subject ('default', '') is the default quota.
-- limit_tokens: NULL = fall back to the default, -1 = unlimited, 0 = blocked, N = tokens per
-- period. period: NULL = QUOTA_PERIOD.
CREATE TABLE quotas (
    subject_kind text        NOT NULL CHECK (subject_kind IN ('user', 'team', 'default')),
    subject_id   text        NOT NULL,
    limit_tokens bigint      CHECK (limit_tokens >= -1),
    period       text        CHECK (period IN ('month', 'week', 'day', 'none')),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_kind, subject_id),
    CHECK ((subject_kind = 'default') = (subject_id = '')),
    CHECK (subject_kind = 'default' OR tg_is_valid_id(subject_id))
);

CREATE TRIGGER quotas_touch BEFORE UPDATE ON quotas
    FOR EACH ROW EXECUTE FUNCTION tg_touch_updated_at();

-- Personal API keys: only the SHA-256 of the key is stored; prefix is for display ("tg-AbCd").
CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      text        NOT NULL REFERENCES users (id),
    name         text        NOT NULL DEFAULT '',
    key_hash     bytea       NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    prefix       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    revoked_by   text,
    CHECK (revoked_by IS NULL OR revoked_at IS NOT NULL)
);

CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- Every admin change (SPEC §7): who, what, on what, and the row before and after as JSON.
CREATE TABLE audit_log (
    id     bigserial   PRIMARY KEY,
    actor  text        NOT NULL,
    action text        NOT NULL,
    target text,
    before jsonb,
    after  jsonb,
    at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_at_idx ON audit_log (at);
