-- Outbound event subscriptions, SQLite. Keep in step with ../postgres/00002_subscriptions.sql.

-- +goose Up
CREATE TABLE subscriptions (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL DEFAULT '',
    url             TEXT NOT NULL,
    secret_enc      BLOB,
    event_types     TEXT NOT NULL DEFAULT 'null',
    integration_ids TEXT NOT NULL DEFAULT 'null',
    repository_ids  TEXT NOT NULL DEFAULT 'null',
    disabled        INTEGER NOT NULL DEFAULT 0,
    cursor_seq      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE subscription_attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_seq       INTEGER NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL DEFAULT '',
    lane            TEXT NOT NULL,
    status          TEXT NOT NULL,
    tries           INTEGER NOT NULL DEFAULT 0,
    next_at         INTEGER NOT NULL,
    lease_owner     TEXT NOT NULL DEFAULT '',
    lease_until     INTEGER NOT NULL DEFAULT 0,
    response_status INTEGER NOT NULL DEFAULT 0,
    error           TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER NOT NULL DEFAULT 0,
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
