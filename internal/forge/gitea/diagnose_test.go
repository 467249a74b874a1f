package gitea_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitea"
	"github.com/forgeway/forgeway/internal/forge/gitea/giteafake"
)

func names(checks []forge.Check) []string {
	var out []string
	for _, c := range checks {
		out = append(out, c.Name)
	}
	return out
}

func TestDiagnoseHealthy(t *testing.T) {
	for _, tt := range []struct {
		name    string
		opts    giteafake.Options
		version string
	}{
		{"gitea", giteafake.Options{}, "Gitea 1.27.3"},
		{"forgejo", giteafake.Options{Forgejo: true}, "Forgejo 11.0.1 (compatible with Gitea 1.22.0)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts)
			tok := e.fake.IssueToken("alice", "write:repository", "read:user")
			e.fake.AddRepositories("alice", 3)
			checks := e.open(tok, nil).Diagnose(context.Background())
			want := []string{"Gitea API reachable", "Gitea version", "Gitea token", "Repositories listable", "Webhooks manageable"}
			if !slices.Equal(names(checks), want) {
				t.Fatalf("checks %+v", checks)
			}
			for _, ch := range checks {
				if !ch.OK || ch.Warning {
					t.Errorf("check %+v", ch)
				}
			}
			if checks[1].Detail != tt.version || checks[2].Detail != "authenticated as alice" || checks[3].Detail != "3 repositories visible" ||
				!strings.Contains(checks[4].Detail, "alice/repo-001") {
				t.Errorf("details %+v", checks)
			}
			// The webhook probe changed nothing.
			if hooks := e.fake.Hooks("alice/repo-001"); len(hooks) != 0 {
				t.Errorf("hooks %+v", hooks)
			}
		})
	}
}

func TestDiagnoseFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("revoked token", func(t *testing.T) {
		e := newEnv(t, giteafake.Options{})
		tok := e.fake.IssueToken("alice", "all")
		e.fake.RevokeToken(tok)
		checks := e.open(tok, nil).Diagnose(ctx)
		ch, _ := checkByName(checks, "Gitea token")
		if ch.OK || !strings.Contains(ch.Hint, "revoked") || !strings.Contains(ch.Hint, "Settings › Applications") || len(checks) != 3 {
			t.Errorf("%+v", checks)
		}
		for _, c := range checks {
			if strings.Contains(c.Detail+c.Hint, tok) {
				t.Error("a check shows the token")
			}
		}
	})
	t.Run("read:user missing", func(t *testing.T) {
		e := newEnv(t, giteafake.Options{})
		checks := e.open(e.fake.IssueToken("alice", "write:repository"), nil).Diagnose(ctx)
		ch, _ := checkByName(checks, "Gitea token")
		if ch.OK || !strings.Contains(ch.Hint, "lacks read:user") {
			t.Errorf("%+v", checks)
		}
	})
	t.Run("read:repository missing", func(t *testing.T) {
		e := newEnv(t, giteafake.Options{})
		checks := e.open(e.fake.IssueToken("alice", "read:user"), nil).Diagnose(ctx)
		ch, _ := checkByName(checks, "Repositories listable")
		if ch.OK || !strings.Contains(ch.Hint, "lacks read:repository") || len(checks) != 4 {
			t.Errorf("%+v", checks)
		}
	})
	t.Run("write:repository missing", func(t *testing.T) {
		e := newEnv(t, giteafake.Options{})
		e.fake.AddRepositories("alice", 1)
		checks := e.open(e.fake.IssueToken("alice", "read:repository", "read:user"), nil).Diagnose(ctx)
		ch, _ := checkByName(checks, "Webhooks manageable")
		if ch.OK || !strings.Contains(ch.Detail, "write:repository") || !strings.Contains(ch.Hint, `"Read and Write"`) {
			t.Errorf("%+v", checks)
		}
	})
	t.Run("not an administrator", func(t *testing.T) {
		e := newEnv(t, giteafake.Options{})
		e.fake.AddRepository(giteafake.Repo{FullName: "bob/r"})
		e.fake.AddCollaborator("bob/r", "alice", "write")
		checks := e.open(e.fake.IssueToken("alice", "all"), nil).Diagnose(ctx)
		ch, _ := checkByName(checks, "Webhooks manageable")
		if !ch.OK || !ch.Warning || !strings.Contains(ch.Hint, "administrator") {
			t.Errorf("%+v", checks)
		}
	})
	t.Run("no repository", func(t *testing.T) {
		e := newEnv(t, giteafake.Options{})
		checks := e.open(e.fake.IssueToken("alice", "all"), nil).Diagnose(ctx)
		ch, _ := checkByName(checks, "Repositories listable")
		if !ch.OK || !ch.Warning || ch.Detail != "0 repositories visible" {
			t.Errorf("%+v", checks)
		}
	})
	t.Run("old server", func(t *testing.T) {
		e := newEnv(t, giteafake.Options{Version: "1.19.4"})
		ch, _ := checkByName(e.open(e.fake.IssueToken("alice", "all"), nil).Diagnose(ctx), "Gitea version")
		if ch.OK || !strings.Contains(ch.Hint, "upgrade") || ch.Detail != "Gitea 1.19.4" {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("version behind sign-in", func(t *testing.T) {
		e := newEnv(t, giteafake.Options{})
		e.fake.FailNext("/version", http.StatusUnauthorized, nil)
		checks := e.open(e.fake.IssueToken("alice", "all"), nil).Diagnose(ctx)
		want := []string{"Gitea API reachable", "Gitea token", "Gitea version", "Repositories listable"}
		if !slices.Equal(names(checks)[:4], want) || !checks[0].OK || checks[2].Detail != "Gitea 1.27.3" {
			t.Errorf("%+v", checks)
		}
	})
	t.Run("rate-limiting proxy", func(t *testing.T) {
		e := newEnv(t, giteafake.Options{RateLimit: 50})
		ch, ok := checkByName(e.open(e.fake.IssueToken("alice", "all"), nil).Diagnose(ctx), "Rate-limit budget")
		if !ok || !ch.OK || !strings.Contains(ch.Detail, "of 50 requests left") {
			t.Errorf("%+v", ch)
		}
	})
}

func TestDiagnoseUnreachable(t *testing.T) {
	ctx := context.Background()
	diagnose := func(t *testing.T, base string, client *http.Client) forge.Check {
		t.Helper()
		in := forge.Integration{BaseURL: base, Secrets: map[string]string{gitea.SecretToken: "tok-secret"}}
		c, err := gitea.New().Open(ctx, in, forge.Env{HTTP: client})
		if err != nil {
			t.Fatal(err)
		}
		checks := c.Diagnose(ctx)
		if len(checks) != 1 || checks[0].OK || checks[0].Hint == "" {
			t.Fatalf("checks %+v", checks)
		}
		if strings.Contains(checks[0].Detail+checks[0].Hint, "tok-secret") {
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
		if ch := diagnose(t, "http://"+addr, http.DefaultClient); !strings.HasPrefix(ch.Detail, "connection:") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("dns", func(t *testing.T) {
		ch := diagnose(t, "https://gitea.forgeway-test.invalid", &http.Client{Timeout: 5 * time.Second})
		if !strings.HasPrefix(ch.Detail, "DNS:") && !strings.HasPrefix(ch.Detail, "timeout:") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		e := newEnv(t, giteafake.Options{})
		e.fake.HangNext("/version")
		if ch := diagnose(t, e.fake.URL, &http.Client{Timeout: 200 * time.Millisecond}); !strings.HasPrefix(ch.Detail, "timeout:") {
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
		if ch := diagnose(t, strings.Replace(plain.URL, "http://", "https://", 1), &http.Client{Timeout: 5 * time.Second}); !strings.HasPrefix(ch.Detail, "TLS:") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("not a Gitea", func(t *testing.T) {
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("<html>welcome</html>"))
		}))
		defer other.Close()
		if ch := diagnose(t, other.URL, other.Client()); !strings.Contains(ch.Hint, "not a Gitea API") {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("server error", func(t *testing.T) {
		e := newEnv(t, giteafake.Options{})
		e.fake.FailNext("/version", 500, nil)
		if ch := diagnose(t, e.fake.URL, e.fake.Client()); !strings.Contains(ch.Hint, "server error") {
			t.Errorf("%+v", ch)
		}
	})
}
