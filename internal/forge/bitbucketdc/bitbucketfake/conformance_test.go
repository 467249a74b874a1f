package bitbucketfake

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/gittest"
	"github.com/forgeway/forgeway/internal/hostclient"
)

// TestConformanceHost walks the conformance scenarios through the Host and its driver, without
// the rest of Forgeway, so that the Host keeps its promises to forgetest.
func TestConformanceHost(t *testing.T) {
	h := Conformance(t)
	ctx := context.Background()
	d := h.Driver()
	in := h.Connect(t)
	if _, err := d.Configure(&in); err != nil {
		t.Fatal(err)
	}
	hc, err := hostclient.New(hostclient.Options{RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Open(ctx, in, forge.Env{HTTP: hc.HTTP()})
	if err != nil {
		t.Fatal(err)
	}

	// Discover three pages.
	names := h.AddRepositories(t, 2*h.PageSize()+1)
	pages, seen := 0, 0
	before := h.Requests()
	err = c.Repositories(ctx, func(p []forge.Repository) error {
		pages++
		for _, r := range p {
			if r.FullName != names[seen] {
				t.Errorf("repository %d is %s, want %s", seen, r.FullName, names[seen])
			}
			seen++
		}
		return nil
	})
	if err != nil || pages != 3 || seen != len(names) || h.Requests() == before {
		t.Fatalf("discovery: %d pages, %d repositories, %v", pages, seen, err)
	}

	// Attach, again, detach, repair.
	url := "http://forgeway.invalid/webhooks/bitbucket-dc/" + in.ID
	repo := forge.Repository{FullName: names[0]}
	spec := forge.HookSpec{URL: url, Secret: "s3cret"}
	for range 2 {
		if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
			t.Fatal(err)
		}
		if hooks := h.Hooks(t, names[0], url); len(hooks) != 1 || hooks[0].Secret != "s3cret" || !hooks[0].Active || len(hooks[0].Events) != 7 {
			t.Fatalf("hooks %+v", hooks)
		}
	}
	h.DeleteHooks(t, names[0])
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil || len(h.Hooks(t, names[0], url)) != 1 {
		t.Fatalf("repair: %v", err)
	}
	if err := c.RemoveHooks(ctx, repo, url); err != nil || len(h.Hooks(t, names[0], url)) != 0 {
		t.Fatalf("detach: %v", err)
	}

	// A push through git http-backend delivers a signed push to the hook.
	got := make(chan forge.Delivery, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- forge.Delivery{Header: r.Header.Clone(), Body: b}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer receiver.Close()
	full := h.AddGitRepository(t, "mirror-me")
	gitRepo := forge.Repository{FullName: full}
	if _, err := c.EnsureHooks(ctx, gitRepo, forge.HookSpec{URL: receiver.URL, Secret: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	auth, err := c.GitAuth(ctx, gitRepo, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	work := gittest.CloneWork(t, h.CloneURL(t, full), auth.Header)
	sha := gittest.Commit(t, work, "a.txt", "a\n", "A change")
	gittest.Push(t, work, h.PushAuth(t), "main")
	select {
	case dl := <-got:
		secret := h.Hooks(t, full, receiver.URL)[0].Secret
		if err := d.Webhooks().Verify(dl, forge.VerifyKeys{Secrets: []string{secret}}); err != nil {
			t.Fatal(err)
		}
		res, err := d.Webhooks().Normalize(ctx, dl, nil)
		if err != nil || len(res.Events) != 1 || res.Events[0].Data.(forge.PushData).After != sha {
			t.Fatalf("push delivery: %+v %v", res, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no push delivery")
	}

	// 429 with Retry-After: a rate-limit error (the core's client waits it out when short).
	h.FailNext(t, 1, http.StatusTooManyRequests, 2*time.Minute)
	var rl *forge.RateLimitError
	if _, err := c.Branches(ctx, repo); !errors.As(err, &rl) {
		t.Errorf("429: %v", err)
	}
	// 5xx: retried by the core's client, nothing lost.
	h.FailNext(t, 2, http.StatusServiceUnavailable, 0)
	if refs, err := c.Branches(ctx, repo); err != nil || len(refs) != 1 {
		t.Errorf("after two 503s: %v %v", refs, err)
	}

	// A revoked credential is diagnosed, with what to do.
	h.RevokeCredential(t)
	checks := c.Diagnose(ctx)
	last := checks[len(checks)-1]
	if last.OK || !strings.Contains(last.Hint, "revoked") {
		t.Errorf("diagnosis %+v", checks)
	}
}
