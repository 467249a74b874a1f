// Package azuredevops is Forgeway's driver for Azure DevOps: Azure DevOps Services
// (https://dev.azure.com/{organization}) and Azure DevOps Server (a collection URL such as
// https://devops.example.com/tfs/DefaultCollection).
//
// It owns everything the core needs from Azure DevOps' REST API (version 7.1): checking an
// integration's settings, authenticating with a personal access token (HTTP basic, empty user
// name), discovering the repositories of every project the token sees, managing the three
// Service Hooks subscriptions (git.push, git.pullrequest.created, git.pullrequest.updated)
// that deliver a repository's events to Forgeway with basic authentication, git credentials,
// branches and pull requests, and diagnosing a connection. The delivery side is package
// adowebhook. It speaks REST over the core's HTTP client with the standard library rather than
// Microsoft's azure-devops-go-api: that SDK resolves every call through a location lookup of
// its own, keeps a package-level cache and session, and hides the status and rate-limit headers
// the core's error mapping and budget need; the handful of endpoints used here keep error
// mapping, credentials and paging in one place.
package azuredevops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/adowebhook"
)

// Settings and secrets keys of an Azure DevOps integration.
const (
	// SettingWebhookUser is the basic-auth user name of the subscriptions' deliveries.
	SettingWebhookUser = adowebhook.SettingWebhookUser
	// SettingWebhookHeader optionally names an extra header the subscriptions send.
	SettingWebhookHeader = adowebhook.SettingWebhookHeader
	// SettingProjects optionally limits discovery to a comma-separated list of projects.
	SettingProjects = "projects"
	// SettingPullRequestUpdates selects which pull request updates are delivered: "push"
	// (default: source-branch pushes only) or "all".
	SettingPullRequestUpdates = "pull_request_updates"
	// SecretToken is the personal access token.
	SecretToken = "token"

	// PullRequestUpdatesPush delivers git.pullrequest.updated for source-branch pushes only.
	PullRequestUpdatesPush = "push"
	// PullRequestUpdatesAll delivers every git.pullrequest.updated (status, reviewers, votes).
	PullRequestUpdatesAll = "all"
)

// Driver is the Azure DevOps driver. What it holds is made by New and never changes.
type Driver struct {
	// webhooks is made once: its decoders are worked out from the payload types.
	webhooks *adowebhook.Webhooks
}

// New returns the Azure DevOps driver.
func New() forge.Driver { return Driver{webhooks: adowebhook.New()} }

// Kind is forge.AzureDevOps.
func (Driver) Kind() forge.Kind { return forge.AzureDevOps }

// Fields documents the settings and secrets of an Azure DevOps integration in the words of
// Azure DevOps' own pages.
func (Driver) Fields() []forge.Field {
	return []forge.Field{
		{Key: SecretToken, Secret: true, Required: true, Help: `A personal access token: in Azure DevOps, User settings ` +
			`(the person icon, top right) › Personal access tokens › New Token. Organization: this one (or "All accessible ` +
			`organizations"). Scopes: Custom defined, Code: "Read & write" and "Status", Project and Team: "Read". The ` +
			`token's owner must be a Project Administrator of the projects, or have the "Edit subscriptions" permission ` +
			`(Project settings › Service hooks), so that Forgeway can create the service hook subscriptions.`},
		{Key: SettingWebhookUser, Help: `The user name Azure DevOps sends with every delivery (basic authentication; the ` +
			`password is the integration's webhook secret). Default "` + adowebhook.DefaultWebhookUser + `". No spaces or colons.`},
		{Key: SettingWebhookHeader, Help: `Optional: the name of an extra HTTP header (for example X-Forgeway-Token) that the ` +
			`subscriptions send and Forgeway checks besides basic authentication; useful when a proxy in front of Forgeway ` +
			`filters on a header. Its value is derived from the webhook secret, never the secret itself, because Azure DevOps ` +
			`shows subscription headers to anyone who can view service hooks.`},
		{Key: SettingProjects, Help: `Optional: a comma-separated list of project names; discovery then lists only these ` +
			`projects' repositories. Empty: every project the token can see.`},
		{Key: SettingPullRequestUpdates, Help: `Which pull request updates Azure DevOps delivers: "push" (default) for ` +
			`source-branch pushes only, as the "Pull request updated" event filtered to "Source branch updated"; "all" to ` +
			`also receive status changes (completed → merged, abandoned → closed), reviewer and vote changes.`},
	}
}

// apiVersion is the REST API version of every call (connectionData, a preview API, excepted).
const apiVersion = "7.1"

// config is an integration's settings, checked and parsed.
type config struct {
	base        string // organization or collection URL, no trailing slash
	token       string
	webhookUser string
	header      string // optional secret header name
	projects    []string
	prUpdates   string
}

// guidRE matches a GUID as Azure DevOps writes them.
var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// tokenRE is an RFC 9110 header field name.
var tokenRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// reservedHeaders are headers a subscription cannot be given as its secret header.
var reservedHeaders = map[string]bool{
	"authorization": true, "content-type": true, "content-length": true, "host": true, "user-agent": true,
	"connection": true, "transfer-encoding": true, "expect": true, "cookie": true,
}

// normalizeBaseURL checks the URL a user entered and returns the organization or collection
// URL: https://dev.azure.com/{organization} for Azure DevOps Services (a pasted project or
// repository URL, or the legacy https://{organization}.visualstudio.com, is reduced to it), or
// the collection URL of an Azure DevOps Server, without a trailing slash.
func normalizeBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("base URL is required: https://dev.azure.com/{organization} for Azure DevOps Services, or the collection URL of your Azure DevOps Server (https://devops.example.com/tfs/DefaultCollection)")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("base URL must be an absolute http(s) URL such as https://dev.azure.com/fabrikam or https://devops.example.com/tfs/DefaultCollection")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("base URL must not carry credentials, a query or a fragment")
	}
	segs := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
	host := strings.ToLower(u.Hostname())
	switch {
	case host == "dev.azure.com":
		if len(segs) == 0 || strings.HasPrefix(segs[0], "_") {
			return "", errors.New("base URL must name the organization: https://dev.azure.com/{organization}")
		}
		return "https://dev.azure.com/" + url.PathEscape(segs[0]), nil
	case strings.HasSuffix(host, ".visualstudio.com") && strings.Count(host, ".") == 2 && !strings.HasPrefix(host, "app."):
		org := strings.TrimSuffix(host, ".visualstudio.com")
		return "https://dev.azure.com/" + url.PathEscape(org), nil
	}
	if len(segs) == 0 {
		return "", errors.New("base URL must be the collection URL of the Azure DevOps Server, for example https://devops.example.com/tfs/DefaultCollection (not the server's home page)")
	}
	for _, s := range segs {
		if strings.HasPrefix(s, "_") {
			return "", fmt.Errorf("base URL must be the collection URL, not a page inside it (%q): for example https://devops.example.com/tfs/DefaultCollection", "/"+s)
		}
	}
	u.Path = "/" + strings.Join(segs, "/")
	u.RawPath = ""
	return u.String(), nil
}

// parseConfig checks an integration without touching the network.
func parseConfig(in forge.Integration) (config, error) {
	base, err := normalizeBaseURL(in.BaseURL)
	if err != nil {
		return config{}, err
	}
	c := config{base: base}
	c.token = strings.TrimSpace(in.Secrets[SecretToken])
	if c.token == "" {
		return config{}, errors.New(`token is required: create a personal access token in Azure DevOps (User settings › Personal access tokens) with scopes Code "Read & write" and "Status", and Project and Team "Read"`)
	}
	if strings.ContainsAny(c.token, " \t\r\n") {
		return config{}, errors.New("token contains whitespace: paste the token alone")
	}
	c.webhookUser = strings.TrimSpace(in.Settings[SettingWebhookUser])
	if c.webhookUser == "" {
		c.webhookUser = adowebhook.DefaultWebhookUser
	}
	if len(c.webhookUser) > 256 || strings.ContainsAny(c.webhookUser, ": \t\r\n") {
		return config{}, fmt.Errorf("%s %q must be at most 256 characters, without spaces or colons (Azure DevOps sends it as a basic-auth user name)", SettingWebhookUser, c.webhookUser)
	}
	c.header = strings.TrimSpace(in.Settings[SettingWebhookHeader])
	if c.header != "" && (!tokenRE.MatchString(c.header) || reservedHeaders[strings.ToLower(c.header)]) {
		return config{}, fmt.Errorf("%s %q is not a header name Forgeway can use: letters, digits and hyphens, such as X-Forgeway-Token", SettingWebhookHeader, c.header)
	}
	for _, p := range strings.Split(in.Settings[SettingProjects], ",") {
		if p = strings.TrimSpace(p); p != "" {
			if strings.ContainsAny(p, `/\`) {
				return config{}, fmt.Errorf("%s: %q is not a project name", SettingProjects, p)
			}
			c.projects = append(c.projects, p)
		}
	}
	switch c.prUpdates = strings.ToLower(strings.TrimSpace(in.Settings[SettingPullRequestUpdates])); c.prUpdates {
	case "":
		c.prUpdates = PullRequestUpdatesPush
	case PullRequestUpdatesPush, PullRequestUpdatesAll:
	default:
		return config{}, fmt.Errorf(`%s must be "push" or "all", not %q`, SettingPullRequestUpdates, c.prUpdates)
	}
	return c, nil
}

// Configure checks and normalizes an integration (base URL, token, webhook user and header,
// projects) and records the defaults it chose in the settings. Azure DevOps deliveries are
// addressed to the integration's own URL, so there are no route keys. It calls nothing on the
// network.
func (Driver) Configure(in *forge.Integration) ([]string, error) {
	c, err := parseConfig(*in)
	if err != nil {
		return nil, fmt.Errorf("configure Azure DevOps integration: %w", err)
	}
	in.BaseURL = c.base
	if in.Settings == nil {
		in.Settings = map[string]string{}
	}
	in.Settings[SettingWebhookUser] = c.webhookUser
	in.Settings[SettingPullRequestUpdates] = c.prUpdates
	if len(c.projects) > 0 {
		in.Settings[SettingProjects] = strings.Join(c.projects, ",")
	}
	return nil, nil
}

// Open returns a Client for the integration using env's HTTP client (rate limiting, retries
// and TLS trust are the core's). It calls nothing on the network.
func (Driver) Open(_ context.Context, in forge.Integration, env forge.Env) (forge.Client, error) {
	c, err := parseConfig(in)
	if err != nil {
		return nil, fmt.Errorf("open Azure DevOps integration: %w", err)
	}
	if env.HTTP == nil {
		env.HTTP = http.DefaultClient
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	return &Client{cfg: c, http: env.HTTP, now: env.Now}, nil
}

// Webhooks returns Azure DevOps' delivery side.
func (d Driver) Webhooks() forge.Webhooks {
	if d.webhooks == nil { // a Driver not made by New
		return adowebhook.New()
	}
	return d.webhooks
}
