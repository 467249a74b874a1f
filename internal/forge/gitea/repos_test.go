package gitea_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitea/giteafake"
)

func TestRepositories(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	tok := e.fake.IssueToken("alice", "read:repository", "read:user")
	e.fake.AddRepositories("alice", 2*50)
	e.fake.AddOrg("acme", false)
	e.fake.AddOrgMember("acme", "alice", "write")
	acme := e.fake.AddRepository(giteafake.Repo{FullName: "acme/widgets", Private: true, Description: "Widgets", DefaultBranch: "trunk"})
	e.fake.AddOrg("hidden", true)
	e.fake.AddOrgMember("hidden", "alice", "read")
	hidden := e.fake.AddRepository(giteafake.Repo{FullName: "hidden/tool"})
	e.fake.AddRepository(giteafake.Repo{FullName: "bob/private", Private: true})

	flight := &inFlight{next: e.fake.Client().Transport}
	e.fake.SetLatency(20 * time.Millisecond)
	repos, pages, err := collect(t, e.open(tok, &http.Client{Transport: flight}))
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != 102 || pages != 3 {
		t.Fatalf("%d repositories in %d pages", len(repos), pages)
	}
	for i := 0; i < 100; i++ {
		if want := fmt.Sprintf("alice/repo-%03d", i+1); repos[i].FullName != want {
			t.Fatalf("repository %d is %s, want %s: pages out of order", i, repos[i].FullName, want)
		}
	}
	if flight.max() < 2 {
		t.Errorf("pages 2 and 3 were fetched one after the other (peak %d in flight)", flight.max())
	}
	want := forge.Repository{
		HostID: strconv.FormatInt(acme.ID, 10), FullName: "acme/widgets", Name: "widgets", Owner: "acme", Group: "acme",
		DefaultBranch: "trunk", Visibility: "private", Private: true, CloneURL: e.fake.URL + "/acme/widgets.git",
		WebURL: e.fake.URL + "/acme/widgets", Permission: forge.PermissionWrite, Description: "Widgets",
	}
	if diff := cmp.Diff(want, repos[100]); diff != "" {
		t.Errorf("acme/widgets (-want +got):\n%s", diff)
	}
	if r := repos[101]; r.HostID != strconv.FormatInt(hidden.ID, 10) || r.Visibility != "internal" || r.Private || r.Permission != forge.PermissionRead {
		t.Errorf("hidden/tool %+v", r)
	}
	if r := repos[0]; r.Permission != forge.PermissionAdmin || r.Visibility != "public" || r.Group != "alice" {
		t.Errorf("alice/repo-001 %+v", r)
	}
}

// TestRepositoriesSmallerPages lists a server whose MAX_RESPONSE_ITEMS is below the 50 the
// driver asks for: the page size is learned from the first page.
func TestRepositoriesSmallerPages(t *testing.T) {
	e := newEnv(t, giteafake.Options{MaxResponseItems: 20})
	tok := e.fake.IssueToken("alice", "all")
	e.fake.AddRepositories("alice", 45)
	repos, pages, err := collect(t, e.open(tok, nil))
	if err != nil || len(repos) != 45 || pages != 3 {
		t.Fatalf("%d repositories in %d pages: %v", len(repos), pages, err)
	}
	seen := map[string]bool{}
	for _, r := range repos {
		if seen[r.FullName] {
			t.Fatalf("%s listed twice", r.FullName)
		}
		seen[r.FullName] = true
	}
}

// stripPaging is a proxy that drops Gitea's paging headers.
type stripPaging struct{ next http.RoundTripper }

func (s stripPaging) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err == nil {
		resp.Header.Del("X-Total-Count")
		resp.Header.Del("Link")
	}
	return resp, err
}

// TestListsWithoutPagingHeaders lists through a proxy that drops X-Total-Count and Link: pages
// are read until one is shorter than the first.
func TestListsWithoutPagingHeaders(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	tok := e.fake.IssueToken("alice", "all")
	e.fake.AddRepositories("alice", 120)
	e.fake.AddRepository(giteafake.Repo{FullName: "alice/branchy"})
	for i := range 59 {
		e.fake.SetBranch("alice/branchy", fmt.Sprintf("b%02d", i), fmt.Sprintf("%040d", i))
	}
	c := e.open(tok, &http.Client{Transport: stripPaging{e.fake.Client().Transport}})
	repos, pages, err := collect(t, c)
	if err != nil || len(repos) != 121 || pages != 3 {
		t.Errorf("%d repositories in %d pages: %v", len(repos), pages, err)
	}
	branches, err := c.Branches(context.Background(), forge.Repository{FullName: "alice/branchy"})
	if err != nil || len(branches) != 60 {
		t.Errorf("%d branches: %v", len(branches), err)
	}
	// Exactly a page's worth: one more request finds the end.
	e.fake.AddRepositories("alice", 29)
	if repos, _, err := collect(t, c); err != nil || len(repos) != 150 {
		t.Errorf("%d repositories: %v", len(repos), err)
	}
}

func TestRepositoriesStops(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	tok := e.fake.IssueToken("alice", "all")
	e.fake.AddRepositories("alice", 120)
	c := e.open(tok, nil)
	stop := errors.New("enough")
	calls := 0
	err := c.Repositories(context.Background(), func([]forge.Repository) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Errorf("err %v after %d pages", err, calls)
	}
	// A failing page fails the listing.
	e.fake.FailNext("/user/repos", 500, nil)
	if _, _, err := collect(t, c); err == nil {
		t.Error("a failing first page did not fail the listing")
	}
	if _, _, err := collect(t, e.open("not-a-token", nil)); !errors.Is(err, forge.ErrUnauthorized) {
		t.Errorf("listing with a bad token: %v", err)
	}
}

func TestRepository(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	tok := e.fake.IssueToken("alice", "read:repository")
	r := e.fake.AddRepository(giteafake.Repo{FullName: "alice/old"})
	other := e.fake.AddRepository(giteafake.Repo{FullName: "bob/private", Private: true})
	gone := e.fake.AddRepository(giteafake.Repo{FullName: "alice/gone"})
	e.fake.DeleteRepository("alice/gone")
	e.fake.RenameRepository("alice/old", "new")
	c := e.open(tok, nil)
	ctx := context.Background()

	got, err := c.Repository(ctx, strconv.FormatInt(r.ID, 10), forge.Repository{FullName: "alice/old"})
	if err != nil || got.FullName != "alice/new" || got.HostID != strconv.FormatInt(r.ID, 10) {
		t.Errorf("renamed repository: %+v %v", got, err)
	}
	for _, id := range []int64{gone.ID, other.ID} {
		if _, err := c.Repository(ctx, strconv.FormatInt(id, 10), forge.Repository{}); !errors.Is(err, forge.ErrNotFound) {
			t.Errorf("repository %d: %v, want ErrNotFound", id, err)
		}
	}
	if _, err := c.Repository(ctx, "alice/old", forge.Repository{}); err == nil || errors.Is(err, forge.ErrNotFound) {
		t.Errorf("a name for an id: %v", err)
	}
}
