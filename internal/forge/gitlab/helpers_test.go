package gitlab_test

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitlab"
	"github.com/forgeway/forgeway/internal/forge/gitlab/gitlabfake"
)

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

// saved records what a client hands to Env.SaveSecrets.
type saved struct {
	mu    sync.Mutex
	calls []map[string]string
	fail  error
}

func (s *saved) save(_ context.Context, secrets map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.calls = append(s.calls, maps.Clone(secrets))
	return nil
}

func (s *saved) last() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return nil
	}
	return s.calls[len(s.calls)-1]
}

func (s *saved) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

type env struct {
	t     *testing.T
	fake  *gitlabfake.Server
	clock *clock
	saved *saved
}

// newEnv starts a fake on a settable clock, at 2026-11-20 12:00 UTC or, when o.Now is set, at
// o.Now().
func newEnv(t *testing.T, o gitlabfake.Options) *env {
	t.Helper()
	clk := newClock()
	if o.Now != nil {
		clk.t = o.Now()
	}
	o.Now = clk.Now
	return &env{t: t, fake: gitlabfake.New(t, o), clock: clk, saved: &saved{}}
}

func (e *env) forgeEnv() forge.Env {
	return forge.Env{HTTP: e.fake.Client(), Now: e.clock.Now, SaveSecrets: e.saved.save}
}

// tokenIntegration is an integration with a personal access token of user (scope api unless
// scopes are given).
func (e *env) tokenIntegration(user string, scopes ...string) (forge.Integration, string) {
	tok := e.fake.AddToken(gitlabfake.Token{Username: user, Scopes: scopes})
	return forge.Integration{
		ID: "int-token", BaseURL: e.fake.URL,
		Settings: map[string]string{gitlab.SettingAuth: gitlab.AuthToken},
		Secrets:  map[string]string{gitlab.SecretToken: tok},
	}, tok
}

const redirectURI = "https://forgeway.example.com/callback/gitlab"

// oauthIntegration is an integration authenticated with an OAuth application's token for user.
func (e *env) oauthIntegration(user string) (forge.Integration, string) {
	clientID, secret := e.fake.AddOAuthApp(redirectURI)
	access, refresh := e.fake.IssueOAuthToken(clientID, user)
	return forge.Integration{
		ID: "int-oauth", BaseURL: e.fake.URL,
		Settings: map[string]string{gitlab.SettingAuth: gitlab.AuthOAuth, gitlab.SettingClientID: clientID, gitlab.SettingRedirectURI: redirectURI},
		Secrets: map[string]string{
			gitlab.SecretClientSecret: secret, gitlab.SecretAccessToken: access, gitlab.SecretRefreshToken: refresh,
			gitlab.SecretTokenExpires: e.clock.Now().Add(2 * time.Hour).Format(time.RFC3339),
		},
	}, clientID
}

func (e *env) open(in forge.Integration) forge.Client {
	e.t.Helper()
	if _, err := gitlab.New().Configure(&in); err != nil {
		e.t.Fatalf("Configure: %v", err)
	}
	c, err := gitlab.New().Open(context.Background(), in, e.forgeEnv())
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	return c
}

// collect lists every repository, counting pages.
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

// repoOf finds a repository by full name through discovery.
func repoOf(t *testing.T, c forge.Client, fullName string) forge.Repository {
	t.Helper()
	all, _, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if r.FullName == fullName {
			return r
		}
	}
	t.Fatalf("%s not discovered", fullName)
	return forge.Repository{}
}

// noSecret fails the test when err's text contains one of the secrets.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error %q reveals a secret", err)
		}
	}
}

// gitlabOpen configures and opens an integration with env.
func gitlabOpen(in forge.Integration, env forge.Env) (forge.Client, error) {
	if _, err := gitlab.New().Configure(&in); err != nil {
		return nil, err
	}
	return gitlab.New().Open(context.Background(), in, env)
}
