package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// ab compares builds of Forgeway on P1's ingest-only load: the baseline, this binary's
// ingest-only server and one ingest-only server from each fwbench binary named on the command
// line (built from other commits), driven in alternating rounds as p1 drives its pair, so
// that the machine's drift falls on all of them alike. It is how a change to the ingest path
// is judged before p1 is run on it. With -processing the servers process what they ingest
// (8 workers, as p1's first Forgeway row), to judge a change to processing.
//
//	go build -o /tmp/fwA ./cmd/fwbench   # at the commit to compare with
//	go run ./cmd/fwbench ab [-duration 20s] [-rounds 10] [-concurrency 64] [-payload FILE] [-processing] [-wal] /tmp/fwA
//
// -wal ends with each server's pages per group commit, by the B-tree they belong to.
func ab(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ab", flag.ContinueOnError)
	duration := fs.Duration("duration", 20*time.Second, "throughput run time of each server")
	rounds := fs.Int("rounds", 10, "alternating rounds each server's time is split into")
	concurrency := fs.Int("concurrency", 64, "concurrent clients")
	payload := fs.String("payload", "", "delivery body (default: the corpus push.json, 7 KB)")
	processing := fs.Bool("processing", false, "servers process what they ingest (8 workers)")
	walProbe := fs.Bool("wal", false, "after the run, say which B-trees each server's group commits wrote to the WAL")
	listener := fs.String("listener", "webhooks", "where builds that have a webhook listener take the deliveries: webhooks or main")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := useListener(*listener); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("ab [flags] FWBENCH_BINARY...: name at least one other build")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	body, client, dir, err := payloadWorkspace(*payload, *concurrency)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	names := append([]string{"baseline", self}, fs.Args()...)
	children := make([]*child, 0, len(names))
	defer func() { // on an early return
		for _, c := range children {
			c.stop()
		}
	}()
	loads := make([]*load, 0, len(names))
	dataDirs := make([]string, len(names))
	for i, exe := range names {
		var c *child
		if i == 0 {
			c, err = start(ctx, "serve-baseline")
		} else {
			var sub string
			if sub, err = os.MkdirTemp(dir, "data-"); err != nil {
				return err
			}
			dataDirs[i] = sub
			serve := "serve-forgeway-ingest"
			if *processing {
				serve = "serve-forgeway"
			}
			c, err = startExe(ctx, exe, serve, sub, string(forge.GitHub))
		}
		if err != nil {
			return fmt.Errorf("start %s: %w", exe, err)
		}
		children = append(children, c)
		l := newLoad(c.url, forge.GitHub, body, client)
		l.throughput(ctx, *concurrency, time.Second) // warm up
		loads = append(loads, l)
	}
	before := make([]serverMetrics, len(children))
	for i, c := range children[1:] {
		before[i+1] = readServerMetrics(ctx, client, c)
	}
	m := interleave(ctx, *concurrency, *duration, *rounds, loads...)
	after := make([]serverMetrics, len(children))
	for i, c := range children[1:] {
		after[i+1] = readServerMetrics(ctx, client, c)
	}
	var walReport []string
	if *walProbe {
		// Quiet now: the WAL holds the last commits of each server's last round.
		time.Sleep(time.Second)
		for i := 1; i < len(names); i++ {
			r, err := probeWAL(ctx, dataDirs[i])
			if err != nil {
				r = "WAL probe failed: " + err.Error()
			}
			walReport = append(walReport, names[i]+": "+r)
		}
	}
	fmt.Printf("| server | accepted/s | ratio to baseline | server CPU per delivery | deliveries per commit | the machine in its rounds | the disk in its rounds | ratio round by round |\n| --- | ---: | ---: | ---: | ---: | --- | --- | --- |\n")
	for i, c := range children {
		cpu := perDelivery(c.stop(), loads[i].counter.Load())
		rounds := ""
		for r, v := range m[i].rounds {
			rounds += fmt.Sprintf(" %.2f", v/m[0].rounds[r])
		}
		batch, flushes := "", "" // the baseline has no commits
		if i > 0 {
			d := after[i].sub(before[i])
			batch, flushes = fmt.Sprintf("%.1f", d.batch()), d.describeFlushes(m[i].elapsed)
		}
		fmt.Printf("| %s | %.0f | %.3f | %s | %s | %s | %s |%s |\n", names[i], m[i].rate(), m[i].rate()/m[0].rate(), cpu, batch,
			m[i].machine.describe(m[i].accepted+m[i].failed), flushes, rounds)
	}
	children = nil // each stopped above: nothing left for the deferred stop
	for _, r := range walReport {
		fmt.Println("\n" + r)
	}
	return nil
}

// probeWAL copies a quiet server's database and WAL aside (reading the live files through
// SQLite would checkpoint them) and reports its commits' pages (walframes.go).
func probeWAL(ctx context.Context, dataDir string) (string, error) {
	cp, err := os.MkdirTemp("", "fwbench-wal-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(cp)
	for _, name := range []string{"forgeway.db", "forgeway.db-wal"} {
		// Streamed: a long run's database is gigabytes.
		if err := copyFile(filepath.Join(cp, name), filepath.Join(dataDir, name)); err != nil {
			return "", err
		}
	}
	return walFrames(ctx, cp)
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
