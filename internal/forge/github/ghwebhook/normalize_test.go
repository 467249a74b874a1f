package ghwebhook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest/corpus"
)

// Payloads for what the corpus does not show: a branch push with commits, merges, drafts,
// archived repositories, organizations as previous owners and the like. They follow the
// shapes of GitHub's documented payloads.

const branchPush = `{
  "ref": "refs/heads/main",
  "before": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
  "after": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
  "created": false, "deleted": false, "forced": true,
  "commits": [
    {"id": "aaaa000000000000000000000000000000000001", "message": "first\n\nbody", "timestamp": "2024-03-01T10:00:00+01:00",
     "url": "https://github.com/o/r/commit/aaaa000000000000000000000000000000000001",
     "author": {"name": "Mona Lisa", "email": "mona@example.com", "username": "mona"}},
    {"id": "ec26c3e57ca3a959ca5aad62de7213c562f8c821", "message": "second", "timestamp": "2024-03-01T10:05:00+01:00",
     "url": "https://github.com/o/r/commit/ec26c3e57ca3a959ca5aad62de7213c562f8c821",
     "author": {"name": "Hubot", "email": ""}}
  ],
  "head_commit": {"id": "ec26c3e57ca3a959ca5aad62de7213c562f8c821", "timestamp": "2024-03-01T10:05:00+01:00"},
  "repository": {"id": 42, "name": "r", "full_name": "o/r", "private": true,
    "owner": {"name": "o", "email": null},
    "html_url": "https://github.com/o/r", "clone_url": "https://github.com/o/r.git",
    "master_branch": "trunk", "pushed_at": 1709283900},
  "pusher": {"name": "mona", "email": "mona@example.com"},
  "sender": {"login": "mona"}
}`

func prPayload(action string, merged bool, draft bool) string {
	state := "open"
	if action == "closed" {
		state = "closed"
	}
	m := "false"
	if merged {
		m = "true"
	}
	d := "false"
	if draft {
		d = "true"
	}
	return `{"action":"` + action + `","number":7,
  "pull_request":{"number":7,"state":"` + state + `","title":"T","body":"B","draft":` + d + `,"merged":` + m + `,
    "html_url":"https://github.com/o/r/pull/7","user":{"login":"fork-owner"},
    "head":{"ref":"feature","sha":"1111111111111111111111111111111111111111","repo":{"full_name":"fork-owner/r"}},
    "base":{"ref":"main","sha":"2222222222222222222222222222222222222222","repo":{"full_name":"o/r"}},
    "merge_commit_sha":"3333333333333333333333333333333333333333","updated_at":"2024-03-02T08:00:00Z"},
  "repository":{"id":42,"name":"r","full_name":"o/r","owner":{"login":"o"},"default_branch":"main",
    "html_url":"https://github.com/o/r","clone_url":"https://github.com/o/r.git"},
  "sender":{"login":"o"}}`
}

func TestNormalize(t *testing.T) {
	repoOR := &forge.EventRepository{
		ID: "42", FullName: "o/r", Name: "r", Owner: "o", DefaultBranch: "main",
		WebURL: "https://github.com/o/r", CloneURL: "https://github.com/o/r.git",
	}
	prData := func(action, state string, draft bool, mergeSHA string) forge.PullRequestData {
		return forge.PullRequestData{
			Number: 7, Title: "T", Body: "B", State: state, Draft: draft,
			URL:      "https://github.com/o/r/pull/7",
			Author:   forge.Actor{Login: "fork-owner"},
			Source:   forge.RefAt{Ref: "feature", SHA: "1111111111111111111111111111111111111111", RepositoryFullName: "fork-owner/r"},
			Target:   forge.RefAt{Ref: "main", SHA: "2222222222222222222222222222222222222222"},
			MergeSHA: mergeSHA,
			Action:   action,
		}
	}
	prResult := func(typ string, data forge.PullRequestData) forge.Result {
		return forge.Result{Events: []forge.Event{{
			Type:       forge.EventPullRequestPrefix + typ,
			Subject:    "pull_requests/7",
			Time:       mustTime(t, "2024-03-02T08:00:00Z"),
			Repository: repoOR,
			Sender:     forge.Actor{Login: "o"},
			Data:       data,
		}}}
	}
	const repoJSON = `{"id":42,"name":"r","full_name":"o/r","owner":{"login":"o"},"default_branch":"main",
	  "html_url":"https://github.com/o/r","clone_url":"https://github.com/o/r.git","private":true,
	  "visibility":"internal","archived":true,"description":"d","updated_at":"2024-03-03T00:00:00Z"}`
	catalogOR := forge.Repository{
		HostID: "42", FullName: "o/r", Name: "r", Owner: "o", Group: "o", DefaultBranch: "main",
		Visibility: "internal", Private: true, Archived: true, Description: "d",
		CloneURL: "https://github.com/o/r.git", WebURL: "https://github.com/o/r", Installation: "9",
	}
	privateOR := *repoOR
	privateOR.Private = true
	repoResult := func(typ string, changes map[string]any) forge.Result {
		return forge.Result{
			Events: []forge.Event{{
				Type:       forge.EventRepositoryPrefix + typ,
				Time:       mustTime(t, "2024-03-03T00:00:00Z"),
				Repository: &privateOR,
				Sender:     forge.Actor{Login: "o"},
				Data:       forge.RepositoryData{Changes: changes},
			}},
			Effects: []forge.Effect{forge.RepositoryChanged{Repository: catalogOR}},
		}
	}
	repoDelivery := func(action, changes string) string {
		return `{"action":"` + action + `","changes":` + changes + `,"repository":` + repoJSON +
			`,"installation":{"id":9},"sender":{"login":"o"}}`
	}

	tests := []struct {
		name  string
		event string
		body  string
		want  forge.Result
	}{
		{
			name:  "branch push with commits, forced, owner name and master_branch",
			event: "push",
			body:  branchPush,
			want: forge.Result{Events: []forge.Event{{
				Type:    forge.EventPush,
				Subject: "refs/heads/main",
				Time:    mustTime(t, "2024-03-01T09:05:00Z"), // head_commit.timestamp, not pushed_at
				Repository: &forge.EventRepository{
					ID: "42", FullName: "o/r", Name: "r", Owner: "o", DefaultBranch: "trunk",
					WebURL: "https://github.com/o/r", CloneURL: "https://github.com/o/r.git", Private: true,
				},
				Sender: forge.Actor{Login: "mona"},
				Data: forge.PushData{
					Ref: "refs/heads/main", RefType: "branch",
					Before: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
					After:  "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
					Forced: true,
					Commits: []forge.Commit{
						{ID: "aaaa000000000000000000000000000000000001", Message: "first\n\nbody", Timestamp: "2024-03-01T10:00:00+01:00",
							Author: forge.Person{Name: "Mona Lisa", Email: "mona@example.com"},
							URL:    "https://github.com/o/r/commit/aaaa000000000000000000000000000000000001"},
						{ID: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", Message: "second", Timestamp: "2024-03-01T10:05:00+01:00",
							Author: forge.Person{Name: "Hubot"},
							URL:    "https://github.com/o/r/commit/ec26c3e57ca3a959ca5aad62de7213c562f8c821"},
					},
					TotalCommits: 2,
					Pusher:       forge.Actor{Login: "mona", Email: "mona@example.com"},
				},
			}}},
		},
		{
			name:  "branch creation push: absent before is zeros",
			event: "push",
			body:  `{"ref":"refs/heads/new","after":"ec26c3e57ca3a959ca5aad62de7213c562f8c821","created":true,"commits":[]}`,
			want: forge.Result{Events: []forge.Event{{
				Type: forge.EventPush, Subject: "refs/heads/new",
				Data: forge.PushData{
					Ref: "refs/heads/new", RefType: "branch", Before: forge.ZeroSHA,
					After: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", Created: true, Commits: []forge.Commit{},
				},
			}}},
		},
		{
			name:  "push outside branches and tags",
			event: "push",
			body:  `{"ref":"refs/notes/commits","before":"","after":""}`,
			want:  forge.Result{Ignored: `GitHub push to "refs/notes/commits", which is neither a branch nor a tag`},
		},
		{
			name:  "branch created",
			event: "create",
			body:  `{"ref":"feature/x","ref_type":"branch","master_branch":"main","sender":{"login":"o"}}`,
			want: forge.Result{Events: []forge.Event{{
				Type: forge.EventRefCreated, Subject: "refs/heads/feature/x", Sender: forge.Actor{Login: "o"},
				Data: forge.RefData{Ref: "refs/heads/feature/x", RefType: "branch"},
			}}},
		},
		{
			name:  "branch deleted",
			event: "delete",
			body:  `{"ref":"gone","ref_type":"branch"}`,
			want: forge.Result{Events: []forge.Event{{
				Type: forge.EventRefDeleted, Subject: "refs/heads/gone",
				Data: forge.RefData{Ref: "refs/heads/gone", RefType: "branch"},
			}}},
		},
		{
			name:  "create of a repository (old ref_type) is not a ref",
			event: "create",
			body:  `{"ref":"x","ref_type":"repository"}`,
			want:  forge.Result{Ignored: `GitHub ref_type "repository" has no mapping`},
		},
		{name: "pull request merged", event: "pull_request", body: prPayload("closed", true, false),
			want: prResult("merged", prData("closed", "merged", false, "3333333333333333333333333333333333333333"))},
		{name: "pull request closed unmerged has no merge sha", event: "pull_request", body: prPayload("closed", false, false),
			want: prResult("closed", prData("closed", "closed", false, ""))},
		{name: "pull request converted to draft", event: "pull_request", body: prPayload("converted_to_draft", false, true),
			want: prResult("edited", prData("converted_to_draft", "open", true, ""))},
		{name: "pull request edited", event: "pull_request", body: prPayload("edited", false, false),
			want: prResult("edited", prData("edited", "open", false, ""))},
		{name: "pull request labeled", event: "pull_request", body: prPayload("labeled", false, false),
			want: forge.Result{Ignored: `GitHub pull_request action "labeled" has no mapping`}},
		{name: "pull request review requested", event: "pull_request", body: prPayload("review_requested", false, false),
			want: forge.Result{Ignored: `GitHub pull_request action "review_requested" has no mapping`}},
		{name: "repository archived, internal visibility", event: "repository", body: repoDelivery("archived", "null"),
			want: repoResult("archived", map[string]any{})},
		{name: "repository unarchived", event: "repository", body: repoDelivery("unarchived", "null"),
			want: repoResult("unarchived", map[string]any{})},
		{name: "repository edited: default branch", event: "repository",
			body: repoDelivery("edited", `{"default_branch":{"from":"master"}}`),
			want: repoResult("edited", map[string]any{"default_branch": map[string]any{"from": "master"}})},
		{name: "repository edited without changes", event: "repository", body: repoDelivery("edited", "null"),
			want: repoResult("edited", map[string]any{})},
		{name: "repository transferred from an organization", event: "repository",
			body: repoDelivery("transferred", `{"owner":{"from":{"organization":{"login":"old-org"}}}}`),
			want: repoResult("transferred", map[string]any{"old_full_name": "old-org/r"})},
		{name: "repository renamed", event: "repository",
			body: repoDelivery("renamed", `{"repository":{"name":{"from":"old-r"}}}`),
			want: repoResult("renamed", map[string]any{"old_full_name": "o/old-r"})},
		{name: "repository renamed without its old name says none", event: "repository",
			body: repoDelivery("renamed", `{}`),
			want: repoResult("renamed", map[string]any{})},
		{name: "repository action without mapping", event: "repository", body: repoDelivery("starred", "null"),
			want: forge.Result{Ignored: `GitHub repository action "starred" has no mapping`}},
		{name: "installation action without mapping", event: "installation", body: `{"action":"exploded","installation":{"id":1}}`,
			want: forge.Result{Ignored: `GitHub installation action "exploded" has no mapping`}},
		{name: "installation_repositories action without mapping", event: "installation_repositories", body: `{"action":"renamed"}`,
			want: forge.Result{Ignored: `GitHub installation_repositories action "renamed" has no mapping`}},
		{name: "installation created with no repositories: no RepositoriesAdded", event: "installation",
			body: `{"action":"created","installation":{"id":3,"account":{"login":"acme","type":"Organization"},"repository_selection":"all"},"repositories":[]}`,
			want: forge.Result{
				Events: []forge.Event{{
					Type: forge.EventInstallationPrefix + "created",
					Data: forge.InstallationData{Installation: forge.InstallationRef{ID: "3",
						Account: forge.InstallAccount{Login: "acme", Type: "Organization"}, RepositorySelection: "all"}},
				}},
				Effects: []forge.Effect{forge.InstallationChanged{
					Installation: forge.Installation{ID: "3", Account: "acme", AccountType: "Organization", RepositorySelection: "all"},
					Status:       "active",
				}},
			}},
		{name: "unknown event", event: "issues", body: `{"action":"opened"}`,
			want: forge.Result{Ignored: `GitHub event "issues" has no mapping`}},
		{name: "ping from an organization hook", event: "ping", body: `{"zen":"Z","hook_id":5,"hook":{"id":5}}`,
			want: forge.Result{Events: []forge.Event{{Type: forge.EventPing, Data: forge.PingData{HookID: "5", Zen: "Z"}}}}},
	}
	w := New()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.Normalize(t.Context(), delivery(tc.event, "d", "", []byte(tc.body), false), noState{t})
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Normalize (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNormalizeMalformed(t *testing.T) {
	tests := []struct {
		name    string
		event   string
		body    string
		wantErr string
	}{
		{name: "truncated JSON", event: "push", body: `{"ref":"refs/heads/main"`, wantErr: "unexpected end of JSON input"},
		{name: "not JSON", event: "pull_request", body: `<html>`, wantErr: "invalid character '<'"},
		{name: "not JSON, unknown event", event: "issues", body: `nope`, wantErr: "not a JSON object"},
		{name: "wrong type", event: "push", body: `{"ref":5}`, wantErr: "cannot unmarshal number"},
		{name: "negative id", event: "repository", body: `{"action":"created","repository":{"id":-1}}`, wantErr: "not an unsigned integer"},
		{name: "push without ref", event: "push", body: `{"before":"x"}`, wantErr: "push has no ref"},
		{name: "create without ref", event: "create", body: `{"ref_type":"tag"}`, wantErr: "no ref"},
		{name: "pull_request without object", event: "pull_request", body: `{"action":"opened"}`, wantErr: "no pull_request object"},
		{name: "repository without repository", event: "repository", body: `{"action":"deleted"}`, wantErr: "no repository id"},
		{name: "installation without installation", event: "installation", body: `{"action":"deleted"}`, wantErr: "no installation id"},
		{name: "installation_repositories without installation", event: "installation_repositories", body: `{"action":"added"}`, wantErr: "no installation id"},
		{name: "authorization revoked without sender", event: "github_app_authorization", body: `{"action":"revoked"}`, wantErr: "no sender login"},
		{name: "edited changes not an object", event: "repository",
			body: `{"action":"edited","changes":[1],"repository":{"id":1}}`, wantErr: "changes: json: cannot unmarshal array"},
	}
	w := New()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := w.Normalize(t.Context(), delivery(tc.event, "d", "", []byte(tc.body), false), noState{t})
			if err == nil {
				t.Fatalf("Normalize = %+v, want error containing %q", res, tc.wantErr)
			}
			if !errors.Is(err, forge.ErrMalformed) {
				t.Errorf("error %q does not wrap forge.ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not say %q", err, tc.wantErr)
			}
		})
	}

	t.Run("missing event header", func(t *testing.T) {
		d := delivery("push", "d", "", []byte(`{}`), false)
		d.Header.Del(HeaderEvent)
		if _, err := w.Normalize(t.Context(), d, noState{t}); !errors.Is(err, forge.ErrMalformed) || !strings.Contains(err.Error(), HeaderEvent) {
			t.Errorf("Normalize without %s: err = %v, want ErrMalformed naming the header", HeaderEvent, err)
		}
	})
}

// TestNormalizeDecodesAsEncodingJSON checks that decoding only the members the mappings read
// changes nothing for the payloads above, which the corpus does not show (the corpus itself
// is compared for every host in forgetest/sample): each normalizes as it does when
// encoding/json decodes the whole document (a Webhooks without its shape).
func TestNormalizeDecodesAsEncodingJSON(t *testing.T) {
	docs := map[string][]byte{}
	for _, action := range []string{"opened", "closed", "synchronize"} {
		docs["pull_request|"+action] = []byte(prPayload(action, action == "closed", false))
	}
	docs["push|branch"] = []byte(branchPush)
	pruned, whole := New(), &Webhooks{}
	for key, body := range docs {
		event, _, _ := strings.Cut(key, "|")
		d := delivery(event, "d", "", body, false)
		got, err := pruned.Normalize(t.Context(), d, noState{t})
		want, wantErr := whole.Normalize(t.Context(), d, noState{t})
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Errorf("%s: error %v, encoding/json %v", key, err, wantErr)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: (-encoding/json +pruned):\n%s", key, diff)
		}
	}
}

// BenchmarkNormalizePush normalizes the corpus's 7 KB push, decoding only what the mapping
// reads ("pruned") and, as before, the whole document ("encoding-json").
func BenchmarkNormalizePush(b *testing.B) {
	body := corpus.Files(b, "github")["push.json"]
	d := delivery("push", "d", "", body, false)
	for _, bc := range []struct {
		name string
		w    *Webhooks
	}{{"pruned", New()}, {"encoding-json", &Webhooks{}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := bc.w.Normalize(context.Background(), d, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
