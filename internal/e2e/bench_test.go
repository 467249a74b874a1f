package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/forge/azuredevops"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/azurefake"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bitbucketfake"
	"github.com/forgeway/forgeway/internal/forge/forgetest"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
	"github.com/forgeway/forgeway/internal/gittest"
	"github.com/forgeway/forgeway/internal/testserver"
)

// BenchmarkP3Discovery lists 10,000 repositories from a fake GitHub that takes 20 ms per
// request: the first discovery, then an unchanged one (every page answered 304). It reports
// host requests, rate-limit points spent and wall time per discovery.
//
//	go test ./internal/e2e -run '^$' -bench P3 -benchtime 3x
func BenchmarkP3Discovery(b *testing.B) {
	for _, phase := range []string{"first", "unchanged"} {
		b.Run(phase, func(b *testing.B) {
			fake := githubfake.New(b, githubfake.Options{Unchecked: true, RateLimit: 1_000_000})
			fake.AddUser("octo")
			pat := fake.IssuePAT(githubfake.PAT{Login: "octo"})
			fake.AddRepositories("octo", 10000)
			e := startB(b)
			var in api.Integration
			e.MustCall("POST", "/api/v1/integrations", map[string]any{
				"kind": "github", "base_url": fake.URL, "settings": map[string]string{"auth": "token"},
				"secrets": map[string]string{"token": pat}, "discover": false,
			}, &in, http.StatusCreated)
			rec, err := e.App.Store.GetIntegration(context.Background(), in.ID)
			if err != nil {
				b.Fatal(err)
			}
			fake.SetLatency(20 * time.Millisecond)
			if phase == "unchanged" {
				if _, err := e.App.Catalog.Discover(context.Background(), rec, nil); err != nil {
					b.Fatal(err)
				}
			}
			var requests, points int
			b.ResetTimer()
			for b.Loop() {
				if phase == "first" {
					b.StopTimer()
					// Forget the catalog and the ETag cache: each iteration is a first discovery.
					e.App.Store.DeleteIntegration(context.Background(), rec.ID)
					e.App.Integrations.Forget(rec.ID)
					rec.ID = ""
					if err := e.App.Store.CreateIntegration(context.Background(), &rec); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				r0, p0 := fake.RequestCount("/user/repos"), fake.RateLimitUsed("user:octo")
				p, err := e.App.Catalog.Discover(context.Background(), rec, nil)
				if err != nil {
					b.Fatal(err)
				}
				if p.Repositories != 10000 {
					b.Fatalf("discovered %d repositories", p.Repositories)
				}
				requests += fake.RequestCount("/user/repos") - r0
				points += fake.RateLimitUsed("user:octo") - p0
			}
			b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
			b.ReportMetric(float64(points)/float64(b.N), "ratelimit-points/op")
		})
	}
}

// BenchmarkP2PushToMirror measures the time from a push delivery's arrival to the mirror
// holding the pushed commit, beside a plain `git fetch` of the same change from the same
// server ("baseline").
//
//	go test ./internal/e2e -run '^$' -bench P2 -benchtime 20x
func BenchmarkP2PushToMirror(b *testing.B) {
	root := b.TempDir()
	fake := githubfake.New(b, githubfake.Options{Unchecked: true, Git: gittest.Handler(root, gittest.HandlerOptions{})})
	fake.AddUser("octo")
	pat := fake.IssuePAT(githubfake.PAT{Login: "octo"})
	bare := gittest.InitBare(b, root, "octo/app.git")
	work := gittest.InitWork(b)
	sha := gittest.Commit(b, work, "README.md", "0\n", "first")
	gittest.Git(b, work, "push", "--quiet", bare, "main")
	hosted := fake.AddRepository(githubfake.Repo{FullName: "octo/app", Branches: map[string]string{"main": sha}})
	e := startB(b)
	var in api.Integration
	e.MustCall("POST", "/api/v1/integrations", map[string]any{
		"kind": "github", "base_url": fake.URL, "settings": map[string]string{"auth": "token"},
		"secrets": map[string]string{"token": pat}, "webhook_secret": hookSecret,
	}, &in, http.StatusCreated)
	var repo api.Repository
	testserver.Eventually(e.T, 30*time.Second, "discovery", func() bool {
		var l api.List[api.Repository]
		e.MustCall("GET", "/api/v1/repositories?integration="+in.ID, nil, &l, 200)
		if len(l.Items) == 1 {
			repo = l.Items[0]
		}
		return len(l.Items) == 1
	})
	var job api.Job
	e.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/attach", nil, &job, http.StatusAccepted)
	e.WaitJob(job)
	testserver.Eventually(e.T, 30*time.Second, "first clone", func() bool {
		ok, _ := e.App.Mirrors.HasCommit(context.Background(), repo.ID, sha)
		return ok
	})
	// The baseline: a plain clone that fetches each change from the same server.
	auth := gittest.BasicAuth("x-access-token", pat)
	plain := gittest.CloneWork(b, fake.URL+"/octo/app.git", auth)

	for _, mode := range []string{"forgeway", "baseline"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				before := sha
				sha = gittest.Commit(b, work, "README.md", fmt.Sprint(time.Now().UnixNano()), "change")
				gittest.Git(b, work, "push", "--quiet", bare, "main")
				payload := pushPayload(hosted.ID, before, sha)
				b.StartTimer()
				if mode == "baseline" {
					cmd := exec.Command("git", "fetch", "--quiet", "origin")
					cmd.Dir = plain
					cmd.Env = gittest.Env(b, auth)
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("git fetch: %v %s", err, out)
					}
					continue
				}
				status, out := e.post("/webhooks/github/"+in.ID, delivery{event: "push", id: "p2-" + sha, body: payload, signature: sign(hookSecret, payload)})
				if status != http.StatusAccepted {
					b.Fatalf("delivery: %d %v", status, out)
				}
				for {
					if ok, _ := e.App.Mirrors.HasCommit(context.Background(), repo.ID, sha); ok {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
}

func pushPayload(repoID int64, before, after string) []byte {
	return fmt.Appendf(nil, `{"ref":"refs/heads/main","before":%q,"after":%q,"created":false,"deleted":false,"forced":false,
"commits":[{"id":%q,"message":"change","timestamp":"2026-11-20T10:00:00Z","author":{"name":"Octo","email":"octo@example.com"},"url":"x"}],
"repository":{"id":%d,"name":"app","full_name":"octo/app","private":false,"owner":{"login":"octo","name":"octo"},"html_url":"x","clone_url":"x","default_branch":"main"},
"pusher":{"name":"octo","email":"octo@example.com"},"sender":{"login":"octo"}}`, before, after, after, repoID)
}

// BenchmarkIngest posts signed 7 KB push deliveries to an in-process server from 64
// concurrent clients (for profiling; P1 proper is cmd/fwbench, which separates the processes).
//
//	go test ./internal/e2e -run '^$' -bench Ingest -benchtime 20000x -cpuprofile cpu.out
func BenchmarkIngest(b *testing.B) {
	e := startB(b, "--workers", "0")
	id := e.githubTokenIntegration(nil)
	body := corpusFile(b, "github", "push.json")
	sig := sign(hookSecret, body)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	url := e.URL + "/webhooks/github/" + id
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("ingest-%d", n.Add(1)))
			req.Header.Set("X-Hub-Signature-256", sig)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkP3DiscoveryHosts discovers 10,000 repositories on each host's fake answering each
// request after 20 ms (fakes as the conformance suite uses them, checking every response
// against the host's API description where there is one): listing requests and wall time per
// discovery.
//
//	go test ./internal/e2e -run '^$' -bench P3DiscoveryHosts -benchtime 1x
func BenchmarkP3DiscoveryHosts(b *testing.B) {
	// Bitbucket's and Azure's conformance arrangements shrink pages to keep three pages cheap;
	// their Bench arrangements page as the hosts do.
	benchHosts := map[string]func(t testing.TB) forgetest.Host{
		"bitbucket-dc": bitbucketfake.Bench,
		"azure-devops": func(t testing.TB) forgetest.Host { return azurefake.Bench(t, azuredevops.New()) },
	}
	for _, name := range []string{"github", "gitlab", "bitbucket-dc", "azure-devops", "gitea"} {
		b.Run(name, func(b *testing.B) {
			newHost := hosts[name]
			if bh, ok := benchHosts[name]; ok {
				newHost = bh
			}
			h := newHost(b)
			h.AddRepositories(b, 10000)
			e := startB(b)
			in := h.Connect(b)
			var out api.Integration
			e.MustCall("POST", "/api/v1/integrations", map[string]any{
				"kind": string(h.Driver().Kind()), "base_url": in.BaseURL, "settings": in.Settings, "secrets": in.Secrets, "discover": false,
			}, &out, http.StatusCreated)
			rec, err := e.App.Store.GetIntegration(context.Background(), out.ID)
			if err != nil {
				b.Fatal(err)
			}
			h.(forgetest.Latency).SetLatency(20 * time.Millisecond)
			requests := 0
			b.ResetTimer()
			for b.Loop() {
				r0 := h.Requests()
				p, err := e.App.Catalog.Discover(context.Background(), rec, nil)
				if err != nil {
					b.Fatal(err)
				}
				if p.Repositories != 10000 {
					b.Fatalf("discovered %d repositories", p.Repositories)
				}
				requests += h.Requests() - r0
			}
			b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
		})
	}
}
