// Package e2e tests Forgeway end to end: the real server (store, jobs, ingest, processing,
// catalog, API) on loopback, against the fake hosts and real git.
package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/store/storetest"
	"github.com/forgeway/forgeway/internal/testserver"
)

// env is one running Forgeway (the conformance suite's harness) with the e2e helpers.
type env struct{ *testserver.Forgeway }

func newEnv(t testing.TB, url, token string) *env {
	return &env{&testserver.Forgeway{T: t, URL: url, Token: token, HTTP: &http.Client{Timeout: 10 * time.Second}}}
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
	return &env{testserver.Start(t, e.dsn(t), extra...)}
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

// idempotentAnswer is the answer the API keeps for replays of an Idempotency-Key.
type idempotentAnswer struct {
	Body   []byte `json:"body"`
	Sealed bool   `json:"sealed"`
}

// savedAnswer reads the answer kept for the admin token's request (route "METHOD /path")
// under an Idempotency-Key: the stored record as it is, and decoded.
func (e *env) savedAnswer(route, key string) ([]byte, idempotentAnswer) {
	e.T.Helper()
	ctx := context.Background()
	tok, err := e.App.Store.FindAPIToken(ctx, api.HashToken(e.Token))
	if err != nil {
		e.T.Fatal(err)
	}
	sum := sha256.Sum256([]byte(tok.ID + "\x00" + route + "\x00" + key))
	saved, err := e.App.Store.GetKV(ctx, "idem/"+hex.EncodeToString(sum[:]))
	if err != nil {
		e.T.Fatalf("the answer to %s was not kept for replays: %v", route, err)
	}
	var answer idempotentAnswer
	if err := json.Unmarshal(saved, &answer); err != nil {
		e.T.Fatal(err)
	}
	return saved, answer
}
