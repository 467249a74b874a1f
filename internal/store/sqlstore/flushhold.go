package sqlstore

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// holdFlush decides whether a flush of the WAL keeps its goroutine's P (Go's scheduler
// slot) in the kernel (Options.HoldFlushP, syncFileData).
//
// Under load the flush of a plain system call costs twice its own time: after 20 µs the
// runtime's monitor hands the P to another thread, and the flushing goroutine, back from the
// disk with no P, waits in the global run queue behind the request handlers before it can
// answer its batch and let the next commit start (fwbench ab on a 2-CPU VM in busy phases:
// 5-11% more deliveries a second, and 4-9% less CPU per delivery, when the flush holds its
// P; as many in a quiet phase).
//
// A held P is one the rest of the process cannot use meanwhile, which is why the server
// runs one P more than the runtime's default when it holds (server.flushSlot). It also delays a
// stop-the-world pause of the garbage collector until the flush returns, which costs
// nothing while flushes take a millisecond and would stall every goroutine while a slow disk
// takes far longer: after one held flush slower than holdLimit, the flushes of the next
// holdPause release their P, as every other system call does.
type holdFlush struct {
	on  bool
	log *slog.Logger
	// until is when holding resumes after a slow held flush (Unix nanoseconds).
	until atomic.Int64
}

// holdLimit is the slowest held flush that keeps holding on: the p99 that P1 sets for a
// delivery's acknowledgement, which a flush this slow has missed already (under load a flush
// takes about a millisecond, and 2.5 ms for one in ten).
const holdLimit = 25 * time.Millisecond

// holdPause is how long flushes stop holding their P after one slower than holdLimit: a
// held flush can then stall a garbage collector's pause at most once in it, for at most
// what a flush takes, which on the noisiest disks measured (a flush over 25 ms every minute
// or so, a few over 100 ms) keeps such stalls to about 1% of the time.
const holdPause = 10 * time.Second

// hold reports whether a flush starting at now should hold its P.
func (h *holdFlush) hold(now time.Time) bool {
	return h.on && now.UnixNano() >= h.until.Load()
}

// took records a flush that took d, ending at end, and held its P when held.
func (h *holdFlush) took(held bool, d time.Duration, end time.Time) {
	if !held || d <= holdLimit {
		return
	}
	h.until.Store(end.Add(holdPause).UnixNano())
	// Info, not a warning: on a disk this slow, once every holdPause; flushes over a second
	// are warned of anyway (flushStats).
	h.log.Info("slow disk: a flush of SQLite's write-ahead log that kept its scheduler slot took too long; flushes release it for a while",
		"took", d.Round(time.Millisecond), "limit", holdLimit, "for", holdPause)
}
