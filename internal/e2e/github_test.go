package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
	"github.com/forgeway/forgeway/internal/gittest"
	"github.com/forgeway/forgeway/internal/testserver"
)

// loader shares GitHub's API description between the fakes of this test binary.
var loader = apicheck.NewLoader()

type gitHost struct {
	fake *githubfake.GitServer
	root string
}

// newGitHost is a fake GitHub serving real git: a push through git http-backend makes the
// fake deliver the push event GitHub would send.
func newGitHost(t *testing.T) *gitHost {
	g := githubfake.NewGitServer(t, githubfake.Options{Loader: loader})
	return &gitHost{fake: g, root: g.Root}
}

// realRepo adds a repository to the fake whose git data is a real bare repository.
func (h *gitHost) realRepo(t *testing.T, fullName string) githubfake.Repo {
	return h.fake.AddGitRepository(t, fullName)
}

// TestGitHubTokenEndToEnd: connect with a personal access token, discover three pages,
// filter, attach (a hook on GitHub, a mirror), push through real git so that GitHub delivers,
// then see the mirror and the event log move; repair a hook deleted behind our back; follow a
// rename and a deletion; detach.
func TestGitHubTokenEndToEnd(t *testing.T) {
	eachEngine(t, func(t *testing.T, eng engine) {
		h := newGitHost(t)
		h.fake.AddUser("octo")
		pat := h.fake.IssuePAT(githubfake.PAT{Login: "octo"})
		h.fake.AddRepositories("octo", 200)
		app := h.realRepo(t, "octo/app")
		old := h.fake.AddRepository(githubfake.Repo{FullName: "octo/zz-old", Archived: true})
		e := start(t, eng)

		var in api.Integration
		e.MustCall("POST", "/api/v1/integrations", map[string]any{
			"kind": "github", "name": "octo", "base_url": h.fake.URL,
			"settings": map[string]string{"auth": "token"}, "secrets": map[string]string{"token": pat},
			"filter": "!archived",
		}, &in, http.StatusCreated)

		// First discovery: 202 repositories, three pages of 100.
		testserver.Eventually(t, 30*time.Second, "discovery", func() bool { return len(e.Repos(in.ID, "")) == 202 })
		if n := h.fake.RequestCount("/user/repos"); n != 3 {
			t.Errorf("first discovery made %d listing requests, want 3", n)
		}
		e.MustCall("GET", "/api/v1/integrations/"+in.ID, nil, &in, 200)
		if in.Status != "active" {
			t.Errorf("integration status %q after a successful discovery", in.Status)
		}
		archived := e.RepoByName(in.ID, "octo/zz-old")
		if archived.Matched || archived.HostID != fmt.Sprint(old.ID) || !archived.Archived {
			t.Errorf("archived repository: %+v", archived)
		}
		var prob map[string]any
		if st := e.Call("POST", "/api/v1/repositories/"+archived.ID+"/attach", nil, &prob); st != http.StatusConflict {
			t.Errorf("attaching a filtered repository: %d %v", st, prob)
		}

		// The budget GitHub reports is exported per integration.
		if m := string(metrics(t, e.URL)); !strings.Contains(m, `forgeway_host_rate_limit_remaining{integration="`+in.ID+`"}`) {
			t.Errorf("/metrics has no rate-limit budget for the integration")
		}

		// An unchanged refresh costs no rate limit: every page is answered 304 from the cache.
		used := h.fake.RateLimitUsed("user:octo")
		if used < 3 {
			t.Fatalf("the first discovery spent %d rate-limit points; the probe is not counting", used)
		}
		var job api.Job
		e.MustCall("POST", "/api/v1/integrations/"+in.ID+"/refresh", nil, &job, http.StatusAccepted)
		e.WaitJob(job)
		if got := h.fake.RateLimitUsed("user:octo"); got != used {
			t.Errorf("an unchanged refresh spent %d rate-limit points", got-used)
		}

		// Attach: one hook on GitHub with our URL and secret, then a mirror.
		repo := e.RepoByName(in.ID, "octo/app")
		e.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/attach", nil, &job, http.StatusAccepted)
		e.WaitJob(job)
		hooks := h.fake.Hooks("octo/app")
		if len(hooks) != 1 || hooks[0].URL != in.WebhookURL || !hooks[0].Active || hooks[0].Secret == "" {
			t.Fatalf("hooks after attach: %+v (want one to %s)", hooks, in.WebhookURL)
		}
		for _, ev := range []string{"create", "delete", "push", "pull_request", "repository"} {
			if !contains(hooks[0].Events, ev) {
				t.Errorf("hook lacks event %s: %v", ev, hooks[0].Events)
			}
		}
		testserver.Eventually(t, 30*time.Second, "first clone", func() bool {
			repo = e.RepoByName(in.ID, "octo/app")
			return repo.Mirror != nil && repo.Mirror.Status == "ready"
		})
		if repo.Mirror.Head != app.Branches["main"] {
			t.Errorf("mirror head %s, want %s", repo.Mirror.Head, app.Branches["main"])
		}
		// Attaching again changes nothing on GitHub.
		e.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/attach", nil, &job, http.StatusAccepted)
		e.WaitJob(job)
		if again := h.fake.Hooks("octo/app"); len(again) != 1 || again[0].ID != hooks[0].ID {
			t.Fatalf("hooks after attaching twice: %+v", again)
		}

		// A push through real git: GitHub delivers it, signed; the mirror and the log follow.
		work := gittest.CloneWork(t, h.fake.URL+"/octo/app.git", gittest.BasicAuth("x-access-token", pat))
		sha := gittest.Commit(t, work, "feature.txt", "new\n", "add a feature")
		gittest.Push(t, work, gittest.BasicAuth("x-access-token", pat), "main")
		testserver.Eventually(t, 30*time.Second, "mirror to hold the pushed commit", func() bool {
			ok, _ := e.App.Mirrors.HasCommit(context.Background(), repo.ID, sha)
			return ok
		})
		var evs api.List[map[string]any]
		e.MustCall("GET", "/api/v1/events?type=dev.forgeway.push&integration="+in.ID, nil, &evs, 200)
		if len(evs.Items) != 1 || jsonPath(evs.Items[0], "data.after") != sha || evs.Items[0]["subject"] != "refs/heads/main" {
			t.Fatalf("push events: %s", fmtJSON(evs.Items))
		}

		// A hook deleted behind our back is re-created by reconciliation.
		deleteHook(t, h, pat, "octo/app", hooks[0].ID)
		e.MustCall("POST", "/api/v1/integrations/"+in.ID+"/reconcile", nil, &job, http.StatusAccepted)
		e.WaitJob(job)
		if again := h.fake.Hooks("octo/app"); len(again) != 1 || again[0].URL != in.WebhookURL {
			t.Fatalf("hooks after reconciliation: %+v", again)
		}

		// A rename keeps the catalog entry; a deleted repository leaves the catalog.
		h.fake.RenameRepository("octo/repo-0001", "renamed")
		h.fake.DeleteRepository("octo/repo-0002")
		before := e.RepoByName(in.ID, "octo/repo-0001")
		e.MustCall("POST", "/api/v1/integrations/"+in.ID+"/refresh", nil, &job, http.StatusAccepted)
		e.WaitJob(job)
		after := e.RepoByName(in.ID, "octo/renamed")
		if after.ID != before.ID {
			t.Errorf("rename made a new entry: %s → %s", before.ID, after.ID)
		}
		for _, r := range e.Repos(in.ID, "") {
			if r.FullName == "octo/repo-0002" || r.FullName == "octo/repo-0001" {
				t.Errorf("%s still in the catalog", r.FullName)
			}
		}

		// Rotating the webhook secret gives the hook on GitHub the new secret, then ends the
		// rotation: deliveries signed with the old secret are refused.
		var rotating api.Integration
		e.MustCall("PATCH", "/api/v1/integrations/"+in.ID, map[string]any{"rotate_webhook_secret": "rotated-secret"}, &rotating, 200)
		testserver.Eventually(t, 30*time.Second, "rotation finished", func() bool {
			e.MustCall("GET", "/api/v1/integrations/"+in.ID, nil, &rotating, 200)
			return !rotating.Rotating
		})
		if hs := h.fake.Hooks("octo/app"); len(hs) != 1 || hs[0].Secret != "rotated-secret" {
			t.Fatalf("hook after rotation: %+v", hs)
		}
		ds, err := h.fake.DeliverPush(context.Background(), "octo/app", githubfake.Push{Ref: "refs/heads/rotated", Commits: []githubfake.Commit{{Message: "after rotation"}}})
		if err != nil || len(ds) != 1 || ds[0].Status != http.StatusAccepted {
			t.Fatalf("delivery signed with the new secret: %+v %v", ds, err)
		}

		// Detach removes the hook and the mirror; detaching again is not an error.
		e.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/detach", nil, &job, http.StatusAccepted)
		e.WaitJob(job)
		if left := h.fake.Hooks("octo/app"); len(left) != 0 {
			t.Fatalf("hooks after detach: %+v", left)
		}
		if e.App.Mirrors.Exists(repo.ID) {
			t.Error("mirror left after detach")
		}
		e.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/detach", nil, &job, http.StatusAccepted)
		e.WaitJob(job)
	})
}

// deleteHook deletes a hook through GitHub's API, as a person would.
func deleteHook(t *testing.T, h *gitHost, token, repo string, id int64) {
	t.Helper()
	req, _ := http.NewRequest("DELETE", fmt.Sprintf("%s/repos/%s/hooks/%d", h.fake.API, repo, id), nil)
	req.Header.Set("Authorization", "token "+token)
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := h.fake.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete hook: %d", resp.StatusCode)
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
