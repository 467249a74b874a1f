package github

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestEnsureHooks(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	in, tok := e.tokenIntegration("alice")
	e.fake.AddRepository(githubfake.Repo{FullName: "alice/r", Private: true})
	other := e.fake.AddHook("alice/r", githubfake.Hook{URL: "https://ci.example/hook", Events: []string{"push"}, Active: true})
	c := e.open(in)
	ctx := context.Background()
	repo := forge.Repository{FullName: "alice/r"}
	spec := forge.HookSpec{URL: "https://forgeway.example/webhooks/github/int-token", Secret: "s3cret"}

	hooks, err := c.EnsureHooks(ctx, repo, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks) != 1 || !hooks[0].Active || !hooks[0].Healthy || hooks[0].URL != spec.URL {
		t.Fatalf("hooks %+v", hooks)
	}
	onHost := e.fake.Hooks("alice/r")
	if len(onHost) != 2 {
		t.Fatalf("host hooks %+v", onHost)
	}
	h := onHost[1]
	if h.Secret != "s3cret" || h.ContentType != "json" || h.InsecureSSL != "0" || !h.Active ||
		!slices.Equal(h.Events, []string{"create", "delete", "push", "pull_request", "repository"}) {
		t.Errorf("created hook %+v", h)
	}

	// Again: nothing changes on the host.
	before := e.fake.RequestCount("")
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.RequestCount("") - before; n != 1 {
		t.Errorf("second EnsureHooks made %d requests, want the one listing", n)
	}

	// Someone disabled it and narrowed its events: it is repaired, its secret kept.
	e.fake.UpdateHook("alice/r", h.ID, func(x *githubfake.Hook) {
		x.Active, x.Events = false, []string{"push"}
		code := 502
		x.LastResponse = githubfake.LastResponse{Code: &code, Status: "misconfigured", Message: "Invalid HTTP Response: 502"}
	})
	got, err := c.Hooks(ctx, repo, spec.URL)
	if err != nil || len(got) != 1 || got[0].Healthy || got[0].Note == "" {
		t.Fatalf("Hooks of a disabled hook: %+v %v", got, err)
	}
	hooks, err = c.EnsureHooks(ctx, repo, spec)
	if err != nil {
		t.Fatal(err)
	}
	h = e.fake.Hooks("alice/r")[1]
	if !h.Active || len(h.Events) != 5 || h.Secret != "s3cret" || !hooks[0].Active {
		t.Errorf("repaired hook %+v", h)
	}

	// Only a failed last delivery: unhealthy with GitHub's message, and EnsureHooks leaves it.
	e.fake.UpdateHook("alice/r", h.ID, func(x *githubfake.Hook) {
		code := 500
		x.LastResponse = githubfake.LastResponse{Code: &code, Status: "misconfigured", Message: "Invalid HTTP Response: 500"}
	})
	got, _ = c.Hooks(ctx, repo, spec.URL)
	if got[0].Healthy || got[0].Note != "Invalid HTTP Response: 500" {
		t.Errorf("unhealthy hook %+v", got[0])
	}

	// Rotation sets the new secret explicitly.
	spec.Secret = "n3w"
	if _, err := c.RotateHookSecret(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	if s := e.fake.Hooks("alice/r")[1].Secret; s != "n3w" {
		t.Errorf("secret after rotation %q", s)
	}

	// A duplicate made by hand is removed; the unrelated hook stays.
	e.fake.AddHook("alice/r", githubfake.Hook{URL: spec.URL, Events: []string{"push"}, Active: true, ContentType: "json"})
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.Hooks("alice/r")); n != 2 {
		t.Errorf("%d hooks after removing a duplicate", n)
	}

	if err := c.RemoveHooks(ctx, repo, spec.URL); err != nil {
		t.Fatal(err)
	}
	left := e.fake.Hooks("alice/r")
	if len(left) != 1 || left[0].ID != other {
		t.Errorf("after RemoveHooks: %+v", left)
	}
	if err := c.RemoveHooks(ctx, repo, spec.URL); err != nil {
		t.Errorf("RemoveHooks with nothing to remove: %v", err)
	}
	if got, err := c.Hooks(ctx, repo, spec.URL); err != nil || len(got) != 0 {
		t.Errorf("Hooks after removal: %+v %v", got, err)
	}

	// Errors: a repository that is not there, and a token without the hook scope.
	if _, err := c.EnsureHooks(ctx, forge.Repository{FullName: "alice/none"}, spec); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("missing repository: %v", err)
	}
	weak := e.fake.IssuePAT(githubfake.PAT{Login: "alice", Scopes: []string{"repo"}})
	in.Secrets[SecretToken] = weak
	_, err = e.open(in).EnsureHooks(ctx, repo, spec)
	if !errors.Is(err, forge.ErrForbidden) || !strings.Contains(err.Error(), "scope") {
		t.Errorf("token without admin:repo_hook: %v", err)
	}
	if strings.Contains(err.Error(), weak) || strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), "n3w") {
		t.Error("an error carries a secret")
	}
}

func TestRemoveHooksToleratesConcurrentDelete(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	in, _ := e.tokenIntegration("alice")
	e.fake.AddRepository(githubfake.Repo{FullName: "alice/r"})
	id := e.fake.AddHook("alice/r", githubfake.Hook{URL: "https://f.example/h", Events: []string{"push"}, Active: true})
	c := e.open(in)
	e.fake.FailNext("/repos/alice/r/hooks/"+itoa(id), http.StatusNotFound, nil)
	if err := c.RemoveHooks(context.Background(), forge.Repository{FullName: "alice/r"}, "https://f.example/h"); err != nil {
		t.Fatalf("a hook deleted meanwhile: %v", err)
	}
}

func TestAppHooks(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	in, a := e.appIntegration()
	e.fake.AddRepository(githubfake.Repo{FullName: "acme/r"})
	e.fake.AddInstallation(githubfake.Installation{AppID: a.ID, Account: "acme"})
	c := e.open(in)
	ctx := context.Background()
	repo := forge.Repository{FullName: "acme/r"}
	before := e.fake.RequestCount("")
	hooks, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: "https://f.example/webhooks/github", Secret: "x"})
	if err != nil || len(hooks) != 1 || hooks[0].ID != "app" || !hooks[0].Healthy {
		t.Fatalf("App EnsureHooks: %+v %v", hooks, err)
	}
	if err := c.RemoveHooks(ctx, repo, "https://f.example/webhooks/github"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Hooks(ctx, repo, "u"); len(got) != 1 || got[0].ID != "app" {
		t.Errorf("App Hooks %+v", got)
	}
	// The App's webhook secret is set in its settings, not through the API.
	if _, err := c.RotateHookSecret(ctx, repo, forge.HookSpec{URL: "u", Secret: "y"}); !errors.Is(err, forge.ErrUnsupported) || !strings.Contains(err.Error(), "settings page") {
		t.Errorf("App RotateHookSecret: %v, want ErrUnsupported saying where to change it", err)
	}
	if n := e.fake.RequestCount("") - before; n != 0 || len(e.fake.Hooks("acme/r")) != 0 {
		t.Errorf("App hook calls touched the host (%d requests)", n)
	}
}
