// Package bitbucketdc is Forgeway's driver for Bitbucket Data Center (formerly Bitbucket
// Server).
//
// It owns everything the core needs from Bitbucket's REST API (/rest/api/1.0): checking an
// integration's settings, authenticating with an HTTP access token (project, repository or
// personal) sent as a bearer token, discovering repositories across projects, managing
// repository webhooks, git credentials, branches and pull requests, and diagnosing a
// connection. The delivery side (verifying and normalizing webhooks) is package bbwebhook.
// Bitbucket has no Go SDK worth the name, so it speaks REST over the core's HTTP client with
// the standard library, which keeps error mapping, paging and the credential in one place.
package bitbucketdc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bbwebhook"
)

// SecretToken is the key of the integration's HTTP access token.
const SecretToken = "token"

// Driver is the Bitbucket Data Center driver. What it holds is made by New and never changes.
type Driver struct {
	// webhooks is made once: its decoders are worked out from the payload types.
	webhooks *bbwebhook.Webhooks
}

// New returns the Bitbucket Data Center driver.
func New() forge.Driver { return Driver{webhooks: bbwebhook.New()} }

var _ forge.Driver = Driver{}

// Kind is forge.BitbucketDC.
func (Driver) Kind() forge.Kind { return forge.BitbucketDC }

// Fields documents the secret of a Bitbucket integration in the words of Bitbucket's own
// settings pages. The base URL is the address people browse to.
func (Driver) Fields() []forge.Field {
	return []forge.Field{
		{Key: SecretToken, Secret: true, Required: true, Help: `An HTTP access token. For one project: the project's ` +
			`Project settings › HTTP access tokens › Create token, with Project permissions "Project read" and ` +
			`Repository permissions "Repository admin" (admin is what creating webhooks needs). For several projects: ` +
			`sign in as a service account that is admin of their repositories, then your avatar › Manage account › ` +
			`HTTP access tokens › Create token, with the same permissions. Set an expiry you will remember to renew ` +
			`before. Bitbucket shows the token once: copy it then.`},
	}
}

// config is an integration's settings, checked and parsed.
type config struct {
	web   string // https://bitbucket.example.com[/context], no trailing slash
	api   string // web + /rest/api/1.0
	token string
	name  string // webhook name: "Forgeway" and the integration id
}

// normalizeBaseURL checks the URL a user entered and returns the web base: an absolute
// http(s) URL without credentials, query, fragment or trailing slash. A pasted REST URL
// (".../rest/api/1.0", ".../rest") or a browse URL (".../projects/...") is reduced to the
// base, keeping a context path (https://example.com/bitbucket).
func normalizeBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("the base URL is required: the address of your Bitbucket, such as https://bitbucket.example.com")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("base URL must be an absolute http(s) URL such as https://bitbucket.example.com")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("base URL must not carry credentials, a query or a fragment")
	}
	p := strings.TrimSuffix(u.Path, "/")
	for _, marker := range []string{"/rest/", "/projects/", "/users/", "/scm/", "/dashboard", "/plugins/"} {
		if i := strings.Index(p+"/", marker); i >= 0 {
			p = p[:i]
		}
	}
	u.Path = strings.TrimSuffix(p, "/")
	u.RawPath = ""
	return u.String(), nil
}

// parseConfig checks an integration without touching the network.
func parseConfig(in forge.Integration) (config, error) {
	web, err := normalizeBaseURL(in.BaseURL)
	if err != nil {
		return config{}, err
	}
	tok := strings.TrimSpace(in.Secrets[SecretToken])
	if tok == "" {
		return config{}, errors.New(`token is required: create an HTTP access token in Bitbucket (Project settings › HTTP access tokens) with "Project read" and "Repository admin"`)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return config{}, errors.New("token contains whitespace: paste the token alone, without \"Bearer\"")
	}
	name := "Forgeway"
	if id := strings.TrimSpace(in.ID); id != "" {
		name += " " + id
	}
	return config{web: web, api: web + "/rest/api/1.0", token: tok, name: name}, nil
}

// Configure checks and normalizes an integration (base URL, token). It calls nothing on the
// network. Bitbucket delivers only repository webhooks addressed to the integration's own
// URL, so there are no route keys.
func (Driver) Configure(in *forge.Integration) ([]string, error) {
	c, err := parseConfig(*in)
	if err != nil {
		return nil, fmt.Errorf("configure Bitbucket Data Center integration: %w", err)
	}
	in.BaseURL = c.web
	return nil, nil
}

// Open returns a Client for the integration using env's HTTP client (rate limiting, retries
// and TLS trust are the core's). It calls nothing on the network.
func (Driver) Open(_ context.Context, in forge.Integration, env forge.Env) (forge.Client, error) {
	c, err := parseConfig(in)
	if err != nil {
		return nil, fmt.Errorf("open Bitbucket Data Center integration: %w", err)
	}
	if env.HTTP == nil {
		env.HTTP = http.DefaultClient
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	return &Client{cfg: c, http: env.HTTP, now: env.Now}, nil
}

// Webhooks returns Bitbucket Data Center's delivery side.
func (d Driver) Webhooks() forge.Webhooks {
	if d.webhooks == nil { // a Driver not made by New
		return bbwebhook.New()
	}
	return d.webhooks
}
