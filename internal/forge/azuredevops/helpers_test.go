package azuredevops

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/azurefake"
)

// loader shares the loaded API descriptions between the fakes of the test binary.
var loader = apicheck.NewLoader()

// clock is a settable time source shared by a fake and a client.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     *testing.T
	fake  *azurefake.Server
	clock *clock
	// recorder sees every request the client sends (wrapping the fake's transport).
	recorder *recorder
}

func newEnv(t *testing.T, o azurefake.Options) *env {
	t.Helper()
	clk := newClock()
	o.Now, o.Loader = clk.Now, loader
	f := azurefake.New(t, o)
	return &env{t: t, fake: f, clock: clk, recorder: &recorder{next: f.Client().Transport}}
}

// admin adds a Project Administrator with a token of the documented scopes.
func (e *env) admin() string {
	e.fake.AddUser(azurefake.User{DisplayName: "Alice Admin", UniqueName: "alice@example.com", EditSubscriptions: true})
	return e.fake.IssuePAT(azurefake.PAT{User: "alice@example.com"})
}

func (e *env) integration(token string, settings ...string) forge.Integration {
	in := forge.Integration{ID: "int-ado", BaseURL: e.fake.BaseURL, Settings: map[string]string{}, Secrets: map[string]string{SecretToken: token}}
	for i := 0; i+1 < len(settings); i += 2 {
		in.Settings[settings[i]] = settings[i+1]
	}
	return in
}

func (e *env) forgeEnv() forge.Env {
	return forge.Env{HTTP: &http.Client{Transport: e.recorder}, Now: e.clock.Now}
}

func (e *env) open(in forge.Integration) *Client {
	e.t.Helper()
	if _, err := New().Configure(&in); err != nil {
		e.t.Fatalf("Configure: %v", err)
	}
	c, err := New().Open(context.Background(), in, e.forgeEnv())
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	return c.(*Client)
}

// recorder records the requests a client sends and how many are in flight at most.
type recorder struct {
	next http.RoundTripper

	mu          sync.Mutex
	requests    []*http.Request
	inFlight    int
	maxInFlight int
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.requests = append(r.requests, req.Clone(context.Background()))
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}()
	return r.next.RoundTrip(req)
}

// sent lists "METHOD path" of the requests sent so far.
func (r *recorder) sent() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, q := range r.requests {
		out = append(out, q.Method+" "+q.URL.Path)
	}
	return out
}

func (r *recorder) count(substr string) int {
	n := 0
	for _, s := range r.sent() {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// collect lists every repository, page by page.
func collect(t *testing.T, c *Client) ([][]forge.Repository, error) {
	t.Helper()
	var pages [][]forge.Repository
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.Repositories(ctx, func(page []forge.Repository) error {
		pages = append(pages, page)
		return nil
	})
	return pages, err
}
