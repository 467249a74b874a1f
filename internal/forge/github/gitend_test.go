package github

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
	"github.com/forgeway/forgeway/internal/gittest"
)

// TestGitAuthWithGit pushes and clones with real git through the fake's git endpoint, with
// the header GitAuth returns, as gitmirror does.
func TestGitAuthWithGit(t *testing.T) {
	root := t.TempDir()
	e := newEnv(t, githubfake.Options{Git: gittest.Handler(root, gittest.HandlerOptions{})})
	in, a := e.appIntegration()
	e.fake.AddOrg("acme")
	e.fake.AddRepository(githubfake.Repo{FullName: "acme/r", Private: true})
	inst := e.fake.AddInstallation(githubfake.Installation{AppID: a.ID, Account: "acme"})
	gittest.InitBare(t, root, "acme/r.git")
	c := e.open(in)
	ctx := context.Background()

	var repo forge.Repository
	if err := c.Repositories(ctx, func(page []forge.Repository) error { repo = page[0]; return nil }); err != nil {
		t.Fatal(err)
	}
	if repo.CloneURL != e.fake.URL+"/acme/r.git" || repo.Installation != strconv.FormatInt(inst.ID, 10) {
		t.Fatalf("repository %+v", repo)
	}
	auth, err := c.GitAuth(ctx, repo, nil, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	work := gittest.InitWork(t)
	sha := gittest.Commit(t, work, "README", "hello\n", "first")
	gittest.Git(t, work, "remote", "add", "origin", repo.CloneURL)
	gittest.Push(t, work, auth.Header, "main")

	clone := gittest.CloneWork(t, repo.CloneURL, auth.Header)
	if got := gittest.Git(t, clone, "rev-parse", "HEAD"); got != sha {
		t.Fatalf("cloned %s, pushed %s", got, sha)
	}

	// An hour later that header is refused; GitAuth renews the token.
	e.clock.Add(time.Hour)
	cmd := exec.Command("git", "ls-remote", repo.CloneURL)
	cmd.Env = gittest.Env(t, auth.Header)
	if out, err := cmd.CombinedOutput(); err == nil || strings.Contains(string(out), sha) {
		t.Errorf("expired token accepted: %v %s", err, out)
	}
	renewed, err := c.GitAuth(ctx, repo, nil, 10*time.Minute)
	if err != nil || renewed.Header == auth.Header {
		t.Fatalf("renewal: %v", err)
	}
	cmd = exec.Command("git", "ls-remote", repo.CloneURL)
	cmd.Env = gittest.Env(t, renewed.Header)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), sha) {
		t.Errorf("renewed token refused: %v %s", err, out)
	}
}
