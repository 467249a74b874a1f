package github

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
)

// TestErrorsCarryNoSecret drives failures of every kind and checks that no error text
// holds a credential: tokens, the private key, the client secret, a JWT, a code.
func TestErrorsCarryNoSecret(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	ctx := context.Background()
	app, a := e.appIntegration()
	tokIn, tok := e.tokenIntegration("alice")
	e.fake.AddRepository(githubfake.Repo{FullName: "alice/r", Private: true})
	ac, tc := e.open(app), e.open(tokIn)
	repo := forge.Repository{FullName: "alice/r"}
	spec := forge.HookSpec{URL: "https://f.example/h", Secret: "hook-secret-value"}
	user := &forge.UserCredential{Login: "alice", Token: "ghu_actingpersontoken", RefreshToken: "ghr_refreshvalue"}

	var errs []error
	note := func(_ any, err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	// App credentials the host refuses, and calls an App cannot make on a repository it does
	// not reach.
	bad := app
	bad.Settings = map[string]string{SettingAuth: AuthApp, SettingAppID: "424242", SettingClientID: a.ClientID}
	bc := e.open(bad)
	note(bc.Installations(ctx))
	note(nil, bc.Repositories(ctx, func([]forge.Repository) error { return nil }))
	note(ac.Branches(ctx, repo))
	note(ac.GitAuth(ctx, forge.Repository{FullName: "alice/r", Installation: "77"}, nil, time.Minute))
	// A revoked token, a host error, a refused acting person, a rate limit.
	note(tc.EnsureHooks(ctx, forge.Repository{FullName: "alice/none"}, spec))
	note(tc.CreatePullRequest(ctx, repo, forge.NewPullRequest{Title: "t", Source: "x", Target: "main"}, user))
	note(tc.CreateBranch(ctx, repo, "b", strings.Repeat("0", 40), nil))
	e.fake.FailNext("/user/repos", http.StatusForbidden, http.Header{"Retry-After": {"1"}})
	note(nil, tc.Repositories(ctx, func([]forge.Repository) error { return nil }))
	e.fake.RevokeToken(tok)
	note(tc.Branches(ctx, repo))
	// OAuth and manifest flows with bad input.
	d := New().(Driver)
	wrongSecret := app
	wrongSecret.Secrets = map[string]string{SecretPrivateKey: app.Secrets[SecretPrivateKey], SecretClientSecret: "not-the-client-secret"}
	note(d.ExchangeCode(ctx, wrongSecret, e.forgeEnv(), "code-value-123"))
	note(d.ExchangeCode(ctx, app, e.forgeEnv(), "code-value-123"))
	note(ac.RefreshUserToken(ctx, *user))
	_, _, err := d.ConvertManifest(ctx, app, e.forgeEnv(), "manifest-code-123")
	note(nil, err)
	// The network is gone.
	off := forge.Integration{BaseURL: "http://127.0.0.1:1", Settings: tokIn.Settings, Secrets: tokIn.Secrets}
	oc, err := New().Open(ctx, off, forge.Env{HTTP: &http.Client{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	note(oc.Branches(ctx, repo))

	if len(errs) != 14 {
		t.Fatalf("expected 14 failures, got %d: %v", len(errs), errs)
	}
	secrets := []string{tok, app.Secrets[SecretClientSecret], "not-the-client-secret", "hook-secret-value", "ghu_actingpersontoken",
		"ghr_refreshvalue", "code-value-123", "manifest-code-123", "eyJ", "PRIVATE KEY", "MII"}
	for _, err := range errs {
		msg := err.Error()
		for _, s := range secrets {
			if strings.Contains(msg, s) {
				t.Errorf("error %q contains a secret (%.6s…)", msg, s)
			}
		}
	}
}
