package sqlstore_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/store/sqlstore"
)

// uuidV1 formats a version-1 UUID for time t (100 ns ticks since 1582-10-15), as a host
// such as GitHub generates them.
func uuidV1(t time.Time, seq uint16, node [6]byte) string {
	ticks := uint64(t.UnixNano()/100) + 0x01B21DD213814000
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%x", uint32(ticks), uint16(ticks>>32),
		uint16(ticks>>48)&0x0fff|0x1000, seq&0x3fff|0x8000, node[:])
}

func randomUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// dedupIDs is a set of delivery ids of every shape the key rewrites or keeps, including ids
// built to collide with another id's key if the rewrite were not one-to-one.
func dedupIDs() []string {
	node := [6]byte{0x42, 0xac, 0x12, 0x00, 0x02, 0x01}
	base := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	v1 := uuidV1(base, 7, node)
	ids := []string{
		v1, strings.ToUpper(v1),
		"72d3162e-cc78-11e3-81ab-4c9367dc0958", // GitHub's documented example
		"72d3162e-cc78-21e3-81ab-4c9367dc0958", // version 2: kept as is
		"72d3162e-cc78-11e3-81ab-4c9367dc095",  // too short
		"72d3162e-cc78-11e3-81ab-4c9367dc0958x",
		"72d3162e_cc78-11e3-81ab-4c9367dc0958",
		"72d3162g-cc78-11e3-81ab-4c9367dc0958", // not hex
		"0", "1", "7", "07", "007", "42", "18446744073709551615", "99999999999999999999",
		"100000000000000000000", // 21 digits: kept as is
		"-1", "+1", "1e3", " 1", "1 ",
		"f6266f16-1bf3-46a5-9ea4-602e06ead473", // Gitea's v4
		"01890a5d-ac96-774b-bcce-b302099a8057", // v7
		"n00000000000000000042", "=42", "1e3cc7872d3162e81ab4c9367dc0958", "n", "=", "1",
		"ü", "x-y", strings.Repeat("a", 300),
	}
	// The key of each id used verbatim as an id of its own must not collide with it.
	for _, id := range slices.Clone(ids) {
		ids = append(ids, sqlstore.DedupKey(id), sqlstore.DedupKey(id)[1:])
	}
	for i := range 200 {
		ids = append(ids, uuidV1(base.Add(time.Duration(i)*time.Millisecond), uint16(i), node), randomUUID())
		n, _ := rand.Int(rand.Reader, new(big.Int).SetUint64(1<<63))
		ids = append(ids, n.String())
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func TestDedupKeyIsOneToOne(t *testing.T) {
	ids := dedupIDs()
	byKey := map[string]string{}
	for _, id := range ids {
		k := sqlstore.DedupKey(id)
		if k == "" {
			t.Fatalf("id %q has no key", id)
		}
		if other, ok := byKey[k]; ok {
			t.Fatalf("ids %q and %q share the key %q", other, id, k)
		}
		byKey[k] = id
	}
	if k := sqlstore.DedupKey(""); k != "" {
		t.Errorf("the empty id has key %q, want none", k)
	}
}

func TestDedupKeySortsByTime(t *testing.T) {
	var node [6]byte
	_, _ = rand.Read(node[:])
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var prev string
	// Steps from 100 ns to years cross every part of the timestamp (time_low wraps every
	// 7 minutes, time_mid every 325 days).
	for i, step := range []time.Duration{100, time.Microsecond, time.Second, 7 * time.Minute, 24 * time.Hour, 400 * 24 * time.Hour} {
		for j := range 3 {
			at := start.Add(time.Duration(i*3+j) * step)
			seq := binary.BigEndian.Uint16(node[:2]) + uint16(j)
			k := sqlstore.DedupKey(uuidV1(at, seq, node))
			if k[0] != '1' {
				t.Fatalf("key %q of a version-1 UUID is not in its class", k)
			}
			if prev != "" && k <= prev {
				t.Fatalf("key %q of a later UUID sorts before %q", k, prev)
			}
			prev = k
		}
		start = start.Add(10 * step)
	}
	if a, b := sqlstore.DedupKey("9"), sqlstore.DedupKey("10"); a >= b {
		t.Errorf("key of 9 (%q) does not sort before key of 10 (%q)", a, b)
	}
	if k := sqlstore.DedupKey("72d3162e-cc78-11e3-81ab-4c9367dc0958"); k != "11e3cc7872d3162e81ab4c9367dc0958" {
		t.Errorf("GitHub's documented example has key %q", k)
	}
}

// Rows stored before migration 00004 get their keys from its UPDATE statement: it must give
// every id the key the Go code gives it, or a redelivery of such a row would not be found.
func TestDedupKeyMigrationMatchesGo(t *testing.T) {
	onEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		in := &store.Integration{Kind: "github", Name: "x", BaseURL: "https://github.com", Status: "active"}
		if err := db.CreateIntegration(ctx, in); err != nil {
			t.Fatal(err)
		}
		ids := dedupIDs()
		for i, id := range ids {
			// As the schema before 00004 stored them: no key.
			err := db.ExecWriter(ctx, `INSERT INTO deliveries (id, integration_id, kind, host_id, received_at)
					VALUES (?, ?, 'github', ?, ?)`, fmt.Sprintf("dlv_old%04d", i), in.ID, id, i)
			if err != nil {
				t.Fatalf("insert %q: %v", id, err)
			}
		}
		backfill, err := db.MigrationStatement("00004_dedup_key.sql", "UPDATE deliveries SET dedup_key")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.ExecWriter(ctx, backfill); err != nil {
			t.Fatalf("backfill: %v", err)
		}
		got, err := db.QueryWriter(ctx, `SELECT host_id, dedup_key FROM deliveries`)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if want := sqlstore.DedupKey(id); got[id] != want {
				t.Errorf("host id %q: the migration's key is %q, Go's %q", id, got[id], want)
			}
		}
		// And a redelivery of such a row is found as the duplicate it is.
		d := &store.Delivery{IntegrationID: in.ID, Kind: "github", HostID: ids[0], Event: "push", Body: []byte(`{}`)}
		inserted, err := db.InsertDelivery(ctx, d, store.NewJob{Kind: "process_delivery", MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		if inserted || d.ID != "dlv_old0000" {
			t.Errorf("redelivery of a row stored before the migration: inserted=%v id=%s, want the stored dlv_old0000", inserted, d.ID)
		}
	})
}
