package bitbucketdc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bitbucketfake"
)

func TestRepositoriesMapping(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{})
	tok := e.adminToken("alice", "PRJ")
	e.fake.AddRepository(bitbucketfake.Repo{Project: "PRJ", Slug: "widgets", Name: "Widgets", Description: "The widgets", Public: true})
	e.fake.AddRepository(bitbucketfake.Repo{Project: "PRJ", Slug: "widgets-fork", ForkOf: "PRJ/widgets", Archived: true})
	// Another project's public repository is readable but not the credential's: not listed.
	e.fake.AddRepository(bitbucketfake.Repo{Project: "OTHER", Slug: "public", Public: true})
	// alice's own personal repository is.
	e.fake.AddRepository(bitbucketfake.Repo{Project: "~alice", Slug: "scratch"})

	all, _, err := collect(t, e.open(tok))
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	widgets, _ := e.fake.Repository("PRJ/widgets")
	fork, _ := e.fake.Repository("PRJ/widgets-fork")
	scratch, _ := e.fake.Repository("~ALICE/scratch")
	host := e.fake.URL[len("http://"):]
	_ = host
	want := []forge.Repository{
		{
			HostID: strconv.Itoa(widgets.ID), FullName: "PRJ/widgets", Name: "widgets", Owner: "PRJ", Group: "PRJ",
			Visibility: "public", Private: false, CloneURL: e.fake.URL + "/scm/prj/widgets.git",
			WebURL: e.fake.URL + "/projects/PRJ/repos/widgets/browse", Permission: forge.PermissionRead, Description: "The widgets",
		},
		{
			HostID: strconv.Itoa(fork.ID), FullName: "PRJ/widgets-fork", Name: "widgets-fork", Owner: "PRJ", Group: "PRJ",
			Visibility: "private", Private: true, Archived: true, Fork: true, CloneURL: e.fake.URL + "/scm/prj/widgets-fork.git",
			WebURL: e.fake.URL + "/projects/PRJ/repos/widgets-fork/browse", Permission: forge.PermissionRead,
		},
		{
			HostID: strconv.Itoa(scratch.ID), FullName: "~alice/scratch", Name: "scratch", Owner: "~alice", Group: "~alice",
			Visibility: "private", Private: true, CloneURL: e.fake.URL + "/scm/~alice/scratch.git",
			WebURL: e.fake.URL + "/users/alice/repos/scratch/browse", Permission: forge.PermissionRead,
		},
	}
	// Archived repositories are listed only when asked for; this one is not.
	want = append(want[:1], want[2])
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
}

// countingTransport records the most requests in flight at once.
type countingTransport struct {
	base     http.RoundTripper
	inflight atomic.Int32
	peak     atomic.Int32
	count    atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.inflight.Add(1)
	defer c.inflight.Add(-1)
	c.count.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return c.base.RoundTrip(r)
}

func TestRepositoriesPagesConcurrentlyInOrder(t *testing.T) {
	for _, tc := range []struct {
		repos, pageSize, wantPages int
	}{
		{1, 10, 1},
		{10, 10, 1},
		{11, 10, 2},
		{21, 10, 3},
		{95, 10, 10},
	} {
		t.Run(fmt.Sprintf("%d repos, %d a page", tc.repos, tc.pageSize), func(t *testing.T) {
			e := newEnv(t, bitbucketfake.Options{MaxPageSize: tc.pageSize})
			tok := e.adminToken("alice", "PRJ")
			made := e.fake.AddRepositories("PRJ", tc.repos)
			e.fake.SetLatency(20 * time.Millisecond)
			ct := &countingTransport{base: e.fake.Client().Transport}
			in := e.integration(tok)
			c, err := bitbucketdc.New().Open(context.Background(), in, forge.Env{HTTP: &http.Client{Transport: ct}, Now: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			all, pages, err := collect(t, c)
			if err != nil {
				t.Fatalf("Repositories: %v", err)
			}
			if pages != tc.wantPages {
				t.Errorf("%d pages, want %d", pages, tc.wantPages)
			}
			if len(all) != len(made) {
				t.Fatalf("%d repositories, want %d", len(all), len(made))
			}
			for i := range made {
				if all[i].FullName != made[i].FullName() {
					t.Fatalf("repository %d is %s, want %s (out of order)", i, all[i].FullName, made[i].FullName())
				}
			}
			if peak := ct.peak.Load(); (tc.wantPages > 2 && peak < 2) || (tc.wantPages >= 8 && peak < 3) || peak > 4 {
				t.Errorf("at most %d requests in flight", peak)
			}
			// The look-ahead grows with the pages received: no request past the end of a
			// one- or two-page listing, at most three past a long one.
			allowed := 3
			if tc.wantPages <= 2 {
				allowed = 0
			}
			if extra := int(ct.count.Load()) - tc.wantPages; extra < 0 || extra > allowed {
				t.Errorf("%d requests for %d pages", ct.count.Load(), tc.wantPages)
			}
		})
	}
}

// A server whose nextPageStart is not start+limit (paging by something else than offsets):
// the listing follows nextPageStart and neither loses nor repeats a page.
func TestRepositoriesFollowsNextPageStart(t *testing.T) {
	var mu sync.Mutex
	var starts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, _ := strconv.Atoi(r.URL.Query().Get("start"))
		mu.Lock()
		starts = append(starts, r.URL.Query().Get("start"))
		mu.Unlock()
		// Pages at starts 0, 7, 19, 40; each page holds 2 repositories.
		next := map[int]int{0: 7, 7: 19, 19: 40}
		page := map[string]any{"start": start, "limit": 2, "size": 2, "values": []map[string]any{
			{"id": start*10 + 1, "slug": fmt.Sprintf("r%d-a", start), "project": map[string]any{"key": "P"}},
			{"id": start*10 + 2, "slug": fmt.Sprintf("r%d-b", start), "project": map[string]any{"key": "P"}},
		}}
		if n, ok := next[start]; ok {
			page["isLastPage"], page["nextPageStart"] = false, n
		} else {
			page["isLastPage"] = true
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(page)
	}))
	defer srv.Close()
	c, err := bitbucketdc.New().Open(context.Background(), forge.Integration{BaseURL: srv.URL, Secrets: map[string]string{bitbucketdc.SecretToken: "t"}}, forge.Env{HTTP: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	all, pages, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range all {
		names = append(names, r.Name)
	}
	want := []string{"r0-a", "r0-b", "r7-a", "r7-b", "r19-a", "r19-b", "r40-a", "r40-b"}
	if diff := cmp.Diff(want, names); diff != "" || pages != 4 {
		t.Errorf("%d pages (-want +got):\n%s", pages, diff)
	}
}

func TestRepositoriesStopsAtFirstError(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{MaxPageSize: 5})
	tok := e.adminToken("alice", "PRJ")
	e.fake.AddRepositories("PRJ", 40)
	c := e.open(tok)

	boom := errors.New("boom")
	calls := 0
	err := c.Repositories(context.Background(), func([]forge.Repository) error {
		calls++
		if calls == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls != 2 {
		t.Errorf("err %v after %d calls; want boom after 2", err, calls)
	}

	e.fake.FailNext("/repos?start=15", http.StatusNotFound, nil)
	_, pages, err := collect(t, c)
	if !errors.Is(err, forge.ErrNotFound) || pages != 3 {
		t.Errorf("err %v after %d pages; want ErrNotFound after 3", err, pages)
	}
}

func TestRepository(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{})
	tok := e.adminToken("alice", "PRJ")
	made := e.fake.AddRepository(bitbucketfake.Repo{Project: "PRJ", Slug: "widgets", DefaultBranch: "trunk"})
	c := e.open(tok)
	ctx := context.Background()
	hint := forge.Repository{FullName: "PRJ/widgets"}
	id := strconv.Itoa(made.ID)

	got, err := c.Repository(ctx, id, hint)
	if err != nil {
		t.Fatalf("Repository: %v", err)
	}
	if got.HostID != id || got.DefaultBranch != "trunk" || got.FullName != "PRJ/widgets" || got.Group != "PRJ" {
		t.Errorf("Repository = %+v", got)
	}
	// Another repository now holds the name: not found.
	if _, err := c.Repository(ctx, "999999", hint); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("Repository of a replaced name: %v, want ErrNotFound", err)
	}
	e.fake.RenameRepository("PRJ/widgets", "gadgets")
	if _, err := c.Repository(ctx, id, hint); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("Repository under its old name: %v, want ErrNotFound", err)
	}
	if _, err := c.Repository(ctx, id, forge.Repository{}); err == nil {
		t.Error("Repository without a full name succeeded")
	}
}

func TestRepositoryWithoutDefaultBranch(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{})
	tok := e.adminToken("alice", "PRJ")
	made := e.fake.AddRepository(bitbucketfake.Repo{Project: "PRJ", Slug: "empty", DefaultBranch: "main"})
	e.fake.Push("PRJ/empty", "alice", bitbucketfake.Change{Ref: "refs/heads/main", To: "0000000000000000000000000000000000000000"})
	e.fake.WaitDeliveries()
	got, err := e.open(tok).Repository(context.Background(), strconv.Itoa(made.ID), forge.Repository{FullName: "PRJ/empty"})
	if err != nil || got.DefaultBranch != "" {
		t.Errorf("Repository = %+v, %v; want no default branch and no error", got, err)
	}
}
