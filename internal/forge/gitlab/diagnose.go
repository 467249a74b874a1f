package gitlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// expiryWarning is how long before its expiry a token is reported as expiring soon.
const expiryWarning = 14 * 24 * time.Hour

// Diagnose checks, in order: the API is reachable (naming DNS, connection, timeout or TLS
// trust when not), the credential (valid, whose, its expiry, and that it has the "api"
// scope), the GitLab version (16.8 or later), that projects can be listed, and the rate-limit
// budget when GitLab reports one. It stops after a check that makes the next ones meaningless.
func (c *Client) Diagnose(ctx context.Context) []forge.Check {
	reach := c.checkReachable(ctx)
	checks := []forge.Check{reach}
	if !reach.OK {
		return checks
	}
	cred, ok := c.checkCredential(ctx)
	checks = append(checks, cred...)
	if !ok {
		return checks
	}
	checks = append(checks, c.checkVersion(ctx), c.checkListing(ctx))
	if b := c.Budget(); b.Limit > 0 {
		checks = append(checks, c.checkBudget(b))
	}
	return checks
}

// checkReachable calls GET /api/v4/version without credentials: any answer from GitLab's API
// (401 included) proves it is reachable.
func (c *Client) checkReachable(ctx context.Context) forge.Check {
	ch := forge.Check{Name: "GitLab API reachable"}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.apiBase+"/version", nil)
	if err != nil {
		ch.Detail, ch.Hint = "the API URL is invalid", "check the integration's base URL"
		return ch
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", "forgeway")
	resp, err := c.http.Do(hr)
	if err != nil {
		ch.Detail, ch.Hint = classifyNetError(err, c.cfg.apiBase)
		return ch
	}
	resp.Body.Close()
	c.observe(resp.Header)
	ch.Detail = fmt.Sprintf("%s answered %d", c.cfg.apiBase, resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		ch.Hint = "the URL answers but not with GitLab's API: enter the address you open GitLab at (https://gitlab.example.com, " +
			"with its path when GitLab is installed under one, such as https://example.com/gitlab), not a page inside it"
	case resp.StatusCode >= 500:
		ch.Hint = "GitLab answered with a server error: check its health (gitlab-ctl status, or status.gitlab.com), then try again"
	default:
		ch.OK = true
	}
	return ch
}

// classifyNetError names why a request never got an answer, and what to do.
func classifyNetError(err error, api string) (string, string) {
	return forge.Unreachable(err, api, "GitLab")
}

// tokenInfo is what GitLab says of the credential: GET /personal_access_tokens/self for an
// access token, GET /oauth/token/info for an OAuth token.
type tokenInfo struct {
	Name      string   `json:"name"`
	Revoked   bool     `json:"revoked"`
	Active    *bool    `json:"active"`
	Scopes    []string `json:"scopes"`
	ExpiresAt *string  `json:"expires_at"` // a date, "2026-12-01"
	ExpiresIn *int64   `json:"expires_in"` // OAuth: seconds
}

func (c *Client) checkCredential(ctx context.Context) ([]forge.Check, bool) {
	ch := forge.Check{Name: "GitLab token"}
	if c.cfg.auth == AuthOAuth {
		ch.Name = "GitLab OAuth token"
	}
	var u glUser
	_, err := c.do(ctx, request{op: "authenticate with the integration's token", method: http.MethodGet, path: "/user", cred: c.integrationCredential(), out: &u})
	if err != nil {
		ch.Detail, ch.Hint = describeFailure(err)
		if errors.Is(err, forge.ErrUnauthorized) {
			ch.Hint = "GitLab refused the token: it is wrong, expired or revoked. Create a new access token with the \"api\" scope " +
				"(avatar › Edit profile › Access tokens, or the group's or project's Settings › Access tokens) and update the integration"
			if c.cfg.auth == AuthOAuth {
				ch.Hint = "GitLab refused the OAuth token or its renewal: authorize the OAuth application again and update the integration's access_token and refresh_token"
			}
		}
		return []forge.Check{ch}, false
	}
	info, err := c.tokenInfo(ctx)
	if err != nil {
		ch.Detail, ch.Hint = describeFailure(err)
		return []forge.Check{ch}, false
	}
	ch.OK, ch.Detail = true, "authenticated as "+u.Username
	if info.Name != "" {
		ch.Detail += fmt.Sprintf(" with the token %q", info.Name)
	}
	if info.Revoked || (info.Active != nil && !*info.Active) {
		ch.OK = false
		ch.Detail += ", which is revoked or expired"
		ch.Hint = "create a new access token with the \"api\" scope and update the integration"
		return []forge.Check{ch}, false
	}
	if exp, ok := info.expiry(c.now()); ok && c.cfg.auth != AuthOAuth {
		ch.Detail += ", expires " + exp.UTC().Format(time.DateOnly)
		if exp.Sub(c.now()) < expiryWarning {
			ch.Warning = true
			ch.Hint = "the token expires within two weeks: create a new one (or rotate it on GitLab) and update the integration before then"
		}
	}
	checks := []forge.Check{ch}
	scopes := forge.Check{Name: "GitLab token scopes", Detail: "scopes: " + strings.Join(info.Scopes, ", ")}
	switch {
	case info.Scopes == nil:
		scopes.OK, scopes.Warning = true, true
		scopes.Detail = "GitLab did not report the token's scopes"
		scopes.Hint = "make sure the token has the \"api\" scope"
	case !slices.Contains(info.Scopes, "api"):
		scopes.Hint = "the token lacks the \"api\" scope, which webhooks, branches and merge requests need: create a token with it " +
			"(GitLab cannot add a scope to an existing token) and update the integration"
	default:
		scopes.OK = true
	}
	return append(checks, scopes), scopes.OK
}

// expiry reads the token's expiry: an access token expires at the start of its expires_at
// date (UTC); an OAuth token expires_in seconds from now.
func (t tokenInfo) expiry(now time.Time) (time.Time, bool) {
	if t.ExpiresAt != nil && *t.ExpiresAt != "" {
		if d, err := time.Parse(time.DateOnly, *t.ExpiresAt); err == nil {
			return d, true
		}
		if d, err := time.Parse(time.RFC3339, *t.ExpiresAt); err == nil {
			return d, true
		}
	}
	if t.ExpiresIn != nil {
		return now.Add(time.Duration(*t.ExpiresIn) * time.Second), true
	}
	return time.Time{}, false
}

func (c *Client) tokenInfo(ctx context.Context) (tokenInfo, error) {
	var info tokenInfo
	if c.cfg.auth != AuthOAuth {
		_, err := c.do(ctx, request{op: "read the access token's details", method: http.MethodGet, path: "/personal_access_tokens/self", cred: c.integrationCredential(), out: &info})
		if errors.Is(err, forge.ErrNotFound) {
			return tokenInfo{}, nil // not an access token GitLab describes: scopes unknown
		}
		return info, err
	}
	// The OAuth token endpoint lives beside the API, not under it.
	var raw struct {
		Scope     []string `json:"scope"`
		Scopes    []string `json:"scopes"`
		ExpiresIn *int64   `json:"expires_in"`
	}
	tok, _, err := c.accessToken(ctx, 0, "")
	if err != nil {
		return tokenInfo{}, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.webBase+"/oauth/token/info", nil)
	if err != nil {
		return tokenInfo{}, fmt.Errorf("read the OAuth token's details: %w", forge.StripURL(err))
	}
	hr.Header.Set("Authorization", "Bearer "+tok)
	hr.Header.Set("Accept", "application/json")
	resp, body, err := forge.Exchange(ctx, c.http, hr, "read the OAuth token's details", "GitLab", 1<<20)
	if err != nil {
		return tokenInfo{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return tokenInfo{}, c.hostError("read the OAuth token's details", resp, body)
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return tokenInfo{}, &forge.HostError{Op: "read the OAuth token's details", Status: resp.StatusCode, Message: "GitLab's answer is not the JSON expected: " + err.Error()}
	}
	info.Scopes = raw.Scopes
	if info.Scopes == nil {
		info.Scopes = raw.Scope
	}
	info.ExpiresIn = raw.ExpiresIn
	return info, nil
}

// checkVersion reads GET /version: 16.8 or later.
func (c *Client) checkVersion(ctx context.Context) forge.Check {
	ch := forge.Check{Name: "GitLab version"}
	var v struct {
		Version  string `json:"version"`
		Revision string `json:"revision"`
	}
	if _, err := c.do(ctx, request{op: "read GitLab's version", method: http.MethodGet, path: "/version", cred: c.integrationCredential(), out: &v}); err != nil {
		ch.Detail, ch.Hint = describeFailure(err)
		return ch
	}
	ch.Detail = "GitLab " + v.Version
	if versionLess(v.Version, minVersion) {
		ch.Detail = fmt.Sprintf("GitLab %s is older than %s, the oldest release Forgeway supports", v.Version, minVersion)
		ch.Hint = "upgrade GitLab to " + minVersion + " or later"
		return ch
	}
	ch.OK = true
	return ch
}

// versionLess compares the numeric part of GitLab versions ("16.7.3-ee" < "16.8").
func versionLess(a, b string) bool {
	num := func(v string) []int {
		v, _, _ = strings.Cut(v, "-")
		var out []int
		for _, p := range strings.Split(v, ".") {
			n, _ := strconv.Atoi(p)
			out = append(out, n)
		}
		return out
	}
	as, bs := num(a), num(b)
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x = as[i]
		}
		if i < len(bs) {
			y = bs[i]
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// checkListing lists one project the credential is a member of, to prove discovery works.
func (c *Client) checkListing(ctx context.Context) forge.Check {
	ch := forge.Check{Name: "Projects listable"}
	var page []glProject
	resp, err := c.do(ctx, request{op: "list the projects the credential is a member of", method: http.MethodGet,
		path: "/projects?membership=true&simple=true&per_page=1", cred: c.integrationCredential(), out: &page})
	if err != nil {
		ch.Detail, ch.Hint = describeFailure(err)
		return ch
	}
	ch.OK = true
	if n, err := strconv.Atoi(resp.Header.Get("X-Total")); err == nil {
		ch.Detail = fmt.Sprintf("%d projects visible", n)
	} else {
		ch.Detail = fmt.Sprintf("%d or more projects visible", len(page))
	}
	if len(page) == 0 {
		ch.Warning = true
		ch.Detail = "no project visible"
		ch.Hint = "the token's user is a member of no project: add it (or, for a group or project token, its bot user) " +
			"to the groups or projects Forgeway should see, with the Maintainer role to manage webhooks"
	}
	return ch
}

// checkBudget reports GitLab's RateLimit-* headers (GitLab.com, or instances with rate
// limits set).
func (c *Client) checkBudget(b forge.Budget) forge.Check {
	ch := forge.Check{Name: "Rate-limit budget", OK: true}
	reset := b.Reset.UTC().Format(time.RFC3339)
	ch.Detail = fmt.Sprintf("%d of %d requests left (resets %s)", b.Remaining, b.Limit, reset)
	switch {
	case b.Remaining <= 0:
		ch.OK = false
		ch.Hint = "the budget is spent: Forgeway waits until " + reset + "; if this repeats, narrow the repository filter"
	case b.Remaining*10 < b.Limit:
		ch.Warning = true
		ch.Hint = "less than 10% left: other tools may share this token's user's budget"
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
		return err.Error(), "GitLab refused the credential: check it, or create a new one"
	case errors.Is(err, forge.ErrForbidden):
		return err.Error(), "the credential lacks a scope or a role: use a token with the \"api\" scope whose user has the Maintainer role on the projects"
	case errors.Is(err, forge.ErrNotFound):
		return err.Error(), "GitLab does not know this resource: check the base URL"
	case errors.Is(err, context.DeadlineExceeded):
		return err.Error(), "GitLab did not answer in time: try again, and check the network"
	}
	return err.Error(), "try again; if it persists, check GitLab's health and the network"
}
