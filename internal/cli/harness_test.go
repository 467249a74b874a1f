package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/problem"
)

const testToken = "fwt_test_secret_token_value"

// request is what the fake API saw.
type request struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

// fakeAPI is an httptest server answering like Forgeway's API. Every /api/v1 request except the
// OpenAPI document must carry the test token.
type fakeAPI struct {
	t   *testing.T
	mux *http.ServeMux
	srv *httptest.Server

	mu   sync.Mutex
	reqs []request
}

func newFake(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, mux: http.NewServeMux()}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mu.Lock()
	f.reqs = append(f.reqs, request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	f.mu.Unlock()
	if r.URL.Path != "/api/v1/openapi.json" && r.Header.Get("Authorization") != "Bearer "+testToken {
		f.t.Errorf("%s %s: Authorization = %q, want the bearer test token", r.Method, r.URL.Path, r.Header.Get("Authorization"))
	}
	if len(body) > 0 && r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("%s %s: Content-Type = %q with a body", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	f.mux.ServeHTTP(w, r)
}

// on registers a handler for a ServeMux pattern like "GET /api/v1/integrations".
func (f *fakeAPI) on(pattern string, h http.HandlerFunc) { f.mux.HandleFunc(pattern, h) }

// json registers a handler answering status with v as JSON.
func (f *fakeAPI) json(pattern string, status int, v any) {
	f.on(pattern, func(w http.ResponseWriter, r *http.Request) { writeTestJSON(w, status, v) })
}

func (f *fakeAPI) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func sendProblem(w http.ResponseWriter, status int, title, detail, hint string) {
	problem.Send(w, status, "test", title, detail, hint)
}

// result is one run of the command line.
type result struct {
	code           int
	stdout, stderr string
}

type runOpts struct {
	stdin    string
	terminal bool
	env      map[string]string
	ctx      context.Context
}

// run runs the CLI against url with the test token in the environment.
func run(t *testing.T, url string, args ...string) result {
	t.Helper()
	return runWith(t, url, runOpts{}, args...)
}

func runWith(t *testing.T, url string, o runOpts, args ...string) result {
	t.Helper()
	vars := map[string]string{"FORGEWAY_URL": url, "FORGEWAY_TOKEN": testToken}
	for k, v := range o.env {
		vars[k] = v
	}
	var stdout, stderr bytes.Buffer
	e := &env{
		stdin:      strings.NewReader(o.stdin),
		stdout:     &stdout,
		stderr:     &stderr,
		getenv:     func(k string) string { return vars[k] },
		httpClient: &http.Client{},
		terminal:   o.terminal,
		poll:       2 * time.Millisecond,
		reconnect:  func(int) time.Duration { return time.Millisecond },
		idle:       5 * time.Second,
	}
	ctx := o.ctx
	if ctx == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
	}
	code := e.run(ctx, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// lines splits output into lines without trailing spaces.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, strings.TrimRight(l, " "))
	}
	return out
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}
