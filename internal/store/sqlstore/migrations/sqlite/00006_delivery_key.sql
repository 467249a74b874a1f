-- SQLite only: PostgreSQL keeps deliveries keyed by their text id.
--
-- Deliveries get an integer row key, n, and lose the index SQLite kept on their text
-- primary key: one B-tree fewer written with every group commit (about two pages of WAL per
-- commit, and again at checkpoint; docs/benchmarks.md, "Session 17").
--
-- * A delivery id the store makes (deliverykey.go) holds its key: its first eight bytes,
--   big-endian, are n (the millisecond it was received, then a counter), so the store finds
--   it by n, with no index. Keys only grow, so new rows append to the table.
-- * Any other id (made before this migration, or given by the caller) is mapped to its key
--   in delivery_keys, a table no delivery the store makes writes to. The rows kept here get
--   keys 1, 2, ... in id order, which is the order they were received in, and all of them
--   come before the keys of later deliveries.
-- * Lists and pruning follow n, as they followed the id.

-- +goose Up
CREATE TABLE deliveries_next (
    n              INTEGER PRIMARY KEY,
    id             TEXT NOT NULL,
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
    processed_at   INTEGER NOT NULL DEFAULT 0,
    body_encoding  TEXT NOT NULL DEFAULT '',
    dedup_key      TEXT NOT NULL DEFAULT ''
);
INSERT INTO deliveries_next (n, id, integration_id, kind, host_id, event, event_action, headers,
        body, status, reason, error, attempts, test, event_ids, received_at, processed_at,
        body_encoding, dedup_key)
    SELECT row_number() OVER (ORDER BY id), id, integration_id, kind, host_id, event, event_action,
        headers, body, status, reason, error, attempts, test, event_ids, received_at, processed_at,
        body_encoding, dedup_key
    FROM deliveries;
CREATE TABLE delivery_keys (
    n  INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
);
INSERT INTO delivery_keys (n, id) SELECT n, id FROM deliveries_next;
DROP TABLE deliveries;
ALTER TABLE deliveries_next RENAME TO deliveries;
CREATE UNIQUE INDEX deliveries_dedup ON deliveries (kind, integration_id, dedup_key) WHERE dedup_key <> '';
CREATE INDEX deliveries_integration ON deliveries (integration_id, n);
-- A deleted delivery's mapping goes with it (only rows with a mapping have one to find).
-- +goose StatementBegin
CREATE TRIGGER deliveries_forget_key AFTER DELETE ON deliveries
BEGIN
    DELETE FROM delivery_keys WHERE n = old.n;
END;
-- +goose StatementEnd

-- +goose Down
CREATE TABLE deliveries_prev (
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
    processed_at   INTEGER NOT NULL DEFAULT 0,
    body_encoding  TEXT NOT NULL DEFAULT '',
    dedup_key      TEXT NOT NULL DEFAULT ''
);
INSERT INTO deliveries_prev (id, integration_id, kind, host_id, event, event_action, headers,
        body, status, reason, error, attempts, test, event_ids, received_at, processed_at,
        body_encoding, dedup_key)
    SELECT id, integration_id, kind, host_id, event, event_action, headers, body, status, reason,
        error, attempts, test, event_ids, received_at, processed_at, body_encoding, dedup_key
    FROM deliveries ORDER BY n;
DROP TABLE deliveries;
DROP TABLE delivery_keys;
ALTER TABLE deliveries_prev RENAME TO deliveries;
CREATE UNIQUE INDEX deliveries_dedup ON deliveries (kind, integration_id, dedup_key) WHERE dedup_key <> '';
CREATE INDEX deliveries_integration ON deliveries (integration_id, id);
