package giteawebhook

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// Normalize turns a verified Gitea delivery into events and effects as spec/events.md says:
// push gives dev.forgeway.push only (Gitea reports branch and tag creation and deletion in its
// own create and delete deliveries, which give ref.created and ref.deleted); pull_request
// opened, synchronized (updated), edited, closed (merged when the pull request is) and
// reopened; repository created and deleted, with their catalog effects. Gitea's test delivery
// (a push of a commit onto itself) gives dev.forgeway.ping. Events and actions without a
// mapping give a Result with Ignored set and no error. A body that is not a JSON object, or a
// mapped event missing what defines it (a push without ref, a pull_request without its
// object), gives an error wrapping forge.ErrMalformed. Gitea says everything needed, so state
// is not consulted.
func (w *Webhooks) Normalize(_ context.Context, d forge.Delivery, _ forge.State) (forge.Result, error) {
	event := eventOf(d.Header)
	if event == "" {
		return forge.Result{}, fmt.Errorf("normalize Gitea delivery: headers %s and %s are both missing: %w", HeaderEvent, HeaderForgejoEvent, forge.ErrMalformed)
	}
	doc, err := document(d.Header, d.Body)
	if err != nil {
		return forge.Result{}, fmt.Errorf("normalize Gitea %.60q delivery: %w", event, err)
	}
	env, err := readEnvelope(doc)
	if err != nil {
		return forge.Result{}, fmt.Errorf("normalize Gitea %.60q delivery: %w: %s", event, forge.ErrMalformed, err)
	}
	mapper, known := mappers[event]
	if !known {
		return forge.Result{Ignored: fmt.Sprintf("Gitea event %.60q has no mapping", event)}, nil
	}
	var p payload
	if err := w.payload.Unmarshal(doc, &p); err != nil {
		return forge.Result{}, fmt.Errorf("normalize Gitea %s delivery: %w: %s", event, forge.ErrMalformed, err)
	}
	if event == "push" && env.isTestPush() {
		return mapTestPush(&p), nil
	}
	res, err := mapper(&p)
	if err != nil {
		return forge.Result{}, fmt.Errorf("normalize Gitea %s delivery: %w", event, err)
	}
	return res, nil
}

// mapper turns one decoded event into its result.
type mapper func(p *payload) (forge.Result, error)

// mappers lists the Gitea events (X-Gitea-Event) with a mapping; it is never modified.
// Gitea's other events (issues, issue_comment, pull_request_approved, pull_request_rejected,
// pull_request_comment, release, fork, wiki, package, status, workflow_*) have none.
var mappers = map[string]mapper{
	"push":         mapPush,
	"create":       mapRef(forge.EventRefCreated),
	"delete":       mapRef(forge.EventRefDeleted),
	"pull_request": mapPullRequest,
	"repository":   mapRepository,
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", forge.ErrMalformed, fmt.Sprintf(format, args...))
}

func noMapping(event, action string) forge.Result {
	return forge.Result{Ignored: fmt.Sprintf("Gitea %s action %.60q has no mapping", event, action)}
}

func mapPush(p *payload) (forge.Result, error) {
	if p.Ref == "" {
		return forge.Result{}, malformed("push has no ref")
	}
	refType := refTypeOf(p.Ref)
	if refType == "" {
		return forge.Result{Ignored: fmt.Sprintf("Gitea push to %.100q, which is neither a branch nor a tag", p.Ref)}, nil
	}
	commits := make([]forge.Commit, 0, len(p.Commits))
	for _, c := range p.Commits {
		commits = append(commits, toCommit(c))
	}
	total := len(commits)
	if p.TotalCommits != nil && *p.TotalCommits >= total {
		// Gitea lists at most FEED_MAX_COMMIT_NUM commits and counts them all.
		total = *p.TotalCommits
	}
	before, after := shaOrZero(p.Before), shaOrZero(p.After)
	return forge.Result{Events: []forge.Event{{
		Type:       forge.EventPush,
		Subject:    p.Ref,
		Time:       pushTime(p),
		Repository: eventRepository(p.Repository),
		Sender:     actor(p.Sender),
		Data: forge.PushData{
			Ref:          p.Ref,
			RefType:      refType,
			Before:       before,
			After:        after,
			Created:      isZeroSHA(before),
			Deleted:      isZeroSHA(after),
			Commits:      commits,
			TotalCommits: total,
			Pusher:       actor(p.Pusher),
		},
	}}}, nil
}

// mapTestPush maps Gitea's "Test Delivery" (the hook settings' button and the API's
// POST /repos/{owner}/{repo}/hooks/{id}/tests): a push of the branch head onto itself, which
// moves nothing. It is the host's test delivery, so it gives dev.forgeway.ping rather than a
// push that did not happen. Gitea names no hook in it.
func mapTestPush(p *payload) forge.Result {
	return forge.Result{Events: []forge.Event{{
		Type:       forge.EventPing,
		Repository: eventRepository(p.Repository),
		Sender:     actor(p.Sender),
		Data:       forge.PingData{},
	}}}
}

func toCommit(c commit) forge.Commit {
	out := forge.Commit{ID: c.ID, Message: c.Message, Timestamp: c.Timestamp, URL: c.URL}
	if c.Author != nil {
		out.Author = forge.Person{Name: c.Author.Name, Email: c.Author.Email}
	}
	return out
}

// pushTime is when the pushed head was committed: head_commit's timestamp, else that of the
// listed commit whose id is the new head (payloads before Gitea 1.13 have no head_commit).
// Zero when neither says: the core then uses the receipt time.
func pushTime(p *payload) time.Time {
	stamp := ""
	if p.HeadCommit != nil {
		stamp = p.HeadCommit.Timestamp
	}
	for i := 0; stamp == "" && i < len(p.Commits); i++ {
		if p.Commits[i].ID == p.After {
			stamp = p.Commits[i].Timestamp
		}
	}
	if t, err := time.Parse(time.RFC3339, stamp); err == nil && t.Year() > 1 {
		return t.UTC()
	}
	return time.Time{}
}

// mapRef maps create and delete deliveries, whose ref is the short name beside its ref_type
// (a full name is accepted too, should Gitea switch to one).
func mapRef(eventType string) mapper {
	return func(p *payload) (forge.Result, error) {
		if p.Ref == "" {
			return forge.Result{}, malformed("ref event has no ref")
		}
		var prefix string
		switch p.RefType {
		case forge.RefTypeBranch:
			prefix = "refs/heads/"
		case forge.RefTypeTag:
			prefix = "refs/tags/"
		default:
			return forge.Result{Ignored: fmt.Sprintf("Gitea ref_type %.60q has no mapping", p.RefType)}, nil
		}
		ref := p.Ref
		if !strings.HasPrefix(ref, "refs/") {
			ref = prefix + ref
		}
		sha := ""
		if eventType == forge.EventRefCreated {
			sha = p.SHA // delete payloads name no sha
		}
		return forge.Result{Events: []forge.Event{{
			Type:       eventType,
			Subject:    ref,
			Repository: eventRepository(p.Repository),
			Sender:     actor(p.Sender),
			Data:       forge.RefData{Ref: ref, RefType: p.RefType, SHA: sha},
		}}}, nil
	}
}

// pullRequestTypes maps Gitea pull_request actions to event type suffixes; closed is decided
// by the merged flag. Gitea's assigned, unassigned, label_updated, label_cleared, milestoned,
// demilestoned, reviewed, review_requested and review_request_removed have no mapping.
var pullRequestTypes = map[string]string{
	"opened":       "opened",
	"synchronized": "updated",
	"edited":       "edited",
	"reopened":     "reopened",
}

func mapPullRequest(p *payload) (forge.Result, error) {
	suffix, ok := pullRequestTypes[p.Action]
	if p.Action == "closed" {
		ok, suffix = true, "closed"
		if p.PullRequest != nil && p.PullRequest.Merged {
			suffix = "merged"
		}
	}
	if !ok {
		return noMapping("pull_request", p.Action), nil
	}
	pr := p.PullRequest
	if pr == nil {
		return forge.Result{}, malformed("pull_request %s has no pull_request object", p.Action)
	}
	number := pr.Number
	if number == 0 {
		number = p.Number
	}
	state, mergeSHA := pr.State, ""
	if pr.Merged {
		state = forge.PullRequestStateMerged
		if pr.MergeCommitSHA != nil {
			mergeSHA = *pr.MergeCommitSHA
		}
	}
	source := forge.RefAt{Ref: pr.Head.Ref, SHA: pr.Head.SHA}
	if pr.Head.Repo != nil {
		source.RepositoryFullName = pr.Head.Repo.FullName
	}
	return forge.Result{Events: []forge.Event{{
		Type:       forge.EventPullRequestPrefix + suffix,
		Subject:    fmt.Sprintf("pull_requests/%d", number),
		Time:       pr.UpdatedAt.Time,
		Repository: eventRepository(p.Repository),
		Sender:     actor(p.Sender),
		Data: forge.PullRequestData{
			Number:   number,
			Title:    pr.Title,
			Body:     pr.Body,
			State:    state,
			Draft:    pr.Draft,
			URL:      pr.HTMLURL,
			Author:   actor(pr.User),
			Source:   source,
			Target:   forge.RefAt{Ref: pr.Base.Ref, SHA: pr.Base.SHA},
			MergeSHA: mergeSHA,
			Action:   p.Action,
		},
	}}}, nil
}

// mapRepository maps Gitea's repository event, whose actions are created and deleted. Gitea
// sends it to organization, user and system hooks (a repository's own hooks are born and
// die with it).
func mapRepository(p *payload) (forge.Result, error) {
	if p.Action != "created" && p.Action != "deleted" {
		return noMapping("repository", p.Action), nil
	}
	r := p.Repository
	if r == nil || r.ID == "" {
		return forge.Result{}, malformed("repository %s has no repository id", p.Action)
	}
	var effect forge.Effect = forge.RepositoryChanged{Repository: catalogRepository(r)}
	at := r.CreatedAt.Time
	if p.Action == "deleted" {
		effect = forge.RepositoryDeleted{HostID: string(r.ID)}
		at = time.Time{} // the payload holds no deletion time
	}
	return forge.Result{
		Events: []forge.Event{{
			Type:       forge.EventRepositoryPrefix + p.Action,
			Time:       at,
			Repository: eventRepository(r),
			Sender:     actor(p.Sender),
			Data:       forge.RepositoryData{Changes: map[string]any{}},
		}},
		Effects: []forge.Effect{effect},
	}, nil
}

// refTypeOf says whether a full ref is a branch or a tag ("" for neither).
func refTypeOf(ref string) string {
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		return forge.RefTypeBranch
	case strings.HasPrefix(ref, "refs/tags/"):
		return forge.RefTypeTag
	}
	return ""
}

func shaOrZero(sha string) string {
	if sha == "" {
		return forge.ZeroSHA
	}
	return sha
}

func actor(u *user) forge.Actor {
	if u == nil {
		return forge.Actor{}
	}
	return forge.Actor{Login: u.login(), Name: u.FullName, Email: u.Email}
}

func eventRepository(r *repository) *forge.EventRepository {
	if r == nil {
		return nil
	}
	return &forge.EventRepository{
		ID:            string(r.ID),
		FullName:      r.FullName,
		Name:          r.Name,
		Owner:         r.Owner.login(),
		DefaultBranch: r.DefaultBranch,
		WebURL:        r.HTMLURL,
		CloneURL:      r.CloneURL,
		Private:       r.Private,
	}
}

// catalogRepository is the repository as the catalog keeps it; on Gitea the owner (user or
// organization) groups repositories.
func catalogRepository(r *repository) forge.Repository {
	owner := r.Owner.login()
	vis := "public"
	switch {
	case r.Private:
		vis = "private"
	case r.Internal:
		vis = "internal"
	}
	return forge.Repository{
		HostID:        string(r.ID),
		FullName:      r.FullName,
		Name:          r.Name,
		Owner:         owner,
		Group:         owner,
		DefaultBranch: r.DefaultBranch,
		Visibility:    vis,
		Private:       r.Private,
		Archived:      r.Archived,
		Fork:          r.Fork,
		CloneURL:      r.CloneURL,
		WebURL:        r.HTMLURL,
		Description:   r.Description,
	}
}
