package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/events"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest/sample"
	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/testserver"
)

const hookSecret = "It's a Secret to Everybody"

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// githubTokenIntegration creates a token integration whose host is unreachable (ingest and
// processing need no host).
func (e *env) githubTokenIntegration(extra map[string]any) string {
	e.T.Helper()
	no := false
	body := map[string]any{
		"kind": "github", "name": "test", "base_url": "http://127.0.0.1:1",
		"settings": map[string]string{"auth": "token"}, "secrets": map[string]string{"token": "ghp_test"},
		"webhook_secret": hookSecret, "discover": no,
	}
	for k, v := range extra {
		body[k] = v
	}
	var out api.Integration
	e.MustCall("POST", "/api/v1/integrations", body, &out, http.StatusCreated)
	return out.ID
}

type delivery struct {
	event, id, contentType, signature string
	body                              []byte
	extra                             map[string]string
}

func (e *env) post(path string, d delivery) (int, map[string]any) {
	e.T.Helper()
	return e.postTo(e.URL, path, d)
}

// listeners are the two places a delivery can be posted to: the main listener (net/http)
// and the webhook listener (webhook_listen).
func (e *env) listeners() []struct{ name, url string } {
	return []struct{ name, url string }{{"main listener", e.URL}, {"webhook listener", e.WebhookURL}}
}

func (e *env) postTo(base, path string, d delivery) (int, map[string]any) {
	e.T.Helper()
	req, _ := http.NewRequest("POST", base+path, bytes.NewReader(d.body))
	ct := d.contentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "GitHub-Hookshot/044aadd")
	if d.event != "" {
		req.Header.Set("X-GitHub-Event", d.event)
	}
	if d.id != "" {
		req.Header.Set("X-GitHub-Delivery", d.id)
	}
	if d.signature != "" {
		req.Header.Set("X-Hub-Signature-256", d.signature)
	}
	for k, v := range d.extra {
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
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		e.T.Errorf("%d answer is %q, not problem+json: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	return resp.StatusCode, out
}

func (e *env) deliveries(integration string) []api.Delivery {
	var out api.List[api.Delivery]
	e.MustCall("GET", "/api/v1/deliveries?integration="+integration, nil, &out, 200)
	return out.Items
}

// waitDelivery waits until a delivery is no longer "received" and returns it in full.
func (e *env) waitDelivery(id string) api.Delivery {
	e.T.Helper()
	var d api.Delivery
	testserver.Eventually(e.T, 20*time.Second, "delivery "+id+" processed", func() bool {
		e.MustCall("GET", "/api/v1/deliveries/"+id, nil, &d, 200)
		return d.Status != "received"
	})
	return d
}

func newID() string { return fmt.Sprintf("%d-%x", time.Now().UnixNano(), os.Getpid()) }

func TestIngestRejectsBadInput(t *testing.T) {
	eachEngine(t, func(t *testing.T, eng engine) {
		e := start(t, eng)
		id := e.githubTokenIntegration(nil)
		path := "/webhooks/github/" + id
		body := corpusFile(t, "github", "push.json")
		cases := []struct {
			name   string
			path   string
			d      delivery
			status int
			slug   string
		}{
			{"missing signature", path, delivery{event: "push", id: newID(), body: body}, 401, "invalid-signature"},
			{"wrong signature", path, delivery{event: "push", id: newID(), body: body, signature: sign("not the secret", body)}, 401, "invalid-signature"},
			{"sha1 signature only", path, delivery{event: "push", id: newID(), body: body, extra: map[string]string{"X-Hub-Signature": "sha1=0000000000000000000000000000000000000000"}}, 401, "invalid-signature"},
			{"signature of other bytes", path, delivery{event: "push", id: newID(), body: body, signature: sign(hookSecret, append(body, ' '))}, 401, "invalid-signature"},
			{"unknown integration", "/webhooks/github/int_doesnotexist", delivery{event: "push", id: newID(), body: body, signature: sign(hookSecret, body)}, 404, "unknown-integration"},
			{"unknown host kind", "/webhooks/svn/" + id, delivery{event: "push", id: newID(), body: body, signature: sign(hookSecret, body)}, 404, "unknown-host-kind"},
			{"malformed JSON", path, delivery{event: "push", id: newID(), body: []byte(`{"ref": "refs/heads/main",`), signature: sign(hookSecret, []byte(`{"ref": "refs/heads/main",`))}, 400, "malformed-delivery"},
			{"no delivery id", path, delivery{event: "push", body: body, signature: sign(hookSecret, body)}, 400, "malformed-delivery"},
			{"no event header", path, delivery{id: newID(), body: body, signature: sign(hookSecret, body)}, 400, "malformed-delivery"},
		}
		for _, l := range e.listeners() {
			for _, c := range cases {
				status, prob := e.postTo(l.url, c.path, c.d)
				if status != c.status {
					t.Errorf("%s, %s: status %d, want %d (%v)", l.name, c.name, status, c.status, prob)
					continue
				}
				if got, _ := prob["type"].(string); !strings.HasSuffix(got, "/"+c.slug) {
					t.Errorf("%s, %s: problem type %q, want …/%s", l.name, c.name, got, c.slug)
				}
				if prob["title"] == "" || prob["detail"] == nil {
					t.Errorf("%s, %s: problem without title/detail: %v", l.name, c.name, prob)
				}
				if strings.Contains(fmtJSON(prob), hookSecret) {
					t.Errorf("%s, %s: the answer contains the secret", l.name, c.name)
				}
			}
			// Oversized: GitHub caps payloads at 25 MiB; one byte more is refused before reading.
			big := bytes.Repeat([]byte(" "), 25<<20+1)
			status, prob := e.postTo(l.url, path, delivery{event: "push", id: newID(), body: big, signature: sign(hookSecret, big)})
			if status != http.StatusRequestEntityTooLarge {
				t.Errorf("%s, oversized body: status %d (%v)", l.name, status, prob)
			}
		}
		if n := len(e.deliveries(id)); n != 0 {
			t.Fatalf("%d deliveries stored after only bad input", n)
		}
		var m map[string]any
		e.MustCall("GET", "/api/v1/events?integration="+id, nil, &m, 200)
		if items := m["items"].([]any); len(items) != 0 {
			t.Fatalf("events written for bad input: %v", items)
		}
	})
}

func TestIngestDeduplicatesAndIgnores(t *testing.T) {
	e := start(t, engines(t)[0])
	id := e.githubTokenIntegration(nil)
	path := "/webhooks/github/" + id
	body := corpusFile(t, "github", "push.json")
	d := delivery{event: "push", id: "72d3162e-cc78-11e3-81ab-4c9367dc0958", body: body, signature: sign(hookSecret, body)}
	status, first := e.post(path, d)
	if status != http.StatusAccepted || first["duplicate"] != false {
		t.Fatalf("first: %d %v", status, first)
	}
	processed := e.waitDelivery(first["delivery_id"].(string))
	if processed.Status != "processed" || len(processed.EventIDs) != 1 {
		t.Fatalf("first delivery: %+v", processed)
	}
	status, again := e.post(path, d)
	if status != http.StatusAccepted || again["duplicate"] != true || again["delivery_id"] != first["delivery_id"] {
		t.Fatalf("replayed delivery: %d %v", status, again)
	}
	if n := len(e.deliveries(id)); n != 1 {
		t.Fatalf("%d deliveries after a replay, want 1", n)
	}
	// An event GitHub sends that has no mapping is kept and marked ignored with the reason.
	issues := []byte(`{"action":"opened","issue":{"number":1},"repository":{"id":1,"full_name":"o/r"},"sender":{"login":"u"}}`)
	status, ign := e.post(path, delivery{event: "issues", id: newID(), body: issues, signature: sign(hookSecret, issues)})
	if status != http.StatusAccepted {
		t.Fatalf("unknown event: %d %v", status, ign)
	}
	got := e.waitDelivery(ign["delivery_id"].(string))
	if got.Status != "ignored" || !strings.Contains(got.Reason, "issues") || len(got.EventIDs) != 0 {
		t.Fatalf("unknown event delivery: %+v", got)
	}
	// Replay through the API processes again without a second event.
	var job api.Job
	e.MustCall("POST", "/api/v1/deliveries/"+processed.ID+"/replay", nil, &job, http.StatusAccepted)
	testserver.Eventually(t, 20*time.Second, "replay job done", func() bool {
		e.MustCall("GET", fmt.Sprintf("/api/v1/jobs/%d", job.ID), nil, &job, 200)
		return job.State == "completed"
	})
	var evs api.List[map[string]any]
	e.MustCall("GET", "/api/v1/events?integration="+id, nil, &evs, 200)
	if len(evs.Items) != 1 {
		t.Fatalf("%d events after replay, want 1", len(evs.Items))
	}
	// The stored delivery keeps the headers that matter and the raw body, byte for byte.
	e.MustCall("GET", "/api/v1/deliveries/"+processed.ID, nil, &processed, 200)
	if processed.Headers["X-Github-Delivery"][0] != d.id {
		t.Errorf("stored headers: %v", processed.Headers)
	}
	req, _ := http.NewRequest("GET", e.URL+"/api/v1/deliveries/"+processed.ID+"/body", nil)
	req.Header.Set("Authorization", "Bearer "+e.Token)
	resp, err := e.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(raw, body) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("stored body differs from the delivered bytes (content type %q)", resp.Header.Get("Content-Type"))
	}
}

func TestIngestRotationAndFormBodies(t *testing.T) {
	e := start(t, engines(t)[0])
	id := e.githubTokenIntegration(nil)
	path := "/webhooks/github/" + id
	ping := corpusFile(t, "github", "ping.json")
	post := func(path, secret string) int {
		status, _ := e.post(path, delivery{event: "ping", id: newID(), body: ping, signature: sign(secret, ping)})
		return status
	}
	// A token integration with no hook on the host to update finishes its rotation at once:
	// the new secret is accepted, and soon the old one no longer.
	e.MustCall("PATCH", "/api/v1/integrations/"+id, map[string]any{"rotate_webhook_secret": "new-secret"}, nil, 200)
	if st := post(path, "new-secret"); st != 202 {
		t.Fatalf("new secret during rotation: %d", st)
	}
	testserver.Eventually(t, 20*time.Second, "rotation to finish", func() bool { return post(path, hookSecret) == 401 })
	var in api.Integration
	e.MustCall("GET", "/api/v1/integrations/"+id, nil, &in, 200)
	if in.Rotating {
		t.Error("integration still rotating after its rotation job")
	}

	// An App's webhook secret is set on GitHub by a person: both secrets are accepted until
	// the rotation is finished by hand.
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	var app api.Integration
	e.MustCall("POST", "/api/v1/integrations", map[string]any{
		"kind": "github", "base_url": "http://127.0.0.1:1", "discover": false, "webhook_secret": hookSecret,
		"settings": map[string]string{"auth": "app", "app_id": "4242"}, "secrets": map[string]string{"private_key": pemKey},
	}, &app, http.StatusCreated)
	appPath := "/webhooks/github/" + app.ID
	var rotated api.Integration
	e.MustCall("PATCH", "/api/v1/integrations/"+app.ID, map[string]any{"rotate_webhook_secret": "app-secret-2"}, &rotated, 200)
	if !rotated.Rotating {
		t.Fatal("App integration not rotating after rotate_webhook_secret")
	}
	testserver.Eventually(t, 20*time.Second, "the rotation job to run", func() bool {
		var jobs api.List[api.Job]
		e.MustCall("GET", "/api/v1/jobs?kind=hooks.rotate&state=completed", nil, &jobs, 200)
		return len(jobs.Items) >= 2
	})
	for _, secret := range []string{hookSecret, "app-secret-2"} {
		if st := post(appPath, secret); st != 202 {
			t.Fatalf("App rotation, secret %q: %d", secret, st)
		}
	}
	e.MustCall("PATCH", "/api/v1/integrations/"+app.ID, map[string]any{"finish_rotation": true}, nil, 200)
	if st := post(appPath, hookSecret); st != 401 {
		t.Fatalf("old secret after the rotation: %d, want 401", st)
	}
	path = appPath
	// application/x-www-form-urlencoded: payload=<JSON>; the signature covers the form body.
	form := []byte("payload=" + url.QueryEscape(string(ping)))
	status, out := e.post(path, delivery{event: "ping", id: newID(), body: form, contentType: "application/x-www-form-urlencoded", signature: sign("app-secret-2", form)})
	if status != 202 {
		t.Fatalf("form body: %d %v", status, out)
	}
	d := e.waitDelivery(out["delivery_id"].(string))
	if d.Status != "processed" || len(d.Events) != 1 {
		t.Fatalf("form delivery: %+v", d)
	}
	var ev map[string]any
	json.Unmarshal(d.Events[0], &ev)
	if ev["type"] != "dev.forgeway.ping" || jsonPath(ev, "data.zen") != "Anything added dilutes everything else." || jsonPath(ev, "data.hook_id") != "109948940" {
		t.Fatalf("ping event: %s", fmtJSON(ev))
	}
}

// corpusTypes is what each GitHub payload must give, read from the payloads and spec/events.md.
var corpusTypes = map[string][]string{
	"create.json": {"dev.forgeway.ref.created"}, "create.with-description.json": {"dev.forgeway.ref.created"},
	"create.with-installation.json": {"dev.forgeway.ref.created"}, "delete.json": {"dev.forgeway.ref.deleted"},
	"delete.with-installation.json": {"dev.forgeway.ref.deleted"}, "github_app_authorization.revoked.json": {"dev.forgeway.authorization.revoked"},
	"installation.created.json": {"dev.forgeway.installation.created"}, "installation.deleted.json": {"dev.forgeway.installation.deleted"},
	"installation.new_permissions_accepted.json": {"dev.forgeway.installation.permissions_accepted"},
	"installation.suspend.json":                  {"dev.forgeway.installation.suspended"}, "installation.unsuspend.json": {"dev.forgeway.installation.unsuspended"},
	"installation_repositories.added.json":   {"dev.forgeway.installation.repositories_added"},
	"installation_repositories.removed.json": {"dev.forgeway.installation.repositories_removed"},
	"ping.json":                              {"dev.forgeway.ping"}, "ping.with-app_id.json": {"dev.forgeway.ping"},
	"pull_request.closed.json": {"dev.forgeway.pull_request.closed"}, "pull_request.opened.json": {"dev.forgeway.pull_request.opened"},
	"pull_request.opened.with-null-body.json": {"dev.forgeway.pull_request.opened"}, "pull_request.opened.with-organization.json": {"dev.forgeway.pull_request.opened"},
	"pull_request.ready_for_review.json": {"dev.forgeway.pull_request.edited"}, "pull_request.reopened.json": {"dev.forgeway.pull_request.reopened"},
	"pull_request.synchronize.json": {"dev.forgeway.pull_request.updated"},
	"push.1.json":                   {"dev.forgeway.push"}, "push.json": {"dev.forgeway.push"}, "push.with-installation.json": {"dev.forgeway.push"}, "push.with-organization.json": {"dev.forgeway.push"},
	"repository.created.json": {"dev.forgeway.repository.created"}, "repository.created.with-installation.json": {"dev.forgeway.repository.created"},
	"repository.deleted.github-ae.json": {"dev.forgeway.repository.deleted"}, "repository.edited.json": {"dev.forgeway.repository.edited"},
	"repository.privatized.json": {"dev.forgeway.repository.visibility_changed"}, "repository.publicized.json": {"dev.forgeway.repository.visibility_changed"},
	"repository.renamed.json": {"dev.forgeway.repository.renamed"}, "repository.transferred.json": {"dev.forgeway.repository.transferred"},
	"repository.transferred.with-installation.json": {"dev.forgeway.repository.transferred"},
}

var eventID = regexp.MustCompile(`^evt_[a-z2-7]{26}$`)

// TestGitHubCorpusThroughHTTP signs every GitHub payload of the corpus, posts it to the real
// endpoint, and checks the events the log holds: the CloudEvents envelope of every one, and
// every field of the events of the payloads below.
func TestGitHubCorpusThroughHTTP(t *testing.T) {
	e := start(t, engines(t)[0])
	id := e.githubTokenIntegration(nil)
	dir := filepath.Join(sharedDir(t), "corpus", "github")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != len(corpusTypes) {
		t.Errorf("corpus has %d files, the test expects %d", len(files), len(corpusTypes))
	}
	sort.Strings(files)
	got := map[string][]map[string]any{}
	for _, f := range files {
		name := filepath.Base(f)
		body, _ := os.ReadFile(f)
		event := strings.SplitN(name, ".", 2)[0]
		hostID := "corpus-" + name
		status, out := e.post("/webhooks/github/"+id, delivery{event: event, id: hostID, body: body, signature: sign(hookSecret, body)})
		if status != http.StatusAccepted {
			t.Fatalf("%s: %d %v", name, status, out)
		}
		d := e.waitDelivery(out["delivery_id"].(string))
		if d.Status != "processed" {
			t.Errorf("%s: delivery %s: %s%s", name, d.Status, d.Reason, d.Error)
			continue
		}
		var payload map[string]any
		json.Unmarshal(body, &payload)
		var types []string
		for _, raw := range d.Events {
			var ev map[string]any
			json.Unmarshal(raw, &ev)
			types = append(types, ev["type"].(string))
			checkEnvelope(t, name, id, hostID, payload, ev)
			got[name] = append(got[name], ev)
		}
		if diff := cmp.Diff(corpusTypes[name], types); diff != "" {
			t.Errorf("%s: event types (-want +got):\n%s", name, diff)
		}
	}
	repo := func(id, full, name, owner string) map[string]any {
		return map[string]any{"id": id, "full_name": full, "name": name, "owner": owner, "default_branch": "master",
			"web_url": "https://github.com/" + full, "clone_url": "https://github.com/" + full + ".git", "private": false}
	}
	hello := repo("186853002", "Codertocat/Hello-World", "Hello-World", "Codertocat")
	sender := map[string]any{"login": "Codertocat", "name": "", "email": ""}
	want := map[string]map[string]any{
		"push.json": {
			"type": "dev.forgeway.push", "subject": "refs/tags/simple-tag", "time": "2019-05-15T15:20:57Z",
			"source": "/integrations/" + id + "/repositories/186853002", "forgewayrepo": "Codertocat/Hello-World",
			"data": map[string]any{
				"integration_id": id, "repository": hello, "sender": sender,
				"ref": "refs/tags/simple-tag", "ref_type": "tag", "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
				"after": "0000000000000000000000000000000000000000", "created": false, "deleted": true, "forced": false,
				"commits": []any{}, "total_commits": float64(0),
				"pusher": map[string]any{"login": "Codertocat", "name": "", "email": "21031067+Codertocat@users.noreply.github.com"},
			},
		},
		"pull_request.opened.json": {
			"type": "dev.forgeway.pull_request.opened", "subject": "pull_requests/2", "time": "2019-05-15T15:20:33Z",
			"source": "/integrations/" + id + "/repositories/186853002", "forgewayrepo": "Codertocat/Hello-World",
			"data": map[string]any{
				"integration_id": id, "repository": hello, "sender": sender,
				"number": float64(2), "title": "Update the README with new information.",
				"body": "This is a pretty simple change that we need to pull into master.", "state": "open", "draft": false,
				"url": "https://github.com/Codertocat/Hello-World/pull/2", "author": sender,
				"source": map[string]any{"ref": "changes", "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821", "repository_full_name": "Codertocat/Hello-World"},
				"target": map[string]any{"ref": "master", "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"},
				"action": "opened",
			},
		},
		"create.json": {
			"type": "dev.forgeway.ref.created", "subject": "refs/tags/simple-tag",
			"source": "/integrations/" + id + "/repositories/186853002", "forgewayrepo": "Codertocat/Hello-World",
			"data": map[string]any{"integration_id": id, "repository": hello, "sender": sender, "ref": "refs/tags/simple-tag", "ref_type": "tag", "sha": ""},
		},
		"installation.created.json": {
			"type": "dev.forgeway.installation.created", "source": "/integrations/" + id,
			"data": map[string]any{
				"integration_id": id, "repository": nil, "sender": sender,
				"installation": map[string]any{"id": "957387", "account": map[string]any{"login": "Codertocat", "type": "User"}, "repository_selection": "selected"},
				"repositories": nil, // only the repositories_* types list them
			},
		},
		"repository.renamed.json": {
			"type": "dev.forgeway.repository.renamed", "time": "2019-05-15T15:20:41Z",
			"source": "/integrations/" + id + "/repositories/186853261", "forgewayrepo": "Octocoders/Hello-World",
			"data": map[string]any{"changes": map[string]any{"old_full_name": "Octocoders/Hello-World"}},
		},
	}
	for name, w := range want {
		evs := got[name]
		if len(evs) != 1 {
			t.Errorf("%s: %d events", name, len(evs))
			continue
		}
		ev := evs[0]
		for k, v := range w {
			if k == "data" {
				for dk, dv := range v.(map[string]any) {
					if diff := cmp.Diff(dv, jsonPath(ev, "data."+dk)); diff != "" {
						t.Errorf("%s: data.%s (-want +got):\n%s", name, dk, diff)
					}
				}
				continue
			}
			if diff := cmp.Diff(v, ev[k]); diff != "" {
				t.Errorf("%s: %s (-want +got):\n%s", name, k, diff)
			}
		}
	}
}

// checkEnvelope checks what every event of a delivery must have (spec/events.md, Envelope).
func checkEnvelope(t *testing.T, name, integration, hostID string, payload, ev map[string]any) {
	t.Helper()
	if ev["specversion"] != "1.0" || ev["datacontenttype"] != "application/json" || ev["forgewayhost"] != "github" || ev["forgewaydelivery"] != hostID {
		t.Errorf("%s: envelope: %v", name, ev)
	}
	if !eventID.MatchString(fmt.Sprint(ev["id"])) {
		t.Errorf("%s: id %v", name, ev["id"])
	}
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(ev["time"])); err != nil {
		t.Errorf("%s: time %v: %v", name, ev["time"], err)
	}
	data, _ := ev["data"].(map[string]any)
	if data["integration_id"] != integration {
		t.Errorf("%s: data.integration_id %v", name, data["integration_id"])
	}
	if _, ok := data["sender"].(map[string]any); !ok {
		t.Errorf("%s: data.sender missing", name)
	}
	repo, hasRepo := data["repository"].(map[string]any)
	src := "/integrations/" + integration
	if hasRepo {
		for _, k := range []string{"id", "full_name", "name", "owner", "default_branch", "web_url", "clone_url", "private"} {
			if _, ok := repo[k]; !ok {
				t.Errorf("%s: data.repository.%s missing", name, k)
			}
		}
		src += "/repositories/" + fmt.Sprint(repo["id"])
		if pr, ok := payload["repository"].(map[string]any); ok && ev["forgewayrepo"] != pr["full_name"] {
			t.Errorf("%s: forgewayrepo %v, payload's repository %v", name, ev["forgewayrepo"], pr["full_name"])
		}
	} else if data["repository"] != nil {
		t.Errorf("%s: data.repository is neither an object nor null", name)
	}
	if ev["source"] != src {
		t.Errorf("%s: source %v, want %s", name, ev["source"], src)
	}
	typ := fmt.Sprint(ev["type"])
	switch {
	case typ == "dev.forgeway.push" || strings.HasPrefix(typ, "dev.forgeway.ref."):
		if !strings.HasPrefix(fmt.Sprint(ev["subject"]), "refs/") {
			t.Errorf("%s: subject %v", name, ev["subject"])
		}
	case strings.HasPrefix(typ, "dev.forgeway.pull_request."):
		if ev["subject"] != fmt.Sprintf("pull_requests/%v", jsonPath(payload, "number")) {
			t.Errorf("%s: subject %v", name, ev["subject"])
		}
	default:
		if _, ok := ev["subject"]; ok {
			t.Errorf("%s: subject %v on a %s event", name, ev["subject"], typ)
		}
	}
}

// A processing job shared by deliveries committed together processes each in turn: one
// already processed (an earlier attempt, or a replay) is skipped, one that is gone is
// recorded as such without holding up the others.
func TestSharedProcessingJob(t *testing.T) {
	e := start(t, engines(t)[0])
	id := e.githubTokenIntegration(nil)
	path := "/webhooks/github/" + id
	body := corpusFile(t, "github", "push.json")
	status, out := e.post(path, delivery{event: "push", id: newID(), body: body, signature: sign(hookSecret, body)})
	if status != http.StatusAccepted {
		t.Fatalf("post: %d %v", status, out)
	}
	done := e.waitDelivery(out["delivery_id"].(string))

	// A second delivery, stored with a job nobody runs, so that only the shared job below
	// processes it.
	ctx := t.Context()
	fresh := &store.Delivery{IntegrationID: id, Kind: "github", HostID: newID(), Event: "push",
		Headers: map[string][]string{"X-Github-Event": {"push"}, "Content-Type": {"application/json"}}, Body: body}
	if _, err := e.App.Store.InsertDelivery(ctx, fresh, store.NewJob{Kind: "test.nobody", Args: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	j, _, err := e.App.Store.InsertJob(ctx, store.NewJob{Kind: events.JobProcess, MaxAttempts: 3,
		Args: store.DeliveryJobArgs{DeliveryIDs: []string{done.ID, "dlv_gone", fresh.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	got := e.waitDelivery(fresh.ID)
	if got.Status != "processed" || len(got.EventIDs) != 1 {
		t.Fatalf("the shared job's new delivery: %+v", got)
	}
	var finished api.Job
	testserver.Eventually(t, 10*time.Second, "the shared job completes", func() bool {
		e.MustCall("GET", fmt.Sprintf("/api/v1/jobs/%d", j.ID), nil, &finished, 200)
		return finished.State == store.JobCompleted
	})
	var again api.Delivery
	e.MustCall("GET", "/api/v1/deliveries/"+done.ID, nil, &again, 200)
	if again.ProcessedAt == nil || done.ProcessedAt == nil || !again.ProcessedAt.Equal(*done.ProcessedAt) {
		t.Errorf("the processed delivery was processed again: %v, then %v", done.ProcessedAt, again.ProcessedAt)
	}
}

// Request bodies are read into recycled buffers: under concurrent load every stored delivery
// must still hold exactly the body its request carried — small ones stored as sent,
// compressible ones compressed, and incompressible ones.
func TestConcurrentDeliveriesKeepTheirBodies(t *testing.T) {
	e := start(t, engines(t)[0])
	id := e.githubTokenIntegration(nil)
	path := "/webhooks/github/" + id
	push := corpusFile(t, "github", "push.json")
	const n = 150
	bodies := make([][]byte, n)
	for i := range n {
		noise := make([]byte, 96*(i%3)) // 0, 96 or 192 random bytes, hex-encoded below
		_, _ = rand.Read(noise)
		switch i % 3 {
		case 0: // small: stored as sent
			bodies[i] = fmt.Appendf(nil, `{"zen":"delivery %d","hook_id":%d}`, i, i)
		case 1: // a push with a distinct ref: compressed
			bodies[i] = bytes.Replace(push, []byte(`"refs/heads/`), fmt.Appendf(nil, `"refs/heads/b%d-%x-`, i, noise), 1)
		default: // mostly random: does not compress
			bodies[i] = fmt.Appendf(nil, `{"zen":"%x","n":%d}`, bytes.Repeat(noise, 4), i)
		}
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			event := "ping"
			if i%3 == 1 {
				event = "push"
			}
			// Half through each listener: their request buffers are reused differently.
			base := e.listeners()[i%2].url
			status, out := e.postTo(base, path, delivery{event: event, id: newID(), body: bodies[i], signature: sign(hookSecret, bodies[i])})
			if status != http.StatusAccepted {
				t.Errorf("delivery %d: %d %v", i, status, out)
				return
			}
			ids[i], _ = out["delivery_id"].(string)
		})
	}
	wg.Wait()
	for i, did := range ids {
		if did == "" {
			continue
		}
		var d api.Delivery
		e.MustCall("GET", "/api/v1/deliveries/"+did, nil, &d, 200)
		if !bytes.Equal(compactJSON(t, d.Body), compactJSON(t, bodies[i])) {
			t.Errorf("delivery %d stored another body: %.80s…, sent %.80s…", i, d.Body, bodies[i])
		}
	}
}

func compactJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("not JSON: %v: %.80s", err, b)
	}
	return out.Bytes()
}

// Deliveries a shared job processes together are normalized in order, each seeing what the
// ones before it recorded although nothing is written until the batch commits: a second
// Azure DevOps "updated" notification with the head the first one recorded is an edit.
func TestSharedJobSeesEarlierPullRequestHeads(t *testing.T) {
	e := start(t, engines(t)[0])
	id := e.hostIntegration(forge.AzureDevOps)
	var doc map[string]any
	if err := json.Unmarshal(corpusFile(t, "azure-devops", "git.pullrequest.updated.json"), &doc); err != nil {
		t.Fatal(err)
	}
	doc["resource"].(map[string]any)["status"] = "active"
	ctx := t.Context()
	var ids []string
	for i := range 2 {
		doc["id"] = fmt.Sprintf("00000000-0000-0000-0000-00000000000%d", i)
		body, _ := json.Marshal(doc)
		h, err := sample.Headers(forge.AzureDevOps, "git.pullrequest.updated", newID(), hookSecret, body)
		if err != nil {
			t.Fatal(err)
		}
		d := &store.Delivery{IntegrationID: id, Kind: string(forge.AzureDevOps), HostID: newID(), Event: "git.pullrequest.updated", Headers: h, Body: body}
		if _, err := e.App.Store.InsertDelivery(ctx, d, store.NewJob{Kind: "test.nobody", Args: map[string]string{}}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	if _, _, err := e.App.Store.InsertJob(ctx, store.NewJob{Kind: events.JobProcess, MaxAttempts: 3, Args: store.DeliveryJobArgs{DeliveryIDs: ids}}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{".updated", ".edited"} {
		d := e.waitDelivery(ids[i])
		if d.Status != "processed" || len(d.Events) != 1 {
			t.Fatalf("delivery %d: %s %q %q, %d events", i, d.Status, d.Reason, d.Error, len(d.Events))
		}
		var ev struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(d.Events[0], &ev)
		if !strings.HasSuffix(ev.Type, want) {
			t.Errorf("delivery %d: event %s, want …%s", i, ev.Type, want)
		}
	}
}

// A sender that hangs up while its delivery waits for the commit is counted as aborted, not
// as a store error: nobody reads the answer, and whether the delivery was committed or not,
// the host's retry is deduplicated.
func TestSenderGoneBeforeCommitIsAborted(t *testing.T) {
	e := start(t, engines(t)[0])
	id := e.githubTokenIntegration(nil)
	body := corpusFile(t, "github", "push.json")
	d := delivery{event: "push", id: newID(), body: body, signature: sign(hookSecret, body)}

	// Hold the store's writer so that the delivery's commit waits.
	hold, held := make(chan struct{}), make(chan struct{})
	go func() {
		_ = e.App.Store.Tx(context.Background(), func(store.Tx) error {
			close(held)
			<-hold
			return nil
		})
	}()
	<-held
	req, _ := http.NewRequest("POST", e.URL+"/webhooks/github/"+id, bytes.NewReader(d.body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", d.event)
	req.Header.Set("X-GitHub-Delivery", d.id)
	req.Header.Set("X-Hub-Signature-256", d.signature)
	impatient := &http.Client{Timeout: 300 * time.Millisecond}
	if resp, err := impatient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d while the writer was held", resp.StatusCode)
	}
	testserver.Eventually(t, 10*time.Second, "the abandoned delivery counted as aborted", func() bool {
		return bytes.Contains(metrics(t, e.URL), []byte(`forgeway_deliveries_total{host="github",outcome="aborted"} 1`))
	})
	close(hold)
	if m := metrics(t, e.URL); bytes.Contains(m, []byte(`outcome="error"`)) {
		t.Errorf("an abandoned delivery was counted as an error:\n%s", m)
	}
	// The host's retry is deduplicated or stored, never an error.
	status, out := e.post("/webhooks/github/"+id, d)
	if status != http.StatusAccepted {
		t.Fatalf("retry: %d %v", status, out)
	}
}
