// Package gitea is Forgeway's driver for Gitea and Forgejo (host kind "gitea").
//
// It owns everything the core needs from Gitea's REST API (/api/v1): checking an
// integration's settings, authenticating with an access token, discovering the repositories
// of the token's user and of their organizations, managing repository webhooks, git
// credentials, branches and pull requests, and diagnosing a connection. Forgejo serves the
// same API and is driven the same way. The delivery side (verifying and normalizing webhooks)
// is package giteawebhook.
//
// It speaks REST over the core's HTTP client with the standard library rather than Gitea's
// SDK (code.gitea.io/sdk/gitea, which go.mod does not carry, and whose client probes the
// server's version when created): the dozen endpoints it uses do not need one, and owning the
// calls keeps error mapping, pagination and the token in one place.
package gitea

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitea/giteawebhook"
)

// SecretToken is the secret key of the access token a Gitea integration authenticates with.
const SecretToken = "token"

// Driver is the Gitea driver. What it holds is made by New and never changes.
type Driver struct {
	// webhooks is made once: its decoders are worked out from the payload types.
	webhooks *giteawebhook.Webhooks
}

var _ forge.Driver = Driver{}

// New returns the Gitea (and Forgejo) driver.
func New() forge.Driver { return Driver{webhooks: giteawebhook.New()} }

// Kind is forge.Gitea.
func (Driver) Kind() forge.Kind { return forge.Gitea }

// Fields documents the one secret of a Gitea integration (its base URL is the integration's
// URL) in the words of Gitea's own settings pages.
func (Driver) Fields() []forge.Field {
	return []forge.Field{
		{Key: SecretToken, Secret: true, Required: true, Help: `An access token of the Gitea (or Forgejo) account Forgeway acts as: ` +
			`avatar menu › Settings › Applications › "Manage Access Tokens", give it a name, then under "Select permissions" ` +
			`set repository to "Read and Write" (write:repository: webhooks, branches, pull requests, push) and user to "Read" ` +
			`(read:user); organization "Read" (read:organization) is optional. "Generate Token" shows the token once: copy it. ` +
			`The account must be an administrator of every repository you attach, because Gitea lets only repository ` +
			`administrators manage webhooks. Gitea 1.20 or later (any Forgejo release since).`},
	}
}

// config is an integration's settings, checked and parsed.
type config struct {
	web   string // https://gitea.example.com or https://example.com/gitea, no trailing slash
	api   string // web + "/api/v1"
	token string
}

// normalizeBaseURL checks the URL a user entered and returns the web base: an absolute
// http(s) URL without credentials, query, fragment or trailing slash. A pasted API URL
// ("…/api/v1", "…/api/swagger") is reduced to the web base; a sub-path install
// (https://example.com/gitea) keeps its path.
func normalizeBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("base URL is required: the address you open Gitea at, such as https://gitea.example.com")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("base URL must be an absolute http(s) URL such as https://gitea.example.com or https://example.com/gitea")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("base URL must not carry credentials, a query or a fragment")
	}
	p := strings.TrimRight(u.Path, "/")
	for _, suffix := range []string{"/api/swagger", "/api/v1", "/api"} {
		if strings.HasSuffix(p, suffix) {
			p = strings.TrimSuffix(p, suffix)
			break
		}
	}
	u.Path, u.RawPath = p, ""
	u.Host = strings.ToLower(u.Host)
	return u.String(), nil
}

// parseConfig checks an integration without touching the network.
func parseConfig(in forge.Integration) (config, error) {
	web, err := normalizeBaseURL(in.BaseURL)
	if err != nil {
		return config{}, err
	}
	tok := strings.TrimSpace(in.Secrets[SecretToken])
	switch {
	case tok == "":
		return config{}, errors.New(`token is required: create an access token in Gitea (Settings › Applications) with repository "Read and Write" and user "Read"`)
	case strings.HasPrefix(strings.ToLower(tok), "token ") || strings.HasPrefix(strings.ToLower(tok), "bearer "):
		return config{}, errors.New(`token starts with "token" or "Bearer": paste the token alone, without the header's scheme`)
	case strings.ContainsAny(tok, " \t\r\n"):
		return config{}, errors.New("token contains whitespace: paste the token alone")
	}
	return config{web: web, api: web + "/api/v1", token: tok}, nil
}

// Configure checks and normalizes an integration: a base URL (required; an API URL is reduced
// to Gitea's address) and a token. Gitea has no host-level deliveries, so it returns no route
// keys: repository hooks point at the integration's own URL. It calls nothing on the network.
func (Driver) Configure(in *forge.Integration) ([]string, error) {
	c, err := parseConfig(*in)
	if err != nil {
		return nil, fmt.Errorf("configure Gitea integration: %w", err)
	}
	in.BaseURL = c.web
	return nil, nil
}

// Open returns a Client for the integration using env's HTTP client (rate limiting, caching
// and TLS trust are the core's). It calls nothing on the network.
func (Driver) Open(_ context.Context, in forge.Integration, env forge.Env) (forge.Client, error) {
	c, err := parseConfig(in)
	if err != nil {
		return nil, fmt.Errorf("open Gitea integration: %w", err)
	}
	if env.HTTP == nil {
		env.HTTP = http.DefaultClient
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	return &Client{cfg: c, http: env.HTTP, now: env.Now}, nil
}

// Webhooks returns Gitea's delivery side.
func (d Driver) Webhooks() forge.Webhooks {
	if d.webhooks == nil { // a Driver not made by New
		return giteawebhook.New()
	}
	return d.webhooks
}
