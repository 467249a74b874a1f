package bitbucketdc_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bitbucketfake"
)

func checkNamed(t *testing.T, checks []forge.Check, name string) forge.Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, checks)
	return forge.Check{}
}

func names(checks []forge.Check) []string {
	var out []string
	for _, c := range checks {
		out = append(out, c.Name)
	}
	return out
}

func TestDiagnoseHealthy(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{})
	tok := e.adminToken("alice", "PRJ")
	e.fake.AddRepositories("PRJ", 3)
	checks := e.open(tok).Diagnose(context.Background())
	want := []string{"Bitbucket reachable", "Bitbucket version", "Bitbucket token", "Repositories listable", "Repository admin permission"}
	if strings.Join(names(checks), "|") != strings.Join(want, "|") {
		t.Fatalf("checks %v, want %v", names(checks), want)
	}
	for _, c := range checks {
		if !c.OK || c.Warning {
			t.Errorf("check %+v", c)
		}
		noToken(t, c.Detail+c.Hint, tok)
	}
	if v := checkNamed(t, checks, "Bitbucket version"); v.Detail != "Bitbucket 9.2.0" {
		t.Errorf("version check %+v", v)
	}
	if c := checkNamed(t, checks, "Bitbucket token"); c.Detail != "authenticated as alice" {
		t.Errorf("token check %+v", c)
	}
	if c := checkNamed(t, checks, "Repositories listable"); c.Detail != "3 repositories readable" {
		t.Errorf("listing check %+v", c)
	}
}

func TestDiagnoseFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("revoked token", func(t *testing.T) {
		e := newEnv(t, bitbucketfake.Options{})
		tok := e.adminToken("alice", "PRJ")
		e.fake.RevokeToken(tok)
		checks := e.open(tok).Diagnose(ctx)
		c := checkNamed(t, checks, "Bitbucket token")
		if c.OK || !strings.Contains(c.Hint, "wrong, expired or revoked") || !strings.Contains(c.Hint, "HTTP access tokens") || len(checks) != 3 {
			t.Errorf("checks %+v", checks)
		}
		for _, c := range checks {
			noToken(t, c.Detail+c.Hint, tok)
		}
	})
	t.Run("missing Repository admin", func(t *testing.T) {
		e := newEnv(t, bitbucketfake.Options{})
		e.fake.AddRepositories("PRJ", 2)
		tok := e.fake.IssueToken(bitbucketfake.Token{Project: "PRJ", ProjectPermission: "PROJECT_READ", RepoPermission: "REPO_WRITE"})
		checks := e.open(tok).Diagnose(ctx)
		c := checkNamed(t, checks, "Repository admin permission")
		if c.OK || !strings.Contains(c.Hint, `"Repository admin"`) {
			t.Errorf("admin check %+v", c)
		}
		if tc := checkNamed(t, checks, "Bitbucket token"); !tc.OK || !strings.HasPrefix(tc.Detail, "authenticated as bot-prj") {
			t.Errorf("token check %+v", tc)
		}
	})
	t.Run("token reads nothing", func(t *testing.T) {
		e := newEnv(t, bitbucketfake.Options{})
		e.fake.AddRepositories("OTHER", 2)
		e.fake.AddProject(bitbucketfake.Project{Key: "EMPTY"})
		tok := e.fake.IssueToken(bitbucketfake.Token{Project: "EMPTY", ProjectPermission: "PROJECT_READ", RepoPermission: "REPO_ADMIN"})
		checks := e.open(tok).Diagnose(ctx)
		c := checkNamed(t, checks, "Repositories listable")
		if !c.OK || !c.Warning || !strings.Contains(c.Hint, "project token sees its own project only") || len(checks) != 4 {
			t.Errorf("checks %+v", checks)
		}
	})
	t.Run("old Bitbucket", func(t *testing.T) {
		e := newEnv(t, bitbucketfake.Options{Version: "7.6.1"})
		tok := e.adminToken("alice", "PRJ")
		checks := e.open(tok).Diagnose(ctx)
		c := checkNamed(t, checks, "Bitbucket version")
		if c.OK || !strings.Contains(c.Hint, "upgrade") || !strings.Contains(c.Hint, bitbucketdc.MinVersion) || len(checks) != 2 {
			t.Errorf("checks %+v", checks)
		}
	})
	t.Run("anonymous access off", func(t *testing.T) {
		e := newEnv(t, bitbucketfake.Options{NoAnonymous: true, Version: "8.19.4"})
		tok := e.adminToken("alice", "PRJ")
		e.fake.AddRepositories("PRJ", 1)
		checks := e.open(tok).Diagnose(ctx)
		if c := checkNamed(t, checks, "Bitbucket version"); !c.OK || c.Detail != "Bitbucket 8.19.4" || len(checks) != 5 {
			t.Errorf("checks %+v", checks)
		}
	})
	t.Run("Bitbucket failing", func(t *testing.T) {
		e := newEnv(t, bitbucketfake.Options{})
		tok := e.adminToken("alice", "PRJ")
		e.fake.FailNext("/application-properties", http.StatusInternalServerError, nil)
		checks := e.open(tok).Diagnose(ctx)
		if len(checks) != 1 || checks[0].OK || !strings.Contains(checks[0].Hint, "server error") {
			t.Errorf("checks %+v", checks)
		}
	})
}

func TestDiagnoseUnreachable(t *testing.T) {
	ctx := context.Background()
	const tok = "bbdc-token-value"
	diagnose := func(t *testing.T, base string, client *http.Client) forge.Check {
		t.Helper()
		in := forge.Integration{BaseURL: base, Secrets: map[string]string{bitbucketdc.SecretToken: tok}}
		c, err := bitbucketdc.New().Open(ctx, in, forge.Env{HTTP: client})
		if err != nil {
			t.Fatal(err)
		}
		checks := c.Diagnose(ctx)
		if len(checks) != 1 || checks[0].OK || checks[0].Hint == "" {
			t.Fatalf("checks %+v", checks)
		}
		noToken(t, checks[0].Detail+checks[0].Hint, tok)
		return checks[0]
	}

	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if ch := diagnose(t, "http://"+addr, &http.Client{}); !strings.HasPrefix(ch.Detail, "connection:") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("dns", func(t *testing.T) {
		// The resolver's answer is injected: the test must not depend on this machine's DNS.
		client := &http.Client{Transport: &http.Transport{DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
		}}}
		if ch := diagnose(t, "https://bitbucket.forgeway-test.invalid", client); !strings.HasPrefix(ch.Detail, "DNS:") || !strings.Contains(ch.Hint, "resolve") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		defer stall.Close()
		if ch := diagnose(t, stall.URL, &http.Client{Timeout: 200 * time.Millisecond}); !strings.HasPrefix(ch.Detail, "timeout:") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
		defer tlsSrv.Close()
		if ch := diagnose(t, tlsSrv.URL, &http.Client{Timeout: 5 * time.Second}); !strings.HasPrefix(ch.Detail, "TLS:") || !strings.Contains(ch.Hint, "TLS trust") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("plain HTTP on a TLS URL", func(t *testing.T) {
		plain := httptest.NewServer(http.NotFoundHandler())
		defer plain.Close()
		if ch := diagnose(t, strings.Replace(plain.URL, "http://", "https://", 1), &http.Client{Timeout: 5 * time.Second}); !strings.HasPrefix(ch.Detail, "TLS:") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("not Bitbucket", func(t *testing.T) {
		other := httptest.NewServer(http.NotFoundHandler())
		defer other.Close()
		if ch := diagnose(t, other.URL, other.Client()); !strings.Contains(ch.Hint, "not Bitbucket's REST API") || !strings.Contains(ch.Hint, "context path") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("answers but not as Bitbucket", func(t *testing.T) {
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>welcome</html>")) }))
		defer other.Close()
		if ch := diagnose(t, other.URL, other.Client()); !strings.Contains(ch.Hint, "not as Bitbucket does") {
			t.Errorf("%+v", ch)
		}
	})
}
