package bitbucketfake

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc"
	"github.com/forgeway/forgeway/internal/forge/forgetest"
)

// conformanceSpec is the description loaded once per test binary for Conformance: loading it
// takes half a second, and a loaded Spec never changes.
var conformanceSpec = sync.OnceValues(func() (*apicheck.Spec, error) { return LoadSpec(nil) })

// Conformance project and account: the integration's token is a personal token of a service
// account that administers the project.
const (
	conformanceProject = "CONF"
	conformanceUser    = "forgeway-svc"
	conformancePage    = 10
)

// Conformance starts a fake Bitbucket arranged for the conformance scenarios of forgetest: a
// project CONF administered by the account forgeway-svc, whose personal HTTP access token
// (Project admin, Repository admin) is the integration's credential, and listings of at most
// 10 repositories a page.
func Conformance(t testing.TB) forgetest.Host {
	t.Helper()
	spec, err := conformanceSpec()
	if err != nil {
		t.Fatalf("bitbucketfake: %v", err)
	}
	return arrange(newServer(t, Options{MaxPageSize: conformancePage}, spec))
}

// Bench is Conformance arranged for load benchmarks: responses not checked against the
// description, and Bitbucket's default page size limits.
func Bench(t testing.TB) forgetest.Host {
	t.Helper()
	return arrange(New(t, Options{Unchecked: true}))
}

func arrange(s *Server) forgetest.Host {
	s.AddUser(User{Name: conformanceUser, DisplayName: "Forgeway service account"})
	s.AddProject(Project{Key: conformanceProject, Name: "Conformance"})
	s.Grant(conformanceUser, conformanceProject, "PROJECT_ADMIN")
	tok := s.IssueToken(Token{Name: "forgeway", User: conformanceUser, ProjectPermission: "PROJECT_ADMIN", RepoPermission: "REPO_ADMIN"})
	return &host{s: s, token: tok}
}

// host adapts a Server to forgetest.Host.
type host struct {
	s     *Server
	token string
}

var _ forgetest.Host = (*host)(nil)

// Driver is the Bitbucket Data Center driver.
func (h *host) Driver() forge.Driver { return bitbucketdc.New() }

// Connect is an integration with the service account's token.
func (h *host) Connect(testing.TB) forge.Integration {
	return forge.Integration{
		ID:       "int_bbdc_conformance",
		BaseURL:  h.s.URL,
		Settings: map[string]string{},
		Secrets:  map[string]string{bitbucketdc.SecretToken: h.token},
	}
}

// PageSize is the fake's page cap: the driver asks for more.
func (h *host) PageSize() int { return conformancePage }

// AddRepositories creates n repositories in the project CONF.
func (h *host) AddRepositories(_ testing.TB, n int) []string {
	repos := h.s.AddRepositories(conformanceProject, n)
	out := make([]string, 0, len(repos))
	for _, r := range repos {
		out = append(out, r.FullName())
	}
	return out
}

// AddGitRepository creates CONF/name with real git data behind /scm/conf/name.git.
func (h *host) AddGitRepository(_ testing.TB, name string) string {
	return h.s.AddGitRepository(conformanceProject, name).FullName()
}

// CloneURL is the repository's HTTP clone URL.
func (h *host) CloneURL(t testing.TB, fullName string) string {
	r, ok := h.s.Repository(fullName)
	if !ok {
		t.Fatalf("bitbucketfake: no repository %s", fullName)
	}
	return r.CloneURL
}

// PushAuth is the service account's token as a bearer header, as Bitbucket accepts for git.
func (h *host) PushAuth(testing.TB) string { return "Authorization: Bearer " + h.token }

// Hooks lists the repository's webhooks that deliver to url, secrets included.
func (h *host) Hooks(_ testing.TB, fullName, url string) []forgetest.Hook {
	var out []forgetest.Hook
	for _, x := range h.s.Hooks(fullName) {
		if x.URL == url {
			out = append(out, forgetest.Hook{ID: strconv.Itoa(x.ID), URL: x.URL, Secret: x.Secret, Active: x.Active, Events: x.Events})
		}
	}
	return out
}

// DeleteHooks deletes every webhook of the repository.
func (h *host) DeleteHooks(_ testing.TB, fullName string) { h.s.DeleteHooks(fullName) }

// RevokeCredential revokes the integration's token.
func (h *host) RevokeCredential(testing.TB) { h.s.RevokeToken(h.token) }

// FailNext makes the next n API requests fail with status; a 429 or 503 carries Retry-After
// in whole seconds (rounded up), as Bitbucket sends it.
func (h *host) FailNext(_ testing.TB, n, status int, retryAfter time.Duration) {
	var hdr http.Header
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		secs := int((max(retryAfter, 0) + time.Second - 1) / time.Second)
		hdr = http.Header{"Retry-After": {strconv.Itoa(secs)}}
		if status == http.StatusTooManyRequests {
			hdr.Set("X-RateLimit-Limit", "60")
			hdr.Set("X-RateLimit-Interval-Seconds", "1")
			hdr.Set("X-RateLimit-FillRate", "5")
		}
	}
	for range n {
		h.s.FailNext("", status, hdr)
	}
}

// Requests counts the API requests the fake answered.
func (h *host) Requests() int { return h.s.RequestCount("") }

// SetLatency delays every API answer (forgetest.Latency).
func (h *host) SetLatency(d time.Duration) { h.s.SetLatency(d) }
