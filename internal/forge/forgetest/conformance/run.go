// Package conformance runs the scenarios every host driver must pass against its fake (a
// forgetest.Host) and a real Forgeway.
package conformance

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest"
	"github.com/forgeway/forgeway/internal/testserver"
)

// webhookSecret is the integration's webhook secret in every scenario: the hooks the driver
// creates must carry it, and the fake's deliveries are verified with it.
const webhookSecret = "conformance-webhook-secret"

// Run runs every scenario against a fresh host (newHost) and a fresh Forgeway each, whose
// database dsn gives (empty: SQLite in its data directory).
func Run(t *testing.T, dsn func(t testing.TB) string, newHost func(t testing.TB) forgetest.Host) {
	scenarios := []struct {
		name string
		fn   func(t *testing.T, f *testserver.Forgeway, h forgetest.Host)
	}{
		{"DiscoverPages", discoverPages},
		{"Filter", filter},
		{"AttachDetachReconcile", attachDetachReconcile},
		{"PushReachesMirrorAndLog", pushReachesMirrorAndLog},
		{"RevokedCredentialDiagnosed", revokedCredential},
		{"BackoffNotLoss", backoffNotLoss},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			h := newHost(t)
			sc.fn(t, testserver.Start(t, dsn(t)), h)
		})
	}
}

// connect creates the integration for h, with extra fields (filter), and waits for the first
// discovery to list want repositories.
func connect(t *testing.T, f *testserver.Forgeway, h forgetest.Host, extra map[string]any, want int) api.Integration {
	t.Helper()
	in := h.Connect(t)
	body := map[string]any{
		"kind": string(h.Driver().Kind()), "name": "conformance", "base_url": in.BaseURL,
		"settings": in.Settings, "secrets": in.Secrets, "webhook_secret": webhookSecret,
	}
	for k, v := range extra {
		body[k] = v
	}
	var out api.Integration
	f.MustCall("POST", "/api/v1/integrations", body, &out, http.StatusCreated)
	testserver.Eventually(t, 60*time.Second, fmt.Sprintf("discovery of %d repositories", want), func() bool {
		return len(f.Repos(out.ID, "")) == want
	})
	// The status turns active when the discovery finishes, just after the last page is stored.
	testserver.Eventually(t, 30*time.Second, "the integration to be active", func() bool {
		f.MustCall("GET", "/api/v1/integrations/"+out.ID, nil, &out, 200)
		return out.Status == "active"
	})
	return out
}

func discoverPages(t *testing.T, f *testserver.Forgeway, h forgetest.Host) {
	n := 2*h.PageSize() + 1
	names := h.AddRepositories(t, n)
	in := connect(t, f, h, nil, n)
	got := map[string]api.Repository{}
	for _, r := range f.Repos(in.ID, "") {
		got[r.FullName] = r
	}
	for _, name := range names {
		r, ok := got[name]
		if !ok {
			t.Errorf("%s was not discovered", name)
			continue
		}
		if r.HostID == "" || r.CloneURL == "" || r.Group == "" || !r.Matched {
			t.Errorf("catalog entry %s: %+v", name, r)
		}
	}
	// A second discovery of an unchanged host keeps every entry and its id.
	var job api.Job
	f.MustCall("POST", "/api/v1/integrations/"+in.ID+"/refresh", nil, &job, http.StatusAccepted)
	f.WaitJob(job)
	for _, r := range f.Repos(in.ID, "") {
		if got[r.FullName].ID != r.ID {
			t.Errorf("%s changed id across discoveries", r.FullName)
		}
	}
}

func filter(t *testing.T, f *testserver.Forgeway, h forgetest.Host) {
	names := h.AddRepositories(t, 3)
	excluded := names[0]
	in := connect(t, f, h, map[string]any{"filter": fmt.Sprintf("full_name != '%s'", excluded)}, 3)
	r := f.RepoByName(in.ID, excluded)
	if r.Matched {
		t.Fatalf("%s matched a filter excluding it", excluded)
	}
	if st := f.Call("POST", "/api/v1/repositories/"+r.ID+"/attach", nil, nil); st != http.StatusConflict {
		t.Errorf("attaching a filtered-out repository: %d, want 409", st)
	}
	if !f.RepoByName(in.ID, names[1]).Matched {
		t.Errorf("%s did not match", names[1])
	}
}

func hookIDs(hs []forgetest.Hook) string {
	var ids []string
	for _, h := range hs {
		ids = append(ids, h.ID)
	}
	return strings.Join(ids, ",")
}

func attachDetachReconcile(t *testing.T, f *testserver.Forgeway, h forgetest.Host) {
	name := h.AddGitRepository(t, "hooked")
	in := connect(t, f, h, nil, 1)
	repo := f.RepoByName(in.ID, name)
	var job api.Job
	f.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/attach", nil, &job, http.StatusAccepted)
	f.WaitJob(job)
	hooks := h.Hooks(t, name, in.WebhookURL)
	if len(hooks) == 0 {
		t.Fatalf("no hook to %s after attach", in.WebhookURL)
	}
	for _, hk := range hooks {
		if !hk.Active || hk.Secret != webhookSecret {
			t.Errorf("hook after attach: %+v (want active, with the integration's secret)", hk)
		}
	}
	f.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/attach", nil, &job, http.StatusAccepted)
	f.WaitJob(job)
	if again := h.Hooks(t, name, in.WebhookURL); hookIDs(again) != hookIDs(hooks) {
		t.Errorf("attaching again changed the hooks: %s → %s", hookIDs(hooks), hookIDs(again))
	}
	h.DeleteHooks(t, name)
	f.MustCall("POST", "/api/v1/integrations/"+in.ID+"/reconcile", nil, &job, http.StatusAccepted)
	f.WaitJob(job)
	if repaired := h.Hooks(t, name, in.WebhookURL); len(repaired) != len(hooks) {
		t.Errorf("reconciliation left %d hooks, want %d", len(repaired), len(hooks))
	}
	f.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/detach", nil, &job, http.StatusAccepted)
	f.WaitJob(job)
	if left := h.Hooks(t, name, in.WebhookURL); len(left) != 0 {
		t.Errorf("hooks left after detach: %+v", left)
	}
	f.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/detach", nil, &job, http.StatusAccepted)
	f.WaitJob(job) // detaching again is not an error
}

func pushReachesMirrorAndLog(t *testing.T, f *testserver.Forgeway, h forgetest.Host) {
	name := h.AddGitRepository(t, "pushed")
	in := connect(t, f, h, nil, 1)
	repo := f.RepoByName(in.ID, name)
	var job api.Job
	f.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/attach", nil, &job, http.StatusAccepted)
	f.WaitJob(job)
	testserver.Eventually(t, 60*time.Second, "first clone", func() bool {
		r := f.RepoByName(in.ID, name)
		return r.Mirror != nil && r.Mirror.Status == "ready"
	})
	sha := pushCommit(t, h.CloneURL(t, name), h.PushAuth(t))
	testserver.Eventually(t, 60*time.Second, "the mirror to hold the pushed commit", func() bool {
		ok, _ := f.App.Mirrors.HasCommit(context.Background(), repo.ID, sha)
		return ok
	})
	var evs api.List[map[string]any]
	testserver.Eventually(t, 30*time.Second, "the push event", func() bool {
		f.MustCall("GET", "/api/v1/events?type=dev.forgeway.push&integration="+in.ID, nil, &evs, 200)
		return len(evs.Items) > 0
	})
	ev := evs.Items[len(evs.Items)-1]
	data, _ := ev["data"].(map[string]any)
	if data["after"] != sha || data["ref"] != "refs/heads/main" || ev["forgewayhost"] != string(h.Driver().Kind()) || ev["forgewayrepo"] != name {
		t.Errorf("push event: %v", ev)
	}
}

// pushCommit clones url, commits and pushes main; it returns the new commit.
func pushCommit(t *testing.T, url, auth string) string {
	t.Helper()
	dir := t.TempDir()
	env := append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+dir, "GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader", "GIT_CONFIG_VALUE_0="+auth,
		"GIT_AUTHOR_NAME=Conformance", "GIT_AUTHOR_EMAIL=conformance@example.com",
		"GIT_COMMITTER_NAME=Conformance", "GIT_COMMITTER_EMAIL=conformance@example.com")
	work := filepath.Join(dir, "work")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", args[0], err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("clone", "--quiet", url, work)
	if err := os.WriteFile(filepath.Join(work, "conformance.txt"), []byte(time.Now().String()), 0o644); err != nil {
		t.Fatal(err)
	}
	git("-C", work, "add", "conformance.txt")
	git("-C", work, "commit", "--quiet", "-m", "conformance push")
	git("-C", work, "push", "--quiet", "origin", "HEAD:main")
	return git("-C", work, "rev-parse", "HEAD")
}

func revokedCredential(t *testing.T, f *testserver.Forgeway, h forgetest.Host) {
	h.AddRepositories(t, 1)
	in := connect(t, f, h, nil, 1)
	var diag api.Diagnosis
	f.MustCall("POST", "/api/v1/integrations/"+in.ID+"/test", nil, &diag, 200)
	if !diag.OK {
		t.Fatalf("diagnosis of a working integration failed: %+v", diag.Checks)
	}
	h.RevokeCredential(t)
	f.MustCall("POST", "/api/v1/integrations/"+in.ID+"/test", nil, &diag, 200)
	var failed []forge.Check
	for _, c := range diag.Checks {
		if !c.OK {
			failed = append(failed, c)
		}
	}
	if diag.OK || len(failed) == 0 {
		t.Fatalf("diagnosis after the credential was revoked: %+v", diag.Checks)
	}
	for _, c := range failed {
		if c.Hint == "" || c.Detail == "" {
			t.Errorf("failed check without detail or hint: %+v", c)
		}
	}
}

func backoffNotLoss(t *testing.T, f *testserver.Forgeway, h forgetest.Host) {
	names := h.AddRepositories(t, 5)
	in := connect(t, f, h, nil, len(names))
	more := h.AddRepositories(t, 1)
	for _, status := range []int{http.StatusTooManyRequests, http.StatusBadGateway} {
		h.FailNext(t, 6, status, time.Second)
		var job api.Job
		f.MustCall("POST", "/api/v1/integrations/"+in.ID+"/refresh", nil, &job, http.StatusAccepted)
		job = f.WaitJob(job)
		if n := len(f.Repos(in.ID, "")); n != len(names)+len(more) {
			t.Errorf("after %d answers: %d repositories, want %d", status, n, len(names)+len(more))
		}
	}
}
