package ghwebhook

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest/corpus"
)

// corpusCase is what one corpus payload must give. The values below were written by reading
// each payload in ../shared/corpus/github, not by running the code.
type corpusCase struct {
	action    string
	routeKeys []string
	want      forge.Result
}

func corpusCases(t *testing.T) map[string]corpusCase {
	codertocat := forge.Actor{Login: "Codertocat"}
	octocat := forge.Actor{Login: "octocat"}

	// Codertocat/Hello-World as push, create, delete and pull_request payloads describe it.
	helloCodertocat := func(private bool) *forge.EventRepository {
		return &forge.EventRepository{
			ID:            "186853002",
			FullName:      "Codertocat/Hello-World",
			Name:          "Hello-World",
			Owner:         "Codertocat",
			DefaultBranch: "master",
			WebURL:        "https://github.com/Codertocat/Hello-World",
			CloneURL:      "https://github.com/Codertocat/Hello-World.git",
			Private:       private,
		}
	}
	// Octocoders/Hello-World, the fork in repository and ping payloads.
	helloOctocoders := &forge.EventRepository{
		ID:            "186853261",
		FullName:      "Octocoders/Hello-World",
		Name:          "Hello-World",
		Owner:         "Octocoders",
		DefaultBranch: "master",
		WebURL:        "https://github.com/Octocoders/Hello-World",
		CloneURL:      "https://github.com/Octocoders/Hello-World.git",
	}
	octocodersCatalog := func(installation string) forge.Repository {
		return forge.Repository{
			HostID:        "186853261",
			FullName:      "Octocoders/Hello-World",
			Name:          "Hello-World",
			Owner:         "Octocoders",
			Group:         "Octocoders",
			DefaultBranch: "master",
			Visibility:    "public",
			Fork:          true,
			CloneURL:      "https://github.com/Octocoders/Hello-World.git",
			WebURL:        "https://github.com/Octocoders/Hello-World",
			Installation:  installation,
		}
	}
	codertocatCatalog := func(private bool, visibility string) forge.Repository {
		return forge.Repository{
			HostID:        "186853002",
			FullName:      "Codertocat/Hello-World",
			Name:          "Hello-World",
			Owner:         "Codertocat",
			Group:         "Codertocat",
			DefaultBranch: "master",
			Visibility:    visibility,
			Private:       private,
			CloneURL:      "https://github.com/Codertocat/Hello-World.git",
			WebURL:        "https://github.com/Codertocat/Hello-World",
		}
	}

	// Every push payload in the corpus deletes the tag simple-tag; head_commit is null, so the
	// time is repository.pushed_at (Unix 1557933657).
	tagDeletePush := forge.Result{Events: []forge.Event{{
		Type:       forge.EventPush,
		Subject:    "refs/tags/simple-tag",
		Time:       mustTime(t, "2019-05-15T15:20:57Z"),
		Repository: helloCodertocat(false),
		Sender:     codertocat,
		Data: forge.PushData{
			Ref:          "refs/tags/simple-tag",
			RefType:      "tag",
			Before:       "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
			After:        "0000000000000000000000000000000000000000",
			Deleted:      true,
			Commits:      []forge.Commit{},
			TotalCommits: 0,
			Pusher:       forge.Actor{Login: "Codertocat", Email: "21031067+Codertocat@users.noreply.github.com"},
		},
	}}}
	tagEvent := func(typ string) forge.Result {
		return forge.Result{Events: []forge.Event{{
			Type:       typ,
			Subject:    "refs/tags/simple-tag",
			Repository: helloCodertocat(false),
			Sender:     codertocat,
			Data:       forge.RefData{Ref: "refs/tags/simple-tag", RefType: "tag", SHA: ""},
		}}}
	}

	// Pull request #2 of Codertocat/Hello-World, changes → master.
	const prBody = "This is a pretty simple change that we need to pull into master."
	prEvent := func(typ, action, state, updated, body string) forge.Result {
		return forge.Result{Events: []forge.Event{{
			Type:       forge.EventPullRequestPrefix + typ,
			Subject:    "pull_requests/2",
			Time:       mustTime(t, updated),
			Repository: helloCodertocat(false),
			Sender:     codertocat,
			Data: forge.PullRequestData{
				Number: 2,
				Title:  "Update the README with new information.",
				Body:   body,
				State:  state,
				URL:    "https://github.com/Codertocat/Hello-World/pull/2",
				Author: codertocat,
				Source: forge.RefAt{Ref: "changes", SHA: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", RepositoryFullName: "Codertocat/Hello-World"},
				Target: forge.RefAt{Ref: "master", SHA: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"},
				Action: action,
			},
		}}}
	}

	repoEvent := func(typ, updated string, repo *forge.EventRepository, changes map[string]any, effect forge.Effect) forge.Result {
		return forge.Result{
			Events: []forge.Event{{
				Type:       forge.EventRepositoryPrefix + typ,
				Time:       mustTime(t, updated),
				Repository: repo,
				Sender:     codertocat,
				Data:       forge.RepositoryData{Changes: changes},
			}},
			Effects: []forge.Effect{effect},
		}
	}

	installCodertocat := func(id, selection string) forge.InstallationRef {
		return forge.InstallationRef{ID: id, Account: forge.InstallAccount{Login: "Codertocat", Type: "User"}, RepositorySelection: selection}
	}
	installOctocat := forge.InstallationRef{ID: "2", Account: forge.InstallAccount{Login: "octocat", Type: "User"}, RepositorySelection: "selected"}
	installEvent := func(typ, updated string, sender forge.Actor, ref forge.InstallationRef, effects ...forge.Effect) forge.Result {
		return forge.Result{
			Events: []forge.Event{{
				Type:   forge.EventInstallationPrefix + typ,
				Time:   mustTime(t, updated),
				Sender: sender,
				Data:   forge.InstallationData{Installation: ref},
			}},
			Effects: effects,
		}
	}
	changed := func(ref forge.InstallationRef, status string, suspended bool) forge.Effect {
		return forge.InstallationChanged{
			Installation: forge.Installation{
				ID:                  ref.ID,
				Account:             ref.Account.Login,
				AccountType:         ref.Account.Type,
				RepositorySelection: ref.RepositorySelection,
				Suspended:           suspended,
			},
			Status: status,
		}
	}

	ping := forge.Result{Events: []forge.Event{{
		Type:       forge.EventPing,
		Repository: helloOctocoders,
		Sender:     codertocat,
		Data:       forge.PingData{HookID: "109948940", Zen: "Anything added dilutes everything else."},
	}}}

	installation1 := []string{"installation:1"}
	privatized := *helloCodertocat(true)

	return map[string]corpusCase{
		"push.json":                   {want: tagDeletePush},
		"push.1.json":                 {want: tagDeletePush},
		"push.with-organization.json": {want: tagDeletePush},
		"push.with-installation.json": {routeKeys: installation1, want: tagDeletePush},

		"create.json":                   {want: tagEvent(forge.EventRefCreated)},
		"create.with-description.json":  {want: tagEvent(forge.EventRefCreated)},
		"create.with-installation.json": {routeKeys: installation1, want: tagEvent(forge.EventRefCreated)},
		"delete.json":                   {want: tagEvent(forge.EventRefDeleted)},
		"delete.with-installation.json": {routeKeys: installation1, want: tagEvent(forge.EventRefDeleted)},

		"pull_request.opened.json": {action: "opened", routeKeys: installation1,
			want: prEvent("opened", "opened", "open", "2019-05-15T15:20:33Z", prBody)},
		"pull_request.opened.with-null-body.json": {action: "opened", routeKeys: installation1,
			want: prEvent("opened", "opened", "open", "2019-05-15T15:20:33Z", "")},
		"pull_request.opened.with-organization.json": {action: "opened", routeKeys: installation1,
			want: prEvent("opened", "opened", "open", "2019-05-15T15:20:33Z", prBody)},
		// merged is false: closed, and merge_commit_sha (a test merge) is not a merge_sha.
		"pull_request.closed.json": {action: "closed", routeKeys: installation1,
			want: prEvent("closed", "closed", "closed", "2019-05-15T15:21:18Z", prBody)},
		"pull_request.ready_for_review.json": {action: "ready_for_review",
			want: prEvent("edited", "ready_for_review", "open", "2019-05-15T15:21:18Z", prBody)},
		"pull_request.reopened.json": {action: "reopened", routeKeys: installation1,
			want: prEvent("reopened", "reopened", "open", "2019-05-15T15:20:33Z", prBody)},
		"pull_request.synchronize.json": {action: "synchronize", routeKeys: installation1,
			want: prEvent("updated", "synchronize", "open", "2019-05-15T15:20:33Z", prBody)},

		"repository.created.json": {action: "created",
			want: repoEvent("created", "2019-05-15T15:20:41Z", helloOctocoders, map[string]any{},
				forge.RepositoryChanged{Repository: octocodersCatalog("")})},
		"repository.created.with-installation.json": {action: "created", routeKeys: installation1,
			want: repoEvent("created", "2019-05-15T15:20:41Z", helloOctocoders, map[string]any{},
				forge.RepositoryChanged{Repository: octocodersCatalog("1")})},
		"repository.deleted.github-ae.json": {action: "deleted",
			want: repoEvent("deleted", "2019-05-15T19:39:36Z", &forge.EventRepository{
				ID:            "120",
				FullName:      "Octocoders/Hello-World",
				Name:          "Hello-World",
				Owner:         "Octocoders",
				DefaultBranch: "master",
				WebURL:        "http://rachmari-0a7d40112fe15292b.ghe-test.net/Octocoders/Hello-World",
				CloneURL:      "http://rachmari-0a7d40112fe15292b.ghe-test.net/Octocoders/Hello-World.git",
			}, map[string]any{}, forge.RepositoryDeleted{HostID: "120"})},
		"repository.edited.json": {action: "edited",
			want: repoEvent("edited", "2019-05-15T15:20:41Z", helloOctocoders,
				map[string]any{"description": map[string]any{"from": "My Repo"}},
				forge.RepositoryChanged{Repository: octocodersCatalog("")})},
		// The payload says private: true but visibility: "public"; private wins.
		"repository.privatized.json": {action: "privatized",
			want: repoEvent("visibility_changed", "2019-05-15T15:21:02Z", &privatized,
				map[string]any{"old_private": false},
				forge.RepositoryChanged{Repository: codertocatCatalog(true, "private")})},
		"repository.publicized.json": {action: "publicized",
			want: repoEvent("visibility_changed", "2019-05-15T15:21:03Z", helloCodertocat(false),
				map[string]any{"old_private": true},
				forge.RepositoryChanged{Repository: codertocatCatalog(false, "public")})},
		// changes.repository.name.from is "Hello-World", under the owner Octocoders.
		"repository.renamed.json": {action: "renamed", routeKeys: installation1,
			want: repoEvent("renamed", "2019-05-15T15:20:41Z", helloOctocoders,
				map[string]any{"old_full_name": "Octocoders/Hello-World"},
				forge.RepositoryChanged{Repository: octocodersCatalog("1")})},
		// changes.owner.from.user.login is octocat.
		"repository.transferred.json": {action: "transferred",
			want: repoEvent("transferred", "2019-05-15T15:20:41Z", helloOctocoders,
				map[string]any{"old_full_name": "octocat/Hello-World"},
				forge.RepositoryChanged{Repository: octocodersCatalog("")})},
		"repository.transferred.with-installation.json": {action: "transferred", routeKeys: installation1,
			want: repoEvent("transferred", "2019-05-15T15:20:41Z", helloOctocoders,
				map[string]any{"old_full_name": "octocat/Hello-World"},
				forge.RepositoryChanged{Repository: octocodersCatalog("1")})},

		// updated_at 1557933591 (Unix seconds).
		"installation.created.json": {action: "created", routeKeys: []string{"installation:957387"},
			want: installEvent("created", "2019-05-15T15:19:51Z", codertocat, installCodertocat("957387", "selected"),
				changed(installCodertocat("957387", "selected"), "active", false),
				forge.RepositoriesAdded{Installation: "957387", Repositories: []forge.Repository{{
					HostID:       "186853002",
					FullName:     "Codertocat/Hello-World",
					Name:         "Hello-World",
					Installation: "957387",
				}}})},
		// updated_at 1525109899.
		"installation.deleted.json": {action: "deleted", routeKeys: []string{"installation:2"},
			want: installEvent("deleted", "2018-04-30T17:38:19Z", octocat, installOctocat,
				changed(installOctocat, "deleted", false))},
		"installation.new_permissions_accepted.json": {action: "new_permissions_accepted", routeKeys: []string{"installation:957387"},
			want: installEvent("permissions_accepted", "2019-05-15T15:19:51Z", codertocat, installCodertocat("957387", "all"))},
		// updated_at "2021-04-28T22:32:50.000-04:00".
		"installation.suspend.json": {action: "suspend", routeKeys: []string{"installation:16598467"},
			want: installEvent("suspended", "2021-04-29T02:32:50Z", codertocat, installCodertocat("16598467", "all"),
				changed(installCodertocat("16598467", "all"), "suspended", true))},
		"installation.unsuspend.json": {action: "unsuspend", routeKeys: []string{"installation:16598467"},
			want: installEvent("unsuspended", "2021-04-29T02:32:50Z", codertocat, installCodertocat("16598467", "all"),
				changed(installCodertocat("16598467", "all"), "active", false))},

		"installation_repositories.added.json": {action: "added", routeKeys: []string{"installation:957387"},
			want: forge.Result{
				Events: []forge.Event{{
					Type:   forge.EventInstallationPrefix + "repositories_added",
					Time:   mustTime(t, "2019-05-15T15:19:51Z"),
					Sender: codertocat,
					Data: forge.InstallationData{
						Installation: installCodertocat("957387", "selected"),
						Repositories: []forge.RepositoryRef{{ID: "186853007", FullName: "Codertocat/Space"}},
					},
				}},
				Effects: []forge.Effect{forge.RepositoriesAdded{Installation: "957387", Repositories: []forge.Repository{{
					HostID:       "186853007",
					FullName:     "Codertocat/Space",
					Name:         "Space",
					Installation: "957387",
				}}}},
			}},
		"installation_repositories.removed.json": {action: "removed", routeKeys: []string{"installation:2"},
			want: forge.Result{
				Events: []forge.Event{{
					Type:   forge.EventInstallationPrefix + "repositories_removed",
					Time:   mustTime(t, "2018-04-30T17:38:19Z"),
					Sender: octocat,
					Data: forge.InstallationData{
						Installation: installOctocat,
						Repositories: []forge.RepositoryRef{{ID: "1296269", FullName: "octocat/Hello-World"}},
					},
				}},
				Effects: []forge.Effect{forge.RepositoriesRemoved{Installation: "2", HostIDs: []string{"1296269"}}},
			}},

		"github_app_authorization.revoked.json": {action: "revoked",
			want: forge.Result{
				Events: []forge.Event{{
					Type:   forge.EventAuthorizationRevoked,
					Sender: octocat,
					Data: func() forge.AuthorizationData {
						var d forge.AuthorizationData
						d.User.Login = "octocat"
						return d
					}(),
				}},
				Effects: []forge.Effect{forge.UserCredentialRevoked{Login: "octocat"}},
			}},

		"ping.json":             {want: ping},
		"ping.with-app_id.json": {routeKeys: []string{"app:29310"}, want: ping},
	}
}

// TestCorpus signs every GitHub payload of the shared corpus, then identifies, verifies and
// normalizes it, as JSON and as a form-encoded body, and compares with what the payload says.
func TestCorpus(t *testing.T) {
	files := corpus.Files(t, "github")
	cases := corpusCases(t)
	for _, name := range sortedKeys(files) {
		if _, ok := cases[name]; !ok {
			t.Errorf("corpus file %s has no expected result in corpusCases", name)
		}
	}
	for _, name := range sortedKeys(cases) {
		if _, ok := files[name]; !ok {
			t.Errorf("corpusCases names %s, which is not in the corpus", name)
		}
	}

	const secret = "corpus-secret"
	w := New()
	for _, name := range sortedKeys(files) {
		tc, ok := cases[name]
		if !ok {
			continue
		}
		for _, form := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/form=%v", name, form), func(t *testing.T) {
				event := eventOf(name)
				id := "72d3162e-cc78-11e3-81ab-4c9367dc0958"
				d := delivery(event, id, secret, files[name], form)

				info, err := w.Identify(d)
				if err != nil {
					t.Fatalf("Identify: %v", err)
				}
				wantInfo := forge.DeliveryInfo{ID: id, Event: event, Action: tc.action, RouteKeys: tc.routeKeys}
				if diff := cmp.Diff(wantInfo, info); diff != "" {
					t.Errorf("Identify (-want +got):\n%s", diff)
				}

				if err := w.Verify(d, forge.VerifyKeys{Secrets: []string{secret}}); err != nil {
					t.Fatalf("Verify: %v", err)
				}

				got, err := w.Normalize(context.Background(), d, noState{t})
				if err != nil {
					t.Fatalf("Normalize: %v", err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("Normalize (-want +got):\n%s", diff)
				}
			})
		}
	}
}
