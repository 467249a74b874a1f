// Package e2e tests Forgeway end to end: the real server (store, jobs, ingest, processing,
// catalog, API) on loopback, against the fake hosts and real git.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/config"
	"github.com/forgeway/forgeway/internal/server"
	"github.com/forgeway/forgeway/internal/store/storetest"
)

// env is one running Forgeway.
type env struct {
	t     testing.TB
	app   *server.App
	url   string
	token string
	http  *http.Client
}

type engine struct {
	name string
	dsn  func(t testing.TB) string // "" means SQLite in the data directory
}

// engines are the databases the end-to-end tests run on: SQLite always, PostgreSQL when
// FORGEWAY_TEST_POSTGRES is set (and then it must be reachable).
func engines(t *testing.T) []engine {
	out := []engine{{name: "sqlite", dsn: func(testing.TB) string { return "" }}}
	if os.Getenv(storetest.EnvPostgres) != "" {
		out = append(out, engine{name: "postgres", dsn: storetest.PostgresDSN})
	}
	return out
}

// startB runs Forgeway on SQLite for a benchmark.
func startB(b *testing.B, extra ...string) *env {
	return start(b, engine{name: "sqlite", dsn: func(testing.TB) string { return "" }}, extra...)
}

func eachEngine(t *testing.T, fn func(t *testing.T, e engine)) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) { fn(t, e) })
	}
}

// start runs Forgeway with its data in a temporary directory.
func start(t testing.TB, e engine, extra ...string) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	args := []string{"--data-dir", t.TempDir(), "--public-url", url, "--log-level", "warn", "--job-poll", "50ms", "--workers", "4"}
	if dsn := e.dsn(t); dsn != "" {
		args = append(args, "--database-url", dsn)
	}
	args = append(args, extra...)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	config.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(fs, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	app, err := server.New(ctx, cfg, server.Options{Out: &out, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	token := regexp.MustCompile(`fwt_[a-z2-7]+`).FindString(out.String())
	if token == "" {
		t.Fatalf("no admin token printed on first start: %q", out.String())
	}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
		app.Close()
	})
	return &env{t: t, app: app, url: url, token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

// call sends an API request and decodes the JSON answer into out (when not nil). It
// returns the status.
func (e *env) call(method, path string, body, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// mustCall is call that fails the test unless the status is want.
func (e *env) mustCall(method, path string, body, out any, want int) {
	e.t.Helper()
	var raw json.RawMessage
	got := e.call(method, path, body, &raw)
	if got != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatal(err)
		}
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// sharedDir is the shared test data: FORGEWAY_SHARED, or ../shared beside the repository.
func sharedDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("FORGEWAY_SHARED"); d != "" {
		return d
	}
	wd, _ := os.Getwd()
	d := filepath.Join(wd, "..", "..", "..", "shared")
	if _, err := os.Stat(filepath.Join(d, "corpus")); err != nil {
		t.Fatalf("shared test data not found at %s (set FORGEWAY_SHARED): %v", d, err)
	}
	return d
}

func corpusFile(t testing.TB, host, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(sharedDir(t), "corpus", host, name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func jsonPath(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func fmtJSON(v any) string {
	raw, _ := json.MarshalIndent(v, "", "  ")
	return string(raw)
}
