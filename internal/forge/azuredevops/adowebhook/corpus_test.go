package adowebhook

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest/corpus"
)

const (
	corpusUser   = "forgeway"
	corpusSecret = "corpus-secret"
	// A real notification's identity, given to the corpus samples to read them as the host
	// delivers a real event with the same content.
	realSubscription = "435e539d-3ce2-4283-8da9-8f3c0fe2e45e"
	realEvent        = "56e81d32-b0e8-44e2-a92a-55eb7b6ccdce"
)

// corpusCase is what one corpus payload gives. The values were written by reading each
// payload in ../shared/corpus/azure-devops, not by running the code.
type corpusCase struct {
	event  string
	action string
	id     string // the sample's event id
	// sampleTime is the payload's createdDate: the time of the ping a sample gives.
	sampleTime string
	// real is what the same content gives as a real notification (see realSubscription).
	real forge.Result
	// ignored, for the merge attempt: a substring of the reason.
	ignored string
}

func corpusCases(t *testing.T) map[string]corpusCase {
	jamalLive := forge.Actor{Login: `Windows Live ID\fabrikamfiber4@hotmail.com`, Name: "Jamal Hartnett"}
	jamal := forge.Actor{Login: "fabrikamfiber4@hotmail.com", Name: "Jamal Hartnett"}

	// Fabrikam-Fiber-Git in project Fabrikam-Fiber-Git, as git.push describes it; no
	// visibility is sent, so it counts as private.
	fiberGit := &forge.EventRepository{
		ID:            "278d5cd2-584d-4b63-824a-2ba458937249",
		FullName:      "Fabrikam-Fiber-Git/Fabrikam-Fiber-Git",
		Name:          "Fabrikam-Fiber-Git",
		Owner:         "Fabrikam-Fiber-Git",
		DefaultBranch: "master",
		WebURL:        "https://dev.azure.com/fabrikam-fiber-inc/DefaultCollection/_git/Fabrikam-Fiber-Git",
		CloneURL:      "https://dev.azure.com/fabrikam-fiber-inc/DefaultCollection/_git/Fabrikam-Fiber-Git",
		Private:       true,
	}
	push := forge.Result{Events: []forge.Event{{
		Type:       forge.EventPush,
		Subject:    "refs/heads/master",
		Time:       mustTime(t, "2014-05-02T19:17:13.3309587Z"),
		Repository: fiberGit,
		Sender:     jamalLive,
		Data: forge.PushData{
			Ref:     "refs/heads/master",
			RefType: "branch",
			Before:  "aad331d8d3b131fa9ae03cf5e53965b51942618a",
			After:   "33b55f7cb7e7e245323987634f960cf4a6e6bc74",
			Commits: []forge.Commit{{
				ID:        "33b55f7cb7e7e245323987634f960cf4a6e6bc74",
				Message:   "Fixed bug in web.config file",
				Timestamp: "2015-02-25T19:01:00Z",
				Author:    forge.Person{Name: "Jamal Hartnett", Email: "fabrikamfiber4@hotmail.com"},
				URL:       "https://dev.azure.com/fabrikam-fiber-inc/DefaultCollection/_git/Fabrikam-Fiber-Git/commit/33b55f7cb7e7e245323987634f960cf4a6e6bc74",
			}},
			TotalCommits: 1,
			Pusher:       jamalLive,
		},
	}}}

	// Fabrikam in project Fabrikam, pull request 1 mytopic → master. The go-scm copies add a
	// webUrl (the same address) and drop defaultBranch.
	fabrikam := func(defaultBranch string) *forge.EventRepository {
		return &forge.EventRepository{
			ID:            "4bc14d40-c903-45e2-872e-0462c7748079",
			FullName:      "Fabrikam/Fabrikam",
			Name:          "Fabrikam",
			Owner:         "Fabrikam",
			DefaultBranch: defaultBranch,
			WebURL:        "https://dev.azure.com/fabrikam/DefaultCollection/_git/Fabrikam",
			CloneURL:      "https://dev.azure.com/fabrikam/DefaultCollection/_git/Fabrikam",
			Private:       true,
		}
	}
	pr := func(typ, action, state, at, mergeSHA string, sender forge.Actor, repo *forge.EventRepository) forge.Result {
		return forge.Result{Events: []forge.Event{{
			Type:       forge.EventPullRequestPrefix + typ,
			Subject:    "pull_requests/1",
			Time:       mustTime(t, at),
			Repository: repo,
			Sender:     sender,
			Data: forge.PullRequestData{
				Number: 1,
				Title:  "my first pull request",
				Body:   " - test2\r\n",
				State:  state,
				URL:    "https://dev.azure.com/fabrikam/DefaultCollection/_git/Fabrikam/pullrequest/1",
				Author: jamal,
				Source: forge.RefAt{Ref: "mytopic", SHA: "53d54ac915144006c2c9e90d2c7d3880920db49c", RepositoryFullName: "Fabrikam/Fabrikam"},
				Target: forge.RefAt{Ref: "master", SHA: "a511f535b1ea495ee0c903badb68fbc83772c882"},
				// The merge commit is named only once the pull request is completed.
				MergeSHA: mergeSHA,
				Action:   action,
			},
		}}}
	}
	// created: the creator is the one who acted, at creationDate.
	created := func(repo *forge.EventRepository) forge.Result {
		return pr("opened", "git.pullrequest.created", "open", "2014-06-17T16:55:46.589889Z", "", jamal, repo)
	}
	// updated to status completed: merged at closedDate; no closedBy, so no sender.
	completed := func(repo *forge.EventRepository) forge.Result {
		return pr("merged", "git.pullrequest.updated", "merged", "2014-06-30T18:59:12.3660573Z",
			"eef717f69257a6333f221566c1c987dc94cc0d72", forge.Actor{}, repo)
	}

	return map[string]corpusCase{
		"git.push.json": {event: "git.push", id: "03c164c2-8912-4d5e-8009-3707d5f83734",
			sampleTime: "2016-09-19T13:03:27.0379153Z", real: push},
		"go-scm/git.push.json": {event: "git.push", id: "03c164c2-8912-4d5e-8009-3707d5f83734",
			sampleTime: "2016-09-19T13:03:27.0379153Z", real: push},
		"git.pullrequest.created.json": {event: "git.pullrequest.created", action: "active", id: "2ab4e3d3-b7a6-425e-92b1-5a9982c1269e",
			sampleTime: "2016-09-19T13:03:27.2879096Z", real: created(fabrikam("master"))},
		"go-scm/git.pullrequest.created.json": {event: "git.pullrequest.created", action: "active", id: "2ab4e3d3-b7a6-425e-92b1-5a9982c1269e",
			sampleTime: "2016-09-19T13:03:27.2879096Z", real: created(fabrikam(""))},
		"git.pullrequest.updated.json": {event: "git.pullrequest.updated", action: "completed", id: "af07be1b-f3ad-44c8-a7f1-c4835f2df06b",
			sampleTime: "2016-09-19T13:03:27.2813828Z", real: completed(fabrikam("master"))},
		"go-scm/git.pullrequest.updated.json": {event: "git.pullrequest.updated", action: "completed", id: "af07be1b-f3ad-44c8-a7f1-c4835f2df06b",
			sampleTime: "2016-09-19T13:03:27.2813828Z", real: completed(fabrikam(""))},
		"git.pullrequest.merged.json": {event: "git.pullrequest.merged", action: "completed", id: "6872ee8c-b333-4eff-bfb9-0d5274943566",
			sampleTime: "2016-09-19T13:03:27.3156388Z", ignored: `merge attempt (merge status "succeeded")`},
	}
}

// TestCorpus authenticates, identifies and normalizes every corpus payload twice: as it is
// (Microsoft's sample, what the "Test" button sends: a ping), and as a real notification of
// the same content (its own subscription and event ids), compared field by field.
func TestCorpus(t *testing.T) {
	files := corpus.Files(t, "azure-devops")
	cases := corpusCases(t)
	for _, name := range sortedKeys(files) {
		if _, ok := cases[name]; !ok {
			t.Errorf("corpus file %s has no expected values: add it to corpusCases", name)
		}
	}
	w := New()
	keys := forge.VerifyKeys{Secrets: []string{corpusSecret}}
	for _, name := range sortedKeys(cases) {
		c := cases[name]
		doc, ok := files[name]
		if !ok {
			t.Errorf("corpus file %s is missing", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()

			// As the sample it is.
			d := delivery(doc, corpusUser, corpusSecret)
			if err := w.Verify(d, keys); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			info, err := w.Identify(d)
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			want := forge.DeliveryInfo{ID: c.id, Event: c.event, Action: c.action, Test: true}
			if diff := cmp.Diff(want, info); diff != "" {
				t.Errorf("Identify of the sample (-want +got):\n%s", diff)
			}
			res, err := w.Normalize(ctx, d, noState{t})
			if err != nil {
				t.Fatalf("Normalize of the sample: %v", err)
			}
			wantPing := forge.Result{Events: []forge.Event{{Type: forge.EventPing, Time: mustTime(t, c.sampleTime), Data: forge.PingData{}}}}
			if diff := cmp.Diff(wantPing, res); diff != "" {
				t.Errorf("Normalize of the sample (-want +got):\n%s", diff)
			}

			// The same sample sent by the Test button of an existing subscription.
			tested := withIdentity(t, doc, realSubscription, 3, c.id)
			info, err = w.Identify(delivery(tested, corpusUser, corpusSecret))
			if err != nil || !info.Test || info.ID != realSubscription+":"+c.id+":3" {
				t.Errorf("Identify of a test from a subscription: %+v, %v", info, err)
			}
			res, err = w.Normalize(ctx, delivery(tested, corpusUser, corpusSecret), noState{t})
			if err != nil || len(res.Events) != 1 || res.Events[0].Data != (forge.PingData{HookID: realSubscription}) {
				t.Errorf("Normalize of a test from a subscription: %+v, %v", res, err)
			}

			// As a real notification.
			real := withIdentity(t, doc, realSubscription, 7, realEvent)
			d = delivery(real, corpusUser, corpusSecret)
			if err := w.Verify(d, keys); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			info, err = w.Identify(d)
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			want = forge.DeliveryInfo{ID: realSubscription + ":" + realEvent, Event: c.event, Action: c.action}
			if diff := cmp.Diff(want, info); diff != "" {
				t.Errorf("Identify (-want +got):\n%s", diff)
			}
			res, err = w.Normalize(ctx, d, noState{t})
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if c.ignored != "" {
				if len(res.Events) != 0 || !strings.Contains(res.Ignored, c.ignored) {
					t.Errorf("Normalize: %+v, want ignored with %q", res, c.ignored)
				}
				return
			}
			if diff := cmp.Diff(c.real, res); diff != "" {
				t.Errorf("Normalize (-want +got):\n%s", diff)
			}

			// Verification is of the credentials, not the body: a wrong password fails.
			if err := w.Verify(delivery(real, corpusUser, "wrong"), keys); !errors.Is(err, forge.ErrSignature) {
				t.Errorf("Verify with a wrong password: %v", err)
			}
		})
	}
}
