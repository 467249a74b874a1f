-- Delivery bodies may be stored compressed: body_encoding names how ('' = as received,
-- 's2' = S2 block format). Rows written before this migration keep ''.

-- +goose Up
ALTER TABLE deliveries ADD COLUMN body_encoding TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE deliveries DROP COLUMN body_encoding;
