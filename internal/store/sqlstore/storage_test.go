package sqlstore

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/store"
)

// A compressible body is stored S2-compressed and read back as received; a small one, or one
// that does not shrink, is stored as it came.
func TestDeliveryBodyCompression(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "f.db"))
	ctx := t.Context()
	in := &store.Integration{Kind: "github", Name: "x", BaseURL: "https://github.com", Status: "active"}
	if err := db.CreateIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	incompressible := make([]byte, 4096)
	_, _ = rand.Read(incompressible)
	for _, tc := range []struct {
		name     string
		body     []byte
		encoding string
	}{
		{"push", []byte(`{"ref":"refs/heads/main","commits":[` + strings.Repeat(`{"id":"0123456789abcdef","message":"fix the build"},`, 120) + `{}]}`), bodyS2},
		{"small", []byte(`{"zen":"Keep it logically awesome."}`), bodyRaw},
		{"incompressible", incompressible, bodyRaw},
		{"empty", nil, bodyRaw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &store.Delivery{IntegrationID: in.ID, Kind: "github", HostID: "h-" + tc.name, Event: "push", Body: tc.body}
			if _, err := db.InsertDelivery(ctx, d, store.NewJob{Kind: "process"}); err != nil {
				t.Fatal(err)
			}
			var (
				stored   []byte
				encoding string
			)
			if err := db.reader.QueryRowContext(ctx, `SELECT body, body_encoding FROM deliveries WHERE id = ?`, d.ID).Scan(&stored, &encoding); err != nil {
				t.Fatal(err)
			}
			if encoding != tc.encoding {
				t.Errorf("stored with encoding %q, want %q", encoding, tc.encoding)
			}
			if tc.encoding == bodyS2 && len(stored)*2 > len(tc.body) {
				t.Errorf("stored %d bytes of a %d-byte body: not compressed", len(stored), len(tc.body))
			}
			got, err := db.GetDelivery(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Body, tc.body) {
				t.Errorf("body read back differs (%d bytes, want %d)", len(got.Body), len(tc.body))
			}
		})
	}
	// A stored body that does not decode is an error of that delivery, not a wrong body.
	if _, err := db.writer.ExecContext(ctx, `UPDATE deliveries SET body = x'00ff' WHERE host_id = 'h-push'`); err != nil {
		t.Fatal(err)
	}
	list, _, err := db.ListDeliveries(ctx, store.DeliveryFilter{})
	if err == nil || !strings.Contains(err.Error(), "decompress body") {
		t.Errorf("list with a corrupt body: %d deliveries, err %v; want a decompress error", len(list), err)
	}
}

// Statements are prepared once per pool, including those first run inside a transaction
// (prepared after it, without waiting on the connection the transaction holds), and the
// cache stops growing at its bound.
func TestStatementCache(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "f.db"))
	ctx := t.Context()
	const q = `SELECT count(*) FROM jobs WHERE kind = ?`
	for range 2 {
		if err := db.Tx(ctx, func(tx store.Tx) error {
			var n int
			return tx.(ops).queryRow(ctx, q, "x").Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
	}
	db.writerStmts.mu.Lock()
	_, ready := db.writerStmts.ready[q]
	db.writerStmts.mu.Unlock()
	if !ready {
		t.Errorf("a statement run in two transactions is not prepared on the writer")
	}
	for i := range maxCachedStatements + 10 {
		var n int
		if err := db.queryRow(ctx, fmt.Sprintf(`SELECT %d FROM jobs LIMIT 1`, i)).Scan(&n); err != nil && !strings.Contains(err.Error(), "no rows") {
			t.Fatal(err)
		}
	}
	db.readerStmts.mu.Lock()
	n := len(db.readerStmts.ready)
	db.readerStmts.mu.Unlock()
	if n > maxCachedStatements {
		t.Errorf("reader cache holds %d statements, bound %d", n, maxCachedStatements)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if s := db.readerStmts.get(ctx, q, false); s != nil {
		t.Error("a closed store's cache still hands out statements")
	}
}
