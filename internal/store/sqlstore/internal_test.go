package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

func quietOptions() Options { return Options{Logger: slog.New(slog.DiscardHandler)} }

func openSQLite(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(t.Context(), path, quietOptions())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// warnings counts the log lines at Warn or above of a store opened with its handler.
type warnings struct {
	slog.Handler
	n atomic.Int64
}

func (w *warnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		w.n.Add(1)
	}
	return nil
}

func (w *warnings) Enabled(context.Context, slog.Level) bool { return true }

// openSQLiteWatched is openSQLite for tests that must see nothing go wrong quietly, such as
// a group commit falling back to committing its members one by one: it counts warnings.
func openSQLiteWatched(t *testing.T, path string) (*DB, *warnings) {
	t.Helper()
	w := &warnings{Handler: slog.DiscardHandler}
	db, err := Open(t.Context(), path, Options{Logger: slog.New(w)})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, w
}

func TestRebind(t *testing.T) {
	for _, tc := range []struct {
		in       string
		postgres bool
		want     string
	}{
		{"SELECT 1", true, "SELECT 1"},
		{"a = ? AND b IN (?, ?)", true, "a = $1 AND b IN ($2, $3)"},
		{"a = ? AND b IN (?, ?)", false, "a = ? AND b IN (?, ?)"},
		{"?,?,?,?,?,?,?,?,?,?,?", true, "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11"},
	} {
		if got := (dialect{postgres: tc.postgres}).rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q, postgres=%v) = %q, want %q", tc.in, tc.postgres, got, tc.want)
		}
	}
}

func TestSQLitePath(t *testing.T) {
	for _, tc := range []struct {
		dsn, want string
		bad       bool
	}{
		{dsn: "/var/lib/forgeway/db.sqlite", want: "/var/lib/forgeway/db.sqlite"},
		{dsn: "data/forgeway.db", want: "data/forgeway.db"},
		{dsn: "sqlite:///var/lib/f.db", want: "/var/lib/f.db"},
		{dsn: "sqlite:data/f.db", want: "data/f.db"},
		{dsn: "file:/var/lib/f.db?cache=shared", want: "/var/lib/f.db"},
		{dsn: "file:///var/lib/f.db", want: "/var/lib/f.db"},
		{dsn: "file:rel/f.db", want: "rel/f.db"},
		{dsn: "/a/b/../c.db", want: "/a/c.db"},
		{dsn: "", bad: true},
		{dsn: ":memory:", bad: true},
		{dsn: "file::memory:", bad: true},
		{dsn: "sqlite::memory:", bad: true},
		{dsn: "file://otherhost/f.db", bad: true},
	} {
		got, err := sqlitePath(tc.dsn)
		if tc.bad {
			if err == nil {
				t.Errorf("sqlitePath(%q) = %q, want an error", tc.dsn, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("sqlitePath(%q) = %q, %v; want %q", tc.dsn, got, err, tc.want)
		}
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID("dlv")
		if len(id) != len("dlv_")+26 || id[:4] != "dlv_" {
			t.Fatalf("id %q: want dlv_ and 26 characters", id)
		}
		for _, c := range id[4:] {
			if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
				t.Fatalf("id %q has %q, not lowercase base32", id, c)
			}
		}
		if seen[id] {
			t.Fatalf("id %q generated twice", id)
		}
		seen[id] = true
	}
	// Ids made later sort later (their first bytes are the time), so that primary-key
	// indexes grow at their right edge.
	first := newID("dlv")
	time.Sleep(2 * time.Millisecond)
	if second := newID("dlv"); second <= first {
		t.Errorf("id %q made after %q sorts before it", second, first)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := encodeCursor("acme/widgets", "rep_x")
	parts, err := decodeCursor(c, 2)
	if err != nil || parts[0] != "acme/widgets" || parts[1] != "rep_x" {
		t.Fatalf("decode(encode) = %v, %v", parts, err)
	}
	for _, bad := range []string{"***", encodeCursor("only-one"), encodeCursor("a", "b", "c")} {
		if _, err := decodeCursor(bad, 2); !errors.Is(err, ErrBadCursor) {
			t.Errorf("decodeCursor(%q) error %v, want ErrBadCursor", bad, err)
		}
	}
}

func TestSQLiteFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	path := filepath.Join(dir, "forgeway.db")
	db := openSQLite(t, path)
	// Write something so the WAL exists.
	if err := db.PutKV(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	check := func(p string, want fs.FileMode) {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %v, want %v", p, got, want)
		}
	}
	check(dir, 0o700)
	check(path, 0o600)
	check(path+"-wal", 0o600)
}

func TestSQLitePragmas(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "f.db"))
	ctx := t.Context()
	for _, tc := range []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "1"}, // NORMAL: the store flushes the WAL itself (syncWAL)
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
		{"temp_store", "2"}, // MEMORY: statement journals of multi-row inserts never reach a file
		{"page_size", "8192"},
	} {
		var got string
		if err := db.writer.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("pragma %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("writer %s = %s, want %s", tc.pragma, got, tc.want)
		}
	}
	if _, err := db.reader.ExecContext(ctx, "INSERT INTO kv (name, value, updated_at) VALUES ('x', NULL, 0)"); err == nil {
		t.Error("the reader pool accepted a write")
	}
	if got := db.writer.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer pool allows %d connections, want 1", got)
	}
}

// A database created with another page size (by an earlier version) keeps it and works.
func TestExistingDatabaseKeepsItsPageSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"PRAGMA page_size=4096", "PRAGMA journal_mode=WAL", "CREATE TABLE early (x)"} {
		if _, err := old.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	old.Close()
	db := openSQLite(t, path)
	var ps int
	if err := db.writer.QueryRowContext(t.Context(), "PRAGMA page_size").Scan(&ps); err != nil {
		t.Fatal(err)
	}
	if ps != 4096 {
		t.Errorf("page size %d, want the database's own 4096", ps)
	}
	in := &store.Integration{Kind: "github", Name: "x", BaseURL: "https://github.com", Status: "active"}
	if err := db.CreateIntegration(t.Context(), in); err != nil {
		t.Fatal(err)
	}
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	db, err := Open(t.Context(), path, quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	d := store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: "g1"}
	if _, err := db.InsertDelivery(t.Context(), &d, store.NewJob{Kind: "p"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := db.InsertDelivery(t.Context(), &store.Delivery{Kind: "github"}, store.NewJob{Kind: "p"}); !errors.Is(err, ErrClosed) {
		t.Errorf("InsertDelivery after Close: %v, want ErrClosed", err)
	}
	db2 := openSQLite(t, path)
	if err := db2.Ping(t.Context()); err != nil {
		t.Fatalf("ping after reopen: %v", err)
	}
	if _, err := db2.GetDelivery(t.Context(), d.ID); err != nil {
		t.Errorf("delivery lost across reopen: %v", err)
	}
}

func TestPingReportsPendingMigrations(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "f.db"))
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if _, err := db.writer.ExecContext(t.Context(), "DELETE FROM goose_db_version WHERE version_id > 0"); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(t.Context()); err == nil {
		t.Error("Ping passed with migrations pending")
	}
}

// holdWriter takes the SQLite writer connection until release is called, so that the
// group committer queues what arrives meanwhile.
func holdWriter(t *testing.T, db *DB) (release func()) {
	t.Helper()
	conn, err := db.writer.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return func() { once.Do(func() { _ = conn.Close() }) }
}

func TestGroupCommitBatches(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "f.db"))
	const n = 50
	insertQueued(t, db, n, nil)
	batches, deliveries := db.CommitStats()
	if deliveries != n {
		t.Errorf("%d deliveries committed, want %d", deliveries, n)
	}
	// The first caller commits alone; the 49 others wait and share one or a few batches.
	if batches > 5 {
		t.Errorf("%d batches for %d queued deliveries: no group commit", batches, n)
	}
}

// insertQueued inserts n deliveries (host ids 0..n-1, body(i) their bodies when body is not
// nil) concurrently, all queued behind a held writer, so that few group commits carry them.
func insertQueued(t *testing.T, db *DB, n int, body func(i int) []byte) {
	t.Helper()
	ctx := t.Context()
	release := holdWriter(t, db)
	defer release()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			d := store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: fmt.Sprint(i)}
			if body != nil {
				d.Body = body(i)
			}
			ins, err := db.InsertDelivery(ctx, &d, store.NewJob{Kind: "p"})
			if err == nil && !ins {
				err = fmt.Errorf("delivery %d not inserted", i)
			}
			errs <- err
		})
	}
	// Let every caller queue behind the held writer.
	time.Sleep(200 * time.Millisecond)
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Deliveries committed together share their default processing job; a job with args of its
// own, a unique key or another attempt bound stays apart.
func TestGroupCommitSharesDefaultJobs(t *testing.T) {
	db, warned := openSQLiteWatched(t, filepath.Join(t.TempDir(), "f.db"))
	ctx := t.Context()
	release := holdWriter(t, db)
	defer release()
	ids := map[string]string{} // host id -> delivery id
	var mu sync.Mutex
	var wg sync.WaitGroup
	insert := func(hostID string, job store.NewJob) {
		wg.Go(func() {
			d := store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: hostID}
			if _, err := db.InsertDelivery(ctx, &d, job); err != nil {
				t.Error(err)
			}
			mu.Lock()
			ids[hostID] = d.ID
			mu.Unlock()
		})
	}
	insert("first", store.NewJob{Kind: "p", MaxAttempts: 12}) // taken alone; waits for the writer
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if batches, _ := db.CommitStats(); batches == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the committer never took the first delivery")
		}
	}
	insert("d1", store.NewJob{Kind: "p", MaxAttempts: 12})
	insert("d2", store.NewJob{Kind: "p", MaxAttempts: 12})
	insert("custom", store.NewJob{Kind: "p", MaxAttempts: 12, Args: map[string]int{"n": 1}})
	insert("unique", store.NewJob{Kind: "p", MaxAttempts: 12, UniqueKey: "u"})
	insert("fewer", store.NewJob{Kind: "p", MaxAttempts: 3})
	time.Sleep(500 * time.Millisecond) // all five queue behind the first
	release()
	wg.Wait()
	if batches, _ := db.CommitStats(); batches != 2 {
		t.Fatalf("%d batches, want 2 (the first alone, then the five queued)", batches)
	}
	if n := warned.n.Load(); n > 0 {
		t.Errorf("%d warnings: the batch of five did not commit as one", n)
	}
	jobs, _, err := db.ListJobs(ctx, store.JobFilter{Kind: "p"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range jobs {
		args := string(j.Args)
		var shared store.DeliveryJobArgs
		if json.Unmarshal(j.Args, &shared) == nil && len(shared.DeliveryIDs) > 0 {
			// Queued callers join the batch in the order they reached the committer.
			slices.Sort(shared.DeliveryIDs)
			args = fmt.Sprint(shared.DeliveryIDs)
		}
		got = append(got, fmt.Sprintf("%s max=%d key=%q", args, j.MaxAttempts, j.UniqueKey))
	}
	pair := []string{ids["d1"], ids["d2"]}
	slices.Sort(pair)
	want := []string{
		fmt.Sprintf(`{"delivery_id":%q} max=12 key=""`, ids["first"]),
		fmt.Sprintf(`%v max=12 key=""`, pair),
		`{"n":1} max=12 key=""`,
		fmt.Sprintf(`{"delivery_id":%q} max=12 key="u"`, ids["unique"]),
		fmt.Sprintf(`{"delivery_id":%q} max=3 key=""`, ids["fewer"]),
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("jobs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// commitQueued opens a store and queues n deliveries behind its held writer, so that they
// commit together, the i-th being made by delivery(i). A batch that falls back to commits
// one by one logs a warning, which fails the test.
func commitQueued(t *testing.T, n int, delivery func(i int) (store.Delivery, store.NewJob)) *DB {
	t.Helper()
	db, warned := openSQLiteWatched(t, filepath.Join(t.TempDir(), "f.db"))
	release := holdWriter(t, db)
	defer release()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d, job := delivery(i)
			if _, err := db.InsertDelivery(t.Context(), &d, job); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // the first waits for the writer, the rest queue
	release()
	wg.Wait()
	if batches, committed := db.CommitStats(); batches > 2 || committed != int64(n) {
		t.Errorf("%d deliveries in %d batches, want %d in at most 2", committed, batches, n)
	}
	if w := warned.n.Load(); w > 0 {
		t.Errorf("%d warnings: a batch did not commit as one", w)
	}
	return db
}

// Deliveries committed together whose jobs share a unique key leave one pending job of it,
// in the one transaction: the batch does not fail over the key and fall back.
func TestGroupCommitUniqueJobs(t *testing.T) {
	db := commitQueued(t, 4, func(i int) (store.Delivery, store.NewJob) {
		return store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: fmt.Sprint(i)},
			store.NewJob{Kind: "p", UniqueKey: "u"}
	})
	jobs, _, err := db.ListJobs(t.Context(), store.JobFilter{Kind: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].UniqueKey != "u" {
		t.Errorf("jobs = %+v, want one of key u", jobs)
	}
}

// Deliveries stored with every column set (not as received) commit together too: the
// committer hands its values to the driver unconverted, and one of a type the driver does
// not bind would fail the batch into one-by-one commits.
func TestGroupCommitWritesEveryColumn(t *testing.T) {
	db := commitQueued(t, 4, func(i int) (store.Delivery, store.NewJob) {
		return store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: fmt.Sprint(i), Event: "push",
			Status: store.DeliveryFailed, Reason: "r", Error: "e", Attempts: 3, EventIDs: []string{"evt_1"},
			ProcessedAt: time.Now(), Test: true}, store.NewJob{Kind: "p"}
	})
	items, _, err := db.ListDeliveries(t.Context(), store.DeliveryFilter{Status: store.DeliveryFailed})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 4 || items[0].Attempts != 3 || items[0].Reason != "r" || !items[0].Test {
		t.Errorf("stored %+v, want 4 failed deliveries with their columns", items)
	}
}

func TestGroupCommitIsolatesABadRow(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "f.db"))
	ctx := t.Context()
	if _, err := db.writer.ExecContext(ctx, `CREATE TRIGGER poison BEFORE INSERT ON deliveries
		WHEN NEW.event = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END`); err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, db)
	defer release()
	type result struct {
		event    string
		id       string
		inserted bool
		err      error
	}
	results := make(chan result, 20)
	var wg sync.WaitGroup
	for i := range 20 {
		event := "push"
		if i == 7 {
			event = "poison"
		}
		wg.Go(func() {
			d := store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: fmt.Sprint(i), Event: event}
			ins, err := db.InsertDelivery(ctx, &d, store.NewJob{Kind: "p"})
			results <- result{event, d.ID, ins, err}
		})
	}
	time.Sleep(200 * time.Millisecond)
	release()
	wg.Wait()
	close(results)
	answered := map[string]bool{} // the ids the good deliveries' callers got
	for r := range results {
		switch {
		case r.event == "poison" && r.err == nil:
			t.Error("the poisoned delivery was accepted")
		case r.event != "poison" && (r.err != nil || !r.inserted):
			t.Errorf("a good delivery failed with the bad one: inserted=%v err=%v", r.inserted, r.err)
		case r.event != "poison":
			answered[r.id] = true
		}
	}
	items, _, err := db.ListDeliveries(ctx, store.DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 19 {
		t.Errorf("%d deliveries stored, want 19", len(items))
	}
	// Committed again one by one, each took a new key and id (deliverykey.go): its caller got
	// the one stored, which finds it.
	for _, d := range items {
		if !answered[d.ID] {
			t.Errorf("stored delivery %s is not the id any caller got (%d answered)", d.ID, len(answered))
		}
		if got, err := db.GetDelivery(ctx, d.ID); err != nil || got.ID != d.ID {
			t.Errorf("GetDelivery(%s) = %s, %v", d.ID, got.ID, err)
		}
	}
	jobs, _, err := db.ListJobs(ctx, store.JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	// Every stored delivery is in exactly one job (deliveries committed together share one).
	covered := map[string]int{}
	for _, j := range jobs {
		var args store.DeliveryJobArgs
		if err := json.Unmarshal(j.Args, &args); err != nil {
			t.Fatal(err)
		}
		for _, id := range args.IDs() {
			covered[id]++
		}
	}
	for _, d := range items {
		if covered[d.ID] != 1 {
			t.Errorf("delivery %s is in %d jobs, want 1", d.ID, covered[d.ID])
		}
	}
	if len(covered) != 19 {
		t.Errorf("jobs name %d deliveries, want 19", len(covered))
	}
}

func TestInsertDeliveryContextCancelled(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "f.db"))
	release := holdWriter(t, db)
	defer release()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	d := store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: "x"}
	if _, err := db.InsertDelivery(ctx, &d, store.NewJob{Kind: "p"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("InsertDelivery with a stuck database: %v, want the context's error", err)
	}
}

// Every transaction flushes the WAL before it counts as committed, except a relaxed one; a
// relaxed one leaves the next durable.
func TestRelaxedDurabilityIsScopedToItsTransaction(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "f.db"))
	ctx := t.Context()
	var calls atomic.Int64
	db.flush = func() error { calls.Add(1); return db.syncWAL() }
	timedBefore, _, _ := db.FlushStats()
	flushes := func(what string, want int64, fn func() error) {
		t.Helper()
		before := calls.Load()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := calls.Load() - before; got != want {
			t.Errorf("%s flushed the WAL %d times, want %d", what, got, want)
		}
	}
	put := func(ctx context.Context, name string) func() error {
		return func() error { return db.inTx(ctx, func(o ops) error { return o.PutKV(ctx, name, []byte("v")) }) }
	}
	flushes("a relaxed transaction", 0, put(store.WithRelaxedDurability(ctx), "a"))
	flushes("the transaction after it", 1, put(ctx, "b"))
	var j store.Job
	flushes("a job insert", 1, func() (err error) { j, _, err = db.InsertJob(ctx, store.NewJob{Kind: "k"}); return err })
	// Relaxed job writes outside a transaction run in one of their own, relaxed, and work.
	flushes("a relaxed claim", 0, func() error {
		claimed, err := db.ClaimJobs(store.WithRelaxedDurability(ctx), "w", nil, 1, time.Minute)
		if err == nil && (len(claimed) != 1 || claimed[0].ID != j.ID) {
			err = fmt.Errorf("claimed %v, want job %d", claimed, j.ID)
		}
		return err
	})
	flushes("a relaxed completion", 0, func() error { return db.CompleteJob(store.WithRelaxedDurability(ctx), j.ID, "w") })
	flushes("a delivery", 1, func() error {
		_, err := db.InsertDelivery(ctx, &store.Delivery{IntegrationID: "int_x", Kind: "github", Body: []byte(`{}`)}, store.NewJob{Kind: store.JobProcessDelivery})
		return err
	})
	for _, name := range []string{"a", "b"} {
		if _, err := db.GetKV(ctx, name); err != nil {
			t.Errorf("kv %s: %v", name, err)
		}
	}
	// Every flush is timed for the metrics' histogram.
	if timed, _, _ := db.FlushStats(); int64(timed-timedBefore) != calls.Load() {
		t.Errorf("%d flushes timed, %d made", timed-timedBefore, calls.Load())
	}
}

// While one group commit is being flushed, the deliveries that arrive are inserted into the
// next transaction, which commits after that flush and is answered after its own. Nothing is
// answered before the flush that covers it, and a failed flush fails its batch.
func TestOverlappedCommitAnswersAfterItsFlush(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "f.db"))
	ctx := t.Context()
	gate := make(chan struct{})
	var flushes atomic.Int32
	fail := errors.New("disk gone")
	db.flush = func() error {
		switch flushes.Add(1) {
		case 1:
			<-gate
		case 3:
			return fail
		}
		return db.syncWAL()
	}
	count := func() (n int) {
		if err := db.reader.QueryRowContext(ctx, "SELECT count(*) FROM deliveries").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	insert := func(hostID string) <-chan error {
		done := make(chan error, 1)
		go func() {
			d := store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: hostID, Body: []byte(`{}`)}
			_, err := db.InsertDelivery(ctx, &d, store.NewJob{Kind: store.JobProcessDelivery})
			done <- err
		}()
		return done
	}
	a := insert("a")
	for deadline := time.Now().Add(10 * time.Second); flushes.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first commit was never flushed")
		}
	}
	// a is committed (readers see it) but its flush has not returned.
	if n := count(); n != 1 {
		t.Fatalf("%d deliveries visible during the first flush, want 1", n)
	}
	b, c := insert("b"), insert("c")
	time.Sleep(100 * time.Millisecond) // b and c reach the committer, which holds them in its open transaction
	for name, ch := range map[string]<-chan error{"a": a, "b": b, "c": c} {
		select {
		case err := <-ch:
			t.Fatalf("%s answered (%v) before the flush that covers it", name, err)
		default:
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("%d deliveries visible before the first flush ended, want 1 (b and c uncommitted)", n)
	}
	close(gate)
	for name, ch := range map[string]<-chan error{"a": a, "b": b, "c": c} {
		if err := <-ch; err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if n := count(); n != 3 {
		t.Errorf("%d deliveries stored, want 3", n)
	}
	if batches, deliveries := db.CommitStats(); batches != 2 || deliveries != 3 || flushes.Load() != 2 {
		t.Errorf("%d batches of %d deliveries with %d flushes, want a alone, then b and c together: 2, 3, 2", batches, deliveries, flushes.Load())
	}
	if err := <-insert("d"); !errors.Is(err, fail) {
		t.Errorf("a delivery whose flush failed: %v, want %v", err, fail)
	}
}

// The writer writes through sqlitevfs unless PlainWrites: a group commit's WAL frames go in
// fewer writes than SQLite asks for, none only as the commit is published, and the store
// reads back what it wrote either way.
func TestWritesGathered(t *testing.T) {
	for _, plain := range []bool{false, true} {
		opts := quietOptions()
		opts.PlainWrites = plain
		db, err := Open(t.Context(), filepath.Join(t.TempDir(), "f.db"), opts)
		if err != nil {
			t.Fatal(err)
		}
		if (db.vfs == nil) != plain {
			t.Fatalf("PlainWrites %v: vfs %v", plain, db.vfs)
		}
		const n = 40
		insertQueued(t, db, n, func(i int) []byte { return []byte(strings.Repeat(fmt.Sprint(i), 2000)) })
		items, _, err := db.ListDeliveries(t.Context(), store.DeliveryFilter{Page: store.Page{Limit: 100}})
		if err != nil || len(items) != n {
			t.Fatalf("PlainWrites %v: listed %d deliveries (%v), want %d", plain, len(items), err, n)
		}
		if !plain {
			s := db.vfs.Stats()
			if s.WALWrites == 0 || s.WALWritten*2 > s.WALWrites || s.WALLate != 0 {
				t.Errorf("WAL writes asked for and made: %+v", s)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
