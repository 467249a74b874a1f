package bbwebhook

import (
	"context"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest/corpus"
)

// corpusCase is what one corpus payload must give. The values below were written by reading
// each payload in ../shared/corpus/bitbucket-dc, not by running the code.
type corpusCase struct {
	event string // X-Event-Key Bitbucket sends with it
	want  forge.Result
}

func corpusCases(t *testing.T) map[string]corpusCase {
	jane := forge.Actor{Login: "jcitizen", Name: "Jane Citizen", Email: "jane@example.com"}

	// PRJ/my-repo (id 1) as the 2018 captures describe it: no links, so no URLs.
	bare := &forge.EventRepository{ID: "1", FullName: "PRJ/my-repo", Name: "my-repo", Owner: "PRJ", Private: true}
	// The same repository in the 2021 captures, which carry links.
	linked := &forge.EventRepository{
		ID: "1", FullName: "PRJ/my-repo", Name: "my-repo", Owner: "PRJ", Private: true,
		WebURL:   "http://example.com:7990/projects/PRJ/repos/my-repo/browse",
		CloneURL: "http://example.com:7990/scm/prj/my-repo.git",
	}

	push := func(at, ref, refType, before, after string, created, deleted bool) forge.Event {
		return forge.Event{
			Type: forge.EventPush, Subject: ref, Time: mustTime(t, at), Repository: bare, Sender: jane,
			Data: forge.PushData{
				Ref: ref, RefType: refType, Before: before, After: after, Created: created, Deleted: deleted,
				Commits: []forge.Commit{}, TotalCommits: 0, Pusher: jane,
			},
		}
	}
	refEvent := func(typ, at, ref, refType, sha string) forge.Event {
		return forge.Event{Type: typ, Subject: ref, Time: mustTime(t, at), Repository: bare, Sender: jane,
			Data: forge.RefData{Ref: ref, RefType: refType, SHA: sha}}
	}
	pr := func(typ, at string, repo *forge.EventRepository, data forge.PullRequestData) forge.Result {
		data.Author = jane
		return forge.Result{Events: []forge.Event{{
			Type: forge.EventPullRequestPrefix + typ, Subject: "pull_requests/" + strconv.FormatInt(data.Number, 10), Time: mustTime(t, at),
			Repository: repo, Sender: jane, Data: data,
		}}}
	}
	const zero = forge.ZeroSHA

	return map[string]corpusCase{
		"go-scm/repo.refs_changed.json": {event: "repo:refs_changed", want: forge.Result{Events: []forge.Event{
			push("2018-07-05T18:22:00Z", "refs/heads/master", "branch", "5c64a07cd6c0f21b753bf261ef059c7e7633c50a", "823b2230a56056231c9425d63758fa87078a66b4", false, false),
		}}},
		"go-scm/repo.refs_changed.branch_create.json": {event: "repo:refs_changed", want: forge.Result{Events: []forge.Event{
			push("2018-07-05T18:24:15Z", "refs/heads/develop", "branch", zero, "208b0a5c05eddadad01f2aed8802fe0c3b3eaf5e", true, false),
			refEvent(forge.EventRefCreated, "2018-07-05T18:24:15Z", "refs/heads/develop", "branch", "208b0a5c05eddadad01f2aed8802fe0c3b3eaf5e"),
		}}},
		"go-scm/repo.refs_changed.branch_delete.json": {event: "repo:refs_changed", want: forge.Result{Events: []forge.Event{
			push("2018-07-05T18:25:37Z", "refs/heads/develop", "branch", "208b0a5c05eddadad01f2aed8802fe0c3b3eaf5e", zero, false, true),
			refEvent(forge.EventRefDeleted, "2018-07-05T18:25:37Z", "refs/heads/develop", "branch", ""),
		}}},
		"go-scm/repo.refs_changed.tag_create.json": {event: "repo:refs_changed", want: forge.Result{Events: []forge.Event{
			push("2018-07-05T18:26:11Z", "refs/tags/v1.1.0", "tag", zero, "823b2230a56056231c9425d63758fa87078a66b4", true, false),
			refEvent(forge.EventRefCreated, "2018-07-05T18:26:11Z", "refs/tags/v1.1.0", "tag", "823b2230a56056231c9425d63758fa87078a66b4"),
		}}},

		"go-scm/pr.opened.json": {event: "pr:opened", want: pr("opened", "2018-07-05T19:21:30Z", bare, forge.PullRequestData{
			Number: 2, Title: "added LICENSE", Body: "added BSD license text", State: "open",
			Source: forge.RefAt{Ref: "develop", SHA: "208b0a5c05eddadad01f2aed8802fe0c3b3eaf5e", RepositoryFullName: "PRJ/my-repo"},
			Target: forge.RefAt{Ref: "master", SHA: "823b2230a56056231c9425d63758fa87078a66b4"},
			Action: "pr:opened",
		})},
		"go-scm/pr.from_ref_updated.json": {event: "pr:from_ref_updated", want: pr("updated", "2021-11-23T10:02:52Z", linked, forge.PullRequestData{
			Number: 2, Title: "added LICENSE", Body: "added BSD license text", State: "open",
			URL:    "http://example.com:7990/projects/PRJ/repos/my-repo/pull-requests/2",
			Source: forge.RefAt{Ref: "feature-2", SHA: "c00d0f269a9844dd168f72f6a9d78a9cff49a318", RepositoryFullName: "PRJ/my-repo"},
			Target: forge.RefAt{Ref: "master", SHA: "823b2230a56056231c9425d63758fa87078a66b4"},
			Action: "pr:from_ref_updated",
		})},
		// The source is jcitizen's fork in the personal project ~jcitizen; the clone links
		// list ssh first, and the HTTP one is taken.
		"go-scm/pr.modified.meta.json": {event: "pr:modified", want: pr("edited", "2021-11-24T14:43:48Z", linked, forge.PullRequestData{
			Number: 6, Title: "Clean README.md", Body: "Removed old information out of `REAME.nd`.", State: "open",
			URL:    "http://example.com:7990/projects/PRJ/repos/my-repo/pull-requests/6",
			Source: forge.RefAt{Ref: "cleanup", SHA: "a268fca7b65055e13f60ac1a2c9a527615f113ca", RepositoryFullName: "~jcitizen/my-repo"},
			Target: forge.RefAt{Ref: "master", SHA: "a4dae7792cf772d72149730091141ef48bba8697"},
			Action: "pr:modified",
		})},
		"go-scm/pr.modified.toref.json": {event: "pr:modified", want: pr("edited", "2021-11-23T13:16:20Z", linked, forge.PullRequestData{
			Number: 2, Title: "added LICENSE", Body: "added BSD license text", State: "open",
			URL:    "http://example.com:7990/projects/PRJ/repos/my-repo/pull-requests/2",
			Source: forge.RefAt{Ref: "feature-2", SHA: "c00d0f269a9844dd168f72f6a9d78a9cff49a318", RepositoryFullName: "PRJ/my-repo"},
			Target: forge.RefAt{Ref: "master", SHA: "0667def9e377a8fa76ce67b6d4e53e21b246f030"},
			Action: "pr:modified",
		})},
		"go-scm/pr.merged.json": {event: "pr:merged", want: pr("merged", "2018-07-05T19:33:20Z", bare, forge.PullRequestData{
			Number: 3, Title: "Develop", Body: "* added LICENSE\r\n* add COPYING file", State: "merged",
			Source:   forge.RefAt{Ref: "develop", SHA: "b9eaed50a03c073b20dfa82e5e753d295e7f0e56", RepositoryFullName: "PRJ/my-repo"},
			Target:   forge.RefAt{Ref: "master", SHA: "823b2230a56056231c9425d63758fa87078a66b4"},
			MergeSHA: "83f836ca538dc4f43d29fda46a5b85ea49f1b8e7",
			Action:   "pr:merged",
		})},
		// Deleted while declined: closed.
		"go-scm/pr.deleted.json": {event: "pr:deleted", want: pr("closed", "2018-07-05T19:31:33Z", bare, forge.PullRequestData{
			Number: 2, Title: "added LICENSE", Body: "added BSD license text", State: "closed",
			Source: forge.RefAt{Ref: "develop", SHA: "b9eaed50a03c073b20dfa82e5e753d295e7f0e56", RepositoryFullName: "PRJ/my-repo"},
			Target: forge.RefAt{Ref: "master", SHA: "823b2230a56056231c9425d63758fa87078a66b4"},
			Action: "pr:deleted",
		})},
	}
}

// TestCorpus signs every Bitbucket DC payload of the shared corpus with X-Hub-Signature, then
// identifies, verifies and normalizes it and compares with what the payload says.
func TestCorpus(t *testing.T) {
	files := corpus.Files(t, "bitbucket-dc")
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
		t.Run(name, func(t *testing.T) {
			const id = "2f8c6b1e-5d3a-4a7e-9c1b-0e9f7d6c5b4a"
			d := delivery(tc.event, id, secret, files[name])
			info, err := w.Identify(d)
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			if diff := cmp.Diff(forge.DeliveryInfo{ID: id, Event: tc.event}, info); diff != "" {
				t.Errorf("Identify (-want +got):\n%s", diff)
			}
			if err := w.Verify(d, forge.VerifyKeys{Secrets: []string{"previous", secret}}); err != nil {
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

// TestCorpusKnownAnswer checks the known-answer vector of HEADERS.md: drone/go-scm's
// signature over the exact bytes of go-scm/repo.refs_changed.json.
func TestCorpusKnownAnswer(t *testing.T) {
	body := corpus.Files(t, "bitbucket-dc")["go-scm/repo.refs_changed.json"]
	if len(body) != 928 {
		t.Fatalf("go-scm/repo.refs_changed.json is %d bytes, HEADERS.md says 928 (line endings changed?)", len(body))
	}
	const (
		secret = "71295b197fa25f4356d2fb9965df3f2379d903d7"
		sig    = "sha256=c90565fa018f3039414a7929c9187a147f1ac463076961c4cf411e3c67c541f8"
	)
	if got := Sign(secret, body); got != sig {
		t.Errorf("Sign = %s, want %s", got, sig)
	}
	d := delivery("repo:refs_changed", "kat", "", body)
	d.Header.Set(HeaderSignature, sig)
	if err := New().Verify(d, forge.VerifyKeys{Secrets: []string{secret}}); err != nil {
		t.Errorf("Verify of the known answer: %v", err)
	}
	if err := New().Verify(d, forge.VerifyKeys{Secrets: []string{secret + "x"}}); err == nil {
		t.Error("Verify with another secret passed")
	}
}
