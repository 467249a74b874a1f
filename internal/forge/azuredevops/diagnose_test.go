package azuredevops

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/azurefake"
)

func diagnose(c *Client) map[string]forge.Check {
	out := map[string]forge.Check{}
	for _, ch := range c.Diagnose(context.Background()) {
		out[ch.Name] = ch
	}
	return out
}

// failed returns the one failed check, failing the test unless there is exactly one, with a
// detail and a hint.
func failed(t *testing.T, checks []forge.Check) forge.Check {
	t.Helper()
	var bad []forge.Check
	for _, c := range checks {
		if !c.OK {
			bad = append(bad, c)
		}
	}
	if len(bad) != 1 {
		t.Fatalf("%d failed checks, want 1: %+v", len(bad), checks)
	}
	if bad[0].Detail == "" || bad[0].Hint == "" {
		t.Errorf("failed check without detail or hint: %+v", bad[0])
	}
	return bad[0]
}

func TestDiagnoseHealthy(t *testing.T) {
	for _, onPrem := range []bool{false, true} {
		e := newEnv(t, azurefake.Options{OnPremises: onPrem})
		tok := e.admin()
		e.fake.AddRepositories("Fiber", 2)
		checks := e.open(e.integration(tok)).Diagnose(context.Background())
		var names []string
		for _, c := range checks {
			names = append(names, c.Name)
			if !c.OK || c.Warning {
				t.Errorf("check %+v", c)
			}
		}
		if strings.Join(names, "|") != strings.Join([]string{checkReachable, checkToken, checkVersion, checkProjects, checkCode, checkHooks, checkBudget}, "|") {
			t.Errorf("checks %v", names)
		}
		where := "Azure DevOps Services"
		if onPrem {
			where = "Azure DevOps Server"
		}
		if d := checks[1].Detail; d != "authenticated as Alice Admin on "+where {
			t.Errorf("token detail %q", d)
		}
		if d := checks[4].Detail; !strings.HasPrefix(d, "2 repositories in project Fiber") {
			t.Errorf("code detail %q", d)
		}
	}
}

func TestDiagnoseCredentialAndScopes(t *testing.T) {
	e := newEnv(t, azurefake.Options{})
	tok := e.admin()
	e.fake.AddRepositories("Fiber", 1)
	tests := []struct {
		name  string
		token string
		check string
		hint  string
	}{
		{"revoked", func() string {
			t := e.fake.IssuePAT(azurefake.PAT{User: "alice@example.com"})
			e.fake.RevokePAT(t)
			return t
		}(), checkToken, "wrong, expired or revoked"},
		{"expired", e.fake.IssuePAT(azurefake.PAT{User: "alice@example.com", Expires: e.clock.Now().Add(-time.Hour)}), checkToken, "Personal access tokens"},
		{"no Project and Team scope", e.fake.IssuePAT(azurefake.PAT{User: "alice@example.com", Scopes: []string{azurefake.ScopeCodeWrite}}), checkProjects, `Project and Team "Read"`},
		{"no Code scope", e.fake.IssuePAT(azurefake.PAT{User: "alice@example.com", Scopes: []string{azurefake.ScopeProject}}), checkCode, `Code "Read"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := e.open(e.integration(tc.token))
			bad := failed(t, c.Diagnose(context.Background()))
			if bad.Name != tc.check || !strings.Contains(bad.Hint, tc.hint) {
				t.Errorf("failed check %+v, want %s with %q", bad, tc.check, tc.hint)
			}
			if strings.Contains(bad.Detail+bad.Hint, tc.token) {
				t.Errorf("check reveals the token: %+v", bad)
			}
		})
	}

	t.Run("projects setting names a missing project", func(t *testing.T) {
		bad := failed(t, e.open(e.integration(tok, SettingProjects, "Gone")).Diagnose(context.Background()))
		if bad.Name != checkCode || !strings.Contains(bad.Hint, `"Gone"`) {
			t.Errorf("failed check %+v", bad)
		}
	})
	t.Run("service hooks refused", func(t *testing.T) {
		e.fake.FailNext("/_apis/hooks/subscriptionsquery", http.StatusForbidden, nil)
		bad := failed(t, e.open(e.integration(tok)).Diagnose(context.Background()))
		if bad.Name != checkHooks || !strings.Contains(bad.Hint, "Edit subscriptions") {
			t.Errorf("failed check %+v", bad)
		}
	})
	t.Run("throttled", func(t *testing.T) {
		e.fake.FailNext("/_apis/projects", http.StatusTooManyRequests, http.Header{"Retry-After": {"60"}})
		bad := failed(t, e.open(e.integration(tok)).Diagnose(context.Background()))
		if bad.Name != checkProjects || !strings.Contains(bad.Hint, "throttling") || !strings.Contains(bad.Hint, e.clock.Now().Add(time.Minute).Format(time.RFC3339)) {
			t.Errorf("failed check %+v", bad)
		}
	})
	t.Run("server error while listing", func(t *testing.T) {
		e.fake.FailNext("/Fiber/_apis/git/repositories", http.StatusInternalServerError, nil)
		bad := failed(t, e.open(e.integration(tok)).Diagnose(context.Background()))
		if bad.Name != checkCode || !strings.Contains(bad.Hint, "try again") {
			t.Errorf("failed check %+v", bad)
		}
	})
	t.Run("no project visible", func(t *testing.T) {
		f := newEnv(t, azurefake.Options{})
		checks := diagnose(f.open(f.integration(f.admin())))
		if c := checks[checkProjects]; !c.OK || !c.Warning || c.Hint == "" {
			t.Errorf("projects check %+v", c)
		}
		if c := checks[checkCode]; !c.OK || !c.Warning {
			t.Errorf("code check %+v", c)
		}
	})
}

func TestDiagnoseOldServer(t *testing.T) {
	e := newEnv(t, azurefake.Options{OnPremises: true, APIVersion: "7.0"})
	bad := failed(t, e.open(e.integration(e.admin())).Diagnose(context.Background()))
	if bad.Name != checkToken || !strings.Contains(bad.Detail, "out of range") || !strings.Contains(bad.Hint, "REST API 7.1") {
		t.Errorf("old server: %+v", bad)
	}
}

func TestDiagnoseUnreachable(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	e := newEnv(t, azurefake.Options{})
	tok := e.admin()

	open := func(base string, client *http.Client) *Client {
		c, err := New().Open(context.Background(), forge.Integration{BaseURL: base, Secrets: map[string]string{SecretToken: tok}}, forge.Env{HTTP: client})
		if err != nil {
			t.Fatal(err)
		}
		return c.(*Client)
	}
	tests := []struct {
		name   string
		c      *Client
		detail string
		hint   string
	}{
		{"DNS", open("https://no-such-host.invalid/org", &http.Client{Timeout: 5 * time.Second}), "DNS: cannot resolve no-such-host.invalid", "resolve"},
		{"refused", open(closed.URL+"/org", &http.Client{}), "connection: cannot connect", "firewalls"},
		{"TLS trust", open(tlsSrv.URL+"/org", &http.Client{}), "signed by an authority Forgeway does not trust", "ca_bundle"},
		{"TLS to a plain server", open(strings.Replace(e.fake.URL, "http:", "https:", 1)+"/fabrikam", &http.Client{}), "did not answer TLS", "http://"},
		{"no organization there", open(e.fake.URL+"/nobody", e.fake.Client()), "answered 404", "no Azure DevOps organization"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checks := tc.c.Diagnose(context.Background())
			if len(checks) != 1 || checks[0].Name != checkReachable {
				t.Fatalf("checks %+v", checks)
			}
			bad := failed(t, checks)
			if !strings.Contains(bad.Detail, tc.detail) || !strings.Contains(bad.Hint, tc.hint) {
				t.Errorf("check %+v, want %q / %q", bad, tc.detail, tc.hint)
			}
		})
	}

	t.Run("timeout", func(t *testing.T) {
		e.fake.HangNext("/_apis/connectionData")
		c := open(e.fake.BaseURL, &http.Client{Timeout: 200 * time.Millisecond})
		bad := failed(t, c.Diagnose(context.Background()))
		if !strings.HasPrefix(bad.Detail, "timeout:") {
			t.Errorf("check %+v", bad)
		}
	})
	t.Run("server error", func(t *testing.T) {
		e.fake.FailNext("/_apis/connectionData", http.StatusInternalServerError, nil)
		bad := failed(t, open(e.fake.BaseURL, e.fake.Client()).Diagnose(context.Background()))
		if bad.Name != checkReachable || !strings.Contains(bad.Hint, "server error") {
			t.Errorf("check %+v", bad)
		}
	})
}

func TestDiagnoseRateLimit(t *testing.T) {
	e := newEnv(t, azurefake.Options{RateLimit: 22})
	tok := e.admin()
	e.fake.AddRepositories("Fiber", 1)
	c := e.open(e.integration(tok))
	for range 8 {
		if _, err := collect(t, c); err != nil {
			t.Fatal(err)
		}
	}
	ch := diagnose(c)[checkBudget]
	if !ch.OK || !ch.Warning || !strings.Contains(ch.Detail, "2 of 22") || ch.Hint == "" {
		t.Errorf("budget check %+v", ch)
	}
}
