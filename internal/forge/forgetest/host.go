// Package forgetest is the conformance suite every host driver passes: the same scenarios
// (discover several pages, filter, attach and detach hooks, repair a hook deleted behind our
// back, a push through real git delivered as the host delivers it into the mirror and the event
// log, a revoked credential diagnosed, 429 and 5xx answered with backoff, not loss) run
// against a real Forgeway and each host's fake. Each host's fake package provides a Host.
package forgetest

import (
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// Hook is a hook as the host stores it, secret included (the host's API never shows it).
type Hook struct {
	ID     string
	URL    string
	Secret string // the shared secret, token or basic-auth password deliveries carry
	Active bool
	Events []string
}

// Host is a fake host arranged for the conformance scenarios. Methods fail the test (t.Fatal)
// rather than return errors.
type Host interface {
	// Driver is the host's driver.
	Driver() forge.Driver
	// Connect returns an integration whose credential sees every repository the Host creates
	// and may create hooks, branches and pull requests on them. BaseURL is the fake's.
	Connect(t testing.TB) forge.Integration
	// PageSize is how many repositories one page of the driver's listing holds against this
	// fake (the scenario creates enough for three pages).
	PageSize() int
	// AddRepositories creates n repositories the credential sees, returns their full names
	// as the driver reports them (forge.Repository.FullName).
	AddRepositories(t testing.TB, n int) []string
	// AddGitRepository creates a repository whose git data is real, served through the fake by
	// git http-backend, with a main branch holding one commit; it returns its full name. A push
	// to it (with PushAuth) makes the fake send the host's push delivery, signed or
	// authenticated as the host does, to every hook of the repository that wants pushes.
	AddGitRepository(t testing.TB, name string) string
	// CloneURL is the URL git clones the repository from.
	CloneURL(t testing.TB, fullName string) string
	// PushAuth is an HTTP header line ("Authorization: …") with which git may push.
	PushAuth(t testing.TB) string
	// Hooks lists the repository's hooks (or service-hook subscriptions) that deliver to url.
	Hooks(t testing.TB, fullName, url string) []Hook
	// DeleteHooks deletes the repository's hooks behind Forgeway's back.
	DeleteHooks(t testing.TB, fullName string)
	// RevokeCredential makes the integration's credential invalid, as an expired or revoked
	// token is on the host.
	RevokeCredential(t testing.TB)
	// FailNext makes the next n API requests fail with status; for 429 (and 503) the answer
	// carries Retry-After: retryAfter, as the host sends it.
	FailNext(t testing.TB, n, status int, retryAfter time.Duration)
	// Requests counts the API requests the fake has answered.
	Requests() int
}

// Latency is implemented by hosts that can delay every API answer, for benchmarks that
// measure what a host's latency costs (discovery of many repositories).
type Latency interface {
	SetLatency(d time.Duration)
}
