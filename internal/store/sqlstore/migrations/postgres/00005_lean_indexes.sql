-- Keep in step with ../sqlite/00005_lean_indexes.sql, which says why. Job ids come from a
-- sequence here, which never goes back, so the table keeps its definition.

-- +goose Up
DROP INDEX deliveries_received;
DROP INDEX deliveries_integration_received;
CREATE INDEX deliveries_integration ON deliveries (integration_id, id);
DROP INDEX jobs_kind;
CREATE INDEX jobs_kind ON jobs (kind, id) WHERE kind <> 'delivery.process';

-- +goose Down
DROP INDEX jobs_kind;
CREATE INDEX jobs_kind ON jobs (kind, id);
DROP INDEX deliveries_integration;
CREATE INDEX deliveries_received ON deliveries (received_at, id);
CREATE INDEX deliveries_integration_received ON deliveries (integration_id, received_at, id);
