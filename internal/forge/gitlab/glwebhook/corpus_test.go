package glwebhook

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest/corpus"
)

// corpusCase is what one corpus payload must give. The values below were written by reading
// each payload in ../shared/corpus/gitlab (go-scm/ included), not by running the code.
type corpusCase struct {
	action string
	want   forge.Result
}

const zero = forge.ZeroSHA

func corpusCases(t *testing.T) map[string]corpusCase {
	// mike/diaspora (project 15, visibility_level 0) of push.json and system_hook.push.json.
	diaspora := &forge.EventRepository{
		ID: "15", FullName: "mike/diaspora", Name: "diaspora", Owner: "mike", DefaultBranch: "master",
		WebURL: "http://example.com/mike/diaspora", CloneURL: "http://example.com/mike/diaspora.git", Private: true,
	}
	// jsmith/example (project 1, visibility_level 0) of the tag push payloads.
	example := &forge.EventRepository{
		ID: "1", FullName: "jsmith/example", Name: "example", Owner: "jsmith", DefaultBranch: "master",
		WebURL: "http://example.com/jsmith/example", CloneURL: "http://example.com/jsmith/example.git", Private: true,
	}
	// gitlabhq/gitlab-test (project 1, visibility_level 20) of the documented merge request.
	gitlabTest := &forge.EventRepository{
		ID: "1", FullName: "gitlabhq/gitlab-test", Name: "gitlab-test", Owner: "gitlabhq", DefaultBranch: "master",
		WebURL: "http://example.com/gitlabhq/gitlab-test", CloneURL: "http://example.com/gitlabhq/gitlab-test.git",
	}
	// gitlab-org/hello-world (project 4861503, visibility_level 0) of the go-scm captures.
	helloWorld := &forge.EventRepository{
		ID: "4861503", FullName: "gitlab-org/hello-world", Name: "hello-world", Owner: "gitlab-org", DefaultBranch: "master",
		WebURL: "https://gitlab.com/gitlab-org/hello-world", CloneURL: "https://gitlab.com/gitlab-org/hello-world.git", Private: true,
	}
	sytses := forge.Actor{Login: "sytses", Name: "Sid Sijbrandij", Email: "noreply@gitlab.com"}
	sid := forge.Person{Name: "Sid Sijbrandij", Email: "noreply@gitlab.com"}

	push := func(repo *forge.EventRepository, pusher forge.Actor, d forge.PushData) forge.Event {
		d.Pusher = pusher
		if d.Commits == nil {
			d.Commits = []forge.Commit{}
		}
		return forge.Event{Type: forge.EventPush, Subject: d.Ref, Repository: repo, Sender: pusher, Data: d}
	}
	refEvent := func(typ string, repo *forge.EventRepository, sender forge.Actor, ref, refType, sha string) forge.Event {
		return forge.Event{Type: typ, Subject: ref, Repository: repo, Sender: sender, Data: forge.RefData{Ref: ref, RefType: refType, SHA: sha}}
	}

	// The documented merge request !1 (iid 1) from awesome_space/awesome_project's
	// ms-viewport into master, opened by root, authored by user 51 (not named).
	documentedMR := forge.Result{Events: []forge.Event{{
		Type:       forge.EventPullRequestPrefix + "opened",
		Subject:    "pull_requests/1",
		Time:       mustTime(t, "2013-12-03T17:23:34Z"),
		Repository: gitlabTest,
		Sender:     forge.Actor{Login: "root", Name: "Administrator", Email: "admin@example.com"},
		Data: forge.PullRequestData{
			Number: 1, Title: "MS-Viewport", State: "open",
			URL:    "http://example.com/diaspora/merge_requests/1",
			Source: forge.RefAt{Ref: "ms-viewport", SHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", RepositoryFullName: "awesome_space/awesome_project"},
			Target: forge.RefAt{Ref: "master"},
			Action: "open",
		},
	}}}
	// go-scm's merge request !1 of gitlab-org/hello-world, feature → master; user sytses has
	// no id in these captures, so the author (51764) stays unnamed.
	helloMR := func(typ, action, state, updated, mergeSHA string) forge.Result {
		return forge.Result{Events: []forge.Event{{
			Type:       forge.EventPullRequestPrefix + typ,
			Subject:    "pull_requests/1",
			Time:       mustTime(t, updated),
			Repository: helloWorld,
			Sender:     forge.Actor{Login: "sytses", Name: "Sid Sijbrandij"},
			Data: forge.PullRequestData{
				Number: 1, Title: "update readme", Body: "adding build instructions to readme", State: state,
				URL:      "https://gitlab.com/gitlab-org/hello-world/merge_requests/1",
				Source:   forge.RefAt{Ref: "feature", SHA: "c4c79227ed610f1151f05bbc5be33b4f340d39c8", RepositoryFullName: "gitlab-org/hello-world"},
				Target:   forge.RefAt{Ref: "master"},
				MergeSHA: mergeSHA,
				Action:   action,
			},
		}}}
	}

	projectEvent := func(typ, at string, repo forge.Repository, changes map[string]any, effect forge.Effect) forge.Result {
		var when time.Time
		if at != "" {
			when = mustTime(t, at)
		}
		return forge.Result{
			Events: []forge.Event{{
				Type: forge.EventRepositoryPrefix + typ,
				Time: when,
				Repository: &forge.EventRepository{
					ID: repo.HostID, FullName: repo.FullName, Name: repo.Name, Owner: repo.Owner, Private: repo.Private,
				},
				Data: forge.RepositoryData{Changes: changes},
			}},
			Effects: []forge.Effect{effect},
		}
	}
	catalog := func(id, full, name, ns, visibility string) forge.Repository {
		return forge.Repository{HostID: id, FullName: full, Name: name, Owner: ns, Group: ns, Visibility: visibility, Private: visibility != "public"}
	}
	project1 := catalog("22", "group1/project1", "project1", "group1", "private")
	storecloud := catalog("74", "jsmith/storecloud", "storecloud", "jsmith", "private")
	underscore := catalog("73", "jsmith/underscore", "underscore", "jsmith", "internal")
	transferred := catalog("73", "scores/underscore", "underscore", "scores", "internal")

	// system_hook.tag_push.json and tag_push.json: tag v1.0.0 created at 82b3d5ae by John
	// Smith, whose username and email these payloads do not carry.
	john := forge.Actor{Name: "John Smith"}
	tagCreated := forge.Result{Events: []forge.Event{
		push(example, john, forge.PushData{Ref: "refs/tags/v1.0.0", RefType: "tag", Before: zero,
			After: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", Created: true}),
		refEvent(forge.EventRefCreated, example, john, "refs/tags/v1.0.0", "tag", "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"),
	}}

	return map[string]corpusCase{
		// Two of its four commits listed; total_commits_count 4.
		"push.json": {want: forge.Result{Events: []forge.Event{
			push(diaspora, forge.Actor{Login: "jsmith", Name: "John Smith", Email: "john@example.com"}, forge.PushData{
				Ref: "refs/heads/master", RefType: "branch",
				Before: "95790bf891e76fee5e1747ab589903a6a1f80f22", After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
				Commits: []forge.Commit{
					{
						ID:        "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
						Message:   "Update Catalan translation to e38cb41.\n\nSee https://gitlab.com/gitlab-org/gitlab for more information",
						Timestamp: "2011-12-12T14:27:31+02:00",
						Author:    forge.Person{Name: "Jordi Mallach", Email: "jordi@softcatala.org"},
						URL:       "http://example.com/mike/diaspora/commit/b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
					},
					{
						ID:        "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
						Message:   "fixed readme",
						Timestamp: "2012-01-03T23:36:29+02:00",
						Author:    forge.Person{Name: "GitLab dev user", Email: "gitlabdev@dv6700.(none)"},
						URL:       "http://example.com/mike/diaspora/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
					},
				},
				TotalCommits: 4,
			}),
		}}},
		"tag_push.json":           {want: tagCreated},
		"merge_request.open.json": {action: "open", want: documentedMR},

		"project_hook.project_create.json": {action: "project_create",
			want: projectEvent("created", "2024-10-07T10:43:48Z", project1, map[string]any{}, forge.RepositoryChanged{Repository: project1})},
		"project_hook.project_destroy.json": {action: "project_destroy",
			want: projectEvent("deleted", "", project1, map[string]any{}, forge.RepositoryDeleted{HostID: "22"})},

		// The system hook's merge request says what the project hook's does, without draft.
		"system_hook.merge_request.json": {action: "open", want: documentedMR},
		"system_hook.project_create.json": {action: "project_create",
			want: projectEvent("created", "2012-07-21T07:30:54Z", storecloud, map[string]any{}, forge.RepositoryChanged{Repository: storecloud})},
		"system_hook.project_destroy.json": {action: "project_destroy",
			want: projectEvent("deleted", "", underscore, map[string]any{}, forge.RepositoryDeleted{HostID: "73"})},
		"system_hook.project_transfer.json": {action: "project_transfer",
			want: projectEvent("transferred", "2012-07-21T07:38:22Z", transferred,
				map[string]any{"old_full_name": "jsmith/overscore"}, forge.RepositoryChanged{Repository: transferred})},
		"system_hook.project_update.json": {action: "project_update",
			want: projectEvent("edited", "2012-07-21T07:38:22Z", storecloud, map[string]any{}, forge.RepositoryChanged{Repository: storecloud})},
		// No project.id here: the top-level project_id (15) identifies it; no user_username.
		"system_hook.push.json": {action: "push", want: forge.Result{Events: []forge.Event{
			push(diaspora, forge.Actor{Name: "John Smith", Email: "john@example.com"}, forge.PushData{
				Ref: "refs/heads/master", RefType: "branch",
				Before: "95790bf891e76fee5e1747ab589903a6a1f80f22", After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
				Commits: []forge.Commit{{
					ID:        "c5feabde2d8cd023215af4d2ceeb7a64839fc428",
					Message:   "Add simple search to projects in public area",
					Timestamp: "2013-05-13T18:18:08+00:00",
					Author:    forge.Person{Name: "Example User", Email: "user@example.com"},
					URL:       "https://dev.gitlab.org/gitlab/gitlabhq/commit/c5feabde2d8cd023215af4d2ceeb7a64839fc428",
				}},
				TotalCommits: 1,
			}),
		}}},
		"system_hook.repository_update.json": {action: "repository_update",
			want: forge.Result{Ignored: "GitLab repository_update repeats the push and tag_push events sent with it, which give the push events"}},
		"system_hook.tag_push.json": {action: "tag_push", want: tagCreated},

		"go-scm/merge_request.close.json": {action: "close",
			want: helloMR("closed", "close", "closed", "2017-12-10T17:02:46Z", "")},
		"go-scm/merge_request.merge.json": {action: "merge",
			want: helloMR("merged", "merge", "merged", "2017-12-10T17:08:07Z", "78a76ee6b4992a6baf64c59fc4c44c7323d60438")},
		"go-scm/merge_request.open.json": {action: "open",
			want: helloMR("opened", "open", "open", "2017-12-10T17:01:11Z", "")},
		// update without oldrev (marked as draft): edited; the acting user is the author.
		"go-scm/merge_request.update.ready.json": {action: "update", want: forge.Result{Events: []forge.Event{{
			Type:    forge.EventPullRequestPrefix + "edited",
			Subject: "pull_requests/3",
			Time:    mustTime(t, "2023-09-07T19:42:45Z"),
			Repository: &forge.EventRepository{
				ID: "44067058", FullName: "rathod.meetsatish/meet", Name: "meet", Owner: "rathod.meetsatish", DefaultBranch: "main",
				WebURL: "https://gitlab.com/rathod.meetsatish/meet", CloneURL: "https://gitlab.com/rathod.meetsatish/meet.git", Private: true,
			},
			Sender: forge.Actor{Login: "rathod.meetsatish", Name: "Meet Rathod", Email: "[REDACTED]"},
			Data: forge.PullRequestData{
				Number: 3, Title: "Draft: Update README.md", State: "open", Draft: true,
				URL:    "https://gitlab.com/rathod.meetsatish/meet/-/merge_requests/3",
				Author: forge.Actor{Login: "rathod.meetsatish", Name: "Meet Rathod", Email: "[REDACTED]"},
				Source: forge.RefAt{Ref: "main1234", SHA: "ffd71529ecdfb41a530ee13f91b8fdd3e743c754", RepositoryFullName: "rathod.meetsatish/meet"},
				Target: forge.RefAt{Ref: "main"},
				Action: "update",
			},
		}}}},
		"go-scm/push.branch_create.json": {want: forge.Result{Events: []forge.Event{
			push(helloWorld, sytses, forge.PushData{
				Ref: "refs/heads/feature", RefType: "branch", Before: zero, After: "c4c79227ed610f1151f05bbc5be33b4f340d39c8", Created: true,
				Commits: []forge.Commit{{
					ID: "c4c79227ed610f1151f05bbc5be33b4f340d39c8", Message: "update readme\n", Timestamp: "2017-12-10T08:28:36+00:00",
					Author: sid, URL: "https://gitlab.com/gitlab-org/hello-world/commit/c4c79227ed610f1151f05bbc5be33b4f340d39c8",
				}},
				TotalCommits: 1,
			}),
			refEvent(forge.EventRefCreated, helloWorld, sytses, "refs/heads/feature", "branch", "c4c79227ed610f1151f05bbc5be33b4f340d39c8"),
		}}},
		"go-scm/push.json": {want: forge.Result{Events: []forge.Event{
			push(helloWorld, sytses, forge.PushData{
				Ref: "refs/heads/master", RefType: "branch",
				Before: "9217710ce8c7e1eae7a5d1c45f6e43e1c769f866", After: "2adc9465c4edfc33834e173fe89436a7cb899a1d",
				Commits: []forge.Commit{{
					ID: "2adc9465c4edfc33834e173fe89436a7cb899a1d", Message: "added readme\n", Timestamp: "2017-12-10T08:26:38+00:00",
					Author: sid, URL: "https://gitlab.com/gitlab-org/hello-world/commit/2adc9465c4edfc33834e173fe89436a7cb899a1d",
				}},
				TotalCommits: 1,
			}),
		}}},
		"go-scm/push.merge_commit.json": {want: forge.Result{Events: []forge.Event{
			push(helloWorld, sytses, forge.PushData{
				Ref: "refs/heads/master", RefType: "branch",
				Before: "2adc9465c4edfc33834e173fe89436a7cb899a1d", After: "78a76ee6b4992a6baf64c59fc4c44c7323d60438",
				Commits: []forge.Commit{
					{
						ID: "c4c79227ed610f1151f05bbc5be33b4f340d39c8", Message: "update readme\n", Timestamp: "2017-12-10T08:28:36-08:00",
						Author: sid, URL: "https://gitlab.com/gitlab-org/hello-world/commit/c4c79227ed610f1151f05bbc5be33b4f340d39c8",
					},
					{
						ID:        "78a76ee6b4992a6baf64c59fc4c44c7323d60438",
						Message:   "Merge branch 'feature' into 'master'\n\nupdate readme\n\nSee merge request gitlab-org/hello-world!1",
						Timestamp: "2017-12-10T17:08:06+00:00",
						Author:    sid, URL: "https://gitlab.com/gitlab-org/hello-world/commit/78a76ee6b4992a6baf64c59fc4c44c7323d60438",
					},
				},
				TotalCommits: 2,
			}),
		}}},
		"go-scm/tag_push.create.json": {want: forge.Result{Events: []forge.Event{
			push(helloWorld, sytses, forge.PushData{
				Ref: "refs/tags/v1.0.0", RefType: "tag", Before: zero, After: "2adc9465c4edfc33834e173fe89436a7cb899a1d", Created: true,
				Commits: []forge.Commit{{
					ID: "2adc9465c4edfc33834e173fe89436a7cb899a1d", Message: "added readme\n", Timestamp: "2017-12-10T08:26:38+00:00",
					Author: sid, URL: "https://gitlab.com/gitlab-org/hello-world/commit/2adc9465c4edfc33834e173fe89436a7cb899a1d",
				}},
				TotalCommits: 1,
			}),
			refEvent(forge.EventRefCreated, helloWorld, sytses, "refs/tags/v1.0.0", "tag", "2adc9465c4edfc33834e173fe89436a7cb899a1d"),
		}}},
		"go-scm/tag_push.delete.json": {want: forge.Result{Events: []forge.Event{
			push(helloWorld, sytses, forge.PushData{
				Ref: "refs/tags/v1.0.0", RefType: "tag", Before: "2adc9465c4edfc33834e173fe89436a7cb899a1d", After: zero, Deleted: true,
			}),
			refEvent(forge.EventRefDeleted, helloWorld, sytses, "refs/tags/v1.0.0", "tag", ""),
		}}},
	}
}

// TestCorpus authenticates every GitLab payload of the shared corpus as GitLab does (secret
// token, and the Standard Webhooks signature when a signing token is configured), then
// identifies, verifies and normalizes it and compares with what the payload says.
func TestCorpus(t *testing.T) {
	files := corpus.Files(t, "gitlab")
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
	const signingToken = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	w := New()
	for _, name := range sortedKeys(files) {
		tc, ok := cases[name]
		if !ok {
			continue
		}
		for _, signed := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "/token", true: "/token+signature"}[signed], func(t *testing.T) {
				event := eventOf(name)
				id := "a5461c4d-9c7f-4af9-add6-cddebe3c426f"
				keys := forge.VerifyKeys{Secrets: []string{secret}}
				tok := ""
				if signed {
					tok = signingToken
					keys.Integration.Secrets = map[string]string{SecretSigningToken: signingToken}
				}
				d := delivery(t, event, id, secret, tok, received.Add(-3*time.Second), files[name])

				info, err := w.Identify(d)
				if err != nil {
					t.Fatalf("Identify: %v", err)
				}
				wantInfo := forge.DeliveryInfo{ID: id, Event: event, Action: tc.action}
				if diff := cmp.Diff(wantInfo, info); diff != "" {
					t.Errorf("Identify (-want +got):\n%s", diff)
				}
				if err := w.Verify(d, keys); err != nil {
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
