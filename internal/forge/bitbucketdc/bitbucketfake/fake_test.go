package bitbucketfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bbwebhook"
	"github.com/forgeway/forgeway/internal/gittest"
)

// One loader for the whole test binary: loading the description is the slow part.
var loader = apicheck.NewLoader()

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newFake(t *testing.T, o Options) (*Server, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	if o.Now == nil {
		o.Now = clk.Now
	}
	o.Loader = loader
	return New(t, o), clk
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

// do sends one request to the fake; path is below the base URL.
func do(t *testing.T, s *Server, method, path, token string, body any) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

type errorsBody struct {
	Errors []struct {
		Message       string `json:"message"`
		ExceptionName string `json:"exceptionName"`
	} `json:"errors"`
}

func exception(t *testing.T, r resp) string {
	t.Helper()
	var e errorsBody
	r.json(t, &e)
	if len(e.Errors) == 0 {
		t.Fatalf("error body without errors: %s", r.body)
	}
	return e.Errors[0].ExceptionName
}

func TestAuthentication(t *testing.T) {
	s, clk := newFake(t, Options{})
	s.AddRepository(Repo{Project: "PRJ", Slug: "private"})
	s.AddRepository(Repo{Project: "PRJ", Slug: "open", Public: true})
	s.Grant("alice", "PRJ", "PROJECT_ADMIN")
	personal := s.IssueToken(Token{User: "alice", ProjectPermission: "PROJECT_READ", RepoPermission: "REPO_ADMIN"})
	expiring := s.IssueToken(Token{Project: "PRJ", RepoPermission: "REPO_READ", Expires: clk.Now().Add(time.Hour)})
	revoked := s.IssueToken(Token{Repository: "PRJ/private", RepoPermission: "REPO_READ"})
	s.RevokeToken(revoked)

	// Anonymous: public only; the private repository is not listed and not readable.
	var page struct {
		Values []struct {
			Slug string `json:"slug"`
		} `json:"values"`
	}
	r := do(t, s, "GET", "/rest/api/1.0/repos", "", nil)
	r.json(t, &page)
	if r.status != 200 || len(page.Values) != 1 || page.Values[0].Slug != "open" || r.header.Get("X-AUSERNAME") != "" {
		t.Errorf("anonymous listing %d %s", r.status, r.body)
	}
	if r := do(t, s, "GET", "/rest/api/1.0/projects/PRJ/repos/private", "", nil); r.status != 401 || exception(t, r) != "com.atlassian.bitbucket.AuthorisationException" {
		t.Errorf("anonymous read of a private repository: %d %s", r.status, r.body)
	}
	// A personal token, as a bearer token or as Basic with the owner's login.
	if r := do(t, s, "GET", "/rest/api/1.0/projects/prj/repos/PRIVATE", personal, nil); r.status != 200 || r.header.Get("X-AUSERNAME") != "alice" {
		t.Errorf("bearer read %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest("GET", s.API()+"/projects/PRJ/repos/private", nil)
	req.SetBasicAuth("alice", personal)
	if res, err := s.Client().Do(req); err != nil || res.StatusCode != 200 {
		t.Errorf("basic read: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	req.SetBasicAuth("bob", personal)
	if res, err := s.Client().Do(req); err != nil || res.StatusCode != 401 {
		t.Errorf("basic read with another login: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	// Refused credentials are refused even on anonymous resources.
	for _, tok := range []string{revoked, "not-a-token"} {
		r := do(t, s, "GET", "/rest/api/1.0/repos", tok, nil)
		if r.status != 401 || exception(t, r) != "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException" {
			t.Errorf("refused token: %d %s", r.status, r.body)
		}
	}
	if r := do(t, s, "GET", "/rest/api/1.0/projects/PRJ/repos/private", expiring, nil); r.status != 200 {
		t.Errorf("before expiry: %d", r.status)
	}
	clk.Add(2 * time.Hour)
	if r := do(t, s, "GET", "/rest/api/1.0/projects/PRJ/repos/private", expiring, nil); r.status != 401 {
		t.Errorf("after expiry: %d", r.status)
	}
	// /rest/api/latest is the same API.
	if r := do(t, s, "GET", "/rest/api/latest/projects/PRJ/repos/private", personal, nil); r.status != 200 {
		t.Errorf("latest: %d", r.status)
	}
}

func TestTokenScopes(t *testing.T) {
	s, _ := newFake(t, Options{})
	s.AddRepository(Repo{Project: "PRJ", Slug: "a"})
	s.AddRepository(Repo{Project: "PRJ", Slug: "b"})
	s.AddRepository(Repo{Project: "OTHER", Slug: "c"})
	s.Grant("carol", "PRJ", "PROJECT_READ")
	listed := func(tok, perm string) []string {
		var page struct {
			Values []struct {
				Slug string `json:"slug"`
			} `json:"values"`
		}
		r := do(t, s, "GET", "/rest/api/1.0/repos?permission="+perm, tok, nil)
		r.json(t, &page)
		var out []string
		for _, v := range page.Values {
			out = append(out, v.Slug)
		}
		return out
	}
	project := s.IssueToken(Token{Project: "PRJ", ProjectPermission: "PROJECT_READ", RepoPermission: "REPO_ADMIN"})
	repoTok := s.IssueToken(Token{Repository: "PRJ/b", RepoPermission: "REPO_WRITE"})
	carol := s.IssueToken(Token{User: "carol", RepoPermission: "REPO_ADMIN"}) // capped by carol's own read
	for _, tc := range []struct {
		tok, perm, want string
	}{
		{project, "REPO_READ", "a,b"}, {project, "REPO_ADMIN", "a,b"},
		{repoTok, "REPO_READ", "b"}, {repoTok, "REPO_ADMIN", ""},
		{carol, "REPO_READ", "a,b"}, {carol, "REPO_WRITE", ""},
	} {
		if got := strings.Join(listed(tc.tok, tc.perm), ","); got != tc.want {
			t.Errorf("listing with %s: %q, want %q", tc.perm, got, tc.want)
		}
	}
	if r := do(t, s, "GET", "/rest/api/1.0/projects/OTHER/repos/c", project, nil); r.status != 404 || exception(t, r) != "com.atlassian.bitbucket.repository.NoSuchRepositoryException" {
		t.Errorf("another project's repository: %d %s", r.status, r.body)
	}
	if r := do(t, s, "GET", "/rest/api/1.0/projects/PRJ/repos/b/webhooks", repoTok, nil); r.status != 401 || exception(t, r) != "com.atlassian.bitbucket.AuthorisationException" {
		t.Errorf("webhooks without admin: %d %s", r.status, r.body)
	}
}

func TestPaging(t *testing.T) {
	s, _ := newFake(t, Options{MaxPageSize: 4})
	s.Grant("alice", "PRJ", "PROJECT_READ")
	tok := s.IssueToken(Token{User: "alice", ProjectPermission: "PROJECT_READ"})
	made := s.AddRepositories("PRJ", 10)
	type page struct {
		Size          int  `json:"size"`
		Limit         int  `json:"limit"`
		Start         int  `json:"start"`
		IsLastPage    bool `json:"isLastPage"`
		NextPageStart *int `json:"nextPageStart"`
		Values        []struct {
			Slug string `json:"slug"`
		} `json:"values"`
	}
	for _, tc := range []struct {
		query                    string
		size, limit, start, next int
		last                     bool
		first                    string
	}{
		{"", 4, 4, 0, 4, false, made[0].Slug}, // default 25, capped to 4
		{"?limit=2", 2, 2, 0, 2, false, made[0].Slug},
		{"?start=8&limit=100", 2, 4, 8, 0, true, made[8].Slug},
		{"?start=50", 0, 4, 50, 0, true, ""},
		{"?start=4&limit=4", 4, 4, 4, 8, false, made[4].Slug},
	} {
		var p page
		r := do(t, s, "GET", "/rest/api/1.0/repos"+tc.query, tok, nil)
		r.json(t, &p)
		next := 0
		if p.NextPageStart != nil {
			next = *p.NextPageStart
		}
		first := ""
		if len(p.Values) > 0 {
			first = p.Values[0].Slug
		}
		if p.Size != tc.size || p.Limit != tc.limit || p.Start != tc.start || p.IsLastPage != tc.last || next != tc.next || first != tc.first {
			t.Errorf("%s: %+v", tc.query, p)
		}
	}
}

func TestRateLimitAndInjectedFailures(t *testing.T) {
	s, clk := newFake(t, Options{RateLimit: &RateLimit{BucketSize: 2, FillRate: 0.5}})
	s.Grant("alice", "PRJ", "PROJECT_READ")
	tok := s.IssueToken(Token{User: "alice", ProjectPermission: "PROJECT_READ"})
	for i := range 2 {
		if r := do(t, s, "GET", "/rest/api/1.0/repos", tok, nil); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := do(t, s, "GET", "/rest/api/1.0/repos", tok, nil)
	if r.status != 429 || r.header.Get("Retry-After") != "2" || r.header.Get("X-RateLimit-Limit") != "2" ||
		r.header.Get("X-RateLimit-FillRate") != "0.5" || r.header.Get("X-RateLimit-Interval-Seconds") != "1" {
		t.Errorf("spent bucket: %d %v", r.status, r.header)
	}
	// Anonymous requests are not rate limited; the bucket refills with time.
	if r := do(t, s, "GET", "/rest/api/1.0/application-properties", "", nil); r.status != 200 {
		t.Errorf("anonymous: %d", r.status)
	}
	clk.Add(2 * time.Second)
	if r := do(t, s, "GET", "/rest/api/1.0/repos", tok, nil); r.status != 200 {
		t.Errorf("after the refill: %d", r.status)
	}

	s.FailNext("/repos?start=5", http.StatusBadGateway, nil)
	s.FailNext("", http.StatusServiceUnavailable, http.Header{"Retry-After": {"3"}})
	if r := do(t, s, "GET", "/rest/api/1.0/application-properties", "", nil); r.status != 503 || r.header.Get("Retry-After") != "3" {
		t.Errorf("injected 503: %d %v", r.status, r.header)
	}
	if r := do(t, s, "GET", "/rest/api/1.0/repos?start=4", "", nil); r.status != 200 {
		t.Errorf("a query that does not match the failure: %d", r.status)
	}
	if r := do(t, s, "GET", "/rest/api/1.0/repos?start=5", "", nil); r.status != 502 {
		t.Errorf("injected 502: %d", r.status)
	}
	if n := s.RequestCount("/repos"); n != 6 {
		t.Errorf("RequestCount(/repos) = %d", n)
	}
}

func TestHookCRUDAndDeliveries(t *testing.T) {
	s, _ := newFake(t, Options{})
	s.AddRepository(Repo{Project: "PRJ", Slug: "widgets"})
	s.Grant("alice", "PRJ", "PROJECT_ADMIN")
	tok := s.IssueToken(Token{User: "alice", ProjectPermission: "PROJECT_ADMIN", RepoPermission: "REPO_ADMIN"})
	base := "/rest/api/1.0/projects/PRJ/repos/widgets/webhooks"

	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		mu.Unlock()
	}))
	defer receiver.Close()

	for _, bad := range []map[string]any{
		{"name": "x", "url": receiver.URL, "events": []string{"repo:push"}},
		{"name": "x", "url": "not a url", "events": []string{"repo:refs_changed"}},
		{"name": "", "url": receiver.URL, "events": []string{"repo:refs_changed"}},
		{"name": "x", "url": receiver.URL, "events": []string{}},
	} {
		if r := do(t, s, "POST", base, tok, bad); r.status != 400 {
			t.Errorf("create %v: %d %s", bad, r.status, r.body)
		}
	}
	var h hookJSON
	r := do(t, s, "POST", base, tok, map[string]any{"name": "F", "url": receiver.URL, "events": []string{"repo:refs_changed", "pr:opened"}, "configuration": map[string]string{"secret": "s3cret"}})
	r.json(t, &h)
	if r.status != 201 || h.ID == 0 || !h.Active || !h.SSLVerificationRequired || h.Configuration["secret"] != "s3cret" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	path := fmt.Sprintf("%s/%d", base, h.ID)
	if r := do(t, s, "PUT", path, tok, map[string]any{"active": false}); r.status != 200 || strings.Contains(string(r.body), `"active":true`) {
		t.Errorf("deactivate: %d %s", r.status, r.body)
	}
	if r := do(t, s, "GET", path, tok, nil); !strings.Contains(string(r.body), `"secret":"s3cret"`) {
		t.Errorf("a partial update lost the secret: %s", r.body)
	}
	s.Push("PRJ/widgets", "alice", Change{Ref: "refs/heads/main", To: strings.Repeat("b", 40)})
	s.WaitDeliveries()
	if len(s.Deliveries()) != 0 {
		t.Fatalf("an inactive webhook got %d deliveries", len(s.Deliveries()))
	}
	do(t, s, "PUT", path, tok, map[string]any{"active": true})
	s.Push("PRJ/widgets", "alice", Change{Ref: "refs/heads/main", To: strings.Repeat("c", 40)}, Change{Ref: "refs/tags/v1", To: strings.Repeat("c", 40)})
	s.Ping("PRJ/widgets", h.ID)
	s.WaitDeliveries()

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want a push and a ping", len(got))
	}
	w := bbwebhook.New()
	for i, want := range []string{"repo:refs_changed", "diagnostics:ping"} {
		d := forge.Delivery{Header: got[i].Header, Body: bodies[i]}
		if got[i].Header.Get("X-Event-Key") != want || got[i].Header.Get("X-Request-Id") == "" || !strings.HasPrefix(got[i].Header.Get("Content-Type"), "application/json") {
			t.Errorf("delivery %d headers %v", i, got[i].Header)
		}
		if err := w.Verify(d, forge.VerifyKeys{Secrets: []string{"s3cret"}}); err != nil {
			t.Errorf("delivery %d: %v", i, err)
		}
	}
	var push struct {
		Date    string `json:"date"`
		Changes []struct {
			RefID    string `json:"refId"`
			FromHash string `json:"fromHash"`
			Type     string `json:"type"`
			Ref      struct {
				Type string `json:"type"`
			} `json:"ref"`
		} `json:"changes"`
	}
	_ = json.Unmarshal(bodies[0], &push)
	if push.Date != "2026-11-20T12:00:00+0000" || len(push.Changes) != 2 || push.Changes[0].FromHash != strings.Repeat("b", 40) ||
		push.Changes[0].Type != "UPDATE" || push.Changes[1].Type != "ADD" || push.Changes[1].Ref.Type != "TAG" {
		t.Errorf("push payload %s", bodies[0])
	}
	if string(bodies[1]) != `{"test":true}` {
		t.Errorf("ping body %s", bodies[1])
	}
	var stats map[string]json.RawMessage
	do(t, s, "GET", path+"/statistics/summary", tok, nil).json(t, &stats)
	if !strings.Contains(string(stats["lastSuccess"]), `"outcome":"SUCCESS"`) || stats["lastFailure"] != nil {
		t.Errorf("statistics %v", stats)
	}
	if r := do(t, s, "DELETE", path, tok, nil); r.status != 204 {
		t.Errorf("delete: %d", r.status)
	}
	if r := do(t, s, "GET", path, tok, nil); r.status != 404 {
		t.Errorf("get after delete: %d", r.status)
	}
}

func TestPullRequestEvents(t *testing.T) {
	s, _ := newFake(t, Options{})
	s.AddRepository(Repo{Project: "PRJ", Slug: "widgets"})
	s.AddRepository(Repo{Project: "~bob", Slug: "widgets", ForkOf: "PRJ/widgets"})
	s.Grant("bob", "PRJ", "PROJECT_READ")
	bob := s.IssueToken(Token{User: "bob", ProjectPermission: "PROJECT_READ", RepoPermission: "REPO_WRITE"})
	received := make(chan forge.Delivery, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		received <- forge.Delivery{Header: r.Header.Clone(), Body: b}
	}))
	defer receiver.Close()
	s.AddHook("PRJ/widgets", Hook{Name: "F", URL: receiver.URL, Events: []string{"pr:opened", "pr:from_ref_updated", "pr:merged", "pr:modified"}, Active: true})
	s.SetBranch("~bob/widgets", "topic", strings.Repeat("1", 40))

	r := do(t, s, "POST", "/rest/api/1.0/projects/PRJ/repos/widgets/pull-requests", bob, map[string]any{
		"title": "Topic", "fromRef": map[string]any{"id": "refs/heads/topic", "repository": map[string]any{"slug": "widgets", "project": map[string]string{"key": "~bob"}}},
		"toRef": map[string]any{"id": "refs/heads/main", "repository": map[string]any{"slug": "widgets", "project": map[string]string{"key": "PRJ"}}},
	})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	s.Push("~bob/widgets", "bob", Change{Ref: "refs/heads/topic", To: strings.Repeat("2", 40)})
	s.EditPullRequest("PRJ/widgets", 1, "bob", "Topic 2", "more")
	s.MergePullRequest("PRJ/widgets", 1, "alice", "")
	s.WaitDeliveries()
	close(received)

	w := bbwebhook.New()
	var types []string
	for d := range received {
		res, err := w.Normalize(t.Context(), d, nil)
		if err != nil || len(res.Events) != 1 {
			t.Fatalf("Normalize: %+v %v", res, err)
		}
		data := res.Events[0].Data.(forge.PullRequestData)
		if data.Source.RepositoryFullName != "~bob/widgets" || res.Events[0].Repository.FullName != "PRJ/widgets" {
			t.Errorf("event %+v", res.Events[0])
		}
		types = append(types, strings.TrimPrefix(res.Events[0].Type, forge.EventPullRequestPrefix)+":"+data.Source.SHA[:1])
	}
	if got := strings.Join(types, ","); got != "opened:1,updated:2,edited:2,merged:2" {
		t.Errorf("events %s", got)
	}
	if pr, _ := s.PullRequest("PRJ/widgets", 1); pr.State != "MERGED" || pr.MergeSHA == "" || pr.Title != "Topic 2" {
		t.Errorf("pull request %+v", pr)
	}
}

func TestGitGate(t *testing.T) {
	s, _ := newFake(t, Options{})
	s.Grant("alice", "PRJ", "PROJECT_WRITE")
	s.Grant("carol", "PRJ", "PROJECT_READ")
	writer := s.IssueToken(Token{User: "alice", ProjectPermission: "PROJECT_WRITE", RepoPermission: "REPO_WRITE"})
	reader := s.IssueToken(Token{User: "carol", ProjectPermission: "PROJECT_READ", RepoPermission: "REPO_READ"})
	repo := s.AddGitRepository("PRJ", "widgets")
	if repo.CloneURL != s.URL+"/scm/prj/widgets.git" {
		t.Fatalf("clone URL %s", repo.CloneURL)
	}
	refs := func(token, service string) int {
		req, _ := http.NewRequest("GET", repo.CloneURL+"/info/refs?service="+service, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, tc := range []struct {
		token, service string
		want           int
	}{
		{"", "git-upload-pack", 401}, {"bad", "git-upload-pack", 401}, {reader, "git-upload-pack", 200},
		{reader, "git-receive-pack", 403}, {writer, "git-receive-pack", 200},
	} {
		if got := refs(tc.token, tc.service); got != tc.want {
			t.Errorf("%s with token %q: %d, want %d", tc.service, tc.token, got, tc.want)
		}
	}
	// The project key's case does not matter, as on Bitbucket.
	work := gittest.CloneWork(t, s.URL+"/scm/PRJ/widgets.git", "Authorization: Bearer "+reader)
	if gittest.Git(t, work, "log", "--format=%s") != "Initial commit" {
		t.Error("clone has not the initial commit")
	}
}

// reportingTB records the violations a fake reports instead of failing the test.
type reportingTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *reportingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *reportingTB) Helper() {}

func TestViolationsAreReported(t *testing.T) {
	rt := &reportingTB{TB: t}
	s := New(rt, Options{Loader: loader})
	tok := s.IssueToken(Token{Project: "PRJ", RepoPermission: "REPO_READ"})
	do(t, s, "GET", "/rest/api/1.0/no/such/resource", tok, nil)
	do(t, s, "GET", "/rest/api/1.0/repos?permission=EVERYTHING", tok, nil)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.errors) != 2 || !strings.Contains(rt.errors[0], "no operation for GET") || !strings.Contains(rt.errors[1], "permission") {
		t.Errorf("violations reported: %q", rt.errors)
	}
}
