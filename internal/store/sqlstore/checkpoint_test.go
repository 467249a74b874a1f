package sqlstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

// insertDeliveries commits n deliveries with incompressible 3 KB bodies, so that each writes
// about a third of a WAL frame of its own, from 16 goroutines at once.
func insertDeliveries(t *testing.T, db *DB, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				d := store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: fmt.Sprintf("%s-%d", prefix, i)}
				for len(d.Body) < 3000 {
					d.Body = append(d.Body, rand.Text()...)
				}
				if _, err := db.InsertDelivery(t.Context(), &d, store.NewJob{Kind: "p"}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func openWithCheckpointFrames(t *testing.T, frames int) *DB {
	t.Helper()
	o := quietOptions()
	o.CheckpointFrames = frames
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "f.db"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// The checkpointer copies the WAL on its own connection; once it has, the committer's next
// transaction starts the WAL over instead of growing it.
func TestCheckpointerCatchesUpAndTheWALStartsOver(t *testing.T) {
	db := openWithCheckpointFrames(t, 1_000_000) // never due: this test runs it by hand
	insertDeliveries(t, db, "a", 200)
	frames, copied, err := db.ckpt.walFrames()
	if err != nil {
		t.Fatal(err)
	}
	if frames < 50 || copied != 0 {
		t.Fatalf("WAL after 200 deliveries: %d frames, %d copied; want many, none copied", frames, copied)
	}
	db.ckpt.checkpoint()
	if !db.ckpt.caughtUp.Load() {
		t.Fatal("checkpointer did not catch up with an idle writer")
	}
	after, copied, err := db.ckpt.walFrames()
	if err != nil {
		t.Fatal(err)
	}
	if after != frames || copied != frames {
		t.Errorf("after the checkpoint: %d frames, %d copied; want %d and %d", after, copied, frames, frames)
	}
	insertDeliveries(t, db, "b", 1)
	if db.ckpt.caughtUp.Load() {
		t.Error("the committer did not take its turn to catch up")
	}
	restarted, _, err := db.ckpt.walFrames()
	if err != nil {
		t.Fatal(err)
	}
	if restarted >= frames/4 {
		t.Errorf("WAL holds %d frames after one more delivery (had %d): it did not start over", restarted, frames)
	}
	// Two passes: the checkpointer's and the committer's catch-up. (A third when the
	// once-a-second look fell between them and took the turn first.)
	if passes, uncopied := db.CheckpointStats(); passes < 2 || passes > 3 || uncopied != int64(restarted) {
		t.Errorf("CheckpointStats = %d passes, %d uncopied; want 2 (or 3) and %d", passes, uncopied, restarted)
	}
	var n int
	if err := db.reader.QueryRowContext(t.Context(), "SELECT count(*) FROM deliveries").Scan(&n); err != nil || n != 201 {
		t.Errorf("deliveries stored: %d (%v), want 201", n, err)
	}
}

// A reader on an old snapshot holds back the frames it reads: the checkpointer copies what
// it can and does not claim to have caught up, so the WAL is not started over under it.
func TestCheckpointerWaitsForAnOldSnapshot(t *testing.T) {
	db := openWithCheckpointFrames(t, 1_000_000)
	insertDeliveries(t, db, "a", 20)
	ctx := t.Context()
	rtx, err := db.reader.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rtx.Rollback()
	var before int
	if err := rtx.QueryRowContext(ctx, "SELECT count(*) FROM deliveries").Scan(&before); err != nil || before != 20 {
		t.Fatalf("snapshot count %d (%v)", before, err)
	}
	insertDeliveries(t, db, "b", 100)
	db.ckpt.checkpoint()
	if db.ckpt.caughtUp.Load() {
		t.Fatal("checkpointer caught up past a reader's snapshot")
	}
	frames, copied, err := db.ckpt.walFrames()
	if err != nil {
		t.Fatal(err)
	}
	if copied >= frames {
		t.Fatalf("%d of %d frames copied under an open snapshot", copied, frames)
	}
	var still int
	if err := rtx.QueryRowContext(ctx, "SELECT count(*) FROM deliveries").Scan(&still); err != nil || still != 20 {
		t.Errorf("the snapshot changed under the reader: %d (%v)", still, err)
	}
	if err := rtx.Rollback(); err != nil {
		t.Fatal(err)
	}
	db.ckpt.checkpoint()
	if !db.ckpt.caughtUp.Load() {
		t.Error("checkpointer did not catch up once the reader was done")
	}
}

// Under a steady stream of group commits, the checkpoints run in the background and the WAL
// keeps starting over; every delivery is kept and the database is sound.
func TestCheckpointsBesideGroupCommits(t *testing.T) {
	db := openWithCheckpointFrames(t, 64)
	var restarts, maxFrames atomic.Int64
	var last int
	flush := db.flush
	db.flush = func() error { // the committer's flush: after each commit, in order
		frames, _, err := db.ckpt.walFrames()
		if err == nil {
			if frames < last {
				restarts.Add(1)
			}
			last = frames
			if int64(frames) > maxFrames.Load() {
				maxFrames.Store(int64(frames))
			}
		}
		return flush()
	}
	insertDeliveries(t, db, "a", 3000)
	passes, _ := db.CheckpointStats()
	if passes == 0 {
		t.Error("no checkpoint ran")
	}
	if restarts.Load() == 0 {
		t.Errorf("the WAL never started over (up to %d frames)", maxFrames.Load())
	}
	// The writer checkpoints itself at four times the threshold: the WAL never got there.
	if maxFrames.Load() >= 4*64 {
		t.Errorf("the WAL reached %d frames: the writer had to checkpoint", maxFrames.Load())
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var n int
	if err := db.reader.QueryRowContext(ctx, "SELECT count(*) FROM deliveries").Scan(&n); err != nil || n != 3000 {
		t.Errorf("deliveries stored: %d (%v), want 3000", n, err)
	}
	var check string
	if err := db.writer.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check: %q (%v)", check, err)
	}
	t.Logf("%d checkpoint passes, %d WAL restarts, at most %d frames", passes, restarts.Load(), maxFrames.Load())
}

// Writes that are not deliveries (jobs, events, the API) are checkpointed too, by the
// checkpointer's own look once a second, and it takes the committer's turn to catch up when
// no delivery comes to take it.
func TestCheckpointsWithoutDeliveries(t *testing.T) {
	db := openWithCheckpointFrames(t, 64)
	ctx := t.Context()
	if _, err := db.writer.ExecContext(ctx, "CREATE TABLE filler (b BLOB)"); err != nil {
		t.Fatal(err)
	}
	write := func(n int) {
		for range n {
			b := make([]byte, 0, 3000)
			for len(b) < 3000 {
				b = append(b, rand.Text()...)
			}
			if _, err := db.writer.ExecContext(ctx, "INSERT INTO filler (b) VALUES (?)", b); err != nil {
				t.Fatal(err)
			}
		}
	}
	// waitPasses waits for a checkpoint pass beyond after, with the WAL fully copied.
	waitPasses := func(after int64) int64 {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			passes, uncopied := db.CheckpointStats()
			if passes > after && uncopied == 0 {
				return passes
			}
			time.Sleep(20 * time.Millisecond)
		}
		passes, uncopied := db.CheckpointStats()
		t.Fatalf("after 5 s: %d checkpoint passes (had %d), %d frames uncopied", passes, after, uncopied)
		return 0
	}
	write(40) // ~2.5 frames each: past the threshold, short of the writer's own (4x)
	first := waitPasses(0)
	before, _, err := db.ckpt.walFrames()
	if err != nil {
		t.Fatal(err)
	}
	write(40)
	waitPasses(first)
	write(1)
	after, _, err := db.ckpt.walFrames()
	if err != nil {
		t.Fatal(err)
	}
	if after >= before {
		t.Errorf("the WAL did not start over: %d frames after, %d before", after, before)
	}
}
