package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

// pruneBatch is how many rows one pruning transaction deletes.
const pruneBatch = 1000

// Prune deletes what retention no longer keeps, in transactions of pruneBatch rows.
func (db *DB) Prune(ctx context.Context, cutoff time.Time) (store.PruneResult, error) {
	var res store.PruneResult
	c := micros(cutoff)
	// Old deliveries are found by what begins with the time they were received: on
	// PostgreSQL their ids (every delivery received before the cutoff's millisecond has an
	// id below idFloor), on SQLite their keys (keyFloor; rows stored before keys have the
	// smallest).
	var (
		below              any
		events, deliveries string
	)
	if db.dialect.postgres {
		below = idFloor(prefixDelivery, cutoff)
		events = `DELETE FROM events WHERE seq IN (SELECT e.seq FROM events e
			JOIN deliveries d ON d.id = e.delivery_id
			WHERE d.id < ? AND d.received_at < ? AND d.status <> 'received' LIMIT ?)`
		deliveries = `DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
			WHERE id < ? AND received_at < ? AND status <> 'received' LIMIT ?)`
	} else {
		below = keyFloor(cutoff)
		events = `DELETE FROM events WHERE seq IN (SELECT e.seq FROM deliveries d
			JOIN events e ON e.delivery_id = d.id
			WHERE d.n < ? AND d.received_at < ? AND d.status <> 'received' LIMIT ?)`
		deliveries = `DELETE FROM deliveries WHERE n IN (SELECT n FROM deliveries
			WHERE n < ? AND received_at < ? AND status <> 'received' LIMIT ?)`
	}
	day := micros(now().Add(-24 * time.Hour))
	steps := []struct {
		what  string
		count *int64
		fn    func(o ops) (int64, error)
	}{
		{"events of old deliveries", &res.Events, func(o ops) (int64, error) {
			return o.deleteAffected(ctx, events, below, c, pruneBatch)
		}},
		{"old deliveries", &res.Deliveries, func(o ops) (int64, error) {
			return o.deleteAffected(ctx, deliveries, below, c, pruneBatch)
		}},
		{"finished jobs", &res.Jobs, func(o ops) (int64, error) {
			// The newest job is never deleted: SQLite numbers a new job one more than the
			// largest id present, so an empty table would hand out old ids again.
			return o.deleteAffected(ctx, `DELETE FROM jobs WHERE id IN (SELECT id FROM jobs
				WHERE state IN ('completed', 'cancelled', 'dead') AND finished_at > 0 AND finished_at < ?
				AND id < (SELECT max(id) FROM jobs) LIMIT ?)`, c, pruneBatch)
		}},
		{"cache entries", &res.CacheEntries, func(o ops) (int64, error) {
			return o.deleteAffected(ctx, `DELETE FROM cache_entries WHERE updated_at < ?`, c)
		}},
		{"expired answers and flows", &res.KV, func(o ops) (int64, error) {
			return o.deleteAffected(ctx, `DELETE FROM kv WHERE (name LIKE 'idem/%' OR name LIKE 'flow/%') AND updated_at < ?`, day)
		}},
	}
	for _, st := range steps {
		for {
			var n int64
			err := db.inTx(ctx, func(o ops) error {
				var err error
				n, err = st.fn(o)
				return err
			})
			if err != nil {
				return res, fmt.Errorf("prune %s: %w", st.what, err)
			}
			*st.count += n
			if n < pruneBatch {
				break
			}
		}
	}
	return res, nil
}

func (o ops) deleteAffected(ctx context.Context, q string, args ...any) (int64, error) {
	r, err := o.exec(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return affected(r)
}
