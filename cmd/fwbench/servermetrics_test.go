package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/metrics"
	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/store/sqlstore"
)

// fwbench reads what the server's own /metrics handler writes: the names, and the bucket it
// counts slow flushes from, are the exporter's.
func TestReadServerMetricsFromTheExporter(t *testing.T) {
	m := metrics.New(func(context.Context) (store.JobStats, error) { return store.JobStats{}, nil },
		func() map[string]forge.Budget { return nil })
	commits, committed := int64(4), int64(60)
	m.WatchGroupCommits(func() (int64, int64) { return commits, committed })
	flushes := func() (uint64, float64, map[float64]uint64) {
		// 10 flushes taking 0.02 s: 7 within 1 ms, 8 within 2.5 ms, all within 5 ms.
		return 10, 0.02, map[float64]uint64{0.001: 7, 0.0025: 8, 0.005: 10}
	}
	m.WatchWALFlushes(func() (uint64, float64, map[float64]uint64) { return flushes() })
	writes := metrics.SQLiteWrites{WALAsked: 300, WALMade: 12, DBAsked: 50, DBMade: 5}
	m.WatchSQLiteWrites(func() metrics.SQLiteWrites { return writes })
	m.Processed("github", "processed")
	m.Processed("github", "ignored")
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	before := readServerMetrics(context.Background(), srv.Client(), &child{api: srv.URL})
	want := serverMetrics{commits: 4, committed: 60, processed: 2, flushes: 10, flushSeconds: 0.02, flushesSlow: 2, walAsked: 300, walMade: 12}
	if before != want {
		t.Fatalf("read %+v, want %+v", before, want)
	}
	if got := before.batch(); got != 15 {
		t.Errorf("batch = %v, want 15", got)
	}

	commits, committed = 6, 100
	flushes = func() (uint64, float64, map[float64]uint64) {
		return 30, 0.08, map[float64]uint64{0.001: 17, 0.0025: 24, 0.005: 30}
	}
	writes = metrics.SQLiteWrites{WALAsked: 900, WALMade: 32, DBAsked: 90, DBMade: 9, WALLate: 1}
	d := readServerMetrics(context.Background(), srv.Client(), &child{api: srv.URL}).sub(before)
	if want := (serverMetrics{commits: 2, committed: 40, flushes: 20, flushSeconds: 0.06, flushesSlow: 4, walAsked: 600, walMade: 20, walLate: 1}); !closeTo(d, want) {
		t.Fatalf("difference %+v, want %+v", d, want)
	}
	// 20 flushes, 60 ms over a 120 ms run: 3 ms each, 4 of them slow, half the time flushing;
	// 600 WAL writes asked for, made in 20 calls.
	if got, want := d.describeFlushes(120*time.Millisecond), "20 WAL flushes, mean 3ms, 20.0% over 2.5ms, one in flight 50% of the time; per flush, 30.0 WAL writes asked for and 1.0 made, 1 late"; got != want {
		t.Errorf("describeFlushes = %q, want %q", got, want)
	}
	if got := (serverMetrics{}).describeFlushes(time.Second); !strings.HasPrefix(got, "no WAL flushes counted") {
		t.Errorf("without flushes: %q", got)
	}
}

func closeTo(a, b serverMetrics) bool {
	near := func(x, y float64) bool { return x-y < 1e-9 && y-x < 1e-9 }
	return near(a.commits, b.commits) && near(a.committed, b.committed) && near(a.processed, b.processed) &&
		near(a.flushes, b.flushes) && near(a.flushSeconds, b.flushSeconds) && near(a.flushesSlow, b.flushesSlow) &&
		near(a.walAsked, b.walAsked) && near(a.walMade, b.walMade) && near(a.walLate, b.walLate)
}

// The bound fwbench counts slow flushes from is one of the SQLite store's histogram buckets;
// otherwise every flush would count as slow.
func TestSlowFlushIsAStoreBucket(t *testing.T) {
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "forgeway.db"),
		sqlstore.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, _, buckets := db.FlushStats()
	if _, ok := buckets[slowFlush.Seconds()]; !ok {
		t.Fatalf("no bucket at %s among the store's %v", slowFlush, buckets)
	}
}

// A server that cannot be read gives zeros, not an error that would end the run.
func TestReadServerMetricsUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	if got := readServerMetrics(context.Background(), http.DefaultClient, &child{api: srv.URL}); got != (serverMetrics{}) {
		t.Fatalf("read %+v from a closed server, want zeros", got)
	}
}
