package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// serverMetrics is what a Forgeway server's /metrics said at one moment: its group commits,
// what it has processed, and the flushes of its SQLite WAL, which every acknowledgement
// waits for. Two readings' difference (sub) covers what happened between them.
type serverMetrics struct {
	commits, committed float64 // group commits, and the deliveries they carried
	processed          float64 // deliveries processed (any outcome)
	flushes            float64 // WAL flushes (SQLite only)
	flushSeconds       float64 // their total time
	flushesSlow        float64 // those over slowFlush
	walAsked, walMade  float64 // writes SQLite asked for on the WAL, and the system calls made (SQLite only)
	walLate            float64 // commits whose frames were written late (should stay 0)
}

// slowFlush is a bucket bound of forgeway_sqlite_wal_flush_seconds, above which fwbench
// counts a flush as slow: over twice what this kind of virtual disk takes, when it is quiet,
// for the ~120 KB a group commit writes (fwbench disk -rate 560 -bytes 122880: ~1 ms).
const slowFlush = 2500 * time.Microsecond

// readServerMetrics reads a Forgeway server's /metrics (on its main listener); zeros when it
// cannot.
func readServerMetrics(ctx context.Context, client *http.Client, c *child) serverMetrics {
	base := c.api
	if base == "" { // a build without a webhook listener: webhooks and metrics share one
		u, err := url.Parse(c.url)
		if err != nil {
			return serverMetrics{}
		}
		base = u.Scheme + "://" + u.Host
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return serverMetrics{}
	}
	resp, err := client.Do(req)
	if err != nil {
		return serverMetrics{}
	}
	defer resp.Body.Close()
	return parseServerMetrics(resp.Body)
}

// parseServerMetrics reads the series fwbench reports from Prometheus's text format.
func parseServerMetrics(r io.Reader) serverMetrics {
	var m serverMetrics
	var flushesFast float64
	slowBucket := `le="` + strconv.FormatFloat(slowFlush.Seconds(), 'g', -1, 64) + `"`
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		name, value, _ := strings.Cut(line, " ")
		labels := ""
		if i, j := strings.IndexByte(line, '{'), strings.IndexByte(line, '}'); i > 0 && j > i {
			name, labels, value = line[:i], line[i+1:j], strings.TrimSpace(line[j+1:])
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "forgeway_store_group_commits_total":
			m.commits = v
		case "forgeway_store_group_committed_deliveries_total":
			m.committed = v
		case "forgeway_deliveries_processed_total":
			m.processed += v
		case "forgeway_sqlite_wal_flush_seconds_count":
			m.flushes = v
		case "forgeway_sqlite_wal_flush_seconds_sum":
			m.flushSeconds = v
		case "forgeway_sqlite_wal_flush_seconds_bucket":
			if labels == slowBucket {
				flushesFast = v
			}
		case "forgeway_sqlite_writes_requested_total":
			if labels == `file="wal"` {
				m.walAsked = v
			}
		case "forgeway_sqlite_write_calls_total":
			if labels == `file="wal"` {
				m.walMade = v
			}
		case "forgeway_sqlite_wal_late_writes_total":
			m.walLate = v
		}
	}
	m.flushesSlow = m.flushes - flushesFast
	return m
}

// sub is what happened between reading b and reading m.
func (m serverMetrics) sub(b serverMetrics) serverMetrics {
	return serverMetrics{
		commits: m.commits - b.commits, committed: m.committed - b.committed, processed: m.processed - b.processed,
		flushes: m.flushes - b.flushes, flushSeconds: m.flushSeconds - b.flushSeconds, flushesSlow: m.flushesSlow - b.flushesSlow,
		walAsked: m.walAsked - b.walAsked, walMade: m.walMade - b.walMade, walLate: m.walLate - b.walLate,
	}
}

// batch is the mean number of deliveries per group commit; zero without commits.
func (m serverMetrics) batch() float64 {
	if m.commits == 0 {
		return 0
	}
	return m.committed / m.commits
}

// describeFlushes says how the WAL flushes went over elapsed, the time the server was
// driven: how long one took, how many were slow, and the share of the time a flush was
// running. The group committer has one flush in flight at a time and commits the next batch
// only once it is over, so at a high share the disk's flush time paces the commits.
func (m serverMetrics) describeFlushes(elapsed time.Duration) string {
	if m.flushes == 0 {
		return "no WAL flushes counted (PostgreSQL, or a build without forgeway_sqlite_wal_flush_seconds)"
	}
	s := fmt.Sprintf("%.0f WAL flushes, mean %s, %.1f%% over %s", m.flushes,
		time.Duration(m.flushSeconds/m.flushes*float64(time.Second)).Round(10*time.Microsecond),
		100*m.flushesSlow/m.flushes, slowFlush)
	if elapsed > 0 {
		s += fmt.Sprintf(", one in flight %.0f%% of the time", 100*m.flushSeconds/elapsed.Seconds())
	}
	if m.walAsked > 0 { // the server gathers its WAL writes (sqlite-gather-writes)
		s += fmt.Sprintf("; per flush, %.1f WAL writes asked for and %.1f made, %.0f late", m.walAsked/m.flushes, m.walMade/m.flushes, m.walLate)
	}
	return s
}
