package azurefake

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest"
)

// conformancePageSize is how many repositories the conformance arrangement puts in each
// project: the driver lists a project's repositories as one page.
const conformancePageSize = 3

// conformance adapts the fake to the conformance suite: a token integration of a Project
// Administrator, repositories in projects of conformancePageSize.
type conformance struct {
	s          *Server
	driver     forge.Driver
	token      string
	next       int // repositories added so far
	perProject int // repositories per project
}

// Conformance returns the fake arranged for the conformance suite, with the Azure DevOps
// driver to test (passed in: the driver's own tests import this package).
func Conformance(t testing.TB, driver forge.Driver) forgetest.Host {
	s := New(t, Options{Git: true})
	s.AddUser(User{DisplayName: "Conformance Admin", UniqueName: "admin@conformance.example", EditSubscriptions: true})
	return &conformance{s: s, driver: driver, token: s.IssuePAT(PAT{User: "admin@conformance.example"}), perProject: conformancePageSize}
}

// Bench is Conformance arranged for load benchmarks: responses not checked against the
// descriptions, and repositories added a hundred to a project, as organizations have them.
func Bench(t testing.TB, driver forge.Driver) forgetest.Host {
	s := New(t, Options{Unchecked: true})
	s.AddUser(User{DisplayName: "Bench Admin", UniqueName: "admin@bench.example", EditSubscriptions: true})
	return &conformance{s: s, driver: driver, token: s.IssuePAT(PAT{User: "admin@bench.example"}), perProject: 100}
}

func (c *conformance) Driver() forge.Driver { return c.driver }

func (c *conformance) Connect(testing.TB) forge.Integration {
	return forge.Integration{BaseURL: c.s.BaseURL, Settings: map[string]string{}, Secrets: map[string]string{"token": c.token}}
}

// PageSize is the repositories of one project: one page of the driver's listing.
func (c *conformance) PageSize() int { return conformancePageSize }

// AddRepositories fills projects "conformance-NNN" with conformancePageSize repositories
// each, in order.
func (c *conformance) AddRepositories(_ testing.TB, n int) []string {
	var names []string
	for range n {
		c.next++
		project := fmt.Sprintf("conformance-%03d", (c.next-1)/c.perProject+1)
		r := c.s.AddRepository(Repo{Project: project, Name: fmt.Sprintf("repo-%05d", c.next), Branches: map[string]string{"main": fakeSHA("conformance", strconv.Itoa(c.next))}})
		names = append(names, r.FullName())
	}
	return names
}

func (c *conformance) AddGitRepository(t testing.TB, name string) string {
	return c.s.AddGitRepository(t, "conformance-git", name).FullName()
}

func (c *conformance) CloneURL(t testing.TB, fullName string) string {
	project, name, _ := strings.Cut(fullName, "/")
	return c.s.BaseURL + "/" + escapePath(project) + "/_git/" + escapePath(name)
}

func (c *conformance) PushAuth(testing.TB) string { return GitAuth(c.token) }

// Hooks are the repository's subscriptions to url; Secret is their basic-auth password.
func (c *conformance) Hooks(_ testing.TB, fullName, url string) []forgetest.Hook {
	var out []forgetest.Hook
	for _, x := range c.s.Subscriptions(fullName) {
		if x.ConsumerInputs["url"] == url {
			out = append(out, forgetest.Hook{ID: x.ID, URL: url, Secret: x.ConsumerInputs["basicAuthPassword"],
				Active: x.Status == "enabled", Events: []string{x.EventType}})
		}
	}
	return out
}

func (c *conformance) DeleteHooks(_ testing.TB, fullName string) { c.s.DeleteSubscriptions(fullName) }

func (c *conformance) RevokeCredential(testing.TB) { c.s.RevokePAT(c.token) }

func (c *conformance) FailNext(_ testing.TB, n, status int, retryAfter time.Duration) {
	h := http.Header{}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
	}
	for range n {
		c.s.FailNext("*", status, h)
	}
}

func (c *conformance) Requests() int { return c.s.RequestCount("") }

// SetLatency delays every API answer (forgetest.Latency).
func (c *conformance) SetLatency(d time.Duration) { c.s.SetLatency(d) }
