// Command fwbench is Forgeway's load tool. `fwbench p1` measures webhook ingest: it starts
// Forgeway (embedded SQLite, in a temporary data directory) and, as the baseline, a bare
// net/http handler that only reads the body — each in its own process on loopback — and
// drives both with the same signed 7 KB GitHub push deliveries from many concurrent clients.
// It reports accepted deliveries per second for both and their ratio, and the
// acknowledgement latency (p50/p99) at a fixed arrival rate (open loop: latency is measured
// from each request's scheduled time, so a stalled server cannot hide its queue), with how
// far the sender itself fell behind that schedule (a stall of the whole machine). The
// latency's baseline is the disk itself: a bare writer that flushes a page per delivery at
// the same schedule, and a probe of the disk's flushes during every latency run (disk.go).
// On Linux it also reports, from /proc/stat, how busy the machine was during each server's
// rounds and its CPU per delivery, the kernel's work for the servers included (procstat.go),
// and from the ingest-only server's /metrics how its WAL flushes went in its rounds
// (servermetrics.go).
//
// Usage:
//
//	go run ./cmd/fwbench p1 [-duration 10s] [-rounds 5] [-concurrency 64] [-rate 1000] [-payload FILE] [-listener webhooks|main]
//	go run ./cmd/fwbench p1-hosts [-duration 5s]
//	go run ./cmd/fwbench ab [-duration 20s] [-rounds 10] [-wal] [-listener webhooks|main] OTHER_FWBENCH_BINARY...
//	go run ./cmd/fwbench disk [-rate 1000] [-duration 20s] [-bytes 8192,57344] [-rounds 3]
//
// `ab` measures builds of Forgeway against each other (see ab.go); `disk` the disk alone, as
// the latency run's baseline does, for several write sizes (disk.go). Forgeway takes the
// deliveries on its webhook listener (webhook_listen), or with -listener main on its main
// listener, as a build without a webhook listener always does.
//
// With FORGEWAY_DATABASE_URL=postgres://… in the environment the Forgeway servers use that
// PostgreSQL database instead of SQLite. FWBENCH_CPUPROFILE=PATH writes each Forgeway
// server's CPU profile to PATH.<kind>.workers-<n>.<pid>, FWBENCH_MEMPROFILE=PATH what it
// allocated, FWBENCH_TRACE=PATH its execution
// trace (go tool trace) likewise.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to make each server's schema

	"github.com/forgeway/forgeway/internal/config"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest/sample"
	"github.com/forgeway/forgeway/internal/integrations"
	"github.com/forgeway/forgeway/internal/server"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fwbench p1|p1-hosts|ab|disk [flags] | fwbench serve-baseline | fwbench serve-forgeway DIR KIND")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "p1":
		err = p1(ctx, os.Args[2:])
	case "serve-baseline":
		err = serveBaseline(ctx)
	case "serve-forgeway":
		err = serveForgeway(ctx, os.Args[2:], "8")
	case "serve-forgeway-ingest":
		err = serveForgeway(ctx, os.Args[2:], "0")
	case "p1-hosts":
		err = p1Hosts(ctx, os.Args[2:])
	case "ab":
		err = ab(ctx, os.Args[2:])
	case "disk":
		err = disk(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fwbench:", err)
		os.Exit(1)
	}
}

const benchSecret = "fwbench-webhook-secret"

// serveBaseline is the baseline: accept, read the body, answer 202.
func serveBaseline(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("URL http://%s/webhooks/github/x\n", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveForgeway runs Forgeway with a GitHub token integration whose webhook secret is known.
func serveForgeway(ctx context.Context, args []string, workers string) error {
	if len(args) != 2 {
		return errors.New("serve-forgeway DIR KIND")
	}
	kind := args[1]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if dsn := os.Getenv("FORGEWAY_DATABASE_URL"); dsn != "" {
		// Each server gets an empty schema of its own, as each gets an empty SQLite file: a
		// server must not inherit the previous run's backlog.
		fresh, err := freshSchema(ctx, dsn)
		if err != nil {
			return err
		}
		if err := os.Setenv("FORGEWAY_DATABASE_URL", fresh); err != nil {
			return err
		}
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	config.Register(fs)
	_ = fs.Parse([]string{"--data-dir", args[0], "--public-url", "http://" + ln.Addr().String(), "--log-level", "warn", "--log-format", "text", "--workers", workers})
	cfg, err := config.Load(fs, os.Getenv)
	if err != nil {
		return err
	}
	// Profiles of the server side of a run: FWBENCH_CPUPROFILE=/tmp/p (CPU), FWBENCH_MEMPROFILE=/tmp/m
	// (what was allocated, written at the end) and FWBENCH_TRACE=/tmp/t (execution trace:
	// scheduling, blocking, system calls; keep such runs short) write
	// /tmp/p.<kind>.workers-<n>.<pid>.
	for _, p := range []struct {
		env   string
		start func(io.Writer) error
		stop  func(io.Writer)
	}{
		{"FWBENCH_CPUPROFILE", pprof.StartCPUProfile, func(io.Writer) { pprof.StopCPUProfile() }},
		{"FWBENCH_MEMPROFILE", func(io.Writer) error { return nil }, func(w io.Writer) { _ = pprof.Lookup("allocs").WriteTo(w, 0) }},
		{"FWBENCH_TRACE", trace.Start, func(io.Writer) { trace.Stop() }},
	} {
		path := os.Getenv(p.env)
		if path == "" {
			continue
		}
		f, err := os.Create(fmt.Sprintf("%s.%s.workers-%s.%d", path, args[1], workers, os.Getpid()))
		if err != nil {
			return err
		}
		if err := p.start(f); err != nil {
			return err
		}
		defer func() { p.stop(f); _ = f.Close() }()
	}
	app, err := server.New(ctx, cfg, server.Options{})
	if err != nil {
		return err
	}
	defer app.Close()
	settings := map[string]string{}
	if kind == "github" || kind == "gitlab" {
		settings["auth"] = "token"
	}
	rec, err := app.Integrations.Prepare(integrations.Input{
		Kind: kind, Name: "bench", BaseURL: "https://git.example.com/acme",
		Settings: settings, Secrets: map[string]string{"token": "bench-token"},
		WebhookSecret: benchSecret,
	}, nil)
	if err != nil {
		return err
	}
	if err := app.Store.CreateIntegration(ctx, &rec); err != nil {
		return err
	}
	if os.Getenv("FWBENCH_LISTENER") == "main" {
		fmt.Printf("URL http://%s/webhooks/%s/%s\n", ln.Addr(), kind, rec.ID)
		return app.ServeListeners(ctx, ln, nil)
	}
	// The webhook listener (webhook_listen), as an ingest replica behind a public ingress
	// would take deliveries.
	hooks, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("API http://%s\nURL http://%s/webhooks/%s/%s\n", ln.Addr(), hooks.Addr(), kind, rec.ID)
	return app.ServeListeners(ctx, ln, hooks)
}

// freshSchema creates an empty schema on the PostgreSQL server of dsn and returns dsn with
// its search_path set to it.
func freshSchema(ctx context.Context, dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("FORGEWAY_DATABASE_URL: %w", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := fmt.Sprintf("fwbench_%x", b)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", fmt.Errorf("create schema for the run: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// sharedDir is the project's shared directory (the corpus): FORGEWAY_SHARED, or ../shared
// beside the checkout fwbench runs from.
func sharedDir() string {
	if d := os.Getenv("FORGEWAY_SHARED"); d != "" {
		return d
	}
	return "../shared"
}

// readPayload reads the delivery body the GitHub benchmarks send: the file at path, or the
// corpus's 7 KB push when path is empty.
func readPayload(path string) ([]byte, error) {
	if path == "" {
		path = filepath.Join(sharedDir(), "corpus", "github", "push.json")
	}
	return os.ReadFile(path)
}

// loadClient is the load generator's HTTP client: a kept-alive connection per client.
func loadClient(concurrency int) *http.Client {
	transport := &http.Transport{MaxIdleConns: concurrency * 2, MaxIdleConnsPerHost: concurrency * 2, IdleConnTimeout: time.Minute}
	return &http.Client{Transport: transport, Timeout: 30 * time.Second}
}

// workspace is what every throughput command starts with: the load client and a temporary
// directory for the servers' data directories, which the caller removes.
func workspace(concurrency int) (*http.Client, string, error) {
	dir, err := os.MkdirTemp("", "fwbench-")
	if err != nil {
		return nil, "", err
	}
	return loadClient(concurrency), dir, nil
}

// payloadWorkspace is workspace for the commands that send one payload (p1, ab): the
// delivery body readPayload gives for path, the load client and the temporary directory.
func payloadWorkspace(path string, concurrency int) ([]byte, *http.Client, string, error) {
	body, err := readPayload(path)
	if err != nil {
		return nil, nil, "", err
	}
	client, dir, err := workspace(concurrency)
	return body, client, dir, err
}

type child struct {
	cmd *exec.Cmd
	url string // the webhook URL the load posts to
	api string // the main listener's base URL, when it is not the webhook URL's
}

// start runs this fwbench binary with args (a serve-* command) and waits for its URL.
func start(ctx context.Context, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startExe(ctx, self, args...)
}

// startExe is start with another fwbench binary: ab compares builds of Forgeway.
func startExe(ctx context.Context, exe string, args ...string) (*child, error) {
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	var api string
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "API "); ok {
			api = u
		}
		if u, ok := strings.CutPrefix(sc.Text(), "URL "); ok {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return &child{cmd: cmd, url: u, api: api}, nil
		}
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("%v did not start", args)
}

// stop ends the child and returns the CPU time (user and system) it used.
func (c *child) stop() time.Duration {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	// A connection the load generator dialed but never used holds the server's shutdown
	// for 5 s, as net/http's would (only then does it count as idle); the server's own
	// grace is 20 s. Killing it sooner would lose the profiles it writes on the way out.
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	if c.cmd.ProcessState == nil {
		return 0
	}
	return c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime()
}

type load struct {
	url     string
	kind    forge.Kind
	event   string
	body    []byte
	idField []byte // Azure DevOps: the body's notification id, replaced per request
	client  *http.Client
	counter atomic.Int64
	node    [6]byte // GitHub: the node of this sender's version-1 delivery GUIDs
}

func newLoad(url string, kind forge.Kind, body []byte, client *http.Client) *load {
	l := &load{url: url, kind: kind, body: body, client: client, event: sample.CorpusEvent(kind, "push.json")}
	_, _ = rand.Read(l.node[:])
	if kind == forge.BitbucketDC {
		l.event = "repo:refs_changed"
	}
	if kind == forge.AzureDevOps {
		var doc struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &doc)
		l.idField = []byte(`"` + doc.ID + `"`)
	}
	return l
}

// send posts one delivery, signed or authenticated as the host does, with a new delivery id.
func (l *load) send(ctx context.Context) (int, error) {
	n := l.counter.Add(1)
	id := l.deliveryID()
	body := l.body
	if len(l.idField) > 2 {
		// Azure deduplicates by the notification id in the body: give each request its own,
		// of the same length.
		fresh := fmt.Sprintf(`"%0*d"`, len(l.idField)-2, n)
		body = bytes.Replace(l.body, l.idField, []byte(fresh), 1)
	}
	h, err := sample.Headers(l.kind, l.event, id, benchSecret, body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header = h
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// deliveryID makes a delivery id of the kind the host sends, so that the deduplication index
// sees what it would in production: GitHub's X-GitHub-Delivery is a version-1 (time-based)
// UUID, as in GitHub's documented example 72d3162e-cc78-11e3-81ab-4c9367dc0958; GitLab's
// X-Gitlab-Event-UUID, Gitea's X-Gitea-Delivery and Bitbucket's X-Request-Id are random
// (version 4) UUIDs.
func (l *load) deliveryID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	if l.kind == forge.GitHub {
		// 100 ns ticks since 1582-10-15; a random clock sequence, this sender's node.
		ticks := uint64(time.Now().UnixNano()/100) + 0x01B21DD213814000
		return fmt.Sprintf("%08x-%04x-%04x-%02x%02x-%x", uint32(ticks), uint16(ticks>>32),
			uint16(ticks>>48)&0x0fff|0x1000, u[0]&0x3f|0x80, u[1], l.node[:])
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// throughput runs a closed loop: concurrency clients sending as fast as answers come. It
// returns the deliveries accepted and refused, and how long it ran.
func (l *load) throughput(ctx context.Context, concurrency int, d time.Duration) (ok, failed int64, elapsed time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var okN, failedN atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				code, err := l.send(ctx)
				if err == nil && code == http.StatusAccepted {
					okN.Add(1)
				} else if ctx.Err() == nil {
					failedN.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return okN.Load(), failedN.Load(), time.Since(start)
}

// measured is one server's share of interleaved throughput runs.
type measured struct {
	accepted, failed int64
	elapsed          time.Duration
	clientCPU        time.Duration // the load generator's CPU while it drove this server
	machine          cpuTimes      // the whole machine's CPU while this server was driven
	rounds           []float64     // accepted per second, round by round
}

func (m measured) rate() float64 { return float64(m.accepted) / m.elapsed.Seconds() }

// interleave drives each load in turn for d/rounds, rounds times over, so that every server
// gets d in all. A shared machine's speed drifts by a tenth or more over tens of seconds;
// measuring the servers one after the other would put that drift into their ratio, while
// alternating them spreads it over all of them alike.
func interleave(ctx context.Context, concurrency int, d time.Duration, rounds int, loads ...*load) []measured {
	out := make([]measured, len(loads))
	slice := d / time.Duration(max(rounds, 1))
	for range max(rounds, 1) {
		for i, l := range loads {
			before, machine := selfCPU(), readCPUTimes()
			ok, failed, elapsed := l.throughput(ctx, concurrency, slice)
			m := &out[i]
			m.clientCPU += selfCPU() - before
			m.machine = m.machine.add(readCPUTimes().sub(machine))
			m.accepted += ok
			m.failed += failed
			m.elapsed += elapsed
			m.rounds = append(m.rounds, float64(ok)/elapsed.Seconds())
		}
	}
	return out
}

// pairRun is the baseline and an ingest-only Forgeway server measured in alternating rounds.
type pairRun struct {
	base, forgeway       measured
	baseCPU, forgewayCPU time.Duration // server CPU per delivery, warm-up included
	inRounds             serverMetrics // what Forgeway's /metrics counted over the measured rounds
}

// measurePair starts the baseline and an ingest-only Forgeway server of kind (its data in a
// new directory under dir), warms both up, drives them in alternating rounds and stops them.
func measurePair(ctx context.Context, client *http.Client, dir string, kind forge.Kind, body []byte, concurrency int, d time.Duration, rounds int) (pairRun, error) {
	var pr pairRun
	base, err := start(ctx, "serve-baseline")
	if err != nil {
		return pr, err
	}
	sub, err := os.MkdirTemp(dir, "data-")
	if err != nil {
		base.stop()
		return pr, err
	}
	fw, err := start(ctx, "serve-forgeway-ingest", sub, string(kind))
	if err != nil {
		base.stop()
		return pr, err
	}
	bl, fl := newLoad(base.url, kind, body, client), newLoad(fw.url, kind, body, client)
	for _, l := range []*load{bl, fl} {
		l.throughput(ctx, concurrency, time.Second) // warm up
	}
	before := readServerMetrics(ctx, client, fw)
	m := interleave(ctx, concurrency, d, rounds, bl, fl)
	after := readServerMetrics(ctx, client, fw)
	pr.base, pr.forgeway = m[0], m[1]
	pr.inRounds = after.sub(before)
	pr.baseCPU = perDelivery(base.stop(), bl.counter.Load())
	pr.forgewayCPU = perDelivery(fw.stop(), fl.counter.Load())
	return pr, nil
}

// latencyRun is what an open-loop run measured.
type latencyRun struct {
	lat    []time.Duration // each request's, from its scheduled start, sorted
	failed int64
	// behind is how far, at most, the sender fell behind its schedule: how long this
	// process, or the whole machine, stalled. A server cannot cause it (the sender waits for
	// no answer), but every request due in the stall carries it in its latency.
	behind time.Duration
	// machine is the machine's CPU over the run (its steal tells a busy host).
	machine cpuTimes
}

// latency runs an open loop at rate requests per second.
func (l *load) latency(ctx context.Context, rate int, d time.Duration) latencyRun {
	lat := make([]time.Duration, requestsIn(rate, d))
	var failed atomic.Int64
	var wg sync.WaitGroup
	sent, behind, machine := openLoop(ctx, rate, d, func(i int, at time.Time) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, err := l.send(ctx)
			lat[i] = time.Since(at)
			if err != nil || code != http.StatusAccepted {
				failed.Add(1)
			}
		}()
	}, wg.Wait)
	lat = lat[:sent]
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return latencyRun{lat: lat, failed: failed.Load(), behind: behind, machine: machine}
}

// requestsIn is how many requests an open loop at rate per second sends in d.
func requestsIn(rate int, d time.Duration) int { return int(d.Seconds() * float64(rate)) }

// openLoop calls start for each request of an open loop at rate per second over d, at its
// scheduled time, never waiting for what start begins; then wait, which returns once every
// request has its answer. It stops early when ctx ends. It returns how many requests it
// started, how far at most it fell behind its schedule, and the machine's CPU over the run,
// answers included. Every latency run, the servers' and the disk's, keeps this one schedule.
func openLoop(ctx context.Context, rate int, d time.Duration, start func(i int, at time.Time), wait func()) (sent int, behind time.Duration, machine cpuTimes) {
	n := requestsIn(rate, d)
	interval := time.Second / time.Duration(rate)
	cpu0 := readCPUTimes()
	begin := time.Now()
	for sent < n && ctx.Err() == nil {
		at := begin.Add(time.Duration(sent) * interval)
		time.Sleep(time.Until(at))
		behind = max(behind, time.Since(at))
		start(sent, at)
		sent++
	}
	wait()
	return sent, behind, readCPUTimes().sub(cpu0)
}

// selfCPU is the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func perDelivery(cpu time.Duration, n int64) time.Duration {
	if n == 0 {
		return 0
	}
	return (cpu / time.Duration(n)).Round(time.Microsecond)
}

func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[min(len(lat)-1, int(float64(len(lat))*p))]
}

func p1(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("p1", flag.ContinueOnError)
	duration := fs.Duration("duration", 10*time.Second, "throughput run time of each server")
	rounds := fs.Int("rounds", 5, "alternating rounds the baseline's and the ingest-only server's time is split into")
	concurrency := fs.Int("concurrency", 64, "concurrent clients in the throughput runs")
	rate := fs.Int("rate", 1000, "arrival rate of the latency run (deliveries per second)")
	latDuration := fs.Duration("latency-duration", 10*time.Second, "length of the latency run")
	payload := fs.String("payload", "", "delivery body (default: the corpus push.json, 7 KB)")
	listener := fs.String("listener", "webhooks", "where Forgeway takes the deliveries: webhooks (the webhook listener) or main (the main listener, net/http)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := useListener(*listener); err != nil {
		return err
	}
	body, client, dir, err := payloadWorkspace(*payload, *concurrency)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	engine := "SQLite in a temporary data directory"
	if os.Getenv("FORGEWAY_DATABASE_URL") != "" {
		// The servers inherit the environment: FORGEWAY_DATABASE_URL=postgres://… measures
		// ingest on PostgreSQL.
		engine = "PostgreSQL (FORGEWAY_DATABASE_URL)"
		if os.Getenv("FORGEWAY_SECRET_KEY") == "" {
			// Every server of the run shares the database, so they must share its key too
			// (each would otherwise make its own in its data directory).
			var key [32]byte
			_, _ = rand.Read(key[:])
			if err := os.Setenv("FORGEWAY_SECRET_KEY", base64.StdEncoding.EncodeToString(key[:])); err != nil {
				return err
			}
		}
	}
	fmt.Printf("P1 ingest: %d-byte signed push deliveries, %d concurrent clients, %s per server in %d alternating rounds, loopback, %d CPUs, %s, Forgeway's %s listener\n\n", len(body), *concurrency, *duration, *rounds, runtime.NumCPU(), engine, *listener)

	type result struct {
		name      string
		rate      float64
		failed    int64
		lat       latencyRun
		cpu       time.Duration // server CPU per delivery in the throughput run
		batch     float64       // deliveries per group commit in the throughput run
		processed string        // share of the throughput run's deliveries processed by its end
		disk      flushProbe    // the disk's flushes during the latency run
	}
	// latency measures a fresh server of cmd, so that a throughput run's backlog does not
	// weigh on it.
	latency := func(r *result, cmd string) error {
		sub, err := os.MkdirTemp(dir, "data-")
		if err != nil {
			return err
		}
		fw, err := start(ctx, cmd, sub, "github")
		if err != nil {
			return err
		}
		probe := probeFlushes(dir, probeEvery, flushData)
		r.lat = newLoad(fw.url, forge.GitHub, body, client).latency(ctx, *rate, *latDuration)
		r.disk = probe()
		fw.stop()
		return nil
	}

	// The baseline and the ingest-only server, the pair the target is about.
	pair, err := measurePair(ctx, client, dir, forge.GitHub, body, *concurrency, *duration, *rounds)
	if err != nil {
		return err
	}
	baseRate := pair.base.rate()
	// The latency's baseline, right before the ingest-only server's latency run: what the
	// disk allowed any server that answers after its flush.
	probe := probeFlushes(dir, probeEvery, flushData)
	disk, err := diskLatency(ctx, dir, *rate, diskPage, *latDuration, flushData)
	diskProbe := probe()
	if err != nil {
		return err
	}
	ingest := result{name: "Forgeway, ingest-only replica (workers 0)", rate: pair.forgeway.rate(), failed: pair.forgeway.failed,
		cpu: pair.forgewayCPU, batch: pair.inRounds.batch(), processed: "(none: no workers)"}
	if err := latency(&ingest, "serve-forgeway-ingest"); err != nil {
		return err
	}

	// Processing goes on after the load stops, so this server runs on its own, after the
	// pair: interleaved, its backlog would take CPU from the others' rounds.
	processing := result{name: "Forgeway, processing while it ingests (8 workers)"}
	sub, err := os.MkdirTemp(dir, "data-")
	if err != nil {
		return err
	}
	fw, err := start(ctx, "serve-forgeway", sub, "github")
	if err != nil {
		return err
	}
	fl := newLoad(fw.url, forge.GitHub, body, client)
	fl.throughput(ctx, *concurrency, time.Second) // warm up
	ok, failed, elapsed := fl.throughput(ctx, *concurrency, *duration)
	processing.rate, processing.failed = float64(ok)/elapsed.Seconds(), failed
	sm := readServerMetrics(ctx, client, fw)
	processing.batch, processing.processed = sm.batch(), fmt.Sprintf("%.0f%%", 100*sm.processed/float64(fl.counter.Load()))
	processing.cpu = perDelivery(fw.stop(), fl.counter.Load())
	if err := latency(&processing, "serve-forgeway"); err != nil {
		return err
	}

	fmt.Printf("| server | accepted/s | ratio to baseline | server CPU per delivery | deliveries per commit | processed by the end | failed | p50 at %d/s | p99 at %d/s |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n", *rate, *rate)
	fmt.Printf("| bare net/http handler (reads the body) | %.0f | 1.00 | %s | | | %d | | |\n", baseRate, pair.baseCPU, pair.base.failed)
	fmt.Printf("| %s | | | | %.1f | | | %s | %s |\n", diskBaselineLabel, float64(len(disk.lat))/float64(max(disk.flushes, 1)),
		pct(disk.lat, 0.50).Round(10*time.Microsecond), pct(disk.lat, 0.99).Round(10*time.Microsecond))
	for _, r := range []result{processing, ingest} {
		fmt.Printf("| %s | %.0f | %.2f | %s | %.1f | %s | %d | %s | %s |\n", r.name, r.rate, r.rate/baseRate, r.cpu, r.batch, r.processed, r.failed+r.lat.failed,
			pct(r.lat.lat, 0.50).Round(10*time.Microsecond), pct(r.lat.lat, 0.99).Round(10*time.Microsecond))
	}
	// A latency above the target with the sender far behind is a stall of the machine, not
	// of the server; with the disk's probe flushes slow, a stall of the disk.
	for _, r := range []result{{name: "the disk baseline", lat: disk.latencyRun, disk: diskProbe}, ingest, processing} {
		fmt.Printf("\n%s, latency run: the sender fell behind its schedule by up to %s (a stall of the load generator or the machine); steal %.1f%%; the disk: %s",
			r.name, r.lat.behind.Round(10*time.Microsecond), 100*r.lat.machine.stealShare(), r.disk)
	}
	fmt.Println()
	fmt.Printf("\ningest-only to baseline, round by round:")
	for i, r := range pair.forgeway.rounds {
		fmt.Printf(" %.2f", r/pair.base.rounds[i])
	}
	// The rates themselves tell which side a round's ratio moved with.
	for _, s := range []struct {
		name   string
		rounds []float64
	}{{"baseline", pair.base.rounds}, {"ingest-only", pair.forgeway.rounds}} {
		fmt.Printf("\n%s accepted/s, round by round:", s.name)
		for _, r := range s.rounds {
			fmt.Printf(" %.0f", r)
		}
	}
	clientPer := perDelivery(pair.base.clientCPU, pair.base.accepted+pair.base.failed)
	fmt.Printf("\nthe load generator's own CPU per delivery (same for every server): %s; both share the machine's %d CPUs\n", clientPer, runtime.NumCPU())
	fmt.Printf("the machine during the baseline's rounds: %s\n", pair.base.machine.describe(pair.base.accepted+pair.base.failed))
	fmt.Printf("the machine during the ingest-only server's rounds: %s\n", pair.forgeway.machine.describe(pair.forgeway.accepted+pair.forgeway.failed))
	fmt.Printf("the ingest-only server's disk in its rounds: %s\n", pair.inRounds.describeFlushes(pair.forgeway.elapsed))
	fmt.Printf("\ntargets: ratio >= 0.5; p99 <= 25ms at %d deliveries/s (open loop, %s, latency from each request's scheduled time)\n", *rate, *latDuration)
	return nil
}

// useListener tells the Forgeway servers started from now on which listener takes the
// deliveries (serveForgeway reads FWBENCH_LISTENER).
func useListener(name string) error {
	switch name {
	case "webhooks":
		return os.Unsetenv("FWBENCH_LISTENER")
	case "main":
		return os.Setenv("FWBENCH_LISTENER", "main")
	}
	return fmt.Errorf("-listener %q: want webhooks or main", name)
}

// p1Hosts measures ingest throughput for each host's verification scheme and payload (its
// corpus push) on an ingest-only server (accepted: verified and committed), beside the same
// bare-handler baseline.
//
//	go run ./cmd/fwbench p1-hosts [-duration 5s] [-rounds 5] [-concurrency 64]
func p1Hosts(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("p1-hosts", flag.ContinueOnError)
	duration := fs.Duration("duration", 5*time.Second, "throughput run time of each server")
	rounds := fs.Int("rounds", 5, "alternating rounds each pair's time is split into")
	concurrency := fs.Int("concurrency", 64, "concurrent clients")
	if err := fs.Parse(args); err != nil {
		return err
	}
	shared := sharedDir()
	payloads := map[forge.Kind]string{
		forge.GitHub: "github/push.json", forge.GitLab: "gitlab/push.json", forge.BitbucketDC: "bitbucket-dc/go-scm/repo.refs_changed.json",
		forge.AzureDevOps: "azure-devops/git.push.json", forge.Gitea: "gitea/push.json",
	}
	client, dir, err := workspace(*concurrency)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("P1 per host: each host's corpus push, %d concurrent clients, %s per server in %d alternating rounds, ingest-only, %d CPUs\n\n", *concurrency, *duration, *rounds, runtime.NumCPU())
	fmt.Printf("| host (verification) | payload bytes | baseline/s | Forgeway/s | ratio |\n| --- | ---: | ---: | ---: | ---: |\n")
	schemes := map[forge.Kind]string{forge.GitHub: "HMAC-SHA256", forge.GitLab: "token", forge.BitbucketDC: "HMAC-SHA256", forge.AzureDevOps: "basic auth", forge.Gitea: "HMAC-SHA256"}
	for _, kind := range forge.Kinds() {
		body, err := os.ReadFile(filepath.Join(shared, "corpus", payloads[kind]))
		if err != nil {
			return err
		}
		pair, err := measurePair(ctx, client, dir, kind, body, *concurrency, *duration, *rounds)
		if err != nil {
			return err
		}
		if pair.forgeway.failed > 0 {
			return fmt.Errorf("%s: %d deliveries refused", kind, pair.forgeway.failed)
		}
		fmt.Printf("| %s (%s) | %d | %.0f | %.0f | %.2f |\n", kind, schemes[kind], len(body), pair.base.rate(), pair.forgeway.rate(), pair.forgeway.rate()/pair.base.rate())
	}
	return nil
}
