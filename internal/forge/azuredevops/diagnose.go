package azuredevops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// Check names.
const (
	checkReachable = "Azure DevOps reachable"
	checkToken     = "Personal access token"
	checkVersion   = "REST API 7.1"
	checkProjects  = "Token scope Project and Team (Read)"
	checkCode      = "Token scope Code (Read): repositories listable"
	checkHooks     = "Service hooks"
	checkBudget    = "Rate limit"
)

// tokenHint is what to do about a personal access token Azure DevOps refuses.
const tokenHint = `create a new personal access token (User settings › Personal access tokens › New Token) for this ` +
	`organization, with scopes Code "Read & write" and "Status" and Project and Team "Read", and update the integration's token`

// connectionData is the part of GET _apis/connectionData the diagnosis reads.
type connectionData struct {
	AuthenticatedUser struct {
		ID                  string `json:"id"`
		Descriptor          string `json:"descriptor"`
		ProviderDisplayName string `json:"providerDisplayName"`
	} `json:"authenticatedUser"`
	DeploymentType string `json:"deploymentType"`
}

// Diagnose checks, in order: the organization (or collection) answers, naming DNS, connection,
// timeout or TLS trust when not; the token is accepted (GET _apis/connectionData); the server
// speaks REST API 7.1 and the token may read projects; it may read repositories; it may read
// service hook subscriptions; and the rate limit. Azure DevOps answers 401 both for a bad token
// and for one without the scope an endpoint needs, so a 401 after the token was accepted names
// the missing scope. It stops after a check that makes the next ones meaningless.
func (c *Client) Diagnose(ctx context.Context) []forge.Check {
	var checks []forge.Check
	reach, tok, ok := c.checkConnection(ctx)
	checks = append(checks, reach)
	if !reach.OK {
		return checks
	}
	checks = append(checks, tok)
	if !ok {
		return checks
	}
	proj, more, ok := c.checkProjects(ctx)
	checks = append(checks, more...)
	if !ok {
		return checks
	}
	code := c.checkRepositories(ctx, proj)
	checks = append(checks, code)
	if !code.OK {
		return checks // service hooks need the same scope
	}
	checks = append(checks, c.checkHooks(ctx))
	checks = append(checks, c.checkBudget())
	return checks
}

// checkConnection calls GET _apis/connectionData (a preview API, hence its own api-version)
// with the token: any HTTP answer proves the host reachable; a 200 naming an authenticated
// user proves the token.
func (c *Client) checkConnection(ctx context.Context) (reach, token forge.Check, ok bool) {
	reach = forge.Check{Name: checkReachable}
	token = forge.Check{Name: checkToken}
	target := c.cfg.base + "/_apis/connectionData?" + url.Values{"api-version": {apiVersion + "-preview.1"}}.Encode()
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		reach.Detail, reach.Hint = "the organization URL is invalid", "check the integration's base URL"
		return reach, token, false
	}
	hr.Header.Set("Authorization", basic(c.cfg.token))
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("X-TFS-FedAuthRedirect", "Suppress")
	hr.Header.Set("User-Agent", "forgeway")
	resp, err := c.http.Do(hr)
	if err != nil {
		reach.Detail, reach.Hint = classifyNetError(err, c.cfg.base)
		return reach, token, false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	c.observe(resp.Header)
	reach.Detail = fmt.Sprintf("%s answered %d", c.cfg.base, resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		reach.Hint = "the server answers but no Azure DevOps organization or collection is there: use https://dev.azure.com/{organization}, or the collection URL of your server (https://devops.example.com/tfs/DefaultCollection)"
		return reach, token, false
	case resp.StatusCode >= 500:
		reach.Hint = "Azure DevOps answered with a server error: check https://status.dev.azure.com (or the server's health), then try again"
		return reach, token, false
	}
	reach.OK = true
	var cd connectionData
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusNonAuthoritativeInfo:
		token.Detail, token.Hint = fmt.Sprintf("Azure DevOps refused the token (%d)", resp.StatusCode), "the token is wrong, expired or revoked: "+tokenHint
		return reach, token, false
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusForbidden:
		var ae apiError
		_ = json.Unmarshal(body, &ae)
		token.Detail = fmt.Sprintf("Azure DevOps answered %d: %s", resp.StatusCode, firstNonEmpty(ae.Message, http.StatusText(resp.StatusCode)))
		token.Hint = "check that the URL is an Azure DevOps organization or collection, and that the token belongs to it"
		if ae.TypeKey == "VssVersionOutOfRangeException" {
			token.Hint = versionHint
		}
		return reach, token, false
	case resp.StatusCode != http.StatusOK || !isJSON(resp.Header) || json.Unmarshal(body, &cd) != nil:
		token.Detail = fmt.Sprintf("the URL answered %d without Azure DevOps' connection data", resp.StatusCode)
		token.Hint = "the URL is not an Azure DevOps organization or collection: use https://dev.azure.com/{organization}, or your server's collection URL"
		return reach, token, false
	case cd.AuthenticatedUser.ID == "" || strings.Contains(strings.ToLower(cd.AuthenticatedUser.Descriptor), "anonymous"):
		token.Detail, token.Hint = "Azure DevOps treated the request as anonymous", "the token is wrong, expired or revoked: "+tokenHint
		return reach, token, false
	}
	where := "Azure DevOps Services"
	if cd.DeploymentType == "onPremises" {
		where = "Azure DevOps Server"
	}
	token.OK = true
	token.Detail = fmt.Sprintf("authenticated as %s on %s", firstNonEmpty(cd.AuthenticatedUser.ProviderDisplayName, cd.AuthenticatedUser.ID), where)
	return reach, token, true
}

// versionHint is what to do about a server without REST API 7.1.
const versionHint = "Forgeway speaks REST API 7.1: use Azure DevOps Services, or upgrade Azure DevOps Server to a release that serves 7.1 (2022 Update 1 or later)"

// checkProjects lists one page of projects: it proves REST API 7.1 and the Project and Team
// scope, and returns the first project to list repositories of (or a configured one).
func (c *Client) checkProjects(ctx context.Context) (string, []forge.Check, bool) {
	version := forge.Check{Name: checkVersion}
	scope := forge.Check{Name: checkProjects}
	var l list[adoProject]
	_, err := c.do(ctx, request{op: "list projects", method: http.MethodGet, path: "/_apis/projects", query: url.Values{"$top": {"100"}}, out: &l})
	switch {
	case typeKey(err) == "VssVersionOutOfRangeException":
		version.Detail, version.Hint = err.Error(), versionHint
		return "", []forge.Check{version}, false
	case errors.Is(err, forge.ErrUnauthorized):
		scope.Detail = err.Error()
		scope.Hint = `the token lacks the scope Project and Team "Read": edit the token (User settings › Personal access tokens) and add it`
		return "", []forge.Check{scope}, false
	case err != nil:
		scope.Detail, scope.Hint = describeFailure(err)
		return "", []forge.Check{scope}, false
	}
	version.OK, version.Detail = true, "the organization serves REST API 7.1"
	scope.OK = true
	scope.Detail = fmt.Sprintf("%d projects visible", len(l.Value))
	if len(l.Value) == projectPage {
		scope.Detail = fmt.Sprintf("%d or more projects visible", projectPage)
	}
	first := ""
	if len(c.cfg.projects) > 0 {
		first = c.cfg.projects[0]
		scope.Detail += "; discovery is limited to " + strings.Join(c.cfg.projects, ", ")
	} else if len(l.Value) > 0 {
		first = l.Value[0].Name
	}
	if first == "" {
		scope.Warning = true
		scope.Hint = "the token sees no project: give its owner access to the projects Forgeway should manage"
	}
	return first, []forge.Check{version, scope}, true
}

// checkRepositories lists the repositories of one project, proving the Code scope.
func (c *Client) checkRepositories(ctx context.Context, project string) forge.Check {
	ch := forge.Check{Name: checkCode}
	if project == "" {
		ch.OK, ch.Warning = true, true
		ch.Detail = "no project to list repositories of"
		ch.Hint = "give the token's owner access to a project, then test again"
		return ch
	}
	repos, err := c.listRepos(ctx, project)
	switch {
	case errors.Is(err, forge.ErrUnauthorized):
		ch.Detail = err.Error()
		ch.Hint = `the token lacks the scope Code "Read" (Forgeway also needs "Read & write" and "Status"): edit the token (User settings › Personal access tokens) and add them`
		return ch
	case errors.Is(err, forge.ErrNotFound):
		ch.Detail = err.Error()
		ch.Hint = fmt.Sprintf("project %q does not exist or the token's owner cannot see it: check the projects setting", project)
		return ch
	case err != nil:
		ch.Detail, ch.Hint = describeFailure(err)
		return ch
	}
	ch.OK = true
	ch.Detail = fmt.Sprintf("%d repositories in project %s (Azure DevOps reports a missing Code \"Read & write\" or \"Status\" scope only when they are used)", len(repos), project)
	return ch
}

// checkHooks queries service hook subscriptions with a filter that matches none, proving
// the token may read them; creating them needs "Edit subscriptions", which only an attach
// can prove.
func (c *Client) checkHooks(ctx context.Context) forge.Check {
	ch := forge.Check{Name: checkHooks}
	_, err := c.query(ctx, forge.Repository{HostID: "00000000-0000-0000-0000-000000000000", FullName: "(diagnosis)"}, "https://forgeway.invalid/diagnosis")
	switch {
	case errors.Is(err, forge.ErrUnauthorized):
		ch.Detail = err.Error()
		ch.Hint = `the token cannot read service hook subscriptions: give it the scope Code "Read & write"`
		return ch
	case errors.Is(err, forge.ErrForbidden):
		ch.Detail = err.Error()
		ch.Hint = `the token's owner may not view service hooks: make them a Project Administrator, or grant "View subscriptions" and "Edit subscriptions" (Project settings › Service hooks › Security)`
		return ch
	case err != nil:
		ch.Detail, ch.Hint = describeFailure(err)
		return ch
	}
	ch.OK = true
	ch.Detail = `the token may read service hook subscriptions; attaching a repository also needs "Edit subscriptions" (Project Administrators have it)`
	return ch
}

// checkBudget reports the throttling Azure DevOps last reported (it reports only when a
// user's consumption is tracked near or past its limit).
func (c *Client) checkBudget() forge.Check {
	ch := forge.Check{Name: checkBudget, OK: true}
	b := c.Budget()
	if b.Limit == 0 && b.Remaining == 0 {
		ch.Detail = "Azure DevOps reports no throttling for this token"
		return ch
	}
	ch.Detail = fmt.Sprintf("%d of %d throughput units left before requests are delayed", b.Remaining, b.Limit)
	if !b.Reset.IsZero() {
		ch.Detail += " (usage back to zero at " + b.Reset.UTC().Format(time.RFC3339) + ")"
	}
	if b.Limit > 0 && b.Remaining*10 < b.Limit {
		ch.Warning = true
		ch.Hint = "Azure DevOps is delaying this token's requests: other tools may share it; give Forgeway a token of its own, or narrow the projects setting"
	}
	return ch
}

// classifyNetError names why a request never got an answer, and what to do.
func classifyNetError(err error, base string) (string, string) {
	return forge.Unreachable(err, base, "Azure DevOps")
}

// describeFailure turns a failed call into a check's detail and hint.
func describeFailure(err error) (string, string) {
	var rl *forge.RateLimitError
	if errors.As(err, &rl) {
		return err.Error(), "Azure DevOps is throttling this token: wait until " + rl.Reset.UTC().Format(time.RFC3339) + " and try again"
	}
	switch {
	case errors.Is(err, forge.ErrUnauthorized):
		return err.Error(), "Azure DevOps refused the token: " + tokenHint
	case errors.Is(err, forge.ErrForbidden):
		return err.Error(), "the token's owner lacks a permission: make them a Project Administrator of the projects Forgeway manages"
	case errors.Is(err, forge.ErrNotFound):
		return err.Error(), "Azure DevOps does not know this resource: check the base URL"
	case errors.Is(err, context.DeadlineExceeded):
		return err.Error(), "Azure DevOps did not answer in time: try again, and check the network"
	}
	return err.Error(), "try again; if it persists, check https://status.dev.azure.com (or the server's health) and the network"
}
