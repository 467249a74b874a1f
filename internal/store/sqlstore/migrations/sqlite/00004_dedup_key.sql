-- Deduplication indexes a rewrite of the host's delivery id (dedup_key, see dedupkey.go)
-- that sorts by time when the id carries its time (version-1 UUIDs such as GitHub's, decimal
-- counters), so that new entries land at the right edge of the index instead of on a random
-- page of it. Rows stored before get the same key, computed here exactly as the Go code does
-- (a test checks the two agree).

-- +goose Up
ALTER TABLE deliveries ADD COLUMN dedup_key TEXT NOT NULL DEFAULT '';
UPDATE deliveries SET dedup_key = CASE
    WHEN host_id = '' THEN ''
    WHEN host_id GLOB '[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-1[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]'
        THEN '1' || substr(host_id, 16, 3) || substr(host_id, 10, 4) || substr(host_id, 1, 8)
            || substr(host_id, 20, 4) || substr(host_id, 25, 12)
    WHEN host_id = '0' OR (length(host_id) <= 20 AND host_id GLOB '[1-9]*' AND host_id NOT GLOB '*[^0-9]*')
        THEN 'n' || substr('00000000000000000000', 1, 20 - length(host_id)) || host_id
    ELSE '=' || host_id
END;
DROP INDEX deliveries_host_id;
CREATE UNIQUE INDEX deliveries_dedup ON deliveries (kind, integration_id, dedup_key) WHERE dedup_key <> '';

-- +goose Down
DROP INDEX deliveries_dedup;
CREATE UNIQUE INDEX deliveries_host_id ON deliveries (kind, integration_id, host_id) WHERE host_id <> '';
ALTER TABLE deliveries DROP COLUMN dedup_key;
