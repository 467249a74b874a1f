package giteawebhook

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest/corpus"
)

// corpusCase is what one corpus payload must give. The values below were written by reading
// each payload in ../shared/corpus/gitea, not by running the code.
type corpusCase struct {
	action string
	test   bool
	want   forge.Result
}

func corpusCases(t *testing.T) map[string]corpusCase {
	// gitea/webhooks, the repository of Gitea's documented push example.
	giteaWebhooks := &forge.EventRepository{
		ID:            "140",
		FullName:      "gitea/webhooks",
		Name:          "webhooks",
		Owner:         "gitea",
		DefaultBranch: "main",
		WebURL:        "http://localhost:3000/gitea/webhooks",
		CloneURL:      "http://localhost:3000/gitea/webhooks.git",
	}
	giteaUser := forge.Actor{Login: "gitea", Name: "Gitea", Email: "someone@gitea.io"}

	// gogits/hello-world (private), the repository of go-scm's push, create and delete captures.
	helloWorld := &forge.EventRepository{
		ID:            "61",
		FullName:      "gogits/hello-world",
		Name:          "hello-world",
		Owner:         "gogits",
		DefaultBranch: "master",
		WebURL:        "http://try.gitea.io/gogits/hello-world",
		CloneURL:      "http://try.gitea.io/gogits/hello-world.git",
		Private:       true,
	}
	unknwon := forge.Actor{Login: "unknwon", Email: "noreply@gogs.io"}

	// jcitizen/my-repo, pull request #1 from feature into master, in go-scm's captures.
	myRepo := &forge.EventRepository{
		ID:            "6589",
		FullName:      "jcitizen/my-repo",
		Name:          "my-repo",
		Owner:         "jcitizen",
		DefaultBranch: "master",
		WebURL:        "https://try.gitea.io/jcitizen/my-repo",
		CloneURL:      "https://try.gitea.io/jcitizen/my-repo.git",
	}
	jcitizen := forge.Actor{Login: "jcitizen", Email: "jane@example.com"}
	prEvent := func(typ, action, title, state, updated string) forge.Result {
		return forge.Result{Events: []forge.Event{{
			Type:       forge.EventPullRequestPrefix + typ,
			Subject:    "pull_requests/1",
			Time:       mustTime(t, updated),
			Repository: myRepo,
			Sender:     jcitizen,
			Data: forge.PullRequestData{
				Number: 1,
				Title:  title,
				Body:   "Using a BSD License",
				State:  state,
				URL:    "https://try.gitea.io/jcitizen/my-repo/pulls/1",
				Author: jcitizen,
				Source: forge.RefAt{Ref: "feature", SHA: "2eba238e33607c1fa49253182e9fff42baafa1eb", RepositoryFullName: "jcitizen/my-repo"},
				Target: forge.RefAt{Ref: "master", SHA: "39af58f1eff02aa308e16913e887c8d50362b474"},
				Action: action,
			},
		}}}
	}
	refEvent := func(typ, ref, refType, sha string) forge.Result {
		return forge.Result{Events: []forge.Event{{
			Type:       typ,
			Subject:    ref,
			Repository: helloWorld,
			Sender:     unknwon,
			Data:       forge.RefData{Ref: ref, RefType: refType, SHA: sha},
		}}}
	}

	return map[string]corpusCase{
		// Gitea's documented example: no head_commit and no total_commits (older payload), so the
		// time is the listed commit that is the new head, and the count is the commits listed.
		// Its top-level "secret" field (removed in Gitea 1.14) is not read.
		"push.json": {want: forge.Result{Events: []forge.Event{{
			Type:       forge.EventPush,
			Subject:    "refs/heads/develop",
			Time:       mustTime(t, "2017-03-13T17:52:11Z"),
			Repository: giteaWebhooks,
			Sender:     giteaUser,
			Data: forge.PushData{
				Ref:     "refs/heads/develop",
				RefType: "branch",
				Before:  "28e1879d029cb852e4844d9c718537df08844e03",
				After:   "bffeb74224043ba2feb48d137756c8a9331c449a",
				Commits: []forge.Commit{{
					ID:        "bffeb74224043ba2feb48d137756c8a9331c449a",
					Message:   "Webhooks Yay!",
					Timestamp: "2017-03-13T13:52:11-04:00",
					Author:    forge.Person{Name: "Gitea", Email: "someone@gitea.io"},
					URL:       "http://localhost:3000/gitea/webhooks/commit/bffeb74224043ba2feb48d137756c8a9331c449a",
				}},
				TotalCommits: 1,
				Pusher:       giteaUser,
			},
		}}}},
		"go-scm/push.json": {want: forge.Result{Events: []forge.Event{{
			Type:       forge.EventPush,
			Subject:    "refs/heads/master",
			Time:       mustTime(t, "2017-12-09T01:35:07Z"),
			Repository: helloWorld,
			Sender:     unknwon,
			Data: forge.PushData{
				Ref:     "refs/heads/master",
				RefType: "branch",
				Before:  "9836a96a253cce25d17988fcf41b8c4205cf779f",
				After:   "4522cbcefc20728a5b72b3a86af35e608622c514",
				Commits: []forge.Commit{{
					ID:        "4522cbcefc20728a5b72b3a86af35e608622c514",
					Message:   "Updated readme\n",
					Timestamp: "2017-12-09T01:35:07Z",
					Author:    forge.Person{Name: "Unknwon", Email: "noreply@gogs.io"},
					URL:       "http://try.gitea.io/gogits/hello-world/commit/4522cbcefc20728a5b72b3a86af35e608622c514",
				}},
				TotalCommits: 1,
				Pusher:       unknwon,
			},
		}}}},
		// Gitea's create payload names the ref short, beside its ref_type; this 2017 branch
		// capture has no sha, the tag one has.
		"go-scm/create.branch.json": {want: refEvent(forge.EventRefCreated, "refs/heads/feature", "branch", "")},
		"go-scm/create.tag.json":    {want: refEvent(forge.EventRefCreated, "refs/tags/v1.0.0", "tag", "599d25c67b05717269f50ac082b34f176d085179")},
		"go-scm/delete.branch.json": {want: refEvent(forge.EventRefDeleted, "refs/heads/feature", "branch", "")},

		"go-scm/pull_request.opened.json":       {action: "opened", want: prEvent("opened", "opened", "Add License File", "open", "2018-07-06T00:37:47Z")},
		"go-scm/pull_request.synchronized.json": {action: "synchronized", want: prEvent("updated", "synchronized", "Add License File", "open", "2018-07-06T00:37:47Z")},
		"go-scm/pull_request.edited.json":       {action: "edited", want: prEvent("edited", "edited", "Add LICENSE File", "open", "2018-07-06T01:32:20Z")},
		"go-scm/pull_request.closed.json":       {action: "closed", want: prEvent("closed", "closed", "Add LICENSE File", "closed", "2018-07-06T01:34:08Z")},
		"go-scm/pull_request.reopened.json":     {action: "reopened", want: prEvent("reopened", "reopened", "Add LICENSE File", "open", "2018-07-06T01:38:39Z")},
	}
}

// TestCorpus runs every file of the shared Gitea corpus through Identify, Verify and Normalize,
// signed as Gitea signs, under Gitea's headers, Forgejo's, and as a form-encoded delivery, and
// compares the result field by field with what the payload says.
func TestCorpus(t *testing.T) {
	files := corpus.Files(t, "gitea")
	cases := corpusCases(t)
	for _, name := range sortedKeys(cases) {
		if _, ok := files[name]; !ok {
			t.Errorf("expected corpus file %s is missing", name)
		}
	}
	w := New()
	const secret = "corpus-secret"
	for _, name := range sortedKeys(files) {
		t.Run(name, func(t *testing.T) {
			tc, ok := cases[name]
			if !ok {
				t.Fatalf("corpus file %s has no expected result: read it and add one", name)
			}
			event := eventOfFile(name)
			for _, v := range []struct {
				name string
				fl   flavor
				form bool
			}{{"gitea", giteaHeaders, false}, {"forgejo", forgejoHeaders, false}, {"forgejo-only", forgejoOnly, false}, {"form", giteaHeaders, true}} {
				t.Run(v.name, func(t *testing.T) {
					d := delivery(event, "6f1e9c2e-"+name, secret, files[name], v.fl, v.form)
					info, err := w.Identify(d)
					if err != nil {
						t.Fatalf("Identify: %v", err)
					}
					wantInfo := forge.DeliveryInfo{ID: "6f1e9c2e-" + name, Event: event, Action: tc.action, Test: tc.test}
					if diff := cmp.Diff(wantInfo, info); diff != "" {
						t.Errorf("Identify (-want +got):\n%s", diff)
					}
					if err := w.Verify(d, forge.VerifyKeys{Secrets: []string{"previous", secret}}); err != nil {
						t.Errorf("Verify: %v", err)
					}
					if err := w.Verify(d, forge.VerifyKeys{Secrets: []string{"previous"}}); err == nil {
						t.Error("Verify accepted a delivery signed with another secret")
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
		})
	}
}

// TestKnownAnswer is the known-answer vector of HEADERS.md: drone/go-scm's TestWebhook_Validated
// signature over the exact bytes of go-scm/pull_request.edited.json.
func TestKnownAnswer(t *testing.T) {
	const (
		secret = "71295b197fa25f4356d2fb9965df3f2379d903d7"
		want   = "a31111f057bafe895837f4a93c0f1f528919c199a20438b1fc8e23485780a33a"
	)
	body := corpus.Files(t, "gitea")["go-scm/pull_request.edited.json"]
	if body == nil {
		t.Fatal("go-scm/pull_request.edited.json is missing from the corpus")
	}
	if got := Sign(secret, body); got != want {
		t.Fatalf("Sign = %s, want %s (has the file gained a trailing newline?)", got, want)
	}
	for _, header := range []string{HeaderSignature, HeaderForgejoSignature} {
		d := forge.Delivery{Header: map[string][]string{header: {want}, HeaderEvent: {"pull_request"}}, Body: body}
		if err := New().Verify(d, forge.VerifyKeys{Secrets: []string{secret}}); err != nil {
			t.Errorf("Verify with %s: %v", header, err)
		}
	}
}
