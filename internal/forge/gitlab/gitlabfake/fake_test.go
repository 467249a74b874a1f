package gitlabfake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitlab/glwebhook"
	"github.com/forgeway/forgeway/internal/gittest"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTest(t *testing.T, o Options) (*Server, *testClock) {
	clk := &testClock{t: time.Date(2026, 11, 20, 12, 0, 30, 0, time.UTC)}
	if o.Now == nil {
		o.Now = clk.now
	}
	return New(t, o), clk
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d %q is not JSON: %v", a.status, a.body, err)
	}
}

// apiCall sends one API request; auth is a complete header ("Authorization: Bearer x").
func apiCall(t *testing.T, s *Server, method, path, auth string, body any) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	target := path
	if !strings.HasPrefix(path, "http") {
		target = s.API + path
	}
	req, _ := http.NewRequest(method, target, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		k, v, _ := strings.Cut(auth, ": ")
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func bearer(tok string) string { return "Authorization: Bearer " + tok }

func TestAuthentication(t *testing.T) {
	s, clk := newTest(t, Options{})
	pat := s.AddToken(Token{Username: "ana"})
	readUser := s.AddToken(Token{Username: "ana", Scopes: []string{"read_user"}})
	expiring := s.AddToken(Token{Username: "ana", Expires: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)})
	revoked := s.AddToken(Token{Username: "ana"})
	s.RevokeToken(revoked)
	client, _ := s.AddOAuthApp("https://fw.example.com/cb")
	oauth, _ := s.IssueOAuthToken(client, "ana")

	cases := []struct {
		name, path, auth string
		status           int
		body             string
	}{
		{"anonymous", "/user", "", 401, `{"message":"401 Unauthorized"}`},
		{"unknown", "/user", bearer("glpat-nope"), 401, `{"message":"401 Unauthorized"}`},
		{"Basic is not an API scheme", "/user", "Authorization: Basic " + pat, 401, `{"message":"401 Unauthorized"}`},
		{"bearer", "/user", bearer(pat), 200, ""},
		{"PRIVATE-TOKEN", "/user", "PRIVATE-TOKEN: " + pat, 200, ""},
		{"OAuth as bearer", "/user", bearer(oauth), 200, ""},
		{"OAuth is no PRIVATE-TOKEN", "/user", "PRIVATE-TOKEN: " + oauth, 401, `{"message":"401 Unauthorized"}`},
		{"revoked", "/user", bearer(revoked), 401, `{"error":"invalid_token","error_description":"Token was revoked. You have to re-authorize from the user."}`},
		{"read_user reads the user", "/user", bearer(readUser), 200, ""},
		{"read_user lists no project", "/projects", bearer(readUser), 403,
			`{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api read_api"}`},
		{"version needs a token", "/version", "", 401, `{"message":"401 Unauthorized"}`},
		{"unknown endpoint", "/nothing", bearer(pat), 404, `{"message":"404 Not Found"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := apiCall(t, s, "GET", tc.path, tc.auth, nil)
			if a.status != tc.status || (tc.body != "" && strings.TrimSpace(string(a.body)) != tc.body) {
				t.Fatalf("%d %s, want %d %s", a.status, a.body, tc.status, tc.body)
			}
		})
	}
	if a := apiCall(t, s, "GET", "/user", bearer(revoked), nil); !strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
	}

	// An access token works until the start of its expiry date.
	if a := apiCall(t, s, "GET", "/personal_access_tokens/self", bearer(expiring), nil); a.status != 200 {
		t.Fatalf("before expiry: %d %s", a.status, a.body)
	} else {
		var self map[string]any
		a.json(t, &self)
		if self["expires_at"] != "2026-11-21" || self["active"] != true || self["name"] != "forgeway" || self["revoked"] != false {
			t.Fatalf("token self %v", self)
		}
	}
	if a := apiCall(t, s, "GET", "/personal_access_tokens/self", bearer(oauth), nil); a.status != 404 {
		t.Fatalf("an OAuth token's self: %d", a.status)
	}
	clk.add(12 * time.Hour)
	if a := apiCall(t, s, "GET", "/user", bearer(expiring), nil); a.status != 401 || !strings.Contains(string(a.body), "Token has expired.") {
		t.Fatalf("after expiry: %d %s", a.status, a.body)
	}
}

func TestProjectPagination(t *testing.T) {
	s, _ := newTest(t, Options{})
	tok := s.AddToken(Token{Username: "ana"})
	s.AddGroup("acme")
	s.AddMember("acme", "ana", Developer)
	s.AddProjects("acme", 45)
	pub := s.AddProject(Project{FullPath: "other/pub", Visibility: "public"})
	s.AddProject(Project{FullPath: "other/internal", Visibility: "internal"})
	s.AddProject(Project{FullPath: "other/private"})

	ids := func(a answer) []int64 {
		var list []struct {
			ID int64 `json:"id"`
		}
		a.json(t, &list)
		var out []int64
		for _, p := range list {
			out = append(out, p.ID)
		}
		return out
	}
	// Offset pagination: totals and four relations.
	a := apiCall(t, s, "GET", "/projects?membership=true&per_page=20&page=2&order_by=id&sort=asc", bearer(tok), nil)
	h := a.header
	if a.status != 200 || h.Get("X-Total") != "45" || h.Get("X-Total-Pages") != "3" || h.Get("X-Page") != "2" ||
		h.Get("X-Per-Page") != "20" || h.Get("X-Next-Page") != "3" || h.Get("X-Prev-Page") != "1" || len(ids(a)) != 20 {
		t.Fatalf("offset page: %d %v", a.status, h)
	}
	for _, rel := range []string{`rel="prev"`, `rel="next"`, `rel="first"`, `rel="last"`} {
		if !strings.Contains(h.Get("Link"), rel) {
			t.Errorf("Link %q lacks %s", h.Get("Link"), rel)
		}
	}
	// Keyset pagination: only rel="next", to follow as given.
	var all []int64
	next := s.API + "/projects?membership=true&pagination=keyset&order_by=id&sort=asc&per_page=20"
	for pages := 0; next != ""; pages++ {
		a := apiCall(t, s, "GET", next, bearer(tok), nil)
		if a.status != 200 || a.header.Get("X-Total") != "" || pages > 3 {
			t.Fatalf("keyset page %d: %d %v", pages, a.status, a.header)
		}
		all = append(all, ids(a)...)
		next = ""
		if l := a.header.Get("Link"); l != "" {
			if !strings.HasSuffix(l, `>; rel="next"`) {
				t.Fatalf("Link %q", l)
			}
			next = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
		}
	}
	if len(all) != 45 {
		t.Fatalf("keyset walk gave %d projects", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i] <= all[i-1] {
			t.Fatalf("keyset order broken at %d", i)
		}
	}
	if a := apiCall(t, s, "GET", "/projects?pagination=keyset&order_by=name", bearer(tok), nil); a.status != 405 {
		t.Fatalf("keyset by name: %d", a.status)
	}
	// Without membership a signed-in user also sees public and internal projects; anonymous
	// only public ones.
	if got := ids(apiCall(t, s, "GET", "/projects?per_page=100", bearer(tok), nil)); len(got) != 47 {
		t.Fatalf("signed in, all visible: %d", len(got))
	}
	if got := ids(apiCall(t, s, "GET", "/projects", "", nil)); len(got) != 1 || got[0] != pub {
		t.Fatalf("anonymous: %v", got)
	}
	if a := apiCall(t, s, "GET", "/projects/"+url.PathEscape("other/private"), bearer(tok), nil); a.status != 404 || !strings.Contains(string(a.body), "404 Project Not Found") {
		t.Fatalf("a private project of others: %d %s", a.status, a.body)
	}
	if a := apiCall(t, s, "GET", "/projects/"+url.PathEscape("acme/project-0001"), bearer(tok), nil); a.status != 200 {
		t.Fatalf("by path: %d %s", a.status, a.body)
	}
}

func TestETagAndRateLimit(t *testing.T) {
	s, clk := newTest(t, Options{RateLimit: 4})
	tok := s.AddToken(Token{Username: "ana"})
	a := apiCall(t, s, "GET", "/user", bearer(tok), nil)
	etag := a.header.Get("ETag")
	if a.status != 200 || !strings.HasPrefix(etag, `W/"`) || a.header.Get("RateLimit-Remaining") != "3" ||
		a.header.Get("RateLimit-Limit") != "4" || a.header.Get("RateLimit-Reset") != strconv.FormatInt(time.Date(2026, 11, 20, 12, 1, 0, 0, time.UTC).Unix(), 10) {
		t.Fatalf("first answer %d %v", a.status, a.header)
	}
	req, _ := http.NewRequest("GET", s.API+"/user", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("If-None-Match", etag)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 304 || len(body) != 0 || resp.Header.Get("RateLimit-Remaining") != "2" {
		t.Fatalf("conditional GET: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	apiCall(t, s, "GET", "/user", bearer(tok), nil)
	apiCall(t, s, "GET", "/user", bearer(tok), nil)
	a = apiCall(t, s, "GET", "/user", bearer(tok), nil)
	if a.status != 429 || string(a.body) != "Retry later\n" || a.header.Get("Retry-After") != "30" || a.header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("over the limit: %d %q %v", a.status, a.body, a.header)
	}
	clk.add(30 * time.Second)
	if a := apiCall(t, s, "GET", "/user", bearer(tok), nil); a.status != 200 {
		t.Fatalf("the next minute: %d", a.status)
	}
	if s.RateLimitUsed("ana") != 1 {
		t.Fatalf("used %d", s.RateLimitUsed("ana"))
	}
}

func TestHooksAPI(t *testing.T) {
	s, _ := newTest(t, Options{})
	owner := s.AddToken(Token{Username: "ana"})
	dev := s.AddToken(Token{Username: "dev"})
	s.AddGroup("acme")
	s.AddMember("acme", "ana", Maintainer)
	s.AddMember("acme", "dev", Developer)
	id := s.AddProject(Project{FullPath: "acme/svc"})
	base := "/projects/" + strconv.FormatInt(id, 10) + "/hooks"

	if a := apiCall(t, s, "POST", base, bearer(owner), map[string]any{"token": "x"}); a.status != 400 || string(bytes.TrimSpace(a.body)) != `{"error":"url is missing"}` {
		t.Fatalf("no url: %d %s", a.status, a.body)
	}
	for _, bad := range []string{"http://127.0.0.1:9/x", "http://localhost/x", "http://192.168.1.2/x", "ftp://example.com/x", "nonsense"} {
		if a := apiCall(t, s, "POST", base, bearer(owner), map[string]any{"url": bad}); a.status != 422 || !strings.Contains(string(a.body), "Invalid url given") {
			t.Fatalf("url %s: %d %s", bad, a.status, a.body)
		}
	}
	if a := apiCall(t, s, "POST", base, bearer(dev), map[string]any{"url": "https://fw.example.com/h"}); a.status != 403 {
		t.Fatalf("a Developer creating a hook: %d", a.status)
	}
	a := apiCall(t, s, "POST", base, bearer(owner), map[string]any{"url": "https://fw.example.com/h", "token": "tok-1", "merge_requests_events": "true"})
	var h map[string]any
	a.json(t, &h)
	if a.status != 201 || h["push_events"] != true || h["tag_push_events"] != false || h["merge_requests_events"] != true ||
		h["enable_ssl_verification"] != true || h["alert_status"] != "executable" || strings.Contains(string(a.body), "tok-1") {
		t.Fatalf("created %d %s", a.status, a.body)
	}
	hookPath := base + "/" + strconv.FormatInt(int64(h["id"].(float64)), 10)
	if a := apiCall(t, s, "PUT", hookPath, bearer(owner), map[string]any{"push_events": false}); a.status != 400 {
		t.Fatalf("PUT without url: %d", a.status)
	}
	// Same URL: the token stays; a new URL forgets it.
	apiCall(t, s, "PUT", hookPath, bearer(owner), map[string]any{"url": "https://fw.example.com/h", "enable_ssl_verification": false})
	if hs := s.Hooks("acme/svc"); hs[0].Token != "tok-1" || hs[0].EnableSSLVerification {
		t.Fatalf("after PUT: %+v", hs[0])
	}
	apiCall(t, s, "PUT", hookPath, bearer(owner), map[string]any{"url": "https://fw.example.com/other"})
	if hs := s.Hooks("acme/svc"); hs[0].Token != "" || hs[0].URL != "https://fw.example.com/other" {
		t.Fatalf("after changing the URL: %+v", hs[0])
	}
	if a := apiCall(t, s, "DELETE", hookPath, bearer(owner), nil); a.status != 204 {
		t.Fatalf("delete: %d", a.status)
	}
	if a := apiCall(t, s, "DELETE", hookPath, bearer(owner), nil); a.status != 404 {
		t.Fatalf("delete again: %d", a.status)
	}
}

// receiver answers deliveries with status and keeps them.
type receiver struct {
	mu     sync.Mutex
	status int
	got    []forge.Delivery
	url    string
}

func newReceiver(t *testing.T, status int) *receiver {
	rc := &receiver{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, forge.Delivery{Header: r.Header.Clone(), Body: body})
		st := rc.status
		rc.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(srv.Close)
	rc.url = srv.URL + "/hook"
	return rc
}

func (rc *receiver) setStatus(st int) { rc.mu.Lock(); rc.status = st; rc.mu.Unlock() }

// TestHookAutoDisable: failures disable a hook for a growing while, then for good; a success
// re-enables it.
func TestHookAutoDisable(t *testing.T) {
	s, clk := newTest(t, Options{AllowLocalRequests: true})
	tok := s.AddToken(Token{Username: "ana"})
	id := s.AddProject(Project{FullPath: "ana/svc"})
	rc := newReceiver(t, 500)
	hookID := s.AddHook("ana/svc", Hook{URL: rc.url, Token: "t", PushEvents: true})
	branch := 0
	push := func() {
		branch++
		a := apiCall(t, s, "POST", "/projects/"+strconv.FormatInt(id, 10)+"/repository/branches", bearer(tok),
			map[string]any{"branch": "b" + strconv.Itoa(branch), "ref": "main"})
		if a.status != 201 {
			t.Fatalf("create branch: %d %s", a.status, a.body)
		}
		s.Flush()
	}
	status := func() Hook { return s.Hooks("ana/svc")[0] }
	for range 4 {
		push()
	}
	if h := status(); h.AlertStatus != "temporarily_disabled" || h.Failures != 4 || !h.DisabledUntil.Equal(clk.now().Add(time.Minute)) {
		t.Fatalf("after 4 failures: %+v", h)
	}
	push() // not sent while disabled
	if n := len(s.Deliveries()); n != 4 {
		t.Fatalf("%d deliveries to a disabled hook's URL", n)
	}
	a := apiCall(t, s, "GET", "/projects/"+strconv.FormatInt(id, 10)+"/hooks/"+strconv.FormatInt(hookID, 10), bearer(tok), nil)
	var h map[string]any
	a.json(t, &h)
	if h["alert_status"] != "temporarily_disabled" || h["disabled_until"] != "2026-11-20T12:01:30.000Z" {
		t.Fatalf("API: %s", a.body)
	}
	clk.add(2 * time.Minute)
	push() // fifth failure: two minutes
	if h := status(); h.Failures != 5 || !h.DisabledUntil.Equal(clk.now().Add(2*time.Minute)) {
		t.Fatalf("after 5 failures: %+v", h)
	}
	clk.add(3 * time.Minute)
	rc.setStatus(202)
	push()
	if h := status(); h.AlertStatus != "executable" || h.Failures != 0 || !h.DisabledUntil.IsZero() {
		t.Fatalf("after a success: %+v", h)
	}
	s.SetHookFailures("ana/svc", hookID, 40, time.Time{})
	if h := status(); h.AlertStatus != "disabled" {
		t.Fatalf("40 failures: %+v", h)
	}
}

// TestPushDeliveries pushes with real git and checks GitLab's delivery headers and payload.
func TestPushDeliveries(t *testing.T) {
	s, _ := newTest(t, Options{AllowLocalRequests: true, Now: time.Now})
	s.AddUser(User{Username: "ana", Name: "Ana Lopez", Email: "ana@example.org"})
	tok := s.AddToken(Token{Username: "ana"})
	readOnly := s.AddToken(Token{Username: "ana", Scopes: []string{"read_repository"}})
	reporter := s.AddToken(Token{Username: "rita"})
	s.AddGroup("acme")
	s.AddMember("acme", "ana", Developer)
	s.AddMember("acme", "rita", Reporter)
	s.AddGitProject(Project{FullPath: "acme/app"})
	rc := newReceiver(t, 200)
	s.AddHook("acme/app", Hook{URL: rc.url, Token: "tok", SigningToken: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", PushEvents: true, TagPushEvents: true})
	s.AddHook("acme/app", Hook{URL: rc.url + "/mr-only", Token: "tok2", MergeRequestsEvents: true})

	cloneURL := s.URL + "/acme/app.git"
	work := gittest.CloneWork(t, cloneURL, gittest.BasicAuth("any-name", tok))
	sha := gittest.Commit(t, work, "x.txt", "x", "Add x")
	gittest.Push(t, work, gittest.BasicAuth("oauth2", tok), "main")
	s.Flush()

	rc.mu.Lock()
	got := append([]forge.Delivery(nil), rc.got...)
	rc.mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1 (the merge-request-only hook wants no push)", len(got))
	}
	d := got[0]
	h := d.Header
	if h.Get("X-Gitlab-Event") != "Push Hook" || h.Get("X-Gitlab-Token") != "tok" || h.Get("User-Agent") != "GitLab/17.5.0-ee" ||
		h.Get("X-Gitlab-Instance") != s.URL || len(h.Get("Idempotency-Key")) != 36 || len(h.Get("X-Gitlab-Event-UUID")) != 36 ||
		len(h.Get("X-Gitlab-Webhook-UUID")) != 36 || h.Get("Webhook-Id") != h.Get("Idempotency-Key") || h.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", h)
	}
	d.ReceivedAt = time.Now()
	if err := glwebhook.New().Verify(d, forge.VerifyKeys{Secrets: []string{"tok"}, Integration: forge.Integration{Secrets: map[string]string{"signing_token": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var p struct {
		ObjectKind   string `json:"object_kind"`
		After        string `json:"after"`
		UserUsername string `json:"user_username"`
		UserName     string `json:"user_name"`
		Total        int    `json:"total_commits_count"`
		Commits      []struct {
			ID, Title string
			Added     []string
		}
		Project struct {
			PathWithNamespace string `json:"path_with_namespace"`
			VisibilityLevel   int    `json:"visibility_level"`
		}
	}
	if err := json.Unmarshal(d.Body, &p); err != nil {
		t.Fatal(err)
	}
	if p.ObjectKind != "push" || p.After != sha || p.UserUsername != "ana" || p.UserName != "Ana Lopez" || p.Total != 1 ||
		len(p.Commits) != 1 || p.Commits[0].ID != sha || p.Commits[0].Title != "Add x" || len(p.Commits[0].Added) != 1 ||
		p.Project.PathWithNamespace != "acme/app" || p.Project.VisibilityLevel != 0 {
		t.Fatalf("payload %s", d.Body)
	}

	// Who may read and push.
	gitRun := func(auth string, args ...string) error {
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = gittest.Env(t, auth)
		return cmd.Run()
	}
	if err := gitRun("", "ls-remote", cloneURL); err == nil {
		t.Error("anonymous read of a private project")
	}
	if err := gitRun(gittest.BasicAuth("oauth2", readOnly), "ls-remote", cloneURL); err != nil {
		t.Errorf("a read_repository token cannot read: %v", err)
	}
	gittest.Commit(t, work, "y.txt", "y", "Add y")
	for name, auth := range map[string]string{"read_repository": readOnly, "Reporter": reporter} {
		if err := gitRun(gittest.BasicAuth("oauth2", auth), "push", "--quiet", "origin", "main"); err == nil {
			t.Errorf("a %s token pushed", name)
		}
	}

	// A push of more than three refs sends no push hooks.
	before := len(s.Deliveries())
	for i := range 4 {
		gittest.Git(t, work, "branch", "many-"+strconv.Itoa(i))
	}
	gittest.Git(t, work, "remote", "set-url", "origin", cloneURL)
	cmd := exec.Command("git", "push", "--quiet", "origin", "many-0", "many-1", "many-2", "many-3")
	cmd.Dir = work
	cmd.Env = gittest.Env(t, gittest.BasicAuth("oauth2", tok))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("push: %v %s", err, out)
	}
	s.Flush()
	if n := len(s.Deliveries()); n != before {
		t.Errorf("a push of 4 refs sent %d deliveries", n-before)
	}
}

func TestOAuthEndpoints(t *testing.T) {
	s, clk := newTest(t, Options{})
	client, secret := s.AddOAuthApp("https://fw.example.com/cb")
	s.SetBrowserUser("bob")
	post := func(form url.Values) (int, map[string]any) {
		resp, err := s.Client().PostForm(s.URL+"/oauth/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	hc := s.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Get(s.URL + "/oauth/authorize?" + url.Values{"client_id": {client}, "redirect_uri": {"https://fw.example.com/cb"},
		"response_type": {"code"}, "state": {"xyz"}, "scope": {"api"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if resp.StatusCode != 302 || loc.Host != "fw.example.com" || loc.Query().Get("state") != "xyz" || code == "" {
		t.Fatalf("authorize: %d %s", resp.StatusCode, loc)
	}
	if st, out := post(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {client}, "client_secret": {"wrong"}, "redirect_uri": {"https://fw.example.com/cb"}}); st != 401 || out["error"] != "invalid_client" {
		t.Fatalf("wrong secret: %d %v", st, out)
	}
	st, tok := post(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {client}, "client_secret": {secret}, "redirect_uri": {"https://fw.example.com/cb"}})
	if st != 200 || tok["token_type"] != "Bearer" || tok["expires_in"] != float64(7200) || tok["scope"] != "api" {
		t.Fatalf("code exchange: %d %v", st, tok)
	}
	access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)
	if st, out := post(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {client}, "client_secret": {secret}, "redirect_uri": {"https://fw.example.com/cb"}}); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("code reused: %d %v", st, out)
	}
	req, _ := http.NewRequest("GET", s.URL+"/oauth/token/info", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	clk.add(time.Hour)
	info, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ti map[string]any
	_ = json.NewDecoder(info.Body).Decode(&ti)
	info.Body.Close()
	if info.StatusCode != 200 || ti["expires_in"] != float64(3600) {
		t.Fatalf("token info: %d %v", info.StatusCode, ti)
	}
	st, again := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {client}, "client_secret": {secret}})
	if st != 200 || again["refresh_token"] == refresh {
		t.Fatalf("refresh: %d %v", st, again)
	}
	if st, out := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {client}, "client_secret": {secret}}); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("a spent refresh token: %d %v", st, out)
	}
	clk.add(2 * time.Hour)
	if a := apiCall(t, s, "GET", "/user", bearer(access), nil); a.status != 401 || !strings.Contains(string(a.body), "Token has expired.") {
		t.Fatalf("an OAuth token after two hours: %d %s", a.status, a.body)
	}
}

// TestConformanceHost exercises the conformance arrangement: pages, hooks, revocation and
// injected failures.
func TestConformanceHost(t *testing.T) {
	h := Conformance(t)
	names := h.AddRepositories(t, 3)
	if len(names) != 3 || names[0] != "conformance/project-0001" || h.PageSize() != 100 {
		t.Fatalf("names %v", names)
	}
	in := h.Connect(t)
	c, err := h.Driver().Open(context.Background(), in, forge.Env{})
	if err != nil {
		t.Fatal(err)
	}
	var repos []forge.Repository
	if err := c.Repositories(context.Background(), func(p []forge.Repository) error { repos = append(repos, p...); return nil }); err != nil || len(repos) != 3 {
		t.Fatalf("%d repositories, %v", len(repos), err)
	}
	if _, err := c.EnsureHooks(context.Background(), repos[0], forge.HookSpec{URL: "http://127.0.0.1:1/webhooks/gitlab/x", Secret: "sec"}); err != nil {
		t.Fatal(err)
	}
	if hs := h.Hooks(t, names[0], "http://127.0.0.1:1/webhooks/gitlab/x"); len(hs) != 1 || hs[0].Secret != "sec" || !hs[0].Active || len(hs[0].Events) != 3 {
		t.Fatalf("hooks %+v", hs)
	}
	h.DeleteHooks(t, names[0])
	if hs := h.Hooks(t, names[0], "http://127.0.0.1:1/webhooks/gitlab/x"); len(hs) != 0 {
		t.Fatalf("hooks left %+v", hs)
	}
	before := h.Requests()
	h.FailNext(t, 2, http.StatusTooManyRequests, 1500*time.Millisecond)
	_, err = c.Repository(context.Background(), repos[0].HostID, repos[0])
	var rl *forge.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("an injected 429: %v", err)
	}
	if _, err := c.Repository(context.Background(), repos[0].HostID, repos[0]); err == nil {
		t.Fatal("the second injected failure did not fail")
	}
	if _, err := c.Repository(context.Background(), repos[0].HostID, repos[0]); err != nil {
		t.Fatalf("after the injected failures: %v", err)
	}
	if h.Requests()-before != 3 {
		t.Fatalf("%d requests counted", h.Requests()-before)
	}
	h.RevokeCredential(t)
	if _, err := c.Repository(context.Background(), repos[0].HostID, repos[0]); err == nil {
		t.Fatal("a revoked credential still works")
	}
	if h.PushAuth(t) == "" || h.CloneURL(t, names[0]) != h.(*conformanceHost).s.URL+"/conformance/project-0001.git" {
		t.Fatal("git access")
	}
}
