-- 003_webhook_outbox.sql: quota events waiting for (or done with) delivery to ALERT_WEBHOOK_URL.

-- id is the idempotency key sent as the Idempotency-Key header, e.g.
-- 'quota.warning:user:alice:m2026-11'. A row exists once per (type, subject, period): it is also
-- how a quota rebuild knows that the warning or exhaustion already fired this period.
CREATE TABLE webhook_outbox (
    id              text        PRIMARY KEY CHECK (id <> ''),
    type            text        NOT NULL CHECK (type IN ('quota.warning', 'quota.exhausted')),
    subject_kind    text        NOT NULL CHECK (subject_kind IN ('user', 'team')),
    subject_id      text        NOT NULL,
    period_key      text        NOT NULL,
    payload         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text,
    UNIQUE (type, subject_kind, subject_id, period_key)
);

-- The sender's queue: undelivered events by due time.
CREATE INDEX webhook_outbox_pending_idx ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL;
