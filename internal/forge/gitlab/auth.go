package gitlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// oauthState is the integration's current OAuth token.
type oauthState struct {
	access  string
	refresh string
	expires time.Time // zero: unknown, renewed before first use
	// unsaved holds renewed secrets the core has not stored yet (SaveSecrets failed): the
	// old refresh token is spent, so they are stored again before anything else.
	unsaved map[string]string
}

// renewAhead is how much validity the integration's OAuth token must have left to be used.
// GitLab's tokens last two hours; renewing half an hour ahead leaves every operation, a long
// git fetch included, a token that outlives it, where renewing seconds before expiry does not.
const renewAhead = 30 * time.Minute

// oauthToken is the answer of GitLab's /oauth/token.
type oauthToken struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int64  `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	Scope            string `json:"scope"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// tokenRequest posts params with the application's credentials to GitLab's token endpoint
// (authorization code or refresh token grant). A refused grant is forge.ErrUnauthorized.
func tokenRequest(ctx context.Context, hc *http.Client, c config, op string, params url.Values) (oauthToken, error) {
	if c.clientID == "" || c.secret == "" {
		return oauthToken{}, fmt.Errorf("%s: the integration has no OAuth application: set client_id and client_secret: %w", op, forge.ErrUnsupported)
	}
	params.Set("client_id", c.clientID)
	params.Set("client_secret", c.secret)
	if c.redirectURI != "" {
		params.Set("redirect_uri", c.redirectURI)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.webBase+"/oauth/token", strings.NewReader(params.Encode()))
	if err != nil {
		return oauthToken{}, fmt.Errorf("%s: %w", op, forge.StripURL(err))
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", "forgeway")
	resp, body, err := forge.Exchange(ctx, hc, hr, op, "GitLab", 1<<20)
	if err != nil {
		return oauthToken{}, err
	}
	var out oauthToken
	_ = json.Unmarshal(body, &out)
	if resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		he := &forge.HostError{Op: op, Status: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
		if out.Error != "" {
			he.Message = out.Error
			if out.ErrorDescription != "" {
				he.Message += ": " + out.ErrorDescription
			}
		}
		switch {
		case out.Error == "invalid_grant" || out.Error == "invalid_client" || resp.StatusCode == http.StatusUnauthorized:
			he.Err = forge.ErrUnauthorized
		case resp.StatusCode == http.StatusOK:
			he.Message = "GitLab answered without an access token"
		}
		return oauthToken{}, he
	}
	return out, nil
}

// tokenLife is how long GitLab's OAuth access tokens last; the answer's expires_in says.
const tokenLife = 2 * time.Hour

func (t oauthToken) expiry(now time.Time) time.Time {
	if t.ExpiresIn <= 0 {
		return now.Add(tokenLife)
	}
	return now.Add(time.Duration(t.ExpiresIn) * time.Second)
}

// accessToken returns the integration's OAuth access token, valid for at least
// max(renewAhead, minValidity), renewing it with the refresh token when it is older, unknown,
// or the one GitLab just refused. The renewed token and refresh token are stored through
// Env.SaveSecrets before they are used, since GitLab revokes the old refresh token.
func (c *Client) accessToken(ctx context.Context, minValidity time.Duration, refused string) (string, time.Time, error) {
	need := max(renewAhead, minValidity)
	if need >= tokenLife {
		return "", time.Time{}, fmt.Errorf("GitLab's OAuth tokens last %s; %s of validity cannot be guaranteed", tokenLife, minValidity)
	}
	c.renewMu.Lock()
	defer c.renewMu.Unlock()
	c.mu.Lock()
	st := c.oauth
	c.mu.Unlock()
	if st.unsaved != nil {
		if err := c.store(ctx, st.unsaved); err != nil {
			return "", time.Time{}, err
		}
	}
	if st.access != "" && st.access != refused && !st.expires.IsZero() && st.expires.Sub(c.now()) >= need {
		return st.access, st.expires, nil
	}
	const op = "renew the integration's GitLab OAuth token"
	t, err := tokenRequest(ctx, c.http, c.cfg, op, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {st.refresh}})
	if err != nil {
		if errors.Is(err, forge.ErrUnauthorized) {
			return "", time.Time{}, fmt.Errorf("%w (authorize the OAuth application again and update the integration's access_token and refresh_token)", err)
		}
		return "", time.Time{}, err
	}
	next := oauthState{access: t.AccessToken, refresh: t.RefreshToken, expires: t.expiry(c.now())}
	if next.refresh == "" {
		next.refresh = st.refresh
	}
	next.unsaved = map[string]string{
		SecretAccessToken:  next.access,
		SecretRefreshToken: next.refresh,
		SecretTokenExpires: next.expires.UTC().Format(time.RFC3339),
	}
	c.mu.Lock()
	c.oauth = next
	c.mu.Unlock()
	if err := c.store(ctx, next.unsaved); err != nil {
		return "", time.Time{}, err
	}
	if next.expires.Sub(c.now()) < need {
		return "", time.Time{}, fmt.Errorf("%s: GitLab's new token expires at %s, before the %s this needs", op, next.expires.UTC().Format(time.RFC3339), need)
	}
	return next.access, next.expires, nil
}

// store hands renewed secrets to the core and, once stored, forgets that they were not.
func (c *Client) store(ctx context.Context, secrets map[string]string) error {
	if c.save != nil {
		if err := c.save(ctx, secrets); err != nil {
			return fmt.Errorf("store the renewed GitLab OAuth token (it is kept in memory and stored again on next use): %w", err)
		}
	}
	c.mu.Lock()
	if c.oauth.access == secrets[SecretAccessToken] {
		c.oauth.unsaved = nil
	}
	c.mu.Unlock()
	return nil
}

// integrationCredential is the integration's own credential: the access token, or the OAuth
// token renewed as needed (and once more when GitLab refuses it).
func (c *Client) integrationCredential() credential {
	if c.cfg.auth != AuthOAuth {
		return bearer(c.cfg.token)
	}
	get := func(ctx context.Context, refused string) (string, error) {
		tok, _, err := c.accessToken(ctx, 0, strings.TrimPrefix(refused, "Bearer "))
		if err != nil {
			return "", err
		}
		return "Bearer " + tok, nil
	}
	return credential{header: func(ctx context.Context) (string, error) { return get(ctx, "") }, renew: get}
}

// actingCredential is the acting person's token when as is set, else the integration's.
// The core renews a person's token (RefreshUserToken) before handing it over.
func (c *Client) actingCredential(as *forge.UserCredential) credential {
	if as != nil && as.Token != "" {
		return bearer(as.Token)
	}
	return c.integrationCredential()
}

// RefreshUserToken renews a person's OAuth token with its refresh token and the integration's
// OAuth application (grant_type refresh_token). GitLab rotates the refresh token, so the
// result must be stored. A token without a refresh token (a personal access token), or a
// refused one, is forge.ErrUnauthorized; an integration without an OAuth application is
// forge.ErrUnsupported.
func (c *Client) RefreshUserToken(ctx context.Context, cred forge.UserCredential) (forge.UserCredential, error) {
	const op = "renew a person's GitLab OAuth token"
	if cred.RefreshToken == "" {
		return forge.UserCredential{}, &forge.HostError{Op: op, Message: "no refresh token: the person must authorize Forgeway again", Err: forge.ErrUnauthorized}
	}
	t, err := tokenRequest(ctx, c.http, c.cfg, op, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cred.RefreshToken}})
	if err != nil {
		return forge.UserCredential{}, err
	}
	return c.userCredentialFrom(ctx, op, t, cred)
}

func (c *Client) userCredentialFrom(ctx context.Context, op string, t oauthToken, prev forge.UserCredential) (forge.UserCredential, error) {
	out := forge.UserCredential{User: prev.User, Login: prev.Login, Token: t.AccessToken, RefreshToken: t.RefreshToken, Expires: t.expiry(c.now())}
	if out.RefreshToken == "" {
		out.RefreshToken = prev.RefreshToken
	}
	if out.Login == "" {
		var u glUser
		if _, err := c.do(ctx, request{op: op + ": read the user", method: http.MethodGet, path: "/user", cred: bearer(t.AccessToken), out: &u}); err != nil {
			return forge.UserCredential{}, err
		}
		out.Login = u.Username
	}
	return out, nil
}

// glUser is GitLab's user object.
type glUser struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
	Email    string `json:"email"`
}

// oauthAppConfig reads what the authorization flow needs (base URL, client_id,
// client_secret, redirect_uri), whatever the integration's own credential.
func oauthAppConfig(in forge.Integration) (config, error) {
	web, err := normalizeBaseURL(in.BaseURL)
	if err != nil {
		return config{}, err
	}
	c := config{webBase: web, apiBase: web + "/api/v4",
		clientID: strings.TrimSpace(in.Settings[SettingClientID]), secret: strings.TrimSpace(in.Secrets[SecretClientSecret]),
		redirectURI: strings.TrimSpace(in.Settings[SettingRedirectURI])}
	if c.clientID == "" || c.redirectURI == "" {
		return config{}, errors.New("the integration has no OAuth application: set client_id, client_secret and redirect_uri (the application's Callback URL)")
	}
	return c, nil
}

// InstallURL is where a person authorizes Forgeway to act as them: GitLab's
// /oauth/authorize for the integration's OAuth application, scope api, carrying state back
// to redirect_uri.
func (Driver) InstallURL(in forge.Integration, state string) (string, error) {
	c, err := oauthAppConfig(in)
	if err != nil {
		return "", fmt.Errorf("GitLab authorization URL: %w", err)
	}
	q := url.Values{"client_id": {c.clientID}, "redirect_uri": {c.redirectURI}, "response_type": {"code"}, "scope": {"api"}}
	if state != "" {
		q.Set("state", state)
	}
	return c.webBase + "/oauth/authorize?" + q.Encode(), nil
}

// ExchangeCode turns the code GitLab redirected back with into the authorizing person's
// credential: their OAuth token, refresh token and expiry, and their username.
func (Driver) ExchangeCode(ctx context.Context, in forge.Integration, env forge.Env, code string) (forge.UserCredential, error) {
	const op = "exchange the GitLab authorization code"
	c, err := oauthAppConfig(in)
	if err != nil {
		return forge.UserCredential{}, fmt.Errorf("%s: %w", op, err)
	}
	if code == "" {
		return forge.UserCredential{}, errors.New(op + ": no code in GitLab's redirect")
	}
	cl := newClient(c, env)
	t, err := tokenRequest(ctx, cl.http, c, op, url.Values{"grant_type": {"authorization_code"}, "code": {code}})
	if err != nil {
		return forge.UserCredential{}, err
	}
	return cl.userCredentialFrom(ctx, op, t, forge.UserCredential{})
}
