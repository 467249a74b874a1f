package githubfake

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest"
)

// conformance adapts the fake to the conformance suite: a token integration of user "octo".
type conformance struct {
	g      *GitServer
	driver forge.Driver
	token  string
	next   int
}

// Conformance returns the fake arranged for forgetest.Run, with the GitHub driver to test
// (passed in: the driver's own tests import this package).
func Conformance(t testing.TB, driver forge.Driver) forgetest.Host {
	g := NewGitServer(t, Options{})
	g.AddUser("octo")
	return &conformance{g: g, driver: driver, token: g.IssuePAT(PAT{Login: "octo"})}
}

func (c *conformance) Driver() forge.Driver { return c.driver }

func (c *conformance) Connect(testing.TB) forge.Integration {
	return forge.Integration{BaseURL: c.g.URL, Settings: map[string]string{"auth": "token"}, Secrets: map[string]string{"token": c.token}}
}

func (c *conformance) PageSize() int { return 100 }

func (c *conformance) AddRepositories(_ testing.TB, n int) []string {
	var names []string
	for range n {
		c.next++
		names = append(names, c.g.AddRepository(Repo{FullName: fmt.Sprintf("octo/conformance-%05d", c.next)}).FullName)
	}
	return names
}

func (c *conformance) AddGitRepository(t testing.TB, name string) string {
	return c.g.AddGitRepository(t, "octo/"+name).FullName
}

func (c *conformance) CloneURL(_ testing.TB, fullName string) string {
	return c.g.URL + "/" + fullName + ".git"
}

func (c *conformance) PushAuth(testing.TB) string { return GitAuth(c.token) }

func (c *conformance) Hooks(_ testing.TB, fullName, url string) []forgetest.Hook {
	var out []forgetest.Hook
	for _, h := range c.g.Hooks(fullName) {
		if h.URL == url {
			out = append(out, forgetest.Hook{ID: strconv.FormatInt(h.ID, 10), URL: h.URL, Secret: h.Secret, Active: h.Active, Events: h.Events})
		}
	}
	return out
}

func (c *conformance) DeleteHooks(_ testing.TB, fullName string) { c.g.DeleteHooks(fullName) }

func (c *conformance) RevokeCredential(testing.TB) { c.g.RevokeToken(c.token) }

func (c *conformance) FailNext(_ testing.TB, n, status int, retryAfter time.Duration) {
	h := http.Header{}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
	}
	for range n {
		c.g.FailNext("*", status, h)
	}
}

func (c *conformance) Requests() int { return c.g.RequestCount("") }

// SetLatency delays every API answer (forgetest.Latency).
func (c *conformance) SetLatency(d time.Duration) { c.g.SetLatency(d) }
