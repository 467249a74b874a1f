package sqlstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/store/sqlstore"
	"github.com/forgeway/forgeway/internal/store/storetest"
)

// onEachEngine runs fn on a new store of each engine (PostgreSQL when configured).
func onEachEngine(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	for name, open := range map[string]func(testing.TB) *sqlstore.DB{
		"sqlite":   func(t testing.TB) *sqlstore.DB { return storetest.SQLite(t) },
		"postgres": func(t testing.TB) *sqlstore.DB { return storetest.Postgres(t) },
	} {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
}

// indexes returns the database's indexes on deliveries and jobs by name, with their
// definitions.
func indexes(t *testing.T, db *sqlstore.DB) map[string]string {
	t.Helper()
	q := `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('deliveries', 'jobs') AND sql IS NOT NULL`
	if db.Postgres() {
		q = `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename IN ('deliveries', 'jobs')`
	}
	got, err := db.QueryWriter(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestLeanIndexesMigration moves a database down to 00004 and up again: the indexes the
// group commit no longer writes come and go, jobs keep their ids, and (SQLite) a jobs table
// left empty does not hand out old ids again once it no longer numbers them AUTOINCREMENT.
func TestLeanIndexesMigration(t *testing.T) {
	onEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		var ids []int64
		for _, kind := range []string{"a", store.JobProcessDelivery, "b"} {
			j, _, err := db.InsertJob(ctx, store.NewJob{Kind: kind, Args: map[string]string{"k": kind}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, j.ID)
		}
		top := ids[len(ids)-1]

		if err := db.MigrateTo(ctx, 4); err != nil {
			t.Fatalf("down to 00004: %v", err)
		}
		before := indexes(t, db)
		for _, name := range []string{"deliveries_received", "deliveries_integration_received", "jobs_kind"} {
			if _, ok := before[name]; !ok {
				t.Errorf("00004 has no index %s: %v", name, before)
			}
		}
		if _, ok := before["deliveries_integration"]; ok {
			t.Error("00004 has deliveries_integration")
		}
		if err := db.MigrateTo(ctx, 5); err != nil {
			t.Fatalf("up to 00005: %v", err)
		}
		after := indexes(t, db)
		for _, name := range []string{"deliveries_received", "deliveries_integration_received"} {
			if _, ok := after[name]; ok {
				t.Errorf("00005 still has %s", name)
			}
		}
		if !strings.Contains(after["deliveries_integration"], "integration_id, id") {
			t.Errorf("deliveries_integration: %q", after["deliveries_integration"])
		}
		if !strings.Contains(after["jobs_kind"], "delivery.process") {
			t.Errorf("jobs_kind does not leave out the processing kind: %q", after["jobs_kind"])
		}
		for i, id := range ids {
			j, err := db.GetJob(ctx, id)
			if err != nil {
				t.Fatalf("job %d after the migration: %v", id, err)
			}
			if j.Kind == "" || string(j.Args) != `{"k":"`+j.Kind+`"}` || i == 1 && j.Kind != store.JobProcessDelivery {
				t.Errorf("job %d after the migration: %+v", id, j)
			}
		}

		if db.Postgres() {
			return
		}
		// An empty table at the upgrade: its AUTOINCREMENT high-water mark must survive.
		if err := db.MigrateTo(ctx, 4); err != nil {
			t.Fatalf("down to 00004: %v", err)
		}
		if err := db.ExecWriter(ctx, `DELETE FROM jobs`); err != nil {
			t.Fatal(err)
		}
		if err := db.MigrateTo(ctx, 5); err != nil {
			t.Fatalf("up to 00005: %v", err)
		}
		if err := db.MigrateTo(ctx, newestSQLite); err != nil {
			t.Fatalf("up to %d: %v", newestSQLite, err)
		}
		j, _, err := db.InsertJob(ctx, store.NewJob{Kind: "c"})
		if err != nil {
			t.Fatal(err)
		}
		if j.ID <= top {
			t.Fatalf("the first job after upgrading an emptied table has id %d, not above %d", j.ID, top)
		}
		// The placeholder that held the mark goes with the next prune.
		if _, err := db.Prune(ctx, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.GetJob(ctx, top); err == nil {
			t.Error("the placeholder job is still there after a prune")
		}
		if _, err := db.GetJob(ctx, j.ID); err != nil {
			t.Errorf("the new job: %v", err)
		}
	})
}

// newestSQLite is the newest SQLite migration.
const newestSQLite = 6

// TestDeliveryKeyMigration stores deliveries as 00005 left them, keyed by their text ids,
// then moves to 00006 (integer keys, no index on the id) and back: every delivery keeps its
// id and is found, listed in order, finished and pruned by it, before and after the
// deliveries stored with keys.
func TestDeliveryKeyMigration(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	in := &store.Integration{Kind: "github", Name: "keys", BaseURL: "https://github.com", Status: "active"}
	if err := db.CreateIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := db.MigrateTo(ctx, 5); err != nil {
		t.Fatalf("down to 00005: %v", err)
	}
	// Ids of the form made before 00006 (6 bytes of time, 10 random), inserted out of order.
	long := time.Now().Add(-72 * time.Hour)
	old := []string{
		"dlv_2222222222aaaaaaaaaaaaaaaa", "dlv_2222222222bbbbbbbbbbbbbbbb", "dlv_2222222222cccccccccccccccc",
	}
	for _, i := range []int{2, 0, 1} {
		err := db.ExecWriter(ctx, `INSERT INTO deliveries (id, integration_id, kind, host_id, event, status,
			received_at, dedup_key) VALUES (?, ?, 'github', ?, 'push', ?, ?, ?)`,
			old[i], in.ID, "host-"+old[i], store.DeliveryProcessed, long.UnixMicro(), "host-"+old[i])
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.MigrateTo(ctx, newestSQLite); err != nil {
		t.Fatalf("up to 00006: %v", err)
	}
	if got, err := db.QueryWriter(ctx, `SELECT name, name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries'`); err != nil {
		t.Fatal(err)
	} else if len(got) != 2 || got["deliveries_dedup"] == "" || got["deliveries_integration"] == "" {
		t.Errorf("indexes on deliveries after 00006: %v, want deliveries_dedup and deliveries_integration only", got)
	}

	// A delivery stored now, with a key, and one whose id the caller gave.
	fresh := store.Delivery{IntegrationID: in.ID, Kind: "github", HostID: "fresh", Event: "push"}
	if _, err := db.InsertDelivery(ctx, &fresh, store.NewJob{Kind: store.JobProcessDelivery}); err != nil {
		t.Fatal(err)
	}
	given := store.Delivery{ID: "dlv_given", IntegrationID: in.ID, Kind: "github", HostID: "given", Event: "push"}
	if _, err := db.InsertDelivery(ctx, &given, store.NewJob{Kind: store.JobProcessDelivery}); err != nil {
		t.Fatal(err)
	}
	all := []string{given.ID, fresh.ID, old[2], old[1], old[0]} // newest first
	for _, id := range all {
		d, err := db.GetDelivery(ctx, id)
		if err != nil || d.ID != id {
			t.Errorf("GetDelivery(%s) = %s, %v", id, d.ID, err)
		}
	}
	got, err := db.GetDeliveries(ctx, append([]string{"dlv_missing", old[0]}, all...))
	if err != nil {
		t.Fatal(err)
	}
	if ids := deliveryIDs(got); strings.Join(ids, " ") != strings.Join(append([]string{old[0]}, all[:4]...), " ") {
		t.Errorf("GetDeliveries = %v", ids)
	}
	// Newest first, two at a time, through cursors on each kind of id.
	var listed []string
	for f := (store.DeliveryFilter{Page: store.Page{Limit: 2}}); ; {
		page, next, err := db.ListDeliveries(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, deliveryIDs(page)...)
		if next == "" {
			break
		}
		f.After = next
	}
	if strings.Join(listed, " ") != strings.Join(all, " ") {
		t.Errorf("listed %v, want %v", listed, all)
	}
	mid := store.Delivery{ID: old[1], Status: store.DeliveryFailed, Error: "boom"}
	if err := db.FinishDelivery(ctx, &mid); err != nil || mid.Attempts != 1 {
		t.Fatalf("FinishDelivery(%s) = %v, attempts %d", old[1], err, mid.Attempts)
	}

	// Pruning a day back takes the three old ones and their ids' mappings; the rest stay.
	res, err := db.Prune(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Deliveries != 3 {
		t.Errorf("pruned %d deliveries, want the 3 old ones", res.Deliveries)
	}
	if maps, err := db.QueryWriter(ctx, `SELECT id, n FROM delivery_keys`); err != nil {
		t.Fatal(err)
	} else if len(maps) != 1 || maps[given.ID] == "" {
		t.Errorf("delivery_keys after the prune: %v, want the given id's only", maps)
	}
	for _, id := range old {
		if _, err := db.GetDelivery(ctx, id); err == nil {
			t.Errorf("%s is still there after the prune", id)
		}
	}

	// And back: the ids are primary keys again.
	if err := db.MigrateTo(ctx, 5); err != nil {
		t.Fatalf("down to 00005: %v", err)
	}
	rows, err := db.QueryWriter(ctx, `SELECT id, host_id FROM deliveries`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[fresh.ID] != "fresh" || rows[given.ID] != "given" {
		t.Errorf("deliveries at 00005 again: %v", rows)
	}
	if err := db.MigrateTo(ctx, newestSQLite); err != nil {
		t.Fatalf("up to 00006 again: %v", err)
	}
}

func deliveryIDs(ds []store.Delivery) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return ids
}
