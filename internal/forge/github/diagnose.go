package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// minGHES is the oldest GitHub Enterprise Server release Forgeway supports.
const minGHES = "3.12"

// Diagnose checks, in order: the API is reachable (naming DNS, connection, timeout or TLS
// trust when not), the GitHub Enterprise Server version, the credential (the App's JWT, or
// the token, its expiry and a classic token's scopes), that the App is installed somewhere,
// that repositories can be listed, and the rate-limit budget. It stops after the first check
// that makes the next ones meaningless.
func (c *Client) Diagnose(ctx context.Context) []forge.Check {
	var checks []forge.Check
	add := func(ch forge.Check) { checks = append(checks, ch) }

	reach, hdr := c.checkReachable(ctx)
	add(reach)
	if !reach.OK {
		return checks
	}
	if !c.cfg.dotcom {
		add(checkVersion(hdr))
	}
	cred, ok := c.checkCredential(ctx)
	for _, ch := range cred {
		add(ch)
	}
	if !ok {
		return checks
	}
	listable := c.checkListing(ctx)
	for _, ch := range listable {
		add(ch)
	}
	add(c.checkBudget(ctx))
	return checks
}

// checkReachable calls GET /meta without credentials: any HTTP answer proves the API is
// reachable.
func (c *Client) checkReachable(ctx context.Context) (forge.Check, http.Header) {
	ch := forge.Check{Name: "GitHub API reachable"}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.apiBase+"/meta", nil)
	if err != nil {
		ch.Detail, ch.Hint = "the API URL is invalid", "check the integration's base URL"
		return ch, nil
	}
	hr.Header.Set("Accept", "application/vnd.github+json")
	hr.Header.Set("User-Agent", "forgeway")
	resp, err := c.http.Do(hr)
	if err != nil {
		ch.Detail, ch.Hint = classifyNetError(err, c.cfg.apiBase)
		return ch, nil
	}
	resp.Body.Close()
	c.observe(resp.Header)
	ch.Detail = fmt.Sprintf("%s answered %d", c.cfg.apiBase, resp.StatusCode)
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500 {
		ch.Hint = "the URL answers but is not a GitHub API: for GitHub Enterprise Server enter the server's address (https://ghe.example.com), not a path inside it"
		if resp.StatusCode >= 500 {
			ch.Hint = "GitHub answered with a server error: check its status page (or the appliance's health), then try again"
		}
		return ch, resp.Header
	}
	ch.OK = true
	return ch, resp.Header
}

// classifyNetError names why a request never got an answer, and what to do.
func classifyNetError(err error, api string) (string, string) {
	return forge.Unreachable(err, api, "GitHub")
}

// checkVersion reads X-GitHub-Enterprise-Version.
func checkVersion(h http.Header) forge.Check {
	ch := forge.Check{Name: "GitHub Enterprise Server version"}
	v := h.Get("X-GitHub-Enterprise-Version")
	if v == "" {
		ch.OK, ch.Warning = true, true
		ch.Detail = "the server did not report a GitHub Enterprise Server version"
		ch.Hint = "if this is github.com or GitHub Enterprise Cloud, use https://github.com as the base URL"
		return ch
	}
	ch.Detail = "GitHub Enterprise Server " + v
	if versionLess(v, minGHES) {
		ch.Hint = "Forgeway needs GitHub Enterprise Server " + minGHES + " or later: upgrade the server"
		return ch
	}
	ch.OK = true
	return ch
}

// versionLess compares dotted versions numerically ("3.9.1" < "3.12").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func (c *Client) checkCredential(ctx context.Context) ([]forge.Check, bool) {
	if c.cfg.auth == AuthApp {
		return c.checkApp(ctx)
	}
	return c.checkToken(ctx)
}

func (c *Client) checkApp(ctx context.Context) ([]forge.Check, bool) {
	ch := forge.Check{Name: "GitHub App credentials"}
	var app struct {
		ID   int64  `json:"id"`
		Slug string `json:"slug"`
		Name string `json:"name"`
	}
	_, err := c.do(ctx, request{op: "authenticate as the App", method: http.MethodGet, path: "/app", cred: c.appCredential(), out: &app})
	if err != nil {
		ch.Detail, ch.Hint = describeFailure(err)
		if errors.Is(err, forge.ErrUnauthorized) {
			ch.Hint = "GitHub refused the App's JWT: check that app_id is the App ID of the App whose private key you pasted " +
				"(generate a new key on the App's settings page if unsure), and that this host's clock is right"
		}
		return []forge.Check{ch}, false
	}
	ch.OK, ch.Detail = true, fmt.Sprintf("authenticated as the App %q (App ID %d)", app.Name, app.ID)
	checks := []forge.Check{ch}
	if c.cfg.appSlug != "" && app.Slug != c.cfg.appSlug {
		checks = append(checks, forge.Check{Name: "GitHub App name", OK: true, Warning: true,
			Detail: fmt.Sprintf("app_slug is %q but the App is %q", c.cfg.appSlug, app.Slug),
			Hint:   "set app_slug to " + app.Slug + " so that installation links work"})
	}

	inst := forge.Check{Name: "GitHub App installed"}
	list, err := c.Installations(ctx)
	switch {
	case err != nil:
		inst.Detail, inst.Hint = describeFailure(err)
	case len(list) == 0:
		inst.Detail = "the App is not installed on any account"
		inst.Hint = "install it on the organizations or accounts whose repositories Forgeway should see"
		if c.cfg.appSlug != "" {
			inst.Hint += ": " + c.cfg.webBase + "/apps/" + url.PathEscape(c.cfg.appSlug) + "/installations/new"
		}
	default:
		var names, suspended []string
		for _, in := range list {
			if in.Suspended {
				suspended = append(suspended, in.Account)
			} else {
				names = append(names, in.Account)
			}
		}
		inst.OK = len(names) > 0
		inst.Detail = "installed on " + strings.Join(names, ", ")
		if len(suspended) > 0 {
			inst.Warning = true
			inst.Detail += "; suspended on " + strings.Join(suspended, ", ")
			inst.Hint = "an owner of the account can unsuspend the App in the account's settings, Installed GitHub Apps"
		}
		if !inst.OK {
			inst.Detail = "every installation is suspended (" + strings.Join(suspended, ", ") + ")"
		}
	}
	checks = append(checks, inst)
	return checks, inst.OK
}

func (c *Client) checkToken(ctx context.Context) ([]forge.Check, bool) {
	ch := forge.Check{Name: "GitHub token"}
	var user struct {
		Login string `json:"login"`
	}
	resp, err := c.do(ctx, request{op: "authenticate with the token", method: http.MethodGet, path: "/user", cred: c.tokenCredential(), out: &user})
	if err != nil {
		ch.Detail, ch.Hint = describeFailure(err)
		if errors.Is(err, forge.ErrUnauthorized) {
			ch.Hint = "the token is wrong, expired or revoked: create a new personal access token and update the integration"
		}
		return []forge.Check{ch}, false
	}
	ch.OK, ch.Detail = true, "authenticated as "+user.Login
	c.mu.Lock()
	exp := c.patExp
	c.mu.Unlock()
	if !exp.IsZero() {
		ch.Detail += ", token expires " + exp.UTC().Format(time.DateOnly)
		if exp.Sub(c.now()) < 7*24*time.Hour {
			ch.Warning = true
			ch.Hint = "the token expires within a week: create a new one and update the integration before then"
		}
	}
	checks := []forge.Check{ch}
	scopes := forge.Check{Name: "GitHub token scopes"}
	if raw, classic := resp.Header["X-Oauth-Scopes"]; classic {
		have := splitScopes(strings.Join(raw, ","))
		var missing []string
		for _, want := range []string{"repo", "admin:repo_hook"} {
			if !hasScope(have, want) {
				missing = append(missing, want)
			}
		}
		scopes.Detail = "classic token with scopes: " + strings.Join(have, ", ")
		if len(missing) > 0 {
			scopes.Hint = "the token lacks " + strings.Join(missing, " and ") + ": edit the token on GitHub (Settings › Developer settings › Personal access tokens) and tick them"
		} else {
			scopes.OK = true
		}
	} else {
		scopes.OK, scopes.Warning = true, true
		scopes.Detail = "fine-grained token: GitHub does not report its permissions"
		scopes.Hint = "make sure it has repository permissions Contents, Pull requests and Webhooks (read and write) and Metadata (read) on the repositories Forgeway should manage"
	}
	checks = append(checks, scopes)
	return checks, true
}

// checkListing lists one repository, to prove discovery works.
func (c *Client) checkListing(ctx context.Context) []forge.Check {
	ch := forge.Check{Name: "Repositories listable"}
	var err error
	var count int
	if c.cfg.auth == AuthApp {
		var list []forge.Installation
		list, err = c.Installations(ctx)
		for _, in := range list {
			if in.Suspended || err != nil {
				continue
			}
			id, _ := strconv.ParseInt(in.ID, 10, 64)
			var page installationRepos
			_, err = c.do(ctx, request{op: "list the repositories of installation " + in.ID, method: http.MethodGet,
				path: "/installation/repositories?per_page=1", cred: c.installationCredential(id), out: &page})
			count += page.TotalCount
		}
	} else {
		var resp *http.Response
		var page []ghRepo
		resp, err = c.do(ctx, request{op: "list the token's repositories", method: http.MethodGet,
			path: "/user/repos?per_page=1&affiliation=owner,collaborator,organization_member", cred: c.tokenCredential(), out: &page})
		if err == nil {
			count = max(lastPage(resp.Header), len(page))
		}
	}
	if err != nil {
		ch.Detail, ch.Hint = describeFailure(err)
		return []forge.Check{ch}
	}
	ch.OK = true
	ch.Detail = fmt.Sprintf("%d repositories visible", count)
	if count == 0 {
		ch.Warning = true
		ch.Hint = "the credential sees no repository: grant the App access to repositories, or use a token of an account that has some"
	}
	return []forge.Check{ch}
}

// checkBudget reads GET /rate_limit (free of charge).
func (c *Client) checkBudget(ctx context.Context) forge.Check {
	ch := forge.Check{Name: "Rate-limit budget"}
	cred := c.tokenCredential()
	if c.cfg.auth == AuthApp {
		cred = c.appCredential()
	}
	var out struct {
		Resources struct {
			Core struct {
				Limit     int   `json:"limit"`
				Remaining int   `json:"remaining"`
				Reset     int64 `json:"reset"`
			} `json:"core"`
		} `json:"resources"`
	}
	_, err := c.do(ctx, request{op: "read the rate limit", method: http.MethodGet, path: "/rate_limit", cred: cred, out: &out})
	if err != nil {
		if errors.Is(err, forge.ErrNotFound) {
			ch.OK, ch.Detail = true, "rate limiting is disabled on this server"
			return ch
		}
		ch.Detail, ch.Hint = describeFailure(err)
		return ch
	}
	core := out.Resources.Core
	reset := time.Unix(core.Reset, 0).UTC().Format(time.RFC3339)
	ch.Detail = fmt.Sprintf("%d of %d requests left this hour (resets %s)", core.Remaining, core.Limit, reset)
	switch {
	case core.Remaining == 0:
		ch.Hint = "the budget is spent: Forgeway waits until " + reset + "; if this repeats, narrow the repository filter or use a GitHub App (higher limits)"
	case core.Limit > 0 && core.Remaining*10 < core.Limit:
		ch.OK, ch.Warning = true, true
		ch.Hint = "less than 10% left: other tools may share this credential's budget"
	default:
		ch.OK = true
	}
	return ch
}

// describeFailure turns a failed call into a check's detail and hint.
func describeFailure(err error) (string, string) {
	var rl *forge.RateLimitError
	if errors.As(err, &rl) {
		return err.Error(), "wait until " + rl.Reset.UTC().Format(time.RFC3339) + " and try again"
	}
	switch {
	case errors.Is(err, forge.ErrUnauthorized):
		return err.Error(), "GitHub refused the credential: check it, or create a new one"
	case errors.Is(err, forge.ErrForbidden):
		return err.Error(), "the credential lacks a permission: for an App, accept its requested permissions; for a token, add the scopes"
	case errors.Is(err, forge.ErrNotFound):
		return err.Error(), "GitHub does not know this resource: check the base URL and the App ID"
	case errors.Is(err, context.DeadlineExceeded):
		return err.Error(), "GitHub did not answer in time: try again, and check the network"
	}
	return err.Error(), "try again; if it persists, check GitHub's status and the network"
}
