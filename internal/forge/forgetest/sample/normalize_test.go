package sample

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/adowebhook"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bbwebhook"
	"github.com/forgeway/forgeway/internal/forge/forgetest/corpus"
	"github.com/forgeway/forgeway/internal/forge/gitea/giteawebhook"
	"github.com/forgeway/forgeway/internal/forge/github/ghwebhook"
	"github.com/forgeway/forgeway/internal/forge/gitlab/glwebhook"
)

// knownHeads answers every pull request head question the same way, so that both decoders
// see the same past.
type knownHeads struct{}

func (knownHeads) PullRequestHead(context.Context, string, int64) (string, bool, error) {
	return "0123456789abcdef0123456789abcdef01234567", true, nil
}

// TestNormalizeDecodesAsEncodingJSON checks, for every host's corpus, that each driver's
// Normalize gives the same result and the same error when it decodes only the members its
// mappings read (New) as when encoding/json decodes the whole document (a Webhooks without
// its shapes, as before they existed).
func TestNormalizeDecodesAsEncodingJSON(t *testing.T) {
	hosts := []struct {
		kind          forge.Kind
		dir           string
		pruned, whole forge.Webhooks
	}{
		{forge.GitHub, "github", ghwebhook.New(), &ghwebhook.Webhooks{}},
		{forge.GitLab, "gitlab", glwebhook.New(), &glwebhook.Webhooks{}},
		{forge.BitbucketDC, "bitbucket-dc", bbwebhook.New(), &bbwebhook.Webhooks{}},
		{forge.AzureDevOps, "azure-devops", adowebhook.New(), &adowebhook.Webhooks{}},
		{forge.Gitea, "gitea", giteawebhook.New(), &giteawebhook.Webhooks{}},
	}
	for _, host := range hosts {
		files := corpus.Files(t, host.dir)
		events := 0
		for _, name := range corpus.Names(files) {
			h, err := Headers(host.kind, CorpusEvent(host.kind, name), "d-1", "secret", files[name])
			if err != nil {
				t.Fatal(err)
			}
			d := forge.Delivery{Header: h, Body: files[name]}
			got, err := host.pruned.Normalize(t.Context(), d, knownHeads{})
			want, wantErr := host.whole.Normalize(t.Context(), d, knownHeads{})
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Errorf("%s/%s: error %v, encoding/json %v", host.dir, name, err, wantErr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s/%s (-encoding/json +pruned):\n%s", host.dir, name, diff)
			}
			events += len(got.Events)
		}
		if events == 0 {
			t.Errorf("%s: no corpus payload gave an event: the comparison compared nothing", host.dir)
		}
	}
}
