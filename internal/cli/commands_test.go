package cli

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/config"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/problem"
)

var created = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func TestIntegrationsListTable(t *testing.T) {
	f := newFake(t)
	f.json("GET /api/v1/integrations", 200, api.List[api.Integration]{Items: []api.Integration{
		{ID: "int_1", Kind: "github", Name: "acme", Status: "active", BaseURL: "https://api.github.com"},
		{ID: "int_22", Kind: "gitlab", Name: "self managed", Status: "error", BaseURL: "https://gitlab.example.com"},
	}})
	r := run(t, f.srv.URL, "integrations", "list")
	wantCode(t, r, 0)
	want := []string{
		"ID      KIND    NAME          STATUS  BASE URL",
		"int_1   github  acme          active  https://api.github.com",
		"int_22  gitlab  self managed  error   https://gitlab.example.com",
	}
	if diff := cmp.Diff(want, lines(r.stdout)); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].Method != "GET" || reqs[0].Path != "/api/v1/integrations" {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestListJSONIsTheAnswer(t *testing.T) {
	f := newFake(t)
	f.on("GET /api/v1/integrations", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items":[{"id":"int_1","kind":"github","future_field":{"x":1}}],"next_cursor":""}` + "\n"))
	})
	r := run(t, f.srv.URL, "--json", "integrations", "list")
	wantCode(t, r, 0)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	want := map[string]any{"items": []any{map[string]any{"id": "int_1", "kind": "github", "future_field": map[string]any{"x": float64(1)}}}, "next_cursor": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}

func TestReposListFollowsEveryPage(t *testing.T) {
	f := newFake(t)
	pages := map[string]api.List[api.Repository]{
		"":   {Items: []api.Repository{{ID: "r1", FullName: "acme/one", DefaultBranch: "main", Visibility: "private", Attached: true, HookStatus: "ok", Mirror: &api.Mirror{Status: "synced"}}}, NextCursor: "c1"},
		"c1": {Items: []api.Repository{{ID: "r2", FullName: "acme/two", DefaultBranch: "trunk", Visibility: "public"}}, NextCursor: "c2"},
		"c2": {Items: []api.Repository{{ID: "r3", FullName: "acme/three", DefaultBranch: "main", Visibility: "internal"}}},
	}
	f.on("GET /api/v1/repositories", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("integration") != "int_1" || q.Get("attached") != "true" || q.Get("q") != "ac me" {
			t.Errorf("query = %s", r.URL.RawQuery)
		}
		p, ok := pages[q.Get("cursor")]
		if !ok {
			t.Errorf("unknown cursor %q", q.Get("cursor"))
		}
		writeTestJSON(w, 200, p)
	})
	r := run(t, f.srv.URL, "repos", "list", "--integration", "int_1", "--attached", "--q", "ac me")
	wantCode(t, r, 0)
	want := []string{
		"ID  FULL NAME   DEFAULT BRANCH  VISIBILITY  ATTACHED  HOOKS  MIRROR",
		"r1  acme/one    main            private     yes       ok     synced",
		"r2  acme/two    trunk           public      no        -      -",
		"r3  acme/three  main            internal    no        -      -",
	}
	if diff := cmp.Diff(want, lines(r.stdout)); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	if n := len(f.requests()); n != 3 {
		t.Errorf("%d requests, want 3 (one per page)", n)
	}
	if r.stderr != "" {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestReposListLimitFetchesOnePage(t *testing.T) {
	f := newFake(t)
	f.on("GET /api/v1/repositories", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("limit"); got != "1" {
			t.Errorf("limit = %q", got)
		}
		if got := r.URL.Query().Get("cursor"); got != "c0" {
			t.Errorf("cursor = %q", got)
		}
		if _, ok := r.URL.Query()["attached"]; ok {
			t.Errorf("attached sent though not given: %s", r.URL.RawQuery)
		}
		writeTestJSON(w, 200, api.List[api.Repository]{Items: []api.Repository{{ID: "r1", FullName: "a/b"}}, NextCursor: "c1"})
	})
	r := run(t, f.srv.URL, "repos", "list", "--limit", "1", "--cursor", "c0")
	wantCode(t, r, 0)
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if !strings.Contains(r.stderr, "--cursor c1") {
		t.Errorf("stderr does not say how to get the next page: %q", r.stderr)
	}

	// --json with --limit is the page itself, cursor included.
	r = run(t, f.srv.URL, "--json", "repos", "list", "--limit", "1", "--cursor", "c0")
	wantCode(t, r, 0)
	var page api.List[api.Repository]
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || page.NextCursor != "c1" || len(page.Items) != 1 {
		t.Errorf("json page = %+v, %v", page, err)
	}
}

func TestListDetectsACursorLoop(t *testing.T) {
	f := newFake(t)
	f.json("GET /api/v1/deliveries", 200, api.List[api.Delivery]{Items: []api.Delivery{{ID: "d1"}}, NextCursor: "same"})
	r := run(t, f.srv.URL, "deliveries", "list")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "twice") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestDeliveriesAndJobsTables(t *testing.T) {
	f := newFake(t)
	f.on("GET /api/v1/deliveries", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("status") != "failed" || r.URL.Query().Get("integration") != "int_1" {
			t.Errorf("query = %s", r.URL.RawQuery)
		}
		writeTestJSON(w, 200, api.List[api.Delivery]{Items: []api.Delivery{
			{ID: "dlv_1", Kind: "github", Event: "pull_request", Action: "opened", Status: "failed", ReceivedAt: created},
			{ID: "dlv_2", Kind: "github", Event: "push", Status: "processed", ReceivedAt: created.Add(time.Hour)},
		}})
	})
	f.on("GET /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("state") != "dead" {
			t.Errorf("query = %s", r.URL.RawQuery)
		}
		writeTestJSON(w, 200, api.List[api.Job]{Items: []api.Job{
			{ID: 7, Kind: "repository.sync", State: "dead", Attempt: 8, MaxAttempts: 8, LastError: "fetch: host\nunreachable"},
		}})
	})
	r := run(t, f.srv.URL, "deliveries", "list", "--status", "failed", "--integration", "int_1")
	wantCode(t, r, 0)
	want := []string{
		"ID     KIND    EVENT         ACTION  STATUS     RECEIVED",
		"dlv_1  github  pull_request  opened  failed     2026-03-04T05:06:07Z",
		"dlv_2  github  push          -       processed  2026-03-04T06:06:07Z",
	}
	if diff := cmp.Diff(want, lines(r.stdout)); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	r = run(t, f.srv.URL, "jobs", "list", "--state", "dead")
	wantCode(t, r, 0)
	want = []string{
		"ID  KIND             STATE  ATTEMPT  ERROR",
		"7   repository.sync  dead   8/8      fetch: host unreachable",
	}
	if diff := cmp.Diff(want, lines(r.stdout)); diff != "" {
		t.Errorf("jobs (-want +got):\n%s", diff)
	}
}

func TestProblemRendering(t *testing.T) {
	f := newFake(t)
	f.on("GET /api/v1/integrations/{id}", func(w http.ResponseWriter, r *http.Request) {
		sendProblem(w, 404, "Integration not found", "no integration "+r.PathValue("id"), "List them with GET /api/v1/integrations.")
	})
	f.on("POST /api/v1/repositories/{id}/pulls", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, &problem.Details{Type: problem.TypeBase + "invalid-pull-request", Title: "The pull request is not valid", Status: 422,
			Errors: []problem.FieldError{{Field: "source", Detail: "a branch name is required"}}})
	})
	f.on("GET /api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(502)
		_, _ = w.Write([]byte("<html>\n<body>Bad   gateway</body></html>"))
	})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"problem with hint", []string{"integrations", "get", "int_9"},
			"error: Integration not found: no integration int_9\nhint: List them with GET /api/v1/integrations.\n"},
		{"field errors", []string{"repos", "pr", "r1", "--title", "t", "--source", "x y"},
			"error: The pull request is not valid\n  source: a branch name is required\n"},
		{"not a problem", []string{"jobs", "get", "5"},
			"error: the server answered 502 Bad Gateway: <html> <body>Bad gateway</body></html>\nhint: Is " + f.srv.URL + " a Forgeway server (its API is under /api/v1)?\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, f.srv.URL, tt.args...)
			wantCode(t, r, 1)
			if r.stderr != tt.want {
				t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q", r.stdout)
			}
		})
	}
}

func TestUnauthorizedWithoutTokenSaysSo(t *testing.T) {
	srv := newFakeNoAuth(t)
	r := runWith(t, srv, runOpts{env: map[string]string{"FORGEWAY_TOKEN": ""}}, "integrations", "list")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "error: An API token is required") || !strings.Contains(r.stderr, "set FORGEWAY_TOKEN") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

// newFakeNoAuth is a server that refuses every request like the API does without a token.
func newFakeNoAuth(t *testing.T) string {
	t.Helper()
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("Authorization sent: %q", r.Header.Get("Authorization"))
		}
		sendProblem(w, 401, "An API token is required", "send Authorization: Bearer <token>", "Create a token with `forgeway tokens create`.")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestTokenNeverInErrors(t *testing.T) {
	f := newFake(t)
	f.on("GET /api/v1/integrations", func(w http.ResponseWriter, r *http.Request) {
		sendProblem(w, 401, "The API token is not valid", "no token matches", "")
	})
	r := run(t, f.srv.URL, "integrations", "list")
	wantCode(t, r, 1)
	if strings.Contains(r.stderr+r.stdout, testToken) {
		t.Errorf("the token leaked into the output: %q", r.stderr)
	}
	// --token on the command line is used (and wins over the environment) but never printed.
	r = runWith(t, "http://127.0.0.1:1", runOpts{}, "--token", "flag-token-value", "integrations", "list")
	wantCode(t, r, 1)
	if strings.Contains(r.stderr, "flag-token-value") || strings.Contains(r.stderr, testToken) {
		t.Errorf("a token leaked into the output: %q", r.stderr)
	}
}

func TestServerNotReachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	r := run(t, addr, "repos", "list")
	wantCode(t, r, 1)
	for _, want := range []string{"not reachable at " + addr, "forgeway serve", "FORGEWAY_URL"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
	}
}

func TestBadServerURLIsUsage(t *testing.T) {
	r := run(t, "ftp://user:pw@example.com", "integrations", "list")
	wantCode(t, r, 2)
	if strings.Contains(r.stderr, "pw") {
		t.Errorf("the URL's password is shown: %q", r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unknown command", []string{"bogus"}},
		{"unknown subcommand", []string{"integrations", "bogus"}},
		{"missing argument", []string{"repos", "get"}},
		{"extra argument", []string{"repos", "get", "a", "b"}},
		{"unknown flag", []string{"repos", "list", "--nope"}},
		{"bad flag value", []string{"repos", "list", "--limit", "x"}},
		{"job id not a number", []string{"jobs", "get", "abc"}},
		{"create without kind", []string{"integrations", "create", "--url", "https://x"}},
		{"set without changes", []string{"integrations", "set", "int_1"}},
		{"admin and project", []string{"tokens", "create", "--name", "n", "--admin", "--project", "p"}},
		{"token neither admin nor project", []string{"tokens", "create", "--name", "n"}},
		{"pr without title", []string{"repos", "pr", "r1", "--source", "b"}},
		{"push without refspec", []string{"repos", "push", "r1"}},
		{"malformed setting", []string{"integrations", "create", "--kind", "github", "--setting", "novalue"}},
		{"cursor without limit", []string{"deliveries", "list", "--cursor", "c"}},
		{"serve bad flag", []string{"serve", "--bogus"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The server URL is unreachable: a usage error must not get as far as a request.
			r := run(t, "http://127.0.0.1:1", tt.args...)
			wantCode(t, r, 2)
			if !strings.HasPrefix(r.stderr, "error: ") || !strings.Contains(r.stderr, "--help") {
				t.Errorf("stderr = %q", r.stderr)
			}
		})
	}
}

func TestServeRejectsBadConfiguration(t *testing.T) {
	tests := [][]string{
		{"--workers", "-1"},
		{"--log-level", "loud"},
		{"--public-url", "ftp://example.com"},
		{"--job-poll", "forever"},
		{"--config", filepath.Join(t.TempDir(), "missing.yaml")},
		{"extra-argument"},
	}
	for _, bad := range tests {
		t.Run(strings.Join(bad, " "), func(t *testing.T) {
			// Should the value ever become valid, the server starts in a temporary directory on
			// a free port and stops with the context instead of hanging the test.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			args := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, bad...)
			r := runWith(t, "http://127.0.0.1:1", runOpts{ctx: ctx}, args...)
			wantCode(t, r, 2)
			if !strings.HasPrefix(r.stderr, "error: ") || !strings.Contains(r.stderr, "serve --help") {
				t.Errorf("stderr = %q", r.stderr)
			}
		})
	}
}

func TestSecretStaysOutOfMessages(t *testing.T) {
	r := run(t, "http://127.0.0.1:1", "integrations", "create", "--kind", "github", "--secret", "token-without-equals-sign")
	wantCode(t, r, 2)
	if strings.Contains(r.stderr, "token-without-equals-sign") {
		t.Errorf("a malformed secret is echoed: %q", r.stderr)
	}
}

func TestCreateReadsSecretsFromFilesAndStdin(t *testing.T) {
	dir := t.TempDir()
	pem := "-----BEGIN RSA PRIVATE KEY-----\nMIIsecretkeymaterial\n-----END RSA PRIVATE KEY-----"
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, []byte(pem+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hookFile := filepath.Join(dir, "hook")
	if err := os.WriteFile(hookFile, []byte("hook-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFake(t)
	f.on("POST /api/v1/integrations", func(w http.ResponseWriter, r *http.Request) {
		var in api.IntegrationCreate
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			t.Errorf("body: %v", err)
		}
		want := api.IntegrationCreate{
			Kind: "github", Name: "acme", BaseURL: "https://api.github.com",
			Settings:      map[string]string{"app_id": "42", "ca_bundle_path": "x=y"},
			Secrets:       map[string]string{"private_key": pem, "client_secret": "from-stdin"},
			WebhookSecret: "hook-secret-value", Filter: "visibility == 'private'", Schedule: "*/30 * * * *", ProjectID: "prj_1",
		}
		if diff := cmp.Diff(want, in); diff != "" {
			t.Errorf("body (-want +got):\n%s", diff)
		}
		w.Header().Set("Location", "/api/v1/integrations/int_1")
		writeTestJSON(w, 201, api.Integration{ID: "int_1", Kind: "github", Name: "acme", Status: "pending", Secrets: []string{"client_secret", "private_key"},
			Settings: map[string]string{"app_id": "42"}, WebhookURL: "https://fw.example.com/webhooks/github/int_1"})
	})
	r := runWith(t, f.srv.URL, runOpts{stdin: "from-stdin\n"}, "integrations", "create",
		"--kind", "github", "--name", "acme", "--url", "https://api.github.com",
		"--setting", "app_id=42", "--setting", "ca_bundle_path=x=y",
		"--secret-file", "private_key="+keyFile, "--secret-stdin", "client_secret",
		"--webhook-secret-file", hookFile,
		"--filter", "visibility == 'private'", "--schedule", "*/30 * * * *", "--project", "prj_1")
	wantCode(t, r, 0)
	for _, req := range f.requests() {
		for _, secret := range []string{"MIIsecretkeymaterial", "from-stdin", "hook-secret-value"} {
			if strings.Contains(req.Path+"?"+req.Query, secret) {
				t.Errorf("secret in the request URL: %s?%s", req.Path, req.Query)
			}
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("secret %q printed", secret)
			}
		}
	}
	for _, want := range []string{"Created integration int_1.", "Webhook URL:", "https://fw.example.com/webhooks/github/int_1", "Secrets set:", "client_secret, private_key", "app_id=42"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("warned without --secret: %q", r.stderr)
	}
}

func TestCreateSecretProblems(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"missing file", "", []string{"--secret-file", "private_key=" + filepath.Join(dir, "nope")}, 1, "secret private_key: read secret file"},
		{"empty file", "", []string{"--secret-file", "token=" + empty}, 1, "is empty"},
		{"empty stdin", "", []string{"--secret-stdin", "token"}, 1, "standard input is empty"},
		{"twice", "x", []string{"--secret-file", "token=" + empty, "--secret-stdin", "token"}, 2, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"integrations", "create", "--kind", "github"}, tt.args...)
			r := runWith(t, "http://127.0.0.1:1", runOpts{stdin: tt.stdin}, args...)
			wantCode(t, r, tt.code)
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.want)
			}
		})
	}
}

func TestInlineSecretWarns(t *testing.T) {
	f := newFake(t)
	f.on("POST /api/v1/integrations", func(w http.ResponseWriter, r *http.Request) {
		var in api.IntegrationCreate
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Secrets["token"] != "inline-value" {
			t.Errorf("secrets = %v", in.Secrets)
		}
		writeTestJSON(w, 201, api.Integration{ID: "int_1"})
	})
	r := run(t, f.srv.URL, "integrations", "create", "--kind", "gitlab", "--secret", "token=inline-value", "--no-discover")
	wantCode(t, r, 0)
	if !strings.Contains(r.stderr, "warning: --secret") {
		t.Errorf("no warning: %q", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "inline-value") {
		t.Errorf("secret printed")
	}
}

func TestSetSendsOnlyWhatChanged(t *testing.T) {
	dir := t.TempDir()
	f := newFake(t)
	var got []map[string]any
	f.on("PATCH /api/v1/integrations/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "int 1" {
			t.Errorf("id = %q", r.PathValue("id"))
		}
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Error(err)
		}
		got = append(got, m)
		writeTestJSON(w, 200, api.Integration{ID: "int 1"})
	})
	tokenFile := filepath.Join(dir, "tok")
	if err := os.WriteFile(tokenFile, []byte("new-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, f.srv.URL, "integrations", "set", "int 1", "--name", "", "--setting", "ca_bundle=", "--setting", "reserve=100",
		"--secret-file", "token="+tokenFile, "--rotate-webhook-secret")
	wantCode(t, r, 0)
	r2 := run(t, f.srv.URL, "integrations", "set", "int 1", "--finish-rotation", "--filter", "archived == `false`")
	wantCode(t, r2, 0)
	want := []map[string]any{
		{
			"name": "", "base_url": nil, "filter": nil, "schedule": nil,
			"settings":              map[string]any{"ca_bundle": nil, "reserve": "100"},
			"secrets":               map[string]any{"token": "new-token"},
			"rotate_webhook_secret": "", "finish_rotation": false,
		},
		{
			"name": nil, "base_url": nil, "filter": "archived == `false`", "schedule": nil,
			"settings": nil, "secrets": nil, "rotate_webhook_secret": nil, "finish_rotation": true,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("patches (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.stdout, "--finish-rotation") {
		t.Errorf("rotation not explained: %q", r.stdout)
	}
}

func TestIntegrationsTestChecks(t *testing.T) {
	f := newFake(t)
	f.json("POST /api/v1/integrations/bad/test", 200, api.Diagnosis{OK: false, Checks: []forge.Check{
		{Name: "reachable", OK: true, Detail: "GitHub Enterprise 3.14"},
		{Name: "credential", OK: false, Detail: "401 Bad credentials", Hint: "Renew the token."},
		{Name: "tls verification", OK: true, Warning: true, Detail: "off"},
	}})
	f.json("POST /api/v1/integrations/good/test", 200, api.Diagnosis{OK: true, Checks: []forge.Check{{Name: "credential", OK: true}}})
	r := run(t, f.srv.URL, "integrations", "test", "bad")
	wantCode(t, r, 1)
	want := []string{
		"   CHECK             DETAIL                  HINT",
		"✓  reachable         GitHub Enterprise 3.14  -",
		"✗  credential        401 Bad credentials     Renew the token.",
		"!  tls verification  off                     -",
	}
	if diff := cmp.Diff(want, lines(r.stdout)); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	if r.stderr != "error: 1 of 3 checks failed\n" {
		t.Errorf("stderr = %q", r.stderr)
	}
	r = run(t, f.srv.URL, "integrations", "test", "good")
	wantCode(t, r, 0)
	r = run(t, f.srv.URL, "--json", "integrations", "test", "bad")
	wantCode(t, r, 1)
	if !json.Valid([]byte(r.stdout)) {
		t.Errorf("--json output is not JSON: %q", r.stdout)
	}
}

func TestIntegrationGetAndStatusVerbs(t *testing.T) {
	f := newFake(t)
	in := api.Integration{ID: "int_1", Kind: "github", Name: "acme", Status: "error", StatusNote: "bad credentials", BaseURL: "https://api.github.com",
		Settings: map[string]string{"b": "2", "a": "1"}, Secrets: []string{"token"}, Rotating: true, CreatedAt: created,
		Installations: []api.Installation{{ID: "9", Account: "acme", AccountType: "Organization", RepositorySelection: "all", Status: "active"}}}
	f.json("GET /api/v1/integrations/int_1", 200, in)
	f.json("POST /api/v1/integrations/int_1/suspend", 200, api.Integration{ID: "int_1", Status: "suspended"})
	f.json("POST /api/v1/integrations/int_1/resume", 200, api.Integration{ID: "int_1", Status: "active"})
	f.on("DELETE /api/v1/integrations/int_1", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	r := run(t, f.srv.URL, "integrations", "get", "int_1")
	wantCode(t, r, 0)
	for _, want := range []string{"Status:", "error (bad credentials)", "Settings:", "a=1, b=2", "rotating", "Created:", "2026-03-04T05:06:07Z", "Installations:", "Organization"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("get lacks %q:\n%s", want, r.stdout)
		}
	}
	for verb, want := range map[string]string{"suspend": "Integration int_1 is suspended.\n", "resume": "Integration int_1 is active.\n", "delete": "Deleted integration int_1.\n"} {
		r := run(t, f.srv.URL, "integrations", verb, "int_1")
		wantCode(t, r, 0)
		if r.stdout != want {
			t.Errorf("%s: stdout = %q, want %q", verb, r.stdout, want)
		}
	}
}

func TestAppFlowURLs(t *testing.T) {
	f := newFake(t)
	f.json("GET /api/v1/integrations/int_1", 200, api.Integration{ID: "int_1", Kind: "github"})
	f.json("GET /api/v1/integrations/int_1/github/manifest", 200, api.AppFlow{URL: "https://fw/callback/github/manifest?state=s1", ExpiresAt: created})
	f.on("GET /api/v1/integrations/int_1/github/install", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("user") != "alice" {
			t.Errorf("user = %q", r.URL.Query().Get("user"))
		}
		writeTestJSON(w, 200, api.AppFlow{URL: "https://fw/callback/github/install?state=s2", ExpiresAt: created})
	})
	r := run(t, f.srv.URL, "integrations", "manifest-url", "int_1")
	wantCode(t, r, 0)
	if r.stdout != "https://fw/callback/github/manifest?state=s1\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	r = run(t, f.srv.URL, "integrations", "install-url", "int_1", "--user", "alice")
	wantCode(t, r, 0)
	if r.stdout != "https://fw/callback/github/install?state=s2\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
}

func TestRepoActions(t *testing.T) {
	f := newFake(t)
	job := api.Job{ID: 12, Kind: "repository.attach", State: "available"}
	f.on("POST /api/v1/repositories/r1/{verb}", func(w http.ResponseWriter, r *http.Request) {
		if len(f.requests()[len(f.requests())-1].Body) != 0 {
			t.Errorf("%s sent a body", r.URL.Path)
		}
		writeTestJSON(w, 202, job)
	})
	f.on("POST /api/v1/repositories/r1/push", func(w http.ResponseWriter, r *http.Request) {
		var in api.PushRequest
		_ = json.NewDecoder(r.Body).Decode(&in)
		if diff := cmp.Diff(api.PushRequest{Refspecs: []string{"refs/heads/a:refs/heads/a", "refs/tags/v1"}, User: "alice"}, in); diff != "" {
			t.Errorf("push body (-want +got):\n%s", diff)
		}
		writeTestJSON(w, 202, api.Job{ID: 13, Kind: "repository.push", State: "available"})
	})
	f.on("POST /api/v1/repositories/r1/branches", func(w http.ResponseWriter, r *http.Request) {
		var in api.BranchCreate
		_ = json.NewDecoder(r.Body).Decode(&in)
		if diff := cmp.Diff(api.BranchCreate{Name: "feature/x", SHA: strings.Repeat("a", 40), User: "bob"}, in); diff != "" {
			t.Errorf("branch body (-want +got):\n%s", diff)
		}
		writeTestJSON(w, 201, forge.Ref{Name: "refs/heads/feature/x", SHA: strings.Repeat("a", 40)})
	})
	f.json("GET /api/v1/repositories/r1/branches", 200, api.List[forge.Ref]{Items: []forge.Ref{{Name: "refs/heads/main", SHA: "abc"}}})
	f.on("POST /api/v1/repositories/r1/pulls", func(w http.ResponseWriter, r *http.Request) {
		var in api.PullCreate
		_ = json.NewDecoder(r.Body).Decode(&in)
		if diff := cmp.Diff(api.PullCreate{Title: "Add x", Body: "why", Source: "feature/x", Target: "dev", Draft: true, User: "bob"}, in); diff != "" {
			t.Errorf("pull body (-want +got):\n%s", diff)
		}
		writeTestJSON(w, 201, forge.PullRequest{Number: 5, URL: "https://github.com/acme/one/pull/5"})
	})
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"repos", "attach", "r1"}, "attach r1: job 12 (repository.attach) is available; follow it with `forgeway jobs wait 12`\n"},
		{[]string{"repos", "detach", "r1"}, "detach r1: job 12 (repository.attach) is available; follow it with `forgeway jobs wait 12`\n"},
		{[]string{"repos", "sync", "r1"}, "sync r1: job 12 (repository.attach) is available; follow it with `forgeway jobs wait 12`\n"},
		{[]string{"repos", "push", "r1", "refs/heads/a:refs/heads/a", "refs/tags/v1", "--user", "alice"}, "push r1: job 13 (repository.push) is available; follow it with `forgeway jobs wait 13`\n"},
		{[]string{"repos", "branch", "r1", "feature/x", "--sha", strings.Repeat("a", 40), "--user", "bob"}, "Created refs/heads/feature/x at " + strings.Repeat("a", 40) + ".\n"},
		{[]string{"repos", "branches", "r1"}, "NAME             SHA\nrefs/heads/main  abc\n"},
		{[]string{"repos", "pr", "r1", "--title", "Add x", "--source", "feature/x", "--target", "dev", "--body", "why", "--draft", "--user", "bob"}, "Opened pull request #5: https://github.com/acme/one/pull/5\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			r := run(t, f.srv.URL, tt.args...)
			wantCode(t, r, 0)
			if r.stdout != tt.want {
				t.Errorf("stdout = %q, want %q", r.stdout, tt.want)
			}
		})
	}
}

func TestTokensProjectsCredentials(t *testing.T) {
	f := newFake(t)
	f.on("POST /api/v1/tokens", func(w http.ResponseWriter, r *http.Request) {
		var in api.TokenCreate
		_ = json.NewDecoder(r.Body).Decode(&in)
		if diff := cmp.Diff(api.TokenCreate{Name: "ci", ProjectID: "prj_1"}, in); diff != "" {
			t.Errorf("token body (-want +got):\n%s", diff)
		}
		writeTestJSON(w, 201, api.Token{ID: "tok_1", Name: "ci", ProjectID: "prj_1", Token: "fwt_newvalue"})
	})
	f.json("GET /api/v1/tokens", 200, api.List[api.Token]{Items: []api.Token{{ID: "tok_1", Name: "ci", ProjectID: "prj_1", CreatedAt: created}, {ID: "tok_0", Name: "root", Admin: true, CreatedAt: created}}})
	f.on("POST /api/v1/projects", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in["name"] != "payments" {
			t.Errorf("project body = %v", in)
		}
		writeTestJSON(w, 201, api.Project{ID: "prj_2", Name: "payments"})
	})
	f.on("PUT /api/v1/users/{user}/credentials/{integration}", func(w http.ResponseWriter, r *http.Request) {
		var in api.CredentialPut
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Token != "ghp_personal" || in.Login != "alice-gh" {
			t.Errorf("credential body = %+v", in)
		}
		if r.PathValue("user") != "alice@example.com" || r.PathValue("integration") != "int_1" {
			t.Errorf("path = %s", r.URL.Path)
		}
		writeTestJSON(w, 200, api.Credential{User: "alice@example.com", IntegrationID: "int_1", Login: "alice-gh", Set: true, UpdatedAt: created})
	})
	r := run(t, f.srv.URL, "tokens", "create", "--name", "ci", "--project", "prj_1")
	wantCode(t, r, 0)
	if r.stdout != "fwt_newvalue\n" || !strings.Contains(r.stderr, "shown once") {
		t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
	}
	r = run(t, f.srv.URL, "tokens", "list")
	wantCode(t, r, 0)
	want := []string{
		"ID     NAME  SCOPE          CREATED               LAST USED",
		"tok_1  ci    project prj_1  2026-03-04T05:06:07Z  -",
		"tok_0  root  admin          2026-03-04T05:06:07Z  -",
	}
	if diff := cmp.Diff(want, lines(r.stdout)); diff != "" {
		t.Errorf("tokens (-want +got):\n%s", diff)
	}
	r = run(t, f.srv.URL, "projects", "create", "payments")
	wantCode(t, r, 0)
	r = runWith(t, f.srv.URL, runOpts{stdin: "ghp_personal\n"}, "credentials", "set", "alice@example.com", "int_1", "--login", "alice-gh")
	wantCode(t, r, 0)
	if strings.Contains(r.stdout+r.stderr, "ghp_personal") {
		t.Errorf("credential printed: %q", r.stdout)
	}
	for _, req := range f.requests() {
		if strings.Contains(req.Query, "ghp_personal") {
			t.Errorf("credential in the URL")
		}
	}
	// The user id is one path segment, escaped.
	var sawEscaped bool
	for _, req := range f.requests() {
		if req.Method == "PUT" && strings.HasPrefix(req.Path, "/api/v1/users/alice@example.com/") {
			sawEscaped = true
		}
	}
	if !sawEscaped {
		t.Errorf("PUT path not seen: %+v", f.requests())
	}
}

func TestCredentialTokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tok")
	if err := os.WriteFile(path, []byte("from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFake(t)
	f.on("PUT /api/v1/users/bob/credentials/int_1", func(w http.ResponseWriter, r *http.Request) {
		var in api.CredentialPut
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Token != "from-file" {
			t.Errorf("token = %q", in.Token)
		}
		writeTestJSON(w, 200, api.Credential{User: "bob", IntegrationID: "int_1", Set: true})
	})
	r := run(t, f.srv.URL, "credentials", "set", "bob", "int_1", "--token-file", path)
	wantCode(t, r, 0)
}

func TestPathSegmentsAreEscaped(t *testing.T) {
	f := newFake(t)
	f.on("GET /api/v1/repositories/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "a/b?c" {
			t.Errorf("id = %q", r.PathValue("id"))
		}
		writeTestJSON(w, 200, api.Repository{ID: "a/b?c", FullName: "acme/x", Attached: true, Mirror: &api.Mirror{Status: "synced", Head: "abc"}})
	})
	r := run(t, f.srv.URL, "repos", "get", "a/b?c")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "synced, head abc") {
		t.Errorf("stdout = %q", r.stdout)
	}
	if reqs := f.requests(); len(reqs) != 1 || reqs[0].Query != "" {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestServerFlagAndPrefix(t *testing.T) {
	f := newFake(t)
	f.json("GET /forgeway/api/v1/projects", 200, api.List[api.Project]{Items: []api.Project{{ID: "prj_1", Name: "one", CreatedAt: created}}})
	// --server wins over FORGEWAY_URL, and a path prefix (behind a proxy) is kept.
	r := run(t, "http://127.0.0.1:1", "--server", f.srv.URL+"/forgeway/", "projects", "list")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "prj_1  one") {
		t.Errorf("stdout = %q", r.stdout)
	}
}

func TestDeliveryGetAndReplay(t *testing.T) {
	f := newFake(t)
	f.json("GET /api/v1/deliveries/dlv_1", 200, api.Delivery{ID: "dlv_1", Kind: "github", Event: "push", Status: "processed", ReceivedAt: created,
		Headers: map[string][]string{"X-Github-Event": {"push"}}, Body: json.RawMessage(`{"ref":"refs/heads/main"}`), EventIDs: []string{"evt_1"},
		Events: []json.RawMessage{json.RawMessage(`{"id":"evt_1","type":"dev.forgeway.push"}`)}})
	f.json("POST /api/v1/deliveries/dlv_1/replay", 202, api.Job{ID: 3, Kind: "delivery.process", State: "available"})
	r := run(t, f.srv.URL, "deliveries", "get", "dlv_1")
	wantCode(t, r, 0)
	for _, want := range []string{"X-Github-Event: push", "\"ref\": \"refs/heads/main\"", "\"type\": \"dev.forgeway.push\"", "evt_1"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	r = run(t, f.srv.URL, "--json", "deliveries", "replay", "dlv_1")
	wantCode(t, r, 0)
	var j api.Job
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.ID != 3 {
		t.Errorf("stdout = %q", r.stdout)
	}
}

func TestServeHelpListsConfigFlags(t *testing.T) {
	for _, args := range [][]string{{"serve", "--help"}, {"serve", "-h"}, {"help", "serve"}} {
		r := run(t, "http://127.0.0.1:1", args...)
		wantCode(t, r, 0)
		if !strings.Contains(r.stdout, "-config") {
			t.Errorf("%v: no --config in:\n%s", args, r.stdout)
		}
		for _, s := range config.Settings() {
			if !strings.Contains(r.stdout, "-"+s.Name+" ") || !strings.Contains(r.stdout, s.Env) {
				t.Errorf("%v: help lacks --%s (%s)", args, s.Name, s.Env)
			}
		}
	}
}

func TestDocsConfig(t *testing.T) {
	r := run(t, "http://127.0.0.1:1", "docs", "config")
	wantCode(t, r, 0)
	if r.stdout != config.Markdown() {
		t.Errorf("docs config differs from config.Markdown()")
	}
}

func TestOpenAPIIsFetched(t *testing.T) {
	f := newFake(t)
	doc := `{"openapi":"3.1.0","paths":{}}`
	f.on("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(doc))
	})
	r := run(t, f.srv.URL, "openapi")
	wantCode(t, r, 0)
	if r.stdout != doc+"\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
}

func TestTimeout(t *testing.T) {
	f := newFake(t)
	f.on("GET /api/v1/projects", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	r := run(t, f.srv.URL, "--timeout", "50ms", "projects", "list")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "no answer from") || !strings.Contains(r.stderr, "--timeout") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestEndpoint(t *testing.T) {
	u, _ := url.Parse("https://fw.example.com/base")
	c := &client{base: u}
	got := c.endpoint(pathf("/users/%s/credentials/%s", "a b/c", "int_1"), url.Values{"x": {"1 2"}})
	want := "https://fw.example.com/base/api/v1/users/a%20b%2Fc/credentials/int_1?x=1+2"
	if got != want {
		t.Errorf("endpoint = %q, want %q", got, want)
	}
}

func TestProjectIntegrationsList(t *testing.T) {
	f := newFake(t)
	f.json("GET /api/v1/projects/prj_1/integrations", 200, api.List[api.Integration]{Items: []api.Integration{{ID: "int_3", Kind: "gitea", Name: "g", Status: "active", BaseURL: "https://gitea.example.com"}}})
	r := run(t, f.srv.URL, "integrations", "list", "--project", "prj_1")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "int_3  gitea") {
		t.Errorf("stdout = %q", r.stdout)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := run(t, "http://127.0.0.1:1", "completion", shell)
		wantCode(t, r, 0)
		if !strings.Contains(r.stdout, "forgeway") {
			t.Errorf("%s completion does not name the command", shell)
		}
	}
}
