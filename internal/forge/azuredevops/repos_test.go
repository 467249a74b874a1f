package azuredevops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/azurefake"
)

func TestRepositoriesMapsTheCatalog(t *testing.T) {
	e := newEnv(t, azurefake.Options{})
	tok := e.admin()
	pub := e.fake.AddProject(azurefake.Project{Name: "Open Source", Public: true})
	e.fake.AddRepository(azurefake.Repo{Project: "Open Source", Name: "lib", Branches: map[string]string{"develop": strings.Repeat("a", 40)}, DefaultBranch: "develop"})
	e.fake.AddRepository(azurefake.Repo{Project: "Fiber", Name: "old", Disabled: true})
	fiber, _ := e.fake.Repository("Fiber/old")
	proj := e.fake.AddProject(azurefake.Project{Name: "Fiber"})
	c := e.open(e.integration(tok))

	pages, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	lib, _ := e.fake.Repository("Open Source/lib")
	want := [][]forge.Repository{
		{{
			HostID: lib.ID, FullName: "Open Source/lib", Name: "lib", Owner: "Open Source", Group: "Open Source",
			DefaultBranch: "develop", Visibility: "public", Private: false,
			CloneURL: e.fake.BaseURL + "/Open%20Source/_git/lib", WebURL: e.fake.BaseURL + "/Open%20Source/_git/lib",
			Extra: map[string]string{ExtraProjectID: pub.ID},
		}},
		{{
			HostID: fiber.ID, FullName: "Fiber/old", Name: "old", Owner: "Fiber", Group: "Fiber",
			Visibility: "private", Private: true, Archived: true,
			CloneURL: e.fake.BaseURL + "/Fiber/_git/old", WebURL: e.fake.BaseURL + "/Fiber/_git/old",
			Extra: map[string]string{ExtraProjectID: proj.ID},
		}},
	}
	if diff := cmp.Diff(want, pages); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	for _, q := range e.recorder.requests {
		if q.URL.Query().Get("api-version") != "7.1" || q.Header.Get("X-TFS-FedAuthRedirect") != "Suppress" ||
			q.Header.Get("Authorization") != basic(tok) {
			t.Errorf("request %s %s: api-version %q, headers %v", q.Method, q.URL, q.URL.Query().Get("api-version"), q.Header)
		}
	}
}

func TestRepositoriesPagesProjectsAndListsThemConcurrently(t *testing.T) {
	e := newEnv(t, azurefake.Options{})
	tok := e.admin()
	// 105 projects: two pages of the project listing; every third has no repository.
	var want []string
	for i := range 105 {
		name := fmt.Sprintf("p%03d", i)
		e.fake.AddProject(azurefake.Project{Name: name})
		if i%3 != 0 {
			for _, r := range e.fake.AddRepositories(name, 2) {
				want = append(want, r.FullName())
			}
		}
	}
	e.fake.SetLatency(20 * time.Millisecond)
	c := e.open(e.integration(tok))
	pages, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pages {
		if len(p) != 2 || p[0].Group != p[1].Group {
			t.Fatalf("a page is not one project's repositories: %+v", p)
		}
		for _, r := range p {
			got = append(got, r.FullName)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("repositories in project order (-want +got):\n%s", diff)
	}
	if n := e.recorder.count("/_apis/projects"); n != 2 {
		t.Errorf("%d project pages requested, want 2", n)
	}
	if m := e.recorder.maxInFlight; m < 2 || m > listConcurrency+2 {
		t.Errorf("at most %d requests in flight, want between 2 and %d", m, listConcurrency+2)
	}
}

func TestRepositoriesOfConfiguredProjects(t *testing.T) {
	e := newEnv(t, azurefake.Options{})
	tok := e.admin()
	e.fake.AddRepositories("Web", 2)
	e.fake.AddRepositories("Fiber", 1)
	e.fake.AddRepositories("Other", 3)
	c := e.open(e.integration(tok, SettingProjects, "Fiber, Web"))
	pages, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 2 || pages[0][0].Group != "Fiber" || len(pages[1]) != 2 || pages[1][0].Group != "Web" {
		t.Errorf("pages %+v", pages)
	}
	if e.recorder.count("/_apis/projects") != 0 {
		t.Error("projects were listed although the integration names them")
	}

	c = e.open(e.integration(tok, SettingProjects, "Missing"))
	_, err = collect(t, c)
	if !errors.Is(err, forge.ErrNotFound) || !strings.Contains(err.Error(), "TF200016") {
		t.Errorf("unknown project: %v", err)
	}
}

func TestRepositoriesStopsAtTheFirstError(t *testing.T) {
	e := newEnv(t, azurefake.Options{})
	tok := e.admin()
	for i := range 12 {
		e.fake.AddRepositories(fmt.Sprintf("p%02d", i), 1)
	}
	c := e.open(e.integration(tok))

	stop := errors.New("enough")
	calls := 0
	err := c.Repositories(context.Background(), func([]forge.Repository) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("fn error: %v after %d calls", err, calls)
	}

	// A fresh fake: requests the cancelled listing left in flight must not take the failure.
	e = newEnv(t, azurefake.Options{})
	tok = e.admin()
	for i := range 12 {
		e.fake.AddRepositories(fmt.Sprintf("p%02d", i), 1)
	}
	c = e.open(e.integration(tok))
	e.fake.FailNext("/p05/_apis/git/repositories", http.StatusInternalServerError, nil)
	calls = 0
	err = c.Repositories(context.Background(), func([]forge.Repository) error { calls++; return nil })
	var he *forge.HostError
	if !errors.As(err, &he) || he.Status != 500 || !strings.Contains(he.Op, "p05") || calls != 5 {
		t.Errorf("a failing project: %v after %d pages", err, calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Repositories(ctx, func([]forge.Repository) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled listing: %v", err)
	}
}

func TestRepository(t *testing.T) {
	e := newEnv(t, azurefake.Options{})
	tok := e.admin()
	r := e.fake.AddRepository(azurefake.Repo{Project: "Fiber", Name: "app", Branches: map[string]string{"main": strings.Repeat("b", 40)}})
	p := e.fake.AddProject(azurefake.Project{Name: "Fiber"})
	c := e.open(e.integration(tok))
	ctx := context.Background()

	for _, hint := range []forge.Repository{
		{Extra: map[string]string{ExtraProjectID: p.ID}},
		{Group: "Fiber"},
		{FullName: "Fiber/renamed-since"},
	} {
		got, err := c.Repository(ctx, r.ID, hint)
		if err != nil || got.HostID != r.ID || got.FullName != "Fiber/app" || got.DefaultBranch != "main" || got.Extra[ExtraProjectID] != p.ID {
			t.Errorf("Repository(%+v) = %+v, %v", hint, got, err)
		}
	}
	if _, err := c.Repository(ctx, r.ID, forge.Repository{}); err == nil || !strings.Contains(err.Error(), "project") {
		t.Errorf("without a project: %v", err)
	}
	e.fake.DeleteRepository("Fiber/app")
	_, err := c.Repository(ctx, r.ID, forge.Repository{Group: "Fiber"})
	if !errors.Is(err, forge.ErrNotFound) || !strings.Contains(err.Error(), "TF401019") {
		t.Errorf("deleted repository: %v", err)
	}
}
