package gitea_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitea"
	"github.com/forgeway/forgeway/internal/forge/gitea/giteafake"
)

// One description loader for the test binary: loading Gitea's description is the slow part.
var loader = apicheck.NewLoader()

// fixedNow is the clock of the fakes and clients of these tests.
func fixedNow() time.Time { return time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) }

type env struct {
	t    *testing.T
	fake *giteafake.Server
}

func newEnv(t *testing.T, o giteafake.Options) *env {
	t.Helper()
	if o.Now == nil {
		o.Now = fixedNow
	}
	o.Loader = loader
	return &env{t: t, fake: giteafake.New(t, o)}
}

// integration is an integration on the fake with tok.
func (e *env) integration(tok string) forge.Integration {
	return forge.Integration{ID: "int-gitea", BaseURL: e.fake.URL, Secrets: map[string]string{gitea.SecretToken: tok}}
}

// open configures and opens an integration with tok, over client (the fake's when nil).
func (e *env) open(tok string, client *http.Client) forge.Client {
	e.t.Helper()
	in := e.integration(tok)
	if _, err := gitea.New().Configure(&in); err != nil {
		e.t.Fatalf("Configure: %v", err)
	}
	if client == nil {
		client = e.fake.Client()
	}
	c, err := gitea.New().Open(context.Background(), in, forge.Env{HTTP: client, Now: fixedNow})
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	return c
}

// collect lists every repository, counting the pages.
func collect(t *testing.T, c forge.Client) ([]forge.Repository, int, error) {
	t.Helper()
	var all []forge.Repository
	pages := 0
	// A deadline, so that a fake left hanging fails the test instead of stalling it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.Repositories(ctx, func(page []forge.Repository) error {
		pages++
		all = append(all, page...)
		return nil
	})
	return all, pages, err
}

// inFlight is a transport that counts the requests on the wire at once.
type inFlight struct {
	next http.RoundTripper
	mu   sync.Mutex
	now  int
	peak int
}

func (f *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.now++
	f.peak = max(f.peak, f.now)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	}()
	return f.next.RoundTrip(r)
}

func (f *inFlight) max() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}

func checkByName(checks []forge.Check, name string) (forge.Check, bool) {
	for _, c := range checks {
		if c.Name == name {
			return c, true
		}
	}
	return forge.Check{}, false
}
