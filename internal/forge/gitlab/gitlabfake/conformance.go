package gitlabfake

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest"
	"github.com/forgeway/forgeway/internal/forge/gitlab"
	"github.com/forgeway/forgeway/internal/gittest"
)

// Conformance returns a fake GitLab arranged for the conformance scenarios: a user "forgeway"
// with a personal access token (scope api) who is a Maintainer of the group "conformance",
// where every repository is created. Webhooks may deliver to local addresses (Forgeway runs
// on the loopback interface in the scenarios).
func Conformance(t testing.TB) forgetest.Host {
	t.Helper()
	s := New(t, Options{AllowLocalRequests: true})
	s.AddUser(User{Username: "forgeway", Name: "Forgeway Bot"})
	s.AddGroup(conformanceGroup)
	s.AddMember(conformanceGroup, "forgeway", Maintainer)
	return &conformanceHost{s: s, token: s.AddToken(Token{Username: "forgeway", Name: "conformance"})}
}

const conformanceGroup = "conformance"

type conformanceHost struct {
	s     *Server
	token string
}

var _ forgetest.Host = (*conformanceHost)(nil)

// Driver is the GitLab driver.
func (h *conformanceHost) Driver() forge.Driver { return gitlab.New() }

// Connect is a token integration of the user "forgeway".
func (h *conformanceHost) Connect(testing.TB) forge.Integration {
	return forge.Integration{
		BaseURL:  h.s.URL,
		Settings: map[string]string{gitlab.SettingAuth: gitlab.AuthToken},
		Secrets:  map[string]string{gitlab.SecretToken: h.token},
	}
}

// PageSize is the driver's per_page: GitLab's largest.
func (h *conformanceHost) PageSize() int { return 100 }

// AddRepositories creates n private projects in the group "conformance".
func (h *conformanceHost) AddRepositories(_ testing.TB, n int) []string {
	return h.s.AddProjects(conformanceGroup, n)
}

// AddGitRepository creates conformance/<name> backed by a real git repository.
func (h *conformanceHost) AddGitRepository(_ testing.TB, name string) string {
	full := conformanceGroup + "/" + name
	h.s.AddGitProject(Project{FullPath: full})
	return full
}

// CloneURL is the project's http_url_to_repo.
func (h *conformanceHost) CloneURL(_ testing.TB, fullName string) string {
	return h.s.URL + "/" + fullName + ".git"
}

// PushAuth authenticates git as GitLab accepts it: "oauth2" and the token.
func (h *conformanceHost) PushAuth(testing.TB) string { return gittest.BasicAuth("oauth2", h.token) }

// Hooks lists the project's hooks to url, active while GitLab would execute them.
func (h *conformanceHost) Hooks(_ testing.TB, fullName, url string) []forgetest.Hook {
	var out []forgetest.Hook
	for _, hk := range h.s.Hooks(fullName) {
		if hk.URL != url {
			continue
		}
		var events []string
		for _, e := range []struct {
			name string
			on   bool
		}{{"push_events", hk.PushEvents}, {"tag_push_events", hk.TagPushEvents}, {"merge_requests_events", hk.MergeRequestsEvents}} {
			if e.on {
				events = append(events, e.name)
			}
		}
		out = append(out, forgetest.Hook{ID: strconv.FormatInt(hk.ID, 10), URL: hk.URL, Secret: hk.Token,
			Active: hk.AlertStatus == "executable", Events: events})
	}
	return out
}

// DeleteHooks deletes the project's hooks.
func (h *conformanceHost) DeleteHooks(_ testing.TB, fullName string) { h.s.DeleteHooks(fullName) }

// RevokeCredential revokes the integration's token.
func (h *conformanceHost) RevokeCredential(testing.TB) { h.s.RevokeToken(h.token) }

// FailNext makes the next n API requests fail; 429 and 503 carry Retry-After in whole
// seconds, as GitLab's rate limiter and proxy send it.
func (h *conformanceHost) FailNext(_ testing.TB, n, status int, retryAfter time.Duration) {
	hdr := http.Header{}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		hdr.Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	h.s.FailAny(n, status, hdr)
}

// Requests counts the API requests answered.
func (h *conformanceHost) Requests() int { return h.s.RequestCount("") }

// String names the host in test output.
func (h *conformanceHost) String() string {
	return "gitlab fake at " + strings.TrimPrefix(h.s.URL, "http://")
}

// SetLatency delays every API answer (forgetest.Latency).
func (c *conformanceHost) SetLatency(d time.Duration) { c.s.SetLatency(d) }
