// Package testserver runs a real Forgeway on loopback for tests (its own data directory, the
// database given, the admin token it printed) and calls its API: the harness of the
// end-to-end tests and of the conformance suite.
package testserver

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/config"
	"github.com/forgeway/forgeway/internal/server"
)

// Forgeway is a real Forgeway server on loopback for tests: its own data directory, the
// database dsn given (empty: SQLite), its API called with the admin token it printed.
type Forgeway struct {
	T     testing.TB
	App   *server.App
	URL   string
	Token string
	HTTP  *http.Client
	// WebhookURL is the webhook listener's base URL (webhook_listen): the same webhook
	// endpoints as under URL, on the server of ingest.Listener.
	WebhookURL string
}

// Start runs Forgeway until the test ends. extra are more `serve` flags.
func Start(t testing.TB, dsn string, extra ...string) *Forgeway {
	t.Helper()
	return StartWith(t, dsn, server.Options{}, extra...)
}

// StartWith is Start with server options that flags do not reach (such as a short retry
// schedule for subscriptions); its output and logger are the test's.
func StartWith(t testing.TB, dsn string, opts server.Options, extra ...string) *Forgeway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	hooks, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--data-dir", t.TempDir(), "--public-url", url, "--log-level", "warn", "--job-poll", "50ms", "--workers", "4"}
	if dsn != "" {
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
	opts.Out, opts.Logger = &out, TestLogger(t)
	app, err := server.New(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	token := regexp.MustCompile(`fwt_[a-z2-7]+`).FindString(out.String())
	if token == "" {
		t.Fatalf("no admin token printed on first start: %q", out.String())
	}
	done := make(chan error, 1)
	go func() { done <- app.ServeListeners(ctx, ln, hooks) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
		app.Close()
	})
	return &Forgeway{T: t, App: app, URL: url, Token: token, HTTP: &http.Client{Timeout: 30 * time.Second}, WebhookURL: "http://" + hooks.Addr().String()}
}

// Call sends an API request with the admin token and decodes the JSON answer into out (when
// not nil); it returns the status.
func (f *Forgeway) Call(method, path string, body, out any) int {
	f.T.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			f.T.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, f.URL+path, rd)
	if err != nil {
		f.T.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.HTTP.Do(req)
	if err != nil {
		f.T.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			f.T.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// MustCall is Call that fails the test unless the status is want.
func (f *Forgeway) MustCall(method, path string, body, out any, want int) {
	f.T.Helper()
	var raw json.RawMessage
	if got := f.Call(method, path, body, &raw); got != want {
		f.T.Fatalf("%s %s: status %d, want %d: %s", method, path, got, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			f.T.Fatal(err)
		}
	}
}

// WaitJob polls a job until it finishes and fails the test unless it completed.
func (f *Forgeway) WaitJob(j api.Job) api.Job {
	f.T.Helper()
	Eventually(f.T, 60*time.Second, fmt.Sprintf("job %d (%s) to finish", j.ID, j.Kind), func() bool {
		f.MustCall("GET", fmt.Sprintf("/api/v1/jobs/%d", j.ID), nil, &j, 200)
		return j.State == "completed" || j.State == "dead" || j.State == "cancelled"
	})
	if j.State != "completed" {
		f.T.Fatalf("job %d (%s) %s: %s", j.ID, j.Kind, j.State, j.LastError)
	}
	return j
}

// Repos lists an integration's whole catalog; extra is more query ("&attached=true").
func (f *Forgeway) Repos(integration, extra string) []api.Repository {
	f.T.Helper()
	var all []api.Repository
	cursor := ""
	for {
		var page api.List[api.Repository]
		f.MustCall("GET", "/api/v1/repositories?limit=500&integration="+integration+extra+"&cursor="+cursor, nil, &page, 200)
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
}

// RepoByName finds a catalog entry by full name.
func (f *Forgeway) RepoByName(integration, fullName string) api.Repository {
	f.T.Helper()
	for _, r := range f.Repos(integration, "") {
		if r.FullName == fullName {
			return r
		}
	}
	f.T.Fatalf("%s is not in the catalog", fullName)
	return api.Repository{}
}

// Eventually polls cond until it holds or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
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

// TestLogger sends a server's log to the test's log, shown when the test fails.
func TestLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
