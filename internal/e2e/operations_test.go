package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
	"github.com/forgeway/forgeway/internal/server"
	"github.com/forgeway/forgeway/internal/testserver"
)

// TestDiscoverySurvivesHostErrors: GitHub answers 502 on the second page of a refresh, past
// the client's own retries. The refresh fails without touching the catalog (nothing is
// removed on a partial listing), the job retries with backoff, and the second attempt brings
// the catalog up to date.
func TestDiscoverySurvivesHostErrors(t *testing.T) {
	h := newGitHost(t)
	h.fake.AddUser("octo")
	pat := h.fake.IssuePAT(githubfake.PAT{Login: "octo"})
	h.fake.AddRepositories("octo", 250)
	e := start(t, engines(t)[0])
	var in api.Integration
	e.MustCall("POST", "/api/v1/integrations", map[string]any{
		"kind": "github", "base_url": h.fake.URL, "settings": map[string]string{"auth": "token"}, "secrets": map[string]string{"token": pat},
	}, &in, http.StatusCreated)
	testserver.Eventually(t, 30*time.Second, "first discovery", func() bool { return len(e.Repos(in.ID, "")) == 250 })

	h.fake.AddRepository(githubfake.Repo{FullName: "octo/zzz-new"}) // changes every page's ETag
	for range 6 {
		h.fake.FailNext("/user/repos?page=2", http.StatusBadGateway, nil)
	}
	var job api.Job
	e.MustCall("POST", "/api/v1/integrations/"+in.ID+"/refresh", nil, &job, http.StatusAccepted)
	testserver.Eventually(t, 30*time.Second, "the failed attempt to be recorded", func() bool {
		e.MustCall("GET", fmt.Sprintf("/api/v1/jobs/%d", job.ID), nil, &job, 200)
		return job.LastError != "" || job.State == "completed"
	})
	if n := len(e.Repos(in.ID, "")); n < 250 {
		t.Fatalf("a failed listing removed repositories: %d left", n)
	}
	if !strings.Contains(job.LastError, "502") {
		t.Errorf("job error %q does not say what GitHub answered", job.LastError)
	}
	job = e.WaitJob(job)
	if job.Attempt < 2 {
		t.Errorf("job completed in %d attempts; the first should have failed", job.Attempt)
	}
	if n := len(e.Repos(in.ID, "")); n != 251 {
		t.Errorf("%d repositories after the retry, want 251", n)
	}
}

// TestActAsPersonAndPush: branches and pull requests created as the person whose credential is
// stored, and a ref pushed from the mirror back to GitHub.
func TestActAsPersonAndPush(t *testing.T) {
	h := newGitHost(t)
	h.fake.AddUser("octo")
	h.fake.AddUser("mona")
	pat := h.fake.IssuePAT(githubfake.PAT{Login: "octo"})
	hosted := h.realRepo(t, "octo/app")
	h.fake.AddCollaborator("octo/app", "mona", "push")
	e := start(t, engines(t)[0])
	var in api.Integration
	e.MustCall("POST", "/api/v1/integrations", map[string]any{
		"kind": "github", "base_url": h.fake.URL, "settings": map[string]string{"auth": "token"}, "secrets": map[string]string{"token": pat},
	}, &in, http.StatusCreated)
	testserver.Eventually(t, 30*time.Second, "discovery", func() bool { return len(e.Repos(in.ID, "")) == 1 })
	repo := e.RepoByName(in.ID, "octo/app")

	// Without a stored credential, acting as mona is refused with what to do.
	var prob map[string]any
	if st := e.Call("POST", "/api/v1/repositories/"+repo.ID+"/branches", map[string]any{"name": "feature", "user": "mona"}, &prob); st != http.StatusConflict || prob["hint"] == nil {
		t.Fatalf("acting without a credential: %d %v", st, prob)
	}
	monaToken := h.fake.IssuePAT(githubfake.PAT{Login: "mona"})
	e.MustCall("PUT", "/api/v1/users/mona/credentials/"+in.ID, map[string]any{"token": monaToken, "login": "mona"}, nil, 200)
	var ref map[string]any
	e.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/branches", map[string]any{"name": "feature", "user": "mona"}, &ref, http.StatusCreated)
	if ref["name"] != "refs/heads/feature" || ref["sha"] != hosted.Branches["main"] {
		t.Errorf("branch: %v", ref)
	}
	// GitHub refuses a pull request with nothing in it; the caller hears why.
	if st := e.Call("POST", "/api/v1/repositories/"+repo.ID+"/pulls", map[string]any{"title": "Empty", "source": "feature", "user": "mona"}, &prob); st != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(prob["detail"]), "No commits") {
		t.Fatalf("empty pull request: %d %v", st, prob)
	}
	h.fake.SetBranch("octo/app", "feature", "1111111111111111111111111111111111111111")
	var pr map[string]any
	e.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/pulls", map[string]any{"title": "A feature", "source": "feature", "user": "mona"}, &pr, http.StatusCreated)
	prs := h.fake.PullRequests("octo/app")
	if len(prs) != 1 || prs[0].Author != "mona" || prs[0].Base != "main" || prs[0].Head != "feature" {
		t.Fatalf("pull requests on GitHub: %+v (answer %v)", prs, pr)
	}
	for _, bad := range []map[string]any{{"name": "bad..name"}, {"name": "-x"}, {"name": "ok", "sha": "nothex"}} {
		if st := e.Call("POST", "/api/v1/repositories/"+repo.ID+"/branches", bad, nil); st != http.StatusUnprocessableEntity {
			t.Errorf("branch %v: %d", bad, st)
		}
	}

	// Push a ref from the mirror back to GitHub.
	var job api.Job
	e.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/attach", nil, &job, http.StatusAccepted)
	e.WaitJob(job)
	testserver.Eventually(t, 30*time.Second, "mirror", func() bool { return e.App.Mirrors.Exists(repo.ID) })
	testserver.Eventually(t, 30*time.Second, "first clone", func() bool {
		r := e.RepoByName(in.ID, "octo/app")
		return r.Mirror != nil && r.Mirror.Status == "ready"
	})
	e.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/push", map[string]any{"refspecs": []string{"refs/heads/main:refs/heads/copy"}}, &job, http.StatusAccepted)
	e.WaitJob(job)
	out, err := exec.Command("git", "--git-dir", h.root+"/octo/app.git", "rev-parse", "refs/heads/copy").Output()
	if err != nil || strings.TrimSpace(string(out)) != hosted.Branches["main"] {
		t.Errorf("pushed ref on the server: %q %v", out, err)
	}
	if st := e.Call("POST", "/api/v1/repositories/"+repo.ID+"/push", map[string]any{"refspecs": []string{"--force"}}, nil); st != http.StatusUnprocessableEntity {
		t.Errorf("a refspec that is an option: %d", st)
	}
}

// TestOperationsEndpoints: health, readiness, metrics, the event stream, and the admin token
// printed on first start only.
func TestOperationsEndpoints(t *testing.T) {
	e := start(t, engines(t)[0])
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(e.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
	id := e.githubTokenIntegration(nil)

	// The stream: events committed after the client connected arrive, with the log position
	// as the SSE id.
	req, _ := http.NewRequest("GET", e.URL+"/api/v1/events/stream?integration="+id, nil)
	req.Header.Set("Authorization", "Bearer "+e.Token)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	ping := corpusFile(t, "github", "ping.json")
	if st, out := e.post("/webhooks/github/"+id, delivery{event: "ping", id: "stream-1", body: ping, signature: sign(hookSecret, ping)}); st != 202 {
		t.Fatalf("delivery: %d %v", st, out)
	}
	sc := bufio.NewScanner(resp.Body)
	var idLine, eventLine, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			idLine = line
		case strings.HasPrefix(line, "event: "):
			eventLine = line
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
		if data != "" {
			break
		}
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(data), &ev); err != nil || ev["type"] != "dev.forgeway.ping" || eventLine != "event: dev.forgeway.ping" || idLine == "" {
		t.Fatalf("stream message: %q %q %q", idLine, eventLine, data)
	}

	// Metrics name what an operator watches. The stream's event is published when the
	// processing commits, before the job runner records the job's run time: the metrics are
	// read until they all show up (or the wait ends).
	e.post("/webhooks/github/"+id, delivery{event: "ping", id: "bad", body: ping, signature: sign("wrong", ping)})
	want := []string{
		`forgeway_deliveries_total{host="github",outcome="accepted"} 1`,
		"forgeway_webhook_verification_failures_total", "forgeway_delivery_ack_seconds_bucket",
		`forgeway_jobs{state="available"}`, "forgeway_job_run_seconds", "forgeway_deliveries_processed_total",
		// One delivery so far, committed by one group commit.
		"forgeway_store_group_commits_total 1", "forgeway_store_group_committed_deliveries_total 1",
		"forgeway_sqlite_checkpoints_total", "forgeway_sqlite_wal_uncopied_frames",
		// The one delivery's commit was flushed: the flush histogram counts it.
		`forgeway_sqlite_wal_flush_seconds_bucket{le="+Inf"}`, "forgeway_sqlite_wal_flush_seconds_count",
		// The store gathers its writes by default, and no commit's frames were written late.
		`forgeway_sqlite_writes_requested_total{file="wal"}`, `forgeway_sqlite_write_calls_total{file="wal"}`,
		"forgeway_sqlite_wal_late_writes_total 0",
	}
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(25 * time.Millisecond) {
		raw := string(metrics(t, e.URL))
		missing = missing[:0]
		for _, name := range want {
			if !strings.Contains(raw, name) {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, name := range missing {
		t.Errorf("/metrics lacks %s", name)
	}
}

func metrics(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return raw
}

// TestAdminTokenBootstrap: the first start prints an admin token once (only its hash is
// stored); later starts print nothing; FORGEWAY_ADMIN_TOKEN gives a known one.
func TestAdminTokenBootstrap(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	startOnce := func(env map[string]string) string {
		var out strings.Builder
		app, err := server.New(ctx, loadConfig(t, env, "--data-dir", dir, "--log-level", "error"), server.Options{Out: &out, Logger: testserver.TestLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer app.Close()
		toks, err := app.Store.ListAPITokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range toks {
			if strings.Contains(out.String(), string(tok.Hash)) {
				t.Fatal("the stored hash was printed")
			}
		}
		return out.String()
	}
	first := startOnce(nil)
	token := regexp.MustCompile(`fwt_[a-z2-7]+`).FindString(first)
	if token == "" || !strings.Contains(first, "shown once") {
		t.Fatalf("first start printed %q", first)
	}
	if again := startOnce(nil); strings.Contains(again, "fwt_") {
		t.Fatalf("second start printed a token: %q", again)
	}
	startOnce(map[string]string{"FORGEWAY_ADMIN_TOKEN": "fwt_operatorchosen"})
	app, err := server.New(ctx, loadConfig(t, nil, "--data-dir", dir, "--log-level", "error"), server.Options{Logger: testserver.TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	for _, tok := range []string{token, "fwt_operatorchosen"} {
		found, err := app.Store.FindAPIToken(ctx, api.HashToken(tok))
		if err != nil || !found.Admin {
			t.Errorf("token %s…: %+v %v", tok[:8], found, err)
		}
	}
}
