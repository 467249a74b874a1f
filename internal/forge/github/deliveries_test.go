package github

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
)

// TestFakeDeliveriesVerify checks the fake's deliveries against the driver's delivery side:
// the hook EnsureHooks created and the App's webhook both deliver pushes that identify,
// verify and normalize.
func TestFakeDeliveriesVerify(t *testing.T) {
	var mu sync.Mutex
	var got []forge.Delivery
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, forge.Delivery{Header: r.Header.Clone(), Body: b, ReceivedAt: time.Now()})
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer recv.Close()

	e := newEnv(t, githubfake.Options{})
	ctx := context.Background()
	// A token integration's repository hook.
	tin, _ := e.tokenIntegration("alice")
	e.fake.AddRepository(githubfake.Repo{FullName: "alice/r"})
	if _, err := e.open(tin).EnsureHooks(ctx, forge.Repository{FullName: "alice/r"}, forge.HookSpec{URL: recv.URL + "/token", Secret: "repo-secret"}); err != nil {
		t.Fatal(err)
	}
	// An App's webhook.
	a := e.fake.AddApp(githubfake.App{Key: testKey(), WebhookURL: recv.URL + "/app", WebhookSecret: "app-secret"})
	e.fake.AddRepository(githubfake.Repo{FullName: "acme/r"})
	inst := e.fake.AddInstallation(githubfake.Installation{AppID: a.ID, Account: "acme"})

	for _, repo := range []string{"alice/r", "acme/r"} {
		ds, err := e.fake.DeliverPush(ctx, repo, githubfake.Push{Ref: "refs/heads/main", Commits: []githubfake.Commit{{Message: "ABC-1 fix"}}})
		if err != nil || len(ds) != 1 || ds[0].Status != http.StatusAccepted {
			t.Fatalf("deliver to %s: %+v %v", repo, ds, err)
		}
	}
	wh := New().Webhooks()
	secrets := []string{"repo-secret", "app-secret"}
	for i, d := range got {
		info, err := wh.Identify(d)
		if err != nil || info.Event != "push" || info.ID == "" {
			t.Fatalf("identify %d: %+v %v", i, info, err)
		}
		if i == 1 {
			want := []string{"app:" + strconv.FormatInt(a.ID, 10), "installation:" + strconv.FormatInt(inst.ID, 10)}
			if len(info.RouteKeys) != 2 || info.RouteKeys[0] != want[0] || info.RouteKeys[1] != want[1] {
				t.Errorf("App delivery route keys %v, want %v", info.RouteKeys, want)
			}
		}
		if err := wh.Verify(d, forge.VerifyKeys{Secrets: []string{secrets[i]}}); err != nil {
			t.Errorf("verify %d: %v", i, err)
		}
		if err := wh.Verify(d, forge.VerifyKeys{Secrets: []string{secrets[1-i]}}); err == nil {
			t.Errorf("delivery %d verified under the other secret", i)
		}
		res, err := wh.Normalize(ctx, d, nil)
		if err != nil || len(res.Events) != 1 || res.Events[0].Type != forge.EventPush {
			t.Fatalf("normalize %d: %+v %v", i, res, err)
		}
	}
}
