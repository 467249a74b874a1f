package bitbucketdc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bitbucketfake"
	"github.com/forgeway/forgeway/internal/hostclient"
)

func TestErrorMapping(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{})
	tok := e.adminToken("alice", "PRJ")
	e.fake.AddRepository(bitbucketfake.Repo{Project: "PRJ", Slug: "widgets"})
	c := e.open(tok)
	ctx := context.Background()
	repo := forge.Repository{FullName: "PRJ/widgets"}
	branches := func() error { _, err := c.Branches(ctx, repo); return err }

	for _, tc := range []struct {
		name      string
		arrange   func()
		call      func() error
		sentinel  error
		status    int
		rateLimit time.Duration // > 0: a *forge.RateLimitError resetting that long after now
		msgHas    string
	}{
		{"missing repository", func() {}, func() error { _, err := c.Branches(ctx, forge.Repository{FullName: "PRJ/gone"}); return err },
			forge.ErrNotFound, 404, 0, "Repository PRJ/gone does not exist."},
		{"missing project", func() {}, func() error { _, err := c.Branches(ctx, forge.Repository{FullName: "NOPE/x"}); return err },
			forge.ErrNotFound, 404, 0, "Project NOPE does not exist."},
		{"forbidden", func() { e.fake.FailNext("", http.StatusForbidden, nil) }, branches, forge.ErrForbidden, 403, 0, "Forbidden"},
		{"server error", func() { e.fake.FailNext("", http.StatusInternalServerError, nil) }, branches, nil, 500, 0, "Internal Server Error"},
		{"unavailable", func() { e.fake.FailNext("", http.StatusServiceUnavailable, nil) }, branches, nil, 503, 0, "Service Unavailable"},
		{"unavailable with Retry-After", func() {
			e.fake.FailNext("", http.StatusServiceUnavailable, http.Header{"Retry-After": {"30"}})
		}, branches, nil, 0, 30 * time.Second, "Service Unavailable"},
		{"rate limited", func() {
			e.fake.FailNext("", http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}, "X-Ratelimit-Limit": {"60"}})
		}, branches, nil, 0, 7 * time.Second, "Rate limit exceeded"},
		{"rate limited without Retry-After", func() { e.fake.FailNext("", http.StatusTooManyRequests, nil) }, branches, nil, 0, time.Minute, "Rate limit exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.arrange()
			err := tc.call()
			if err == nil {
				t.Fatal("no error")
			}
			noToken(t, err.Error(), tok)
			if tc.rateLimit > 0 {
				var rl *forge.RateLimitError
				if !errors.As(err, &rl) || !rl.Reset.Equal(e.clock.Now().Add(tc.rateLimit)) || !strings.Contains(rl.Detail, tc.msgHas) {
					t.Errorf("error %v (%T); want a RateLimitError resetting in %s", err, err, tc.rateLimit)
				}
				return
			}
			var he *forge.HostError
			if !errors.As(err, &he) || he.Status != tc.status || !strings.Contains(he.Message, tc.msgHas) || he.Op == "" {
				t.Errorf("error %#v; want a HostError %d saying %q", err, tc.status, tc.msgHas)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("error %v is not %v", err, tc.sentinel)
			}
			for _, s := range []error{forge.ErrNotFound, forge.ErrForbidden, forge.ErrUnauthorized} {
				if s != tc.sentinel && errors.Is(err, s) {
					t.Errorf("error %v is also %v", err, s)
				}
			}
		})
	}

	t.Run("budget after a refusal", func(t *testing.T) {
		e.fake.FailNext("", http.StatusTooManyRequests, http.Header{"Retry-After": {"9"}, "X-Ratelimit-Limit": {"60"}})
		_ = branches()
		b := c.Budget()
		if b.Limit != 60 || b.Remaining != 0 || !b.Reset.Equal(e.clock.Now().Add(9*time.Second)) {
			t.Errorf("Budget = %+v", b)
		}
	})

	t.Run("revoked token", func(t *testing.T) {
		e.fake.RevokeToken(tok)
		err := branches()
		var he *forge.HostError
		if !errors.Is(err, forge.ErrUnauthorized) || !errors.As(err, &he) || he.Status != 401 || !strings.Contains(he.Message, "Authentication failed") {
			t.Errorf("error %v; want ErrUnauthorized", err)
		}
		if errors.Is(err, forge.ErrForbidden) {
			t.Error("a refused token reads as a missing permission")
		}
		noToken(t, err.Error(), tok)
	})
}

func TestExpiredToken(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{})
	e.fake.AddProject(bitbucketfake.Project{Key: "PRJ"})
	tok := e.fake.IssueToken(bitbucketfake.Token{Project: "PRJ", ProjectPermission: "PROJECT_READ", RepoPermission: "REPO_ADMIN", Expires: e.clock.Now().Add(time.Hour)})
	c := e.open(tok)
	if _, _, err := collect(t, c); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	e.clock.Add(2 * time.Hour)
	if _, _, err := collect(t, c); !errors.Is(err, forge.ErrUnauthorized) {
		t.Errorf("after expiry: %v, want ErrUnauthorized", err)
	}
}

// An answer that is not Bitbucket's (a proxy's page) says so.
func TestNotBitbucketAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>bad gateway</html>"))
	}))
	defer srv.Close()
	c, _ := bitbucketdc.New().Open(context.Background(), forge.Integration{BaseURL: srv.URL, Secrets: map[string]string{bitbucketdc.SecretToken: "t"}}, forge.Env{HTTP: srv.Client()})
	_, err := c.Branches(context.Background(), forge.Repository{FullName: "P/r"})
	var he *forge.HostError
	if !errors.As(err, &he) || he.Status != 502 || !strings.Contains(he.Message, "text/html") {
		t.Errorf("error %v", err)
	}
}

// Behind the core's HTTP client, 503s and 429s with Retry-After are waited out and retried:
// the listing completes with nothing lost.
func TestBackoffThroughHostClient(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{MaxPageSize: 5})
	tok := e.adminToken("alice", "PRJ")
	made := e.fake.AddRepositories("PRJ", 12)
	hc, err := hostclient.New(hostclient.Options{RetryBackoff: time.Millisecond, MaxRetryWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// hostclient builds its own transport; the fake is plain HTTP on loopback, so that works.
	c, err := bitbucketdc.New().Open(context.Background(), e.integration(tok), forge.Env{HTTP: hc.HTTP(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.fake.FailNext("/repos?start=5", http.StatusServiceUnavailable, nil)
	e.fake.FailNext("/repos?start=5", http.StatusBadGateway, nil)
	e.fake.FailNext("/repos?start=10", http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}})
	start := time.Now()
	all, _, err := collect(t, c)
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	if len(all) != len(made) {
		t.Errorf("%d repositories, want %d", len(all), len(made))
	}
	if time.Since(start) < time.Second {
		t.Error("the 429's Retry-After was not waited for")
	}
}
