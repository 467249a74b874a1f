package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The disk under a latency run. Forgeway answers a delivery only after the flush that makes it
// durable, so no server on this machine can answer faster than its disk flushes. Two
// measurements say what the disk allowed while p1 ran:
//
//   - diskLatency, the latency baseline: the same open-loop schedule as a server's latency
//     run, each request one 8 KiB page written to a file of its own and flushed, requests due
//     together sharing one flush (a group commit, as Forgeway's). It writes less per request
//     than any database does, and has no network, no HMAC and no SQL.
//   - flushProbe, during every latency run: one 4 KiB block rewritten and flushed every
//     20 ms. Such a flush takes well under a millisecond here; one that takes tens of
//     milliseconds is the disk (or the host behind a virtual disk) stalling every writer of
//     the machine, the server's flushes included.
const (
	diskPage          = 8 << 10
	diskRegion        = 8 << 20 // the writer starts its file over, as SQLite's WAL does after a checkpoint
	probeBlock        = 4 << 10
	probeEvery        = 20 * time.Millisecond
	probeSlowAbove    = 25 * time.Millisecond // the p99 target
	diskBaselineLabel = "bare durable writer on the same disk (one 8 KiB page written and flushed per delivery, group commit: the latency baseline)"
)

// diskRun is what diskLatency measured: the latencies as a server's latency run has them, and
// how many flushes served them.
type diskRun struct {
	latencyRun
	flushes int
}

// diskLatency runs the disk's latency baseline at rate requests per second for d, in a file
// in dir, writing size bytes per request; flush makes a write durable (flushData, or a
// stand-in in tests).
func diskLatency(ctx context.Context, dir string, rate, size int, d time.Duration, flush func(*os.File) error) (diskRun, error) {
	f, err := os.CreateTemp(dir, "disk-baseline-")
	if err != nil {
		return diskRun{}, fmt.Errorf("disk baseline: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	n := requestsIn(rate, d)
	due := make(chan time.Time, n) // never blocks the sender, which waits for nothing
	lat := make([]time.Duration, 0, n)
	page := make([]byte, size)
	var run diskRun
	var werr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the writer: everything due so far, one flush
		defer wg.Done()
		var off int64
		var batch []time.Time
		for at := range due {
			batch = append(batch[:0], at)
		fill:
			for {
				select {
				case at, ok := <-due:
					if !ok {
						break fill
					}
					batch = append(batch, at)
				default:
					break fill
				}
			}
			for range batch {
				if off+int64(size) > diskRegion {
					off = 0
				}
				if _, err := f.WriteAt(page, off); err != nil && werr == nil {
					werr = err
				}
				off += int64(size)
			}
			if err := flush(f); err != nil && werr == nil {
				werr = err
			}
			run.flushes++
			for _, at := range batch {
				lat = append(lat, time.Since(at))
			}
		}
	}()

	_, run.behind, run.machine = openLoop(ctx, rate, d, func(_ int, at time.Time) { due <- at }, func() {
		close(due)
		wg.Wait()
	})
	if werr != nil {
		return diskRun{}, fmt.Errorf("disk baseline: write %s: %w", f.Name(), werr)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	run.lat = lat
	return run, nil
}

// flushProbe is what probeFlushes saw of the disk during a run.
type flushProbe struct {
	flushes, slow int           // slow: flushes that took over probeSlowAbove
	longest       time.Duration // the longest flush
	err           error
}

func (p flushProbe) String() string {
	if p.err != nil {
		return fmt.Sprintf("not measured (%v)", p.err)
	}
	return fmt.Sprintf("%d of %d probe flushes (%d KiB every %s) took over %s, the longest %s",
		p.slow, p.flushes, probeBlock>>10, probeEvery, probeSlowAbove, p.longest.Round(100*time.Microsecond))
}

// probeFlushes starts rewriting and flushing a block of a file in dir every `every`; the
// function it returns stops it and says what it saw.
func probeFlushes(dir string, every time.Duration, flush func(*os.File) error) func() flushProbe {
	stop, done := make(chan struct{}), make(chan flushProbe, 1)
	go func() {
		var p flushProbe
		defer func() { done <- p }()
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("flush-probe-%d", time.Now().UnixNano())))
		if err != nil {
			p.err = err
			return
		}
		defer os.Remove(f.Name())
		defer f.Close()
		block := make([]byte, probeBlock)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			t0 := time.Now()
			if _, err := f.WriteAt(block, 0); err != nil {
				p.err = err
				return
			}
			if err := flush(f); err != nil {
				p.err = err
				return
			}
			took := time.Since(t0)
			p.flushes++
			p.longest = max(p.longest, took)
			if took > probeSlowAbove {
				p.slow++
			}
		}
	}()
	return func() flushProbe {
		close(stop)
		return <-done
	}
}

// disk runs the disk's latency baseline alone (`fwbench disk`), for each of several write
// sizes in alternating runs, each with the probe beside it: whether what a commit writes
// decides how long the disk's flushes stall.
func disk(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("disk", flag.ContinueOnError)
	rate := fs.Int("rate", 1000, "requests per second")
	duration := fs.Duration("duration", 20*time.Second, "length of each run")
	sizes := fs.String("bytes", "8192", "comma-separated bytes written per request, one run each per round")
	rounds := fs.Int("rounds", 3, "rounds over the sizes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ns []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || n > diskRegion {
			return fmt.Errorf("-bytes: %q is not a size from 1 to %d", f, diskRegion)
		}
		ns = append(ns, n)
	}
	dir, err := os.MkdirTemp("", "fwbench-disk-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("the disk alone: %d writes a second, each flushed (group commit), %s a run, in %s\n\n", *rate, *duration, dir)
	fmt.Println("| round | bytes per write | p50 | p99 | max | writes per flush | probe |\n| ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for round := 1; round <= *rounds; round++ {
		for _, n := range ns {
			probe := probeFlushes(dir, probeEvery, flushData)
			run, err := diskLatency(ctx, dir, *rate, n, *duration, flushData)
			p := probe()
			if err != nil {
				return err
			}
			fmt.Printf("| %d | %d | %s | %s | %s | %.1f | %s |\n", round, n, pct(run.lat, 0.50).Round(10*time.Microsecond),
				pct(run.lat, 0.99).Round(10*time.Microsecond), pct(run.lat, 1).Round(10*time.Microsecond),
				float64(len(run.lat))/float64(max(run.flushes, 1)), p)
		}
	}
	return nil
}
