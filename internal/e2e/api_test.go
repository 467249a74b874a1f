package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/api"
)

func (e *env) raw(method, path, contentType, token string, body []byte, header map[string]string) (int, http.Header, map[string]any) {
	e.T.Helper()
	req, _ := http.NewRequest(method, e.URL+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, resp.Header, out
}

func TestAPIRejectsBadInput(t *testing.T) {
	e := start(t, engines(t)[0])
	const pem = "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n"
	valid := func(changes map[string]any) []byte {
		b := map[string]any{"kind": "github", "base_url": "https://github.example.com", "settings": map[string]string{"auth": "token"}, "secrets": map[string]string{"token": "ghp_x"}, "discover": false}
		for k, v := range changes {
			b[k] = v
		}
		raw, _ := json.Marshal(b)
		return raw
	}
	cases := []struct {
		name     string
		method   string
		path     string
		ct       string
		body     []byte
		status   int
		slug     string
		mentions string
	}{
		{"invalid JMESPath", "POST", "/api/v1/integrations", "application/json", valid(map[string]any{"filter": "!archived &&"}), 422, "invalid-integration", "SyntaxError"},
		{"JMESPath type error", "POST", "/api/v1/integrations", "application/json", valid(map[string]any{"filter": "starts_with(private, 'a')"}), 422, "invalid-integration", "invalid filter"},
		{"invalid PEM", "POST", "/api/v1/integrations", "application/json", valid(map[string]any{"settings": map[string]string{"auth": "app", "app_id": "123"}, "secrets": map[string]string{"private_key": pem}}), 422, "invalid-integration", "private"},
		{"app id not numeric", "POST", "/api/v1/integrations", "application/json", valid(map[string]any{"settings": map[string]string{"auth": "app", "app_id": "Iv1.abc"}, "secrets": map[string]string{"private_key": pem}}), 422, "invalid-integration", "app_id"},
		{"unknown kind", "POST", "/api/v1/integrations", "application/json", valid(map[string]any{"kind": "svn"}), 422, "invalid-integration", "svn"},
		{"no kind", "POST", "/api/v1/integrations", "application/json", valid(map[string]any{"kind": ""}), 422, "invalid-integration", "kind"},
		{"bad base URL", "POST", "/api/v1/integrations", "application/json", valid(map[string]any{"base_url": "github.com"}), 422, "invalid-integration", ""},
		{"invalid schedule", "POST", "/api/v1/integrations", "application/json", valid(map[string]any{"schedule": "61 * * * *"}), 422, "invalid-integration", "minute"},
		{"unknown field", "POST", "/api/v1/integrations", "application/json", []byte(`{"kind":"github","colour":"blue"}`), 400, "invalid-json", "colour"},
		{"malformed JSON", "POST", "/api/v1/integrations", "application/json", []byte(`{"kind":`), 400, "invalid-json", ""},
		{"trailing data", "POST", "/api/v1/integrations", "application/json", append(valid(nil), []byte(` {}`)...), 400, "invalid-json", "trailing"},
		{"not JSON", "POST", "/api/v1/integrations", "text/plain", []byte(`kind=github`), 415, "unsupported-media-type", ""},
		{"empty body", "POST", "/api/v1/integrations", "application/json", nil, 400, "invalid-json", ""},
		{"limit out of range", "GET", "/api/v1/repositories?limit=0", "", nil, 400, "invalid-parameter", "limit"},
		{"bad cursor", "GET", "/api/v1/deliveries?cursor=!!!", "", nil, 400, "invalid-cursor", ""},
		{"bad delivery status", "GET", "/api/v1/deliveries?status=lost", "", nil, 400, "invalid-parameter", "lost"},
		{"bad event cursor", "GET", "/api/v1/events?after=abc", "", nil, 400, "invalid-parameter", "after"},
		{"unknown integration", "GET", "/api/v1/integrations/int_nope", "", nil, 404, "not-found", ""},
		{"unknown repository", "POST", "/api/v1/repositories/rep_nope/attach", "", nil, 404, "not-found", ""},
		{"job id not a number", "GET", "/api/v1/jobs/abc", "", nil, 400, "invalid-parameter", ""},
		{"unknown endpoint", "GET", "/api/v1/nothing", "", nil, 404, "not-found", ""},
	}
	for _, c := range cases {
		status, hdr, prob := e.raw(c.method, c.path, c.ct, e.Token, c.body, nil)
		if status != c.status {
			t.Errorf("%s: status %d, want %d: %v", c.name, status, c.status, prob)
			continue
		}
		if hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: content type %q", c.name, hdr.Get("Content-Type"))
		}
		typ, _ := prob["type"].(string)
		if !strings.HasSuffix(typ, "/"+c.slug) || prob["title"] == "" || int(prob["status"].(float64)) != c.status {
			t.Errorf("%s: problem %v, want type …/%s", c.name, prob, c.slug)
		}
		if c.mentions != "" && !strings.Contains(fmtJSON(prob), c.mentions) {
			t.Errorf("%s: problem does not mention %q: %v", c.name, c.mentions, prob)
		}
		if strings.Contains(fmtJSON(prob), "ghp_x") || strings.Contains(fmtJSON(prob), "not a key") {
			t.Errorf("%s: the answer echoes a secret: %v", c.name, prob)
		}
	}
	var list api.List[api.Integration]
	e.MustCall("GET", "/api/v1/integrations", nil, &list, 200)
	if len(list.Items) != 0 {
		t.Fatalf("bad input created %d integrations", len(list.Items))
	}
}

func TestAPIAuthAndIdempotency(t *testing.T) {
	e := start(t, engines(t)[0])
	for _, tok := range []string{"", "fwt_wrong"} {
		status, hdr, prob := e.raw("GET", "/api/v1/integrations", "", tok, nil, nil)
		if status != 401 || hdr.Get("WWW-Authenticate") == "" || prob["hint"] == "" {
			t.Errorf("token %q: %d %v", tok, status, prob)
		}
	}
	// A project token sees its project only and cannot use admin routes.
	var prj api.Project
	e.MustCall("POST", "/api/v1/projects", map[string]any{"name": "blue"}, &prj, 201)
	var tok api.Token
	e.MustCall("POST", "/api/v1/tokens", map[string]any{"name": "blue ci", "project_id": prj.ID}, &tok, 201)
	if !strings.HasPrefix(tok.Token, "fwt_") {
		t.Fatalf("token value not shown on creation: %+v", tok)
	}
	var toks api.List[api.Token]
	e.MustCall("GET", "/api/v1/tokens", nil, &toks, 200)
	for _, x := range toks.Items {
		if x.Token != "" {
			t.Errorf("token value listed: %+v", x)
		}
	}
	other := e.githubTokenIntegration(nil)
	p := newEnv(t, e.URL, tok.Token)
	if st := p.Call("GET", "/api/v1/tokens", nil, nil); st != 403 {
		t.Errorf("project token on an admin route: %d", st)
	}
	if st := p.Call("GET", "/api/v1/integrations/"+other, nil, nil); st != 404 {
		t.Errorf("project token reading another project's integration: %d", st)
	}
	var mine api.Integration
	p.MustCall("POST", "/api/v1/integrations", map[string]any{"kind": "github", "base_url": "https://github.example.com", "settings": map[string]string{"auth": "token"}, "secrets": map[string]string{"token": "ghp_y"}, "discover": false}, &mine, 201)
	if mine.ProjectID != prj.ID {
		t.Errorf("project token created an integration outside its project: %+v", mine)
	}
	var visible api.List[api.Integration]
	p.MustCall("GET", "/api/v1/integrations", nil, &visible, 200)
	if len(visible.Items) != 1 || visible.Items[0].ID != mine.ID {
		t.Errorf("project token sees %+v", visible.Items)
	}

	// Idempotency-Key: the same write retried gives the first answer; a different body with
	// the same key is refused; nothing is created twice.
	body, _ := json.Marshal(map[string]any{"name": "green"})
	key := map[string]string{"Idempotency-Key": "create-green-1"}
	s1, _, first := e.raw("POST", "/api/v1/projects", "application/json", e.Token, body, key)
	s2, h2, second := e.raw("POST", "/api/v1/projects", "application/json", e.Token, body, key)
	if s1 != 201 || s2 != 201 || first["id"] != second["id"] || h2.Get("Idempotent-Replayed") != "true" {
		t.Errorf("idempotent replay: %d %v / %d %v", s1, first, s2, second)
	}
	s3, _, prob := e.raw("POST", "/api/v1/projects", "application/json", e.Token, []byte(`{"name":"red"}`), key)
	if s3 != 422 {
		t.Errorf("same key, different body: %d %v", s3, prob)
	}
	var prjs api.List[api.Project]
	e.MustCall("GET", "/api/v1/projects", nil, &prjs, 200)
	if len(prjs.Items) != 2 {
		t.Errorf("%d projects, want 2 (blue, green)", len(prjs.Items))
	}
	// A token created under an Idempotency-Key is replayed, but its saved answer is sealed.
	tb, _ := json.Marshal(map[string]any{"name": "ci", "admin": true})
	_, _, tok1 := e.raw("POST", "/api/v1/tokens", "application/json", e.Token, tb, map[string]string{"Idempotency-Key": "tok-1"})
	_, _, tok2 := e.raw("POST", "/api/v1/tokens", "application/json", e.Token, tb, map[string]string{"Idempotency-Key": "tok-1"})
	value, _ := tok1["token"].(string)
	if value == "" || tok2["token"] != value {
		t.Fatalf("token replay: %v / %v", tok1, tok2)
	}
	saved, answer := e.savedAnswer("POST /api/v1/tokens", "tok-1")
	if !answer.Sealed || bytes.Contains(answer.Body, []byte(value)) || bytes.Contains(saved, []byte(value)) {
		t.Error("the saved token answer holds the token in the clear")
	}

	// The integration resource never shows secret values, only which are set.
	var got api.Integration
	e.MustCall("GET", "/api/v1/integrations/"+other, nil, &got, 200)
	raw, _ := json.Marshal(got)
	if strings.Contains(string(raw), "ghp_test") || strings.Contains(string(raw), hookSecret) || !contains(got.Secrets, "token") {
		t.Errorf("integration resource: %s", raw)
	}
}
