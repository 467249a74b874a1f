package gitlab_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitlab/gitlabfake"
)

const hookURL = "https://forgeway.example.com/webhooks/gitlab/int-1"

func TestEnsureHooksIdempotent(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, tok := e.tokenIntegration("ana")
	e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	c := e.open(in)
	ctx := context.Background()
	repo := repoOf(t, c, "ana/svc")
	spec := forge.HookSpec{URL: hookURL, Secret: "s3cret"}

	hooks, err := c.EnsureHooks(ctx, repo, spec)
	if err != nil {
		t.Fatal(err)
	}
	stored := e.fake.Hooks("ana/svc")
	if len(hooks) != 1 || len(stored) != 1 {
		t.Fatalf("%d hooks returned, %d on GitLab", len(hooks), len(stored))
	}
	h := stored[0]
	if h.URL != hookURL || h.Token != "s3cret" || !h.PushEvents || !h.TagPushEvents || !h.MergeRequestsEvents ||
		!h.EnableSSLVerification || h.AlertStatus != "executable" || h.SigningToken != "" {
		t.Fatalf("hook on GitLab: %+v", h)
	}
	if got := hooks[0]; got.ID != strconv.FormatInt(h.ID, 10) || got.URL != hookURL || !got.Active || !got.Healthy ||
		strings.Join(got.Events, ",") != "push_events,tag_push_events,merge_requests_events" {
		t.Fatalf("returned hook %+v", got)
	}

	// Again: nothing changes (no update, no new hook).
	before := e.fake.RequestCount("/projects/" + repo.HostID + "/hooks/" + hooks[0].ID)
	again, err := c.EnsureHooks(ctx, repo, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0].ID != hooks[0].ID || len(e.fake.Hooks("ana/svc")) != 1 {
		t.Fatalf("second EnsureHooks: %+v", again)
	}
	if n := e.fake.RequestCount("/projects/" + repo.HostID + "/hooks/" + hooks[0].ID); n != before {
		t.Errorf("an unchanged hook was written to (%d requests)", n-before)
	}

	// Skipping TLS verification is a difference: the hook is updated in place.
	spec.InsecureSkipTLS = true
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	if h := e.fake.Hooks("ana/svc"); len(h) != 1 || h[0].EnableSSLVerification || h[0].ID != stored[0].ID || h[0].Token != "s3cret" {
		t.Fatalf("after asking to skip TLS verification: %+v", h)
	}

	// Someone else's hook is left alone; a duplicate of ours is removed.
	other := forge.HookSpec{URL: "https://ci.example.com/hook", Secret: "ci"}
	if _, err := c.EnsureHooks(ctx, repo, other); err != nil {
		t.Fatal(err)
	}
	if _, err := c.(forge.HookSecretRotator).RotateHookSecret(ctx, repo, forge.HookSpec{URL: "https://ci.example.com/hook", Secret: "ci2"}); err != nil {
		t.Fatal(err)
	}
	listed, err := c.Hooks(ctx, repo, hookURL)
	if err != nil || len(listed) != 1 || listed[0].ID != hooks[0].ID {
		t.Fatalf("Hooks: %+v, %v", listed, err)
	}
	noSecret(t, err, tok, "s3cret")
}

func TestEnsureHooksRemovesDuplicates(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.tokenIntegration("ana")
	e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	c := e.open(in)
	repo := repoOf(t, c, "ana/svc")
	// Two hooks to Forgeway's URL, made by hand (one without merge request events).
	first := e.fake.AddHook("ana/svc", gitlabfake.Hook{URL: hookURL, Token: "s", PushEvents: true, TagPushEvents: true, EnableSSLVerification: true})
	e.fake.AddHook("ana/svc", gitlabfake.Hook{URL: hookURL, Token: "s", PushEvents: true})
	hooks, err := c.EnsureHooks(context.Background(), repo, forge.HookSpec{URL: hookURL, Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	stored := e.fake.Hooks("ana/svc")
	if len(stored) != 1 || stored[0].ID != first || !stored[0].MergeRequestsEvents || len(hooks) != 1 || hooks[0].ID != strconv.FormatInt(first, 10) {
		t.Fatalf("after EnsureHooks: %+v (returned %+v)", stored, hooks)
	}
}

func TestEnsureHooksRecreatesDisabled(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int
		until    time.Duration
		note     string
	}{
		{"temporarily disabled", 5, time.Hour, "until 2026-11-20T13:00:00Z"},
		{"disabled", 40, 0, "after repeated failed deliveries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, gitlabfake.Options{})
			in, _ := e.tokenIntegration("ana")
			e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
			c := e.open(in)
			ctx := context.Background()
			repo := repoOf(t, c, "ana/svc")
			spec := forge.HookSpec{URL: hookURL, Secret: "s"}
			created, err := c.EnsureHooks(ctx, repo, spec)
			if err != nil {
				t.Fatal(err)
			}
			old, _ := strconv.ParseInt(created[0].ID, 10, 64)
			var until time.Time
			if tc.until > 0 {
				until = e.clock.Now().Add(tc.until)
			}
			e.fake.SetHookFailures("ana/svc", old, tc.failures, until)

			listed, err := c.Hooks(ctx, repo, hookURL)
			if err != nil {
				t.Fatal(err)
			}
			if len(listed) != 1 || listed[0].Healthy || listed[0].Active || !strings.Contains(listed[0].Note, tc.note) {
				t.Fatalf("a hook GitLab disabled is reported as %+v", listed)
			}
			repaired, err := c.EnsureHooks(ctx, repo, spec)
			if err != nil {
				t.Fatal(err)
			}
			hooks := e.fake.Hooks("ana/svc")
			if len(hooks) != 1 || hooks[0].ID == old || hooks[0].AlertStatus != "executable" || hooks[0].Token != "s" ||
				len(repaired) != 1 || !repaired[0].Healthy || repaired[0].ID != strconv.FormatInt(hooks[0].ID, 10) {
				t.Fatalf("after EnsureHooks: GitLab has %+v, returned %+v", hooks, repaired)
			}
		})
	}
}

func TestRemoveHooks(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.tokenIntegration("ana")
	e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	c := e.open(in)
	ctx := context.Background()
	repo := repoOf(t, c, "ana/svc")
	for _, u := range []string{hookURL, "https://ci.example.com/hook"} {
		if _, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: u, Secret: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.RemoveHooks(ctx, repo, hookURL); err != nil {
		t.Fatal(err)
	}
	if hooks := e.fake.Hooks("ana/svc"); len(hooks) != 1 || hooks[0].URL != "https://ci.example.com/hook" {
		t.Fatalf("after RemoveHooks: %+v", hooks)
	}
	if err := c.RemoveHooks(ctx, repo, hookURL); err != nil {
		t.Fatalf("removing hooks already gone: %v", err)
	}
	if hooks, err := c.Hooks(ctx, repo, hookURL); err != nil || len(hooks) != 0 {
		t.Fatalf("Hooks after removal: %+v, %v", hooks, err)
	}
}

func TestRotateHookSecret(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.tokenIntegration("ana")
	in.Secrets["signing_token"] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	c := e.open(in)
	ctx := context.Background()
	repo := repoOf(t, c, "ana/svc")
	first, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: hookURL, Secret: "old"})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := c.(forge.HookSecretRotator).RotateHookSecret(ctx, repo, forge.HookSpec{URL: hookURL, Secret: "new"})
	if err != nil {
		t.Fatal(err)
	}
	hooks := e.fake.Hooks("ana/svc")
	if len(hooks) != 1 || hooks[0].Token != "new" || rotated[0].ID != first[0].ID || hooks[0].SigningToken != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" {
		t.Fatalf("after rotation: %+v", hooks)
	}
	if err := c.(forge.HookSecretRotator).RotateIntegrationHook(ctx, forge.HookSpec{URL: hookURL, Secret: "new"}); err != nil {
		t.Fatalf("RotateIntegrationHook: %v", err)
	}
}

// TestBlockedHookURL: GitLab refuses a webhook to the local network unless an administrator
// allows it; the error names the setting.
func TestBlockedHookURL(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{AllowLocalRequests: false})
	in, tok := e.tokenIntegration("ana")
	e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	c := e.open(in)
	repo := repoOf(t, c, "ana/svc")
	_, err := c.EnsureHooks(context.Background(), repo, forge.HookSpec{URL: "http://10.1.2.3:8080/webhooks/gitlab/x", Secret: "hook-secret-value"})
	var he *forge.HostError
	if !errors.As(err, &he) || he.Status != 422 || !strings.Contains(err.Error(), "Allow requests to the local network from webhooks and integrations") ||
		!strings.Contains(err.Error(), "Invalid url given") {
		t.Fatalf("blocked URL: %v", err)
	}
	noSecret(t, err, tok, "hook-secret-value")
}

func TestHooksNeedMaintainer(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.tokenIntegration("dev")
	e.fake.AddProject(gitlabfake.Project{FullPath: "acme/svc"})
	e.fake.AddMember("acme/svc", "dev", gitlabfake.Developer)
	c := e.open(in)
	repo := repoOf(t, c, "acme/svc")
	if repo.Permission != forge.PermissionWrite {
		t.Fatalf("a Developer's permission: %s", repo.Permission)
	}
	_, err := c.EnsureHooks(context.Background(), repo, forge.HookSpec{URL: hookURL, Secret: "s"})
	if !errors.Is(err, forge.ErrForbidden) || !strings.Contains(err.Error(), "403 Forbidden") {
		t.Fatalf("EnsureHooks as a Developer: %v", err)
	}
	if _, err := c.EnsureHooks(context.Background(), repo, forge.HookSpec{Secret: "s"}); err == nil {
		t.Error("EnsureHooks without a URL succeeded")
	}
}

// TestEnsureHooksAddsSigningToken: a hook made before the integration had a signing token is
// given it by the next EnsureHooks, when GitLab says whether a hook has one.
func TestEnsureHooksAddsSigningToken(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.tokenIntegration("ana")
	e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	ctx := context.Background()
	c := e.open(in)
	repo := repoOf(t, c, "ana/svc")
	if _, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: hookURL, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	in.Secrets["signing_token"] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	signed := e.open(in)
	if _, err := signed.EnsureHooks(ctx, repo, forge.HookSpec{URL: hookURL, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	if h := e.fake.Hooks("ana/svc"); len(h) != 1 || h[0].SigningToken != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" || h[0].Token != "s" {
		t.Fatalf("after EnsureHooks with a signing token: %+v", h)
	}
}
