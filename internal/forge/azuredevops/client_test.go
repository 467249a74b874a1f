package azuredevops

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/azurefake"
)

// TestErrorMapping checks every failure a call can meet maps as the contract says, with
// Azure DevOps' own message and never the token.
func TestErrorMapping(t *testing.T) {
	e := newEnv(t, azurefake.Options{})
	tok := e.admin()
	e.fake.AddRepositories("Fiber", 1)
	c := e.open(e.integration(tok))
	ctx := context.Background()
	list := func() error { _, err := collect(t, c); return err }

	tests := []struct {
		name    string
		arrange func()
		check   func(t *testing.T, err error)
	}{
		{"403", func() { e.fake.FailNext("/_apis/projects", 403, nil) }, func(t *testing.T, err error) {
			var he *forge.HostError
			if !errors.Is(err, forge.ErrForbidden) || !errors.As(err, &he) || he.Status != 403 || he.Op != "list projects (page 1)" {
				t.Errorf("got %v", err)
			}
		}},
		{"404", func() { e.fake.FailNext("/_apis/projects", 404, nil) }, func(t *testing.T, err error) {
			if !errors.Is(err, forge.ErrNotFound) {
				t.Errorf("got %v", err)
			}
		}},
		{"429 with Retry-After", func() { e.fake.FailNext("*", 429, http.Header{"Retry-After": {"30"}}) }, func(t *testing.T, err error) {
			var rl *forge.RateLimitError
			if !errors.As(err, &rl) || !rl.Reset.Equal(e.clock.Now().Add(30*time.Second)) || !strings.Contains(rl.Detail, "TF400733") {
				t.Errorf("got %#v", err)
			}
		}},
		{"503 with Retry-After", func() { e.fake.FailNext("*", 503, http.Header{"Retry-After": {"5"}}) }, func(t *testing.T, err error) {
			var rl *forge.RateLimitError
			if !errors.As(err, &rl) || !rl.Reset.Equal(e.clock.Now().Add(5*time.Second)) {
				t.Errorf("got %#v", err)
			}
		}},
		{"500", func() { e.fake.FailNext("*", 500, nil) }, func(t *testing.T, err error) {
			var he *forge.HostError
			if !errors.As(err, &he) || he.Status != 500 || he.Err != nil {
				t.Errorf("got %v", err)
			}
		}},
		{"revoked token", func() { e.fake.RevokePAT(tok) }, func(t *testing.T, err error) {
			if !errors.Is(err, forge.ErrUnauthorized) || !strings.Contains(err.Error(), "TF400813") {
				t.Errorf("got %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.arrange()
			err := list()
			tc.check(t, err)
			if err != nil && strings.Contains(err.Error(), tok) {
				t.Errorf("error reveals the token: %v", err)
			}
		})
	}
	if _, err := c.Repository(ctx, "x", forge.Repository{Group: "Fiber"}); err == nil || strings.Contains(err.Error(), tok) {
		t.Errorf("Repository with a revoked token: %v", err)
	}
}

func TestScopeMissingIsUnauthorized(t *testing.T) {
	e := newEnv(t, azurefake.Options{})
	e.fake.AddRepositories("Fiber", 1)
	tok := e.fake.IssuePAT(azurefake.PAT{User: "carol@example.com", Scopes: []string{azurefake.ScopeProject}})
	_, err := collect(t, e.open(e.integration(tok)))
	if !errors.Is(err, forge.ErrUnauthorized) {
		t.Errorf("listing repositories without Code (Read): %v", err)
	}
}

func TestSignInPageAndOddAnswers(t *testing.T) {
	answers := map[string]func(w http.ResponseWriter){
		"/sign-in/_apis/projects": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNonAuthoritativeInfo)
			_, _ = w.Write([]byte("<html>Sign in</html>"))
		},
		"/garbled/_apis/projects": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"count": "many"`))
		},
		"/bom/_apis/projects": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("\xef\xbb\xbf" + `{"count":0,"value":[]}`))
		},
		"/plain/_apis/projects": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("upstream broke"))
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { answers[r.URL.Path](w) }))
	defer srv.Close()
	open := func(org string) *Client {
		c, err := New().Open(context.Background(), forge.Integration{BaseURL: srv.URL + "/" + org, Secrets: map[string]string{SecretToken: "t0k3n"}}, forge.Env{HTTP: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		return c.(*Client)
	}
	_, err := collect(t, open("sign-in"))
	if !errors.Is(err, forge.ErrUnauthorized) || !strings.Contains(err.Error(), "sign-in page") {
		t.Errorf("203 sign-in page: %v", err)
	}
	_, err = collect(t, open("garbled"))
	var he *forge.HostError
	if !errors.As(err, &he) || !strings.Contains(he.Message, "not the JSON expected") {
		t.Errorf("garbled answer: %v", err)
	}
	if pages, err := collect(t, open("bom")); err != nil || len(pages) != 0 {
		t.Errorf("answer with a byte-order mark: %v", err)
	}
	_, err = collect(t, open("plain"))
	if !errors.As(err, &he) || he.Status != 502 || he.Message != "Bad Gateway" {
		t.Errorf("plain-text 502: %v", err)
	}

	srv.Close()
	_, err = collect(t, open("bom"))
	if !errors.As(err, &he) || !strings.Contains(he.Message, "cannot reach Azure DevOps") || strings.Contains(err.Error(), "t0k3n") {
		t.Errorf("closed server: %v", err)
	}
}

func TestBudgetFromRateLimitHeaders(t *testing.T) {
	e := newEnv(t, azurefake.Options{RateLimit: 10})
	tok := e.admin()
	e.fake.AddRepositories("Fiber", 1)
	c := e.open(e.integration(tok))
	if _, err := collect(t, c); err != nil {
		t.Fatal(err)
	}
	if b := c.Budget(); b != (forge.Budget{}) {
		t.Errorf("budget before Azure DevOps reports one: %+v", b)
	}
	for range 4 {
		if _, err := collect(t, c); err != nil {
			t.Fatal(err)
		}
	}
	b := c.Budget()
	if b.Limit != 10 || b.Remaining != 0 || !b.Reset.After(e.clock.Now()) {
		t.Errorf("budget %+v", b)
	}
	_, err := collect(t, c)
	var rl *forge.RateLimitError
	if !errors.As(err, &rl) || !rl.Reset.After(e.clock.Now()) {
		t.Errorf("spent budget: %v", err)
	}
}
