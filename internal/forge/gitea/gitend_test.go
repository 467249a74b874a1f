package gitea_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitea"
	"github.com/forgeway/forgeway/internal/forge/gitea/giteafake"
	"github.com/forgeway/forgeway/internal/gittest"
)

// TestGitEndToEnd attaches a repository with real git data as Forgeway does (EnsureHooks),
// pushes through git http-backend with the header GitAuth returns, and checks the delivery
// Gitea sends: it identifies, verifies with the integration's secret and normalizes into the
// push that happened. A rotated secret signs the next delivery; a revoked token stops git.
func TestGitEndToEnd(t *testing.T) {
	var mu sync.Mutex
	var got []forge.Delivery
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, forge.Delivery{Header: r.Header.Clone(), Body: b, ReceivedAt: time.Now()})
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer recv.Close()
	take := func() []forge.Delivery {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}

	e := newEnv(t, giteafake.Options{})
	tok := e.fake.IssueToken("alice", "write:repository", "read:user")
	e.fake.AddGitRepository("alice/widgets")
	c := e.open(tok, nil)
	ctx := context.Background()

	var repo forge.Repository
	if err := c.Repositories(ctx, func(page []forge.Repository) error { repo = page[0]; return nil }); err != nil {
		t.Fatal(err)
	}
	if repo.CloneURL != e.fake.URL+"/alice/widgets.git" || repo.DefaultBranch != "main" {
		t.Fatalf("repository %+v", repo)
	}
	spec := forge.HookSpec{URL: recv.URL + "/webhooks/gitea/int-gitea", Secret: "first-secret"}
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	auth, err := c.GitAuth(ctx, repo, nil, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	work := gittest.CloneWork(t, repo.CloneURL, auth.Header)
	sha := gittest.Commit(t, work, "widget.go", "package widget\n", "ABC-7 add the widget")
	gittest.Push(t, work, auth.Header, "main")

	wh := gitea.New().Webhooks()
	ds := take()
	if len(ds) != 1 {
		t.Fatalf("%d deliveries", len(ds))
	}
	info, err := wh.Identify(ds[0])
	if err != nil || info.Event != "push" || info.ID == "" || info.Test {
		t.Fatalf("identify: %+v %v", info, err)
	}
	if err := wh.Verify(ds[0], forge.VerifyKeys{Secrets: []string{spec.Secret}}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	res, err := wh.Normalize(ctx, ds[0], nil)
	if err != nil || len(res.Events) != 1 {
		t.Fatalf("normalize: %+v %v", res, err)
	}
	ev := res.Events[0]
	push := ev.Data.(forge.PushData)
	if ev.Repository.ID != repo.HostID || ev.Subject != "refs/heads/main" || push.After != sha || push.TotalCommits != 1 ||
		push.Commits[0].Message != "ABC-7 add the widget\n" || push.Pusher.Login != "alice" {
		t.Errorf("event %+v, data %+v", ev, push)
	}

	// Rotation: the next delivery verifies under the new secret only.
	if _, err := c.(forge.HookSecretRotator).RotateHookSecret(ctx, repo, forge.HookSpec{URL: spec.URL, Secret: "second-secret"}); err != nil {
		t.Fatal(err)
	}
	gittest.Commit(t, work, "widget.go", "package widget // v2\n", "v2")
	gittest.Push(t, work, auth.Header, "main")
	ds = take()
	if len(ds) != 1 || wh.Verify(ds[0], forge.VerifyKeys{Secrets: []string{"second-secret"}}) != nil ||
		wh.Verify(ds[0], forge.VerifyKeys{Secrets: []string{"first-secret"}}) == nil {
		t.Errorf("after rotation: %d deliveries", len(ds))
	}

	// A clone as the acting person, with their own token.
	e.fake.AddCollaborator("alice/widgets", "ann", "read")
	ann := &forge.UserCredential{Login: "ann", Token: e.fake.IssueToken("ann", "read:repository")}
	annAuth, err := c.GitAuth(ctx, repo, ann, 0)
	if err != nil {
		t.Fatal(err)
	}
	if clone := gittest.CloneWork(t, repo.CloneURL, annAuth.Header); gittest.Git(t, clone, "log", "-1", "--format=%s") != "v2" {
		t.Error("ann's clone is not at v2")
	}

	// The token revoked: git is refused.
	e.fake.RevokeToken(tok)
	cmd := exec.Command("git", "ls-remote", repo.CloneURL)
	cmd.Env = gittest.Env(t, auth.Header)
	if out, err := cmd.CombinedOutput(); err == nil || strings.Contains(string(out), sha) {
		t.Errorf("revoked token accepted: %v %s", err, out)
	}
}
