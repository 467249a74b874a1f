package gitea_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitea"
	"github.com/forgeway/forgeway/internal/forge/gitea/giteafake"
)

func decodeBasic(t *testing.T, header string) (string, string) {
	t.Helper()
	enc, ok := strings.CutPrefix(header, "Authorization: Basic ")
	if !ok {
		t.Fatalf("header %q is not a Basic authorization line", header)
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	user, pass, _ := strings.Cut(string(raw), ":")
	return user, pass
}

func TestGitAuth(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	c := e.open("integration-token", nil)
	ctx := context.Background()
	repo := forge.Repository{FullName: "alice/r"}

	auth, err := c.GitAuth(ctx, repo, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if user, pass := decodeBasic(t, auth.Header); user != "forgeway" || pass != "integration-token" || !auth.Expires.IsZero() {
		t.Errorf("integration credential %s:%s expires %s", user, pass, auth.Expires)
	}

	as := &forge.UserCredential{Login: "ann", Token: "ann-token"}
	auth, err = c.GitAuth(ctx, repo, as, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if user, pass := decodeBasic(t, auth.Header); user != "ann" || pass != "ann-token" {
		t.Errorf("acting credential %s:%s", user, pass)
	}

	// An acting person's OAuth token that runs out before the operation would end.
	as.Expires = fixedNow().Add(10 * time.Minute)
	if _, err := c.GitAuth(ctx, repo, as, time.Hour); !errors.Is(err, forge.ErrUnauthorized) || strings.Contains(err.Error(), "ann-token") {
		t.Errorf("expiring credential: %v", err)
	}
	if auth, err := c.GitAuth(ctx, repo, as, 5*time.Minute); err != nil || !auth.Expires.Equal(as.Expires) {
		t.Errorf("credential valid long enough: %+v %v", auth, err)
	}
}

func TestCreateBranchAndBranches(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	tok := e.fake.IssueToken("alice", "write:repository")
	e.fake.AddRepository(giteafake.Repo{FullName: "alice/r"})
	for i := range 60 {
		e.fake.SetBranch("alice/r", fmt.Sprintf("b%02d", i), fmt.Sprintf("%040d", i))
	}
	e.fake.AddCollaborator("alice/r", "ann", "write")
	ann := &forge.UserCredential{Login: "ann", Token: e.fake.IssueToken("ann", "write:repository")}
	c := e.open(tok, nil)
	ctx := context.Background()
	repo := forge.Repository{FullName: "alice/r"}

	sha := fmt.Sprintf("%040d", 7)
	ref, err := c.CreateBranch(ctx, repo, "refs/heads/feature/x", sha, nil)
	if err != nil || ref != (forge.Ref{Name: "refs/heads/feature/x", SHA: sha}) {
		t.Fatalf("CreateBranch: %+v %v", ref, err)
	}
	if _, err := c.CreateBranch(ctx, repo, "by-ann", sha, ann); err != nil {
		t.Fatalf("CreateBranch as ann: %v", err)
	}
	var he *forge.HostError
	if _, err := c.CreateBranch(ctx, repo, "feature/x", sha, nil); !errors.As(err, &he) || he.Status != 409 {
		t.Errorf("existing branch: %v", err)
	}
	if _, err := c.CreateBranch(ctx, repo, "", sha, nil); err == nil {
		t.Error("a branch without a name")
	}
	reader := &forge.UserCredential{Login: "rita", Token: e.fake.IssueToken("rita", "read:repository")}
	if _, err := c.CreateBranch(ctx, repo, "no", sha, reader); !errors.Is(err, forge.ErrForbidden) {
		t.Errorf("a read-only token creating a branch: %v", err)
	}

	branches, err := c.Branches(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range branches {
		got[b.Name] = b.SHA
	}
	if len(branches) != 63 || got["refs/heads/feature/x"] != sha || got["refs/heads/b59"] != fmt.Sprintf("%040d", 59) || got["refs/heads/main"] == "" {
		t.Errorf("%d branches: %v", len(branches), got)
	}
}

// TestCreateBranchOnOldGitea runs against a server that ignores old_ref_name, as Gitea before
// 1.20 does: the misplaced branch is deleted and the call fails.
func TestCreateBranchOnOldGitea(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.EscapedPath())
		mu.Unlock()
		if r.Method == http.MethodPost {
			var body map[string]string
			_ = json.NewDecoder(r.Body).Decode(&body)
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"name":"`+body["new_branch_name"]+`","commit":{"id":"ffffffffffffffffffffffffffffffffffffffff"}}`)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer old.Close()
	c, err := gitea.New().Open(context.Background(), forge.Integration{BaseURL: old.URL, Secrets: map[string]string{gitea.SecretToken: "t"}}, forge.Env{HTTP: old.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateBranch(context.Background(), forge.Repository{FullName: "a/b"}, "feature/x", "1234567", nil)
	if err == nil || !strings.Contains(err.Error(), "old_ref_name") {
		t.Fatalf("error %v", err)
	}
	want := []string{"POST /api/v1/repos/a/b/branches", "DELETE /api/v1/repos/a/b/branches/feature%2Fx"}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestCreatePullRequest(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	tok := e.fake.IssueToken("alice", "write:repository")
	e.fake.AddRepository(giteafake.Repo{FullName: "alice/r"})
	e.fake.SetBranch("alice/r", "feature/x", "1111111111111111111111111111111111111111")
	e.fake.SetBranch("alice/r", "draft", "2222222222222222222222222222222222222222")
	e.fake.AddCollaborator("alice/r", "ann", "write")
	ann := &forge.UserCredential{Login: "ann", Token: e.fake.IssueToken("ann", "write:repository")}
	c := e.open(tok, nil)
	ctx := context.Background()
	repo := forge.Repository{FullName: "alice/r"}
	base := e.fake.Branches("alice/r")["main"]

	pr, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "Widen", Body: "Fixes ABC-1", Source: "refs/heads/feature/x", Target: "main"}, ann)
	if err != nil {
		t.Fatal(err)
	}
	want := forge.PullRequest{
		Number: 1, Title: "Widen", Body: "Fixes ABC-1", State: "open", URL: e.fake.URL + "/alice/r/pulls/1",
		Author:  forge.Actor{Login: "ann", Name: "Ann", Email: "ann@noreply.gitea.local"},
		Source:  forge.RefAt{Ref: "feature/x", SHA: "1111111111111111111111111111111111111111", RepositoryFullName: "alice/r"},
		Target:  forge.RefAt{Ref: "main", SHA: base},
		Created: fixedNow(),
	}
	if diff := cmp.Diff(want, pr); diff != "" {
		t.Errorf("pull request (-want +got):\n%s", diff)
	}
	if prs := e.fake.PullRequests("alice/r"); len(prs) != 1 || prs[0].Author != "ann" {
		t.Errorf("on the host: %+v", prs)
	}

	d, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "Sketch", Source: "draft", Target: "main", Draft: true}, nil)
	if err != nil || !d.Draft || d.Title != "WIP: Sketch" || d.Author.Login != "alice" {
		t.Errorf("draft: %+v %v", d, err)
	}
	if d, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "[WIP] again", Source: "draft", Target: "feature/x", Draft: true}, nil); err != nil || d.Title != "[WIP] again" {
		t.Errorf("draft already marked: %+v %v", d, err)
	}

	var he *forge.HostError
	_, err = c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "Again", Source: "feature/x", Target: "main"}, nil)
	if !errors.As(err, &he) || he.Status != 409 || !strings.Contains(he.Message, "pull request already exists") {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "x", Source: "missing", Target: "main"}, nil); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("missing source: %v", err)
	}
	if _, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Source: "a", Target: "b"}, nil); err == nil {
		t.Error("no title")
	}
}
