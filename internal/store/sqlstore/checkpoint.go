package sqlstore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// checkpointer copies SQLite's WAL into the database file (a checkpoint) from a connection of
// its own, so that the group committer does not.
//
// Left to itself, SQLite checkpoints from the connection whose commit takes the WAL past
// wal_autocheckpoint frames, inside that commit. Forgeway's one writer is the group
// committer, so every ~1,000 frames one commit copied them and fsynced the database file:
// 10-16 ms under fwbench's load, one every ~90 ms, in which no delivery was committed or
// answered. A PASSIVE checkpoint takes no lock a writer needs, so the checkpointer runs it
// beside the committer's commits. SQLite starts the WAL over from its beginning (rewriting
// the file in place instead of growing it) only when a write transaction begins with every
// frame copied; so once the checkpointer has caught up to within a few commits, the
// committer copies those few itself, between two of its transactions (caughtUp).
type checkpointer struct {
	conn *sql.DB // a connection of its own: PASSIVE checkpoints only
	log  *slog.Logger
	// shmPath is the WAL-index, whose header says how many frames the WAL holds; shm is it
	// opened (shmFile).
	shmPath string
	shmMu   sync.Mutex
	shm     *os.File
	// frames is how many uncopied frames start a checkpoint.
	frames int

	kick chan struct{} // buffered: the committer never waits for the checkpointer
	// caughtUp is set when the checkpointer has left fewer than catchUpFrames uncopied; the
	// committer clears it when it copies the rest.
	caughtUp atomic.Bool
	running  atomic.Bool

	// behind drops from the page cache what the checkpoints have written behind the
	// database file's tail (dropbehind_linux.go); only the checkpointer's goroutine uses it.
	behind dropBehind

	passes        atomic.Int64
	started       bool
	stop, stopped chan struct{}
}

// checkpointFrames is how many WAL frames start a checkpoint: SQLite's default, 1,000 pages
// (8 MB with 8 KiB pages).
const checkpointFrames = 1000

// catchUpFrames is the most the committer copies itself to start the WAL over: a few
// commits' worth, a millisecond or two of copying instead of the whole checkpoint.
const catchUpFrames = 256

// maxCheckpointPasses bounds the passes of one background checkpoint. Each pass copies what
// was committed during the one before, a fraction of it; three get within catchUpFrames
// under fwbench's load.
const maxCheckpointPasses = 4

// cachedTail is how much of the database file's end a checkpoint leaves in the page cache:
// the last ~10,000 deliveries, which processing and the API read again.
const cachedTail = 32 << 20

func newCheckpointer(path string, frames int, keep int64, busy string, log *slog.Logger) (*checkpointer, error) {
	// synchronous=NORMAL: a checkpoint flushes the WAL before copying it and the database
	// file after, so that a crash can lose neither.
	conn, err := sql.Open("sqlite", path+"?"+busy+"&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s for checkpoints: %w", path, err)
	}
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxIdleTime(0)
	conn.SetConnMaxLifetime(0)
	return &checkpointer{
		conn:    conn,
		log:     log,
		shmPath: path + "-shm",
		frames:  frames,
		behind:  dropBehind{path: path, keep: keep},
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}, nil
}

// walFrames reads from the WAL-index header (https://sqlite.org/walformat.html, native byte
// order) how many frames the WAL holds (mxFrame, offset 16) and how many of them are copied
// into the database (nBackfill, offset 96). SQLite updates the header under locks this does
// not take, so a read may be stale: it only decides when to checkpoint.
func (c *checkpointer) walFrames() (frames, copied int, err error) {
	f, err := c.shmFile()
	if err != nil {
		return 0, 0, err
	}
	var hdr [100]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return 0, 0, fmt.Errorf("read the WAL index: %w", err)
	}
	return int(binary.NativeEndian.Uint32(hdr[16:])), int(binary.NativeEndian.Uint32(hdr[96:])), nil
}

// shmFile opens the WAL-index once: the committer reads its header after every commit. The
// file lives as long as the store's connections, which keep it open too.
func (c *checkpointer) shmFile() (*os.File, error) {
	c.shmMu.Lock()
	defer c.shmMu.Unlock()
	if c.shm == nil {
		f, err := os.Open(c.shmPath)
		if err != nil {
			return nil, fmt.Errorf("read the WAL index: %w", err)
		}
		c.shm = f
	}
	return c.shm, nil
}

// due reports whether a checkpoint should start: frames uncopied and none running. When the
// WAL-index cannot be read, the writer's own checkpoints (at four times the threshold) are
// left to keep the WAL bounded, rather than checkpointing after every commit.
func (c *checkpointer) due() bool {
	if c.running.Load() || c.caughtUp.Load() {
		return false
	}
	frames, copied, err := c.walFrames()
	return err == nil && frames-copied >= c.frames
}

// poke starts a checkpoint in the background when one is due. The committer calls it after
// each commit.
func (c *checkpointer) poke() {
	if c.due() {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// start starts the checkpointer's goroutine; close stops it.
func (c *checkpointer) start() {
	c.started = true
	go c.run()
}

// run is the checkpointer's goroutine. Besides the committer's pokes it looks once a second,
// for the WAL frames that other writes (jobs, events, the API) leave.
func (c *checkpointer) run() {
	defer close(c.stopped)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
			// A turn the committer did not take within a tick (no delivery came) is taken
			// here: otherwise no checkpoint would start again until one came.
			if !c.caughtUp.CompareAndSwap(true, false) && !c.due() {
				continue
			}
		case <-c.kick:
		}
		c.running.Store(true)
		c.checkpoint()
		if err := c.behind.drop(); err != nil {
			// Only a cost is lost: said once, and not tried again.
			c.log.Warn("stopped dropping checkpointed pages from the page cache", "err", err)
			c.behind.keep = -1
		}
		c.running.Store(false)
	}
}

// checkpoint copies the WAL in passes, each one what the committer added during the last,
// until what is left is for the committer to copy (caughtUp).
func (c *checkpointer) checkpoint() {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	for range maxCheckpointPasses {
		busy, frames, copied, err := walCheckpoint(ctx, c.conn)
		if err != nil {
			c.log.Warn("checkpoint the SQLite WAL", "err", err)
			return
		}
		if busy {
			// The writer is checkpointing itself (the checkpointer fell far behind).
			return
		}
		c.passes.Add(1)
		if copied < frames {
			// A reader still reads frames that a newer commit replaced: they are copied
			// once it is done, by a later checkpoint.
			return
		}
		now, _, err := c.walFrames()
		if err != nil {
			c.log.Warn("checkpoint the SQLite WAL", "err", err)
			return
		}
		if now-frames < catchUpFrames {
			c.caughtUp.Store(true)
			return
		}
	}
}

// catchUp copies, on the committer's connection between two of its transactions, the frames
// committed since the checkpointer caught up, so that the next transaction starts the WAL
// over. It runs only after the checkpointer has caught up.
func (c *checkpointer) catchUp(ctx context.Context, writer *sql.DB) {
	if !c.caughtUp.CompareAndSwap(true, false) {
		return
	}
	if _, _, _, err := walCheckpoint(ctx, writer); err != nil {
		c.log.Warn("checkpoint the SQLite WAL", "err", err)
		return
	}
	c.passes.Add(1)
}

// close stops the checkpointer, when started, and closes its connection.
func (c *checkpointer) close() error {
	if c.started {
		close(c.stop)
		<-c.stopped
	}
	c.behind.close()
	c.shmMu.Lock()
	if c.shm != nil {
		_ = c.shm.Close()
		c.shm = nil
	}
	c.shmMu.Unlock()
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("close the checkpoint connection: %w", err)
	}
	return nil
}

// walCheckpoint runs a PASSIVE checkpoint on a connection of db: it copies every frame no
// reader still needs, without waiting for any lock. It returns the WAL's frames and how
// many of them the database now holds, or busy when another connection was checkpointing.
func walCheckpoint(ctx context.Context, db *sql.DB) (busy bool, frames, copied int, err error) {
	var b int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&b, &frames, &copied); err != nil {
		return false, 0, 0, fmt.Errorf("checkpoint the WAL: %w", err)
	}
	return b != 0, frames, copied, nil
}

// CheckpointStats reports, on SQLite, how many checkpoints (passes of one) ran and how many
// WAL frames are not yet copied into the database file, for metrics; zeros on PostgreSQL. A
// WAL that keeps growing says that a reader holds on to an old snapshot.
func (db *DB) CheckpointStats() (passes, uncopied int64) {
	if db.ckpt == nil {
		return 0, 0
	}
	frames, copied, err := db.ckpt.walFrames()
	if err != nil {
		frames, copied = 0, 0
	}
	return db.ckpt.passes.Load(), int64(frames - copied)
}
