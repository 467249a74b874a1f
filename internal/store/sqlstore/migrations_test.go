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
