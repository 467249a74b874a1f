package github

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
)

// One description loader and one RSA key for the test binary: loading GitHub's description
// and generating keys are the slow parts.
var (
	loader  = apicheck.NewLoader()
	testKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
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

type env struct {
	t     *testing.T
	fake  *githubfake.Server
	clock *clock
}

func newEnv(t *testing.T, o githubfake.Options) *env {
	t.Helper()
	clk := newClock()
	o.Now, o.Loader, o.AppKey = clk.Now, loader, testKey()
	return &env{t: t, fake: githubfake.New(t, o), clock: clk}
}

func (e *env) forgeEnv() forge.Env {
	return forge.Env{HTTP: e.fake.Client(), Now: e.clock.Now}
}

// appIntegration registers an App on the fake and returns its integration.
func (e *env) appIntegration() (forge.Integration, githubfake.App) {
	a := e.fake.AddApp(githubfake.App{Key: testKey()})
	in := forge.Integration{
		ID:      "int-app",
		BaseURL: e.fake.URL,
		Settings: map[string]string{
			SettingAuth: AuthApp, SettingAppID: strconv.FormatInt(a.ID, 10), SettingAppSlug: a.Slug, SettingClientID: a.ClientID,
		},
		Secrets: map[string]string{SecretPrivateKey: a.PrivateKeyPEM(), SecretClientSecret: a.ClientSecret},
	}
	return in, a
}

func (e *env) tokenIntegration(login string) (forge.Integration, string) {
	tok := e.fake.IssuePAT(githubfake.PAT{Login: login})
	return forge.Integration{
		ID: "int-token", BaseURL: e.fake.URL,
		Settings: map[string]string{SettingAuth: AuthToken},
		Secrets:  map[string]string{SecretToken: tok},
	}, tok
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

// collect lists every repository, checking pages arrive in order.
func collect(t *testing.T, c *Client) ([]forge.Repository, int, error) {
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
