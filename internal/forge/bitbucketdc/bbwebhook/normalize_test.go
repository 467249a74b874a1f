package bbwebhook

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
)

const repoJSON = `{"slug":"api","id":42,"name":"API","public":true,"project":{"key":"ACME"},
  "links":{"clone":[{"href":"https://bb.example.com/scm/acme/api.git","name":"http"}],"self":[{"href":"https://bb.example.com/projects/ACME/repos/api/browse"}]}}`

const actorJSON = `{"name":"ana","emailAddress":"ana@example.com","displayName":"Ana","slug":"ana"}`

func normalize(t *testing.T, event, body string) (forge.Result, error) {
	t.Helper()
	return New().Normalize(context.Background(), delivery(event, "id", "", []byte(body)), noState{t})
}

// A push of several refs gives one push per branch or tag change, each creation and deletion
// followed by its ref event, in the order Bitbucket lists them; other refs are skipped.
func TestNormalizeSeveralChanges(t *testing.T) {
	body := `{"eventKey":"repo:refs_changed","date":"2024-03-01T10:00:00+0100","actor":` + actorJSON + `,"repository":` + repoJSON + `,
	"changes":[
	 {"ref":{"id":"refs/heads/main","displayId":"main","type":"BRANCH"},"refId":"refs/heads/main","fromHash":"` + strings.Repeat("a", 40) + `","toHash":"` + strings.Repeat("b", 40) + `","type":"UPDATE"},
	 {"ref":{"id":"refs/notes/commits","displayId":"commits","type":"NOTES"},"refId":"refs/notes/commits","fromHash":"` + strings.Repeat("a", 40) + `","toHash":"` + strings.Repeat("c", 40) + `","type":"UPDATE"},
	 {"refId":"refs/tags/v2","fromHash":"` + forge.ZeroSHA + `","toHash":"` + strings.Repeat("d", 40) + `","type":"ADD"},
	 {"ref":{"id":"refs/heads/old","displayId":"old","type":"BRANCH"},"fromHash":"` + strings.Repeat("e", 40) + `","toHash":"` + forge.ZeroSHA + `","type":"DELETE"}
	]}`
	res, err := normalize(t, "repo:refs_changed", body)
	if err != nil {
		t.Fatal(err)
	}
	repo := &forge.EventRepository{ID: "42", FullName: "ACME/api", Name: "api", Owner: "ACME",
		WebURL: "https://bb.example.com/projects/ACME/repos/api/browse", CloneURL: "https://bb.example.com/scm/acme/api.git"}
	ana := forge.Actor{Login: "ana", Name: "Ana", Email: "ana@example.com"}
	at := mustTime(t, "2024-03-01T09:00:00Z")
	push := func(ref, typ, before, after string, created, deleted bool) forge.Event {
		return forge.Event{Type: forge.EventPush, Subject: ref, Time: at, Repository: repo, Sender: ana,
			Data: forge.PushData{Ref: ref, RefType: typ, Before: before, After: after, Created: created, Deleted: deleted, Commits: []forge.Commit{}, Pusher: ana}}
	}
	want := forge.Result{Events: []forge.Event{
		push("refs/heads/main", "branch", strings.Repeat("a", 40), strings.Repeat("b", 40), false, false),
		push("refs/tags/v2", "tag", forge.ZeroSHA, strings.Repeat("d", 40), true, false),
		{Type: forge.EventRefCreated, Subject: "refs/tags/v2", Time: at, Repository: repo, Sender: ana, Data: forge.RefData{Ref: "refs/tags/v2", RefType: "tag", SHA: strings.Repeat("d", 40)}},
		push("refs/heads/old", "branch", strings.Repeat("e", 40), forge.ZeroSHA, false, true),
		{Type: forge.EventRefDeleted, Subject: "refs/heads/old", Time: at, Repository: repo, Sender: ana, Data: forge.RefData{Ref: "refs/heads/old", RefType: "branch"}},
	}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Normalize (-want +got):\n%s", diff)
	}
}

func TestNormalizeIgnoredAndMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, event, body string
		ignored           string // Result.Ignored must contain it
		malformed         string // the error must wrap ErrMalformed and contain it
	}{
		{name: "comment", event: "pr:comment:added", body: `{"eventKey":"pr:comment:added"}`, ignored: `"pr:comment:added" has no mapping`},
		{name: "approval", event: "pr:reviewer:approved", body: `{}`, ignored: "has no mapping"},
		{name: "rename", event: "repo:modified", body: `{"old":{},"new":{}}`, ignored: `"repo:modified" has no mapping`},
		{name: "unknown", event: "something:new", body: `{"x":1}`, ignored: "has no mapping"},
		{name: "no changes", event: "repo:refs_changed", body: `{"repository":` + repoJSON + `,"changes":[]}`, ignored: "lists no ref change"},
		{name: "only notes", event: "repo:refs_changed", body: `{"repository":` + repoJSON + `,"changes":[{"refId":"refs/notes/x","toHash":"` + strings.Repeat("1", 40) + `"}]}`, ignored: "refs/notes/x"},
		{name: "unknown event, not JSON", event: "x:y", body: `nope`, malformed: "not a JSON object"},
		{name: "push without repository", event: "repo:refs_changed", body: `{"changes":[{"refId":"refs/heads/x"}]}`, malformed: "names no repository"},
		{name: "push to a repository without project", event: "repo:refs_changed", body: `{"repository":{"id":1,"slug":"x"},"changes":[]}`, malformed: "names no repository"},
		{name: "change without ref", event: "repo:refs_changed", body: `{"repository":` + repoJSON + `,"changes":[{"type":"ADD"}]}`, malformed: "change 0 names no ref"},
		{name: "changes not a list", event: "repo:refs_changed", body: `{"repository":` + repoJSON + `,"changes":{}}`, malformed: "malformed"},
		{name: "repository id not a number", event: "repo:refs_changed", body: `{"repository":{"id":"x","slug":"a","project":{"key":"P"}},"changes":[]}`, malformed: "not an unsigned integer"},
		{name: "pull request missing", event: "pr:opened", body: `{"eventKey":"pr:opened"}`, malformed: "no pullRequest object"},
		{name: "pull request without id", event: "pr:merged", body: `{"pullRequest":{"toRef":{"repository":` + repoJSON + `}}}`, malformed: "has no id"},
		{name: "pull request without repository", event: "pr:declined", body: `{"pullRequest":{"id":3,"toRef":{}}}`, malformed: "toRef names no repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := normalize(t, tc.event, tc.body)
			if tc.malformed != "" {
				if !errors.Is(err, forge.ErrMalformed) || !strings.Contains(err.Error(), tc.malformed) {
					t.Fatalf("Normalize error %v; want ErrMalformed saying %q", err, tc.malformed)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if len(res.Events) != 0 || !strings.Contains(res.Ignored, tc.ignored) {
				t.Errorf("Normalize = %+v; want ignored with %q", res, tc.ignored)
			}
		})
	}
}

func TestNormalizePing(t *testing.T) {
	res, err := normalize(t, EventPing, `{"test":true}`)
	if err != nil {
		t.Fatal(err)
	}
	want := forge.Result{Events: []forge.Event{{Type: forge.EventPing, Data: forge.PingData{}}}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Normalize (-want +got):\n%s", diff)
	}
}

// Pull request details the corpus does not cover: ISO dates (Bitbucket 10.3+), an open pull
// request deleted, a draft, a fork's source, a merged one without its merge commit, and the
// date falling back to the pull request's own.
func TestNormalizePullRequestVariants(t *testing.T) {
	pr := func(state, extra string) string {
		return `{"id":7,"title":"T","description":"D","state":"` + state + `","updatedDate":"2025-05-06T07:08:09.123Z"` + extra + `,
		  "fromRef":{"id":"refs/heads/topic","latestCommit":"` + strings.Repeat("f", 40) + `","repository":{"id":43,"slug":"api","project":{"key":"~ANA"}}},
		  "toRef":{"id":"refs/heads/main","displayId":"main","latestCommit":"` + strings.Repeat("9", 40) + `","repository":` + repoJSON + `},
		  "author":{"user":` + actorJSON + `}}`
	}
	for _, tc := range []struct {
		name, event, body string
		typ, state        string
		draft             bool
		merge             string
		at                string
	}{
		{name: "open deleted", event: "pr:deleted", body: `{"date":"2025-05-06T08:00:00Z","pullRequest":` + pr("OPEN", "") + `}`,
			typ: "closed", state: "closed", at: "2025-05-06T08:00:00Z"},
		{name: "draft opened, no date", event: "pr:opened", body: `{"pullRequest":` + pr("OPEN", `,"draft":true`) + `}`,
			typ: "opened", state: "open", draft: true, at: "2025-05-06T07:08:09.123Z"},
		{name: "declined", event: "pr:declined", body: `{"date":"2025-05-06T09:00:00+0000","pullRequest":` + pr("DECLINED", "") + `}`,
			typ: "closed", state: "closed", at: "2025-05-06T09:00:00Z"},
		{name: "merged without merge commit", event: "pr:merged", body: `{"date":"2025-05-06T09:00:00+0000","pullRequest":` + pr("MERGED", "") + `}`,
			typ: "merged", state: "merged", at: "2025-05-06T09:00:00Z"},
		{name: "merged with ms dates", event: "pr:merged", body: `{"date":"bad date","pullRequest":` +
			strings.Replace(pr("MERGED", `,"properties":{"mergeCommit":{"id":"`+strings.Repeat("7", 40)+`"}}`), `"2025-05-06T07:08:09.123Z"`, `1746515289123`, 1) + `}`,
			typ: "merged", state: "merged", merge: strings.Repeat("7", 40), at: "2025-05-06T07:08:09.123Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := normalize(t, tc.event, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 1 {
				t.Fatalf("events %+v", res.Events)
			}
			ev := res.Events[0]
			d := ev.Data.(forge.PullRequestData)
			want := forge.PullRequestData{
				Number: 7, Title: "T", Body: "D", State: tc.state, Draft: tc.draft,
				Author:   forge.Actor{Login: "ana", Name: "Ana", Email: "ana@example.com"},
				Source:   forge.RefAt{Ref: "topic", SHA: strings.Repeat("f", 40), RepositoryFullName: "~ANA/api"},
				Target:   forge.RefAt{Ref: "main", SHA: strings.Repeat("9", 40)},
				MergeSHA: tc.merge, Action: tc.event,
			}
			if diff := cmp.Diff(want, d); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
			if ev.Type != forge.EventPullRequestPrefix+tc.typ || ev.Subject != "pull_requests/7" || !ev.Time.Equal(mustTime(t, tc.at)) ||
				ev.Repository == nil || ev.Repository.FullName != "ACME/api" || ev.Repository.Private || ev.Sender != (forge.Actor{}) {
				t.Errorf("event %+v", ev)
			}
		})
	}
}
