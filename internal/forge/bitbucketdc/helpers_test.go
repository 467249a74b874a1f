package bitbucketdc_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bitbucketfake"
)

// One description loader for the test binary: loading Bitbucket's description is the slow
// part of starting a fake.
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
	fake  *bitbucketfake.Server
	clock *clock
}

func newEnv(t *testing.T, o bitbucketfake.Options) *env {
	t.Helper()
	clk := newClock()
	o.Now, o.Loader = clk.Now, loader
	return &env{t: t, fake: bitbucketfake.New(t, o), clock: clk}
}

func (e *env) forgeEnv() forge.Env {
	return forge.Env{HTTP: e.fake.Client(), Now: e.clock.Now}
}

// adminToken gives login admin of project (created when missing) and returns a personal token
// with Project read and Repository admin, the permissions the documentation asks for.
func (e *env) adminToken(login, project string) string {
	e.fake.AddProject(bitbucketfake.Project{Key: project})
	e.fake.Grant(login, project, "PROJECT_ADMIN")
	return e.fake.IssueToken(bitbucketfake.Token{User: login, ProjectPermission: "PROJECT_READ", RepoPermission: "REPO_ADMIN"})
}

func (e *env) integration(token string) forge.Integration {
	return forge.Integration{ID: "int_test", BaseURL: e.fake.URL, Secrets: map[string]string{bitbucketdc.SecretToken: token}}
}

func (e *env) open(token string) forge.Client {
	e.t.Helper()
	in := e.integration(token)
	if _, err := bitbucketdc.New().Configure(&in); err != nil {
		e.t.Fatalf("Configure: %v", err)
	}
	c, err := bitbucketdc.New().Open(context.Background(), in, e.forgeEnv())
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

func repoOf(t *testing.T, c forge.Client, fullName string) forge.Repository {
	t.Helper()
	all, _, err := collect(t, c)
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	for _, r := range all {
		if r.FullName == fullName {
			return r
		}
	}
	t.Fatalf("repository %s not listed", fullName)
	return forge.Repository{}
}

// noToken fails the test when s shows the token.
func noToken(t *testing.T, s, token string) {
	t.Helper()
	if strings.Contains(s, token) {
		t.Fatalf("%q shows the token", s)
	}
}
