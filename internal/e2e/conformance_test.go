package e2e

import (
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

// TestConformance runs the same scenarios against every host's fake, on every engine.
func TestConformance(t *testing.T) {
	for name, newHost := range hosts {
		t.Run(name, func(t *testing.T) {
			eachEngine(t, func(t *testing.T, e engine) { conformance.Run(t, e.dsn, newHost) })
		})
	}
}
