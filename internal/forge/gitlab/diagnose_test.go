package gitlab_test

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitlab/gitlabfake"
)

func checkNames(cs []forge.Check) string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

func failed(cs []forge.Check) []forge.Check {
	var out []forge.Check
	for _, c := range cs {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

func TestDiagnoseOK(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, tok := e.tokenIntegration("ana")
	e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	checks := e.open(in).Diagnose(context.Background())
	if got := checkNames(checks); got != "GitLab API reachable, GitLab token, GitLab token scopes, GitLab version, Projects listable, Rate-limit budget" {
		t.Fatalf("checks: %s", got)
	}
	for _, c := range checks {
		if !c.OK || c.Warning || c.Detail == "" {
			t.Errorf("check %+v", c)
		}
		if strings.Contains(c.Detail+c.Hint, tok) {
			t.Errorf("check %s reveals the token", c.Name)
		}
	}
	if !strings.Contains(checks[1].Detail, `authenticated as ana with the token "forgeway"`) || checks[3].Detail != "GitLab 17.5.0-ee" ||
		checks[4].Detail != "1 projects visible" || checks[2].Detail != "scopes: api" {
		t.Errorf("details: %+v", checks)
	}
}

func TestDiagnoseCredential(t *testing.T) {
	day := 24 * time.Hour
	cases := []struct {
		name    string
		scopes  []string
		expires time.Duration // from now; 0: never
		revoke  bool
		failed  string // the failing check, "" when all pass
		warned  string // the check with a warning
		detail  string
		hint    string
	}{
		{name: "expires in a week", expires: 7 * day, warned: "GitLab token", detail: "expires 2026-11-27", hint: "expires within two weeks"},
		{name: "expires in a month", expires: 30 * day},
		{name: "revoked", revoke: true, failed: "GitLab token", detail: "Token was revoked", hint: "new access token"},
		{name: "expired", expires: -day, failed: "GitLab token", detail: "Token has expired", hint: "wrong, expired or revoked"},
		{name: "read_api only", scopes: []string{"read_api", "read_repository"}, failed: "GitLab token scopes", detail: "scopes: read_api, read_repository", hint: `lacks the "api" scope`},
		{name: "read_user only", scopes: []string{"read_user"}, failed: "GitLab token scopes", detail: "scopes: read_user", hint: `lacks the "api" scope`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, gitlabfake.Options{})
			var exp time.Time
			if tc.expires != 0 {
				exp = e.clock.Now().Add(tc.expires)
			}
			tok := e.fake.AddToken(gitlabfake.Token{Username: "ana", Scopes: tc.scopes, Expires: exp})
			if tc.revoke {
				e.fake.RevokeToken(tok)
			}
			e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
			c := e.open(forge.Integration{BaseURL: e.fake.URL, Secrets: map[string]string{"token": tok}})
			checks := c.Diagnose(context.Background())
			bad := failed(checks)
			if tc.failed == "" {
				if len(bad) != 0 {
					t.Fatalf("failed checks: %+v", bad)
				}
			} else if len(bad) != 1 || bad[0].Name != tc.failed || !strings.Contains(bad[0].Detail, tc.detail) || !strings.Contains(bad[0].Hint, tc.hint) {
				t.Fatalf("checks %+v, want %s failed saying %q and %q", checks, tc.failed, tc.detail, tc.hint)
			}
			for _, c := range checks {
				if c.Warning && (c.Name != tc.warned || !strings.Contains(c.Detail, tc.detail) || !strings.Contains(c.Hint, tc.hint)) {
					t.Errorf("unexpected warning %+v", c)
				}
				if strings.Contains(c.Detail+c.Hint, tok) {
					t.Errorf("check %s reveals the token", c.Name)
				}
			}
			if tc.warned != "" && !checks[1].Warning {
				t.Errorf("no warning: %+v", checks)
			}
		})
	}
}

func TestDiagnoseOldVersion(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{Version: "16.7.3-ee"})
	in, _ := e.tokenIntegration("ana")
	bad := failed(e.open(in).Diagnose(context.Background()))
	if len(bad) != 1 || bad[0].Name != "GitLab version" || !strings.Contains(bad[0].Detail, "GitLab 16.7.3-ee is older than 16.8") ||
		!strings.Contains(bad[0].Hint, "upgrade GitLab to 16.8") {
		t.Fatalf("failed checks %+v", bad)
	}
	e2 := newEnv(t, gitlabfake.Options{Version: "16.8.0"})
	in2, _ := e2.tokenIntegration("ana")
	if bad := failed(e2.open(in2).Diagnose(context.Background())); len(bad) != 0 {
		t.Fatalf("16.8.0 refused: %+v", bad)
	}
}

func TestDiagnoseNoProjects(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.tokenIntegration("ana")
	checks := e.open(in).Diagnose(context.Background())
	list := checks[4]
	if list.Name != "Projects listable" || !list.OK || !list.Warning || !strings.Contains(list.Hint, "member of no project") {
		t.Fatalf("listing check %+v", list)
	}
}

func TestDiagnoseOAuth(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.oauthIntegration("ana")
	checks := e.open(in).Diagnose(context.Background())
	if bad := failed(checks); len(bad) != 0 || checks[1].Name != "GitLab OAuth token" || checks[2].Detail != "scopes: api" {
		t.Fatalf("checks %+v", checks)
	}
	// A refresh token GitLab refuses, once the access token must be renewed.
	in.Secrets["refresh_token"] = "spent"
	e.clock.Add(3 * time.Hour)
	checks = e.open(in).Diagnose(context.Background())
	bad := failed(checks)
	if len(bad) != 1 || bad[0].Name != "GitLab OAuth token" || !strings.Contains(bad[0].Hint, "authorize the OAuth application again") {
		t.Fatalf("checks %+v", checks)
	}
}

func TestDiagnoseUnreachable(t *testing.T) {
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return "http://" + ln.Addr().String()
	}()
	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	fail500 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	t.Cleanup(fail500.Close)
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) }) // runs first: Close waits for the handler

	cases := []struct {
		name, base, detail, hint string
	}{
		{"DNS", "https://gitlab.forgeway.invalid", "DNS: cannot resolve gitlab.forgeway.invalid", "resolve"},
		{"refused", closed, "connection: cannot connect to", "that GitLab is running"},
		{"TLS trust", tlsSrv.URL, "signed by an authority Forgeway does not trust", "TLS trust"},
		{"plain HTTP on HTTPS", strings.Replace(plain.URL, "http://", "https://", 1), "did not answer TLS", "use http://"},
		{"not GitLab", plain.URL + "/somewhere", "answered 404", "the address you open GitLab at"},
		{"server error", fail500.URL, "answered 500", "server error"},
		{"timeout", slow.URL, "did not answer in time", "firewall"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := gitlabOpen(forge.Integration{BaseURL: tc.base, Secrets: map[string]string{"token": "glpat-secret"}},
				forge.Env{HTTP: &http.Client{Timeout: 300 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			checks := c.Diagnose(context.Background())
			if len(checks) != 1 || checks[0].OK || !strings.Contains(checks[0].Detail, tc.detail) || !strings.Contains(checks[0].Hint, tc.hint) {
				t.Fatalf("checks %+v, want one failed saying %q and %q", checks, tc.detail, tc.hint)
			}
			if strings.Contains(checks[0].Detail+checks[0].Hint, "glpat-secret") {
				t.Fatal("the token is in the diagnosis")
			}
		})
	}
}
