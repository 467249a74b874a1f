package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/forgeway/forgeway/internal/store"
)

// eventsLockID is the PostgreSQL advisory lock that serialises AppendEvents, so that events
// become visible in seq order and a reader following the log by seq never skips one that
// commits late.
const eventsLockID = 0x666f7267_65766e74 // "forgevnt"

// AppendEvents writes events in order, skipping those whose ID is stored already, and sets
// Seq on the ones it writes (it stays 0 on skipped ones). Seq is strictly increasing in
// commit order, on both engines.
func (o ops) AppendEvents(ctx context.Context, evs []store.Event) error {
	if len(evs) == 0 {
		return nil
	}
	seqs := make([]int64, len(evs))
	err := o.atomic(ctx, func(o ops) error {
		if o.db.dialect.postgres {
			if _, err := o.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(eventsLockID)); err != nil {
				return fmt.Errorf("lock event log: %w", err)
			}
		}
		for i, e := range evs {
			err := o.writeRow(ctx, `INSERT INTO events (id, integration_id,
				repository_id, delivery_id, event_type, event_time, document) VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (id) DO NOTHING RETURNING seq`,
				e.ID, e.IntegrationID, e.RepositoryID, e.DeliveryID, e.Type, micros(e.Time), string(e.Document)).Scan(&seqs[i])
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	for i := range evs {
		evs[i].Seq = seqs[i]
	}
	return nil
}

// ListEvents returns events after AfterSeq in seq order, optionally of one Type (or of every
// type starting with Type when it ends in "."), of one repository (the host's id), of one
// integration and of one delivery (Forgeway's id). Limit defaults to 100, at most 1000.
func (o ops) ListEvents(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	where := []string{"seq > ?"}
	args := []any{f.AfterSeq}
	switch {
	case strings.HasSuffix(f.Type, "."):
		where = append(where, "substr(event_type, 1, ?) = ?")
		args = append(args, utf8.RuneCountInString(f.Type), f.Type)
	case f.Type != "":
		where, args = append(where, "event_type = ?"), append(args, f.Type)
	}
	if f.RepositoryID != "" {
		where, args = append(where, "repository_id = ?"), append(args, f.RepositoryID)
	}
	if f.IntegrationID != "" {
		where, args = append(where, "integration_id = ?"), append(args, f.IntegrationID)
	}
	if f.DeliveryID != "" {
		where, args = append(where, "delivery_id = ?"), append(args, f.DeliveryID)
	}
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = defaultEventLimit
	case limit > maxEventLimit:
		limit = maxEventLimit
	}
	args = append(args, limit)
	rows, err := o.query(ctx, `SELECT seq, id, integration_id, repository_id, delivery_id, event_type,
		event_time, document FROM events WHERE `+strings.Join(where, " AND ")+` ORDER BY seq LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var (
			e   store.Event
			at  int64
			doc string
		)
		if err := rows.Scan(&e.Seq, &e.ID, &e.IntegrationID, &e.RepositoryID, &e.DeliveryID, &e.Type, &at, &doc); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		e.Time, e.Document = fromMicros(at), rawJSON(doc)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}
