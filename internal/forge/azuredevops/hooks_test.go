package azuredevops

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/adowebhook"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/azurefake"
)

const hookURL = "https://forgeway.example/webhooks/azure-devops/int-ado"

// hookEnv is a fake with one repository and a Project Administrator's client.
func hookEnv(t *testing.T, settings ...string) (*env, *Client, forge.Repository) {
	e := newEnv(t, azurefake.Options{})
	tok := e.admin()
	e.fake.AddRepository(azurefake.Repo{Project: "Fiber", Name: "app", Branches: map[string]string{"main": strings.Repeat("1", 40)}})
	c := e.open(e.integration(tok, settings...))
	pages, err := collect(t, c)
	if err != nil || len(pages) != 1 {
		t.Fatalf("listing: %v", err)
	}
	return e, c, pages[0][0]
}

// onHost is the fake's view of the repository's subscriptions, keyed by event type.
func onHost(e *env, repo forge.Repository) map[string]azurefake.Subscription {
	out := map[string]azurefake.Subscription{}
	for _, s := range e.fake.Subscriptions(repo.FullName) {
		out[s.EventType] = s
	}
	return out
}

func TestEnsureHooksCreatesThreeSubscriptions(t *testing.T) {
	e, c, repo := hookEnv(t)
	ctx := context.Background()
	spec := forge.HookSpec{URL: hookURL, Secret: "s3cret"}
	hooks, err := c.EnsureHooks(ctx, repo, spec)
	if err != nil {
		t.Fatal(err)
	}
	subs := onHost(e, repo)
	if len(subs) != 3 || len(hooks) != 3 {
		t.Fatalf("host %+v, hooks %+v", subs, hooks)
	}
	for i, ev := range []string{"git.push", "git.pullrequest.created", "git.pullrequest.updated"} {
		s := subs[ev]
		want := forge.Hook{ID: s.ID, URL: hookURL, Events: []string{ev}, Active: true, Healthy: true}
		if diff := cmp.Diff(want, hooks[i]); diff != "" {
			t.Errorf("hook %d (-want +got):\n%s", i, diff)
		}
		pub := map[string]string{"projectId": repo.Extra[ExtraProjectID], "repository": repo.HostID, "tfsSubscriptionId": s.PublisherInputs["tfsSubscriptionId"]}
		if ev == "git.pullrequest.updated" {
			pub["notificationType"] = "PushNotification"
		}
		if diff := cmp.Diff(pub, s.PublisherInputs); diff != "" {
			t.Errorf("%s publisher inputs (-want +got):\n%s", ev, diff)
		}
		con := map[string]string{"url": hookURL, "basicAuthUsername": "forgeway", "basicAuthPassword": "s3cret",
			"messagesToSend": "none", "detailedMessagesToSend": "none"}
		if diff := cmp.Diff(con, s.ConsumerInputs); diff != "" {
			t.Errorf("%s consumer inputs (-want +got):\n%s", ev, diff)
		}
	}

	// Again: one query, nothing changed.
	before := e.fake.RequestCount("")
	again, err := c.EnsureHooks(ctx, repo, spec)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.fake.RequestCount("") - before; n != 1 {
		t.Errorf("a second EnsureHooks made %d requests, want the one query", n)
	}
	if diff := cmp.Diff(hooks, again); diff != "" {
		t.Errorf("second EnsureHooks (-first +second):\n%s", diff)
	}
	got, err := c.Hooks(ctx, repo, hookURL)
	if err != nil || len(got) != 3 {
		t.Errorf("Hooks: %+v %v", got, err)
	}
	if other, err := c.Hooks(ctx, repo, "https://elsewhere.example/hook"); err != nil || len(other) != 0 {
		t.Errorf("Hooks of another URL: %+v %v", other, err)
	}
}

func TestEnsureHooksRepairs(t *testing.T) {
	e, c, repo := hookEnv(t)
	ctx := context.Background()
	spec := forge.HookSpec{URL: hookURL, Secret: "s3cret"}
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	subs := onHost(e, repo)
	e.fake.SetSubscriptionStatus(subs["git.push"].ID, "disabledBySystem")
	e.fake.SetSubscriptionStatus(subs["git.pullrequest.created"].ID, "onProbation")

	hooks, err := c.Hooks(ctx, repo, hookURL)
	if err != nil {
		t.Fatal(err)
	}
	if hooks[0].Healthy || hooks[0].Active || !strings.Contains(hooks[0].Note, "disabled the subscription after repeated failed deliveries") ||
		hooks[1].Healthy || !hooks[1].Active || !strings.Contains(hooks[1].Note, "probation") || !hooks[2].Healthy {
		t.Errorf("hooks of a disabled and a probation subscription: %+v", hooks)
	}

	// EnsureHooks re-enables both in place, sending the password again.
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	for ev, s := range onHost(e, repo) {
		if s.Status != "enabled" || s.ConsumerInputs["basicAuthPassword"] != "s3cret" {
			t.Errorf("%s after repair: %+v", ev, s)
		}
		if s.ID != subs[ev].ID {
			t.Errorf("%s was re-created (%s → %s) instead of re-enabled", ev, subs[ev].ID, s.ID)
		}
	}
}

func TestEnsureHooksRemovesDuplicatesAndFixesFilters(t *testing.T) {
	e, c, repo := hookEnv(t, SettingPullRequestUpdates, PullRequestUpdatesAll)
	ctx := context.Background()
	spec := forge.HookSpec{URL: hookURL, Secret: "s3cret"}
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	if s := onHost(e, repo)["git.pullrequest.updated"]; s.PublisherInputs["notificationType"] != "" {
		t.Errorf(`with pull_request_updates "all", updates are filtered: %+v`, s.PublisherInputs)
	}

	// The same integration switched to "push": the filter is added in place.
	push := e.open(e.integration(e.fake.IssuePAT(azurefake.PAT{User: "alice@example.com"})))
	if _, err := push.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	if s := onHost(e, repo)["git.pullrequest.updated"]; s.PublisherInputs["notificationType"] != "PushNotification" {
		t.Errorf("filter not added: %+v", s.PublisherInputs)
	}

	// A duplicate (two subscriptions for git.push to the same URL) is removed.
	dup, err := push.do(ctx, request{op: "duplicate", method: "POST", path: "/_apis/hooks/subscriptions",
		body: push.desired(hookTarget{repo: repo, projectID: repo.Extra[ExtraProjectID], url: hookURL, user: "forgeway", password: "s3cret"}, "git.push")})
	if err != nil || dup.status != 200 {
		t.Fatalf("create a duplicate: %v", err)
	}
	if len(e.fake.Subscriptions(repo.FullName)) != 4 {
		t.Fatal("no duplicate to remove")
	}
	if _, err := push.EnsureHooks(ctx, repo, spec); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.Subscriptions(repo.FullName)); n != 3 {
		t.Errorf("%d subscriptions after EnsureHooks, want 3", n)
	}
}

func TestEnsureHooksOptions(t *testing.T) {
	e, c, repo := hookEnv(t, SettingWebhookHeader, "X-Forgeway-Token", SettingWebhookUser, "svc")
	ctx := context.Background()
	if _, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: hookURL, Secret: "s3cret", InsecureSkipTLS: true}); err != nil {
		t.Fatal(err)
	}
	for ev, s := range onHost(e, repo) {
		ci := s.ConsumerInputs
		if ci["basicAuthUsername"] != "svc" || ci["acceptUntrustedCerts"] != "true" ||
			ci["httpHeaders"] != "X-Forgeway-Token:"+adowebhook.HeaderToken("s3cret") || strings.Contains(ci["httpHeaders"], "s3cret") {
			t.Errorf("%s consumer inputs %v", ev, ci)
		}
	}
	// An explicit basic-auth user and password win over the settings and the secret.
	if _, err := c.RotateHookSecret(ctx, repo, forge.HookSpec{URL: hookURL, Secret: "x", BasicAuthUser: "other", BasicAuthPassword: "pw"}); err != nil {
		t.Fatal(err)
	}
	if s := onHost(e, repo)["git.push"]; s.ConsumerInputs["basicAuthUsername"] != "other" || s.ConsumerInputs["basicAuthPassword"] != "pw" {
		t.Errorf("explicit credentials: %v", s.ConsumerInputs)
	}
}

func TestEnsureHooksFindsTheProject(t *testing.T) {
	e, c, repo := hookEnv(t)
	// A catalog entry without the project id (only the group): the repository is read once.
	bare := forge.Repository{HostID: repo.HostID, FullName: repo.FullName, Group: repo.Group}
	if _, err := c.EnsureHooks(context.Background(), bare, forge.HookSpec{URL: hookURL, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	if s := onHost(e, repo)["git.push"]; s.PublisherInputs["projectId"] != repo.Extra[ExtraProjectID] {
		t.Errorf("project id %v", s.PublisherInputs)
	}
	if e.recorder.count("/_apis/git/repositories/"+repo.HostID) != 1 {
		t.Errorf("requests %v", e.recorder.sent())
	}
}

func TestEnsureHooksRefuses(t *testing.T) {
	e, c, repo := hookEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		spec forge.HookSpec
		want string
	}{
		{forge.HookSpec{Secret: "s"}, "no delivery URL"},
		{forge.HookSpec{URL: hookURL}, "no webhook secret"},
		{forge.HookSpec{URL: hookURL, Secret: "two words"}, "without spaces"},
	} {
		if _, err := c.EnsureHooks(ctx, repo, tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("EnsureHooks(%+v): %v, want %q", tc.spec, err, tc.want)
		}
	}
	if _, err := c.EnsureHooks(ctx, forge.Repository{FullName: "Fiber/app", Group: "Fiber"}, forge.HookSpec{URL: hookURL, Secret: "s"}); err == nil {
		t.Error("EnsureHooks of a repository without id succeeded")
	}

	// A token owner without "Edit subscriptions".
	e.fake.AddUser(azurefake.User{UniqueName: "bob@example.com"})
	bob := e.open(e.integration(e.fake.IssuePAT(azurefake.PAT{User: "bob@example.com"})))
	_, err := bob.EnsureHooks(ctx, repo, forge.HookSpec{URL: hookURL, Secret: "s"})
	if !errors.Is(err, forge.ErrForbidden) || !strings.Contains(err.Error(), "Edit subscriptions") {
		t.Errorf("without Edit subscriptions: %v", err)
	}
}

func TestRotateAndRemoveHooks(t *testing.T) {
	e, c, repo := hookEnv(t)
	ctx := context.Background()
	first, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: hookURL, Secret: "old"})
	if err != nil {
		t.Fatal(err)
	}
	// EnsureHooks cannot see the password (Azure DevOps masks it): it leaves it.
	if _, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: hookURL, Secret: "new"}); err != nil {
		t.Fatal(err)
	}
	if s := onHost(e, repo)["git.push"]; s.ConsumerInputs["basicAuthPassword"] != "old" {
		t.Errorf("EnsureHooks changed the password: %v", s.ConsumerInputs)
	}
	rotated, err := c.RotateHookSecret(ctx, repo, forge.HookSpec{URL: hookURL, Secret: "new"})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{"git.push", "git.pullrequest.created", "git.pullrequest.updated"} {
		if got := onHost(e, repo)[s]; got.ConsumerInputs["basicAuthPassword"] != "new" || rotated[i].ID != first[i].ID {
			t.Errorf("%s after rotation: %+v", s, got)
		}
	}
	if err := c.RotateIntegrationHook(ctx, forge.HookSpec{URL: hookURL, Secret: "new"}); err != nil {
		t.Errorf("RotateIntegrationHook: %v", err)
	}

	// Another integration's subscription to the same repository stays.
	if _, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: "https://other.example/hook", Secret: "o"}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveHooks(ctx, repo, hookURL); err != nil {
		t.Fatal(err)
	}
	left := e.fake.Subscriptions(repo.FullName)
	if len(left) != 3 || left[0].ConsumerInputs["url"] != "https://other.example/hook" {
		t.Errorf("after RemoveHooks: %+v", left)
	}
	if err := c.RemoveHooks(ctx, repo, hookURL); err != nil {
		t.Errorf("RemoveHooks again: %v", err)
	}

	// A subscription someone deletes between the query and the delete is not an error; a
	// refused delete is.
	hooks, _ := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: hookURL, Secret: "new"})
	e.fake.FailNext("/_apis/hooks/subscriptions/"+hooks[0].ID, 404, nil)
	e.fake.FailNext("/_apis/hooks/subscriptions/"+hooks[1].ID, 403, nil)
	if err := c.RemoveHooks(ctx, repo, hookURL); !errors.Is(err, forge.ErrForbidden) {
		t.Errorf("RemoveHooks with a refused delete: %v", err)
	}
	if err := c.RemoveHooks(ctx, repo, hookURL); err != nil {
		t.Errorf("RemoveHooks after: %v", err)
	}
}
