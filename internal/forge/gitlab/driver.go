// Package gitlab is Forgeway's driver for GitLab: GitLab.com and self-managed GitLab 16.8 or
// later.
//
// It owns everything the core needs from GitLab's REST API (/api/v4): checking an
// integration's settings, authenticating with a personal, group or project access token or
// with an OAuth application's token (renewed ahead of its two-hour expiry and stored through
// the core), discovering the projects the credential is a member of (keyset pagination),
// managing project webhooks and their health, git credentials, branches and merge requests,
// diagnosing a connection, and GitLab's OAuth authorization flow for acting persons. The
// delivery side (verifying and normalizing webhooks) is package glwebhook.
//
// It speaks REST over the core's HTTP client with the standard library rather than GitLab's
// Go SDK: the dozen endpoints it uses do not need one, go.mod does not carry it, and owning the
// calls keeps error mapping (GitLab's several error shapes), keyset pagination, token renewal
// and the guarantee that no credential reaches an error in one place.
package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitlab/glwebhook"
)

// Settings and secrets keys of a GitLab integration.
const (
	SettingAuth        = "auth"         // "token" or "oauth"
	SettingClientID    = "client_id"    // the OAuth application's ID
	SettingRedirectURI = "redirect_uri" // the OAuth application's callback URL
	SecretToken        = "token"        // personal, group or project access token
	SecretClientSecret = "client_secret"
	SecretAccessToken  = "access_token"  // the integration's own OAuth access token
	SecretRefreshToken = "refresh_token" // and its refresh token
	// SecretTokenExpires is when the OAuth access token expires (RFC 3339). It is a secret
	// because Forgeway stores it with the token it belongs to, through Env.SaveSecrets.
	SecretTokenExpires = "token_expires_at"
	// SecretSigningToken is the hooks' Standard Webhooks signing token (see glwebhook).
	SecretSigningToken = glwebhook.SecretSigningToken

	AuthToken = "token"
	AuthOAuth = "oauth"
)

// minVersion is the oldest GitLab release Forgeway supports.
const minVersion = "16.8"

// Driver is the GitLab driver. What it holds is made by New and never changes.
type Driver struct {
	// webhooks is made once: its decoders are worked out from the payload types.
	webhooks *glwebhook.Webhooks
}

// New returns the GitLab driver.
func New() forge.Driver { return Driver{webhooks: glwebhook.New()} }

var (
	_ forge.Driver     = Driver{}
	_ forge.Authorizer = Driver{}
)

// Kind is forge.GitLab.
func (Driver) Kind() forge.Kind { return forge.GitLab }

// Fields documents the settings and secrets of a GitLab integration in the words of GitLab's
// own settings pages.
func (Driver) Fields() []forge.Field {
	return []forge.Field{
		{Key: SettingAuth, Help: `How Forgeway authenticates: "token" (default) for a personal, group or project access ` +
			`token, or "oauth" for an OAuth application's token, which GitLab expires every two hours and Forgeway renews.`},
		{Key: SecretToken, Secret: true, Help: `Required with auth "token". An access token with the "api" scope. ` +
			`Personal: avatar › Edit profile › Access tokens › Add new token. Group (all the group's projects): the group's ` +
			`Settings › Access tokens, role Maintainer or Owner. Project: the project's Settings › Access tokens, role ` +
			`Maintainer. Creating webhooks needs the Maintainer role on each project; set an expiry date you will renew before.`},
		{Key: SettingClientID, Help: `Required with auth "oauth". The "Application ID" of the OAuth application ` +
			`(avatar › Edit profile › Applications, a group's Settings › Applications, or Admin Area › Applications), ` +
			`created with the "api" scope and marked Confidential.`},
		{Key: SecretClientSecret, Secret: true, Help: `Required with auth "oauth". The application's "Secret", shown ` +
			`when the application is created (Renew secret on the same page if lost).`},
		{Key: SettingRedirectURI, Help: `The application's "Callback URL": Forgeway's <public URL>/callback/gitlab. ` +
			`GitLab requires it, unchanged, when Forgeway asks a person to authorize the application and when it renews tokens.`},
		{Key: SecretAccessToken, Secret: true, Help: `Required with auth "oauth". The integration's own OAuth access ` +
			`token, obtained once by authorizing the application (authorization code flow, scope "api").`},
		{Key: SecretRefreshToken, Secret: true, Help: `Required with auth "oauth". The refresh token that came with the ` +
			`access token. Forgeway replaces both, and stores them, each time it renews the access token.`},
		{Key: SecretTokenExpires, Secret: true, Help: `When the OAuth access token expires (RFC 3339); empty makes ` +
			`Forgeway renew it before first use. Forgeway keeps it up to date.`},
		{Key: SecretSigningToken, Secret: true, Help: `Optional. A Standard Webhooks signing token ("whsec_" and a ` +
			`base64 key of 32 bytes) for GitLab versions that sign webhooks: Forgeway sets it on the webhooks it creates ` +
			`and then requires a valid webhook-signature on every delivery, besides the X-Gitlab-Token secret.`},
	}
}

// config is an integration's settings, checked and parsed.
type config struct {
	auth        string
	webBase     string // https://gitlab.example.com[/relative-root], no trailing slash
	apiBase     string // webBase + "/api/v4"
	token       string
	clientID    string
	secret      string // OAuth client secret
	redirectURI string
	access      string
	refresh     string
	expires     time.Time
	signing     string // Standard Webhooks signing token, canonical
}

// normalizeBaseURL checks the URL a user entered and returns the web base: an absolute
// http(s) URL without credentials, query, fragment or trailing slash, keeping a relative URL
// root (https://example.com/gitlab). A pasted ".../api/v4" is reduced to the web base; empty
// is GitLab.com.
func normalizeBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "https://gitlab.com", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("base URL must be an absolute http(s) URL such as https://gitlab.com or https://gitlab.example.com")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("base URL must not carry credentials, a query or a fragment")
	}
	if strings.EqualFold(u.Host, "www.gitlab.com") {
		u.Host = "gitlab.com"
	}
	p := strings.TrimSuffix(u.Path, "/")
	p = strings.TrimSuffix(strings.TrimSuffix(p, "/api/v4"), "/")
	u.Path, u.RawPath = p, ""
	return u.String(), nil
}

func hasSpace(s string) bool { return strings.ContainsAny(s, " \t\r\n") }

// parseConfig checks an integration without touching the network.
func parseConfig(in forge.Integration) (config, error) {
	web, err := normalizeBaseURL(in.BaseURL)
	if err != nil {
		return config{}, err
	}
	c := config{webBase: web, apiBase: web + "/api/v4"}
	c.auth = strings.TrimSpace(in.Settings[SettingAuth])
	if c.auth == "" {
		c.auth = AuthToken
		if in.Secrets[SecretToken] == "" && (in.Secrets[SecretAccessToken] != "" || in.Settings[SettingClientID] != "") {
			c.auth = AuthOAuth
		}
	}
	c.clientID = strings.TrimSpace(in.Settings[SettingClientID])
	c.secret = strings.TrimSpace(in.Secrets[SecretClientSecret])
	c.redirectURI = strings.TrimSpace(in.Settings[SettingRedirectURI])
	if c.redirectURI != "" {
		u, err := url.Parse(c.redirectURI)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return config{}, errors.New("redirect_uri must be the absolute URL of Forgeway's GitLab callback, such as https://forgeway.example.com/callback/gitlab")
		}
	}
	if s := in.Secrets[SecretSigningToken]; strings.TrimSpace(s) != "" {
		if c.signing, err = glwebhook.ParseSigningToken(s); err != nil {
			return config{}, fmt.Errorf("signing_token: %w (GitLab shows it once, when the webhook's signing token is generated)", err)
		}
	}
	switch c.auth {
	case AuthToken:
		c.token = strings.TrimSpace(in.Secrets[SecretToken])
		if c.token == "" {
			return config{}, errors.New(`token is required with auth "token": create an access token with the "api" scope on GitLab`)
		}
		if hasSpace(c.token) {
			return config{}, errors.New("token contains whitespace: paste the token alone")
		}
	case AuthOAuth:
		c.access = strings.TrimSpace(in.Secrets[SecretAccessToken])
		c.refresh = strings.TrimSpace(in.Secrets[SecretRefreshToken])
		switch {
		case c.clientID == "" || c.secret == "":
			return config{}, errors.New(`client_id and client_secret are required with auth "oauth": copy the Application ID and Secret of the OAuth application`)
		case c.access == "" || c.refresh == "":
			return config{}, errors.New(`access_token and refresh_token are required with auth "oauth": authorize the application once and paste both tokens`)
		case hasSpace(c.access) || hasSpace(c.refresh) || hasSpace(c.clientID) || hasSpace(c.secret):
			return config{}, errors.New("an OAuth credential contains whitespace: paste each value alone")
		}
		if raw := strings.TrimSpace(in.Secrets[SecretTokenExpires]); raw != "" {
			t, err := time.Parse(time.RFC3339, raw)
			if err != nil {
				return config{}, fmt.Errorf("token_expires_at must be an RFC 3339 time such as 2026-11-20T14:00:00Z, or empty")
			}
			c.expires = t
		}
	default:
		return config{}, fmt.Errorf(`auth must be "token" or "oauth", not %q`, c.auth)
	}
	return c, nil
}

// Configure checks and normalizes an integration (base URL, auth mode, credentials, signing
// token). It calls nothing on the network and returns no route keys: GitLab delivers every
// hook to the integration's own URL.
func (Driver) Configure(in *forge.Integration) ([]string, error) {
	c, err := parseConfig(*in)
	if err != nil {
		return nil, fmt.Errorf("configure GitLab integration: %w", err)
	}
	in.BaseURL = c.webBase
	if in.Settings == nil {
		in.Settings = map[string]string{}
	}
	in.Settings[SettingAuth] = c.auth
	if c.signing != "" {
		in.Secrets[SecretSigningToken] = c.signing
	}
	return nil, nil
}

// Open returns a Client for the integration using env's HTTP client (rate limiting, caching
// and TLS trust are the core's). It calls nothing on the network.
func (Driver) Open(_ context.Context, in forge.Integration, env forge.Env) (forge.Client, error) {
	c, err := parseConfig(in)
	if err != nil {
		return nil, fmt.Errorf("open GitLab integration: %w", err)
	}
	return newClient(c, env), nil
}

// Webhooks returns GitLab's delivery side.
func (d Driver) Webhooks() forge.Webhooks {
	if d.webhooks == nil { // a Driver not made by New
		return glwebhook.New()
	}
	return d.webhooks
}

func envDefaults(env forge.Env) forge.Env {
	if env.HTTP == nil {
		env.HTTP = http.DefaultClient
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	return env
}
