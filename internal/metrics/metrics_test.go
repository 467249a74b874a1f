package metrics

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/hostclient"
	"github.com/forgeway/forgeway/internal/store"
)

// exercised returns Metrics with every collector holding a value, so that each is exported.
func exercised(t *testing.T) *Metrics {
	t.Helper()
	m := New(func(context.Context) (store.JobStats, error) {
		return store.JobStats{store.JobAvailable: 3, store.JobDead: 1}, nil
	}, func() map[string]forge.Budget {
		return map[string]forge.Budget{"int_a": {Limit: 5000, Remaining: 4200, Reset: time.Unix(1_800_000_000, 0)}}
	})
	m.WatchGroupCommits(func() (int64, int64) { return 2, 30 })
	m.WatchCheckpoints(func() (int64, int64) { return 7, 120 })
	m.WatchWALFlushes(func() (uint64, float64, map[float64]uint64) {
		return 5, 1.75, map[float64]uint64{0.001: 3, 1: 4}
	})
	m.WatchSQLiteWrites(func() SQLiteWrites {
		return SQLiteWrites{WALAsked: 300, WALMade: 10, DBAsked: 40, DBMade: 4, WALLate: 1}
	})
	m.Delivery("github", "accepted", 2*time.Millisecond)
	m.Delivery("github", "rejected", time.Millisecond)
	m.Processed("github", "processed")
	m.JobFinished("process_delivery", "completed", time.Millisecond, 5*time.Millisecond)
	m.HostRequest("int_a", hostclient.ObservedRequest{Host: "github", Status: 304, Cached: true, Duration: time.Millisecond})
	return m
}

// Every forgeway_* metric is in docs/operations.md's table, and the table names no metric
// that does not exist.
func TestOperationsDocListsEveryMetric(t *testing.T) {
	m := exercised(t)
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "forgeway_") {
			exported = append(exported, f.GetName())
		}
	}
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, line := range strings.Split(string(doc), "\n") {
		if m := regexp.MustCompile("^\\| `(forgeway_[a-z_]+)` \\|").FindStringSubmatch(line); m != nil {
			documented = append(documented, m[1])
		}
	}
	slices.Sort(exported)
	slices.Sort(documented)
	for _, name := range exported {
		if _, found := slices.BinarySearch(documented, name); !found {
			t.Errorf("%s is exported but not in docs/operations.md", name)
		}
	}
	for _, name := range documented {
		if _, found := slices.BinarySearch(exported, name); !found {
			t.Errorf("docs/operations.md lists %s, which is not exported", name)
		}
	}
}

func TestScrapedValues(t *testing.T) {
	m := exercised(t)
	for name, want := range map[string]float64{
		"forgeway_webhook_verification_failures_total":    1,
		"forgeway_store_group_committed_deliveries_total": 30,
		"forgeway_sqlite_checkpoints_total":               7,
		"forgeway_sqlite_wal_uncopied_frames":             120,
		"forgeway_host_rate_limit_remaining":              4200,
		"forgeway_sqlite_writes_requested_total":          340,
		"forgeway_sqlite_write_calls_total":               14,
		"forgeway_sqlite_wal_late_writes_total":           1,
	} {
		families, err := m.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var got float64
		var found bool
		for _, f := range families {
			if f.GetName() != name {
				continue
			}
			found = true
			for _, mm := range f.GetMetric() {
				switch {
				case mm.GetCounter() != nil:
					got += mm.GetCounter().GetValue()
				case mm.GetGauge() != nil:
					got += mm.GetGauge().GetValue()
				}
			}
		}
		if !found || got != want {
			t.Errorf("%s = %v (found %v), want %v", name, got, found, want)
		}
	}
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "forgeway_deliveries_total" && len(f.GetMetric()) != 2 {
			t.Errorf("forgeway_deliveries_total: %d series, want 2 (accepted, rejected)", len(f.GetMetric()))
		}
	}
}

// The WAL's flush histogram is exported as the store keeps it.
func TestWALFlushHistogram(t *testing.T) {
	m := exercised(t)
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "forgeway_sqlite_wal_flush_seconds" {
			continue
		}
		h := f.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 5 || h.GetSampleSum() != 1.75 {
			t.Fatalf("count %d, sum %v; want 5 and 1.75", h.GetSampleCount(), h.GetSampleSum())
		}
		got := map[float64]uint64{}
		for _, b := range h.GetBucket() {
			got[b.GetUpperBound()] = b.GetCumulativeCount()
		}
		if got[0.001] != 3 || got[1] != 4 {
			t.Fatalf("buckets %v; want 0.001: 3 and 1: 4", got)
		}
		return
	}
	t.Fatal("forgeway_sqlite_wal_flush_seconds is not exported")
}
