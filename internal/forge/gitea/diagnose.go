package gitea

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// minGitea is the oldest Gitea release Forgeway supports: scoped tokens in their current form
// (read/write:repository) and branches created at a commit (old_ref_name) came in 1.20.
const minGitea = "1.20"

// Check names, in the order Diagnose reports them.
const (
	checkReachable = "Gitea API reachable"
	checkVersion   = "Gitea version"
	checkToken     = "Gitea token"
	checkListing   = "Repositories listable"
	checkWebhooks  = "Webhooks manageable"
	checkBudget    = "Rate-limit budget"
)

// Diagnose checks, in order: the API is reachable (naming DNS, connection, timeout or TLS
// trust when not, and a URL that is not Gitea's), the Gitea (or Forgejo) version, the token
// (refused, or lacking read:user), that repositories can be listed (read:repository), and
// that webhooks can be managed (write:repository and administrator rights, probed without
// changing anything). Gitea does not report a token's scopes; a 403 names the one missing,
// and the hint says where to add it. It stops after the first check that makes the next ones
// meaningless.
func (c *Client) Diagnose(ctx context.Context) []forge.Check {
	var checks []forge.Check
	reach, version := c.checkReachable(ctx)
	checks = append(checks, reach)
	if !reach.OK {
		return checks
	}
	if version != "" {
		checks = append(checks, versionCheck(version))
	}
	tok, ok := c.checkToken(ctx)
	checks = append(checks, tok)
	if !ok {
		return checks
	}
	if version == "" {
		// The server hides its version from anonymous callers (REQUIRE_SIGNIN_VIEW).
		checks = append(checks, c.authedVersion(ctx))
	}
	list, admin := c.checkListing(ctx)
	checks = append(checks, list)
	if !list.OK {
		return checks
	}
	if wh, ran := c.checkWebhooks(ctx, admin); ran {
		checks = append(checks, wh)
	}
	if b := c.Budget(); b.Limit > 0 {
		checks = append(checks, budgetCheck(b))
	}
	return checks
}

type versionBody struct {
	Version string `json:"version"`
}

// checkReachable calls GET /api/v1/version without credentials: any HTTP answer proves the
// server is reachable, and Gitea's answer names its version. A 401 or 403 is a server that
// asks for sign-in before anything; the version is then read with the token.
func (c *Client) checkReachable(ctx context.Context) (forge.Check, string) {
	ch := forge.Check{Name: checkReachable}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.api+"/version", nil)
	if err != nil {
		ch.Detail, ch.Hint = "the API URL is invalid", "check the integration's base URL"
		return ch, ""
	}
	hr.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(hr)
	if err != nil {
		ch.Detail, ch.Hint = classifyNetError(err, c.cfg.api)
		return ch, ""
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	c.observe(resp.Header)
	ch.Detail = fmt.Sprintf("%s answered %d", c.cfg.api, resp.StatusCode)
	var v versionBody
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		ch.OK = true
		ch.Detail += " (the server asks for sign-in before showing its version)"
		return ch, ""
	case resp.StatusCode >= 500:
		ch.Hint = "Gitea answered with a server error: check that it is running and healthy (its log, the admin dashboard), then try again"
		return ch, ""
	case resp.StatusCode != http.StatusOK || json.Unmarshal(body, &v) != nil || v.Version == "":
		ch.Hint = "the URL answers but is not a Gitea API: enter the address you open Gitea at (https://gitea.example.com, or https://example.com/gitea for a sub-path install), without /api/v1"
		return ch, ""
	}
	ch.OK = true
	return ch, v.Version
}

// authedVersion reads the version with the token, for servers that require sign-in.
func (c *Client) authedVersion(ctx context.Context) forge.Check {
	var v versionBody
	if _, err := c.do(ctx, request{op: "read the Gitea version", method: http.MethodGet, path: "/version", out: &v}); err != nil || v.Version == "" {
		ch := forge.Check{Name: checkVersion, OK: true, Warning: true, Detail: "the server did not report its version"}
		if err != nil {
			ch.Detail += ": " + err.Error()
		}
		ch.Hint = "Forgeway needs Gitea " + minGitea + " or later; check the version in Gitea's site administration"
		return ch
	}
	return versionCheck(v.Version)
}

// versionCheck compares a reported version with minGitea. Forgejo reports its own version
// followed by the Gitea release it is compatible with ("11.0.1+gitea-1.22.0"); that Gitea
// release is compared.
func versionCheck(raw string) forge.Check {
	ch := forge.Check{Name: checkVersion}
	product, compat := "Gitea "+raw, raw
	if fj, gt, ok := strings.Cut(raw, "+gitea-"); ok {
		product, compat = fmt.Sprintf("Forgejo %s (compatible with Gitea %s)", fj, gt), gt
	}
	ch.Detail = product
	nums, ok := leadingVersion(compat)
	if !ok {
		ch.OK, ch.Warning = true, true
		ch.Hint = "the version could not be read; Forgeway needs Gitea " + minGitea + " or later"
		return ch
	}
	minNums, _ := leadingVersion(minGitea)
	if versionLess(nums, minNums) {
		ch.Hint = "Forgeway needs Gitea " + minGitea + " or later (scoped tokens, branches created at a commit): upgrade the server"
		return ch
	}
	ch.OK = true
	return ch
}

// leadingVersion reads the dotted numbers at the start of a version ("1.22.0-rc1" → 1 22 0,
// "1.27.0+dev-12-gabc" → 1 27 0).
func leadingVersion(v string) ([]int, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	end := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end >= 0 {
		v = v[:end]
	}
	var out []int
	for _, p := range strings.Split(strings.Trim(v, "."), ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, false
		}
		out = append(out, n)
	}
	return out, len(out) > 0
}

func versionLess(a, b []int) bool {
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// tokenHint is where a token's scopes are set.
const tokenHint = `in Gitea, Settings › Applications › "Manage Access Tokens": generate a token with repository "Read and Write" and user "Read", and update the integration's token`

// checkToken authenticates with GET /user (which needs read:user).
func (c *Client) checkToken(ctx context.Context) (forge.Check, bool) {
	ch := forge.Check{Name: checkToken}
	var u apiUser
	_, err := c.do(ctx, request{op: "authenticate with the token", method: http.MethodGet, path: "/user", out: &u})
	if err != nil {
		ch.Detail, ch.Hint = describeFailure(err)
		switch {
		case errors.Is(err, forge.ErrUnauthorized):
			ch.Hint = "Gitea refused the token: it is wrong, or was deleted (revoked); " + tokenHint
		case missingScope(err) != nil:
			ch.Hint = "the token lacks " + strings.Join(missingScope(err), ", ") + ": Gitea cannot add a scope to a token; " + tokenHint
		}
		return ch, false
	}
	ch.OK, ch.Detail = true, "authenticated as "+u.login()
	return ch, true
}

// checkListing lists the first page of repositories (read:repository) and returns the first
// one the token's user administers ("" when none).
func (c *Client) checkListing(ctx context.Context) (forge.Check, string) {
	ch := forge.Check{Name: checkListing}
	var page []apiRepo
	resp, err := c.do(ctx, request{op: "list the token's repositories", method: http.MethodGet, path: pagePath("/user/repos", 1), out: &page})
	if err != nil {
		ch.Detail, ch.Hint = describeFailure(err)
		if s := missingScope(err); s != nil {
			ch.Hint = "the token lacks " + strings.Join(s, ", ") + ", which listing repositories needs: " + tokenHint
		}
		return ch, ""
	}
	count, ok := totalCount(resp.Header)
	if !ok {
		count = len(page)
	}
	ch.OK, ch.Detail = true, fmt.Sprintf("%d repositories visible", count)
	if count == 0 {
		ch.Warning = true
		ch.Hint = "the token's user sees no repository: use a token of an account that owns, collaborates on or belongs to an organization with the repositories Forgeway should manage"
	}
	for _, r := range page {
		if r.Permissions != nil && r.Permissions.Admin {
			return ch, r.FullName
		}
	}
	return ch, ""
}

// checkWebhooks proves the token may manage webhooks without changing anything: it deletes
// hook 0 of a repository the user administers. Gitea checks the token's scope first
// (write:repository, or 403 naming it), then the user's rights (403), then looks the hook up:
// a 404 means both are in place, and no hook has id 0. ran is false when there is no
// repository to probe.
func (c *Client) checkWebhooks(ctx context.Context, adminRepo string) (forge.Check, bool) {
	ch := forge.Check{Name: checkWebhooks}
	if adminRepo == "" {
		ch.OK, ch.Warning = true, true
		ch.Detail = "the token's user administers none of the first repositories listed"
		ch.Hint = "Gitea lets only repository administrators manage webhooks: make the account an administrator (owner, admin collaborator or admin team) of the repositories to attach"
		return ch, true
	}
	path, err := repoPath(forge.Repository{FullName: adminRepo})
	if err != nil {
		return ch, false
	}
	_, err = c.do(ctx, request{op: "probe webhook rights on " + adminRepo, method: http.MethodDelete, path: path + "/hooks/0"})
	switch {
	case errors.Is(err, forge.ErrNotFound):
		ch.OK, ch.Detail = true, "write:repository granted; webhooks can be managed on "+adminRepo
	case missingScope(err) != nil:
		ch.Detail = "the token lacks " + strings.Join(missingScope(err), ", ")
		ch.Hint = "webhooks, branches, pull requests and pushes need repository \"Read and Write\": " + tokenHint
	case err == nil:
		ch.OK, ch.Warning = true, true
		ch.Detail = "Gitea accepted deleting a webhook with id 0 on " + adminRepo
	default:
		ch.Detail, ch.Hint = describeFailure(err)
	}
	return ch, true
}

func budgetCheck(b forge.Budget) forge.Check {
	ch := forge.Check{Name: checkBudget}
	reset := b.Reset.UTC().Format(time.RFC3339)
	ch.Detail = fmt.Sprintf("%d of %d requests left (resets %s)", b.Remaining, b.Limit, reset)
	switch {
	case b.Remaining <= 0:
		ch.Hint = "the budget of the proxy in front of Gitea is spent: Forgeway waits until " + reset + "; narrow the repository filter if this repeats"
	case b.Remaining*10 < b.Limit:
		ch.OK, ch.Warning = true, true
		ch.Hint = "less than 10% left: other tools may share this token's budget"
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
		return err.Error(), "Gitea refused the token: " + tokenHint
	case errors.Is(err, forge.ErrForbidden):
		return err.Error(), "the token or its user lacks a permission: check the token's scopes and the user's rights on the repository"
	case errors.Is(err, forge.ErrNotFound):
		return err.Error(), "Gitea does not know this resource: check the base URL"
	case errors.Is(err, context.DeadlineExceeded):
		return err.Error(), "Gitea did not answer in time: try again, and check the network"
	}
	return err.Error(), "try again; if it persists, check Gitea's log and the network between Forgeway and Gitea"
}

// classifyNetError names why a request never got an answer, and what to do.
func classifyNetError(err error, api string) (string, string) {
	return forge.Unreachable(err, api, "Gitea")
}
