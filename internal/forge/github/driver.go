// Package github is Forgeway's driver for GitHub: github.com, GitHub Enterprise Cloud and
// GitHub Enterprise Server.
//
// It owns everything the core needs from GitHub's REST API: checking an integration's
// settings, authenticating as a GitHub App (a JWT, then installation tokens minted and renewed
// per operation) or with a personal access token, discovering installations and repositories,
// managing repository webhooks, git credentials, branches and pull requests, diagnosing a
// connection, and GitHub's App-manifest and OAuth flows. The delivery side (verifying and
// normalizing webhooks) is package ghwebhook. It speaks REST over the core's HTTP client
// with the standard library: the handful of endpoints it uses do not need an SDK, and owning
// the calls keeps error mapping, pagination and credentials in one place.
package github

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/github/ghwebhook"
)

// Settings and secrets keys of a GitHub integration.
const (
	SettingAuth         = "auth"         // "app" or "token"
	SettingAppID        = "app_id"       // the App's numeric id
	SettingAppSlug      = "app_slug"     // the App's URL name
	SettingClientID     = "client_id"    // the App's OAuth client id
	SettingOrganization = "organization" // the organization that owns (or will own) the App
	SecretPrivateKey    = "private_key"  // the App's private key, PEM
	SecretClientSecret  = "client_secret"
	SecretToken         = "token" // personal access token, classic or fine-grained

	AuthApp   = "app"
	AuthToken = "token"
	// AuthManifest is an App integration waiting for its App: Forgeway creates the App with
	// GitHub's app-manifest flow, after which the integration becomes "app".
	AuthManifest = "manifest"
)

// Driver is the GitHub driver. What it holds is made by New and never changes.
type Driver struct {
	// webhooks is made once: its decoders are worked out from the payload types.
	webhooks *ghwebhook.Webhooks
}

// New returns the GitHub driver.
func New() forge.Driver { return Driver{webhooks: ghwebhook.New()} }

// Kind is forge.GitHub.
func (Driver) Kind() forge.Kind { return forge.GitHub }

// Fields documents the settings and secrets of a GitHub integration in the words of GitHub's
// own settings pages.
func (Driver) Fields() []forge.Field {
	return []forge.Field{
		{Key: SettingAuth, Required: true, Help: `How Forgeway authenticates: "app" for a GitHub App (recommended: ` +
			`short-lived tokens, one webhook for every repository), "manifest" to have Forgeway create the App ` +
			`for you (GitHub's app-manifest flow; it becomes "app"), or "token" for a personal access token.`},
		{Key: SettingAppID, Help: `Required with auth "app". The App ID shown at the top of the App's settings page ` +
			`(Settings › Developer settings › GitHub Apps › your App › General › "App ID"), a number.`},
		{Key: SettingAppSlug, Help: `The App's name as it appears in its public URL (github.com/apps/<name>); ` +
			`needed to send people to the App's installation page. When Forgeway creates the App, the name to give it.`},
		{Key: SettingClientID, Help: `The App's "Client ID" from the same General page (starts with "Iv"); ` +
			`needed to act as the signed-in person (user tokens).`},
		{Key: SettingOrganization, Help: `Optional: the organization that owns the App. When Forgeway creates the App ` +
			`for you, it is created under this organization instead of your personal account.`},
		{Key: SecretPrivateKey, Secret: true, Help: `Required with auth "app". The App's private key: on the App's ` +
			`General page, "Private keys" › "Generate a private key", then paste the whole downloaded .pem file ` +
			`including the BEGIN and END lines.`},
		{Key: SecretClientSecret, Secret: true, Help: `The App's client secret ("Client secrets" › "Generate a new ` +
			`client secret" on the General page); needed, with the Client ID, to act as the signed-in person.`},
		{Key: SecretToken, Secret: true, Help: `Required with auth "token". A personal access token (Settings › ` +
			`Developer settings › Personal access tokens). Classic tokens need the "repo" and "admin:repo_hook" ` +
			`scopes; fine-grained tokens need repository permissions Contents, Pull requests and Webhooks ` +
			`(read and write) and Metadata (read).`},
	}
}

// config is an integration's settings, checked and parsed.
type config struct {
	auth     string
	apiBase  string // https://api.github.com or https://ghe.example.com/api/v3, no trailing slash
	webBase  string // https://github.com or https://ghe.example.com
	dotcom   bool   // GitHub's cloud (github.com, or GHE.com data residency): no server version
	appID    int64
	appSlug  string
	clientID string
	org      string
	key      *rsa.PrivateKey
	token    string
	secret   string // client secret
}

var loginRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)

// normalizeBaseURL checks the URL a user entered and returns the web base: an absolute
// http(s) URL without credentials, query or trailing slash. "https://api.github.com" and a
// pasted "…/api/v3" are reduced to the web base.
func normalizeBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "https://github.com", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("base URL must be an absolute http(s) URL such as https://github.com or https://ghe.example.com")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("base URL must not carry credentials, a query or a fragment")
	}
	if strings.EqualFold(u.Host, "api.github.com") || strings.EqualFold(u.Host, "www.github.com") {
		u.Host = "github.com"
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v3")
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// apiBase is the REST API root for a web base: api.github.com for github.com, api.<name>
// for GitHub Enterprise Cloud with data residency (<name>.ghe.com), <base>/api/v3 for
// GitHub Enterprise Server. cloud reports the first two.
func apiBase(web string) (api string, cloud bool) {
	u, _ := url.Parse(web)
	host := strings.ToLower(u.Host)
	switch {
	case host == "github.com":
		return "https://api.github.com", true
	case strings.HasSuffix(host, ".ghe.com") && u.Path == "":
		return u.Scheme + "://api." + host, true
	}
	return web + "/api/v3", false
}

// parsePrivateKey accepts an RSA key in PKCS#1 ("RSA PRIVATE KEY", what GitHub hands out)
// or PKCS#8 ("PRIVATE KEY") PEM.
func parsePrivateKey(pemText string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(pemText)))
	if block == nil {
		return nil, errors.New(`private_key is not PEM: paste the whole .pem file GitHub downloaded, from "-----BEGIN" to "-----END"`)
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New(`private_key is not an RSA private key (PKCS#1 "BEGIN RSA PRIVATE KEY" or PKCS#8 "BEGIN PRIVATE KEY"): generate a new private key on the App's settings page`)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("private_key is not an RSA key: GitHub Apps sign with RSA keys; generate a new private key on the App's settings page")
	}
	return rk, nil
}

// parseConfig checks an integration without touching the network.
func parseConfig(in forge.Integration) (config, error) {
	web, err := normalizeBaseURL(in.BaseURL)
	if err != nil {
		return config{}, err
	}
	c := config{webBase: web}
	c.apiBase, c.dotcom = apiBase(web)
	c.auth = strings.TrimSpace(in.Settings[SettingAuth])
	if c.auth == "" {
		switch {
		case in.Settings[SettingAppID] != "":
			c.auth = AuthApp
		case in.Secrets[SecretToken] != "":
			c.auth = AuthToken
		}
	}
	c.appSlug = strings.TrimSpace(in.Settings[SettingAppSlug])
	c.clientID = strings.TrimSpace(in.Settings[SettingClientID])
	c.secret = in.Secrets[SecretClientSecret]
	c.org = strings.TrimSpace(in.Settings[SettingOrganization])
	if c.org != "" && !loginRE.MatchString(c.org) {
		return config{}, fmt.Errorf("organization %q is not a GitHub login (letters, digits and hyphens)", c.org)
	}
	switch c.auth {
	case AuthApp:
		raw := strings.TrimSpace(in.Settings[SettingAppID])
		if raw == "" {
			return config{}, errors.New(`app_id is required with auth "app": copy the App ID from the App's settings page`)
		}
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			return config{}, fmt.Errorf(`app_id must be the App's numeric App ID, not %q (the Client ID starting with "Iv" goes in client_id)`, raw)
		}
		c.appID = id
		if strings.TrimSpace(in.Secrets[SecretPrivateKey]) == "" {
			return config{}, errors.New(`private_key is required with auth "app": generate one on the App's settings page and paste the .pem file`)
		}
		if c.key, err = parsePrivateKey(in.Secrets[SecretPrivateKey]); err != nil {
			return config{}, err
		}
	case AuthToken:
		c.token = strings.TrimSpace(in.Secrets[SecretToken])
		if c.token == "" {
			return config{}, errors.New(`token is required with auth "token": create a personal access token on GitHub`)
		}
		if strings.ContainsAny(c.token, " \t\r\n") {
			return config{}, errors.New("token contains whitespace: paste the token alone")
		}
	case AuthManifest:
		// Nothing to check until GitHub has created the App.
	case "":
		return config{}, errors.New(`auth is required: "app" (a GitHub App), "manifest" (Forgeway creates the App) or "token" (a personal access token)`)
	default:
		return config{}, fmt.Errorf(`auth must be "app", "manifest" or "token", not %q`, c.auth)
	}
	return c, nil
}

// Configure checks and normalizes an integration (base URL, auth mode, App ID, private key,
// token) and returns "app:<id>" as the route key of an App integration. It calls nothing on
// the network.
func (Driver) Configure(in *forge.Integration) ([]string, error) {
	c, err := parseConfig(*in)
	if err != nil {
		return nil, fmt.Errorf("configure GitHub integration: %w", err)
	}
	in.BaseURL = c.webBase
	if in.Settings == nil {
		in.Settings = map[string]string{}
	}
	in.Settings[SettingAuth] = c.auth
	if c.auth == AuthApp {
		in.Settings[SettingAppID] = strconv.FormatInt(c.appID, 10)
		return []string{forge.AppRoute(strconv.FormatInt(c.appID, 10))}, nil
	}
	return nil, nil
}

// Open returns a Client for the integration using env's HTTP client (rate limiting, caching
// and TLS trust are the core's). It calls nothing on the network.
func (Driver) Open(_ context.Context, in forge.Integration, env forge.Env) (forge.Client, error) {
	c, err := parseConfig(in)
	if err != nil {
		return nil, fmt.Errorf("open GitHub integration: %w", err)
	}
	if c.auth == AuthManifest {
		return pendingApp{}, nil
	}
	return newClient(c, env), nil
}

// Webhooks returns GitHub's delivery side.
func (d Driver) Webhooks() forge.Webhooks {
	if d.webhooks == nil { // a Driver not made by New
		return ghwebhook.New()
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
