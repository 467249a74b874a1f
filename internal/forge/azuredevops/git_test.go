package azuredevops

import (
	"context"
	"encoding/base64"
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

func TestGitAuth(t *testing.T) {
	e := newEnv(t, azurefake.Options{})
	c := e.open(e.integration("integration-pat"))
	ctx := context.Background()
	repo := forge.Repository{FullName: "Fiber/app"}
	header := func(tok string) string {
		return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(":"+tok))
	}
	got, err := c.GitAuth(ctx, repo, nil, time.Hour)
	if err != nil || got != (forge.GitAuth{Header: header("integration-pat")}) {
		t.Errorf("integration credential: %+v %v", got, err)
	}
	exp := e.clock.Now().Add(2 * time.Hour)
	as := &forge.UserCredential{Login: "alice", Token: "alice-pat", Expires: exp}
	got, err = c.GitAuth(ctx, repo, as, time.Hour)
	if err != nil || got != (forge.GitAuth{Header: header("alice-pat"), Expires: exp}) {
		t.Errorf("acting person: %+v %v", got, err)
	}
	_, err = c.GitAuth(ctx, repo, as, 3*time.Hour)
	if !errors.Is(err, forge.ErrUnauthorized) || strings.Contains(err.Error(), "alice-pat") {
		t.Errorf("a token expiring too soon: %v", err)
	}
}

func TestCreateBranchAndBranches(t *testing.T) {
	e := newEnv(t, azurefake.Options{})
	tok := e.admin()
	head := strings.Repeat("a", 40)
	e.fake.AddRepository(azurefake.Repo{Project: "Fiber", Name: "app", Branches: map[string]string{"main": head}})
	c := e.open(e.integration(tok))
	pages, _ := collect(t, c)
	repo := pages[0][0]
	ctx := context.Background()

	ref, err := c.CreateBranch(ctx, repo, "refs/heads/feature/x", head, nil)
	if err != nil || ref != (forge.Ref{Name: "refs/heads/feature/x", SHA: head}) {
		t.Fatalf("CreateBranch: %+v %v", ref, err)
	}
	if e.fake.Branches("Fiber/app")["feature/x"] != head {
		t.Errorf("host branches %v", e.fake.Branches("Fiber/app"))
	}
	_, err = c.CreateBranch(ctx, repo, "feature/x", head, nil)
	var he *forge.HostError
	if !errors.As(err, &he) || he.Status != http.StatusConflict || !strings.Contains(he.Message, "staleOldObjectId") {
		t.Errorf("existing branch: %v", err)
	}
	if _, err := c.CreateBranch(ctx, repo, "other", strings.Repeat("f", 40), nil); err == nil || !strings.Contains(err.Error(), "unresolvableToCommit") {
		t.Errorf("unknown commit: %v", err)
	}
	if _, err := c.CreateBranch(ctx, repo, "", head, nil); err == nil {
		t.Error("a branch without a name was created")
	}

	// As the acting person: their token, their scopes.
	reader := e.fake.IssuePAT(azurefake.PAT{User: "dave@example.com", Scopes: []string{azurefake.ScopeCode, azurefake.ScopeProject}})
	_, err = c.CreateBranch(ctx, repo, "by-dave", head, &forge.UserCredential{Login: "dave", Token: reader})
	if !errors.Is(err, forge.ErrUnauthorized) {
		t.Errorf("acting person without Code (Read & write): %v", err)
	}

	// Branches, across pages of the ref listing.
	for i := range refPage + 5 {
		e.fake.SetBranch("Fiber/app", fmt.Sprintf("b%04d", i), head)
	}
	branches, err := c.Branches(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	if len(branches) != refPage+7 || branches[0] != (forge.Ref{Name: "refs/heads/b0000", SHA: head}) {
		t.Errorf("%d branches, first %+v", len(branches), branches[0])
	}
	gets := 0
	for _, q := range e.recorder.sent() {
		if strings.HasPrefix(q, "GET ") && strings.HasSuffix(q, "/refs") {
			gets++
		}
	}
	if gets != 2 {
		t.Errorf("branches listed in %d requests, want 2 pages", gets)
	}
}

func TestCreatePullRequest(t *testing.T) {
	e := newEnv(t, azurefake.Options{})
	tok := e.admin()
	main, topic := strings.Repeat("a", 40), strings.Repeat("b", 40)
	e.fake.AddRepository(azurefake.Repo{Project: "Fiber", Name: "app", Branches: map[string]string{"main": main, "topic": topic}})
	c := e.open(e.integration(tok))
	pages, _ := collect(t, c)
	repo := pages[0][0]
	ctx := context.Background()

	pr, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "Add it", Body: "why", Source: "refs/heads/topic", Target: "main", Draft: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := forge.PullRequest{
		Number: 1, Title: "Add it", Body: "why", State: "open", Draft: true,
		URL:    e.fake.BaseURL + "/Fiber/_git/app/pullrequest/1",
		Author: forge.Actor{Login: "alice@example.com", Name: "Alice Admin"},
		Source: forge.RefAt{Ref: "topic", SHA: topic, RepositoryFullName: "Fiber/app"},
		Target: forge.RefAt{Ref: "main", SHA: main},
	}
	if diff := cmp.Diff(want, pr, cmpIgnoreCreated); diff != "" {
		t.Errorf("CreatePullRequest (-want +got):\n%s", diff)
	}
	if !pr.Created.Equal(e.clock.Now()) {
		t.Errorf("created %v", pr.Created)
	}

	_, err = c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "Again", Source: "topic", Target: "main"}, nil)
	var he *forge.HostError
	if !errors.As(err, &he) || he.Status != http.StatusConflict || !strings.Contains(he.Message, "TF401179") {
		t.Errorf("a second pull request for the same branches: %v", err)
	}
	if _, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "No", Source: "gone", Target: "main"}, nil); err == nil || !strings.Contains(err.Error(), "TF401398") {
		t.Errorf("missing source branch: %v", err)
	}
	if _, err := c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Source: "topic", Target: "main"}, nil); err == nil {
		t.Error("a pull request without a title was opened")
	}

	// As the acting person.
	e.fake.AddUser(azurefake.User{DisplayName: "Erin", UniqueName: "erin@example.com"})
	erin := e.fake.IssuePAT(azurefake.PAT{User: "erin@example.com"})
	e.fake.SetBranch("Fiber/app", "erin", topic)
	pr, err = c.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "Mine", Source: "erin", Target: "main"}, &forge.UserCredential{Login: "erin", Token: erin})
	if err != nil || pr.Author.Login != "erin@example.com" || e.fake.PullRequests("Fiber/app")[1].CreatedBy != "erin@example.com" {
		t.Errorf("as Erin: %+v %v", pr, err)
	}
}

var cmpIgnoreCreated = cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Created" }, cmp.Ignore())
