-- Forgeway schema, SQLite. Times are microseconds since the Unix epoch (0: unset).
-- Keep in step with ../postgres/00001_init.sql: same tables, columns and indexes.

-- +goose Up
CREATE TABLE integrations (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    base_url     TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT '',
    status_note  TEXT NOT NULL DEFAULT '',
    settings     TEXT NOT NULL DEFAULT 'null',
    secrets_enc  BLOB,
    webhook_enc  BLOB,
    webhook_prev BLOB,
    repo_filter  TEXT NOT NULL DEFAULT '',
    schedule     TEXT NOT NULL DEFAULT '',
    route_keys   TEXT NOT NULL DEFAULT 'null',
    project_id   TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE integration_routes (
    kind           TEXT NOT NULL,
    route_key      TEXT NOT NULL,
    integration_id TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    PRIMARY KEY (kind, route_key, integration_id)
);
CREATE INDEX integration_routes_integration ON integration_routes (integration_id);

CREATE TABLE installations (
    integration_id       TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    id                   TEXT NOT NULL,
    account              TEXT NOT NULL DEFAULT '',
    account_type         TEXT NOT NULL DEFAULT '',
    repository_selection TEXT NOT NULL DEFAULT '',
    status               TEXT NOT NULL DEFAULT '',
    updated_at           INTEGER NOT NULL,
    PRIMARY KEY (integration_id, id)
);

CREATE TABLE repositories (
    id                TEXT PRIMARY KEY,
    integration_id    TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    host_id           TEXT NOT NULL,
    full_name         TEXT NOT NULL,
    name              TEXT NOT NULL DEFAULT '',
    repo_owner        TEXT NOT NULL DEFAULT '',
    group_path        TEXT NOT NULL DEFAULT '',
    default_branch    TEXT NOT NULL DEFAULT '',
    visibility        TEXT NOT NULL DEFAULT '',
    is_private        INTEGER NOT NULL DEFAULT 0,
    is_archived       INTEGER NOT NULL DEFAULT 0,
    is_fork           INTEGER NOT NULL DEFAULT 0,
    clone_url         TEXT NOT NULL DEFAULT '',
    web_url           TEXT NOT NULL DEFAULT '',
    permission        TEXT NOT NULL DEFAULT '',
    description       TEXT NOT NULL DEFAULT '',
    installation      TEXT NOT NULL DEFAULT '',
    extra             TEXT NOT NULL DEFAULT 'null',
    matched           INTEGER NOT NULL DEFAULT 0,
    attached          INTEGER NOT NULL DEFAULT 0,
    hooks             TEXT NOT NULL DEFAULT '',
    hook_status       TEXT NOT NULL DEFAULT '',
    hook_error        TEXT NOT NULL DEFAULT '',
    mirror_status     TEXT NOT NULL DEFAULT '',
    mirror_error      TEXT NOT NULL DEFAULT '',
    mirror_head       TEXT NOT NULL DEFAULT '',
    mirror_synced_at  INTEGER NOT NULL DEFAULT 0,
    mirror_sync_count INTEGER NOT NULL DEFAULT 0,
    seen_at           INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (integration_id, host_id)
);
CREATE INDEX repositories_full_name ON repositories (full_name, id);
CREATE INDEX repositories_integration_name ON repositories (integration_id, full_name, id);

CREATE TABLE deliveries (
    id             TEXT PRIMARY KEY,
    integration_id TEXT NOT NULL,
    kind           TEXT NOT NULL,
    host_id        TEXT NOT NULL DEFAULT '',
    event          TEXT NOT NULL DEFAULT '',
    event_action   TEXT NOT NULL DEFAULT '',
    headers        TEXT NOT NULL DEFAULT 'null',
    body           BLOB,
    status         TEXT NOT NULL DEFAULT '',
    reason         TEXT NOT NULL DEFAULT '',
    error          TEXT NOT NULL DEFAULT '',
    attempts       INTEGER NOT NULL DEFAULT 0,
    test           INTEGER NOT NULL DEFAULT 0,
    event_ids      TEXT NOT NULL DEFAULT 'null',
    received_at    INTEGER NOT NULL,
    processed_at   INTEGER NOT NULL DEFAULT 0
);
-- Deduplication: a host's delivery id is stored once per integration. Deliveries without
-- an id cannot be deduplicated and are all kept.
CREATE UNIQUE INDEX deliveries_host_id ON deliveries (kind, integration_id, host_id) WHERE host_id <> '';
CREATE INDEX deliveries_received ON deliveries (received_at, id);
CREATE INDEX deliveries_integration_received ON deliveries (integration_id, received_at, id);

CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    integration_id TEXT NOT NULL DEFAULT '',
    repository_id  TEXT NOT NULL DEFAULT '',
    delivery_id    TEXT NOT NULL DEFAULT '',
    event_type     TEXT NOT NULL,
    event_time     INTEGER NOT NULL DEFAULT 0,
    document       TEXT NOT NULL
);
CREATE INDEX events_repository ON events (repository_id, seq);
CREATE INDEX events_integration ON events (integration_id, seq);
CREATE INDEX events_delivery ON events (delivery_id, seq);

CREATE TABLE pull_request_heads (
    integration_id TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    repo_host_id   TEXT NOT NULL,
    number         INTEGER NOT NULL,
    sha            TEXT NOT NULL,
    PRIMARY KEY (integration_id, repo_host_id, number)
);

CREATE TABLE user_credentials (
    integration_id TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL,
    login          TEXT NOT NULL DEFAULT '',
    token_enc      BLOB,
    expires_at     INTEGER NOT NULL DEFAULT 0,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (integration_id, user_id)
);
CREATE INDEX user_credentials_login ON user_credentials (integration_id, login);

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    hash       BLOB NOT NULL UNIQUE,
    admin      INTEGER NOT NULL DEFAULT 0,
    project_id TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    last_used  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE cache_entries (
    integration_id TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    cache_key      TEXT NOT NULL,
    etag           TEXT NOT NULL DEFAULT '',
    last_modified  TEXT NOT NULL DEFAULT '',
    body           BLOB,
    header         TEXT NOT NULL DEFAULT 'null',
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (integration_id, cache_key)
);

CREATE TABLE kv (
    name       TEXT PRIMARY KEY,
    value      BLOB,
    updated_at INTEGER NOT NULL
);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    args         TEXT NOT NULL DEFAULT 'null',
    unique_key   TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL,
    attempt      INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    lease_owner  TEXT NOT NULL DEFAULT '',
    lease_until  INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    progress     TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL DEFAULT 0
);
-- Unique keys coalesce pending jobs only: a running job does not stop a new one being queued
-- (a push during a sync must cause another sync).
CREATE UNIQUE INDEX jobs_unique_pending ON jobs (unique_key)
    WHERE state IN ('available', 'retryable') AND unique_key <> '';
CREATE INDEX jobs_due ON jobs (state, run_at, id);
CREATE INDEX jobs_lease ON jobs (state, lease_until) WHERE state = 'running';
CREATE INDEX jobs_kind ON jobs (kind, id);

-- +goose Down
DROP TABLE jobs;
DROP TABLE kv;
DROP TABLE cache_entries;
DROP TABLE projects;
DROP TABLE api_tokens;
DROP TABLE user_credentials;
DROP TABLE pull_request_heads;
DROP TABLE events;
DROP TABLE deliveries;
DROP TABLE repositories;
DROP TABLE installations;
DROP TABLE integration_routes;
DROP TABLE integrations;
