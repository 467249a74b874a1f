package github

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
)

func TestManifestFlow(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	e.fake.AddOrg("acme")
	d := New().(Driver)
	ctx := context.Background()
	in := forge.Integration{ID: "int-1", BaseURL: e.fake.URL, Settings: map[string]string{SettingOrganization: "acme", SettingAppSlug: "Forgeway Acme"}}
	urls := forge.AppURLs{
		Homepage: "https://forgeway.example", Callback: "https://forgeway.example/callback/github",
		Setup: "https://forgeway.example/setup/github", Webhook: "https://forgeway.example/webhooks/github", State: "st&8",
	}
	action, manifest, err := d.ManifestForm(in, urls)
	if err != nil {
		t.Fatal(err)
	}
	if action != e.fake.URL+"/organizations/acme/settings/apps/new?state=st%268" {
		t.Errorf("action %s", action)
	}
	var m struct {
		Name           string `json:"name"`
		URL            string `json:"url"`
		HookAttributes struct {
			URL    string `json:"url"`
			Active bool   `json:"active"`
		} `json:"hook_attributes"`
		RedirectURL           string            `json:"redirect_url"`
		CallbackURLs          []string          `json:"callback_urls"`
		SetupURL              string            `json:"setup_url"`
		Public                *bool             `json:"public"`
		RequestOAuthOnInstall bool              `json:"request_oauth_on_install"`
		SetupOnUpdate         bool              `json:"setup_on_update"`
		Permissions           map[string]string `json:"default_permissions"`
		Events                []string          `json:"default_events"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.Name != "Forgeway Acme" || m.URL != urls.Homepage || m.HookAttributes.URL != urls.Webhook || !m.HookAttributes.Active ||
		m.RedirectURL != urls.Callback || len(m.CallbackURLs) != 1 || m.SetupURL != urls.Setup || m.Public == nil || *m.Public ||
		!m.RequestOAuthOnInstall || !m.SetupOnUpdate || m.Permissions["repository_hooks"] != "write" || m.Permissions["workflows"] != "write" ||
		m.Permissions["organization_hooks"] != "write" || m.Permissions["metadata"] != "read" || len(m.Events) != 5 {
		t.Errorf("manifest %s", manifest)
	}

	// The browser posts the form; GitHub redirects to the callback with a code.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.PostForm(action, url.Values{"manifest": {string(manifest)}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || loc.Query().Get("state") != "st&8" || !strings.HasPrefix(loc.String(), urls.Callback) {
		t.Fatalf("manifest post: %d %s", res.StatusCode, loc)
	}
	code := loc.Query().Get("code")

	settings, secrets, err := d.ConvertManifest(ctx, in, e.forgeEnv(), code)
	if err != nil {
		t.Fatal(err)
	}
	if settings[SettingAuth] != AuthApp || settings[SettingAppID] == "" || settings[SettingAppSlug] != "forgeway-acme" ||
		!strings.HasPrefix(settings[SettingClientID], "Iv") || settings[SettingOrganization] != "acme" {
		t.Errorf("settings %v", settings)
	}
	if !strings.Contains(secrets[SecretPrivateKey], "PRIVATE KEY") || secrets[SecretClientSecret] == "" || secrets[forge.SecretWebhook] == "" {
		t.Errorf("secrets lack a value: %d keys", len(secrets))
	}
	_, _, err = d.ConvertManifest(ctx, in, e.forgeEnv(), code)
	if !errors.Is(err, forge.ErrNotFound) || !strings.Contains(err.Error(), "create the App again") || strings.Contains(err.Error(), code) {
		t.Errorf("code used twice: %v", err)
	}

	// The converted App works: it authenticates, and its installation page exists.
	created := forge.Integration{ID: "int-1", BaseURL: e.fake.URL, Settings: settings, Secrets: secrets}
	keys, err := d.Configure(&created)
	if err != nil || len(keys) != 1 || keys[0] != "app:"+settings[SettingAppID] {
		t.Fatalf("Configure the new App: %v %v", keys, err)
	}
	checks := e.open(created).Diagnose(ctx)
	if len(checks) < 3 || !checks[2].OK || checks[2].Name != "GitHub App credentials" {
		t.Errorf("diagnosis of the new App %+v", checks)
	}
	install, err := d.InstallURL(created, "st8")
	if err != nil || install != e.fake.URL+"/apps/forgeway-acme/installations/new?state=st8" {
		t.Fatalf("InstallURL %s %v", install, err)
	}
	if res, err := http.Get(install); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("installation page: %v %v", res, err)
	}
	if _, err := d.InstallURL(forge.Integration{BaseURL: e.fake.URL}, "s"); err == nil {
		t.Error("InstallURL without app_slug")
	}

	// A personal App: the user's settings page; missing URLs are refused.
	action, _, err = d.ManifestForm(forge.Integration{ID: "x", BaseURL: "https://github.com"}, urls)
	if err != nil || action != "https://github.com/settings/apps/new?state=st%268" {
		t.Errorf("personal action %s %v", action, err)
	}
	if _, _, err := d.ManifestForm(forge.Integration{}, forge.AppURLs{Homepage: "h"}); err == nil {
		t.Error("manifest without callback URLs")
	}
}

func TestUserTokens(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	in, a := e.appIntegration()
	d := New().(Driver)
	ctx := context.Background()

	if _, err := d.ExchangeCode(ctx, in, e.forgeEnv(), "bogus"); !errors.Is(err, forge.ErrUnauthorized) || !strings.Contains(err.Error(), "bad_verification_code") {
		t.Errorf("bad code: %v", err)
	}
	cred, err := d.ExchangeCode(ctx, in, e.forgeEnv(), e.fake.IssueOAuthCode(a.ID, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if cred.Login != "alice" || !strings.HasPrefix(cred.Token, "ghu_") || !strings.HasPrefix(cred.RefreshToken, "ghr_") ||
		!cred.Expires.Equal(e.clock.Now().Add(8*time.Hour)) {
		t.Fatalf("credential %+v", cred)
	}

	c := e.open(in)
	e.clock.Add(9 * time.Hour)
	cred.User = "u-1"
	renewed, err := c.RefreshUserToken(ctx, cred)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.User != "u-1" || renewed.Login != "alice" || renewed.Token == cred.Token || renewed.RefreshToken == cred.RefreshToken ||
		!renewed.Expires.Equal(e.clock.Now().Add(8*time.Hour)) {
		t.Errorf("renewed %+v", renewed)
	}
	_, err = c.RefreshUserToken(ctx, cred) // the old refresh token was rotated away
	if !errors.Is(err, forge.ErrUnauthorized) || strings.Contains(err.Error(), cred.RefreshToken) {
		t.Errorf("reused refresh token: %v", err)
	}
	if _, err := c.RefreshUserToken(ctx, forge.UserCredential{Login: "alice"}); !errors.Is(err, forge.ErrUnauthorized) {
		t.Errorf("no refresh token: %v", err)
	}

	// Without client credentials the flows cannot work, and say so.
	delete(in.Secrets, SecretClientSecret)
	if _, err := d.ExchangeCode(ctx, in, e.forgeEnv(), "x"); err == nil || !strings.Contains(err.Error(), "client_secret") {
		t.Errorf("missing client secret: %v", err)
	}
}
