// Package metrics owns Forgeway's Prometheus metrics: deliveries by host and outcome,
// verification failures, acknowledgement latency, processing outcomes, job queue depth and
// latency, host requests and the rate-limit budget left per integration. It uses its own
// registry (no global state).
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/hostclient"
	"github.com/forgeway/forgeway/internal/store"
)

// Metrics holds every collector.
type Metrics struct {
	reg          *prometheus.Registry
	deliveries   *prometheus.CounterVec
	verifyFails  *prometheus.CounterVec
	ackLatency   *prometheus.HistogramVec
	processed    *prometheus.CounterVec
	jobDone      *prometheus.CounterVec
	jobRun       *prometheus.HistogramVec
	jobWait      *prometheus.HistogramVec
	hostRequests *prometheus.CounterVec
	hostLatency  *prometheus.HistogramVec
}

// New registers the collectors. jobStats and budgets are read at scrape time.
func New(jobStats func(ctx context.Context) (store.JobStats, error), budgets func() map[string]forge.Budget) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "forgeway_deliveries_total", Help: "Webhook requests received, by host kind and outcome (accepted, duplicate, rejected, malformed, unknown, too_large, error)."}, []string{"host", "outcome"})
	m.verifyFails = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "forgeway_webhook_verification_failures_total", Help: "Deliveries whose signature or secret did not verify."}, []string{"host"})
	m.ackLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "forgeway_delivery_ack_seconds", Help: "Time from a webhook request's arrival to its answer (the delivery committed).", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}}, []string{"host"})
	m.processed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "forgeway_deliveries_processed_total", Help: "Deliveries processed, by host kind and status (processed, ignored, failed)."}, []string{"host", "status"})
	m.jobDone = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "forgeway_jobs_finished_total", Help: "Job runs finished, by kind and outcome."}, []string{"kind", "outcome"})
	m.jobRun = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "forgeway_job_run_seconds", Help: "How long job runs took.", Buckets: prometheus.ExponentialBuckets(0.005, 4, 10)}, []string{"kind"})
	m.jobWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "forgeway_job_wait_seconds", Help: "How long due jobs waited for a worker (queue latency).", Buckets: prometheus.ExponentialBuckets(0.005, 4, 10)}, []string{"kind"})
	m.hostRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "forgeway_host_requests_total", Help: "Requests to hosts' APIs by integration, status and whether a conditional request was answered from the cache (304)."}, []string{"integration", "host", "status", "cached"})
	m.hostLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "forgeway_host_request_seconds", Help: "Latency of requests to hosts' APIs.", Buckets: prometheus.DefBuckets}, []string{"host"})
	m.reg.MustRegister(m.deliveries, m.verifyFails, m.ackLatency, m.processed, m.jobDone, m.jobRun, m.jobWait, m.hostRequests, m.hostLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&scrapeCollector{jobStats: jobStats, budgets: budgets})
	return m
}

// WatchGroupCommits exports the store's group commits: how many ran and how many deliveries
// they carried (their ratio is the mean batch size; a mean near 1 under load says the writer
// is idle between deliveries, a mean near the batch bound says it is the bottleneck). stats is
// read at scrape time.
func (m *Metrics) WatchGroupCommits(stats func() (batches, deliveries int64)) {
	m.reg.MustRegister(statsPair{stats: stats,
		first:  counter("forgeway_store_group_commits_total", "Transactions the store's group committer ran for inbound deliveries."),
		second: counter("forgeway_store_group_committed_deliveries_total", "Deliveries the group committer's transactions carried."),
	})
}

// WatchCheckpoints exports the SQLite store's checkpoints, which copy its write-ahead log into
// the database file beside the writer: how many ran, and how many WAL frames wait to be
// copied. Frames that keep growing mean a reader holds an old snapshot and the WAL cannot
// start over. stats is read at scrape time.
func (m *Metrics) WatchCheckpoints(stats func() (passes, uncopied int64)) {
	m.reg.MustRegister(statsPair{stats: stats,
		first:  counter("forgeway_sqlite_checkpoints_total", "Checkpoints of the SQLite write-ahead log."),
		second: gauge("forgeway_sqlite_wal_uncopied_frames", "Pages in the SQLite write-ahead log not yet copied into the database file."),
	})
}

// WatchWALFlushes exports the SQLite store's flushes of its write-ahead log as a histogram:
// every acknowledged delivery waited for one, so a slow disk shows here before anywhere
// else. stats (count, total seconds, cumulative counts by upper bound in seconds) is read at
// scrape time.
func (m *Metrics) WatchWALFlushes(stats func() (count uint64, sum float64, buckets map[float64]uint64)) {
	m.reg.MustRegister(histogramSnapshot{stats: stats, desc: prometheus.NewDesc("forgeway_sqlite_wal_flush_seconds",
		"Time the disk took to flush the SQLite write-ahead log (fdatasync), which every acknowledged delivery waits for.", nil, nil)})
}

// SQLiteWrites is what the SQLite store's write-gathering VFS has counted: the writes SQLite
// asked for and the system calls that made them, for its write-ahead log and its database
// file, and the commits whose log frames were written late (see sqlitevfs.Stats).
type SQLiteWrites struct {
	WALAsked, WALMade int64
	DBAsked, DBMade   int64
	WALLate           int64
}

// WatchSQLiteWrites exports the SQLite store's writes when it gathers them (the setting
// sqlite-gather-writes): asked against made is what the gathering saves. stats is read at
// scrape time.
func (m *Metrics) WatchSQLiteWrites(stats func() SQLiteWrites) {
	m.reg.MustRegister(sqliteWrites{stats})
}

var (
	writesAskedDesc = prometheus.NewDesc("forgeway_sqlite_writes_requested_total",
		"Writes SQLite asked for, by file (wal: the write-ahead log, db: the database file, written by checkpoints).", []string{"file"}, nil)
	writesMadeDesc = prometheus.NewDesc("forgeway_sqlite_write_calls_total",
		"System calls that made SQLite's writes, by file: a group commit's log frames go in one.", []string{"file"}, nil)
	walLateDesc = prometheus.NewDesc("forgeway_sqlite_wal_late_writes_total",
		"Commits whose gathered log frames were written only when SQLite published the commit, not with its last frame; 0 unless this SQLite writes its log in a way Forgeway does not know.", nil, nil)
)

// sqliteWrites exports SQLiteWrites.
type sqliteWrites struct{ stats func() SQLiteWrites }

func (c sqliteWrites) Describe(ch chan<- *prometheus.Desc) {
	ch <- writesAskedDesc
	ch <- writesMadeDesc
	ch <- walLateDesc
}

func (c sqliteWrites) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for _, v := range []struct {
		desc  *prometheus.Desc
		value int64
		file  string
	}{
		{writesAskedDesc, s.WALAsked, "wal"}, {writesAskedDesc, s.DBAsked, "db"},
		{writesMadeDesc, s.WALMade, "wal"}, {writesMadeDesc, s.DBMade, "db"},
	} {
		ch <- prometheus.MustNewConstMetric(v.desc, prometheus.CounterValue, float64(v.value), v.file)
	}
	ch <- prometheus.MustNewConstMetric(walLateDesc, prometheus.CounterValue, float64(s.WALLate))
}

// histogramSnapshot exports a histogram a store keeps itself.
type histogramSnapshot struct {
	stats func() (uint64, float64, map[float64]uint64)
	desc  *prometheus.Desc
}

func (h histogramSnapshot) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h histogramSnapshot) Collect(ch chan<- prometheus.Metric) {
	count, sum, buckets := h.stats()
	ch <- prometheus.MustNewConstHistogram(h.desc, count, sum, buckets)
}

// statsPair exports two numbers a store reports together, asking for them once a scrape.
type statsPair struct {
	stats         func() (int64, int64)
	first, second valueDesc
}

// valueDesc is a metric without labels and its type.
type valueDesc struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

func counter(name, help string) valueDesc {
	return valueDesc{prometheus.NewDesc(name, help, nil, nil), prometheus.CounterValue}
}

func gauge(name, help string) valueDesc {
	return valueDesc{prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue}
}

func (p statsPair) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.first.desc
	ch <- p.second.desc
}

func (p statsPair) Collect(ch chan<- prometheus.Metric) {
	a, b := p.stats()
	ch <- prometheus.MustNewConstMetric(p.first.desc, p.first.typ, float64(a))
	ch <- prometheus.MustNewConstMetric(p.second.desc, p.second.typ, float64(b))
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Delivery records one webhook request.
func (m *Metrics) Delivery(host, outcome string, d time.Duration) {
	m.deliveries.WithLabelValues(host, outcome).Inc()
	if outcome == "rejected" {
		m.verifyFails.WithLabelValues(host).Inc()
	}
	m.ackLatency.WithLabelValues(host).Observe(d.Seconds())
}

// Processed records a processing outcome.
func (m *Metrics) Processed(host, status string) { m.processed.WithLabelValues(host, status).Inc() }

// JobFinished records a job run (the jobs runner's observer).
func (m *Metrics) JobFinished(kind, outcome string, wait, run time.Duration) {
	m.jobDone.WithLabelValues(kind, outcome).Inc()
	m.jobWait.WithLabelValues(kind).Observe(wait.Seconds())
	m.jobRun.WithLabelValues(kind).Observe(run.Seconds())
}

// HostRequest records one request to a host's API.
func (m *Metrics) HostRequest(integrationID string, r hostclient.ObservedRequest) {
	m.hostRequests.WithLabelValues(integrationID, r.Host, strconv.Itoa(r.Status), strconv.FormatBool(r.Cached)).Inc()
	m.hostLatency.WithLabelValues(r.Host).Observe(r.Duration.Seconds())
}

// scrapeCollector reads the queue depth and the rate-limit budgets when scraped.
type scrapeCollector struct {
	jobStats func(ctx context.Context) (store.JobStats, error)
	budgets  func() map[string]forge.Budget
}

var (
	queueDesc     = prometheus.NewDesc("forgeway_jobs", "Jobs in the durable queue by state (dead: dead-lettered).", []string{"state"}, nil)
	remainingDesc = prometheus.NewDesc("forgeway_host_rate_limit_remaining", "Requests left in the host's rate-limit window, per integration.", []string{"integration"}, nil)
	limitDesc     = prometheus.NewDesc("forgeway_host_rate_limit_limit", "Size of the host's rate-limit window, per integration.", []string{"integration"}, nil)
	resetDesc     = prometheus.NewDesc("forgeway_host_rate_limit_reset_timestamp_seconds", "When the host's rate-limit window resets, per integration.", []string{"integration"}, nil)
)

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDesc
	ch <- remainingDesc
	ch <- limitDesc
	ch <- resetDesc
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.jobStats != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		stats, err := c.jobStats(ctx)
		cancel()
		if err == nil {
			for _, state := range []string{store.JobAvailable, store.JobRunning, store.JobRetryable, store.JobDead, store.JobCompleted, store.JobCancelled} {
				ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(stats[state]), state)
			}
		}
	}
	if c.budgets != nil {
		for id, b := range c.budgets() {
			if b.Limit == 0 && b.Remaining == 0 {
				continue
			}
			ch <- prometheus.MustNewConstMetric(remainingDesc, prometheus.GaugeValue, float64(b.Remaining), id)
			ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, float64(b.Limit), id)
			if !b.Reset.IsZero() {
				ch <- prometheus.MustNewConstMetric(resetDesc, prometheus.GaugeValue, float64(b.Reset.Unix()), id)
			}
		}
	}
}
