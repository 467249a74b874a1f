package giteawebhook

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
)

func TestIdentify(t *testing.T) {
	w := New()
	push := []byte(`{"ref":"refs/heads/main","before":"1111111111111111111111111111111111111111","after":"2222222222222222222222222222222222222222"}`)
	testPush := []byte(`{"ref":"refs/heads/main","before":"2222222222222222222222222222222222222222","after":"2222222222222222222222222222222222222222"}`)
	newBranch := []byte(`{"ref":"refs/heads/x","before":"0000000000000000000000000000000000000000","after":"0000000000000000000000000000000000000000"}`)
	tests := []struct {
		name    string
		d       forge.Delivery
		want    forge.DeliveryInfo
		wantErr bool
	}{
		{"gitea push", delivery("push", "id-1", "s", push, giteaHeaders, false), forge.DeliveryInfo{ID: "id-1", Event: "push"}, false},
		{"forgejo only", delivery("push", "id-2", "s", push, forgejoOnly, false), forge.DeliveryInfo{ID: "id-2", Event: "push"}, false},
		{"test delivery", delivery("push", "id-3", "s", testPush, giteaHeaders, false), forge.DeliveryInfo{ID: "id-3", Event: "push", Test: true}, false},
		{"zero before and after is no test", delivery("push", "id-4", "s", newBranch, giteaHeaders, false), forge.DeliveryInfo{ID: "id-4", Event: "push"}, false},
		{"action", delivery("pull_request", "id-5", "s", []byte(`{"action":"label_updated"}`), giteaHeaders, true), forge.DeliveryInfo{ID: "id-5", Event: "pull_request", Action: "label_updated"}, false},
		{"action of another type", delivery("issues", "id-6", "s", []byte(`{"action":7}`), giteaHeaders, false), forge.DeliveryInfo{ID: "id-6", Event: "issues"}, false},
		{"not JSON", delivery("push", "id", "s", []byte(`ref=main`), giteaHeaders, false), forge.DeliveryInfo{}, true},
		{"JSON array", delivery("push", "id", "s", []byte(`[{"ref":"x"}]`), giteaHeaders, false), forge.DeliveryInfo{}, true},
		{"JSON string", delivery("push", "id", "s", []byte(`"x"`), giteaHeaders, false), forge.DeliveryInfo{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := w.Identify(tt.d)
			if tt.wantErr {
				if !errors.Is(err, forge.ErrMalformed) {
					t.Fatalf("error %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	t.Run("headers that make no Gitea delivery", func(t *testing.T) {
		for name, h := range map[string]http.Header{
			"no event":           {HeaderDelivery: {"x"}},
			"GitHub's only":      {"X-Github-Event": {"push"}, "X-Github-Delivery": {"x"}},
			"Gogs' only":         {"X-Gogs-Event": {"push"}, "X-Gogs-Delivery": {"x"}},
			"blank event":        {HeaderEvent: {"  "}},
			"unknown media type": {HeaderEvent: {"push"}, "Content-Type": {"text/plain"}},
			"bad media type":     {HeaderEvent: {"push"}, "Content-Type": {"application/json; ="}},
			"form, no payload":   {HeaderEvent: {"push"}, "Content-Type": {"application/x-www-form-urlencoded"}},
		} {
			_, err := w.Identify(forge.Delivery{Header: h, Body: []byte(`{}`)})
			if !errors.Is(err, forge.ErrMalformed) {
				t.Errorf("%s: error %v, want ErrMalformed", name, err)
			}
		}
	})

	t.Run("id derived from the payload when no header carries one", func(t *testing.T) {
		mk := func(body string, form bool) forge.Delivery {
			h := http.Header{HeaderEvent: {"push"}}
			b := []byte(body)
			if form {
				h.Set("Content-Type", "application/x-www-form-urlencoded")
				b = []byte(url.Values{"payload": {body}}.Encode())
			}
			return forge.Delivery{Header: h, Body: b}
		}
		a, err1 := w.Identify(mk(`{"ref":"refs/heads/a"}`, false))
		again, err2 := w.Identify(mk(`{"ref":"refs/heads/a"}`, false))
		asForm, err3 := w.Identify(mk(`{"ref":"refs/heads/a"}`, true))
		other, err4 := w.Identify(mk(`{"ref":"refs/heads/b"}`, false))
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(a.ID, "body-sha256:") || len(a.ID) != len("body-sha256:")+64 {
			t.Fatalf("derived id %q", a.ID)
		}
		if a.ID != again.ID || a.ID != asForm.ID {
			t.Errorf("the same payload gave ids %q, %q and %q", a.ID, again.ID, asForm.ID)
		}
		if a.ID == other.ID {
			t.Error("different payloads gave the same id")
		}
	})
}

func TestVerify(t *testing.T) {
	w := New()
	doc := []byte(`{"ref":"refs/heads/main"}`)
	const secret = "It's a Secret to Everybody"
	good := delivery("push", "id", secret, doc, giteaHeaders, false)
	with := func(mut func(h http.Header)) forge.Delivery {
		h := good.Header.Clone()
		mut(h)
		return forge.Delivery{Header: h, Body: good.Body}
	}
	formOverWire := delivery("push", "id", "", doc, giteaHeaders, true)
	formOverWire.Header.Set(HeaderSignature, Sign(secret, formOverWire.Body))

	tests := []struct {
		name    string
		d       forge.Delivery
		secrets []string
		wantErr string // "" for success; else a fragment of the error
	}{
		{"good", good, []string{secret}, ""},
		{"previous secret while rotating", good, []string{"new-one", secret}, ""},
		{"empty secrets are skipped", good, []string{"", secret}, ""},
		{"form: signed over the JSON, as Gitea does", delivery("push", "id", secret, doc, giteaHeaders, true), []string{secret}, ""},
		{"form: signed over the wire bytes", formOverWire, []string{secret}, "matches none"},
		{"forgejo header only", delivery("push", "id", secret, doc, forgejoOnly, false), []string{secret}, ""},
		{"gitea header empty, forgejo's set", with(func(h http.Header) {
			h.Set(HeaderForgejoSignature, h.Get(HeaderSignature))
			h.Set(HeaderSignature, "")
		}), []string{secret}, ""},
		{"wrong secret", good, []string{"other"}, "matches none of the 1 configured secrets"},
		{"no secret configured", good, nil, "no webhook secret is configured"},
		{"only empty secrets", good, []string{"", ""}, "no webhook secret is configured"},
		{"headers missing", with(func(h http.Header) { h.Del(HeaderSignature) }), []string{secret}, "are missing"},
		{"GitHub's signature only", with(func(h http.Header) { h.Del(HeaderSignature) }), []string{secret}, "are missing"},
		{"hook without a secret", with(func(h http.Header) { h.Set(HeaderSignature, "") }), []string{secret}, "has no secret"},
		{"prefixed", with(func(h http.Header) { h.Set(HeaderSignature, "sha256="+h.Get(HeaderSignature)) }), []string{secret}, "not hexadecimal"},
		{"not hex", with(func(h http.Header) { h.Set(HeaderSignature, "zz") }), []string{secret}, "not hexadecimal"},
		{"too short", with(func(h http.Header) { h.Set(HeaderSignature, "abcd") }), []string{secret}, "holds 2 bytes, want 32"},
		{"body changed", forge.Delivery{Header: good.Header, Body: []byte(`{"ref":"refs/heads/evil"}`)}, []string{secret}, "matches none"},
		{"uppercase hex", with(func(h http.Header) { h.Set(HeaderSignature, strings.ToUpper(h.Get(HeaderSignature))) }), []string{secret}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := w.Verify(tt.d, forge.VerifyKeys{Secrets: tt.secrets})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, forge.ErrSignature) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want ErrSignature saying %q", err, tt.wantErr)
			}
			for _, s := range append(tt.secrets, Sign(secret, doc)) {
				if s != "" && strings.Contains(err.Error(), s) {
					t.Errorf("error %q shows a secret or the expected signature", err)
				}
			}
		})
	}
}

// modernPush is a push as Gitea 1.2x sends it: head_commit, total_commits beyond the commits
// listed (FEED_MAX_COMMIT_NUM), newest commit first.
const modernPush = `{
  "ref": "refs/heads/main",
  "before": "1111111111111111111111111111111111111111",
  "after": "3333333333333333333333333333333333333333",
  "compare_url": "https://gitea.example/acme/widgets/compare/1111111111...3333333333",
  "commits": [
    {"id": "3333333333333333333333333333333333333333", "message": "ABC-2 second\n", "url": "https://gitea.example/acme/widgets/commit/3333333333333333333333333333333333333333",
     "author": {"name": "Ann", "email": "ann@example.com", "username": "ann"}, "committer": {"name": "Ann", "email": "ann@example.com", "username": "ann"},
     "verification": null, "timestamp": "2026-11-20T10:00:00+01:00", "added": [], "removed": [], "modified": ["a"]},
    {"id": "2222222222222222222222222222222222222222", "message": "ABC-1 first\n", "url": "https://gitea.example/acme/widgets/commit/2222222222222222222222222222222222222222",
     "author": {"name": "Ann", "email": "ann@example.com", "username": "ann"}, "committer": {"name": "Ann", "email": "ann@example.com", "username": "ann"},
     "verification": null, "timestamp": "2026-11-20T09:00:00+01:00", "added": ["a"], "removed": [], "modified": []}
  ],
  "total_commits": 7,
  "head_commit": {"id": "3333333333333333333333333333333333333333", "message": "ABC-2 second\n", "url": "https://gitea.example/acme/widgets/commit/3333333333333333333333333333333333333333",
     "author": {"name": "Ann", "email": "ann@example.com", "username": "ann"}, "timestamp": "2026-11-20T10:00:00+01:00"},
  "repository": {"id": 42, "owner": {"id": 3, "login": "acme", "full_name": "Acme", "email": "", "username": "acme"},
     "name": "widgets", "full_name": "acme/widgets", "private": true, "fork": false, "html_url": "https://gitea.example/acme/widgets",
     "clone_url": "https://gitea.example/acme/widgets.git", "default_branch": "main", "updated_at": "2026-11-20T09:01:00Z"},
  "pusher": {"id": 7, "login": "ann", "full_name": "Ann Example", "email": "ann@example.com", "username": "ann"},
  "sender": {"id": 7, "login": "ann", "full_name": "Ann Example", "email": "ann@example.com", "username": "ann"}
}`

func TestNormalize(t *testing.T) {
	w := New()
	ann := forge.Actor{Login: "ann", Name: "Ann Example", Email: "ann@example.com"}
	widgets := &forge.EventRepository{
		ID: "42", FullName: "acme/widgets", Name: "widgets", Owner: "acme", DefaultBranch: "main",
		WebURL: "https://gitea.example/acme/widgets", CloneURL: "https://gitea.example/acme/widgets.git", Private: true,
	}
	repoJSON := `{"id": 42, "owner": {"login": "acme", "username": "acme"}, "name": "widgets", "full_name": "acme/widgets",
		"private": true, "html_url": "https://gitea.example/acme/widgets", "clone_url": "https://gitea.example/acme/widgets.git",
		"default_branch": "main", "created_at": "2026-11-19T08:00:00Z", "updated_at": "2026-11-20T09:01:00Z", "description": "Widgets"}`
	sender := `{"login": "ann", "full_name": "Ann Example", "email": "ann@example.com"}`
	pr := func(action, state string, merged bool, extra string) string {
		return `{"action": "` + action + `", "number": 5, "pull_request": {"id": 90, "number": 5, "title": "WIP: widen", "body": "Fixes ABC-3",
			"state": "` + state + `", "draft": true, "merged": ` + map[bool]string{true: "true", false: "false"}[merged] + `,
			"html_url": "https://gitea.example/acme/widgets/pulls/5", "user": {"login": "bob", "username": "bob"},
			"head": {"ref": "feature/wide", "sha": "4444444444444444444444444444444444444444", "repo": {"full_name": "bob/widgets"}},
			"base": {"ref": "main", "sha": "1111111111111111111111111111111111111111", "repo": {"full_name": "acme/widgets"}},
			"updated_at": "2026-11-20T11:00:00Z"` + extra + `}, "repository": ` + repoJSON + `, "sender": ` + sender + `}`
	}
	prData := func(action, state, merge string) forge.PullRequestData {
		return forge.PullRequestData{
			Number: 5, Title: "WIP: widen", Body: "Fixes ABC-3", State: state, Draft: true,
			URL: "https://gitea.example/acme/widgets/pulls/5", Author: forge.Actor{Login: "bob"},
			Source:   forge.RefAt{Ref: "feature/wide", SHA: "4444444444444444444444444444444444444444", RepositoryFullName: "bob/widgets"},
			Target:   forge.RefAt{Ref: "main", SHA: "1111111111111111111111111111111111111111"},
			MergeSHA: merge, Action: action,
		}
	}
	prResult := func(typ string, data forge.PullRequestData) forge.Result {
		return forge.Result{Events: []forge.Event{{
			Type: forge.EventPullRequestPrefix + typ, Subject: "pull_requests/5", Time: mustTime(t, "2026-11-20T11:00:00Z"),
			Repository: widgets, Sender: ann, Data: data,
		}}}
	}
	catalog := forge.Repository{
		HostID: "42", FullName: "acme/widgets", Name: "widgets", Owner: "acme", Group: "acme", DefaultBranch: "main",
		Visibility: "private", Private: true, CloneURL: "https://gitea.example/acme/widgets.git",
		WebURL: "https://gitea.example/acme/widgets", Description: "Widgets",
	}
	const sha1Zero = "0000000000000000000000000000000000000000"
	const sha256Zero = sha1Zero + "000000000000000000000000"

	tests := []struct {
		name  string
		event string
		body  string
		want  forge.Result
	}{
		{"push with head_commit and a count beyond the list", "push", modernPush, forge.Result{Events: []forge.Event{{
			Type: forge.EventPush, Subject: "refs/heads/main", Time: mustTime(t, "2026-11-20T09:00:00Z"),
			Repository: widgets, Sender: ann,
			Data: forge.PushData{
				Ref: "refs/heads/main", RefType: "branch",
				Before: "1111111111111111111111111111111111111111", After: "3333333333333333333333333333333333333333",
				Commits: []forge.Commit{
					{ID: "3333333333333333333333333333333333333333", Message: "ABC-2 second\n", Timestamp: "2026-11-20T10:00:00+01:00",
						Author: forge.Person{Name: "Ann", Email: "ann@example.com"}, URL: "https://gitea.example/acme/widgets/commit/3333333333333333333333333333333333333333"},
					{ID: "2222222222222222222222222222222222222222", Message: "ABC-1 first\n", Timestamp: "2026-11-20T09:00:00+01:00",
						Author: forge.Person{Name: "Ann", Email: "ann@example.com"}, URL: "https://gitea.example/acme/widgets/commit/2222222222222222222222222222222222222222"},
				},
				TotalCommits: 7, Pusher: ann,
			},
		}}}},
		{"new tag", "push", `{"ref": "refs/tags/v1", "before": "` + sha1Zero + `", "after": "5555555555555555555555555555555555555555", "commits": [], "total_commits": 0, "repository": ` + repoJSON + `, "pusher": ` + sender + `, "sender": ` + sender + `}`,
			forge.Result{Events: []forge.Event{{
				Type: forge.EventPush, Subject: "refs/tags/v1", Repository: widgets, Sender: ann,
				Data: forge.PushData{Ref: "refs/tags/v1", RefType: "tag", Before: sha1Zero, After: "5555555555555555555555555555555555555555",
					Created: true, Commits: []forge.Commit{}, Pusher: ann},
			}}}},
		{"deleted tag in a SHA-256 repository", "push", `{"ref": "refs/tags/v1", "before": "` + strings.Repeat("6", 64) + `", "after": "` + sha256Zero + `", "commits": null, "repository": ` + repoJSON + `, "pusher": ` + sender + `, "sender": ` + sender + `}`,
			forge.Result{Events: []forge.Event{{
				Type: forge.EventPush, Subject: "refs/tags/v1", Repository: widgets, Sender: ann,
				Data: forge.PushData{Ref: "refs/tags/v1", RefType: "tag", Before: strings.Repeat("6", 64), After: sha256Zero,
					Deleted: true, Commits: []forge.Commit{}, Pusher: ann},
			}}}},
		{"push without before and after", "push", `{"ref": "refs/heads/x"}`, forge.Result{Events: []forge.Event{{
			Type: forge.EventPush, Subject: "refs/heads/x",
			Data: forge.PushData{Ref: "refs/heads/x", RefType: "branch", Before: forge.ZeroSHA, After: forge.ZeroSHA, Created: true, Deleted: true, Commits: []forge.Commit{}},
		}}}},
		{"test delivery", "push", `{"ref": "refs/heads/main", "before": "3333333333333333333333333333333333333333", "after": "3333333333333333333333333333333333333333", "total_commits": 1, "repository": ` + repoJSON + `, "pusher": ` + sender + `, "sender": ` + sender + `}`,
			forge.Result{Events: []forge.Event{{Type: forge.EventPing, Repository: widgets, Sender: ann, Data: forge.PingData{}}}}},
		{"push to a pull request ref", "push", `{"ref": "refs/pull/5/head", "before": "1", "after": "2"}`, forge.Result{Ignored: `Gitea push to "refs/pull/5/head", which is neither a branch nor a tag`}},
		{"create with sha", "create", `{"sha": "5555555555555555555555555555555555555555", "ref": "feature/x", "ref_type": "branch", "repository": ` + repoJSON + `, "sender": ` + sender + `}`,
			forge.Result{Events: []forge.Event{{Type: forge.EventRefCreated, Subject: "refs/heads/feature/x", Repository: widgets, Sender: ann,
				Data: forge.RefData{Ref: "refs/heads/feature/x", RefType: "branch", SHA: "5555555555555555555555555555555555555555"}}}}},
		{"create with a full ref", "create", `{"sha": "5", "ref": "refs/tags/v2", "ref_type": "tag"}`,
			forge.Result{Events: []forge.Event{{Type: forge.EventRefCreated, Subject: "refs/tags/v2", Data: forge.RefData{Ref: "refs/tags/v2", RefType: "tag", SHA: "5"}}}}},
		{"delete tag", "delete", `{"ref": "v1", "ref_type": "tag", "pusher_type": "user", "repository": ` + repoJSON + `, "sender": ` + sender + `}`,
			forge.Result{Events: []forge.Event{{Type: forge.EventRefDeleted, Subject: "refs/tags/v1", Repository: widgets, Sender: ann,
				Data: forge.RefData{Ref: "refs/tags/v1", RefType: "tag"}}}}},
		{"create of another ref type", "create", `{"ref": "x", "ref_type": "pull"}`, forge.Result{Ignored: `Gitea ref_type "pull" has no mapping`}},
		{"pull request opened as draft", "pull_request", pr("opened", "open", false, ""), prResult("opened", prData("opened", "open", ""))},
		{"pull request synchronized", "pull_request", pr("synchronized", "open", false, ""), prResult("updated", prData("synchronized", "open", ""))},
		{"pull request closed", "pull_request", pr("closed", "closed", false, `, "merge_commit_sha": null`), prResult("closed", prData("closed", "closed", ""))},
		{"pull request merged", "pull_request", pr("closed", "closed", true, `, "merge_commit_sha": "7777777777777777777777777777777777777777"`), prResult("merged", prData("closed", "merged", "7777777777777777777777777777777777777777"))},
		{"pull request number only at the top", "pull_request", `{"action": "reopened", "number": 9, "pull_request": {"state": "open", "head": {"ref": "x", "repo": null}, "base": {"ref": "main"}}}`,
			forge.Result{Events: []forge.Event{{Type: "dev.forgeway.pull_request.reopened", Subject: "pull_requests/9",
				Data: forge.PullRequestData{Number: 9, State: "open", Source: forge.RefAt{Ref: "x"}, Target: forge.RefAt{Ref: "main"}, Action: "reopened"}}}}},
		{"pull request labelled", "pull_request", pr("label_updated", "open", false, ""), forge.Result{Ignored: `Gitea pull_request action "label_updated" has no mapping`}},
		{"pull request review requested", "pull_request", pr("review_requested", "open", false, ""), forge.Result{Ignored: `Gitea pull_request action "review_requested" has no mapping`}},
		{"review approval", "pull_request_approved", pr("reviewed", "open", false, ""), forge.Result{Ignored: `Gitea event "pull_request_approved" has no mapping`}},
		{"issue comment", "issue_comment", `{"action": "created"}`, forge.Result{Ignored: `Gitea event "issue_comment" has no mapping`}},
		{"repository created", "repository", `{"action": "created", "repository": ` + repoJSON + `, "organization": {"login": "acme"}, "sender": ` + sender + `}`,
			forge.Result{
				Events: []forge.Event{{Type: "dev.forgeway.repository.created", Time: mustTime(t, "2026-11-19T08:00:00Z"), Repository: widgets, Sender: ann,
					Data: forge.RepositoryData{Changes: map[string]any{}}}},
				Effects: []forge.Effect{forge.RepositoryChanged{Repository: catalog}},
			}},
		{"repository deleted", "repository", `{"action": "deleted", "repository": ` + repoJSON + `, "sender": ` + sender + `}`,
			forge.Result{
				Events: []forge.Event{{Type: "dev.forgeway.repository.deleted", Repository: widgets, Sender: ann,
					Data: forge.RepositoryData{Changes: map[string]any{}}}},
				Effects: []forge.Effect{forge.RepositoryDeleted{HostID: "42"}},
			}},
		{"repository of an unknown action", "repository", `{"action": "archived", "repository": ` + repoJSON + `}`, forge.Result{Ignored: `Gitea repository action "archived" has no mapping`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := delivery(tt.event, "id", "s", []byte(tt.body), giteaHeaders, false)
			got, err := w.Normalize(context.Background(), d, noState{t})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// A replay (the same delivery processed again) gives the same result.
			again, err := w.Normalize(context.Background(), d, noState{t})
			if err != nil || !cmp.Equal(got, again) {
				t.Errorf("normalizing again gave %+v, %v", again, err)
			}
		})
	}
}

func TestNormalizeMalformed(t *testing.T) {
	w := New()
	tests := []struct{ name, event, body string }{
		{"not JSON", "push", `{"ref":`},
		{"not an object", "pull_request", `[]`},
		{"unknown event, not JSON", "issues", `nope`},
		{"push without ref", "push", `{"before": "1"}`},
		{"ref of the wrong type", "push", `{"ref": 5}`},
		{"repository id not a number", "push", `{"ref": "refs/heads/x", "repository": {"id": "42"}}`},
		{"pull request without its object", "pull_request", `{"action": "opened", "number": 1}`},
		{"pull request number of the wrong type", "pull_request", `{"action": "opened", "pull_request": {"number": "1"}}`},
		{"create without ref", "create", `{"ref_type": "branch"}`},
		{"repository without id", "repository", `{"action": "created", "repository": {"name": "x"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.Normalize(context.Background(), delivery(tt.event, "id", "s", []byte(tt.body), giteaHeaders, false), noState{t})
			if !errors.Is(err, forge.ErrMalformed) {
				t.Fatalf("error %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := w.Normalize(context.Background(), forge.Delivery{Header: http.Header{"X-Github-Event": {"push"}}, Body: []byte(`{"ref":"refs/heads/x"}`)}, noState{t}); !errors.Is(err, forge.ErrMalformed) {
		t.Errorf("a delivery with GitHub's headers only: %v, want ErrMalformed", err)
	}
}

func TestMaxBodyBytes(t *testing.T) {
	if got := New().MaxBodyBytes(); got != 25<<20 {
		t.Errorf("MaxBodyBytes = %d", got)
	}
}
