package giteafake

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/gittest"
)

// TestConformanceHost walks the forgetest.Host the conformance scenarios get, with the Gitea
// driver, through each of its promises.
func TestConformanceHost(t *testing.T) {
	h := Conformance(t)
	ctx := context.Background()
	in := h.Connect(t)
	drv := h.Driver()
	if drv.Kind() != forge.Gitea {
		t.Fatalf("driver %q", drv.Kind())
	}
	if _, err := drv.Configure(&in); err != nil {
		t.Fatal(err)
	}
	c, err := drv.Open(ctx, in, forge.Env{HTTP: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}

	// Three pages of repositories, all listed.
	created := h.AddRepositories(t, 2*h.PageSize()+1)
	var listed []string
	pages := 0
	if err := c.Repositories(ctx, func(p []forge.Repository) error {
		pages++
		for _, r := range p {
			listed = append(listed, r.FullName)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if pages != 3 || !slices.Equal(listed, created) {
		t.Fatalf("%d pages, %d of %d repositories", pages, len(listed), len(created))
	}

	// A repository with git data: hooks, a push through git, the signed delivery.
	rc := newReceiver(t)
	name := h.AddGitRepository(t, "mirror-me")
	spec := forge.HookSpec{URL: rc.srv.URL + "/webhooks/gitea/int", Secret: "conformance-secret"}
	repo := forge.Repository{FullName: name}
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	hooks := h.Hooks(t, name, spec.URL)
	if len(hooks) != 1 || hooks[0].Secret != spec.Secret || !hooks[0].Active || !slices.Contains(hooks[0].Events, "push") {
		t.Fatalf("hooks %+v", hooks)
	}
	work := gittest.CloneWork(t, h.CloneURL(t, name), h.PushAuth(t))
	sha := gittest.Commit(t, work, "x.txt", "x\n", "conformance push")
	gittest.Push(t, work, h.PushAuth(t), "main")
	ds := rc.take()
	wh := drv.Webhooks()
	if len(ds) != 1 || wh.Verify(ds[0], forge.VerifyKeys{Secrets: []string{spec.Secret}}) != nil {
		t.Fatalf("%d deliveries", len(ds))
	}
	if res, err := wh.Normalize(ctx, ds[0], nil); err != nil || res.Events[0].Data.(forge.PushData).After != sha {
		t.Errorf("normalized %+v %v", res, err)
	}

	// Deleted behind Forgeway's back, then repaired.
	h.DeleteHooks(t, name)
	if len(h.Hooks(t, name, spec.URL)) != 0 {
		t.Fatal("hooks survived DeleteHooks")
	}
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil || len(h.Hooks(t, name, spec.URL)) != 1 {
		t.Fatalf("repair: %v", err)
	}

	// Injected failures, counted requests.
	before := h.Requests()
	h.FailNext(t, 1, http.StatusTooManyRequests, 2*time.Second)
	_, err = c.Branches(ctx, repo)
	var rl *forge.RateLimitError
	if !errors.As(err, &rl) || time.Until(rl.Reset) > 3*time.Second {
		t.Errorf("429: %v", err)
	}
	if h.Requests() != before+1 {
		t.Errorf("requests %d → %d", before, h.Requests())
	}

	// A revoked credential: a failed diagnosis with a hint; git pushes still work.
	h.RevokeCredential(t)
	checks := c.Diagnose(ctx)
	last := checks[len(checks)-1]
	if last.Name != "Gitea token" || last.OK || !strings.Contains(last.Hint, "revoked") {
		t.Errorf("diagnosis %+v", checks)
	}
	gittest.Commit(t, work, "y.txt", "y\n", "after revocation")
	gittest.Push(t, work, h.PushAuth(t), "main")
}
