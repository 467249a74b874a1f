package apicheck

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func sharedDir(t testing.TB) string {
	t.Helper()
	d, err := SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var loader = NewLoader()

func githubSpec(t *testing.T) *Spec {
	t.Helper()
	s, err := loader.Load(filepath.Join(sharedDir(t), "apispecs/github/api.github.com.2021-10-10.json"), Options{
		Server:      "https://api.github.com",
		PathPrefix:  "/api/v3",
		SlashParams: []string{"/repos/{owner}/{repo}/git/ref/{ref}", "/repos/{owner}/{repo}/git/refs/{ref}"},
		ErrorSchema: "basic-error",
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func req(method, target, body string) *http.Request {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

func TestGitHubRequests(t *testing.T) {
	s := githubSpec(t)
	tests := []struct {
		name, method, path, body string
		wantOp                   string
		wantErr                  string // substring; empty: valid
	}{
		{"token", "POST", "/api/v3/app/installations/42/access_tokens", `{"repositories":["hello"],"permissions":{"contents":"read"}}`, "apps/create-installation-access-token", ""},
		{"token repositories not an array", "POST", "/api/v3/app/installations/42/access_tokens", `{"repositories":"hello"}`, "apps/create-installation-access-token", "must be an array"},
		{"installation id not an integer", "POST", "/api/v3/app/installations/abc/access_tokens", `{}`, "apps/create-installation-access-token", "installation_id"},
		{"create hook", "POST", "/api/v3/repos/o/r/hooks", `{"name":"web","active":true,"events":["push"],"config":{"url":"https://x.example/h","content_type":"json","insecure_ssl":"0","secret":"s"}}`, "repos/create-webhook", ""},
		{"manifest conversion", "POST", "/api/v3/app-manifests/abc/conversions", "", "apps/create-from-manifest", ""},
		{"create ref without sha", "POST", "/api/v3/repos/o/r/git/refs", `{"ref":"refs/heads/x"}`, "git/create-ref", "sha"},
		{"get ref with unescaped slash", "GET", "/api/v3/repos/o/r/git/ref/heads/main", "", "git/get-ref", ""},
		{"get ref escaped", "GET", "/api/v3/repos/o/r/git/ref/heads%2Fmain", "", "git/get-ref", ""},
		{"user repos", "GET", "/api/v3/user/repos?per_page=100&affiliation=owner,collaborator", "", "repos/list-for-authenticated-user", ""},
		{"per_page not an integer", "GET", "/api/v3/user/repos?per_page=lots", "", "repos/list-for-authenticated-user", "per_page"},
		{"unknown path", "GET", "/api/v3/repos/o/r/nonexistent", "", "", "no operation for GET /api/v3/repos/o/r/nonexistent"},
		{"unknown method", "PUT", "/api/v3/user/repos", "", "", "no operation for PUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex, err := s.CheckRequest(req(tt.method, tt.path, tt.body))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("CheckRequest: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("CheckRequest error = %v, want it to contain %q", err, tt.wantErr)
			}
			if tt.wantOp == "" {
				if !errors.Is(err, ErrNoOperation) || ex != nil {
					t.Fatalf("got exchange %v, err %v; want ErrNoOperation", ex, err)
				}
				return
			}
			if ex == nil || ex.OperationID() != tt.wantOp {
				t.Fatalf("operation = %v, want %s", ex, tt.wantOp)
			}
		})
	}
}

func TestGitHubResponses(t *testing.T) {
	s := githubSpec(t)
	jsonHeader := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	tests := []struct {
		name, method, path string
		status             int
		body               string
		wantErr            string
	}{
		{"token created", "POST", "/api/v3/app/installations/42/access_tokens", 201,
			`{"token":"ghs_x","expires_at":"2026-01-01T00:00:00Z","permissions":{"contents":"read"},"repository_selection":"selected"}`, ""},
		{"token missing expires_at", "POST", "/api/v3/app/installations/42/access_tokens", 201, `{"token":"ghs_x"}`, "expires_at"},
		{"total_count not an integer", "GET", "/api/v3/installation/repositories", 200, `{"total_count":"oops","repositories":[]}`, "must be an integer"},
		{"empty installation listing", "GET", "/api/v3/installation/repositories", 200, `{"total_count":0,"repositories":[]}`, ""},
		{"undeclared success status", "GET", "/api/v3/installation/repositories", 202, `{}`, "not declared"},
		{"undeclared error with GitHub's error body", "GET", "/app", 401, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`, ""},
		{"undeclared error not JSON", "GET", "/api/v3/app", 500, `oops`, "not JSON"},
		{"undeclared error with a wrong body", "GET", "/api/v3/app", 401, `{"message":7}`, "basic-error"},
		{"declared not found", "GET", "/api/v3/repos/o/r", 404, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`, ""},
		{"not modified without body", "GET", "/api/v3/user/repos", 304, ``, ""},
		{"not modified with body", "GET", "/api/v3/user/repos", 304, `[]`, "no body"},
		{"hooks wrong shape", "GET", "/api/v3/repos/o/r/hooks", 200, `[{"id":"one"}]`, "repos/list-webhooks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req(tt.method, tt.path, "")
			if !strings.HasPrefix(tt.path, "/api/v3") {
				r = req(tt.method, "/api/v3"+tt.path, "")
			}
			ex, err := s.CheckRequest(r)
			if ex == nil {
				t.Fatalf("CheckRequest: %v", err)
			}
			err = ex.CheckResponse(tt.status, jsonHeader, []byte(tt.body))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("CheckResponse: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("CheckResponse error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	s := githubSpec(t)
	var mu sync.Mutex
	var reports []string
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, fmt.Sprintf(format, args...))
	}
	served := 0
	h := s.Middleware(report, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served++
		body := new(bytes.Buffer)
		_, _ = body.ReadFrom(r.Body) // the middleware must hand the body on intact
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo-Len", fmt.Sprint(body.Len()))
		switch r.URL.Path {
		case "/api/v3/installation/repositories":
			_, _ = w.Write([]byte(`{"total_count":"oops","repositories":[]}`))
		case "/api/v3/app/installations/1/access_tokens":
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"token":"ghs_x","expires_at":"2026-01-01T00:00:00Z"}`))
		default:
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"message":"Not Found"}`))
		}
	}))
	do := func(method, path, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req(method, path, body))
		return rec
	}

	rec := do("POST", "/api/v3/app/installations/1/access_tokens", `{"repositories":["a"]}`)
	if rec.Code != 201 || rec.Header().Get("X-Echo-Len") != "22" || !strings.Contains(rec.Body.String(), "ghs_x") {
		t.Errorf("valid exchange forwarded as %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	if len(reports) != 0 {
		t.Errorf("valid exchange reported: %q", reports)
	}

	rec = do("GET", "/api/v3/installation/repositories", "")
	if rec.Code != 200 || len(reports) != 1 || !strings.Contains(reports[0], "must be an integer") {
		t.Errorf("invalid response: code %d, reports %q", rec.Code, reports)
	}

	reports = nil
	do("GET", "/api/v3/nope", "")
	if len(reports) != 1 || !strings.Contains(reports[0], "no operation for GET /api/v3/nope") {
		t.Errorf("unknown route reports %q", reports)
	}

	reports = nil
	rec = do("POST", "/login/oauth/access_token", "garbage")
	if len(reports) != 0 || rec.Code != 404 || served != 4 {
		t.Errorf("path outside the prefix: reports %q, code %d, served %d", reports, rec.Code, served)
	}
}

// TestSwagger2 covers the other description shapes with a small Swagger 2.0 file: BOM,
// placeholder substitution, server replacement and an undeclared error without ErrorSchema.
func TestSwagger2(t *testing.T) {
	doc := "\xef\xbb\xbf" + `{
  "swagger": "2.0",
  "info": {"title": "t", "version": "{{.Ver}}"},
  "basePath": "{{.Sub}}/api/v1",
  "paths": {
    "/repos/{owner}/{repo}": {
      "get": {
        "operationId": "repoGet",
        "parameters": [
          {"name": "owner", "in": "path", "required": true, "type": "string"},
          {"name": "repo", "in": "path", "required": true, "type": "string"},
          {"name": "limit", "in": "query", "type": "integer"}
        ],
        "responses": {"200": {"description": "ok", "schema": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}}}
      }
    }
  }
}`
	path := filepath.Join(t.TempDir(), "v1.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	l := NewLoader()
	o := Options{Replace: map[string]string{"{{.Ver}}": "1.0", "{{.Sub}}": ""}, Server: "http://gitea.local/api/v1", PathPrefix: "/api/v1"}
	s, err := l.Load(path, o)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := l.Load(path, o); again != s {
		t.Error("Loader did not cache the spec")
	}
	ex, err := s.CheckRequest(req("GET", "/api/v1/repos/o/r?limit=3", ""))
	if err != nil {
		t.Fatal(err)
	}
	if ex.OperationID() != "repoGet" {
		t.Errorf("operation %s", ex.OperationID())
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if err := ex.CheckResponse(200, h, []byte(`{"id":1}`)); err != nil {
		t.Errorf("valid response: %v", err)
	}
	if err := ex.CheckResponse(200, h, []byte(`{}`)); err == nil {
		t.Error("response without id passed")
	}
	if err := ex.CheckResponse(500, h, []byte(`{"message":"x"}`)); err == nil || !strings.Contains(err.Error(), "not declared") {
		t.Errorf("undeclared 500 without ErrorSchema: %v", err)
	}
	if _, err := s.CheckRequest(req("GET", "/api/v1/repos/o/r?limit=x", "")); err == nil {
		t.Error("limit=x passed")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json"), Options{}); err == nil {
		t.Error("missing file loaded")
	}
	if _, err := l.Load(path, Options{ErrorSchema: "nope"}); err == nil {
		t.Error("unknown ErrorSchema accepted")
	}
}
