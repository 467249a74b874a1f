package sqlstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// On SQLite a delivery's row key is an integer, n, and the delivery id the store makes holds
// it, so that no index maps ids to rows: one B-tree fewer written with every group commit
// (migration 00006). The id's 16 bytes are n (8 bytes, big-endian) then 8 random bytes; n is
// the millisecond the delivery was received, shifted left by keyCounterBits, or one more than
// the last key when that is larger. So the id still begins with the millisecond (ids sort by
// time, idFloor still bounds them), and keys only grow: new rows append to the table (a
// rowid table's append splits its last page without rewriting its neighbours). An id
// the store did not make (one made before 00006, or given by the caller) is mapped to its key
// in delivery_keys. PostgreSQL keeps deliveries keyed by their text id.

// keyCounterBits is the room below the millisecond for deliveries received within it.
const keyCounterBits = 16

// deliveryKeys hands out SQLite deliveries' keys. Only the group committer's goroutine uses
// it, as it writes each row, so that keys grow in the order rows are written. It holds the
// last key in memory: one process writes deliveries to a SQLite database (several replicas
// need PostgreSQL), and a second one's rows would collide on keys and fail.
type deliveryKeys struct {
	last int64
}

// next returns the key of a delivery received at t.
func (k *deliveryKeys) next(t time.Time) int64 {
	k.last = max(keyFloor(t), k.last+1)
	return k.last
}

// load starts the keys after the largest in the database.
func (k *deliveryKeys) load(ctx context.Context, o ops) error {
	var top int64
	if err := o.writeRow(ctx, `SELECT coalesce(max(n), 0) FROM deliveries`).Scan(&top); err != nil {
		return fmt.Errorf("read the largest delivery key: %w", err)
	}
	k.last = top
	return nil
}

// keyFloor returns the smallest key of a delivery received at or after t's millisecond: every
// key below it is of a delivery received before t, or of one stored before 00006.
func keyFloor(t time.Time) int64 {
	return t.UnixMilli() << keyCounterBits
}

// deliveryID returns the id the store gives the delivery of key n, with random bytes r
// (which keep ids unguessable).
func deliveryID(n int64, r [8]byte) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(n))
	copy(b[8:], r[:])
	return prefixDelivery + "_" + idEncoding.EncodeToString(b[:])
}

// idKey returns the key an id the store made holds, or -1 when id is not of that form. An id
// of the form that the store did not make (given by a caller, or made before 00006) gives a
// key of another row or of none: lookups also match the id itself, and try delivery_keys
// first (keyOf).
func idKey(id string) int64 {
	s, ok := strings.CutPrefix(id, prefixDelivery+"_")
	if !ok || len(s) != idEncoding.EncodedLen(16) {
		return -1
	}
	var b [16]byte
	if n, err := idEncoding.Decode(b[:], []byte(s)); err != nil || n != len(b) {
		return -1
	}
	n := int64(binary.BigEndian.Uint64(b[:8]))
	if n <= 0 {
		return -1
	}
	return n
}

// keyOf is SQL (SQLite) for the key of a delivery id, bound with keyArgs(id): the id's
// mapping in delivery_keys when it has one, else the key the id holds.
const keyOf = `coalesce((SELECT k.n FROM delivery_keys k WHERE k.id = ?), ?)`

// keyArgs returns keyOf's arguments for id.
func keyArgs(id string) []any {
	return []any{id, idKey(id)}
}
