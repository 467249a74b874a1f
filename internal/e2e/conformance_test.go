package e2e

import (
	"sync"
	"testing"

	"github.com/forgeway/forgeway/internal/forge/azuredevops"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/azurefake"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bitbucketfake"
	"github.com/forgeway/forgeway/internal/forge/forgetest"
	"github.com/forgeway/forgeway/internal/forge/forgetest/conformance"
	"github.com/forgeway/forgeway/internal/forge/gitea/giteafake"
	"github.com/forgeway/forgeway/internal/forge/github"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
	"github.com/forgeway/forgeway/internal/forge/gitlab/gitlabfake"
)

// hosts are the fakes of every host the conformance suite runs against.
var hosts = map[string]func(t testing.TB) forgetest.Host{
	"github":       func(t testing.TB) forgetest.Host { return githubfake.Conformance(t, github.New()) },
	"azure-devops": func(t testing.TB) forgetest.Host { return azurefake.Conformance(t, azuredevops.New()) },
	"bitbucket-dc": bitbucketfake.Conformance,
	"gitea":        giteafake.Conformance,
	"gitlab":       gitlabfake.Conformance,
}

// TestConformance runs the same scenarios against every host's fake, on every engine. The
// runs go side by side, each with its own fake and its own servers: most of a run is spent
// waiting (for Retry-After, backoffs, discovery), not computing, so they are started
// together rather than marked parallel, which go test would let only GOMAXPROCS (two, here)
// at a time.
func TestConformance(t *testing.T) {
	var hostRuns sync.WaitGroup
	for name, newHost := range hosts {
		hostRuns.Go(func() {
			t.Run(name, func(t *testing.T) {
				var engineRuns sync.WaitGroup
				for _, e := range engines(t) {
					engineRuns.Go(func() {
						t.Run(e.name, func(t *testing.T) { conformance.Run(t, e.dsn, newHost) })
					})
				}
				engineRuns.Wait()
			})
		})
	}
	hostRuns.Wait()
}
