package azurefake

import (
	"bytes"
	"context"
	"encoding/base64"
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
)

var loader = apicheck.NewLoader()

// recordT is a testing.TB that records the fake's reports (apicheck violations) instead of
// failing, so that a test can assert the fake reports what it must.
type recordT struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordT) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordT) reports() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}

func newFake(t *testing.T, o Options) *Server {
	t.Helper()
	o.Loader = loader
	return New(t, o)
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %s", a.status, err, a.body)
	}
}

// do calls the fake with a token (none when empty), the body JSON-encoded.
func do(t *testing.T, s *Server, method, path, token string, body any, header ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.BaseURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(":"+token)))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

func TestAuthentication(t *testing.T) {
	s := newFake(t, Options{})
	good := s.IssuePAT(PAT{User: "alice@example.com"})
	readOnly := s.IssuePAT(PAT{User: "alice@example.com", Scopes: []string{ScopeProject}})
	revoked := s.IssuePAT(PAT{User: "alice@example.com"})
	s.RevokePAT(revoked)
	expired := s.IssuePAT(PAT{User: "alice@example.com", Expires: time.Now().Add(-time.Minute)})
	s.AddRepositories("Fiber", 1)

	a := do(t, s, "GET", "/_apis/projects?api-version=7.1", "", nil)
	if a.status != http.StatusNonAuthoritativeInfo || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Errorf("anonymous: %d %s", a.status, a.header.Get("Content-Type"))
	}
	a = do(t, s, "GET", "/_apis/projects?api-version=7.1", "", nil, "X-TFS-FedAuthRedirect", "Suppress")
	if a.status != http.StatusUnauthorized || !strings.Contains(string(a.body), "TF400813") {
		t.Errorf("anonymous, redirect suppressed: %d %s", a.status, a.body)
	}
	for name, tok := range map[string]string{"revoked": revoked, "expired": expired, "unknown": "nope"} {
		if a := do(t, s, "GET", "/_apis/projects?api-version=7.1", tok, nil); a.status != http.StatusUnauthorized {
			t.Errorf("%s token: %d", name, a.status)
		}
	}
	if a := do(t, s, "GET", "/_apis/projects?api-version=7.1", readOnly, nil); a.status != http.StatusOK {
		t.Errorf("projects with Project and Team (Read): %d %s", a.status, a.body)
	}
	if a := do(t, s, "GET", "/Fiber/_apis/git/repositories?api-version=7.1", readOnly, nil); a.status != http.StatusUnauthorized {
		t.Errorf("repositories without Code (Read): %d", a.status)
	}
	var cd struct {
		AuthenticatedUser struct{ ProviderDisplayName string } `json:"authenticatedUser"`
		DeploymentType    string                               `json:"deploymentType"`
	}
	a = do(t, s, "GET", "/_apis/connectionData?api-version=7.1-preview.1", good, nil)
	a.json(t, &cd)
	if a.status != 200 || cd.AuthenticatedUser.ProviderDisplayName != "alice@example.com" || cd.DeploymentType != "hosted" {
		t.Errorf("connectionData: %d %+v", a.status, cd)
	}
}

func TestAPIVersions(t *testing.T) {
	s := newFake(t, Options{APIVersion: "7.0"})
	tok := s.IssuePAT(PAT{User: "alice@example.com"})
	var e struct{ Message, TypeKey string }
	a := do(t, s, "GET", "/_apis/projects?api-version=7.1", tok, nil)
	a.json(t, &e)
	if a.status != 400 || e.TypeKey != "VssVersionOutOfRangeException" || !strings.Contains(e.Message, "supports is 7.0") {
		t.Errorf("7.1 on a 7.0 server: %d %+v", a.status, e)
	}
	if a := do(t, s, "GET", "/_apis/projects?api-version=7.0", tok, nil); a.status != 200 {
		t.Errorf("7.0: %d %s", a.status, a.body)
	}
	a = do(t, s, "GET", "/_apis/connectionData?api-version=7.0", tok, nil)
	a.json(t, &e)
	if a.status != 400 || e.TypeKey != "VssInvalidPreviewVersionException" {
		t.Errorf("connectionData without -preview: %d %+v", a.status, e)
	}

	// A request without api-version is refused, and the description check reports it.
	rec := &recordT{TB: t}
	checked := New(rec, Options{Loader: loader})
	tok = checked.IssuePAT(PAT{User: "alice@example.com"})
	if a := do(t, checked, "GET", "/_apis/projects", tok, nil); a.status != 400 {
		t.Errorf("no api-version: %d", a.status)
	}
	if !strings.Contains(rec.reports(), "api-version") {
		t.Errorf("apicheck did not report the missing api-version: %q", rec.reports())
	}
	// So is a request the descriptions do not have.
	do(t, checked, "GET", "/_apis/nothing/here?api-version=7.1", tok, nil)
	if !strings.Contains(rec.reports(), "no operation for GET") {
		t.Errorf("apicheck did not report an unknown operation: %q", rec.reports())
	}
}

func TestListsAndContinuation(t *testing.T) {
	s := newFake(t, Options{})
	tok := s.IssuePAT(PAT{User: "alice@example.com"})
	for i := range 5 {
		s.AddProject(Project{Name: fmt.Sprintf("p%d", i)})
	}
	var l struct {
		Count int
		Value []struct{ Name string }
	}
	a := do(t, s, "GET", "/_apis/projects?api-version=7.1&$top=2", tok, nil)
	a.json(t, &l)
	if l.Count != 2 || l.Value[1].Name != "p1" || a.header.Get("X-MS-ContinuationToken") != "2" {
		t.Fatalf("first page: %+v %v", l, a.header)
	}
	a = do(t, s, "GET", "/_apis/projects?api-version=7.1&$top=2&continuationToken=4", tok, nil)
	a.json(t, &l)
	if l.Count != 1 || l.Value[0].Name != "p4" || a.header.Get("X-MS-ContinuationToken") != "" {
		t.Errorf("last page: %+v %v", l, a.header)
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newFake(t, Options{RateLimit: 4, Now: clock})
	tok := s.IssuePAT(PAT{User: "alice@example.com"})
	get := func() answer { return do(t, s, "GET", "/_apis/projects?api-version=7.1", tok, nil) }
	if a := get(); a.header.Get("X-RateLimit-Remaining") != "" {
		t.Errorf("headers before half the budget: %v", a.header)
	}
	a := get()
	if a.header.Get("X-RateLimit-Limit") != "4" || a.header.Get("X-RateLimit-Remaining") != "2" || a.header.Get("X-RateLimit-Resource") == "" {
		t.Errorf("headers at half the budget: %v", a.header)
	}
	get()
	get()
	a = get()
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "300" || !strings.Contains(string(a.body), "TF400733") {
		t.Errorf("spent budget: %d %v %s", a.status, a.header, a.body)
	}
	mu.Lock()
	now = now.Add(rateWindow)
	mu.Unlock()
	if a := get(); a.status != 200 {
		t.Errorf("after the window: %d", a.status)
	}
}

func TestFailuresAndLatency(t *testing.T) {
	s := newFake(t, Options{})
	tok := s.IssuePAT(PAT{User: "alice@example.com"})
	s.FailNext("/_apis/projects", 503, http.Header{"Retry-After": {"7"}})
	s.FailNext("*", 500, nil)
	a := do(t, s, "GET", "/_apis/projects?api-version=7.1", tok, nil)
	if a.status != 503 || a.header.Get("Retry-After") != "7" {
		t.Errorf("first failure: %d %v", a.status, a.header)
	}
	if a := do(t, s, "GET", "/_apis/hooks/subscriptions?api-version=7.1", tok, nil); a.status != 500 {
		t.Errorf("second failure: %d", a.status)
	}
	if a := do(t, s, "GET", "/_apis/projects?api-version=7.1", tok, nil); a.status != 200 {
		t.Errorf("after the failures: %d", a.status)
	}
	if n := s.RequestCount("/_apis/projects"); n != 2 || s.RequestCount("") != 3 {
		t.Errorf("counts %d %d", n, s.RequestCount(""))
	}

	s.HangNext("/_apis/projects")
	client := &http.Client{Timeout: 200 * time.Millisecond}
	req, _ := http.NewRequest("GET", s.BaseURL+"/_apis/projects?api-version=7.1", nil)
	if _, err := client.Do(req); err == nil {
		t.Error("a hung request answered")
	}
	s.SetLatency(50 * time.Millisecond)
	start := time.Now()
	do(t, s, "GET", "/_apis/projects?api-version=7.1", tok, nil)
	if time.Since(start) < 50*time.Millisecond {
		t.Error("latency not applied")
	}
}

// receiver records the deliveries it gets; it answers status.
type receiver struct {
	mu     sync.Mutex
	status int
	got    []*http.Request
	bodies [][]byte
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.got, r.bodies = append(r.got, req), append(r.bodies, b)
	st := r.status
	r.mu.Unlock()
	w.WriteHeader(st)
}

func TestSubscriptionsAndDeliveries(t *testing.T) {
	s := newFake(t, Options{})
	s.AddUser(User{UniqueName: "viewer@example.com"})
	viewer := s.IssuePAT(PAT{User: "viewer@example.com"})
	tok := s.IssuePAT(PAT{User: "alice@example.com"})
	r := s.AddRepository(Repo{Project: "Fiber", Name: "app", Branches: map[string]string{"main": strings.Repeat("1", 40)}})
	p := s.AddProject(Project{Name: "Fiber"})
	rcv := &receiver{status: 200}
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)

	body := map[string]any{
		"publisherId": "tfs", "eventType": "git.push", "resourceVersion": "1.0", "consumerId": "webHooks", "consumerActionId": "httpRequest",
		"publisherInputs": map[string]string{"projectId": p.ID, "repository": r.ID},
		"consumerInputs":  map[string]string{"url": hook.URL, "basicAuthUsername": "forgeway", "basicAuthPassword": "s3cret", "httpHeaders": "X-Extra: one"},
	}
	if a := do(t, s, "POST", "/_apis/hooks/subscriptions?api-version=7.1", viewer, body); a.status != http.StatusForbidden || !strings.Contains(string(a.body), "Edit subscriptions") {
		t.Errorf("without Edit subscriptions: %d %s", a.status, a.body)
	}
	var sub struct {
		ID             string
		Status         string
		ConsumerInputs map[string]string
	}
	a := do(t, s, "POST", "/_apis/hooks/subscriptions?api-version=7.1", tok, body)
	a.json(t, &sub)
	if a.status != 200 || sub.Status != "enabled" || sub.ConsumerInputs["basicAuthPassword"] != "********" {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	bad := map[string]any{"publisherId": "tfs", "eventType": "git.push", "consumerId": "webHooks", "consumerActionId": "httpRequest",
		"publisherInputs": map[string]string{"projectId": p.ID}, "consumerInputs": map[string]string{"url": hook.URL, "basicAuthPassword": "has space"}}
	if a := do(t, s, "POST", "/_apis/hooks/subscriptions?api-version=7.1", tok, bad); a.status != 400 {
		t.Errorf("invalid password input: %d", a.status)
	}

	// Replacing with the masked password keeps the stored one.
	body["status"] = "enabled"
	body["consumerInputs"].(map[string]string)["basicAuthPassword"] = "********"
	if a := do(t, s, "PUT", "/_apis/hooks/subscriptions/"+sub.ID+"?api-version=7.1", tok, body); a.status != 200 {
		t.Fatalf("replace: %d %s", a.status, a.body)
	}
	if got := s.Subscriptions("Fiber/app")[0].ConsumerInputs["basicAuthPassword"]; got != "s3cret" {
		t.Errorf("password after a replace with the masked value: %q", got)
	}

	// Query with input filters.
	var q struct{ Results []struct{ ID string } }
	filter := func(id, v string) []any {
		return []any{map[string]any{"conditions": []any{map[string]any{"inputId": id, "operator": "equals", "inputValue": v}}}}
	}
	a = do(t, s, "POST", "/_apis/hooks/subscriptionsquery?api-version=7.1", tok, map[string]any{"publisherId": "tfs", "publisherInputFilters": filter("repository", strings.ToUpper(r.ID))})
	a.json(t, &q)
	if len(q.Results) != 1 || q.Results[0].ID != sub.ID {
		t.Errorf("query by repository: %s", a.body)
	}
	a = do(t, s, "POST", "/_apis/hooks/subscriptionsquery?api-version=7.1", tok, map[string]any{"consumerInputFilters": filter("url", "https://elsewhere")})
	a.json(t, &q)
	if len(q.Results) != 0 {
		t.Errorf("query by another url: %s", a.body)
	}

	// A ref created through the API is delivered with the subscription's credentials.
	ups := []map[string]string{{"name": "refs/heads/feature", "oldObjectId": zeroSHA, "newObjectId": strings.Repeat("1", 40)}}
	if a := do(t, s, "POST", "/Fiber/_apis/git/repositories/"+r.ID+"/refs?api-version=7.1", tok, ups); a.status != 200 {
		t.Fatalf("create ref: %d %s", a.status, a.body)
	}
	if len(rcv.got) != 1 {
		t.Fatalf("%d deliveries", len(rcv.got))
	}
	u, pw, _ := rcv.got[0].BasicAuth()
	var n struct {
		SubscriptionID string
		EventType      string
		Resource       struct {
			RefUpdates []struct{ Name, OldObjectID, NewObjectID string }
			PushedBy   struct{ UniqueName string }
		}
	}
	if err := json.Unmarshal(rcv.bodies[0], &n); err != nil {
		t.Fatal(err)
	}
	if u != "forgeway" || pw != "s3cret" || rcv.got[0].Header.Get("X-Extra") != "one" || n.SubscriptionID != sub.ID ||
		n.EventType != "git.push" || n.Resource.RefUpdates[0].Name != "refs/heads/feature" || n.Resource.PushedBy.UniqueName != "alice@example.com" {
		t.Errorf("delivery %s %s %v: %s", u, pw, rcv.got[0].Header, rcv.bodies[0])
	}

	// Failures: probation, then disabled after three; a disabled subscription gets nothing.
	rcv.status = 500
	for i, want := range []string{"onProbation", "onProbation", "disabledBySystem"} {
		ups[0]["name"] = fmt.Sprintf("refs/heads/f%d", i)
		do(t, s, "POST", "/Fiber/_apis/git/repositories/"+r.ID+"/refs?api-version=7.1", tok, ups)
		if st := s.Subscriptions("")[0].Status; st != want {
			t.Errorf("after failure %d: %s, want %s", i+1, st, want)
		}
	}
	before := len(s.Deliveries())
	ups[0]["name"] = "refs/heads/quiet"
	do(t, s, "POST", "/Fiber/_apis/git/repositories/"+r.ID+"/refs?api-version=7.1", tok, ups)
	if len(s.Deliveries()) != before {
		t.Error("a disabled subscription was delivered to")
	}

	// The Test button sends Microsoft's sample with the subscription's identity.
	rcv.status = 200
	d := s.SendTestNotification(context.Background(), sub.ID)
	var sample struct {
		SubscriptionID string
		NotificationID int64
		ID             string
	}
	_ = json.Unmarshal(d.Body, &sample)
	if d.Status != 200 || sample.SubscriptionID != sub.ID || sample.ID != "03c164c2-8912-4d5e-8009-3707d5f83734" || sample.NotificationID < 2 {
		t.Errorf("test notification %+v: %s", d, d.Body)
	}

	if a := do(t, s, "DELETE", "/_apis/hooks/subscriptions/"+sub.ID+"?api-version=7.1", tok, nil); a.status != http.StatusOK {
		t.Errorf("delete: %d", a.status)
	}
	if a := do(t, s, "DELETE", "/_apis/hooks/subscriptions/"+sub.ID+"?api-version=7.1", tok, nil); a.status != http.StatusNotFound {
		t.Errorf("delete again: %d", a.status)
	}
}

func TestServerStyleCollection(t *testing.T) {
	s := newFake(t, Options{PathPrefix: "/tfs", Organization: "DefaultCollection", OnPremises: true})
	tok := s.IssuePAT(PAT{User: `CONTOSO\alice`})
	r := s.AddRepository(Repo{Project: "Fiber", Name: "app"})
	if !strings.HasSuffix(s.BaseURL, "/tfs/DefaultCollection") {
		t.Fatalf("BaseURL %s", s.BaseURL)
	}
	var repo struct{ RemoteURL, WebURL string }
	a := do(t, s, "GET", "/Fiber/_apis/git/repositories/"+r.ID+"?api-version=7.1", tok, nil)
	a.json(t, &repo)
	if repo.RemoteURL != s.BaseURL+"/Fiber/_git/app" || repo.WebURL != repo.RemoteURL {
		t.Errorf("on-premises remote URL %+v", repo)
	}
	var cd struct{ DeploymentType string }
	do(t, s, "GET", "/_apis/connectionData?api-version=7.1-preview.1", tok, nil).json(t, &cd)
	if cd.DeploymentType != "onPremises" {
		t.Errorf("deploymentType %q", cd.DeploymentType)
	}
}
