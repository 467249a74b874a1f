package main

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// The disk baseline answers each request only after a flush that began after the request
// was due, and requests due during one flush share the next, as a group commit does.
func TestDiskLatencyAnswersAfterTheFlush(t *testing.T) {
	const flushTime = 30 * time.Millisecond
	var written atomic.Int64
	slow := func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		written.Store(fi.Size())
		time.Sleep(flushTime)
		return nil
	}
	run, err := diskLatency(context.Background(), t.TempDir(), 200, diskPage, 500*time.Millisecond, slow)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.lat) != 100 || run.failed != 0 {
		t.Fatalf("%d latencies, %d failed; want 100 and 0", len(run.lat), run.failed)
	}
	if run.lat[0] < flushTime {
		t.Errorf("the fastest answer took %s, less than the flush it waits for (%s)", run.lat[0], flushTime)
	}
	// 100 requests 5 ms apart over 30 ms flushes: about six to a flush.
	if run.flushes < 2 || run.flushes > 50 {
		t.Errorf("%d flushes for 100 requests due every 5 ms, each flush 30 ms: no group commit", run.flushes)
	}
	if written.Load() < diskPage {
		t.Errorf("the file held %d bytes at a flush; want at least a page", written.Load())
	}
}

// With the real flush the baseline runs, and its latencies are the flushes'.
func TestDiskLatencyOnTheDisk(t *testing.T) {
	run, err := diskLatency(context.Background(), t.TempDir(), 500, 3*diskPage, 200*time.Millisecond, flushData)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.lat) != 100 || run.flushes == 0 || run.lat[0] <= 0 {
		t.Fatalf("%d latencies over %d flushes, fastest %s", len(run.lat), run.flushes, run.lat[0])
	}
}

// The probe counts the flushes that take longer than the target, and only those.
func TestFlushProbeCountsSlowFlushes(t *testing.T) {
	var slowNow atomic.Bool
	flush := func(f *os.File) error {
		if slowNow.Load() {
			time.Sleep(probeSlowAbove + 10*time.Millisecond)
		}
		return nil
	}
	stop := probeFlushes(t.TempDir(), 2*time.Millisecond, flush)
	time.Sleep(50 * time.Millisecond)
	fast := stop()
	if fast.err != nil || fast.flushes == 0 || fast.slow != 0 {
		t.Fatalf("fast flushes: %+v; want some, none slow", fast)
	}

	slowNow.Store(true)
	stop = probeFlushes(t.TempDir(), 2*time.Millisecond, flush)
	time.Sleep(150 * time.Millisecond)
	slow := stop()
	if slow.err != nil || slow.slow == 0 || slow.slow != slow.flushes || slow.longest < probeSlowAbove+10*time.Millisecond {
		t.Fatalf("slow flushes: %+v; want every one counted slow, the longest at least %s", slow, probeSlowAbove+10*time.Millisecond)
	}
}
