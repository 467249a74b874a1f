package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// manifestPermissions are the permissions of an App Forgeway creates: enough to list
// repositories, manage their webhooks, push branches (workflows included) and open pull
// requests, and to read organization members.
func manifestPermissions() map[string]string {
	return map[string]string{
		"administration": "write", "contents": "write", "metadata": "read", "pull_requests": "write",
		"repository_hooks": "write", "workflows": "write", "organization_administration": "read",
		"members": "read", "organization_hooks": "write",
	}
}

// setupConfig is the part of an integration the App flows need; unlike parseConfig it does
// not require the App to exist yet.
func setupConfig(in forge.Integration) (config, error) {
	web, err := normalizeBaseURL(in.BaseURL)
	if err != nil {
		return config{}, err
	}
	c := config{webBase: web}
	c.apiBase, c.dotcom = apiBase(web)
	c.appSlug = strings.TrimSpace(in.Settings[SettingAppSlug])
	c.clientID = strings.TrimSpace(in.Settings[SettingClientID])
	c.secret = in.Secrets[SecretClientSecret]
	c.org = strings.TrimSpace(in.Settings[SettingOrganization])
	if c.org != "" && !loginRE.MatchString(c.org) {
		return config{}, fmt.Errorf("organization %q is not a GitHub login", c.org)
	}
	return c, nil
}

// ManifestForm returns where the browser posts the App manifest (the user's, or the
// organization's, "new GitHub App" page, with state) and the manifest: Forgeway's URLs, a
// private App asking for the permissions and events Forgeway uses, requesting the installing
// person's authorization on install. The App is named after the app_slug setting, or
// "Forgeway <integration id>".
func (Driver) ManifestForm(in forge.Integration, urls forge.AppURLs) (string, []byte, error) {
	c, err := setupConfig(in)
	if err != nil {
		return "", nil, fmt.Errorf("build the GitHub App manifest: %w", err)
	}
	for k, v := range map[string]string{"homepage": urls.Homepage, "callback": urls.Callback, "setup": urls.Setup, "webhook": urls.Webhook} {
		if v == "" {
			return "", nil, fmt.Errorf("build the GitHub App manifest: Forgeway's %s URL is not set", k)
		}
	}
	name := c.appSlug
	if name == "" {
		name = "Forgeway " + in.ID
	}
	manifest := map[string]any{
		"name":                     name,
		"url":                      urls.Homepage,
		"hook_attributes":          map[string]any{"url": urls.Webhook, "active": true},
		"redirect_url":             urls.Callback,
		"callback_urls":            []string{urls.Callback},
		"setup_url":                urls.Setup,
		"public":                   false,
		"request_oauth_on_install": true,
		"setup_on_update":          true,
		"default_permissions":      manifestPermissions(),
		"default_events":           hookEvents(),
	}
	body, err := json.Marshal(manifest)
	if err != nil {
		return "", nil, fmt.Errorf("encode the GitHub App manifest: %w", err)
	}
	action := c.webBase + "/settings/apps/new"
	if c.org != "" {
		action = c.webBase + "/organizations/" + url.PathEscape(c.org) + "/settings/apps/new"
	}
	if urls.State != "" {
		action += "?state=" + url.QueryEscape(urls.State)
	}
	return action, body, nil
}

// ConvertManifest exchanges the code GitHub redirected back with for the new App's
// credentials (POST /app-manifests/{code}/conversions, unauthenticated; a code works once,
// within an hour). It returns the settings {auth, app_id, app_slug, client_id} and the
// secrets {private_key, client_secret, webhook_secret} to store.
func (Driver) ConvertManifest(ctx context.Context, in forge.Integration, env forge.Env, code string) (map[string]string, map[string]string, error) {
	c, err := setupConfig(in)
	if err != nil {
		return nil, nil, fmt.Errorf("convert the GitHub App manifest: %w", err)
	}
	if code == "" {
		return nil, nil, errors.New("convert the GitHub App manifest: no code in GitHub's redirect")
	}
	cl := newClient(c, env)
	var out struct {
		ID            int64   `json:"id"`
		Slug          string  `json:"slug"`
		ClientID      string  `json:"client_id"`
		ClientSecret  string  `json:"client_secret"`
		WebhookSecret *string `json:"webhook_secret"`
		PEM           string  `json:"pem"`
	}
	_, err = cl.do(ctx, request{
		op: "create the GitHub App from its manifest", method: http.MethodPost,
		path: "/app-manifests/" + url.PathEscape(code) + "/conversions", cred: anonymous, out: &out,
	})
	if err != nil {
		var he *forge.HostError
		if errors.As(err, &he) && he.Status == http.StatusNotFound {
			he.Message = "the code expired or was already used (it works once, within an hour): create the App again"
		}
		return nil, nil, err
	}
	if _, err := parsePrivateKey(out.PEM); err != nil || out.ID == 0 {
		return nil, nil, &forge.HostError{Op: "create the GitHub App from its manifest", Message: "GitHub's answer lacks the App id or a usable private key"}
	}
	settings := map[string]string{
		SettingAuth: AuthApp, SettingAppID: strconv.FormatInt(out.ID, 10), SettingAppSlug: out.Slug, SettingClientID: out.ClientID,
	}
	if c.org != "" {
		settings[SettingOrganization] = c.org
	}
	secrets := map[string]string{SecretPrivateKey: out.PEM, SecretClientSecret: out.ClientSecret}
	if out.WebhookSecret != nil {
		secrets[forge.SecretWebhook] = *out.WebhookSecret
	}
	return settings, secrets, nil
}

// InstallURL is the App's installation page, carrying state back to the setup URL.
func (Driver) InstallURL(in forge.Integration, state string) (string, error) {
	c, err := setupConfig(in)
	if err != nil {
		return "", fmt.Errorf("GitHub App installation URL: %w", err)
	}
	if c.appSlug == "" {
		return "", errors.New("GitHub App installation URL: app_slug is not set (the name in the App's public URL, github.com/apps/<name>)")
	}
	u := c.webBase + "/apps/" + url.PathEscape(c.appSlug) + "/installations/new"
	if state != "" {
		u += "?state=" + url.QueryEscape(state)
	}
	return u, nil
}

// oauthToken is the answer of /login/oauth/access_token. GitHub reports errors with status
// 200 and the error fields.
type oauthToken struct {
	AccessToken           string `json:"access_token"`
	ExpiresIn             int64  `json:"expires_in"`
	RefreshToken          string `json:"refresh_token"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in"`
	Error                 string `json:"error"`
	ErrorDescription      string `json:"error_description"`
}

// oauth posts params with the App's client credentials to the web flow's token endpoint.
func (c *Client) oauth(ctx context.Context, op string, params url.Values) (oauthToken, error) {
	if c.cfg.clientID == "" || c.cfg.secret == "" {
		return oauthToken{}, fmt.Errorf("%s: the integration needs the App's client_id and client_secret", op)
	}
	params.Set("client_id", c.cfg.clientID)
	params.Set("client_secret", c.cfg.secret)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.webBase+"/login/oauth/access_token", strings.NewReader(params.Encode()))
	if err != nil {
		return oauthToken{}, fmt.Errorf("%s: %w", op, forge.StripURL(err))
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", "forgeway")
	resp, body, err := forge.Exchange(ctx, c.http, hr, op, "GitHub", 1<<20)
	if err != nil {
		return oauthToken{}, err
	}
	var out oauthToken
	if resp.StatusCode != http.StatusOK {
		return oauthToken{}, &forge.HostError{Op: op, Status: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return oauthToken{}, &forge.HostError{Op: op, Status: resp.StatusCode, Message: "GitHub's answer is not JSON: " + err.Error()}
	}
	if out.Error != "" || out.AccessToken == "" {
		// GitHub answers these with 200: the status would only confuse the message.
		he := &forge.HostError{Op: op, Message: out.Error, Err: forge.ErrUnauthorized}
		if out.ErrorDescription != "" {
			he.Message = out.Error + ": " + out.ErrorDescription
		}
		return oauthToken{}, he
	}
	return out, nil
}

func (c *Client) userCredentialFrom(ctx context.Context, op string, t oauthToken, prev forge.UserCredential) (forge.UserCredential, error) {
	cred := forge.UserCredential{User: prev.User, Login: prev.Login, Token: t.AccessToken, RefreshToken: t.RefreshToken}
	if t.ExpiresIn > 0 {
		cred.Expires = c.now().Add(time.Duration(t.ExpiresIn) * time.Second)
	}
	if cred.RefreshToken == "" {
		cred.RefreshToken = prev.RefreshToken
	}
	if cred.Login == "" {
		var u struct {
			Login string `json:"login"`
		}
		if _, err := c.do(ctx, request{op: op + ": read the user", method: http.MethodGet, path: "/user", cred: staticCredential("token " + t.AccessToken), out: &u}); err != nil {
			return forge.UserCredential{}, err
		}
		cred.Login = u.Login
	}
	return cred, nil
}

// ExchangeCode turns the OAuth code of the installation (or sign-in) callback into the
// person's user token, with its refresh token and expiry, and reads their login.
func (Driver) ExchangeCode(ctx context.Context, in forge.Integration, env forge.Env, code string) (forge.UserCredential, error) {
	c, err := setupConfig(in)
	if err != nil {
		return forge.UserCredential{}, fmt.Errorf("exchange the GitHub OAuth code: %w", err)
	}
	cl := newClient(c, env)
	const op = "exchange the GitHub OAuth code"
	if code == "" {
		return forge.UserCredential{}, errors.New(op + ": no code in GitHub's redirect")
	}
	t, err := cl.oauth(ctx, op, url.Values{"code": {code}})
	if err != nil {
		return forge.UserCredential{}, err
	}
	return cl.userCredentialFrom(ctx, op, t, forge.UserCredential{})
}

// RefreshUserToken renews a person's user token with its refresh token (grant_type
// refresh_token); GitHub rotates the refresh token too, so the result must be stored.
func (c *Client) RefreshUserToken(ctx context.Context, cred forge.UserCredential) (forge.UserCredential, error) {
	const op = "refresh a GitHub user token"
	if cred.RefreshToken == "" {
		return forge.UserCredential{}, &forge.HostError{Op: op, Message: "no refresh token: the person must sign in again", Err: forge.ErrUnauthorized}
	}
	t, err := c.oauth(ctx, op, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cred.RefreshToken}})
	if err != nil {
		return forge.UserCredential{}, err
	}
	return c.userCredentialFrom(ctx, op, t, cred)
}
