package bbwebhook

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// Normalize turns a verified Bitbucket Data Center delivery into events as spec/events.md
// says: repo:refs_changed gives one dev.forgeway.push per ref change (branches and tags), each
// ADD followed by its dev.forgeway.ref.created and each DELETE by its dev.forgeway.ref.deleted;
// pr:opened, pr:from_ref_updated, pr:modified, pr:merged, pr:declined and pr:deleted give the
// pull request events (opened, updated, edited, merged, closed, closed); diagnostics:ping
// gives dev.forgeway.ping. Other events, and ref changes outside refs/heads and refs/tags,
// give a Result with Ignored set. A body that is not JSON, or a mapped event missing what
// defines it (a push without repository, a pull request event without its pull request),
// gives an error wrapping forge.ErrMalformed. None of these events changes the catalog, and
// Bitbucket says everything needed, so state is not consulted.
func (w *Webhooks) Normalize(_ context.Context, d forge.Delivery, _ forge.State) (forge.Result, error) {
	info, err := w.Identify(d)
	if err != nil {
		return forge.Result{}, fmt.Errorf("normalize Bitbucket delivery: %w", err)
	}
	event := info.Event
	mapper, known := mappers[event]
	if !known {
		return forge.Result{Ignored: fmt.Sprintf("Bitbucket event %.60q has no mapping", event)}, nil
	}
	var p payload
	if err := w.payload.Unmarshal(d.Body, &p); err != nil {
		return forge.Result{}, fmt.Errorf("normalize Bitbucket %s delivery: %w: %s", event, forge.ErrMalformed, err)
	}
	res, err := mapper(event, &p, d.ReceivedAt)
	if err != nil {
		return forge.Result{}, fmt.Errorf("normalize Bitbucket %s delivery: %w", event, err)
	}
	return res, nil
}

// mapper turns one decoded event into its result.
type mapper func(event string, p *payload, received time.Time) (forge.Result, error)

// pullRequestTypes maps Bitbucket's pull request event keys to event type suffixes.
var pullRequestTypes = map[string]string{
	"pr:opened":           "opened",
	"pr:from_ref_updated": "updated",
	"pr:modified":         "edited",
	"pr:merged":           "merged",
	"pr:declined":         "closed",
	"pr:deleted":          "closed",
}

// mappers lists the Bitbucket events with a mapping; it is never modified.
var mappers = map[string]mapper{
	"repo:refs_changed":   mapRefsChanged,
	"pr:opened":           mapPullRequest,
	"pr:from_ref_updated": mapPullRequest,
	"pr:modified":         mapPullRequest,
	"pr:merged":           mapPullRequest,
	"pr:declined":         mapPullRequest,
	"pr:deleted":          mapPullRequest,
	EventPing:             mapPing,
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", forge.ErrMalformed, fmt.Sprintf(format, args...))
}

func mapRefsChanged(_ string, p *payload, _ time.Time) (forge.Result, error) {
	repo := eventRepository(p.Repository)
	if repo == nil {
		return forge.Result{}, malformed("repo:refs_changed names no repository (id, project key and slug)")
	}
	if len(p.Changes) == 0 {
		return forge.Result{Ignored: "Bitbucket repo:refs_changed lists no ref change"}, nil
	}
	sender := actor(p.Actor)
	var events []forge.Event
	var skipped []string
	for i, c := range p.Changes {
		ref := c.RefID
		if c.Ref != nil && c.Ref.ID != "" {
			ref = c.Ref.ID
		}
		if ref == "" {
			return forge.Result{}, malformed("repo:refs_changed change %d names no ref", i)
		}
		refType := refTypeOf(ref)
		if refType == "" {
			skipped = append(skipped, ref)
			continue
		}
		before, after := shaOrZero(c.FromHash), shaOrZero(c.ToHash)
		created := strings.EqualFold(c.Type, "ADD") || (c.Type == "" && before == forge.ZeroSHA)
		deleted := strings.EqualFold(c.Type, "DELETE") || (c.Type == "" && after == forge.ZeroSHA)
		events = append(events, forge.Event{
			Type:       forge.EventPush,
			Subject:    ref,
			Time:       p.Date.Time,
			Repository: repo,
			Sender:     sender,
			Data: forge.PushData{
				Ref:     ref,
				RefType: refType,
				Before:  before,
				After:   after,
				Created: created,
				Deleted: deleted,
				// Bitbucket's ref changes list no commits and do not say whether a push was
				// forced; the mirror sync that follows a push indexes the commits.
				Commits:      []forge.Commit{},
				TotalCommits: 0,
				Pusher:       sender,
			},
		})
		switch {
		case created:
			events = append(events, forge.Event{
				Type: forge.EventRefCreated, Subject: ref, Time: p.Date.Time, Repository: repo, Sender: sender,
				Data: forge.RefData{Ref: ref, RefType: refType, SHA: strings.TrimPrefix(after, forge.ZeroSHA)},
			})
		case deleted:
			events = append(events, forge.Event{
				Type: forge.EventRefDeleted, Subject: ref, Time: p.Date.Time, Repository: repo, Sender: sender,
				Data: forge.RefData{Ref: ref, RefType: refType},
			})
		}
	}
	if len(events) == 0 {
		return forge.Result{Ignored: fmt.Sprintf("Bitbucket repo:refs_changed changes only refs that are neither branches nor tags (%.200s)", strings.Join(skipped, ", "))}, nil
	}
	return forge.Result{Events: events}, nil
}

func mapPullRequest(event string, p *payload, _ time.Time) (forge.Result, error) {
	pr := p.PullRequest
	if pr == nil {
		return forge.Result{}, malformed("%s has no pullRequest object", event)
	}
	if pr.ID <= 0 {
		return forge.Result{}, malformed("%s pull request has no id", event)
	}
	repo := eventRepository(pr.ToRef.Repository)
	if repo == nil {
		return forge.Result{}, malformed("%s pull request's toRef names no repository", event)
	}
	state := pullRequestState(pr.State)
	if event == "pr:deleted" && state != forge.PullRequestStateMerged {
		state = forge.PullRequestStateClosed // the pull request is gone, whatever it was
	}
	mergeSHA := ""
	if state == forge.PullRequestStateMerged && pr.Properties.MergeCommit != nil {
		mergeSHA = pr.Properties.MergeCommit.ID
	}
	at := p.Date.Time
	if at.IsZero() {
		at = pr.UpdatedDate.Time
	}
	var author forge.Actor
	if pr.Author != nil {
		author = actor(pr.Author.User)
	}
	source := forge.RefAt{Ref: branchName(pr.FromRef), SHA: pr.FromRef.LatestCommit}
	if pr.FromRef.Repository != nil {
		source.RepositoryFullName = pr.FromRef.Repository.fullName()
	}
	return forge.Result{Events: []forge.Event{{
		Type:       forge.EventPullRequestPrefix + pullRequestTypes[event],
		Subject:    fmt.Sprintf("pull_requests/%d", pr.ID),
		Time:       at,
		Repository: repo,
		Sender:     actor(p.Actor),
		Data: forge.PullRequestData{
			Number:   pr.ID,
			Title:    pr.Title,
			Body:     pr.Description,
			State:    state,
			Draft:    pr.Draft,
			URL:      firstHref(pr.Links.Self),
			Author:   author,
			Source:   source,
			Target:   forge.RefAt{Ref: branchName(pr.ToRef), SHA: pr.ToRef.LatestCommit},
			MergeSHA: mergeSHA,
			Action:   event,
		},
	}}}, nil
}

func mapPing(_ string, p *payload, _ time.Time) (forge.Result, error) {
	// The test button's body is {"test": true}: no repository, no actor, no hook id.
	return forge.Result{Events: []forge.Event{{
		Type:       forge.EventPing,
		Time:       p.Date.Time,
		Repository: eventRepository(p.Repository),
		Sender:     actor(p.Actor),
		Data:       forge.PingData{},
	}}}, nil
}

func pullRequestState(s string) string {
	switch strings.ToUpper(s) {
	case "MERGED":
		return forge.PullRequestStateMerged
	case "DECLINED":
		return forge.PullRequestStateClosed
	}
	return forge.PullRequestStateOpen
}

// branchName is a pull request ref as a branch name: Bitbucket sends full refs.
func branchName(r prRef) string {
	if name, ok := strings.CutPrefix(r.ID, "refs/heads/"); ok {
		return name
	}
	if r.ID == "" {
		return r.DisplayID
	}
	return r.ID
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
	return forge.Actor{Login: u.Name, Name: u.DisplayName, Email: u.EmailAddress}
}

// eventRepository maps a payload repository; nil when it lacks the id, project key or slug
// that identify it. Bitbucket's payloads do not carry the default branch, and older ones no
// links: those fields stay empty.
func eventRepository(r *repository) *forge.EventRepository {
	full := r.fullName()
	if full == "" || r.ID == "" {
		return nil
	}
	return &forge.EventRepository{
		ID:       string(r.ID),
		FullName: full,
		Name:     r.Slug,
		Owner:    r.Project.Key,
		WebURL:   firstHref(r.Links.Self),
		CloneURL: r.cloneURL(),
		Private:  !r.Public,
	}
}
