package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest/sample"
)

// hostIntegration creates an integration of kind whose host is unreachable (ingest and
// processing need no host).
func (e *env) hostIntegration(kind forge.Kind) string {
	e.T.Helper()
	body := map[string]any{
		"kind": string(kind), "name": string(kind), "base_url": "http://127.0.0.1:1/acme",
		"settings": map[string]string{}, "secrets": map[string]string{"token": "test-token"},
		"webhook_secret": hookSecret, "discover": false,
	}
	if kind == forge.GitHub || kind == forge.GitLab {
		body["settings"] = map[string]string{"auth": "token"}
	}
	var out api.Integration
	e.MustCall("POST", "/api/v1/integrations", body, &out, http.StatusCreated)
	return out.ID
}

func (e *env) postRaw(path string, h http.Header, body []byte) (int, map[string]any) {
	e.T.Helper()
	req, _ := http.NewRequest("POST", e.URL+path, bytes.NewReader(body))
	req.Header = h
	resp, err := e.HTTP.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		e.T.Errorf("%d answer is not problem+json: %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

var allKinds = []forge.Kind{forge.GitHub, forge.GitLab, forge.BitbucketDC, forge.AzureDevOps, forge.Gitea}

// TestEveryHostsCorpusThroughHTTP posts every payload of every host's corpus, signed or
// authenticated as that host does, to the host's real endpoint: each is accepted, processed
// (or ignored with a reason), never failed, and its events have the envelope the contract
// promises. (Each driver's own tests compare every field of every payload's events.)
func TestEveryHostsCorpusThroughHTTP(t *testing.T) {
	e := start(t, engines(t)[0])
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			id := e.hostIntegration(kind)
			dir := filepath.Join(sharedDir(t), "corpus", string(kind))
			files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			more, _ := filepath.Glob(filepath.Join(dir, "go-scm", "*.json"))
			files = append(files, more...)
			if len(files) == 0 {
				t.Fatalf("no corpus in %s", dir)
			}
			events := 0
			for i, f := range files {
				body, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				name := strings.TrimPrefix(f, dir+"/")
				h, err := sample.Headers(kind, sample.CorpusEvent(kind, f), fmt.Sprintf("corpus-%d", i), hookSecret, body)
				if err != nil {
					t.Fatal(err)
				}
				status, out := e.postRaw("/webhooks/"+string(kind)+"/"+id, h, body)
				if status != http.StatusAccepted {
					t.Errorf("%s: %d %v", name, status, out)
					continue
				}
				if out["duplicate"] == true {
					continue // a sample the host reuses verbatim (Azure's share ids)
				}
				d := e.waitDelivery(out["delivery_id"].(string))
				if d.Status == "failed" || (d.Status == "ignored" && d.Reason == "") {
					t.Errorf("%s: %s %q %q", name, d.Status, d.Reason, d.Error)
					continue
				}
				for _, raw := range d.Events {
					var ev map[string]any
					json.Unmarshal(raw, &ev)
					checkHostEnvelope(t, name, kind, id, d.HostID, ev)
					events++
				}
			}
			if events == 0 {
				t.Errorf("no event from %d %s payloads", len(files), kind)
			}
			t.Logf("%d payloads, %d events", len(files), events)
		})
	}
}

// checkHostEnvelope checks what every event must have, whatever the host (spec/events.md).
func checkHostEnvelope(t *testing.T, name string, kind forge.Kind, integration, hostID string, ev map[string]any) {
	t.Helper()
	if ev["specversion"] != "1.0" || ev["datacontenttype"] != "application/json" || ev["forgewayhost"] != string(kind) || ev["forgewaydelivery"] != hostID {
		t.Errorf("%s: envelope %v", name, ev)
	}
	typ, _ := ev["type"].(string)
	if !strings.HasPrefix(typ, "dev.forgeway.") || !eventID.MatchString(fmt.Sprint(ev["id"])) {
		t.Errorf("%s: type %q id %v", name, typ, ev["id"])
	}
	data, _ := ev["data"].(map[string]any)
	if data["integration_id"] != integration {
		t.Errorf("%s: data.integration_id %v", name, data["integration_id"])
	}
	src := "/integrations/" + integration
	if repo, ok := data["repository"].(map[string]any); ok {
		src += "/repositories/" + fmt.Sprint(repo["id"])
		if ev["forgewayrepo"] != repo["full_name"] || repo["full_name"] == "" {
			t.Errorf("%s: forgewayrepo %v, repository %v", name, ev["forgewayrepo"], repo["full_name"])
		}
	}
	if ev["source"] != src {
		t.Errorf("%s: source %v, want %s", name, ev["source"], src)
	}
	if typ == "dev.forgeway.push" {
		if !strings.HasPrefix(fmt.Sprint(data["ref"]), "refs/") || ev["subject"] != data["ref"] {
			t.Errorf("%s: push ref %v subject %v", name, data["ref"], ev["subject"])
		}
	}
	if strings.HasPrefix(typ, "dev.forgeway.pull_request.") {
		src, _ := data["source"].(map[string]any)
		if strings.HasPrefix(fmt.Sprint(src["ref"]), "refs/") {
			t.Errorf("%s: pull request source.ref %v is not a branch name", name, src["ref"])
		}
	}
}

// TestEveryHostRejectsBadDeliveries: for each host, a wrong or missing secret, a malformed
// body and an oversized one are refused with a problem and store nothing; a replay is a
// duplicate.
func TestEveryHostRejectsBadDeliveries(t *testing.T) {
	e := start(t, engines(t)[0])
	push := map[forge.Kind]string{
		forge.GitHub: "github/push.json", forge.GitLab: "gitlab/push.json", forge.BitbucketDC: "bitbucket-dc/go-scm/repo.refs_changed.json",
		forge.AzureDevOps: "azure-devops/git.push.json", forge.Gitea: "gitea/push.json",
	}
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			id := e.hostIntegration(kind)
			path := "/webhooks/" + string(kind) + "/" + id
			file := push[kind]
			body := corpusFile(t, "", file)
			event := sample.CorpusEvent(kind, file)
			mk := func(secret string, body []byte, id string) http.Header {
				h, err := sample.Headers(kind, event, id, secret, body)
				if err != nil {
					t.Fatal(err)
				}
				return h
			}
			bad := []struct {
				name   string
				h      http.Header
				body   []byte
				status int
			}{
				{"wrong secret", mk("not the secret", body, "bad-1"), body, 401},
				{"no credentials", func() http.Header {
					h := mk(hookSecret, body, "bad-2")
					for _, k := range []string{"Authorization", "X-Gitlab-Token", "X-Hub-Signature", "X-Hub-Signature-256", "X-Gitea-Signature"} {
						h.Del(k)
					}
					return h
				}(), body, 401},
				{"malformed JSON", mk(hookSecret, []byte(`{"ref":`), "bad-3"), []byte(`{"ref":`), 400},
			}
			for _, c := range bad {
				if status, out := e.postRaw(path, c.h, c.body); status != c.status {
					t.Errorf("%s: %d, want %d: %v", c.name, status, c.status, out)
				}
			}
			big := bytes.Repeat([]byte(" "), 26<<20)
			if status, _ := e.postRaw(path, mk(hookSecret, big, "bad-4"), big); status != http.StatusRequestEntityTooLarge {
				t.Errorf("oversized: %d", status)
			}
			if n := len(e.deliveries(id)); n != 0 {
				t.Fatalf("%d deliveries stored after bad input", n)
			}
			h := mk(hookSecret, body, "good-1")
			if status, out := e.postRaw(path, h, body); status != 202 || out["duplicate"] != false {
				t.Fatalf("good delivery: %d %v", status, out)
			}
			if status, out := e.postRaw(path, mk(hookSecret, body, "good-1"), body); status != 202 || out["duplicate"] != true {
				t.Errorf("replay: %d %v", status, out)
			}
			if n := len(e.deliveries(id)); n != 1 {
				t.Errorf("%d deliveries after a replay, want 1", n)
			}
		})
	}
}
