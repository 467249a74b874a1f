package bitbucketdc

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

// MinVersion is the oldest Bitbucket Data Center release Forgeway supports: the last 7.x
// long-term-support release, which has webhook secrets, project and repository HTTP access
// tokens and every REST resource the driver uses.
const MinVersion = "7.21"

// diagnosePage is how many repositories the listing check reads.
const diagnosePage = 25

// Diagnose checks, in order: Bitbucket is reachable (naming DNS, connection, timeout or TLS
// trust when not) and is Bitbucket, its version, the token (refused, expired or revoked),
// that it can read repositories, and that it administers them ("Repository admin", which
// webhooks need). It stops after the first check that makes the next ones meaningless. No
// check shows the token.
func (c *Client) Diagnose(ctx context.Context) []forge.Check {
	var checks []forge.Check
	reach, props, ok := c.checkReachable(ctx)
	checks = append(checks, reach)
	if !ok {
		return checks
	}
	version := c.checkVersion(ctx, props)
	checks = append(checks, version)
	if !version.OK {
		return checks
	}
	tok, list, readable, ok := c.checkToken(ctx)
	checks = append(checks, tok)
	if !ok {
		return checks
	}
	checks = append(checks, list)
	if readable > 0 {
		checks = append(checks, c.checkAdmin(ctx))
	}
	return checks
}

// appProps is GET /application-properties.
type appProps struct {
	Version     string `json:"version"`
	BuildNumber string `json:"buildNumber"`
	DisplayName string `json:"displayName"`
}

// checkReachable calls GET /rest/api/1.0/application-properties without credentials (it is
// anonymously accessible unless an admin turned that off): any HTTP answer proves Bitbucket
// is reachable; a JSON answer with a version proves it is Bitbucket.
func (c *Client) checkReachable(ctx context.Context) (forge.Check, *appProps, bool) {
	ch := forge.Check{Name: "Bitbucket reachable"}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.api+"/application-properties", nil)
	if err != nil {
		ch.Detail, ch.Hint = "the base URL is invalid", "check the integration's base URL"
		return ch, nil, false
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", "Forgeway")
	resp, err := c.http.Do(hr)
	if err != nil {
		ch.Detail, ch.Hint = classifyNetError(err, c.cfg.web)
		return ch, nil, false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	c.observe(resp)
	ch.Detail = fmt.Sprintf("%s answered %d", c.cfg.api+"/application-properties", resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// Anonymous access is off: the version is read with the token next.
		ch.OK = true
		ch.Detail += " (anonymous access is off: the version is read with the token)"
		return ch, nil, true
	case resp.StatusCode >= 500:
		ch.Hint = "Bitbucket answered with a server error: check that it is up (its /status page), then try again"
		return ch, nil, false
	case resp.StatusCode != http.StatusOK:
		ch.Hint = "the URL answers but is not Bitbucket's REST API: enter the address you browse Bitbucket at, including its context path if any (https://example.com/bitbucket)"
		return ch, nil, false
	}
	var props appProps
	if json.Unmarshal(body, &props) != nil || props.Version == "" {
		ch.Hint = "the URL answers but not as Bitbucket does: enter the address you browse Bitbucket at, including its context path if any"
		return ch, nil, false
	}
	ch.OK = true
	return ch, &props, true
}

// checkVersion checks the version read anonymously, or reads it with the token when
// anonymous access is off.
func (c *Client) checkVersion(ctx context.Context, props *appProps) forge.Check {
	ch := forge.Check{Name: "Bitbucket version"}
	if props == nil {
		props = &appProps{}
		if _, err := c.do(ctx, request{op: "read Bitbucket's version", method: http.MethodGet, path: "/application-properties", token: c.cfg.token, out: props}); err != nil {
			ch.Detail, ch.Hint = describeFailure(err)
			return ch
		}
	}
	name := "Bitbucket " + props.Version
	if props.DisplayName != "" && props.DisplayName != "Bitbucket" {
		name += " (" + props.DisplayName + ")"
	}
	ch.Detail = name
	if props.Version == "" {
		ch.Hint = "Bitbucket did not report its version: check the base URL"
		return ch
	}
	if versionLess(props.Version, MinVersion) {
		ch.Hint = "Forgeway needs Bitbucket Data Center " + MinVersion + " or later: upgrade Bitbucket"
		return ch
	}
	ch.OK = true
	return ch
}

// versionLess compares dotted versions numerically ("7.6.1" < "7.21"); a suffix such as
// "-rc1" is ignored.
func versionLess(a, b string) bool {
	num := func(s string) int {
		end := 0
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		n, _ := strconv.Atoi(s[:end])
		return n
	}
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x = num(as[i])
		}
		if i < len(bs) {
			y = num(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// checkToken lists the first repositories the token may read: Bitbucket refuses a bad token
// on any resource, so this proves the token and discovery at once. It returns the token
// check, the listing check and how many repositories the first page held.
func (c *Client) checkToken(ctx context.Context) (forge.Check, forge.Check, int, bool) {
	tok := forge.Check{Name: "Bitbucket token"}
	list := forge.Check{Name: "Repositories listable"}
	var p page[bbRepo]
	resp, err := c.do(ctx, request{op: "list repositories with the token", method: http.MethodGet,
		path: withStart(listPath, 0, diagnosePage), token: c.cfg.token, out: &p})
	if err != nil {
		tok.Detail, tok.Hint = describeFailure(err)
		if errors.Is(err, forge.ErrUnauthorized) {
			tok.Hint = "Bitbucket refused the token: it is wrong, expired or revoked. Create a new HTTP access token " +
				"(Project settings › HTTP access tokens, or Manage account › HTTP access tokens) and update the integration"
		}
		return tok, list, 0, false
	}
	tok.OK = true
	tok.Detail = "Bitbucket accepted the token"
	if who := resp.Header.Get("X-AUSERNAME"); who != "" {
		tok.Detail = "authenticated as " + who
	}
	list.OK = true
	n := len(p.Values)
	if p.IsLastPage {
		list.Detail = fmt.Sprintf("%d repositories readable", n)
	} else {
		list.Detail = fmt.Sprintf("more than %d repositories readable", n)
	}
	if n == 0 {
		list.Warning = true
		list.Hint = "the token reads no repository: a project token sees its own project only, a personal token what its owner may read; " +
			"give the token (or its owner) access to the repositories Forgeway should manage"
	}
	return tok, list, n, true
}

// checkAdmin asks for the repositories the token administers: webhooks need Repository admin.
func (c *Client) checkAdmin(ctx context.Context) forge.Check {
	ch := forge.Check{Name: "Repository admin permission"}
	var p page[bbRepo]
	_, err := c.do(ctx, request{op: "list the repositories the token administers", method: http.MethodGet,
		path: withStart("/repos?permission=REPO_ADMIN", 0, 1), token: c.cfg.token, out: &p})
	if err != nil {
		ch.Detail, ch.Hint = describeFailure(err)
		return ch
	}
	if len(p.Values) == 0 {
		ch.Detail = "the token reads repositories but administers none"
		ch.Hint = `creating webhooks needs "Repository admin": create a token with Repository permissions "Repository admin" ` +
			`(and Project permissions "Project read"), or make the token's owner admin of the repositories`
		return ch
	}
	ch.OK = true
	ch.Detail = "the token administers repositories (webhooks can be created)"
	return ch
}

// classifyNetError names why a request never got an answer, and what to do.
func classifyNetError(err error, base string) (string, string) {
	return forge.Unreachable(err, base, "Bitbucket")
}

// describeFailure turns a failed call into a check's detail and hint.
func describeFailure(err error) (string, string) {
	var rl *forge.RateLimitError
	if errors.As(err, &rl) {
		return err.Error(), "Bitbucket's rate limiting refused the request: wait until " + rl.Reset.UTC().Format(time.RFC3339) +
			"; if it repeats, ask a Bitbucket admin to raise the token's limit (Administration › Rate limiting) or exempt it"
	}
	switch {
	case errors.Is(err, forge.ErrUnauthorized):
		return err.Error(), "Bitbucket refused the token: create a new HTTP access token and update the integration"
	case errors.Is(err, forge.ErrForbidden):
		return err.Error(), `the token lacks a permission: it needs "Project read" and "Repository admin"`
	case errors.Is(err, forge.ErrNotFound):
		return err.Error(), "Bitbucket does not know this resource: check the base URL (including its context path)"
	case errors.Is(err, context.DeadlineExceeded):
		return err.Error(), "Bitbucket did not answer in time: try again, and check the network"
	}
	return err.Error(), "try again; if it persists, check Bitbucket's health (its /status page) and the network"
}
