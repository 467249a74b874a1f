package sqlstore

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Flushes land in the bucket of the first bound they do not exceed, counted cumulatively, and
// their sum is kept.
func TestFlushStatsHistogram(t *testing.T) {
	var s flushStats
	now := time.Unix(1_800_000_000, 0)
	for _, d := range []time.Duration{100 * time.Microsecond, 250 * time.Microsecond, 3 * time.Millisecond, 40 * time.Millisecond, 10 * time.Second} {
		s.observe(d, now)
	}
	count, sum, buckets := s.snapshot()
	if count != 5 {
		t.Errorf("count %d, want 5", count)
	}
	if want := (10*time.Second + 43350*time.Microsecond).Seconds(); sum < want-1e-9 || sum > want+1e-9 {
		t.Errorf("sum %v, want %v", sum, want)
	}
	for bound, want := range map[float64]uint64{0.00025: 2, 0.0025: 2, 0.005: 3, 0.025: 3, 0.05: 4, 5: 4} {
		if buckets[bound] != want {
			t.Errorf("bucket le=%v holds %d, want %d", bound, buckets[bound], want)
		}
	}
	if len(buckets) != flushBuckets {
		t.Errorf("%d buckets, want %d", len(buckets), flushBuckets)
	}
}

// A flush over a second is logged, at most once per warnEvery, with how many slow flushes the
// warning covers; fast flushes never are.
func TestFlushStatsWarnsOfASlowDisk(t *testing.T) {
	var logs bytes.Buffer
	s := flushStats{log: slog.New(slog.NewTextHandler(&logs, nil))}
	now := time.Unix(1_800_000_000, 0)
	s.observe(900*time.Millisecond, now)
	if logs.Len() != 0 {
		t.Fatalf("a flush under a second was logged: %s", logs.String())
	}
	s.observe(1500*time.Millisecond, now)
	s.observe(2*time.Second, now.Add(time.Second)) // within warnEvery: counted, not logged
	s.observe(3*time.Second, now.Add(warnEvery+time.Second))
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d warnings, want 2:\n%s", len(lines), logs.String())
	}
	if !strings.Contains(lines[0], "slow disk") || !strings.Contains(lines[0], "slow_flushes=1") || !strings.Contains(lines[0], "took=1.5s") {
		t.Errorf("first warning: %s", lines[0])
	}
	if !strings.Contains(lines[1], "slow_flushes=2") || !strings.Contains(lines[1], "took=3s") {
		t.Errorf("second warning (two slow flushes since the first): %s", lines[1])
	}
}
