package adowebhook

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
)

// A repository as real deliveries describe it: the remote URL names the organization as a
// user, the project is public, webUrl is sent.
const realRepo = `{"id":"98f0ce59-a912-43d5-96d2-bc0942a03f7b","name":"app",
	"project":{"id":"068d2409-14eb-4d8a-88bf-c8a9e7f5b4e2","name":"Platform","state":"wellFormed","visibility":"public"},
	"defaultBranch":"refs/heads/main",
	"remoteUrl":"https://acme@dev.azure.com/acme/Platform/_git/app",
	"webUrl":"https://dev.azure.com/acme/Platform/_git/app"}`

var platformApp = &forge.EventRepository{
	ID: "98f0ce59-a912-43d5-96d2-bc0942a03f7b", FullName: "Platform/app", Name: "app", Owner: "Platform",
	DefaultBranch: "main", WebURL: "https://dev.azure.com/acme/Platform/_git/app",
	CloneURL: "https://dev.azure.com/acme/Platform/_git/app", Private: false,
}

var yuro = forge.Actor{Login: "yuro@example.com", Name: "Yuro Itaki"}

const (
	shaA = "51515957669f93c543df09f8f3e7f47c3613c879"
	shaB = "b0ce2f2009c3c87dbefadf61d7eb2c0697a6f369"
	shaC = "0929a3404b39f6e39076a640779b2c1c961e19b5"
	zero = "0000000000000000000000000000000000000000"
)

func notificationBody(event, resource string) []byte {
	return []byte(`{"subscriptionId":"bb3738ff-00ae-472e-b752-d192c676780c","notificationId":2,"id":"9c335e3e-e047-405c-a420-d679bd54a299",
		"eventType":"` + event + `","publisherId":"tfs","resource":` + resource + `,"resourceVersion":"1.0",
		"createdDate":"2022-07-17T07:14:12.5477052Z"}`)
}

func normalize(t *testing.T, body []byte, state forge.State) (forge.Result, error) {
	t.Helper()
	return New().Normalize(context.Background(), delivery(body, "forgeway", "s"), state)
}

func TestNormalizePushOfSeveralRefs(t *testing.T) {
	body := notificationBody("git.push", `{
		"commits":[{"commitId":"`+shaB+`","author":{"name":"Yuro Itaki","email":"yuro@example.com","date":"2022-07-17T07:14:01Z"},
			"committer":{"name":"CI","email":"ci@example.com","date":"2022-07-17T07:15:00Z"},"comment":"Modify readme",
			"url":"https://dev.azure.com/acme/_apis/git/repositories/r/commits/`+shaB+`"}],
		"refUpdates":[
			{"name":"refs/heads/main","oldObjectId":"`+shaA+`","newObjectId":"`+shaB+`","forced":true},
			{"name":"refs/heads/feature","oldObjectId":"`+zero+`","newObjectId":"`+shaA+`"},
			{"name":"refs/heads/dev","oldObjectId":"`+shaC+`","newObjectId":"`+zero+`"},
			{"name":"refs/tags/v1","oldObjectId":"`+zero+`","newObjectId":"`+shaC+`"},
			{"name":"refs/notes/commits","oldObjectId":"`+zero+`","newObjectId":"`+shaC+`"}],
		"repository":`+realRepo+`,
		"pushedBy":{"displayName":"Yuro Itaki","id":"107e08c7-2725-675e-a1b0-281729035ea6","uniqueName":"yuro@example.com"},
		"pushId":2,"date":"2022-07-17T07:14:05.9409049Z"}`)
	res, err := normalize(t, body, noState{t})
	if err != nil {
		t.Fatal(err)
	}
	at := mustTime(t, "2022-07-17T07:14:05.9409049Z")
	headB := forge.Commit{ID: shaB, Message: "Modify readme", Timestamp: "2022-07-17T07:14:01Z",
		Author: forge.Person{Name: "Yuro Itaki", Email: "yuro@example.com"}, URL: "https://dev.azure.com/acme/_apis/git/repositories/r/commits/" + shaB}
	push := func(ref, rt, before, after string, created, deleted, forced bool, commits []forge.Commit) forge.Event {
		return forge.Event{Type: forge.EventPush, Subject: ref, Time: at, Repository: platformApp, Sender: yuro,
			Data: forge.PushData{Ref: ref, RefType: rt, Before: before, After: after, Created: created, Deleted: deleted, Forced: forced,
				Commits: commits, TotalCommits: len(commits), Pusher: yuro}}
	}
	ref := func(typ, r, rt, sha string) forge.Event {
		return forge.Event{Type: typ, Subject: r, Time: at, Repository: platformApp, Sender: yuro, Data: forge.RefData{Ref: r, RefType: rt, SHA: sha}}
	}
	want := forge.Result{Events: []forge.Event{
		// Several refs moved: each gets the listed commit that is its new head.
		push("refs/heads/main", "branch", shaA, shaB, false, false, true, []forge.Commit{headB}),
		push("refs/heads/feature", "branch", zero, shaA, true, false, false, []forge.Commit{}),
		ref(forge.EventRefCreated, "refs/heads/feature", "branch", shaA),
		push("refs/heads/dev", "branch", shaC, zero, false, true, false, []forge.Commit{}),
		ref(forge.EventRefDeleted, "refs/heads/dev", "branch", ""),
		push("refs/tags/v1", "tag", zero, shaC, true, false, false, []forge.Commit{}),
		ref(forge.EventRefCreated, "refs/tags/v1", "tag", shaC),
	}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Normalize (-want +got):\n%s", diff)
	}
}

func TestNormalizePushEdges(t *testing.T) {
	// One ref: every listed commit is its own; the committer's date stands in for an absent
	// author; without a push date the notification's time is used.
	body := notificationBody("git.push", `{"commits":[{"commitId":"`+shaB+`","comment":"two","committer":{"name":"C","email":"c@x","date":"2022-01-02T00:00:00Z"}},
		{"commitId":"`+shaA+`","comment":"one"}],
		"refUpdates":[{"name":"refs/heads/main","oldObjectId":"`+shaC+`","newObjectId":"`+shaB+`"}],"repository":`+realRepo+`}`)
	res, err := normalize(t, body, nil)
	if err != nil || len(res.Events) != 1 {
		t.Fatalf("Normalize: %+v %v", res, err)
	}
	ev := res.Events[0]
	d := ev.Data.(forge.PushData)
	if d.TotalCommits != 2 || d.Commits[0].Timestamp != "2022-01-02T00:00:00Z" || d.Commits[1].Author != (forge.Person{}) ||
		!ev.Time.Equal(mustTime(t, "2022-07-17T07:14:12.5477052Z")) || ev.Sender != (forge.Actor{}) || d.Forced {
		t.Errorf("push event %+v", ev)
	}

	// Only refs outside branches and tags: ignored, saying which.
	body = notificationBody("git.push", `{"refUpdates":[{"name":"refs/pull/1/merge","oldObjectId":"`+shaA+`","newObjectId":"`+shaB+`"}],"repository":`+realRepo+`}`)
	res, err = normalize(t, body, nil)
	if err != nil || len(res.Events) != 0 || !strings.Contains(res.Ignored, "refs/pull/1/merge") {
		t.Errorf("push to refs/pull: %+v %v", res, err)
	}
}

func TestNormalizePullRequestUpdated(t *testing.T) {
	pr := func(status, head, extra string) []byte {
		return notificationBody("git.pullrequest.updated", `{"repository":`+realRepo+`,"pullRequestId":4,"status":"`+status+`",
			"createdBy":{"displayName":"Yuro Itaki","uniqueName":"yuro@example.com","id":"u"},
			"creationDate":"2022-07-30T07:47:15.091534Z","title":"Add 4th PR","description":"d",
			"sourceRefName":"refs/heads/preprod","targetRefName":"refs/heads/main","mergeStatus":"succeeded","isDraft":true,
			"lastMergeSourceCommit":{"commitId":"`+head+`"},"lastMergeTargetCommit":{"commitId":"`+shaC+`"},
			"lastMergeCommit":{"commitId":"`+shaA+`"},
			"_links":{"web":{"href":"https://dev.azure.com/acme/Platform/_git/app/pullrequest/4"}}`+extra+`}`)
	}
	notified := mustTime(t, "2022-07-17T07:14:12.5477052Z")
	closed := mustTime(t, "2022-08-01T10:00:00Z")
	alice := forge.Actor{Login: "alice@example.com", Name: "Alice"}
	closedBy := `,"closedBy":{"displayName":"Alice","uniqueName":"alice@example.com"},"closedDate":"2022-08-01T10:00:00Z"`
	tests := []struct {
		name     string
		body     []byte
		heads    map[string]string
		typ      string
		state    string
		mergeSHA string
		at       string
		sender   forge.Actor
		calls    int
	}{
		{"new head", pr("active", shaB, ""), map[string]string{"98f0ce59-a912-43d5-96d2-bc0942a03f7b#4": shaA}, "updated", "open", "", "", forge.Actor{}, 1},
		{"same head", pr("active", shaB, ""), map[string]string{"98f0ce59-a912-43d5-96d2-bc0942a03f7b#4": shaB}, "edited", "open", "", "", forge.Actor{}, 1},
		{"head never seen", pr("active", shaB, ""), nil, "updated", "open", "", "", forge.Actor{}, 1},
		{"no head in the payload", pr("active", "", ""), map[string]string{"98f0ce59-a912-43d5-96d2-bc0942a03f7b#4": shaB}, "updated", "open", "", "", forge.Actor{}, 0},
		{"completed", pr("completed", shaB, closedBy), nil, "merged", "merged", shaA, "2022-08-01T10:00:00Z", alice, 0},
		{"abandoned", pr("abandoned", shaB, closedBy), nil, "closed", "closed", "", "2022-08-01T10:00:00Z", alice, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &heads{m: tc.heads}
			res, err := normalize(t, tc.body, st)
			if err != nil {
				t.Fatal(err)
			}
			at := notified
			if tc.at != "" {
				at = closed
			}
			head := shaB
			if tc.name == "no head in the payload" {
				head = ""
			}
			want := forge.Result{Events: []forge.Event{{
				Type: forge.EventPullRequestPrefix + tc.typ, Subject: "pull_requests/4", Time: at,
				Repository: platformApp, Sender: tc.sender,
				Data: forge.PullRequestData{Number: 4, Title: "Add 4th PR", Body: "d", State: tc.state, Draft: true,
					URL: "https://dev.azure.com/acme/Platform/_git/app/pullrequest/4", Author: yuro,
					Source:   forge.RefAt{Ref: "preprod", SHA: head, RepositoryFullName: "Platform/app"},
					Target:   forge.RefAt{Ref: "main", SHA: shaC},
					MergeSHA: tc.mergeSHA, Action: "git.pullrequest.updated"},
			}}}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("Normalize (-want +got):\n%s", diff)
			}
			if st.calls != tc.calls {
				t.Errorf("state asked %d times, want %d", st.calls, tc.calls)
			}
		})
	}

	// An error of the state is returned as it is (not malformed), so that the job retries.
	boom := errors.New("database is down")
	_, err := normalize(t, pr("active", shaB, ""), &heads{err: boom})
	if !errors.Is(err, boom) || errors.Is(err, forge.ErrMalformed) {
		t.Errorf("state error: %v", err)
	}
}

func TestNormalizePullRequestFromAFork(t *testing.T) {
	body := notificationBody("git.pullrequest.created", `{"repository":`+realRepo+`,"pullRequestId":9,"status":"active",
		"sourceRefName":"refs/heads/fix","targetRefName":"refs/heads/main","creationDate":"2022-07-30T07:47:15Z",
		"forkSource":{"name":"refs/heads/fix","repository":{"id":"f","name":"app-fork","project":{"name":"Contrib"}}}}`)
	res, err := normalize(t, body, noState{t})
	if err != nil || len(res.Events) != 1 {
		t.Fatalf("Normalize: %+v %v", res, err)
	}
	d := res.Events[0].Data.(forge.PullRequestData)
	// No _links: the page is the repository's page followed by /pullrequest/{id}.
	if d.Source.RepositoryFullName != "Contrib/app-fork" || d.URL != "https://dev.azure.com/acme/Platform/_git/app/pullrequest/9" ||
		res.Events[0].Type != "dev.forgeway.pull_request.opened" || !res.Events[0].Time.Equal(mustTime(t, "2022-07-30T07:47:15Z")) {
		t.Errorf("event %+v", res.Events[0])
	}
}

func TestNormalizeIgnored(t *testing.T) {
	tests := []struct {
		name, body, reason string
	}{
		{"merge attempt with conflicts", string(notificationBody("git.pullrequest.merged", `{"repository":`+realRepo+`,"pullRequestId":4,"status":"active","mergeStatus":"conflicts"}`)),
			`merge attempt (merge status "conflicts")`},
		{"work item", string(notificationBody("workitem.updated", `{"id":5}`)), `"workitem.updated" has no mapping`},
		{"repository renamed (not subscribed)", string(notificationBody("git.repo.renamed", `{"oldName":"a","newName":"b"}`)), `"git.repo.renamed" has no mapping`},
		{"no resource details", string(notificationBody("git.push", `null`)), "Resource details to send"},
		{"resource left out", `{"subscriptionId":"s","id":"e","eventType":"git.pullrequest.created"}`, "Resource details to send"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := normalize(t, []byte(tc.body), noState{t})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 0 || len(res.Effects) != 0 || !strings.Contains(res.Ignored, tc.reason) {
				t.Errorf("Normalize: %+v, want ignored with %q", res, tc.reason)
			}
		})
	}
}

func TestNormalizeMalformed(t *testing.T) {
	for _, body := range []string{
		`not json`,
		`{"id":"e"}`,
		`{"eventType":"git.push","resource":{"refUpdates":"x"}}`,
		`{"eventType":"git.push","resource":{"refUpdates":[],"repository":{"id":"r"}}}`,
		`{"eventType":"git.push","resource":{"refUpdates":[{"name":"refs/heads/x"}]}}`,
		`{"eventType":"git.pullrequest.created","resource":{"repository":{"id":"r"}}}`,
		`{"eventType":"git.pullrequest.updated","resource":{"pullRequestId":1}}`,
		`{"eventType":"git.pullrequest.updated","resource":{"pullRequestId":"one"}}`,
		`{"eventType":"git.push","resource":{},"createdDate":{}}` + "x",
	} {
		if _, err := normalize(t, []byte(body), noState{t}); !errors.Is(err, forge.ErrMalformed) {
			t.Errorf("Normalize(%s) = %v, want ErrMalformed", body, err)
		}
	}
}

func TestAdoTime(t *testing.T) {
	for in, want := range map[string]string{
		`"2014-05-02T19:17:13.3309587Z"`:      "2014-05-02T19:17:13.3309587Z",
		`"2022-07-17T05:01:05.987+02:00"`:     "2022-07-17T03:01:05.987Z",
		`"2022-07-17T05:01:05.987"`:           "2022-07-17T05:01:05.987Z",
		`"0001-01-01T00:00:00"`:               "",
		`"yesterday"`:                         "",
		`1658000000`:                          "",
		`null`:                                "",
		`"2016-09-19T13:03:27.3156388+00:00"`: "2016-09-19T13:03:27.3156388Z",
	} {
		var v adoTime
		if err := v.UnmarshalJSON([]byte(in)); err != nil {
			t.Errorf("%s: %v", in, err)
		}
		got := ""
		if !v.IsZero() {
			got = v.Format("2006-01-02T15:04:05.9999999Z07:00")
		}
		if got != want {
			t.Errorf("%s → %q, want %q", in, got, want)
		}
	}
}
