package github

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
)

func checkByName(checks []forge.Check, name string) (forge.Check, bool) {
	for _, c := range checks {
		if c.Name == name {
			return c, true
		}
	}
	return forge.Check{}, false
}

func TestDiagnoseApp(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	in, a := e.appIntegration()
	e.fake.AddOrg("acme")
	e.fake.AddRepositories("acme", 3)
	e.fake.AddInstallation(githubfake.Installation{AppID: a.ID, Account: "acme"})
	e.fake.AddInstallation(githubfake.Installation{AppID: a.ID, Account: "bob", Suspended: true})
	checks := e.open(in).Diagnose(context.Background())
	want := []string{"GitHub API reachable", "GitHub Enterprise Server version", "GitHub App credentials", "GitHub App installed", "Repositories listable", "Rate-limit budget"}
	if len(checks) != len(want) {
		t.Fatalf("checks %+v", checks)
	}
	for i, ch := range checks {
		if ch.Name != want[i] || !ch.OK {
			t.Errorf("check %d: %+v", i, ch)
		}
	}
	if inst := checks[3]; !inst.Warning || !strings.Contains(inst.Detail, "suspended on bob") {
		t.Errorf("installed check %+v", inst)
	}
	if list := checks[4]; list.Detail != "3 repositories visible" {
		t.Errorf("listing check %+v", list)
	}
	if v := checks[1]; v.Detail != "GitHub Enterprise Server 3.17.0" {
		t.Errorf("version check %+v", v)
	}
}

func TestDiagnoseFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("wrong app id", func(t *testing.T) {
		e := newEnv(t, githubfake.Options{})
		in, a := e.appIntegration()
		in.Settings[SettingAppID] = "999999"
		_ = a
		checks := e.open(in).Diagnose(ctx)
		ch, _ := checkByName(checks, "GitHub App credentials")
		if ch.OK || !strings.Contains(ch.Hint, "app_id") || len(checks) != 3 {
			t.Errorf("%+v", checks)
		}
	})
	t.Run("not installed", func(t *testing.T) {
		e := newEnv(t, githubfake.Options{})
		in, a := e.appIntegration()
		checks := e.open(in).Diagnose(ctx)
		ch, _ := checkByName(checks, "GitHub App installed")
		if ch.OK || !strings.Contains(ch.Hint, "/apps/"+a.Slug+"/installations/new") {
			t.Errorf("%+v", checks)
		}
	})
	t.Run("token scopes", func(t *testing.T) {
		e := newEnv(t, githubfake.Options{})
		tok := e.fake.IssuePAT(githubfake.PAT{Login: "alice", Scopes: []string{"repo", "read:org"}})
		in := forge.Integration{BaseURL: e.fake.URL, Settings: map[string]string{SettingAuth: AuthToken}, Secrets: map[string]string{SecretToken: tok}}
		checks := e.open(in).Diagnose(ctx)
		tc, _ := checkByName(checks, "GitHub token")
		sc, _ := checkByName(checks, "GitHub token scopes")
		if !tc.OK || tc.Detail != "authenticated as alice" || sc.OK || !strings.Contains(sc.Hint, "admin:repo_hook") || strings.Contains(sc.Hint, "repo and") {
			t.Errorf("%+v", checks)
		}
	})
	t.Run("fine-grained token expiring", func(t *testing.T) {
		e := newEnv(t, githubfake.Options{})
		tok := e.fake.IssuePAT(githubfake.PAT{Login: "alice", FineGrained: true})
		in := forge.Integration{BaseURL: e.fake.URL, Settings: map[string]string{SettingAuth: AuthToken}, Secrets: map[string]string{SecretToken: tok}}
		checks := e.open(in).Diagnose(ctx)
		sc, _ := checkByName(checks, "GitHub token scopes")
		if !sc.OK || !sc.Warning || !strings.Contains(sc.Hint, "Webhooks") {
			t.Errorf("%+v", checks)
		}
	})
	t.Run("revoked token", func(t *testing.T) {
		e := newEnv(t, githubfake.Options{})
		in, tok := e.tokenIntegration("alice")
		e.fake.RevokeToken(tok)
		checks := e.open(in).Diagnose(ctx)
		tc, _ := checkByName(checks, "GitHub token")
		if tc.OK || !strings.Contains(tc.Hint, "expired or revoked") || len(checks) != 3 {
			t.Errorf("%+v", checks)
		}
		for _, ch := range checks {
			if strings.Contains(ch.Detail+ch.Hint, tok) {
				t.Error("a check shows the token")
			}
		}
	})
	t.Run("old server", func(t *testing.T) {
		e := newEnv(t, githubfake.Options{Version: "3.9.1"})
		in, _ := e.tokenIntegration("alice")
		ch, _ := checkByName(e.open(in).Diagnose(ctx), "GitHub Enterprise Server version")
		if ch.OK || !strings.Contains(ch.Hint, "upgrade") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("budget nearly spent", func(t *testing.T) {
		e := newEnv(t, githubfake.Options{RateLimit: 100})
		in, _ := e.tokenIntegration("alice")
		c := e.open(in)
		for c.Budget().Remaining == 0 || c.Budget().Remaining > 9 {
			c.Diagnose(ctx)
		}
		ch, _ := checkByName(c.Diagnose(ctx), "Rate-limit budget")
		if !ch.OK || !ch.Warning || !strings.Contains(ch.Detail, "of 100 requests left") {
			t.Errorf("%+v", ch)
		}
	})
}

func TestDiagnoseUnreachable(t *testing.T) {
	ctx := context.Background()
	diagnose := func(t *testing.T, base string, client *http.Client) forge.Check {
		t.Helper()
		in := forge.Integration{BaseURL: base, Settings: map[string]string{SettingAuth: AuthToken}, Secrets: map[string]string{SecretToken: "ghp_secret"}}
		c, err := New().Open(ctx, in, forge.Env{HTTP: client})
		if err != nil {
			t.Fatal(err)
		}
		checks := c.Diagnose(ctx)
		if len(checks) != 1 || checks[0].OK {
			t.Fatalf("checks %+v", checks)
		}
		if strings.Contains(checks[0].Detail+checks[0].Hint, "ghp_secret") {
			t.Fatal("a check shows the token")
		}
		return checks[0]
	}

	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		ch := diagnose(t, "http://"+addr, http.DefaultClient)
		if !strings.HasPrefix(ch.Detail, "connection:") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("dns", func(t *testing.T) {
		ch := diagnose(t, "https://ghe.forgeway-test.invalid", &http.Client{Timeout: 5 * time.Second})
		if !strings.HasPrefix(ch.Detail, "DNS:") && !strings.HasPrefix(ch.Detail, "timeout:") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		defer stall.Close()
		ch := diagnose(t, stall.URL, &http.Client{Timeout: 200 * time.Millisecond})
		if !strings.HasPrefix(ch.Detail, "timeout:") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
		defer tlsSrv.Close()
		ch := diagnose(t, tlsSrv.URL, &http.Client{Timeout: 5 * time.Second})
		if !strings.HasPrefix(ch.Detail, "TLS:") || !strings.Contains(ch.Hint, "TLS trust") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("plain HTTP on a TLS URL", func(t *testing.T) {
		plain := httptest.NewServer(http.NotFoundHandler())
		defer plain.Close()
		ch := diagnose(t, strings.Replace(plain.URL, "http://", "https://", 1), &http.Client{Timeout: 5 * time.Second})
		if !strings.HasPrefix(ch.Detail, "TLS:") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("not a GitHub", func(t *testing.T) {
		other := httptest.NewServer(http.NotFoundHandler())
		defer other.Close()
		ch := diagnose(t, other.URL, other.Client())
		if !strings.Contains(ch.Hint, "not a GitHub API") {
			t.Errorf("%+v", ch)
		}
	})
}
