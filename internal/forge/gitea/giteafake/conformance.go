package giteafake

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest"
	"github.com/forgeway/forgeway/internal/forge/gitea"
	"github.com/forgeway/forgeway/internal/gittest"
)

// conformanceOwner is the account whose token the conformance integration uses; it owns
// every repository the scenarios create.
const conformanceOwner = "forgeway-ci"

// host is a fake Gitea arranged for forgetest's scenarios.
type host struct {
	s        *Server
	token    string // the integration's
	gitToken string // the pusher's own, so that revoking the integration's leaves git working
	seq      int
}

var _ forgetest.Host = (*host)(nil)

// Conformance starts a fake Gitea for the conformance scenarios: a user owning every
// repository, with a token that has write:repository and read:user.
func Conformance(t testing.TB) forgetest.Host {
	t.Helper()
	s := New(t, Options{})
	return &host{
		s:        s,
		token:    s.IssueToken(conformanceOwner, "write:repository", "read:user"),
		gitToken: s.IssueToken(conformanceOwner, "write:repository"),
	}
}

// Driver is the Gitea driver.
func (h *host) Driver() forge.Driver { return gitea.New() }

// Connect returns an integration on the fake with the owner's token.
func (h *host) Connect(testing.TB) forge.Integration {
	return forge.Integration{BaseURL: h.s.URL, Settings: map[string]string{}, Secrets: map[string]string{gitea.SecretToken: h.token}}
}

// PageSize is the fake's MAX_RESPONSE_ITEMS (50), below which the driver's listing asks.
func (h *host) PageSize() int { return h.s.opts.MaxResponseItems }

// AddRepositories creates n repositories of the owner.
func (h *host) AddRepositories(_ testing.TB, n int) []string {
	out := make([]string, 0, n)
	for range n {
		h.seq++
		out = append(out, h.s.AddRepository(Repo{FullName: fmt.Sprintf("%s/conformance-%04d", conformanceOwner, h.seq), Private: true}).FullName)
	}
	return out
}

// AddGitRepository creates a repository of the owner with real git data.
func (h *host) AddGitRepository(_ testing.TB, name string) string {
	return h.s.AddGitRepository(conformanceOwner + "/" + name).FullName
}

// CloneURL is {URL}/{owner}/{name}.git.
func (h *host) CloneURL(_ testing.TB, fullName string) string { return h.s.CloneURL(fullName) }

// PushAuth is Basic credentials with the pusher's token as the password.
func (h *host) PushAuth(testing.TB) string { return gittest.BasicAuth(conformanceOwner, h.gitToken) }

// Hooks lists the repository's hooks delivering to url, secrets included.
func (h *host) Hooks(_ testing.TB, fullName, url string) []forgetest.Hook {
	var out []forgetest.Hook
	for _, hk := range h.s.Hooks(fullName) {
		if hk.URL == url {
			out = append(out, forgetest.Hook{ID: strconv.FormatInt(hk.ID, 10), URL: hk.URL, Secret: hk.Secret, Active: hk.Active, Events: hk.Events})
		}
	}
	return out
}

// DeleteHooks deletes the repository's hooks behind Forgeway's back.
func (h *host) DeleteHooks(_ testing.TB, fullName string) { h.s.DeleteHooks(fullName) }

// RevokeCredential deletes the integration's token.
func (h *host) RevokeCredential(testing.TB) { h.s.RevokeToken(h.token) }

// FailNext makes the next n API requests fail with status; 429 and 503 carry Retry-After, as
// a rate-limiting proxy or a restarting server in front of Gitea sends them.
func (h *host) FailNext(_ testing.TB, n, status int, retryAfter time.Duration) {
	for range n {
		var hdr http.Header
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			hdr = http.Header{"Retry-After": {strconv.Itoa(int(retryAfter.Round(time.Second).Seconds()))}}
		}
		h.s.FailNext("", status, hdr)
	}
}

// Requests counts the API requests the fake answered.
func (h *host) Requests() int { return h.s.RequestCount("") }

// SetLatency delays every API answer (forgetest.Latency).
func (h *host) SetLatency(d time.Duration) { h.s.SetLatency(d) }
