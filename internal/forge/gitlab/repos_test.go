package gitlab_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitlab/gitlabfake"
	"github.com/forgeway/forgeway/internal/hostclient"
)

func TestRepositoriesKeysetPages(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.tokenIntegration("ana")
	e.fake.AddGroup("acme/platform")
	e.fake.AddMember("acme", "ana", gitlabfake.Developer)
	names := e.fake.AddProjects("acme/platform", 230)
	own := e.fake.AddProject(gitlabfake.Project{FullPath: "ana/dotfiles", Visibility: "public", Description: "mine", DefaultBranch: "trunk"})
	e.fake.AddProject(gitlabfake.Project{FullPath: "other/secret"})                       // not a member: unseen
	e.fake.AddProject(gitlabfake.Project{FullPath: "other/public", Visibility: "public"}) // visible, but not a member
	e.fake.AddProject(gitlabfake.Project{FullPath: "other/shared", Archived: true})
	e.fake.AddMember("other/shared", "ana", gitlabfake.Maintainer)
	e.fake.AddProject(gitlabfake.Project{FullPath: "acme/readonly", ForkedFrom: own})
	e.fake.AddMember("acme/readonly", "ana", gitlabfake.Reporter) // the group's Developer role wins
	c := e.open(in)

	all, pages, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 233 || pages != 3 {
		t.Fatalf("%d projects in %d pages, want 233 in 3", len(all), pages)
	}
	for i := 1; i < len(all); i++ {
		a, _ := strconv.Atoi(all[i-1].HostID)
		b, _ := strconv.Atoi(all[i].HostID)
		if a >= b {
			t.Fatalf("not in id order at %d: %s then %s", i, all[i-1].HostID, all[i].HostID)
		}
	}
	if n := e.fake.RequestCount("/projects"); n != 3 {
		t.Errorf("%d listing requests, want 3 (keyset pages of 100)", n)
	}
	byName := map[string]forge.Repository{}
	for _, r := range all {
		byName[r.FullName] = r
	}
	first := byName[names[0]]
	want := forge.Repository{
		HostID: first.HostID, FullName: "acme/platform/project-0001", Name: "project-0001", Owner: "acme/platform",
		Group: "acme/platform", DefaultBranch: "main", Visibility: "private", Private: true,
		CloneURL: e.fake.URL + "/acme/platform/project-0001.git", WebURL: e.fake.URL + "/acme/platform/project-0001",
		Permission: forge.PermissionWrite,
	}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("acme/platform/project-0001 (-want +got):\n%s", diff)
	}
	if r := byName["ana/dotfiles"]; r.HostID != strconv.FormatInt(own, 10) || r.Private || r.Visibility != "public" ||
		r.Description != "mine" || r.DefaultBranch != "trunk" || r.Permission != forge.PermissionAdmin || r.Group != "ana" {
		t.Errorf("ana/dotfiles mapped to %+v", r)
	}
	if r := byName["other/shared"]; !r.Archived || r.Permission != forge.PermissionAdmin {
		t.Errorf("other/shared mapped to %+v", r)
	}
	if r := byName["acme/readonly"]; !r.Fork || r.Permission != forge.PermissionWrite {
		t.Errorf("acme/readonly mapped to %+v", r)
	}
	for _, hidden := range []string{"other/secret", "other/public"} {
		if _, ok := byName[hidden]; ok {
			t.Errorf("%s listed; the token's user is not a member", hidden)
		}
	}
	if b := c.Budget(); b.Limit != 2000 || b.Remaining != 2000-3 || b.Reset.IsZero() {
		t.Errorf("budget %+v", b)
	}
}

// TestRepositoriesFetchAhead: while fn works on a page, the next one is on its way.
func TestRepositoriesFetchAhead(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.tokenIntegration("ana")
	e.fake.AddGroup("acme")
	e.fake.AddMember("acme", "ana", gitlabfake.Maintainer)
	e.fake.AddProjects("acme", 201)
	c := e.open(in)
	calls := 0
	err := c.Repositories(context.Background(), func(page []forge.Repository) error {
		calls++
		if calls == 1 {
			deadline := time.Now().Add(10 * time.Second)
			for e.fake.RequestCount("/projects") < 2 {
				if time.Now().After(deadline) {
					t.Fatal("the second page was not requested while the first was handled")
				}
				time.Sleep(time.Millisecond)
			}
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("%d pages, %v", calls, err)
	}
}

func TestRepositoriesStops(t *testing.T) {
	// Each listing runs on a fake of its own: a page the first listing abandoned may still
	// reach its fake after the listing returned, and would take the failure meant for the
	// second.
	listing := func() (*env, forge.Client, string) {
		e := newEnv(t, gitlabfake.Options{})
		in, tok := e.tokenIntegration("ana")
		e.fake.AddGroup("acme")
		e.fake.AddMember("acme", "ana", gitlabfake.Maintainer)
		e.fake.AddProjects("acme", 250)
		return e, e.open(in), tok
	}
	_, c, _ := listing()

	stop := errors.New("enough")
	calls := 0
	err := c.Repositories(context.Background(), func([]forge.Repository) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("fn's error: %v after %d calls", err, calls)
	}

	// A page that fails ends the listing with the page's error, after the pages before it.
	e, c, tok := listing()
	e.fake.FailNext("/projects?id_after="+strconv.FormatInt(e.fake.ProjectID("acme/project-0100"), 10), 500, nil)
	calls = 0
	err = c.Repositories(context.Background(), func([]forge.Repository) error { calls++; return nil })
	var he *forge.HostError
	if !errors.As(err, &he) || he.Status != 500 || calls != 1 {
		t.Fatalf("a failing second page: %v after %d pages", err, calls)
	}
	noSecret(t, err, tok)
}

// TestRepositoriesConditional: through the core's client, an unchanged listing is answered
// 304 from the cache, page after page.
func TestRepositoriesConditional(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.tokenIntegration("ana")
	e.fake.AddGroup("acme")
	e.fake.AddMember("acme", "ana", gitlabfake.Maintainer)
	e.fake.AddProjects("acme", 150)
	var cached atomic.Int32
	hc, err := hostclient.New(hostclient.Options{Cache: hostclient.NewMemoryCache(), CacheScope: "gl", Now: e.clock.Now,
		Observer: func(o hostclient.ObservedRequest) {
			if o.Cached {
				cached.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := gitlabOpen(in, forge.Env{HTTP: hc.HTTP(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 150 || !cmp.Equal(first, second) || cached.Load() != 2 {
		t.Fatalf("%d then %d projects, %d answers from the cache (want 2)", len(first), len(second), cached.Load())
	}
}

func TestRepository(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.tokenIntegration("ana")
	id := e.fake.AddProject(gitlabfake.Project{FullPath: "ana/tool", Description: "x"})
	c := e.open(in)
	ctx := context.Background()
	hostID := strconv.FormatInt(id, 10)

	r, err := c.Repository(ctx, hostID, forge.Repository{FullName: "ana/old-name"})
	if err != nil {
		t.Fatal(err)
	}
	if r.HostID != hostID || r.FullName != "ana/tool" || r.Description != "x" || r.Permission != forge.PermissionAdmin {
		t.Errorf("Repository = %+v", r)
	}
	// Without an id, the full path addresses it.
	if r2, err := c.Repository(ctx, "", forge.Repository{FullName: "ana/tool"}); err != nil || r2.HostID != hostID {
		t.Errorf("by path: %+v, %v", r2, err)
	}
	_, err = c.Repository(ctx, "999999", forge.Repository{FullName: "ana/gone"})
	var he *forge.HostError
	if !errors.Is(err, forge.ErrNotFound) || !errors.As(err, &he) || he.Message != "404 Project Not Found" {
		t.Errorf("a missing project: %v", err)
	}
	if _, err := c.Repository(ctx, "", forge.Repository{}); err == nil {
		t.Error("a repository with neither id nor path was fetched")
	}
}

// TestRepositoriesOtherOrigin: GitLab's page links carry its external URL; when the
// integration reaches GitLab under another name, the links are followed on the integration's
// base URL, not dropped (which would end the listing after one page) nor followed elsewhere.
func TestRepositoriesOtherOrigin(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.tokenIntegration("ana")
	e.fake.AddGroup("acme")
	e.fake.AddMember("acme", "ana", gitlabfake.Maintainer)
	e.fake.AddProjects("acme", 120)
	in.BaseURL = strings.Replace(e.fake.URL, "127.0.0.1", "localhost", 1)
	all, pages, err := collect(t, e.open(in))
	if err != nil || len(all) != 120 || pages != 2 {
		t.Fatalf("%d projects in %d pages: %v", len(all), pages, err)
	}
}

// TestRepositoriesBadNextLink: a next link that is not an API URL ends the listing with an
// error, not silently (a partial discovery must not look complete).
func TestRepositoriesBadNextLink(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", `<https://elsewhere.example.com/projects?id_after=9>; rel="next"`)
		_, _ = w.Write([]byte(`[{"id":9,"path":"p","path_with_namespace":"g/p","namespace":{"full_path":"g"}}]`))
	}))
	t.Cleanup(srv.Close)
	c, err := gitlabOpen(forge.Integration{BaseURL: srv.URL, Secrets: map[string]string{"token": "t"}}, forge.Env{})
	if err != nil {
		t.Fatal(err)
	}
	all, pages, err := collect(t, c)
	if err == nil || !strings.Contains(err.Error(), "is not an API URL") || pages != 0 || len(all) != 0 {
		t.Fatalf("%d projects in %d pages: %v", len(all), pages, err)
	}
}
