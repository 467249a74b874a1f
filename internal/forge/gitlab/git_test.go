package gitlab_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitlab"
	"github.com/forgeway/forgeway/internal/forge/gitlab/gitlabfake"
	"github.com/forgeway/forgeway/internal/gittest"
)

// receiver is a webhook endpoint that keeps what it receives.
type receiver struct {
	mu  sync.Mutex
	got []forge.Delivery
	url string
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, forge.Delivery{Header: r.Header.Clone(), Body: body, ReceivedAt: time.Now()})
		rc.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	rc.url = srv.URL + "/webhooks/gitlab/int-1"
	return rc
}

func (rc *receiver) deliveries() []forge.Delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]forge.Delivery(nil), rc.got...)
}

// normalizeAll verifies and normalizes what the receiver got, as Forgeway's ingest does.
func normalizeAll(t *testing.T, ds []forge.Delivery, secret string, signing string) []forge.Event {
	t.Helper()
	w := gitlab.New().Webhooks()
	keys := forge.VerifyKeys{Secrets: []string{secret}, Integration: forge.Integration{Secrets: map[string]string{gitlab.SecretSigningToken: signing}}}
	var events []forge.Event
	ids := map[string]bool{}
	for _, d := range ds {
		info, err := w.Identify(d)
		if err != nil {
			t.Fatalf("Identify: %v", err)
		}
		if ids[info.ID] {
			t.Fatalf("two deliveries share the id %s", info.ID)
		}
		ids[info.ID] = true
		if err := w.Verify(d, keys); err != nil {
			t.Fatalf("Verify %s: %v", info.Event, err)
		}
		res, err := w.Normalize(context.Background(), d, nil)
		if err != nil {
			t.Fatalf("Normalize %s: %v", info.Event, err)
		}
		events = append(events, res.Events...)
	}
	return events
}

// TestGitEndToEnd clones and pushes with real git through the fake, with the header GitAuth
// returns as gitmirror uses it, and checks that GitLab's push events reach the webhook
// EnsureHooks created, authenticated and normalized.
func TestGitEndToEnd(t *testing.T) {
	// Signed deliveries are checked against the time received: the fake's clock starts now.
	e := newEnv(t, gitlabfake.Options{AllowLocalRequests: true, Now: time.Now})
	in, tok := e.tokenIntegration("ana")
	in.Secrets[gitlab.SecretSigningToken] = "whsec_c2lnbmluZy1rZXktb2YtdGhpcnR5LXR3by1ieXRlcyEh"
	e.fake.AddGroup("acme")
	e.fake.AddMember("acme", "ana", gitlabfake.Maintainer)
	e.fake.AddGitProject(gitlabfake.Project{FullPath: "acme/app"})
	c := e.open(in)
	ctx := context.Background()
	repo := repoOf(t, c, "acme/app")
	rc := newReceiver(t)
	if _, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: rc.url, Secret: "hook-secret"}); err != nil {
		t.Fatal(err)
	}

	auth, err := c.GitAuth(ctx, repo, nil, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !auth.Expires.IsZero() || auth.Header != gittest.BasicAuth("oauth2", tok) {
		t.Fatalf("GitAuth = %+v", auth)
	}
	if repo.CloneURL != e.fake.URL+"/acme/app.git" {
		t.Fatalf("clone URL %s", repo.CloneURL)
	}
	work := gittest.CloneWork(t, repo.CloneURL, auth.Header)
	base := gittest.Git(t, work, "rev-parse", "HEAD")
	first := gittest.Commit(t, work, "a.txt", "a\n", "Add a\n\nWith a body.")
	second := gittest.Commit(t, work, "a.txt", "b\n", "Change a")
	gittest.Push(t, work, auth.Header, "main")
	gittest.Git(t, work, "tag", "v1.0.0")
	gittest.Push(t, work, auth.Header, "refs/tags/v1.0.0")
	gittest.Git(t, work, "checkout", "--quiet", "-b", "feature/x")
	third := gittest.Commit(t, work, "b.txt", "b\n", "Add b")
	gittest.Push(t, work, auth.Header, "feature/x")
	e.fake.Flush()

	events := normalizeAll(t, rc.deliveries(), "hook-secret", in.Secrets[gitlab.SecretSigningToken])
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type+" "+ev.Subject)
	}
	want := []string{
		"dev.forgeway.push refs/heads/main",
		"dev.forgeway.push refs/tags/v1.0.0", "dev.forgeway.ref.created refs/tags/v1.0.0",
		"dev.forgeway.push refs/heads/feature/x", "dev.forgeway.ref.created refs/heads/feature/x",
	}
	if strings.Join(types, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(types, "\n"), strings.Join(want, "\n"))
	}
	main := events[0].Data.(forge.PushData)
	if main.Before != base || main.After != second || main.TotalCommits != 2 || len(main.Commits) != 2 ||
		main.Commits[0].ID != first || main.Commits[0].Message != "Add a\n\nWith a body.\n" || main.Commits[1].ID != second ||
		main.Pusher.Login != "ana" || main.Commits[0].URL != e.fake.URL+"/acme/app/-/commit/"+first {
		t.Fatalf("push to main: %+v", main)
	}
	if r := events[0].Repository; r == nil || r.ID != repo.HostID || r.FullName != "acme/app" || r.CloneURL != repo.CloneURL || !r.Private {
		t.Fatalf("event repository %+v", r)
	}
	if feature := events[3].Data.(forge.PushData); !feature.Created || feature.TotalCommits != 1 || feature.Commits[0].ID != third {
		t.Fatalf("push of a new branch: %+v", feature)
	}

	clone := gittest.CloneWork(t, repo.CloneURL, auth.Header)
	if got := gittest.Git(t, clone, "rev-parse", "HEAD"); got != second {
		t.Fatalf("cloned %s, pushed %s", got, second)
	}
	// A revoked token no longer reads.
	e.fake.RevokeToken(tok)
	cmd := exec.Command("git", "ls-remote", repo.CloneURL)
	cmd.Env = gittest.Env(t, auth.Header)
	if out, err := cmd.CombinedOutput(); err == nil || strings.Contains(string(out), second) {
		t.Fatalf("a revoked token read the repository: %v %s", err, out)
	}
}

func TestBranchesAndMergeRequests(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{AllowLocalRequests: true})
	in, _ := e.tokenIntegration("ana")
	bobTok := e.fake.AddToken(gitlabfake.Token{Username: "bob"})
	e.fake.AddGroup("acme")
	e.fake.AddMember("acme", "ana", gitlabfake.Maintainer)
	e.fake.AddMember("acme", "bob", gitlabfake.Developer)
	e.fake.AddGitProject(gitlabfake.Project{FullPath: "acme/app"})
	c := e.open(in)
	ctx := context.Background()
	repo := repoOf(t, c, "acme/app")
	rc := newReceiver(t)
	if _, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: rc.url, Secret: "hook-secret"}); err != nil {
		t.Fatal(err)
	}
	bob := &forge.UserCredential{User: "u-bob", Login: "bob", Token: bobTok}

	branches, err := c.Branches(ctx, repo)
	if err != nil || len(branches) != 1 || branches[0].Name != "refs/heads/main" || len(branches[0].SHA) != 40 {
		t.Fatalf("Branches: %+v, %v", branches, err)
	}
	head := branches[0].SHA
	ref, err := c.CreateBranch(ctx, repo, "refs/heads/feature", head, bob)
	if err != nil || ref != (forge.Ref{Name: "refs/heads/feature", SHA: head}) {
		t.Fatalf("CreateBranch: %+v, %v", ref, err)
	}
	if _, err := c.CreateBranch(ctx, repo, "feature", head, bob); err == nil || !strings.Contains(err.Error(), "Branch already exists") {
		t.Fatalf("creating it again: %v", err)
	}
	if _, err := c.CreateBranch(ctx, repo, "other", strings.Repeat("f", 40), bob); err == nil || !strings.Contains(err.Error(), "Invalid reference name") {
		t.Fatalf("a branch at an unknown commit: %v", err)
	}
	if branches, _ := c.Branches(ctx, repo); len(branches) != 2 {
		t.Fatalf("branches after creation: %+v", branches)
	}

	pr, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "Add x", Body: "Why x.", Source: "feature", Target: "refs/heads/main", Draft: true}, bob)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Number != 1 || pr.Title != "Draft: Add x" || !pr.Draft || pr.State != "open" || pr.Body != "Why x." || pr.Author.Login != "bob" ||
		pr.Source != (forge.RefAt{Ref: "feature", SHA: head, RepositoryFullName: "acme/app"}) || pr.Target.Ref != "main" ||
		pr.URL != e.fake.URL+"/acme/app/-/merge_requests/1" {
		t.Fatalf("merge request %+v", pr)
	}
	if mrs := e.fake.MergeRequests("acme/app"); len(mrs) != 1 || mrs[0].Author != "bob" {
		t.Fatalf("on GitLab: %+v", mrs)
	}
	_, err = c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "Again", Source: "feature", Target: "main"}, nil)
	var he *forge.HostError
	if !errors.As(err, &he) || he.Status != http.StatusConflict || !strings.Contains(he.Message, "Another open merge request already exists") {
		t.Fatalf("a second merge request for the branch: %v", err)
	}
	if _, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Source: "feature", Target: "main"}, nil); err == nil {
		t.Fatal("a merge request without a title was sent")
	}

	e.fake.Flush()
	events := normalizeAll(t, rc.deliveries(), "hook-secret", "")
	var got []string
	for _, ev := range events {
		got = append(got, ev.Type)
	}
	// The branch created through the API is a push; the merge request opened is an event.
	if strings.Join(got, ",") != "dev.forgeway.push,dev.forgeway.ref.created,dev.forgeway.pull_request.opened" {
		t.Fatalf("events %v", got)
	}
	opened := events[2].Data.(forge.PullRequestData)
	if opened.Number != 1 || opened.Author.Login != "bob" || !opened.Draft || events[2].Sender.Login != "bob" || opened.Source.SHA != head {
		t.Fatalf("opened %+v", opened)
	}

	// A person's token close to expiry is not handed to a long git run.
	soon := &forge.UserCredential{Login: "bob", Token: bobTok, Expires: e.clock.Now().Add(5 * time.Minute)}
	if _, err := c.GitAuth(ctx, repo, soon, 10*time.Minute); !errors.Is(err, forge.ErrUnauthorized) {
		t.Fatalf("GitAuth with a token expiring first: %v", err)
	}
	if a, err := c.GitAuth(ctx, repo, bob, time.Hour); err != nil || a.Header != gittest.BasicAuth("oauth2", bobTok) {
		t.Fatalf("GitAuth as bob: %+v, %v", a, err)
	}
}
