package gitlab_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitlab"
	"github.com/forgeway/forgeway/internal/forge/gitlab/gitlabfake"
)

// repositoryCall makes one API call with the integration's credential.
func repositoryCall(t *testing.T, c forge.Client, id int64) error {
	t.Helper()
	_, err := c.Repository(context.Background(), strconv.FormatInt(id, 10), forge.Repository{})
	return err
}

func TestOAuthRenewedAhead(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.oauthIntegration("ana")
	id := e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	c := e.open(in)

	if err := repositoryCall(t, c, id); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.RequestCount("/oauth/token"); n != 0 {
		t.Fatalf("a token with two hours left was renewed (%d)", n)
	}
	// 31 minutes left: more than enough for GitLab, not for Forgeway's half-hour margin.
	e.clock.Add(89 * time.Minute)
	if err := repositoryCall(t, c, id); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.RequestCount("/oauth/token"); n != 0 {
		t.Fatalf("renewed with 31 minutes left (%d)", n)
	}
	e.clock.Add(2 * time.Minute)
	if err := repositoryCall(t, c, id); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.RequestCount("/oauth/token"); n != 1 {
		t.Fatalf("%d renewals with 29 minutes left, want 1", n)
	}
	stored := e.saved.last()
	if stored[gitlab.SecretAccessToken] == "" || stored[gitlab.SecretAccessToken] == in.Secrets[gitlab.SecretAccessToken] ||
		stored[gitlab.SecretRefreshToken] == "" || stored[gitlab.SecretRefreshToken] == in.Secrets[gitlab.SecretRefreshToken] ||
		stored[gitlab.SecretTokenExpires] != e.clock.Now().Add(2*time.Hour).Format(time.RFC3339) {
		t.Fatalf("stored after renewal: %v", stored)
	}
	// The renewed token is used from now on, and the old refresh token is spent.
	if err := repositoryCall(t, c, id); err != nil || e.fake.RequestCount("/oauth/token") != 1 || e.saved.count() != 1 {
		t.Fatalf("after renewal: %v, %d renewals, %d saves", err, e.fake.RequestCount("/oauth/token"), e.saved.count())
	}
	stale := e.open(in) // a client still holding the old refresh token
	e.clock.Add(2 * time.Hour)
	err := repositoryCall(t, stale, id)
	if !errors.Is(err, forge.ErrUnauthorized) || !strings.Contains(err.Error(), "invalid_grant") || !strings.Contains(err.Error(), "authorize the OAuth application again") {
		t.Fatalf("renewing with a spent refresh token: %v", err)
	}
	noSecret(t, err, in.Secrets[gitlab.SecretRefreshToken], in.Secrets[gitlab.SecretClientSecret])
}

func TestOAuthUnknownExpiryRenewedFirst(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.oauthIntegration("ana")
	delete(in.Secrets, gitlab.SecretTokenExpires)
	id := e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	c := e.open(in)
	if err := repositoryCall(t, c, id); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.RequestCount("/oauth/token"); n != 1 || e.saved.count() != 1 {
		t.Fatalf("%d renewals, %d saves; a token of unknown expiry is renewed before use", n, e.saved.count())
	}
}

func TestOAuthConcurrentRenewal(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.oauthIntegration("ana")
	id := e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	c := e.open(in)
	e.clock.Add(2 * time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Repository(context.Background(), strconv.FormatInt(id, 10), forge.Repository{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fake.RequestCount("/oauth/token"); n != 1 {
		t.Fatalf("%d renewals for 8 concurrent calls, want 1", n)
	}
}

// TestOAuthRefusedTokenRenewed: GitLab refuses a token Forgeway believed valid (revoked
// early); it is renewed once and the call retried.
func TestOAuthRefusedTokenRenewed(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.oauthIntegration("ana")
	id := e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	c := e.open(in)
	e.fake.RevokeToken(in.Secrets[gitlab.SecretAccessToken])
	if err := repositoryCall(t, c, id); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.RequestCount("/oauth/token"); n != 1 {
		t.Fatalf("%d renewals", n)
	}
}

func TestOAuthSaveFailure(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.oauthIntegration("ana")
	id := e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	c := e.open(in)
	e.clock.Add(2 * time.Hour)
	e.saved.fail = errors.New("database unavailable")
	err := repositoryCall(t, c, id)
	if err == nil || !strings.Contains(err.Error(), "store the renewed GitLab OAuth token") || !strings.Contains(err.Error(), "database unavailable") {
		t.Fatalf("renewal not stored: %v", err)
	}
	// Once the store works again, the renewed token is stored before it is used, without
	// renewing again (the old refresh token is spent).
	e.saved.fail = nil
	if err := repositoryCall(t, c, id); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.RequestCount("/oauth/token"); n != 1 || e.saved.count() != 1 {
		t.Fatalf("%d renewals, %d saves", n, e.saved.count())
	}
}

func TestOAuthGitAuth(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.oauthIntegration("ana")
	c := e.open(in)
	ctx := context.Background()
	repo := forge.Repository{HostID: "1", FullName: "ana/svc"}

	e.clock.Add(50 * time.Minute) // 70 minutes left
	auth, err := c.GitAuth(ctx, repo, nil, time.Hour)
	if err != nil || e.fake.RequestCount("/oauth/token") != 0 || !auth.Expires.Equal(e.clock.Now().Add(70*time.Minute)) {
		t.Fatalf("an hour needed, 70 minutes left: %+v, %v", auth, err)
	}
	renewed, err := c.GitAuth(ctx, repo, nil, 75*time.Minute)
	if err != nil || e.fake.RequestCount("/oauth/token") != 1 || renewed.Header == auth.Header || !renewed.Expires.Equal(e.clock.Now().Add(2*time.Hour)) {
		t.Fatalf("75 minutes needed: %+v, %v", renewed, err)
	}
	if _, err := c.GitAuth(ctx, repo, nil, 3*time.Hour); err == nil || !strings.Contains(err.Error(), "cannot be guaranteed") {
		t.Fatalf("three hours of a two-hour token: %v", err)
	}
}

func TestRefreshUserToken(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, clientID := e.oauthIntegration("ana")
	c := e.open(in)
	access, refresh := e.fake.IssueOAuthToken(clientID, "bob")
	ctx := context.Background()
	r := c.(forge.UserTokenRefresher)

	fresh, err := r.RefreshUserToken(ctx, forge.UserCredential{User: "u-bob", Token: access, RefreshToken: refresh})
	if err != nil {
		t.Fatal(err)
	}
	if fresh.User != "u-bob" || fresh.Login != "bob" || fresh.Token == access || fresh.RefreshToken == refresh ||
		!fresh.Expires.Equal(e.clock.Now().Add(2*time.Hour)) {
		t.Fatalf("renewed credential %+v", fresh)
	}
	_, err = r.RefreshUserToken(ctx, forge.UserCredential{Login: "bob", Token: access, RefreshToken: refresh})
	if !errors.Is(err, forge.ErrUnauthorized) {
		t.Fatalf("a spent refresh token: %v", err)
	}
	noSecret(t, err, refresh, access)
	if _, err := r.RefreshUserToken(ctx, forge.UserCredential{Login: "bob", Token: "glpat-x"}); !errors.Is(err, forge.ErrUnauthorized) {
		t.Fatalf("no refresh token: %v", err)
	}
	tokenOnly, _ := e.tokenIntegration("ana")
	pc := e.open(tokenOnly)
	if _, err := pc.(forge.UserTokenRefresher).RefreshUserToken(ctx, forge.UserCredential{Token: access, RefreshToken: fresh.RefreshToken}); !errors.Is(err, forge.ErrUnsupported) {
		t.Fatalf("an integration without an OAuth application: %v", err)
	}
}

// TestAuthorizeFlow follows the authorization link to GitLab and back, then exchanges the
// code for the person's credential.
func TestAuthorizeFlow(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	in, _ := e.oauthIntegration("ana")
	e.fake.SetBrowserUser("bob")
	d := gitlab.New().(forge.Authorizer)
	link, err := d.InstallURL(in, "state-123")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link)
	if q := u.Query(); u.Path != "/oauth/authorize" || q.Get("client_id") != in.Settings[gitlab.SettingClientID] ||
		q.Get("redirect_uri") != redirectURI || q.Get("response_type") != "code" || q.Get("scope") != "api" || q.Get("state") != "state-123" {
		t.Fatalf("authorization URL %s", link)
	}
	hc := e.fake.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || back.Query().Get("state") != "state-123" || back.Query().Get("code") == "" {
		t.Fatalf("GitLab answered %d, to %s", resp.StatusCode, back)
	}
	cred, err := d.ExchangeCode(context.Background(), in, e.forgeEnv(), back.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	if cred.Login != "bob" || cred.Token == "" || cred.RefreshToken == "" || !cred.Expires.Equal(e.clock.Now().Add(2*time.Hour)) {
		t.Fatalf("credential %+v", cred)
	}
	_, err = d.ExchangeCode(context.Background(), in, e.forgeEnv(), back.Query().Get("code"))
	if !errors.Is(err, forge.ErrUnauthorized) {
		t.Fatalf("a code used twice: %v", err)
	}
	if _, err := d.ExchangeCode(context.Background(), in, e.forgeEnv(), ""); err == nil {
		t.Fatal("an empty code was exchanged")
	}
}
