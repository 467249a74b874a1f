package sqlstore

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// flushStats times the flushes of SQLite's WAL (syncWAL), the wait every acknowledged
// delivery includes: a histogram for metrics, and a warning when a flush is slow. A disk (or
// the host behind a virtual one) that stalls its flushes for a second stalls every
// acknowledgement for as long, and this is where an operator sees that it was the disk
// (docs/benchmarks.md, "Session 21"). Flushes run on several goroutines, so it is atomics only.
type flushStats struct {
	log    *slog.Logger
	counts [flushBuckets + 1]atomic.Int64 // per bucket; the last is over every bound
	sum    atomic.Int64                   // nanoseconds
	// slow counts the flushes over slowFlush since the last warning, lastWarn is when that
	// warning was logged (Unix nanoseconds): at most one warning per warnEvery.
	slow, lastWarn atomic.Int64
}

// flushBounds returns the histogram's upper bounds: from a local SSD's fraction of a
// millisecond to the stalls of a busy host's virtual disk.
func flushBounds() [flushBuckets]time.Duration {
	return [flushBuckets]time.Duration{
		250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond,
		5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
		2500 * time.Millisecond, 5 * time.Second,
	}
}

const (
	flushBuckets = 14 // bounds in flushBounds
	// slowFlush is a flush worth a warning: etcd warns of a WAL fsync from one second too, and
	// a few such flushes in a row approach the hosts' 10 s webhook timeout.
	slowFlush = time.Second
	warnEvery = 10 * time.Second
)

// observe records a flush that took d, ending at now.
func (s *flushStats) observe(d time.Duration, now time.Time) {
	bounds, i := flushBounds(), 0
	for i < len(bounds) && d > bounds[i] {
		i++
	}
	s.counts[i].Add(1)
	s.sum.Add(int64(d))
	if d <= slowFlush {
		return
	}
	slow := s.slow.Add(1)
	last := s.lastWarn.Load()
	if now.UnixNano()-last < int64(warnEvery) || !s.lastWarn.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	s.slow.Add(-slow)
	if s.log != nil {
		s.log.Warn("slow disk: flushing SQLite's write-ahead log took over a second, and every delivery acknowledged meanwhile waited for it",
			"took", d.Round(time.Millisecond), "slow_flushes", slow, "threshold", slowFlush)
	}
}

// snapshot returns how many flushes there were, their total time in seconds and, for each
// bound in seconds, how many took at most that: a Prometheus histogram's parts.
func (s *flushStats) snapshot() (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, flushBuckets)
	for i, b := range flushBounds() {
		count += uint64(s.counts[i].Load())
		buckets[b.Seconds()] = count
	}
	count += uint64(s.counts[flushBuckets].Load())
	return count, time.Duration(s.sum.Load()).Seconds(), buckets
}

// FlushStats reports, on SQLite, the flushes of the write-ahead log as a histogram (their
// count, total seconds, and cumulative counts by upper bound in seconds), for metrics; zeros
// on PostgreSQL, whose commits flush its own WAL.
func (db *DB) FlushStats() (count uint64, sum float64, buckets map[float64]uint64) {
	return db.flushes.snapshot()
}
