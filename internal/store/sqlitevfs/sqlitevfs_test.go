package sqlitevfs_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/forgeway/forgeway/internal/store/sqlitevfs"
)

const pageSize = 8192

// open opens path through v (nil: SQLite's default VFS) with one connection, in WAL mode
// with synchronous=NORMAL and no automatic checkpoints, as the store's writer does.
func open(t testing.TB, v *sqlitevfs.VFS, path string, pragmas ...string) *sql.DB {
	t.Helper()
	dsn := path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(0)"
	for _, p := range pragmas {
		dsn += "&_pragma=" + p
	}
	if v != nil {
		dsn += "&vfs=" + v.Name()
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func register(t *testing.T) *sqlitevfs.VFS {
	t.Helper()
	v, err := sqlitevfs.Register()
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-registered first: databases opened later are closed before this.
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Error(err)
		}
	})
	return v
}

// newDB makes an empty database file with 8 KiB pages in WAL mode, as the store does.
func newDB(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db.sqlite")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		fmt.Sprintf("PRAGMA page_size=%d", pageSize), "PRAGMA journal_mode=WAL",
		"CREATE TABLE t (id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, payload TEXT NOT NULL)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// insertGroup inserts rows ids first..first+n-1 of group grp in one transaction; each
// payload is its id, zero-padded to 3,000 digits, so that a reader can check every row.
func insertGroup(ctx context.Context, db *sql.DB, grp, first, n int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	for id := first; id < first+n; id++ {
		if _, err := tx.Exec(`INSERT INTO t (id, grp, payload) VALUES (?, ?, printf('%0*d', 3000, ?))`, id, grp, id); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// checkRows says what is wrong with t as db sees it: every group complete, every payload
// its id's.
func checkRows(db *sql.DB, groupSize int) error {
	var n, bad, partial int
	err := db.QueryRow(`SELECT count(*), coalesce(sum(payload <> printf('%0*d', 3000, id)), 0) FROM t`).Scan(&n, &bad)
	if err != nil {
		return err
	}
	if err := db.QueryRow(`SELECT count(*) FROM (SELECT grp FROM t GROUP BY grp HAVING count(*) <> ?)`, groupSize).Scan(&partial); err != nil {
		return err
	}
	if bad != 0 || partial != 0 {
		return fmt.Errorf("%d rows: %d with a wrong payload, %d groups incomplete", n, bad, partial)
	}
	return nil
}

func count(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func walFrames(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	return (fi.Size() - 32) / (pageSize + 24)
}

// A commit's frames reach the WAL in one write where SQLite's own VFS makes two per frame,
// and what is on disk after it is a valid log holding every commit: a copy of the files taken
// with the connection still open (a crash, no checkpoint) recovers all of them.
func TestCommitIsOneWriteAndRecovers(t *testing.T) {
	v := register(t)
	path := newDB(t)
	db := open(t, v, path)
	ctx := context.Background()
	if err := insertGroup(ctx, db, 0, 0, 1); err != nil { // the log's header and first frames
		t.Fatal(err)
	}
	for grp := 1; grp <= 20; grp++ {
		framesBefore, before := walFrames(t, path), v.Stats()
		if err := insertGroup(ctx, db, grp, grp*100, 10); err != nil {
			t.Fatal(err)
		}
		frames, after := walFrames(t, path)-framesBefore, v.Stats()
		asked, written := after.WALWrites-before.WALWrites, after.WALWritten-before.WALWritten
		if frames < 4 {
			t.Fatalf("commit %d wrote %d frames; the test needs several", grp, frames)
		}
		if asked != 2*frames || written != 1 {
			t.Fatalf("commit %d: %d frames, SQLite asked for %d writes, %d made; want %d and 1", grp, frames, asked, written, 2*frames)
		}
	}
	noneLate(t, v)
	crashed := crashCopy(t, path)
	if n := count(t, crashed); n != 201 {
		t.Fatalf("the copy recovered %d rows, want 201", n)
	}
}

// Other connections, through SQLite's own VFS or this one, never see a commit before its
// frames are in the file: each sees whole groups with intact payloads while commits go on.
func TestReadersSeeWholeCommits(t *testing.T) {
	v := register(t)
	path := newDB(t)
	writer := open(t, v, path)
	const groupSize, groups = 7, 300
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var reads atomic.Int64
	errs := make(chan error, 4)
	for i, rv := range []*sqlitevfs.VFS{nil, v, nil, v} {
		reader := open(t, rv, path, "query_only(ON)")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := checkRows(reader, groupSize); err != nil {
					errs <- fmt.Errorf("reader %d: %w", i, err)
					return
				}
				reads.Add(1)
			}
		}()
	}
	for grp := range groups {
		if err := insertGroup(ctx, writer, grp, grp*groupSize, groupSize); err != nil {
			t.Fatal(err)
		}
		if grp%50 == 49 { // the log restarts after a full checkpoint, from its start
			if _, err := writer.Exec("PRAGMA wal_checkpoint(RESTART)"); err != nil {
				t.Fatal(err)
			}
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if reads.Load() < 10 {
		t.Fatalf("only %d reads ran beside the commits", reads.Load())
	}
	if err := checkRows(writer, groupSize); err != nil {
		t.Fatal(err)
	}
	if s := v.Stats(); s.WALWritten >= s.WALWrites/2 || s.DBWritten >= s.DBWrites {
		t.Fatalf("nothing was gathered: %+v", s)
	}
	noneLate(t, v)
}

// A transaction larger than SQLite's page cache writes frames before its commit and then
// overwrites some of them, after which SQLite rewrites the checksums of the frames that
// follow, the commit frame's header last: the log on disk must still recover the commit.
func TestRewrittenChecksumsRecover(t *testing.T) {
	v := register(t)
	path := newDB(t)
	db := open(t, v, path, "cache_size(4)")
	ctx := context.Background()
	if err := insertGroup(ctx, db, 0, 0, 200); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 3; round++ {
		if _, err := tx.Exec(`UPDATE t SET grp = ?`, round); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	noneLate(t, v)
	crashed := crashCopy(t, path)
	var n, last int
	if err := crashed.QueryRow(`SELECT count(*), min(grp) FROM t`).Scan(&n, &last); err != nil {
		t.Fatal(err)
	}
	if n != 200 || last != 3 {
		t.Fatalf("the copy recovered %d rows in group %d, want 200 in group 3", n, last)
	}
}

// A checkpoint's page writes to the database file are gathered where contiguous, and the
// file is whole after it.
func TestCheckpointWritesGathered(t *testing.T) {
	v := register(t)
	path := newDB(t)
	db := open(t, v, path)
	ctx := context.Background()
	for grp := range 30 {
		if err := insertGroup(ctx, db, grp, grp*10, 10); err != nil {
			t.Fatal(err)
		}
	}
	before := v.Stats()
	var busy, frames, copied int
	if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &copied); err != nil {
		t.Fatal(err)
	}
	after := v.Stats()
	asked, written := after.DBWrites-before.DBWrites, after.DBWritten-before.DBWritten
	if asked < 20 || written*4 > asked {
		t.Fatalf("the checkpoint asked for %d page writes and made %d: want a quarter or fewer", asked, written)
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() != 0 {
		t.Fatalf("the log after a truncating checkpoint: %v, %v", fi, err)
	}
	plain := open(t, nil, path)
	if err := checkRows(plain, 10); err != nil {
		t.Fatal(err)
	}
	if err := checkIntegrity(plain); err != nil {
		t.Fatal(err)
	}
}

// Closing unregisters the VFS: its name then opens nothing.
func TestCloseUnregisters(t *testing.T) {
	v, err := sqlitevfs.Register()
	if err != nil {
		t.Fatal(err)
	}
	w, err := sqlitevfs.Register()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if v.Name() == w.Name() {
		t.Fatalf("two registrations share the name %s", v.Name())
	}
	path := newDB(t)
	db := open(t, v, path)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil { // twice is nothing
		t.Fatal(err)
	}
	again, err := sql.Open("sqlite", path+"?vfs="+v.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if err := again.Ping(); err == nil || !strings.Contains(err.Error(), "no such vfs") {
		t.Fatalf("opening through a closed VFS: %v, want no such vfs", err)
	}
}

// noneLate fails the test if some commit's frames were written only as it was published.
func noneLate(t *testing.T, v *sqlitevfs.VFS) {
	t.Helper()
	if s := v.Stats(); s.WALLate != 0 {
		t.Fatalf("%d commits' frames were written only as SQLite published them: %+v", s.WALLate, s)
	}
}

func checkIntegrity(db *sql.DB) error {
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return fmt.Errorf("integrity check: %s", res)
	}
	return nil
}

// crashCopy copies the database at path and its WAL, with its connections still open and no
// checkpoint run (what a crash leaves on disk), and opens the copy through SQLite's own VFS,
// which recovers it from the WAL; the copy must pass an integrity check.
func crashCopy(t *testing.T, path string) *sql.DB {
	t.Helper()
	dir := t.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		copyFile(t, path+suffix, filepath.Join(dir, "db.sqlite"+suffix))
	}
	db := open(t, nil, filepath.Join(dir, "db.sqlite"))
	if err := checkIntegrity(db); err != nil {
		t.Fatal(err)
	}
	return db
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
