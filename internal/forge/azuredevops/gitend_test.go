package azuredevops

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/azurefake"
	"github.com/forgeway/forgeway/internal/gittest"
)

// inbox is Forgeway's side of the deliveries: it keeps every request as a forge.Delivery.
type inbox struct {
	mu  sync.Mutex
	got []forge.Delivery
}

func (b *inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.got = append(b.got, forge.Delivery{Header: r.Header.Clone(), Body: body, ReceivedAt: time.Now()})
	b.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// take returns and forgets the deliveries received so far.
func (b *inbox) take() []forge.Delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.got
	b.got = nil
	return out
}

// heads is the state normalization asks: the last source head of pull requests.
type heads map[string]string

func (h heads) PullRequestHead(_ context.Context, repo string, n int64) (string, bool, error) {
	sha, ok := h[repo+"#"+itoa(n)]
	return sha, ok, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// receive authenticates, identifies and normalizes every delivery of the inbox as the core
// does, and returns their events.
func receive(t *testing.T, box *inbox, in forge.Integration, secret string, state forge.State) ([]forge.DeliveryInfo, []forge.Event) {
	t.Helper()
	w := New().Webhooks()
	var infos []forge.DeliveryInfo
	var events []forge.Event
	for _, d := range box.take() {
		if err := w.Verify(d, forge.VerifyKeys{Secrets: []string{secret}, Integration: in}); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		info, err := w.Identify(d)
		if err != nil {
			t.Fatalf("Identify: %v", err)
		}
		res, err := w.Normalize(context.Background(), d, state)
		if err != nil {
			t.Fatalf("Normalize: %v", err)
		}
		infos = append(infos, info)
		events = append(events, res.Events...)
	}
	return infos, events
}

func eventTypes(evs []forge.Event) string {
	var out []string
	for _, e := range evs {
		out = append(out, strings.TrimPrefix(e.Type, "dev.forgeway."))
	}
	return strings.Join(out, ",")
}

// TestGitEndToEnd pushes through real git to the fake with the header GitAuth gives, and
// follows each push and pull request through the subscriptions EnsureHooks made, into the
// events Forgeway's delivery side makes of them.
func TestGitEndToEnd(t *testing.T) {
	e := newEnv(t, azurefake.Options{Git: true})
	tok := e.admin()
	e.fake.AddGitRepository(t, "Fiber", "app")
	box := &inbox{}
	hooks := httptest.NewServer(box)
	defer hooks.Close()
	in := e.integration(tok, SettingWebhookHeader, "X-Forgeway-Token")
	if _, err := New().Configure(&in); err != nil {
		t.Fatal(err)
	}
	c := e.open(in)
	ctx := context.Background()
	pages, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	repo := pages[0][0]
	if repo.CloneURL != e.fake.BaseURL+"/Fiber/_git/app" || repo.DefaultBranch != "main" {
		t.Fatalf("repository %+v", repo)
	}
	const secret = "hook-secret"
	if _, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: hooks.URL, Secret: secret}); err != nil {
		t.Fatal(err)
	}

	auth, err := c.GitAuth(ctx, repo, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	work := gittest.CloneWork(t, repo.CloneURL, auth.Header)
	sha := gittest.Commit(t, work, "a.txt", "one\n", "Add a")
	gittest.Push(t, work, auth.Header, "main")

	_, evs := receive(t, box, in, secret, heads{})
	if eventTypes(evs) != "push" {
		t.Fatalf("events of a push to main: %s", eventTypes(evs))
	}
	d := evs[0].Data.(forge.PushData)
	if d.Ref != "refs/heads/main" || d.After != sha || d.Created || len(d.Commits) != 1 || d.Commits[0].Message != "Add a" ||
		d.Pusher.Login != "alice@example.com" || evs[0].Repository.FullName != "Fiber/app" || evs[0].Repository.ID != repo.HostID {
		t.Errorf("push event %+v: %+v", evs[0], d)
	}

	// A new branch: its push and its creation.
	gittest.Git(t, work, "checkout", "--quiet", "-b", "feature")
	topic := gittest.Commit(t, work, "b.txt", "two\n", "Add b")
	gittest.Push(t, work, auth.Header, "feature")
	_, evs = receive(t, box, in, secret, heads{})
	if eventTypes(evs) != "push,ref.created" || evs[1].Data.(forge.RefData).SHA != topic ||
		len(evs[0].Data.(forge.PushData).Commits) != 1 {
		t.Fatalf("events of a new branch: %s %+v", eventTypes(evs), evs)
	}

	// A pull request: opened; a push to its source: updated.
	pr, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "Feature", Source: "feature", Target: "main"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, evs = receive(t, box, in, secret, heads{})
	if eventTypes(evs) != "pull_request.opened" || evs[0].Data.(forge.PullRequestData).Source.SHA != topic {
		t.Fatalf("events of a new pull request: %s %+v", eventTypes(evs), evs)
	}
	next := gittest.Commit(t, work, "c.txt", "three\n", "Add c")
	gittest.Push(t, work, auth.Header, "feature")
	seen := heads{repo.HostID + "#" + itoa(pr.Number): topic}
	infos, evs := receive(t, box, in, secret, seen)
	if eventTypes(evs) != "push,pull_request.updated" || evs[1].Data.(forge.PullRequestData).Source.SHA != next {
		t.Fatalf("events of a push to the source branch: %s %+v", eventTypes(evs), evs)
	}
	if infos[0].ID == infos[1].ID || infos[0].Test || infos[1].Action != "active" {
		t.Errorf("delivery infos %+v", infos)
	}

	// Completing it is a status change, which the default subscription does not deliver.
	if ds := e.fake.CompletePullRequest(ctx, "Fiber/app", pr.Number); len(ds) != 0 {
		t.Errorf("completion delivered through the push-only subscription: %+v", ds)
	}

	// The Test button: a ping, marked as a test.
	sub := e.fake.Subscriptions("Fiber/app")[0]
	e.fake.SendTestNotification(ctx, sub.ID)
	infos, evs = receive(t, box, in, secret, heads{})
	if len(infos) != 1 || !infos[0].Test || eventTypes(evs) != "ping" || evs[0].Data.(forge.PingData).HookID != sub.ID {
		t.Errorf("test notification: %+v %+v", infos, evs)
	}

	// A token without Code (Read & write) cannot push; a revoked one cannot even read.
	reader := e.fake.IssuePAT(azurefake.PAT{User: "alice@example.com", Scopes: []string{azurefake.ScopeCode}})
	readAuth, _ := c.GitAuth(ctx, repo, &forge.UserCredential{Token: reader}, 0)
	gittest.Commit(t, work, "d.txt", "four\n", "Add d")
	cmd := exec.Command("git", "-C", work, "push", "--quiet", "origin", "feature")
	cmd.Env = gittest.Env(t, readAuth.Header)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("a read-only token pushed: %s", out)
	}
	e.fake.RevokePAT(tok)
	cmd = exec.Command("git", "ls-remote", repo.CloneURL)
	cmd.Env = gittest.Env(t, auth.Header)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("a revoked token read the repository: %s", out)
	}
}

// TestAllPullRequestUpdates: with pull_request_updates "all", completing and abandoning a
// pull request reach Forgeway as merged and closed.
func TestAllPullRequestUpdates(t *testing.T) {
	e := newEnv(t, azurefake.Options{})
	tok := e.admin()
	main, topic := strings.Repeat("a", 40), strings.Repeat("b", 40)
	e.fake.AddRepository(azurefake.Repo{Project: "Fiber", Name: "app", Branches: map[string]string{"main": main, "topic": topic, "other": topic}})
	box := &inbox{}
	hooks := httptest.NewServer(box)
	defer hooks.Close()
	in := e.integration(tok, SettingPullRequestUpdates, PullRequestUpdatesAll)
	c := e.open(in)
	ctx := context.Background()
	pages, _ := collect(t, c)
	repo := pages[0][0]
	if _, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: hooks.URL, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	one, _ := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "One", Source: "topic", Target: "main"}, nil)
	two, _ := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "Two", Source: "other", Target: "main"}, nil)
	box.take()
	e.fake.CompletePullRequest(ctx, "Fiber/app", one.Number)
	e.fake.AbandonPullRequest(ctx, "Fiber/app", two.Number)
	_, evs := receive(t, box, in, "s", heads{})
	if eventTypes(evs) != "pull_request.merged,pull_request.closed" {
		t.Fatalf("events: %s", eventTypes(evs))
	}
	if d := evs[0].Data.(forge.PullRequestData); d.MergeSHA == "" || d.State != "merged" || evs[0].Sender.Login != "alice@example.com" {
		t.Errorf("merged: %+v", d)
	}
}
