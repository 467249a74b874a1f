package glwebhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
)

func normalize(t *testing.T, event, body string) (forge.Result, error) {
	t.Helper()
	h := http.Header{}
	if event != "" {
		h.Set(HeaderEvent, event)
	}
	return New().Normalize(context.Background(), forge.Delivery{Header: h, Body: []byte(body), ReceivedAt: received}, noState{t})
}

// mr is a merge request payload with object_attributes changed by attrs.
func mr(t *testing.T, attrs map[string]any) string {
	t.Helper()
	a := map[string]any{
		"iid": 7, "title": "Add x", "description": "why", "state": "opened", "action": "update",
		"url": "https://gitlab.example.com/g/sub/p/-/merge_requests/7", "author_id": 3,
		"source_branch": "feature/x", "target_branch": "main", "updated_at": "2026-01-02T03:04:05.123+01:00",
		"source":      map[string]any{"path_with_namespace": "fork/p"},
		"last_commit": map[string]any{"id": "1111111111111111111111111111111111111111"},
	}
	for k, v := range attrs {
		a[k] = v
	}
	b, err := json.Marshal(map[string]any{
		"object_kind": "merge_request",
		"user":        map[string]any{"id": 3, "username": "ana", "name": "Ana", "email": "ana@example.com"},
		"project": map[string]any{"id": 9, "path_with_namespace": "g/sub/p", "visibility_level": 10,
			"web_url": "https://gitlab.example.com/g/sub/p", "git_http_url": "https://gitlab.example.com/g/sub/p.git", "default_branch": "main"},
		"object_attributes": a,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMergeRequestActions(t *testing.T) {
	cases := []struct {
		attrs   map[string]any
		typ     string // "" when ignored
		state   string
		draft   bool
		merge   string
		ignored string
	}{
		{attrs: map[string]any{"action": "open"}, typ: "opened", state: "open"},
		{attrs: map[string]any{"action": "update", "oldrev": "0000000000000000000000000000000000000001"}, typ: "updated", state: "open"},
		{attrs: map[string]any{"action": "update"}, typ: "edited", state: "open"},
		{attrs: map[string]any{"action": "update", "oldrev": nil, "draft": true}, typ: "edited", state: "open", draft: true},
		{attrs: map[string]any{"action": "update", "work_in_progress": true}, typ: "edited", state: "open", draft: true},
		{attrs: map[string]any{"action": "close", "state": "closed"}, typ: "closed", state: "closed"},
		{attrs: map[string]any{"action": "reopen"}, typ: "reopened", state: "open"},
		{attrs: map[string]any{"action": "merge", "state": "merged", "merge_commit_sha": "2222222222222222222222222222222222222222"},
			typ: "merged", state: "merged", merge: "2222222222222222222222222222222222222222"},
		// merge_commit_sha of a merge request that is not merged is not a merge.
		{attrs: map[string]any{"action": "close", "state": "closed", "merge_commit_sha": "3333333333333333333333333333333333333333"},
			typ: "closed", state: "closed"},
		{attrs: map[string]any{"action": "merge", "state": nil}, typ: "merged", state: "merged"},
		{attrs: map[string]any{"action": "update", "state": "locked"}, typ: "edited", state: "open"},
		{attrs: map[string]any{"action": "approved"}, ignored: `GitLab merge request action "approved" has no mapping`},
		{attrs: map[string]any{"action": "unapproval"}, ignored: `GitLab merge request action "unapproval" has no mapping`},
		{attrs: map[string]any{"action": nil}, ignored: `GitLab merge request action "" has no mapping`},
	}
	for _, tc := range cases {
		t.Run(tc.typ+tc.ignored, func(t *testing.T) {
			res, err := normalize(t, "Merge Request Hook", mr(t, tc.attrs))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ignored != "" {
				if res.Ignored != tc.ignored || len(res.Events) != 0 {
					t.Fatalf("result %+v, want ignored %q", res, tc.ignored)
				}
				return
			}
			action, _ := tc.attrs["action"].(string)
			want := forge.Result{Events: []forge.Event{{
				Type:    forge.EventPullRequestPrefix + tc.typ,
				Subject: "pull_requests/7",
				Time:    time.Date(2026, 1, 2, 2, 4, 5, 123e6, time.UTC),
				Repository: &forge.EventRepository{ID: "9", FullName: "g/sub/p", Name: "p", Owner: "g/sub", DefaultBranch: "main",
					WebURL: "https://gitlab.example.com/g/sub/p", CloneURL: "https://gitlab.example.com/g/sub/p.git", Private: true},
				Sender: forge.Actor{Login: "ana", Name: "Ana", Email: "ana@example.com"},
				Data: forge.PullRequestData{
					Number: 7, Title: "Add x", Body: "why", State: tc.state, Draft: tc.draft,
					URL:      "https://gitlab.example.com/g/sub/p/-/merge_requests/7",
					Author:   forge.Actor{Login: "ana", Name: "Ana", Email: "ana@example.com"},
					Source:   forge.RefAt{Ref: "feature/x", SHA: "1111111111111111111111111111111111111111", RepositoryFullName: "fork/p"},
					Target:   forge.RefAt{Ref: "main"},
					MergeSHA: tc.merge,
					Action:   action,
				},
			}}}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPushVariants(t *testing.T) {
	t.Run("total_commits_count absent: the commits listed", func(t *testing.T) {
		res, err := normalize(t, "Push Hook", `{"object_kind":"push","ref":"refs/heads/x","before":"a","after":"b","project_id":4,
			"commits":[{"id":"b","message":"m"}]}`)
		if err != nil {
			t.Fatal(err)
		}
		d := res.Events[0].Data.(forge.PushData)
		if d.TotalCommits != 1 || len(res.Events) != 1 || res.Events[0].Repository != nil {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("branch deleted", func(t *testing.T) {
		res, err := normalize(t, "Push Hook", `{"object_kind":"push","ref":"refs/heads/old","before":"aaaa","after":"0000000000000000000000000000000000000000",
			"user_username":"bo","commits":[],"total_commits_count":0,"project":{"id":2,"path_with_namespace":"a/b"}}`)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Events) != 2 || res.Events[1].Type != forge.EventRefDeleted ||
			!cmp.Equal(res.Events[1].Data, forge.RefData{Ref: "refs/heads/old", RefType: "branch"}) ||
			!res.Events[0].Data.(forge.PushData).Deleted || res.Events[1].Sender.Login != "bo" || res.Events[1].Repository.ID != "2" {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("absent shas are zero", func(t *testing.T) {
		res, err := normalize(t, "Push Hook", `{"object_kind":"push","ref":"refs/heads/x","before":"","after":"abc"}`)
		if err != nil {
			t.Fatal(err)
		}
		if d := res.Events[0].Data.(forge.PushData); d.Before != forge.ZeroSHA || !d.Created || len(res.Events) != 2 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("merge request refs are ignored", func(t *testing.T) {
		res, err := normalize(t, "Push Hook", `{"object_kind":"push","ref":"refs/merge-requests/1/head","before":"a","after":"b"}`)
		if err != nil || len(res.Events) != 0 || !strings.Contains(res.Ignored, "neither a branch nor a tag") {
			t.Fatalf("%+v, %v", res, err)
		}
	})
}

func TestProjectRename(t *testing.T) {
	res, err := normalize(t, "System Hook", `{"event_name":"project_rename","created_at":"2012-07-21T07:30:58Z","updated_at":"2012-07-21T07:38:22Z",
		"name":"Underscore","path":"underscore","path_with_namespace":"jsmith/underscore","project_id":73,
		"project_visibility":"public","old_path_with_namespace":"jsmith/overscore"}`)
	if err != nil {
		t.Fatal(err)
	}
	repo := forge.Repository{HostID: "73", FullName: "jsmith/underscore", Name: "underscore", Owner: "jsmith", Group: "jsmith", Visibility: "public"}
	want := forge.Result{
		Events: []forge.Event{{
			Type: forge.EventRepositoryPrefix + "renamed", Time: mustTime(t, "2012-07-21T07:38:22Z"),
			Repository: &forge.EventRepository{ID: "73", FullName: "jsmith/underscore", Name: "underscore", Owner: "jsmith"},
			Data:       forge.RepositoryData{Changes: map[string]any{"old_full_name": "jsmith/overscore"}},
		}},
		Effects: []forge.Effect{forge.RepositoryChanged{Repository: repo}},
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNormalizeIgnoredAndMalformed(t *testing.T) {
	cases := []struct {
		name, event, body string
		ignored           string // the reason, when ignored
		bad               string // the error, when malformed
	}{
		{name: "issue", event: "Issue Hook", body: `{"object_kind":"issue","object_attributes":{"action":"open","iid":"x"}}`,
			ignored: `GitLab Issue Hook event "issue" has no mapping`},
		// A note's object_attributes do not look like a merge request's: still only ignored.
		{name: "note", event: "Note Hook", body: `{"object_kind":"note","object_attributes":{"id":1,"note":"hi","noteable_type":"MergeRequest","iid":[1],"draft":"no"}}`,
			ignored: `GitLab Note Hook event "note" has no mapping`},
		{name: "pipeline", event: "Pipeline Hook", body: `{"object_kind":"pipeline"}`, ignored: `GitLab Pipeline Hook event "pipeline" has no mapping`},
		{name: "user created (system)", event: "System Hook", body: `{"event_name":"user_create","user_id":3}`,
			ignored: `GitLab System Hook event "user_create" has no mapping`},
		{name: "no event header", body: `{"object_kind":"push"}`, bad: "X-Gitlab-Event is missing"},
		{name: "not JSON", event: "Push Hook", body: `{"object_kind":`, bad: "malformed"},
		{name: "no kind", event: "Push Hook", body: `{}`, bad: "neither object_kind nor event_name"},
		{name: "push without ref", event: "Push Hook", body: `{"object_kind":"push","after":"b"}`, bad: "push has no ref"},
		{name: "push with a bad commit list", event: "Push Hook", body: `{"object_kind":"push","ref":"refs/heads/x","commits":{}}`, bad: "cannot unmarshal"},
		{name: "merge request without attributes", event: "Merge Request Hook", body: `{"object_kind":"merge_request"}`, bad: "no object_attributes"},
		{name: "merge request without iid", event: "Merge Request Hook", body: `{"object_kind":"merge_request","object_attributes":{"action":"open"}}`, bad: "no iid"},
		{name: "project event without id", event: "System Hook", body: `{"event_name":"project_create","path_with_namespace":"a/b"}`, bad: "no project_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := normalize(t, tc.event, tc.body)
			if tc.bad != "" {
				if !errors.Is(err, forge.ErrMalformed) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("Normalize = %+v, %v; want ErrMalformed saying %q", res, err, tc.bad)
				}
				return
			}
			if err != nil || res.Ignored != tc.ignored || len(res.Events) != 0 || len(res.Effects) != 0 {
				t.Fatalf("Normalize = %+v, %v; want ignored %q", res, err, tc.ignored)
			}
		})
	}
}

func TestTimeLayouts(t *testing.T) {
	want := time.Date(2017, 12, 10, 17, 1, 11, 0, time.UTC)
	for _, s := range []string{`"2017-12-10 17:01:11 UTC"`, `"2017-12-10T17:01:11Z"`, `"2017-12-10T18:01:11+01:00"`, `"2017-12-10 18:01:11 +0100"`, `"2017-12-10T18:01:11.000+01:00"`} {
		var v glTime
		if err := json.Unmarshal([]byte(s), &v); err != nil || !v.Equal(want) {
			t.Errorf("%s → %v, %v", s, v.Time, err)
		}
	}
	for _, s := range []string{`null`, `""`, `"yesterday"`, `12`} {
		var v glTime
		if err := json.Unmarshal([]byte(s), &v); err != nil || !v.IsZero() {
			t.Errorf("%s → %v, %v; want the zero time", s, v.Time, err)
		}
	}
}
