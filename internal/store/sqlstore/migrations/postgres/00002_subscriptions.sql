-- Outbound event subscriptions, PostgreSQL. Keep in step with ../sqlite/00002_subscriptions.sql.

-- +goose Up
CREATE TABLE subscriptions (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL DEFAULT '',
    url             TEXT NOT NULL,
    secret_enc      BYTEA,
    event_types     TEXT NOT NULL DEFAULT 'null',
    integration_ids TEXT NOT NULL DEFAULT 'null',
    repository_ids  TEXT NOT NULL DEFAULT 'null',
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    cursor_seq      BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE subscription_attempts (
    id              BIGSERIAL PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_seq       BIGINT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL DEFAULT '',
    lane            TEXT NOT NULL,
    status          TEXT NOT NULL,
    tries           BIGINT NOT NULL DEFAULT 0,
    next_at         BIGINT NOT NULL,
    lease_owner     TEXT NOT NULL DEFAULT '',
    lease_until     BIGINT NOT NULL DEFAULT 0,
    response_status BIGINT NOT NULL DEFAULT 0,
    error           TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    delivered_at    BIGINT NOT NULL DEFAULT 0,
    -- One attempt per event per subscriber, whichever replica queues it.
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX subscription_attempts_due ON subscription_attempts (status, next_at, id);
CREATE INDEX subscription_attempts_lane ON subscription_attempts (subscription_id, lane, event_seq) WHERE status = 'pending';
CREATE INDEX subscription_attempts_list ON subscription_attempts (subscription_id, id);
CREATE INDEX subscription_attempts_finished ON subscription_attempts (updated_at) WHERE status <> 'pending';

-- +goose Down
DROP TABLE subscription_attempts;
DROP TABLE subscriptions;
