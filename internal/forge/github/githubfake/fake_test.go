package githubfake

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/golang-jwt/jwt/v5"
)

// One loader and one App key for the whole test binary: loading the description and
// generating RSA keys are the slow parts.
var (
	loader  = apicheck.NewLoader()
	testKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
)

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
	o.Loader, o.AppKey = loader, testKey()
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

func do(t *testing.T, s *Server, method, path, auth string, body any, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	target := path
	if !strings.HasPrefix(path, "http") {
		target = s.API + path
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func appJWT(t *testing.T, key *rsa.PrivateKey, iss any, iat, exp time.Time) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": iss, "iat": iat.Unix(), "exp": exp.Unix()}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

func TestAppJWT(t *testing.T) {
	s, clk := newFake(t, Options{})
	a := s.AddApp(App{Key: testKey()})
	other, _ := rsa.GenerateKey(rand.Reader, 1024)
	now := clk.Now()
	tests := []struct {
		name    string
		auth    string
		status  int
		message string
	}{
		{"valid", appJWT(t, a.Key, a.ID, now.Add(-time.Minute), now.Add(9*time.Minute)), 200, ""},
		{"iss as a string", appJWT(t, a.Key, fmt.Sprint(a.ID), now.Add(-time.Minute), now.Add(9*time.Minute)), 200, ""},
		{"iss is the client id", appJWT(t, a.Key, a.ClientID, now, now.Add(5*time.Minute)), 200, ""},
		{"wrong key", appJWT(t, other, a.ID, now, now.Add(5*time.Minute)), 401, "A JSON web token could not be decoded"},
		{"wrong app id", appJWT(t, a.Key, a.ID+1000, now, now.Add(5*time.Minute)), 401, "A JSON web token could not be decoded"},
		{"exp too far", appJWT(t, a.Key, a.ID, now.Add(-time.Minute), now.Add(10*time.Minute)), 401, "'Expiration time' claim ('exp') is too far in the future"},
		{"expired", appJWT(t, a.Key, a.ID, now.Add(-10*time.Minute), now.Add(-time.Second)), 401, "'Expiration time' claim ('exp') must be a numeric value"},
		{"iat in the future", appJWT(t, a.Key, a.ID, now.Add(2*time.Minute), now.Add(5*time.Minute)), 401, "'Issued at' claim ('iat')"},
		{"garbage", "Bearer a.b.c", 401, "A JSON web token could not be decoded"},
		{"not a JWT", "Bearer ghp_nope", 401, "Bad credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, "GET", "/app", tt.auth, nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			var e struct{ Message string }
			r.json(t, &e)
			if tt.message != "" && !strings.Contains(e.Message, tt.message) {
				t.Errorf("message %q, want %q", e.Message, tt.message)
			}
			if tt.status == 200 {
				var got struct {
					ID   int64
					Slug string
				}
				r.json(t, &got)
				if got.ID != a.ID || got.Slug != a.Slug {
					t.Errorf("app %+v", got)
				}
			}
		})
	}
}

func TestInstallationTokensAndListing(t *testing.T) {
	s, clk := newFake(t, Options{})
	s.AddOrg("acme")
	a := s.AddApp(App{Key: testKey()})
	repos := s.AddRepositories("acme", 45)
	s.AddRepository(Repo{FullName: "other/elsewhere", Private: true})
	in := s.AddInstallation(Installation{AppID: a.ID, Account: "acme"})
	jwtAuth := func() string {
		return appJWT(t, a.Key, a.ID, clk.Now().Add(-time.Minute), clk.Now().Add(8*time.Minute))
	}

	r := do(t, s, "GET", "/app/installations", jwtAuth(), nil)
	var insts []struct {
		ID      int64
		Account struct{ Login string }
	}
	r.json(t, &insts)
	if r.status != 200 || len(insts) != 1 || insts[0].ID != in.ID || insts[0].Account.Login != "acme" {
		t.Fatalf("installations: %d %s", r.status, r.body)
	}

	r = do(t, s, "POST", fmt.Sprintf("/app/installations/%d/access_tokens", in.ID), jwtAuth(), nil)
	var tok struct {
		Token     string
		ExpiresAt time.Time `json:"expires_at"`
	}
	r.json(t, &tok)
	if r.status != 201 || !strings.HasPrefix(tok.Token, "ghs_") || !tok.ExpiresAt.Equal(clk.Now().Add(time.Hour)) {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	if r := do(t, s, "POST", "/app/installations/999999/access_tokens", jwtAuth(), nil); r.status != 404 {
		t.Errorf("token for an unknown installation: %d", r.status)
	}

	auth := "token " + tok.Token
	var page struct {
		TotalCount   int `json:"total_count"`
		Repositories []struct {
			FullName    string `json:"full_name"`
			Permissions struct{ Admin, Push, Pull bool }
		}
	}
	r = do(t, s, "GET", "/installation/repositories?per_page=20&page=2", auth, nil)
	r.json(t, &page)
	if page.TotalCount != 45 || len(page.Repositories) != 20 || page.Repositories[0].FullName != repos[20].FullName {
		t.Fatalf("page 2: total %d, %d repos, first %v", page.TotalCount, len(page.Repositories), page.Repositories[0])
	}
	if p := page.Repositories[0].Permissions; !p.Admin || !p.Push || !p.Pull {
		t.Errorf("permissions %+v", p)
	}
	link := r.header.Get("Link")
	for _, want := range []string{`page=3&per_page=20>; rel="next"`, `page=3&per_page=20>; rel="last"`, `page=1&per_page=20>; rel="first"`, `page=1&per_page=20>; rel="prev"`} {
		if !strings.Contains(link, want) {
			t.Errorf("Link %q lacks %q", link, want)
		}
	}
	r = do(t, s, "GET", "/installation/repositories", auth, nil)
	r.json(t, &page)
	if len(page.Repositories) != 30 {
		t.Errorf("default per_page gave %d", len(page.Repositories))
	}
	if r := do(t, s, "GET", "/repos/other/elsewhere", auth, nil); r.status != 404 {
		t.Errorf("repository outside the installation: %d", r.status)
	}

	clk.Add(time.Hour)
	if r := do(t, s, "GET", "/installation/repositories", auth, nil); r.status != 401 {
		t.Errorf("expired token: %d %s", r.status, r.body)
	}
	s.SuspendInstallation(in.ID, true)
	if r := do(t, s, "POST", fmt.Sprintf("/app/installations/%d/access_tokens", in.ID), jwtAuth(), nil); r.status != 403 {
		t.Errorf("token for a suspended installation: %d", r.status)
	}
}

func TestUserReposAndETag(t *testing.T) {
	s, _ := newFake(t, Options{})
	s.AddOrg("acme")
	s.AddOrgMember("acme", "alice", "push")
	s.AddRepositories("alice", 3)
	s.AddRepository(Repo{FullName: "acme/tool", Private: true})
	s.AddRepository(Repo{FullName: "bob/shared", Private: true})
	s.AddRepository(Repo{FullName: "bob/hidden", Private: true})
	s.AddCollaborator("bob/shared", "alice", "pull")
	pat := s.IssuePAT(PAT{Login: "alice"})
	auth := "token " + pat

	r := do(t, s, "GET", "/user/repos?per_page=100&affiliation=owner,collaborator,organization_member", auth, nil)
	var list []struct {
		FullName    string `json:"full_name"`
		Permissions struct{ Admin, Push, Pull bool }
	}
	r.json(t, &list)
	var names []string
	for _, x := range list {
		names = append(names, x.FullName)
	}
	if got := strings.Join(names, ","); got != "acme/tool,alice/repo-0001,alice/repo-0002,alice/repo-0003,bob/shared" {
		t.Fatalf("repos %s", got)
	}
	if p := list[0].Permissions; p.Admin || !p.Push {
		t.Errorf("org member permissions %+v", p)
	}
	if r.header.Get("X-OAuth-Scopes") != "repo, admin:repo_hook, read:org" {
		t.Errorf("X-OAuth-Scopes %q", r.header.Get("X-OAuth-Scopes"))
	}

	used := s.RateLimitUsed("user:alice")
	etag := r.header.Get("ETag")
	r2 := do(t, s, "GET", "/user/repos?per_page=100&affiliation=owner,collaborator,organization_member", auth, nil, "If-None-Match", etag)
	if r2.status != 304 || len(r2.body) != 0 {
		t.Fatalf("conditional request: %d %q", r2.status, r2.body)
	}
	if s.RateLimitUsed("user:alice") != used {
		t.Errorf("a 304 counted against the rate limit")
	}
	if r2.header.Get("X-RateLimit-Remaining") != fmt.Sprint(5000-used) {
		t.Errorf("remaining %s after %d used", r2.header.Get("X-RateLimit-Remaining"), used)
	}

	r = do(t, s, "GET", "/user", auth, nil)
	var u struct{ Login string }
	r.json(t, &u)
	if r.status != 200 || u.Login != "alice" {
		t.Errorf("/user: %d %s", r.status, r.body)
	}

	noRepo := s.IssuePAT(PAT{Login: "alice", Scopes: []string{"read:org"}})
	if r := do(t, s, "GET", "/repos/acme/tool", "token "+noRepo, nil); r.status != 404 {
		t.Errorf("private repository without the repo scope: %d", r.status)
	}
	if r := do(t, s, "GET", "/repos/alice/repo-0003", "token "+noRepo, nil); r.status != 200 {
		t.Errorf("public repository without the repo scope: %d", r.status)
	}
}

func TestRateLimitAndInjectedFailures(t *testing.T) {
	s, clk := newFake(t, Options{RateLimit: 3})
	s.AddRepository(Repo{FullName: "alice/r"})
	auth := "token " + s.IssuePAT(PAT{Login: "alice"})
	for i := range 3 {
		if r := do(t, s, "GET", "/repos/alice/r", auth, nil); r.status != 200 || r.header.Get("X-RateLimit-Remaining") != fmt.Sprint(2-i) {
			t.Fatalf("request %d: %d remaining %s", i, r.status, r.header.Get("X-RateLimit-Remaining"))
		}
	}
	r := do(t, s, "GET", "/repos/alice/r", auth, nil)
	var e struct{ Message string }
	r.json(t, &e)
	if r.status != 403 || r.header.Get("X-RateLimit-Remaining") != "0" || !strings.Contains(e.Message, "API rate limit exceeded") {
		t.Fatalf("spent budget: %d %v %s", r.status, r.header, r.body)
	}
	if reset := r.header.Get("X-RateLimit-Reset"); reset != fmt.Sprint(clk.Now().Add(time.Hour).Unix()) {
		t.Errorf("reset %s", reset)
	}
	if r := do(t, s, "GET", "/rate_limit", auth, nil); r.status != 200 {
		t.Errorf("/rate_limit while limited: %d", r.status)
	}
	clk.Add(time.Hour)
	if r := do(t, s, "GET", "/repos/alice/r", auth, nil); r.status != 200 {
		t.Errorf("after reset: %d", r.status)
	}

	s.FailNext("/repos/alice/r", 403, http.Header{"Retry-After": {"30"}})
	s.FailNext("/repos/alice/r", 502, nil)
	r = do(t, s, "GET", "/repos/alice/r", auth, nil)
	r.json(t, &e)
	if r.status != 403 || r.header.Get("Retry-After") != "30" || !strings.Contains(e.Message, "secondary rate limit") {
		t.Errorf("secondary limit: %d %v %s", r.status, r.header, r.body)
	}
	if r := do(t, s, "GET", "/repos/alice/r", auth, nil); r.status != 502 {
		t.Errorf("second failure: %d", r.status)
	}
	if r := do(t, s, "GET", "/repos/alice/r", auth, nil); r.status != 200 {
		t.Errorf("after the failures: %d", r.status)
	}
	if n := s.RequestCount("/repos/alice/r"); n != 8 {
		t.Errorf("RequestCount %d", n)
	}
}

func TestRenameAndDelete(t *testing.T) {
	s, _ := newFake(t, Options{})
	rp := s.AddRepository(Repo{FullName: "alice/old", Private: true})
	auth := "token " + s.IssuePAT(PAT{Login: "alice"})
	s.RenameRepository("alice/old", "new")
	r := do(t, s, "GET", "/repos/alice/old", auth, nil)
	if r.status != 301 || r.header.Get("Location") != fmt.Sprintf("%s/repositories/%d", s.API, rp.ID) {
		t.Fatalf("old name: %d %v", r.status, r.header)
	}
	r = do(t, s, "GET", r.header.Get("Location"), auth, nil)
	var got struct {
		ID       int64
		FullName string `json:"full_name"`
	}
	r.json(t, &got)
	if got.ID != rp.ID || got.FullName != "alice/new" {
		t.Errorf("redirect target: %s", r.body)
	}
	s.DeleteRepository("alice/new")
	for _, p := range []string{"/repos/alice/old", "/repos/alice/new"} {
		if r := do(t, s, "GET", p, auth, nil); r.status != 404 {
			t.Errorf("%s after delete: %d", p, r.status)
		}
	}
}

func TestHooks(t *testing.T) {
	s, _ := newFake(t, Options{})
	s.AddRepository(Repo{FullName: "alice/r", Private: true})
	s.AddCollaborator("alice/r", "bob", "push")
	auth := "token " + s.IssuePAT(PAT{Login: "alice"})
	cfg := map[string]any{"url": "https://forgeway.example/hooks", "content_type": "json", "secret": "s3cret", "insecure_ssl": "0"}
	r := do(t, s, "POST", "/repos/alice/r/hooks", auth, map[string]any{"name": "web", "active": true, "events": []string{"push", "pull_request"}, "config": cfg})
	var h struct {
		ID     int64
		Config map[string]string
		Events []string
		Last   struct{ Status string } `json:"last_response"`
	}
	r.json(t, &h)
	if r.status != 201 || h.Config["secret"] == "s3cret" || h.Last.Status != "unused" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if r := do(t, s, "POST", "/repos/alice/r/hooks", auth, map[string]any{"config": map[string]any{"content_type": "json"}}); r.status != 422 {
		t.Errorf("hook without url: %d", r.status)
	}
	if got := s.Hooks("alice/r"); len(got) != 1 || got[0].Secret != "s3cret" {
		t.Fatalf("Hooks %+v", got)
	}
	// A config without the secret removes it, as GitHub documents.
	r = do(t, s, "PATCH", fmt.Sprintf("/repos/alice/r/hooks/%d", h.ID), auth, map[string]any{"config": map[string]any{"url": "https://forgeway.example/hooks", "content_type": "json"}, "active": false})
	if r.status != 200 || s.Hooks("alice/r")[0].Secret != "" || s.Hooks("alice/r")[0].Active {
		t.Errorf("patch: %d %+v", r.status, s.Hooks("alice/r"))
	}
	bob := "token " + s.IssuePAT(PAT{Login: "bob"})
	if r := do(t, s, "GET", "/repos/alice/r/hooks", bob, nil); r.status != 404 {
		t.Errorf("hooks as a non-admin: %d", r.status)
	}
	noHookScope := "token " + s.IssuePAT(PAT{Login: "alice", Scopes: []string{"repo"}})
	if r := do(t, s, "GET", "/repos/alice/r/hooks", noHookScope, nil); r.status != 404 || r.header.Get("X-Accepted-OAuth-Scopes") != "read:repo_hook" {
		t.Errorf("hooks without the scope: %d %v", r.status, r.header)
	}
	if r := do(t, s, "DELETE", fmt.Sprintf("/repos/alice/r/hooks/%d", h.ID), auth, nil); r.status != 204 {
		t.Errorf("delete: %d", r.status)
	}
	if r := do(t, s, "DELETE", fmt.Sprintf("/repos/alice/r/hooks/%d", h.ID), auth, nil); r.status != 404 {
		t.Errorf("delete again: %d", r.status)
	}
}

func TestRefsBranchesPulls(t *testing.T) {
	s, _ := newFake(t, Options{})
	rp := s.AddRepository(Repo{FullName: "alice/r", Private: true})
	auth := "token " + s.IssuePAT(PAT{Login: "alice"})
	main := rp.Branches["main"]
	r := do(t, s, "POST", "/repos/alice/r/git/refs", auth, map[string]string{"ref": "refs/heads/feature", "sha": main})
	if r.status != 201 {
		t.Fatalf("create ref: %d %s", r.status, r.body)
	}
	if r := do(t, s, "POST", "/repos/alice/r/git/refs", auth, map[string]string{"ref": "refs/heads/feature", "sha": main}); r.status != 422 {
		t.Errorf("existing ref: %d", r.status)
	}
	if r := do(t, s, "POST", "/repos/alice/r/git/refs", auth, map[string]string{"ref": "refs/heads/x", "sha": strings.Repeat("a", 40)}); r.status != 422 {
		t.Errorf("unknown sha: %d", r.status)
	}
	if r := do(t, s, "GET", "/repos/alice/r/git/ref/heads/feature", auth, nil); r.status != 200 {
		t.Errorf("get ref: %d", r.status)
	}
	r = do(t, s, "GET", "/repos/alice/r/branches?per_page=1", auth, nil)
	var br []struct{ Name string }
	r.json(t, &br)
	if len(br) != 1 || br[0].Name != "feature" || !strings.Contains(r.header.Get("Link"), `rel="last"`) {
		t.Errorf("branches: %s %s", r.body, r.header.Get("Link"))
	}
	if r := do(t, s, "POST", "/repos/alice/r/pulls", auth, map[string]any{"title": "t", "head": "feature", "base": "main"}); r.status != 422 {
		t.Errorf("pull without commits: %d", r.status)
	}
	s.SetBranch("alice/r", "feature", strings.Repeat("b", 40))
	r = do(t, s, "POST", "/repos/alice/r/pulls", auth, map[string]any{"title": "Add", "head": "feature", "base": "main", "body": "b", "draft": true})
	var pr struct {
		Number int64
		Draft  bool
		Head   struct{ SHA string }
	}
	r.json(t, &pr)
	if r.status != 201 || pr.Number != 1 || !pr.Draft || pr.Head.SHA != strings.Repeat("b", 40) {
		t.Fatalf("pull: %d %s", r.status, r.body)
	}
	if r := do(t, s, "POST", "/repos/alice/r/pulls", auth, map[string]any{"title": "Add", "head": "feature", "base": "main"}); r.status != 422 {
		t.Errorf("duplicate pull: %d", r.status)
	}
	if r := do(t, s, "DELETE", "/repos/alice/r/git/refs/heads/feature", auth, nil); r.status != 204 {
		t.Errorf("delete ref: %d", r.status)
	}
}

func TestOAuthAndManifest(t *testing.T) {
	s, clk := newFake(t, Options{})
	s.AddOrg("acme")
	// The manifest flow, as a browser would run it.
	manifest := `{"name":"Forgeway Acme","url":"https://forgeway.example","hook_attributes":{"url":"https://forgeway.example/webhooks/github"},"redirect_url":"https://forgeway.example/callback","default_permissions":{"contents":"write"},"default_events":["push"]}`
	form := url.Values{"manifest": {manifest}}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.PostForm(s.URL+"/organizations/acme/settings/apps/new?state=st8", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != 302 || loc.Host != "forgeway.example" || loc.Query().Get("state") != "st8" || loc.Query().Get("code") == "" {
		t.Fatalf("manifest form: %d %s", res.StatusCode, loc)
	}
	code := loc.Query().Get("code")
	r := do(t, s, "POST", "/app-manifests/"+code+"/conversions", "", nil)
	var conv struct {
		ID            int64
		Slug          string
		ClientID      string `json:"client_id"`
		ClientSecret  string `json:"client_secret"`
		WebhookSecret string `json:"webhook_secret"`
		PEM           string
		Owner         struct{ Login string }
	}
	r.json(t, &conv)
	if r.status != 201 || conv.Slug != "forgeway-acme" || !strings.Contains(conv.PEM, "RSA PRIVATE KEY") || conv.WebhookSecret == "" || conv.Owner.Login != "acme" {
		t.Fatalf("conversion: %d %s", r.status, r.body)
	}
	if r := do(t, s, "POST", "/app-manifests/"+code+"/conversions", "", nil); r.status != 404 {
		t.Errorf("second conversion: %d", r.status)
	}

	code = s.IssueOAuthCode(conv.ID, "alice")
	exchange := func(params url.Values) map[string]any {
		req, _ := http.NewRequest("POST", s.URL+"/login/oauth/access_token", strings.NewReader(params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	creds := url.Values{"client_id": {conv.ClientID}, "client_secret": {conv.ClientSecret}}
	bad := exchange(url.Values{"client_id": {conv.ClientID}, "client_secret": {"nope"}, "code": {code}})
	if bad["error"] != "incorrect_client_credentials" {
		t.Errorf("wrong secret: %v", bad)
	}
	p := url.Values{"code": {code}}
	for k, v := range creds {
		p[k] = v
	}
	tok := exchange(p)
	access, _ := tok["access_token"].(string)
	refresh, _ := tok["refresh_token"].(string)
	if !strings.HasPrefix(access, "ghu_") || !strings.HasPrefix(refresh, "ghr_") || tok["expires_in"] != float64(28800) {
		t.Fatalf("exchange: %v", tok)
	}
	if again := exchange(p); again["error"] != "bad_verification_code" {
		t.Errorf("code reused: %v", again)
	}
	r = do(t, s, "GET", "/user", "token "+access, nil)
	if r.status != 200 {
		t.Errorf("/user with the user token: %d", r.status)
	}
	clk.Add(8 * time.Hour)
	if r := do(t, s, "GET", "/user", "token "+access, nil); r.status != 401 {
		t.Errorf("expired user token: %d", r.status)
	}
	rp := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	for k, v := range creds {
		rp[k] = v
	}
	renewed := exchange(rp)
	if a, _ := renewed["access_token"].(string); !strings.HasPrefix(a, "ghu_") || a == access {
		t.Fatalf("refresh: %v", renewed)
	}
	if again := exchange(rp); again["error"] != "bad_refresh_token" {
		t.Errorf("refresh token reused: %v", again)
	}
}

func TestDeliverPush(t *testing.T) {
	s, _ := newFake(t, Options{})
	s.AddOrg("acme")
	type got struct {
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	var received []got
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		received = append(received, got{r.Header.Clone(), b})
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/broken") {
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(202)
	}))
	defer recv.Close()
	a := s.AddApp(App{Key: testKey(), WebhookURL: recv.URL + "/app", WebhookSecret: "app-secret"})
	rp := s.AddRepository(Repo{FullName: "acme/r"})
	in := s.AddInstallation(Installation{AppID: a.ID, Account: "acme"})
	hookID := s.AddHook("acme/r", Hook{URL: recv.URL + "/hook", Events: []string{"push"}, Active: true, ContentType: "json", Secret: "hook-secret"})
	broken := s.AddHook("acme/r", Hook{URL: recv.URL + "/broken", Events: []string{"*"}, Active: true, ContentType: "form"})
	s.AddHook("acme/r", Hook{URL: recv.URL + "/inactive", Events: []string{"push"}, Active: false})
	s.AddHook("acme/r", Hook{URL: recv.URL + "/other", Events: []string{"issues"}, Active: true})

	ds, err := s.DeliverPush(context.Background(), "acme/r", Push{Ref: "refs/heads/main", Commits: []Commit{{Message: "one"}, {Message: "two"}}, Pusher: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 || ds[0].Status != 202 || ds[1].Status != 500 || ds[2].Status != 202 || ds[2].Target != fmt.Sprintf("app:%d", a.ID) {
		t.Fatalf("deliveries %+v", ds)
	}
	mu.Lock()
	defer mu.Unlock()
	hookGot, appGot := received[0], received[2]
	sign := func(secret string, body []byte) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	if hookGot.header.Get("X-Hub-Signature-256") != sign("hook-secret", hookGot.body) {
		t.Error("hook delivery signature does not verify")
	}
	if appGot.header.Get("X-Hub-Signature-256") != sign("app-secret", appGot.body) {
		t.Error("App delivery signature does not verify")
	}
	h := hookGot.header
	if h.Get("X-GitHub-Event") != "push" || h.Get("X-GitHub-Hook-ID") != fmt.Sprint(hookID) || h.Get("X-GitHub-Hook-Installation-Target-Type") != "repository" ||
		h.Get("X-GitHub-Hook-Installation-Target-ID") != fmt.Sprint(rp.ID) || !strings.HasPrefix(h.Get("User-Agent"), "GitHub-Hookshot/") || len(h.Get("X-GitHub-Delivery")) != 36 {
		t.Errorf("hook delivery headers %v", h)
	}
	if received[1].header.Get("Content-Type") != "application/x-www-form-urlencoded" || !strings.HasPrefix(string(received[1].body), "payload=") {
		t.Errorf("form delivery %v %.40s", received[1].header, received[1].body)
	}
	var push struct {
		Ref, Before, After string
		Created, Deleted   bool
		Commits            []struct{ ID, Message string }
		HeadCommit         struct{ ID string } `json:"head_commit"`
		Pusher             struct{ Name string }
		Repository         struct {
			FullName string `json:"full_name"`
		}
		Installation *struct{ ID int64 }
	}
	if err := json.Unmarshal(appGot.body, &push); err != nil {
		t.Fatal(err)
	}
	if push.Ref != "refs/heads/main" || push.Before != rp.Branches["main"] || push.After != push.Commits[1].ID || push.HeadCommit.ID != push.After ||
		push.Created || push.Deleted || push.Pusher.Name != "alice" || push.Repository.FullName != "acme/r" || push.Installation == nil || push.Installation.ID != in.ID {
		t.Errorf("push payload %s", appGot.body)
	}
	if strings.Contains(string(hookGot.body), `"installation"`) {
		t.Error("repository hook delivery carries an installation")
	}
	if s.Branches("acme/r")["main"] != push.After {
		t.Error("push did not move the branch")
	}
	if lr := s.Hooks("acme/r"); lr[0].LastResponse.Status != "active" || lr[1].ID != broken || lr[1].LastResponse.Status != "misconfigured" {
		t.Errorf("last responses %+v", lr)
	}
}

func TestGitGate(t *testing.T) {
	var served []string
	git := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served = append(served, r.URL.Path+"?"+r.URL.RawQuery)
		w.WriteHeader(200)
	})
	s, _ := newFake(t, Options{Git: git})
	s.AddRepository(Repo{FullName: "alice/r", Private: true})
	s.AddCollaborator("alice/r", "reader", "pull")
	alice := s.IssuePAT(PAT{Login: "alice"})
	reader := s.IssuePAT(PAT{Login: "reader"})
	get := func(path, password string) int {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		if password != "" {
			req.SetBasicAuth("x-access-token", password)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == 401 && res.Header.Get("WWW-Authenticate") != `Basic realm="GitHub"` {
			t.Errorf("401 without the Basic challenge")
		}
		return res.StatusCode
	}
	tests := []struct {
		path, password string
		want           int
	}{
		{"/alice/r.git/info/refs?service=git-upload-pack", alice, 200},
		{"/alice/r.git/info/refs?service=git-upload-pack", "", 401},
		{"/alice/r.git/info/refs?service=git-upload-pack", "ghp_wrong", 401},
		{"/alice/r.git/info/refs?service=git-upload-pack", reader, 200},
		{"/alice/r.git/info/refs?service=git-receive-pack", reader, 401},
		{"/alice/r.git/info/refs?service=git-receive-pack", alice, 200},
		{"/alice/missing.git/info/refs?service=git-upload-pack", alice, 404},
	}
	for _, tt := range tests {
		if got := get(tt.path, tt.password); got != tt.want {
			t.Errorf("%s with password %v: %d, want %d", tt.path, tt.password != "", got, tt.want)
		}
	}
	if len(served) != 3 {
		t.Errorf("git handler saw %q", served)
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
	s.AddRepository(Repo{FullName: "alice/r"})
	auth := "token " + s.IssuePAT(PAT{Login: "alice"})
	do(t, s, "GET", "/repos/alice/r", auth, nil)
	do(t, s, "GET", "/repos/alice/r/nonexistent", auth, nil)
	do(t, s, "POST", "/repos/alice/r/hooks", auth, map[string]any{"config": "not an object"})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errs) != 2 || !strings.Contains(rec.errs[0], "no operation for GET /api/v3/repos/alice/r/nonexistent") ||
		!strings.Contains(rec.errs[1], "repos/create-webhook") {
		t.Errorf("reports: %q", rec.errs)
	}
}
