package bitbucketdc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bbwebhook"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bitbucketfake"
	"github.com/forgeway/forgeway/internal/gittest"
)

func TestGitAuth(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{})
	tok := e.adminToken("alice", "PRJ")
	c := e.open(tok)
	ctx := context.Background()
	repo := forge.Repository{FullName: "PRJ/widgets"}

	got, err := c.GitAuth(ctx, repo, nil, time.Hour)
	if err != nil || got.Header != "Authorization: Bearer "+tok || !got.Expires.IsZero() {
		t.Errorf("GitAuth = %+v, %v", got, err)
	}
	exp := e.clock.Now().Add(2 * time.Hour)
	bob := &forge.UserCredential{Login: "bob", Token: "bob-token", Expires: exp}
	if got, err := c.GitAuth(ctx, repo, bob, time.Hour); err != nil || got.Header != "Authorization: Bearer bob-token" || !got.Expires.Equal(exp) {
		t.Errorf("GitAuth as bob = %+v, %v", got, err)
	}
	_, err = c.GitAuth(ctx, repo, bob, 3*time.Hour)
	if !errors.Is(err, forge.ErrUnauthorized) || !strings.Contains(err.Error(), "expires") {
		t.Errorf("GitAuth with a token expiring too soon: %v", err)
	}
	noToken(t, err.Error(), "bob-token")
}

// A clone and a push with the driver's git credential, through the fake's git gate, make the
// fake deliver a signed repo:refs_changed that verifies and normalizes to the pushed commit.
func TestGitPushDeliversSignedPush(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{})
	tok := e.adminToken("alice", "PRJ")
	made := e.fake.AddGitRepository("PRJ", "widgets")

	var mu sync.Mutex
	var got []forge.Delivery
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, forge.Delivery{Header: r.Header.Clone(), Body: body, ReceivedAt: time.Now()})
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer receiver.Close()

	c := e.open(tok)
	ctx := context.Background()
	repo := repoOf(t, c, "PRJ/widgets")
	if repo.CloneURL != made.CloneURL {
		t.Fatalf("clone URL %q, want %q", repo.CloneURL, made.CloneURL)
	}
	if _, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: receiver.URL, Secret: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	auth, err := c.GitAuth(ctx, repo, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	work := gittest.CloneWork(t, repo.CloneURL, auth.Header)
	before := gittest.Git(t, work, "rev-parse", "HEAD")
	after := gittest.Commit(t, work, "CHANGELOG.md", "v2\n", "Add a changelog")
	gittest.Push(t, work, auth.Header, "main")
	gittest.Git(t, work, "checkout", "--quiet", "-b", "feature/x")
	gittest.Push(t, work, auth.Header, "feature/x")
	e.fake.WaitDeliveries()

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2", len(got))
	}
	w := bbwebhook.New()
	var events []forge.Event
	for _, d := range got {
		if err := w.Verify(d, forge.VerifyKeys{Secrets: []string{"s3cret"}}); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		info, err := w.Identify(d)
		if err != nil || info.Event != "repo:refs_changed" || info.ID == "" || strings.HasPrefix(info.ID, "sha256-") {
			t.Fatalf("Identify = %+v, %v", info, err)
		}
		res, err := w.Normalize(ctx, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, res.Events...)
	}
	if len(events) != 3 {
		t.Fatalf("events %+v; want a push, then a push and a ref.created", events)
	}
	push := events[0].Data.(forge.PushData)
	if events[0].Type != forge.EventPush || push.Ref != "refs/heads/main" || push.Before != before || push.After != after ||
		push.Created || push.Pusher.Login != "alice" || events[0].Repository.ID != repo.HostID {
		t.Errorf("push event %+v %+v", events[0], push)
	}
	created := events[2].Data.(forge.RefData)
	if events[1].Type != forge.EventPush || !events[1].Data.(forge.PushData).Created || events[2].Type != forge.EventRefCreated ||
		created.Ref != "refs/heads/feature/x" || created.SHA != after {
		t.Errorf("branch creation events %+v, %+v", events[1], events[2])
	}
}

func TestBranches(t *testing.T) {
	for _, real := range []bool{false, true} {
		name := "in memory"
		if real {
			name = "real git"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, bitbucketfake.Options{})
			tok := e.adminToken("alice", "PRJ")
			if real {
				e.fake.AddGitRepository("PRJ", "widgets")
			} else {
				e.fake.AddRepository(bitbucketfake.Repo{Project: "PRJ", Slug: "widgets"})
			}
			c := e.open(tok)
			ctx := context.Background()
			repo := forge.Repository{FullName: "PRJ/widgets"}
			refs, err := c.Branches(ctx, repo)
			if err != nil || len(refs) != 1 || refs[0].Name != "refs/heads/main" || len(refs[0].SHA) != 40 {
				t.Fatalf("Branches = %+v, %v", refs, err)
			}
			main := refs[0].SHA
			ref, err := c.CreateBranch(ctx, repo, "refs/heads/feature/x", main, nil)
			if err != nil || ref != (forge.Ref{Name: "refs/heads/feature/x", SHA: main}) {
				t.Fatalf("CreateBranch = %+v, %v", ref, err)
			}
			refs, _ = c.Branches(ctx, repo)
			if len(refs) != 2 || refs[0].Name != "refs/heads/feature/x" || refs[1].Name != "refs/heads/main" {
				t.Errorf("Branches after create = %+v", refs)
			}
			if real {
				if head := gittest.Git(t, e.fake.GitDir("PRJ/widgets"), "rev-parse", "refs/heads/feature/x"); head != main {
					t.Errorf("git has feature/x at %q", head)
				}
			}
			var he *forge.HostError
			if _, err := c.CreateBranch(ctx, repo, "feature/x", main, nil); !errors.As(err, &he) || he.Status != http.StatusConflict {
				t.Errorf("CreateBranch of an existing branch: %v, want a 409", err)
			}
			if _, err := c.CreateBranch(ctx, repo, "other", strings.Repeat("ab", 20), nil); !errors.Is(err, forge.ErrNotFound) {
				t.Errorf("CreateBranch at an unknown commit: %v, want ErrNotFound", err)
			}
			if _, err := c.CreateBranch(ctx, repo, "", main, nil); err == nil {
				t.Error("CreateBranch without a name succeeded")
			}
		})
	}
}

func TestBranchesPaged(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{MaxPageSize: 3})
	tok := e.adminToken("alice", "PRJ")
	e.fake.AddRepository(bitbucketfake.Repo{Project: "PRJ", Slug: "widgets"})
	for i := range 7 {
		e.fake.SetBranch("PRJ/widgets", "b"+string(rune('a'+i)), strings.Repeat("c", 40))
	}
	refs, err := e.open(tok).Branches(context.Background(), forge.Repository{FullName: "PRJ/widgets"})
	if err != nil || len(refs) != 8 {
		t.Errorf("Branches = %d refs, %v; want 8 over 3 pages", len(refs), err)
	}
}

func TestCreateBranchAsActingPerson(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{})
	tok := e.adminToken("alice", "PRJ")
	e.fake.AddRepository(bitbucketfake.Repo{Project: "PRJ", Slug: "widgets"})
	e.fake.Grant("bob", "PRJ", "PROJECT_READ")
	bobTok := e.fake.IssueToken(bitbucketfake.Token{User: "bob", ProjectPermission: "PROJECT_WRITE", RepoPermission: "REPO_WRITE"})
	c := e.open(tok)
	repo := forge.Repository{FullName: "PRJ/widgets"}
	refs, _ := c.Branches(context.Background(), repo)
	// bob may only read: acting as bob, the branch is refused though the integration could.
	_, err := c.CreateBranch(context.Background(), repo, "bobs", refs[0].SHA, &forge.UserCredential{Login: "bob", Token: bobTok})
	if !errors.Is(err, forge.ErrForbidden) {
		t.Errorf("CreateBranch as a reader: %v, want ErrForbidden", err)
	}
	noToken(t, err.Error(), bobTok)
}

func TestCreatePullRequest(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{})
	tok := e.adminToken("alice", "PRJ")
	e.fake.AddRepository(bitbucketfake.Repo{Project: "PRJ", Slug: "widgets"})
	e.fake.Grant("bob", "PRJ", "PROJECT_WRITE")
	bobTok := e.fake.IssueToken(bitbucketfake.Token{User: "bob", ProjectPermission: "PROJECT_WRITE", RepoPermission: "REPO_WRITE"})
	c := e.open(tok)
	ctx := context.Background()
	repo := forge.Repository{FullName: "PRJ/widgets"}
	refs, _ := c.Branches(ctx, repo)
	if _, err := c.CreateBranch(ctx, repo, "feature/x", refs[0].SHA, nil); err != nil {
		t.Fatal(err)
	}

	pr, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "Add x", Body: "Because.", Source: "feature/x", Target: "refs/heads/main", Draft: true},
		&forge.UserCredential{Login: "bob", Token: bobTok})
	if err != nil {
		t.Fatalf("CreatePullRequest: %v", err)
	}
	want := forge.PullRequest{
		Number: 1, Title: "Add x", Body: "Because.", State: forge.PullRequestStateOpen, Draft: true,
		URL:     e.fake.URL + "/projects/PRJ/repos/widgets/pull-requests/1",
		Author:  forge.Actor{Login: "bob", Name: "bob", Email: "bob@example.com"},
		Source:  forge.RefAt{Ref: "feature/x", SHA: refs[0].SHA, RepositoryFullName: "PRJ/widgets"},
		Target:  forge.RefAt{Ref: "main", SHA: refs[0].SHA},
		Created: e.clock.Now(),
	}
	if pr != want {
		t.Errorf("CreatePullRequest =\n%+v\nwant\n%+v", pr, want)
	}
	stored, _ := e.fake.PullRequest("PRJ/widgets", 1)
	if stored.Author != "bob" || !stored.Draft || stored.FromRef != "refs/heads/feature/x" {
		t.Errorf("pull request on the host: %+v", stored)
	}

	var he *forge.HostError
	if _, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "again", Source: "feature/x", Target: "main"}, nil); !errors.As(err, &he) || he.Status != http.StatusConflict {
		t.Errorf("a second pull request for the same branches: %v, want 409", err)
	}
	if _, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "t", Source: "nope", Target: "main"}, nil); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("a pull request from a missing branch: %v, want ErrNotFound", err)
	}
	if _, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Source: "a", Target: "b"}, nil); err == nil {
		t.Error("a pull request without a title was sent")
	}
}
