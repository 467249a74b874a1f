package giteafake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitea/giteawebhook"
	"github.com/forgeway/forgeway/internal/gittest"
)

// One loader for the test binary: loading the description is the slow part.
var loader = apicheck.NewLoader()

func newFake(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Now == nil {
		o.Now = func() time.Time { return time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) }
	}
	o.Loader = loader
	return New(t, o)
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r resp) message(t *testing.T) string {
	t.Helper()
	var e struct{ Message string }
	r.json(t, &e)
	return e.Message
}

func do(t *testing.T, s *Server, method, path, tok string, body any) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, s.API+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "token "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func TestAuthenticationAndScopes(t *testing.T) {
	s := newFake(t, Options{})
	all := s.IssueToken("alice", "all")
	repoOnly := s.IssueToken("alice", "read:repository")
	revoked := s.IssueToken("alice", "all")
	s.RevokeToken(revoked)

	tests := []struct {
		name, path, tok string
		status          int
		message         string
	}{
		{"version needs nothing", "/version", "", 200, ""},
		{"a wrong token is refused everywhere", "/version", "nope", 401, "invalid username, password or token"},
		{"a revoked token", "/user", revoked, 401, "invalid username, password or token"},
		{"no token", "/user", "", 401, "token is required"},
		{"scope missing", "/user", repoOnly, 403, "token does not have at least one of required scope(s): [read:user]"},
		{"user then repository scopes", "/user/repos", repoOnly, 403, "[read:user]"},
		{"all", "/user", all, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, "GET", tt.path, tt.tok, nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.message != "" && !strings.Contains(r.message(t), tt.message) {
				t.Errorf("message %q, want %q", r.message(t), tt.message)
			}
		})
	}
	var v struct{ Version string }
	do(t, s, "GET", "/version", "", nil).json(t, &v)
	if v.Version != "1.27.3" {
		t.Errorf("version %q", v.Version)
	}
	var u struct{ Login, Username string }
	do(t, s, "GET", "/user", all, nil).json(t, &u)
	if u.Login != "alice" || u.Username != "alice" {
		t.Errorf("user %+v", u)
	}
	// Basic with the token as password, or as user name, authenticates too.
	for _, set := range []func(*http.Request){
		func(r *http.Request) { r.SetBasicAuth("anyone", all) },
		func(r *http.Request) { r.SetBasicAuth(all, "") },
		func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+all) },
	} {
		req, _ := http.NewRequest("GET", s.API+"/user", nil)
		set(req)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", req.Header.Get("Authorization")[:6], res.StatusCode)
		}
	}
}

func TestMyReposVisibilityAndPagination(t *testing.T) {
	s := newFake(t, Options{})
	tok := s.IssueToken("alice", "read:user", "read:repository")
	s.AddRepositories("alice", 3)
	s.AddOrg("acme", false)
	s.AddOrgMember("acme", "alice", "write")
	s.AddRepository(Repo{FullName: "acme/a", Private: true})
	s.AddRepository(Repo{FullName: "bob/secret", Private: true})
	s.AddRepository(Repo{FullName: "bob/public"})
	s.AddRepository(Repo{FullName: "carol/shared", Private: true})
	s.AddCollaborator("carol/shared", "alice", "read")

	var all []struct {
		FullName    string `json:"full_name"`
		Permissions struct{ Admin, Push, Pull bool }
	}
	r := do(t, s, "GET", "/user/repos", tok, nil)
	r.json(t, &all)
	var names []string
	for _, x := range all {
		names = append(names, x.FullName)
	}
	if !slices.Equal(names, []string{"alice/repo-001", "alice/repo-002", "alice/repo-003", "acme/a", "carol/shared"}) {
		t.Fatalf("repositories %v", names)
	}
	if p := all[3].Permissions; p.Admin || !p.Push || !p.Pull {
		t.Errorf("acme/a permissions %+v", p)
	}
	if p := all[4].Permissions; p.Push || !p.Pull {
		t.Errorf("carol/shared permissions %+v", p)
	}
	if r.header.Get("X-Total-Count") != "5" || r.header.Get("Link") != "" {
		t.Errorf("headers %v", r.header)
	}

	r = do(t, s, "GET", "/user/repos?limit=2&page=2", tok, nil)
	r.json(t, &all)
	wantLink := fmt.Sprintf(`<%[1]s/api/v1/user/repos?limit=2&page=3>; rel="next",<%[1]s/api/v1/user/repos?limit=2&page=3>; rel="last",<%[1]s/api/v1/user/repos?limit=2&page=1>; rel="first",<%[1]s/api/v1/user/repos?limit=2&page=1>; rel="prev"`, s.URL)
	if len(all) != 2 || all[0].FullName != "alice/repo-003" || r.header.Get("Link") != wantLink {
		t.Errorf("page 2: %v %q", all, r.header.Get("Link"))
	}

	// Limits above MAX_RESPONSE_ITEMS are cut to it; no limit is DEFAULT_PAGING_NUM.
	s2 := newFake(t, Options{MaxResponseItems: 3, DefaultPagingNum: 2})
	tok2 := s2.IssueToken("alice", "all")
	s2.AddRepositories("alice", 7)
	for q, want := range map[string]int{"?limit=50": 3, "": 2, "?limit=50&page=3": 1, "?limit=50&page=9": 0} {
		var page []json.RawMessage
		do(t, s2, "GET", "/user/repos"+q, tok2, nil).json(t, &page)
		if len(page) != want {
			t.Errorf("%q: %d repositories, want %d", q, len(page), want)
		}
	}

	// Private repositories are hidden from those who may not read them.
	if r := do(t, s, "GET", "/repos/bob/secret", tok, nil); r.status != 404 {
		t.Errorf("bob/secret: %d", r.status)
	}
	if r := do(t, s, "GET", "/repos/bob/public", "", nil); r.status != 200 {
		t.Errorf("bob/public anonymously: %d", r.status)
	}
	id := s.AddRepository(Repo{FullName: "alice/by-id"}).ID
	var byID struct {
		FullName string `json:"full_name"`
	}
	do(t, s, "GET", fmt.Sprintf("/repositories/%d", id), tok, nil).json(t, &byID)
	if byID.FullName != "alice/by-id" {
		t.Errorf("by id: %+v", byID)
	}
}

func TestHooks(t *testing.T) {
	s := newFake(t, Options{})
	admin := s.IssueToken("alice", "write:repository")
	s.AddRepository(Repo{FullName: "alice/r"})
	s.AddCollaborator("alice/r", "bob", "write")
	bob := s.IssueToken("bob", "write:repository")

	r := do(t, s, "POST", "/repos/alice/r/hooks", admin, map[string]any{
		"type": "gitea", "config": map[string]string{"url": "https://f.example/hook", "content_type": "json", "secret": "s"},
		"events": []string{"push", "pull_request"},
	})
	var h struct {
		ID     int64
		Active bool
		Events []string
		Config map[string]string
	}
	r.json(t, &h)
	if r.status != 201 || h.Active || h.Config["secret"] != "" || h.Config["url"] != "https://f.example/hook" {
		t.Fatalf("created %d %s", r.status, r.body)
	}
	for _, e := range []string{"push", "pull_request", "pull_request_sync", "pull_request_review", "pull_request_label"} {
		if !slices.Contains(h.Events, e) {
			t.Errorf("events %v lack %s", h.Events, e)
		}
	}
	if slices.Contains(h.Events, "create") || slices.Contains(h.Events, "issues") {
		t.Errorf("events %v", h.Events)
	}
	if stored := s.Hooks("alice/r")[0]; stored.Secret != "s" {
		t.Errorf("stored %+v", stored)
	}

	for name, body := range map[string]map[string]any{
		"Missing config option: url":          {"type": "gitea", "config": map[string]string{"content_type": "json"}},
		"Missing config option: content_type": {"type": "gitea", "config": map[string]string{"url": "u"}},
		"Invalid content type":                {"type": "gitea", "config": map[string]string{"url": "u", "content_type": "xml"}},
	} {
		if r := do(t, s, "POST", "/repos/alice/r/hooks", admin, body); r.status != 422 || r.message(t) != name {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := do(t, s, "GET", "/repos/alice/r/hooks", bob, nil); r.status != 403 || !strings.Contains(r.message(t), "admin") {
		t.Errorf("a writer listing hooks: %d %s", r.status, r.body)
	}

	// Edit: events and branch filter replaced, secret kept unless sent, active only if sent.
	s.UpdateHook("alice/r", h.ID, func(x *Hook) { x.BranchFilter = "main" })
	r = do(t, s, "PATCH", fmt.Sprintf("/repos/alice/r/hooks/%d", h.ID), admin, map[string]any{"config": map[string]string{"content_type": "form"}, "active": true})
	r.json(t, &h)
	stored := s.Hooks("alice/r")[0]
	if r.status != 200 || !h.Active || !slices.Equal(h.Events, []string{"push"}) || stored.BranchFilter != "" || stored.Secret != "s" || stored.ContentType != "form" {
		t.Errorf("edited %d %+v %+v", r.status, h, stored)
	}
	if r := do(t, s, "DELETE", fmt.Sprintf("/repos/alice/r/hooks/%d", h.ID), admin, nil); r.status != 204 {
		t.Errorf("delete: %d", r.status)
	}
	if r := do(t, s, "DELETE", "/repos/alice/r/hooks/0", admin, nil); r.status != 404 {
		t.Errorf("delete missing: %d", r.status)
	}
	if r := do(t, s, "DELETE", "/repos/alice/r/hooks/0", s.IssueToken("alice", "read:repository"), nil); r.status != 403 || !strings.Contains(r.message(t), "[write:repository]") {
		t.Errorf("delete with a read token: %d %s", r.status, r.body)
	}
}

func TestBranchesAndPullRequests(t *testing.T) {
	s := newFake(t, Options{})
	tok := s.IssueToken("alice", "write:repository")
	s.AddRepository(Repo{FullName: "alice/r"})
	head := s.Branches("alice/r")["main"]
	s.SetBranch("alice/r", "feature", "1111111111111111111111111111111111111111")

	r := do(t, s, "POST", "/repos/alice/r/branches", tok, map[string]string{"new_branch_name": "topic", "old_ref_name": head})
	var b struct {
		Name   string
		Commit struct{ ID string }
	}
	r.json(t, &b)
	if r.status != 201 || b.Name != "topic" || b.Commit.ID != head {
		t.Fatalf("create branch: %d %s", r.status, r.body)
	}
	if r := do(t, s, "POST", "/repos/alice/r/branches", tok, map[string]string{"new_branch_name": "topic"}); r.status != 409 {
		t.Errorf("existing: %d", r.status)
	}
	if r := do(t, s, "POST", "/repos/alice/r/branches", tok, map[string]string{"new_branch_name": "x", "old_ref_name": "nope"}); r.status != 500 {
		t.Errorf("unknown ref: %d", r.status)
	}
	if r := do(t, s, "POST", "/repos/alice/r/branches", tok, map[string]string{"new_branch_name": "x", "old_branch_name": "nope"}); r.status != 404 {
		t.Errorf("unknown old branch: %d", r.status)
	}
	var list []json.RawMessage
	r = do(t, s, "GET", "/repos/alice/r/branches", tok, nil)
	r.json(t, &list)
	if len(list) != 3 || r.header.Get("X-Total-Count") != "3" {
		t.Errorf("branches: %s", r.body)
	}

	r = do(t, s, "POST", "/repos/alice/r/pulls", tok, map[string]string{"title": "WIP: Widen", "head": "feature", "base": "main"})
	var p struct {
		Number int64
		Draft  bool
		State  string
		Head   struct{ Ref, SHA string }
	}
	r.json(t, &p)
	if r.status != 201 || p.Number != 1 || !p.Draft || p.State != "open" || p.Head.SHA != "1111111111111111111111111111111111111111" {
		t.Fatalf("create pull: %d %s", r.status, r.body)
	}
	if r := do(t, s, "POST", "/repos/alice/r/pulls", tok, map[string]string{"title": "again", "head": "feature", "base": "main"}); r.status != 409 || !strings.Contains(r.message(t), "pull request already exists") {
		t.Errorf("duplicate: %d %s", r.status, r.body)
	}
	if r := do(t, s, "POST", "/repos/alice/r/pulls", tok, map[string]string{"title": "x", "head": "missing", "base": "main"}); r.status != 404 {
		t.Errorf("missing head: %d", r.status)
	}
	if r := do(t, s, "GET", "/repos/alice/r/pulls/1", tok, nil); r.status != 200 {
		t.Errorf("get pull: %d", r.status)
	}
}

// receiver records deliveries.
type receiver struct {
	mu  sync.Mutex
	got []forge.Delivery
	srv *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, forge.Delivery{Header: r.Header.Clone(), Body: b, ReceivedAt: time.Now()})
		rc.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) take() []forge.Delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := rc.got
	rc.got = nil
	return out
}

func TestGitPushDeliveries(t *testing.T) {
	for _, forgejo := range []bool{false, true} {
		t.Run(map[bool]string{false: "gitea", true: "forgejo"}[forgejo], func(t *testing.T) {
			s := newFake(t, Options{Forgejo: forgejo})
			rc := newReceiver(t)
			s.AddUser("alice", false)
			tok := s.IssueToken("alice", "write:repository")
			s.AddGitRepository("alice/r")
			hookID := s.AddHook("alice/r", Hook{URL: rc.srv.URL, Secret: "s3cret", Events: []string{"create", "delete", "push", "pull_request"}, Active: true})
			s.AddHook("alice/r", Hook{URL: rc.srv.URL + "/inactive", Secret: "x", Events: []string{"push"}})
			auth := gittest.BasicAuth("whoever", tok)

			work := gittest.CloneWork(t, s.CloneURL("alice/r"), auth)
			first := gittest.Commit(t, work, "a.txt", "a\n", "ABC-1 first")
			second := gittest.Commit(t, work, "b.txt", "b\n", "ABC-2 second")
			gittest.Push(t, work, auth, "main")
			gittest.Git(t, work, "checkout", "--quiet", "-b", "topic")
			gittest.Push(t, work, auth, "topic")
			gittest.Push(t, work, auth, ":topic")

			wh := giteawebhook.New()
			got := rc.take()
			var events []string
			for _, d := range got {
				if err := wh.Verify(d, forge.VerifyKeys{Secrets: []string{"s3cret"}}); err != nil {
					t.Fatalf("verify %s: %v", d.Header.Get("X-Gitea-Event"), err)
				}
				if forgejo != (d.Header.Get("X-Forgejo-Delivery") != "") {
					t.Errorf("X-Forgejo-Delivery %q with Forgejo %v", d.Header.Get("X-Forgejo-Delivery"), forgejo)
				}
				info, err := wh.Identify(d)
				if err != nil {
					t.Fatal(err)
				}
				events = append(events, info.Event)
			}
			if !slices.Equal(events, []string{"push", "create", "push", "delete"}) {
				t.Fatalf("events %v", events)
			}
			res, err := wh.Normalize(context.Background(), got[0], nil)
			if err != nil {
				t.Fatal(err)
			}
			push := res.Events[0].Data.(forge.PushData)
			if push.After != second || push.TotalCommits != 2 || len(push.Commits) != 2 || push.Commits[0].ID != second || push.Commits[1].ID != first ||
				push.Pusher.Login != "alice" || push.Commits[0].Message != "ABC-2 second\n" {
				t.Errorf("push %+v", push)
			}
			res, _ = wh.Normalize(context.Background(), got[1], nil)
			if ref := res.Events[0].Data.(forge.RefData); ref.Ref != "refs/heads/topic" || ref.SHA != second {
				t.Errorf("create %+v", ref)
			}

			// Gitea's test delivery: the default branch's head onto itself, to one hook.
			if r := do(t, s, "POST", fmt.Sprintf("/repos/alice/r/hooks/%d/tests", hookID), s.IssueToken("alice", "all"), nil); r.status != 204 {
				t.Fatalf("test hook: %d", r.status)
			}
			got = rc.take()
			if len(got) != 1 {
				t.Fatalf("%d test deliveries", len(got))
			}
			if info, _ := wh.Identify(got[0]); !info.Test {
				t.Errorf("test delivery not identified as one: %+v", info)
			}
			if h := s.Hooks("alice/r"); h[0].LastStatus != "succeed" || h[1].LastStatus != "" {
				t.Errorf("last statuses %+v", h)
			}
		})
	}
}

func TestPullRequestDeliveries(t *testing.T) {
	s := newFake(t, Options{})
	rc := newReceiver(t)
	tok := s.IssueToken("alice", "write:repository")
	s.AddGitRepository("alice/r")
	s.AddHook("alice/r", Hook{URL: rc.srv.URL, Secret: "s", Events: []string{"pull_request"}, Active: true})
	auth := gittest.BasicAuth("alice", tok)
	work := gittest.CloneWork(t, s.CloneURL("alice/r"), auth)
	gittest.Git(t, work, "checkout", "--quiet", "-b", "feature")
	gittest.Commit(t, work, "f.txt", "f\n", "feature")
	gittest.Push(t, work, auth, "feature")
	if r := do(t, s, "POST", "/repos/alice/r/pulls", tok, map[string]string{"title": "Feature", "head": "feature", "base": "main"}); r.status != 201 {
		t.Fatalf("create pull: %d %s", r.status, r.body)
	}
	newer := gittest.Commit(t, work, "g.txt", "g\n", "more")
	gittest.Push(t, work, auth, "feature")
	s.ClosePullRequest("alice/r", 1, "alice", true)

	wh := giteawebhook.New()
	var types []string
	for _, d := range rc.take() {
		res, err := wh.Normalize(context.Background(), d, nil)
		if err != nil || len(res.Events) != 1 {
			t.Fatalf("normalize: %+v %v", res, err)
		}
		types = append(types, res.Events[0].Type)
		if pr := res.Events[0].Data.(forge.PullRequestData); res.Events[0].Type != "dev.forgeway.pull_request.opened" && pr.Source.SHA != newer {
			t.Errorf("%s: head %s, want %s", res.Events[0].Type, pr.Source.SHA, newer)
		}
	}
	want := []string{"dev.forgeway.pull_request.opened", "dev.forgeway.pull_request.updated", "dev.forgeway.pull_request.merged"}
	if !slices.Equal(types, want) {
		t.Errorf("events %v, want %v", types, want)
	}
	if b := s.Branches("alice/r"); b["main"] != newer {
		t.Errorf("main after the merge: %s", b["main"])
	}
}

func TestGitGate(t *testing.T) {
	s := newFake(t, Options{})
	s.AddUser("alice", false)
	s.AddGitRepository("alice/private")
	s.AddGitRepository("alice/public")
	s.mu.Lock()
	s.repos[s.names["alice/private"]].private = true
	s.mu.Unlock()
	s.AddCollaborator("alice/private", "reader", "read")
	owner := s.IssueToken("alice", "write:repository")
	readScope := s.IssueToken("alice", "read:repository")
	reader := s.IssueToken("reader", "write:repository")
	revoked := s.IssueToken("alice", "all")
	s.RevokeToken(revoked)

	status := func(repo, service, tok string) int {
		req, _ := http.NewRequest("GET", s.URL+"/alice/"+repo+".git/info/refs?service="+service, nil)
		if tok != "" {
			req.SetBasicAuth("x", tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == 401 && res.Header.Get("WWW-Authenticate") == "" {
			t.Error("401 without a challenge")
		}
		return res.StatusCode
	}
	tests := []struct {
		repo, service, tok string
		want               int
	}{
		{"public", "git-upload-pack", "", 200},
		{"public", "git-receive-pack", "", 401},
		{"private", "git-upload-pack", "", 401},
		{"private", "git-upload-pack", owner, 200},
		{"private", "git-upload-pack", revoked, 401},
		{"private", "git-receive-pack", owner, 200},
		{"private", "git-receive-pack", readScope, 403},
		{"private", "git-upload-pack", reader, 200},
		{"private", "git-receive-pack", reader, 403},
		{"missing", "git-upload-pack", owner, 404},
	}
	for _, tt := range tests {
		if got := status(tt.repo, tt.service, tt.tok); got != tt.want {
			t.Errorf("%s %s with token %v: %d, want %d", tt.repo, tt.service, tt.tok != "", got, tt.want)
		}
	}
}

func TestFailuresAndRateLimit(t *testing.T) {
	s := newFake(t, Options{RateLimit: 2})
	tok := s.IssueToken("alice", "all")
	r := do(t, s, "GET", "/user", tok, nil)
	if r.header.Get("X-RateLimit-Limit") != "2" || r.header.Get("X-RateLimit-Remaining") != "1" {
		t.Errorf("headers %v", r.header)
	}
	do(t, s, "GET", "/user", tok, nil)
	r = do(t, s, "GET", "/user", tok, nil)
	if r.status != 429 || r.header.Get("Retry-After") != "3600" || r.header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("spent budget: %d %v", r.status, r.header)
	}

	s = newFake(t, Options{})
	tok = s.IssueToken("alice", "all")
	s.FailNext("/user/repos", 503, http.Header{"Retry-After": {"7"}})
	s.FailNext("", 502, nil)
	if r := do(t, s, "GET", "/user", tok, nil); r.status != 502 {
		t.Errorf("any-path failure hit /user with %d", r.status)
	}
	if r := do(t, s, "GET", "/user/repos", tok, nil); r.status != 503 || r.header.Get("Retry-After") != "7" {
		t.Errorf("injected: %d %v", r.status, r.header)
	}
	if r := do(t, s, "GET", "/user/repos", tok, nil); r.status != 200 {
		t.Errorf("after the failure: %d", r.status)
	}
	s.HangNext("/user")
	client := &http.Client{Timeout: 100 * time.Millisecond}
	req, _ := http.NewRequest("GET", s.API+"/user", nil)
	if _, err := client.Do(req); err == nil {
		t.Error("a hung request answered")
	}
	if n := s.RequestCount(""); n != 4 {
		t.Errorf("%d requests counted", n)
	}
}

// recordingTB captures what the fake reports, to show that its checks are wired.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Helper() {}

func TestViolationsAreReported(t *testing.T) {
	rec := &recordingTB{TB: t}
	s := New(rec, Options{Loader: loader})
	tok := s.IssueToken("alice", "all")
	s.AddRepository(Repo{FullName: "alice/r"})
	do(t, s, "GET", "/repos/alice/r", tok, nil)
	do(t, s, "GET", "/repos/alice/r/nonexistent", tok, nil)
	do(t, s, "POST", "/repos/alice/r/hooks", tok, map[string]any{"type": "gitea", "config": "not an object"})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errs) != 2 || !strings.Contains(rec.errs[0], "no operation for GET /api/v1/repos/alice/r/nonexistent") ||
		!strings.Contains(rec.errs[1], "repoCreateHook") {
		t.Errorf("reports: %q", rec.errs)
	}
}
