package azurefake_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/azuredevops"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/azurefake"
	"github.com/forgeway/forgeway/internal/gittest"
)

// TestConformanceHost drives the conformance arrangement with the driver directly: pages
// are projects, hooks carry the webhook secret, a revoked token fails the diagnosis, failures
// are injected, and git works with the push credential.
func TestConformanceHost(t *testing.T) {
	h := azurefake.Conformance(t, azuredevops.New())
	ctx := context.Background()
	in := h.Connect(t)
	if _, err := h.Driver().Configure(&in); err != nil {
		t.Fatal(err)
	}
	c, err := h.Driver().Open(ctx, in, forge.Env{HTTP: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	names := h.AddRepositories(t, 2*h.PageSize()+1)
	var pages [][]forge.Repository
	if err := c.Repositories(ctx, func(p []forge.Repository) error { pages = append(pages, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(pages) != 3 || len(pages[0]) != h.PageSize() || len(pages[2]) != 1 || pages[2][0].FullName != names[len(names)-1] {
		t.Fatalf("pages %+v", pages)
	}

	name := h.AddGitRepository(t, "hooked")
	var repo forge.Repository
	_ = c.Repositories(ctx, func(p []forge.Repository) error {
		for _, r := range p {
			if r.FullName == name {
				repo = r
			}
		}
		return nil
	})
	if repo.CloneURL != h.CloneURL(t, name) {
		t.Errorf("clone URL %q, conformance says %q", repo.CloneURL, h.CloneURL(t, name))
	}
	const url = "https://forgeway.example/webhooks/azure-devops/int"
	if _, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: url, Secret: "conformance-secret"}); err != nil {
		t.Fatal(err)
	}
	hooks := h.Hooks(t, name, url)
	if len(hooks) != 3 {
		t.Fatalf("hooks %+v", hooks)
	}
	for _, hk := range hooks {
		if !hk.Active || hk.Secret != "conformance-secret" || len(hk.Events) != 1 {
			t.Errorf("hook %+v", hk)
		}
	}
	h.DeleteHooks(t, name)
	if left := h.Hooks(t, name, url); len(left) != 0 {
		t.Errorf("hooks left %+v", left)
	}

	work := gittest.CloneWork(t, h.CloneURL(t, name), h.PushAuth(t))
	if !strings.Contains(gittest.Git(t, work, "log", "--oneline"), "Initial commit") {
		t.Error("the git repository has no initial commit")
	}

	before := h.Requests()
	h.FailNext(t, 1, http.StatusTooManyRequests, 2*time.Second)
	err = c.Repositories(ctx, func([]forge.Repository) error { return nil })
	var rl *forge.RateLimitError
	if !errors.As(err, &rl) || !strings.Contains(rl.Detail, "TF400733") {
		t.Errorf("injected 429: %v", err)
	}
	if h.Requests() <= before {
		t.Error("requests not counted")
	}

	h.RevokeCredential(t)
	for _, ch := range c.Diagnose(ctx) {
		if !ch.OK && ch.Hint != "" {
			return
		}
	}
	t.Error("a revoked token passed the diagnosis")
}
