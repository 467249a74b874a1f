-- Keep in step with ../postgres/00005_lean_indexes.sql.
--
-- Fewer B-trees written with each group commit of deliveries: every index a delivery or its
-- processing job touches costs at least one page of WAL per commit, and that page again at
-- checkpoint (docs/benchmarks.md, "Where the time goes").
--
-- * Deliveries are listed and pruned in id order. An id begins with the millisecond its
--   delivery was received (newIDAt), so the primary key already orders them by time: the
--   two indexes on received_at go, and listing per integration uses (integration_id, id).
-- * jobs_kind leaves out delivery.process, the kind written with every group commit; the
--   store lists that kind in id order instead (it is most of the table).
-- * jobs loses AUTOINCREMENT, whose sqlite_sequence row was one more page per commit. Ids
--   still never go back: SQLite gives a new row one more than the largest id present, and
--   pruning never deletes the newest job. A table empty at this migration keeps its
--   high-water mark in a finished placeholder row, pruned once a newer job exists.

-- +goose Up
DROP INDEX deliveries_received;
DROP INDEX deliveries_integration_received;
CREATE INDEX deliveries_integration ON deliveries (integration_id, id);

CREATE TABLE jobs_next (
    id           INTEGER PRIMARY KEY,
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
INSERT INTO jobs_next (id, kind, args, unique_key, state, attempt, max_attempts, run_at, lease_owner,
        lease_until, last_error, progress, created_at, updated_at, finished_at)
    SELECT id, kind, args, unique_key, state, attempt, max_attempts, run_at, lease_owner,
        lease_until, last_error, progress, created_at, updated_at, finished_at FROM jobs;
INSERT INTO jobs_next (id, kind, state, max_attempts, run_at, created_at, updated_at, finished_at)
    SELECT seq, 'store.id_floor', 'completed', 1, 0, 0, 0, 1 FROM sqlite_sequence
    WHERE name = 'jobs' AND seq > 0 AND NOT EXISTS (SELECT 1 FROM jobs);
DROP TABLE jobs;
ALTER TABLE jobs_next RENAME TO jobs;
CREATE UNIQUE INDEX jobs_unique_pending ON jobs (unique_key)
    WHERE state IN ('available', 'retryable') AND unique_key <> '';
CREATE INDEX jobs_due ON jobs (state, run_at, id);
CREATE INDEX jobs_lease ON jobs (state, lease_until) WHERE state = 'running';
CREATE INDEX jobs_kind ON jobs (kind, id) WHERE kind <> 'delivery.process';

-- +goose Down
CREATE TABLE jobs_prev (
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
INSERT INTO jobs_prev (id, kind, args, unique_key, state, attempt, max_attempts, run_at, lease_owner,
        lease_until, last_error, progress, created_at, updated_at, finished_at)
    SELECT id, kind, args, unique_key, state, attempt, max_attempts, run_at, lease_owner,
        lease_until, last_error, progress, created_at, updated_at, finished_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_prev RENAME TO jobs;
CREATE UNIQUE INDEX jobs_unique_pending ON jobs (unique_key)
    WHERE state IN ('available', 'retryable') AND unique_key <> '';
CREATE INDEX jobs_due ON jobs (state, run_at, id);
CREATE INDEX jobs_lease ON jobs (state, lease_until) WHERE state = 'running';
CREATE INDEX jobs_kind ON jobs (kind, id);

DROP INDEX deliveries_integration;
CREATE INDEX deliveries_received ON deliveries (received_at, id);
CREATE INDEX deliveries_integration_received ON deliveries (integration_id, received_at, id);
