package gitea_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitea"
	"github.com/forgeway/forgeway/internal/forge/gitea/giteafake"
	"github.com/forgeway/forgeway/internal/hostclient"
)

// TestErrorMapping checks every way a call can fail against the fake, as Gitea answers: the
// sentinel, the status, Gitea's own message, and never the token.
func TestErrorMapping(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	tok := e.fake.IssueToken("alice", "write:repository", "read:user")
	e.fake.AddRepository(giteafake.Repo{FullName: "alice/r"})
	e.fake.AddRepository(giteafake.Repo{FullName: "bob/secret", Private: true})
	e.fake.AddRepository(giteafake.Repo{FullName: "bob/open"})
	ctx := context.Background()
	repo := forge.Repository{FullName: "alice/r"}

	tests := []struct {
		name    string
		tok     string
		arrange func()
		call    func(c forge.Client) error
		is      error
		status  int
		message string
	}{
		{"revoked token", "revoked", nil, func(c forge.Client) error { _, err := c.Branches(ctx, repo); return err },
			forge.ErrUnauthorized, 401, "invalid username, password or token"},
		{"scope missing", e.fake.IssueToken("alice", "read:repository"), nil,
			func(c forge.Client) error {
				_, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: "https://f.example/h", Secret: "s"})
				return err
			},
			forge.ErrForbidden, 403, "[write:repository]"},
		{"not an administrator", tok, nil,
			func(c forge.Client) error {
				_, err := c.Hooks(ctx, forge.Repository{FullName: "bob/open"}, "https://f.example/h")
				return err
			},
			forge.ErrForbidden, 403, "admin"},
		{"private repository of another", tok, nil,
			func(c forge.Client) error {
				_, err := c.Branches(ctx, forge.Repository{FullName: "bob/secret"})
				return err
			},
			forge.ErrNotFound, 404, "The target couldn't be found."},
		{"conflict", tok, nil,
			func(c forge.Client) error {
				_, err := c.CreateBranch(ctx, repo, "main", e.fake.Branches("alice/r")["main"], nil)
				return err
			},
			nil, 409, "The branch already exists."},
		{"server error", tok, func() { e.fake.FailNext("/repos/alice/r/branches", 500, nil) },
			func(c forge.Client) error { _, err := c.Branches(ctx, repo); return err },
			nil, 500, "Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.arrange != nil {
				tt.arrange()
			}
			err := tt.call(e.open(tt.tok, nil))
			var he *forge.HostError
			if !errors.As(err, &he) {
				t.Fatalf("error %v (%T), want a *forge.HostError", err, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, sentinel := range []error{forge.ErrUnauthorized, forge.ErrForbidden, forge.ErrNotFound} {
				if sentinel != tt.is && errors.Is(err, sentinel) {
					t.Errorf("error %v is also %v", err, sentinel)
				}
			}
			if he.Status != tt.status || !strings.Contains(he.Message, tt.message) || he.Op == "" {
				t.Errorf("HostError %+v, want status %d and a message with %q", he, tt.status, tt.message)
			}
			if strings.Contains(err.Error(), tt.tok) {
				t.Error("the error shows the token")
			}
		})
	}
}

func TestRateLimitErrors(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	tok := e.fake.IssueToken("alice", "all")
	e.fake.AddRepository(giteafake.Repo{FullName: "alice/r"})
	c := e.open(tok, nil)
	ctx := context.Background()
	tests := []struct {
		status int
		header http.Header
		reset  time.Duration
	}{
		{429, http.Header{"Retry-After": {"30"}}, 30 * time.Second},
		{429, nil, time.Minute}, // no Retry-After: a minute
		{503, http.Header{"Retry-After": {"5"}}, 5 * time.Second},
		{403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Reset": {"1795176000"}}, time.Unix(1795176000, 0).Sub(fixedNow())},
	}
	for _, tt := range tests {
		e.fake.FailNext("/repos/alice/r/branches", tt.status, tt.header)
		_, err := c.Branches(ctx, forge.Repository{FullName: "alice/r"})
		var rl *forge.RateLimitError
		if !errors.As(err, &rl) {
			t.Fatalf("%d %v: error %v, want a *forge.RateLimitError", tt.status, tt.header, err)
		}
		if !rl.Reset.Equal(fixedNow().Add(tt.reset)) || !strings.Contains(rl.Detail, "list the branches of alice/r") {
			t.Errorf("%d: reset %s detail %q, want reset %s", tt.status, rl.Reset, rl.Detail, fixedNow().Add(tt.reset))
		}
	}
	// A 503 without Retry-After is a server error, not a rate limit.
	e.fake.FailNext("/repos/alice/r/branches", 503, nil)
	_, err := c.Branches(ctx, forge.Repository{FullName: "alice/r"})
	var rl *forge.RateLimitError
	if errors.As(err, &rl) || err == nil {
		t.Errorf("plain 503: %v", err)
	}
}

// TestBudget reads the headers of a rate-limiting proxy in front of Gitea; Gitea itself sends
// none, and the budget stays zero.
func TestBudget(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	c := e.open(e.fake.IssueToken("alice", "all"), nil)
	if _, _, err := collect(t, c); err != nil {
		t.Fatal(err)
	}
	if b := c.Budget(); b != (forge.Budget{}) {
		t.Errorf("budget without a proxy: %+v", b)
	}
	p := newEnv(t, giteafake.Options{RateLimit: 100})
	c = p.open(p.fake.IssueToken("alice", "all"), nil)
	if _, _, err := collect(t, c); err != nil {
		t.Fatal(err)
	}
	if b := c.Budget(); b.Limit != 100 || b.Remaining != 99 || !b.Reset.Equal(fixedNow().Add(time.Hour)) {
		t.Errorf("budget %+v", b)
	}
}

// TestTokenNeverInErrors runs against a server that echoes what it receives, as a broken proxy
// might: the token is redacted from every error.
func TestTokenNeverInErrors(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef01234567"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(`{"message":"upstream refused ` + r.Header.Get("Authorization") + `"}`))
	}))
	defer echo.Close()
	in := forge.Integration{BaseURL: echo.URL, Secrets: map[string]string{gitea.SecretToken: tok}}
	c, err := gitea.New().Open(context.Background(), in, forge.Env{HTTP: echo.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Branches(context.Background(), forge.Repository{FullName: "a/b"})
	if err == nil || strings.Contains(err.Error(), tok) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error %v", err)
	}
	as := &forge.UserCredential{Login: "ann", Token: "ann-secret-token"}
	_, err = c.CreatePullRequest(context.Background(), forge.Repository{FullName: "a/b"}, forge.NewPullRequest{Title: "t", Source: "x", Target: "y"}, as)
	if err == nil || strings.Contains(err.Error(), as.Token) {
		t.Errorf("acting person's error %v", err)
	}
	for _, ch := range c.Diagnose(context.Background()) {
		if strings.Contains(ch.Detail+ch.Hint, tok) {
			t.Errorf("check %q shows the token", ch.Name)
		}
	}
}

// TestListingThroughHostclient lists through the core's HTTP client, as Forgeway does: a 429
// with Retry-After and a 502 are waited out and retried, and nothing is lost.
func TestListingThroughHostclient(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	tok := e.fake.IssueToken("alice", "all")
	e.fake.AddRepositories("alice", 120)
	hc, err := hostclient.New(hostclient.Options{RetryBackoff: time.Millisecond, MaxRetryWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := e.open(tok, hc.HTTP())
	e.fake.FailNext("/user/repos", 429, http.Header{"Retry-After": {"1"}})
	e.fake.FailNext("/user/repos", 502, nil)
	start := time.Now()
	repos, pages, err := collect(t, c)
	if err != nil || len(repos) != 120 || pages != 3 {
		t.Fatalf("%d repositories in %d pages: %v", len(repos), pages, err)
	}
	if time.Since(start) < time.Second {
		t.Error("the listing did not wait for Retry-After")
	}
}
