package gitlab_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitlab/gitlabfake"
)

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		status   int
		header   http.Header
		sentinel error
		message  string
		rate     time.Duration // > 0: a *forge.RateLimitError resetting this long from now
	}{
		{status: 401, sentinel: forge.ErrUnauthorized, message: "401 Unauthorized"},
		{status: 403, sentinel: forge.ErrForbidden, message: "403 Forbidden"},
		{status: 404, sentinel: forge.ErrNotFound, message: "404 Not Found"},
		{status: 409, message: "409 Conflict"},
		{status: 500, message: "500 Internal Server Error"},
		{status: 502, message: "Bad Gateway"}, // GitLab's proxy answers an HTML page, not quoted
		{status: 429, header: http.Header{"Retry-After": {"30"}}, rate: 30 * time.Second, message: "Retry later"},
		{status: 429, rate: time.Minute, message: "Retry later"}, // no Retry-After: a minute
		{status: 503, header: http.Header{"Retry-After": {"7"}}, rate: 7 * time.Second},
	}
	e := newEnv(t, gitlabfake.Options{})
	in, tok := e.tokenIntegration("ana")
	id := e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	c := e.open(in)
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			e.fake.FailNext("/projects/"+strconv.FormatInt(id, 10), tc.status, tc.header)
			_, err := c.Repository(context.Background(), strconv.FormatInt(id, 10), forge.Repository{FullName: "ana/svc"})
			noSecret(t, err, tok)
			if tc.rate > 0 {
				var rl *forge.RateLimitError
				if !errors.As(err, &rl) || !rl.Reset.Equal(e.clock.Now().Add(tc.rate)) || !strings.Contains(rl.Detail, tc.message) ||
					!strings.Contains(rl.Detail, "get project ana/svc") {
					t.Fatalf("%d: %#v, want a rate limit until now+%s", tc.status, err, tc.rate)
				}
				return
			}
			var he *forge.HostError
			if !errors.As(err, &he) || he.Status != tc.status || he.Message != tc.message || he.Op != "get project ana/svc" {
				t.Fatalf("%d: %#v", tc.status, err)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Fatalf("%d: %v does not wrap %v", tc.status, err, tc.sentinel)
			}
			for _, s := range []error{forge.ErrUnauthorized, forge.ErrForbidden, forge.ErrNotFound} {
				if s != tc.sentinel && errors.Is(err, s) {
					t.Fatalf("%d: %v wraps %v", tc.status, err, s)
				}
			}
		})
	}
}

// TestCredentialErrors: what GitLab says of refused credentials reaches the error, never the
// credential.
func TestCredentialErrors(t *testing.T) {
	e := newEnv(t, gitlabfake.Options{})
	readOnly, roTok := e.tokenIntegration("ana", "read_api")
	e.fake.AddProject(gitlabfake.Project{FullPath: "ana/svc"})
	revoked, revTok := e.tokenIntegration("ana")
	e.fake.RevokeToken(revTok)
	unknown, _ := e.tokenIntegration("ana")
	unknown.Secrets["token"] = "glpat-unknown-token-value"

	ctx := context.Background()
	// A read_api token lists but cannot create hooks.
	c := e.open(readOnly)
	repo := repoOf(t, c, "ana/svc")
	_, err := c.EnsureHooks(ctx, repo, forge.HookSpec{URL: hookURL, Secret: "s"})
	if !errors.Is(err, forge.ErrForbidden) || !strings.Contains(err.Error(), "the token lacks a scope this needs (needs: api)") {
		t.Errorf("a read_api token creating a hook: %v", err)
	}
	noSecret(t, err, roTok)

	for name, tc := range map[string]struct {
		in   forge.Integration
		msg  string
		toks []string
	}{
		"revoked": {revoked, "invalid_token: Token was revoked. You have to re-authorize from the user.", []string{revTok}},
		"unknown": {unknown, "401 Unauthorized", []string{"glpat-unknown-token-value"}},
	} {
		_, _, err := collect(t, e.open(tc.in))
		if !errors.Is(err, forge.ErrUnauthorized) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v", name, err)
		}
		noSecret(t, err, tc.toks...)
	}

	// An access token stops working at the start of its expiry date.
	e2 := newEnv(t, gitlabfake.Options{})
	tok := e2.fake.AddToken(gitlabfake.Token{Username: "ana", Expires: e2.clock.Now().Add(24 * time.Hour)})
	in := forge.Integration{BaseURL: e2.fake.URL, Secrets: map[string]string{"token": tok}}
	c2 := e2.open(in)
	if _, _, err := collect(t, c2); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	e2.clock.Add(12 * time.Hour) // 2026-11-21 00:00 UTC
	_, _, err = collect(t, c2)
	if !errors.Is(err, forge.ErrUnauthorized) || !strings.Contains(err.Error(), "Token has expired.") {
		t.Errorf("after expiry: %v", err)
	}
	noSecret(t, err, tok)
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	in := forge.Integration{BaseURL: "http://" + addr, Secrets: map[string]string{"token": "glpat-secret-value"}}
	c, err := gitlabOpen(in, forge.Env{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = collect(t, c)
	var he *forge.HostError
	if !errors.As(err, &he) || he.Status != 0 || !strings.Contains(he.Message, "cannot reach GitLab") || strings.Contains(err.Error(), "/api/v4") {
		t.Fatalf("a closed port: %v", err)
	}
	noSecret(t, err, "glpat-secret-value")
}
