package gitea_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitea/giteafake"
)

func TestEnsureHooks(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	tok := e.fake.IssueToken("alice", "write:repository")
	e.fake.AddRepository(giteafake.Repo{FullName: "alice/r", Private: true})
	ci := e.fake.AddHook("alice/r", giteafake.Hook{URL: "https://ci.example/hook", Events: []string{"push"}, Active: true, Secret: "ci"})
	spec := forge.HookSpec{URL: "https://forgeway.example/webhooks/gitea/int-gitea", Secret: "s3cret"}
	slack := e.fake.AddHook("alice/r", giteafake.Hook{Type: "slack", URL: spec.URL, Events: []string{"push"}, Active: true})
	c := e.open(tok, nil)
	ctx := context.Background()
	repo := forge.Repository{FullName: "alice/r"}

	hooks, err := c.EnsureHooks(ctx, repo, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks) != 1 || !hooks[0].Active || !hooks[0].Healthy || hooks[0].URL != spec.URL {
		t.Fatalf("hooks %+v", hooks)
	}
	onHost := e.fake.Hooks("alice/r")
	if len(onHost) != 3 {
		t.Fatalf("host hooks %+v", onHost)
	}
	h := onHost[2]
	if h.Type != "gitea" || h.Secret != "s3cret" || h.ContentType != "json" || !h.Active || h.BranchFilter != "" || hooks[0].ID != strconv.FormatInt(h.ID, 10) {
		t.Errorf("created hook %+v", h)
	}
	for _, ev := range []string{"create", "delete", "push", "pull_request", "pull_request_sync"} {
		if !slices.Contains(h.Events, ev) {
			t.Errorf("created hook's events %v lack %s", h.Events, ev)
		}
	}
	if slices.Contains(h.Events, "repository") || slices.Contains(h.Events, "issues") {
		t.Errorf("created hook's events %v", h.Events)
	}

	// Again: nothing changes on the host; the one request is the listing.
	before := e.fake.RequestCount("")
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.RequestCount("") - before; n != 1 {
		t.Errorf("second EnsureHooks made %d requests, want the one listing", n)
	}

	// Someone deactivated it, filtered branches, switched to form and changed the secret: Hooks
	// says why it is unhealthy, and EnsureHooks repairs all of it.
	e.fake.UpdateHook("alice/r", h.ID, func(x *giteafake.Hook) {
		x.Active, x.ContentType, x.Secret = false, "form", "tampered"
	})
	got, err := c.Hooks(ctx, repo, spec.URL)
	if err != nil || len(got) != 1 || got[0].Healthy || !strings.Contains(got[0].Note, "inactive") {
		t.Fatalf("Hooks of an inactive hook: %+v %v", got, err)
	}
	e.fake.UpdateHook("alice/r", h.ID, func(x *giteafake.Hook) { x.Active, x.BranchFilter = true, "main" })
	got, _ = c.Hooks(ctx, repo, spec.URL)
	if got[0].Healthy || !strings.Contains(got[0].Note, `branch filter "main"`) {
		t.Errorf("Hooks of a filtering hook: %+v", got)
	}
	e.fake.UpdateHook("alice/r", h.ID, func(x *giteafake.Hook) { x.Active = false })
	if hooks, err = c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	h = e.fake.Hooks("alice/r")[2]
	if !h.Active || h.BranchFilter != "" || h.ContentType != "json" || h.Secret != "s3cret" || !hooks[0].Healthy {
		t.Errorf("repaired hook %+v", h)
	}

	// Events narrowed to push only: repaired too.
	e.fake.UpdateHook("alice/r", h.ID, func(x *giteafake.Hook) { x.Events = []string{"push"} })
	got, _ = c.Hooks(ctx, repo, spec.URL)
	if got[0].Healthy || got[0].Note != "the webhook does not send create, delete, pull_request, pull_request_sync" {
		t.Errorf("Hooks of a hook missing events: %+v", got)
	}
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	if h = e.fake.Hooks("alice/r")[2]; !slices.Contains(h.Events, "pull_request_sync") {
		t.Errorf("events not repaired: %v", h.Events)
	}

	// A duplicate is removed; the CI's hook and the Slack hook at the same URL are left alone.
	dup := e.fake.AddHook("alice/r", giteafake.Hook{URL: spec.URL, Events: []string{"push"}, Active: true, Secret: "s3cret"})
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, x := range e.fake.Hooks("alice/r") {
		ids = append(ids, x.ID)
	}
	if !slices.Equal(ids, []int64{ci, slack, h.ID}) || slices.Contains(ids, dup) {
		t.Errorf("hooks after removing the duplicate: %v", ids)
	}

	// No secret: refused before anything is created.
	if _, err := c.EnsureHooks(ctx, forge.Repository{FullName: "alice/r"}, forge.HookSpec{URL: "https://x.example"}); err == nil {
		t.Error("EnsureHooks without a secret")
	}
	if _, err := c.EnsureHooks(ctx, forge.Repository{FullName: "not-a-full-name"}, spec); err == nil {
		t.Error("EnsureHooks on a bad full name")
	}
}

func TestRemoveHooks(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	tok := e.fake.IssueToken("alice", "write:repository")
	e.fake.AddRepository(giteafake.Repo{FullName: "alice/r"})
	url := "https://forgeway.example/webhooks/gitea/int-gitea"
	ci := e.fake.AddHook("alice/r", giteafake.Hook{URL: "https://ci.example/hook", Active: true})
	a := e.fake.AddHook("alice/r", giteafake.Hook{URL: url, Active: true})
	b := e.fake.AddHook("alice/r", giteafake.Hook{URL: url, Active: false})
	c := e.open(tok, nil)
	ctx := context.Background()
	repo := forge.Repository{FullName: "alice/r"}

	// The second hook vanishes between the listing and its deletion: not an error.
	e.fake.FailNext(fmt.Sprintf("/repos/alice/r/hooks/%d", b), 404, nil)
	if err := c.RemoveHooks(ctx, repo, url); err != nil {
		t.Fatal(err)
	}
	hooks := e.fake.Hooks("alice/r")
	if len(hooks) != 2 || hooks[0].ID != ci || hooks[1].ID != b {
		t.Errorf("hooks left %+v (a was %d)", hooks, a)
	}
	if err := c.RemoveHooks(ctx, repo, url); err != nil || len(e.fake.Hooks("alice/r")) != 1 {
		t.Errorf("second removal: %v, %+v", err, e.fake.Hooks("alice/r"))
	}
	if err := c.RemoveHooks(ctx, repo, url); err != nil {
		t.Errorf("removing nothing: %v", err)
	}
	if err := c.RemoveHooks(ctx, forge.Repository{FullName: "alice/missing"}, url); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("a missing repository: %v", err)
	}
}

func TestRotateHookSecret(t *testing.T) {
	e := newEnv(t, giteafake.Options{})
	tok := e.fake.IssueToken("alice", "write:repository")
	e.fake.AddRepository(giteafake.Repo{FullName: "alice/r"})
	c := e.open(tok, nil)
	rot, ok := c.(forge.HookSecretRotator)
	if !ok {
		t.Fatalf("%T is not a forge.HookSecretRotator", c)
	}
	ctx := context.Background()
	repo := forge.Repository{FullName: "alice/r"}
	spec := forge.HookSpec{URL: "https://forgeway.example/webhooks/gitea/int-gitea", Secret: "old"}
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	spec.Secret = "new"
	// EnsureHooks cannot see the secret differ: it leaves the hook.
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil || e.fake.Hooks("alice/r")[0].Secret != "old" {
		t.Fatalf("EnsureHooks changed the secret: %v", err)
	}
	hooks, err := rot.RotateHookSecret(ctx, repo, spec)
	if err != nil || len(hooks) != 1 || e.fake.Hooks("alice/r")[0].Secret != "new" {
		t.Fatalf("rotate: %+v %v %+v", hooks, err, e.fake.Hooks("alice/r"))
	}
	// On a repository without the hook, rotation creates it.
	e.fake.AddRepository(giteafake.Repo{FullName: "alice/bare"})
	if _, err := rot.RotateHookSecret(ctx, forge.Repository{FullName: "alice/bare"}, spec); err != nil || e.fake.Hooks("alice/bare")[0].Secret != "new" {
		t.Errorf("rotate on a repository without hook: %v", err)
	}
	if err := rot.RotateIntegrationHook(ctx, spec); err != nil {
		t.Errorf("RotateIntegrationHook: %v", err)
	}
}
