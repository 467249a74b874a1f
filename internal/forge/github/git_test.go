package github

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
)

func decodeGitAuth(t *testing.T, ga forge.GitAuth) (string, string) {
	t.Helper()
	v, ok := strings.CutPrefix(ga.Header, "Authorization: Basic ")
	if !ok {
		t.Fatalf("header %q", ga.Header)
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatal(err)
	}
	user, pw, _ := strings.Cut(string(b), ":")
	return user, pw
}

func TestBranchesAndPullRequests(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	in, a := e.appIntegration()
	e.fake.AddOrg("acme")
	rp := e.fake.AddRepository(githubfake.Repo{FullName: "acme/r", Private: true})
	inst := e.fake.AddInstallation(githubfake.Installation{AppID: a.ID, Account: "acme"})
	e.fake.AddOrgMember("acme", "alice", "push")
	c := e.open(in)
	ctx := context.Background()
	repo := forge.Repository{FullName: "acme/r", Installation: strconv.FormatInt(inst.ID, 10)}
	main := rp.Branches["main"]

	ref, err := c.CreateBranch(ctx, repo, "feature/x", main, nil)
	if err != nil || ref.Name != "refs/heads/feature/x" || ref.SHA != main {
		t.Fatalf("CreateBranch: %+v %v", ref, err)
	}
	if _, err := c.CreateBranch(ctx, repo, "feature/x", main, nil); err == nil || errors.Is(err, forge.ErrNotFound) {
		t.Errorf("existing branch: %v", err)
	}
	for i := range 120 {
		e.fake.SetBranch("acme/r", "b"+strconv.Itoa(i), main)
	}
	refs, err := c.Branches(ctx, repo)
	if err != nil || len(refs) != 122 {
		t.Fatalf("Branches: %d %v", len(refs), err)
	}
	found := false
	for _, r := range refs {
		found = found || (r.Name == "refs/heads/feature/x" && r.SHA == main)
	}
	if !found {
		t.Error("the new branch is not listed")
	}

	e.fake.SetBranch("acme/r", "feature/x", strings.Repeat("c", 40))
	pr, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "Add x", Body: "why", Source: "feature/x", Target: "main", Draft: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Number != 1 || pr.State != "open" || !pr.Draft || pr.Body != "why" || pr.Source.Ref != "feature/x" || pr.Source.SHA != strings.Repeat("c", 40) ||
		pr.Target.Ref != "main" || pr.Target.SHA != main || !strings.HasPrefix(pr.Author.Login, a.Slug) || pr.URL == "" || pr.Created.IsZero() ||
		pr.Source.RepositoryFullName != "acme/r" {
		t.Errorf("pull request %+v", pr)
	}

	// As the acting person, with their own user token from the OAuth flow.
	code := e.fake.IssueOAuthCode(a.ID, "alice")
	cred, err := New().(Driver).ExchangeCode(ctx, in, e.forgeEnv(), code)
	if err != nil {
		t.Fatal(err)
	}
	e.fake.SetBranch("acme/r", "alice-work", strings.Repeat("d", 40))
	pr2, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "Mine", Source: "refs/heads/alice-work", Target: "main"}, &cred)
	if err != nil || pr2.Author.Login != "alice" || pr2.Number != 2 {
		t.Fatalf("as alice: %+v %v", pr2, err)
	}
	ref, err = c.CreateBranch(ctx, repo, "alice-2", main, &cred)
	if err != nil || ref.Name != "refs/heads/alice-2" {
		t.Fatalf("branch as alice: %+v %v", ref, err)
	}
	if got := e.fake.PullRequests("acme/r"); len(got) != 2 || got[1].Author != "alice" {
		t.Errorf("host pull requests %+v", got)
	}

	// Bad input is refused before any call.
	if _, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Source: "a", Target: "b"}, nil); err == nil {
		t.Error("pull request without a title")
	}
	if _, err := c.CreateBranch(ctx, repo, "", main, nil); err == nil {
		t.Error("branch without a name")
	}
	if _, err := c.Branches(ctx, forge.Repository{FullName: "no-slash"}); err == nil {
		t.Error("malformed full name")
	}
}

func TestGitAuth(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	ctx := context.Background()

	tin, tok := e.tokenIntegration("alice")
	ga, err := e.open(tin).GitAuth(ctx, forge.Repository{FullName: "alice/r"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if user, pw := decodeGitAuth(t, ga); user != "x-access-token" || pw != tok || !ga.Expires.IsZero() {
		t.Errorf("PAT git auth %q %q %v", user, pw, ga.Expires)
	}

	in, a := e.appIntegration()
	e.fake.AddRepository(githubfake.Repo{FullName: "acme/r", Private: true})
	inst := e.fake.AddInstallation(githubfake.Installation{AppID: a.ID, Account: "acme"})
	c := e.open(in)
	ga, err = c.GitAuth(ctx, forge.Repository{FullName: "acme/r"}, nil, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, pw := decodeGitAuth(t, ga)
	if toks := e.fake.InstallationTokens(inst.ID); len(toks) != 1 || toks[0] != pw || !ga.Expires.Equal(e.clock.Now().Add(time.Hour)) {
		t.Errorf("installation git auth: %v, expires %s", toks, ga.Expires)
	}

	person := &forge.UserCredential{Login: "alice", Token: "ghu_person", Expires: e.clock.Now().Add(10 * time.Minute)}
	ga, err = c.GitAuth(ctx, forge.Repository{FullName: "acme/r"}, person, 5*time.Minute)
	if _, pw := decodeGitAuth(t, ga); err != nil || pw != "ghu_person" || !ga.Expires.Equal(person.Expires) {
		t.Errorf("acting person's git auth: %v", err)
	}
	_, err = c.GitAuth(ctx, forge.Repository{FullName: "acme/r"}, person, 20*time.Minute)
	if !errors.Is(err, forge.ErrUnauthorized) || strings.Contains(err.Error(), "ghu_person") {
		t.Errorf("person's token too short-lived: %v", err)
	}
}
