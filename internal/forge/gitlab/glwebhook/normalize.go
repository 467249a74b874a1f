package glwebhook

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// Normalize turns a verified GitLab delivery into events and effects as spec/events.md says.
// The payload's object_kind (or, for system and group events, its event_name) decides the
// mapping, so a "System Hook" push maps like a "Push Hook":
//   - push and tag_push: one dev.forgeway.push, then dev.forgeway.ref.created when before is
//     zero or dev.forgeway.ref.deleted when after is zero (GitLab reports ref lifecycle inside
//     the push); total_commits is total_commits_count;
//   - merge_request: open → opened, update with oldrev → updated, update without → edited,
//     close → closed, merge → merged, reopen → reopened; other actions (approvals) are ignored;
//   - project_create, project_destroy, project_rename, project_transfer, project_update
//     (system hooks, and group hooks' "Project Hook"): dev.forgeway.repository.created,
//     deleted, renamed, transferred, edited, with the catalog effect.
//
// Everything else gives a Result with Ignored set and no error; so does repository_update,
// which accompanies the system hook's push events and would repeat them. A body that is not
// JSON, or a mapped event missing what defines it (a push without ref, a merge request
// without object_attributes, a project event without project_id), gives an error wrapping
// forge.ErrMalformed. GitLab says everything needed, so state is not consulted.
func (w *Webhooks) Normalize(_ context.Context, d forge.Delivery, _ forge.State) (forge.Result, error) {
	event := strings.TrimSpace(d.Header.Get(HeaderEvent))
	if event == "" {
		return forge.Result{}, fmt.Errorf("normalize GitLab delivery: header %s is missing: %w", HeaderEvent, forge.ErrMalformed)
	}
	env, err := readEnvelope(d.Body)
	if err != nil {
		return forge.Result{}, fmt.Errorf("normalize GitLab %.60q delivery: %w: %s", event, forge.ErrMalformed, err)
	}
	kind := env.kind()
	var res forge.Result
	switch kind {
	case "push", "tag_push":
		res, err = w.mapPush(d.Body)
	case "merge_request":
		res, err = w.mapMergeRequest(d.Body)
	case "project_create", "project_destroy", "project_rename", "project_transfer", "project_update":
		res, err = w.mapProjectEvent(kind, d.Body)
	case "repository_update":
		return forge.Result{Ignored: "GitLab repository_update repeats the push and tag_push events sent with it, which give the push events"}, nil
	case "":
		return forge.Result{}, fmt.Errorf("normalize GitLab %.60q delivery: %w: the payload has neither object_kind nor event_name", event, forge.ErrMalformed)
	default:
		return forge.Result{Ignored: fmt.Sprintf("GitLab %.60s event %.60q has no mapping", event, kind)}, nil
	}
	if err != nil {
		return forge.Result{}, fmt.Errorf("normalize GitLab %.60q delivery (%s): %w", event, kind, err)
	}
	return res, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", forge.ErrMalformed, fmt.Sprintf(format, args...))
}

// decode decodes a payload into v, a pointer to one of the payload types New gave a shape.
func (w *Webhooks) decode(body []byte, v any) error {
	if err := w.payloads.Unmarshal(body, v); err != nil {
		return malformed("%s", err)
	}
	return nil
}

func refTypeOf(ref string) string {
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		return forge.RefTypeBranch
	case strings.HasPrefix(ref, "refs/tags/"):
		return forge.RefTypeTag
	}
	return ""
}

func shaOrZero(s string) string {
	if s == "" {
		return forge.ZeroSHA
	}
	return s
}

// mapPush maps push and tag push events. GitLab gives no time for the push itself (commit
// timestamps are when they were written), so the event's time is when it was received.
func (w *Webhooks) mapPush(body []byte) (forge.Result, error) {
	var p pushPayload
	if err := w.decode(body, &p); err != nil {
		return forge.Result{}, err
	}
	if p.Ref == "" {
		return forge.Result{}, malformed("push has no ref")
	}
	refType := refTypeOf(p.Ref)
	if refType == "" {
		return forge.Result{Ignored: fmt.Sprintf("GitLab push to %.100q, which is neither a branch nor a tag", p.Ref)}, nil
	}
	before, after := shaOrZero(p.Before), shaOrZero(p.After)
	created := before == forge.ZeroSHA && after != forge.ZeroSHA
	deleted := after == forge.ZeroSHA && before != forge.ZeroSHA
	commits := make([]forge.Commit, 0, len(p.Commits))
	for _, c := range p.Commits {
		commits = append(commits, forge.Commit{
			ID:        c.ID,
			Message:   c.Message,
			Timestamp: c.Timestamp,
			Author:    forge.Person{Name: c.Author.Name, Email: c.Author.Email},
			URL:       c.URL,
		})
	}
	total := len(commits)
	if p.TotalCommitsCount != nil {
		total = *p.TotalCommitsCount // GitLab lists at most 20 commits but counts them all
	}
	pusher := forge.Actor{Login: p.UserUsername, Name: p.UserName, Email: p.UserEmail}
	repo := eventRepository(p.Project, p.ProjectID)
	events := []forge.Event{{
		Type:       forge.EventPush,
		Subject:    p.Ref,
		Repository: repo,
		Sender:     pusher,
		Data: forge.PushData{
			Ref:          p.Ref,
			RefType:      refType,
			Before:       before,
			After:        after,
			Created:      created,
			Deleted:      deleted,
			Commits:      commits,
			TotalCommits: total,
			Pusher:       pusher,
		},
	}}
	switch {
	case created:
		events = append(events, forge.Event{Type: forge.EventRefCreated, Subject: p.Ref, Repository: repo, Sender: pusher,
			Data: forge.RefData{Ref: p.Ref, RefType: refType, SHA: after}})
	case deleted:
		events = append(events, forge.Event{Type: forge.EventRefDeleted, Subject: p.Ref, Repository: repo, Sender: pusher,
			Data: forge.RefData{Ref: p.Ref, RefType: refType}})
	}
	return forge.Result{Events: events}, nil
}

// mergeRequestTypes maps GitLab merge request actions to event type suffixes; update is
// decided by oldrev.
var mergeRequestTypes = map[string]string{
	"open":   "opened",
	"close":  "closed",
	"merge":  "merged",
	"reopen": "reopened",
}

func (w *Webhooks) mapMergeRequest(body []byte) (forge.Result, error) {
	var p mergeRequestPayload
	if err := w.decode(body, &p); err != nil {
		return forge.Result{}, err
	}
	a := p.ObjectAttributes
	if a == nil {
		return forge.Result{}, malformed("merge request event has no object_attributes")
	}
	suffix, ok := mergeRequestTypes[a.Action]
	if a.Action == "update" {
		// oldrev is the previous head of the source branch: present only when commits were
		// pushed to it.
		ok, suffix = true, "edited"
		if a.Oldrev != "" {
			suffix = "updated"
		}
	}
	if !ok {
		return forge.Result{Ignored: fmt.Sprintf("GitLab merge request action %.60q has no mapping", a.Action)}, nil
	}
	if a.IID == 0 {
		return forge.Result{}, malformed("merge request %s has no iid", a.Action)
	}
	state := forge.PullRequestStateOpen
	switch {
	case a.State == "merged" || (a.State == "" && a.Action == "merge"):
		state = forge.PullRequestStateMerged
	case a.State == "closed" || (a.State == "" && a.Action == "close"):
		state = forge.PullRequestStateClosed
	}
	draft := a.WorkInProgress
	if a.Draft != nil {
		draft = *a.Draft
	}
	// GitLab names the author only by id; the acting user is the author when the ids match.
	var author forge.Actor
	if p.User != nil && p.User.ID != 0 && p.User.ID == a.AuthorID {
		author = p.User.actor()
	}
	source := forge.RefAt{Ref: a.SourceBranch}
	if a.LastCommit != nil {
		source.SHA = a.LastCommit.ID
	}
	if a.Source != nil {
		source.RepositoryFullName = a.Source.PathWithNamespace
	}
	mergeSHA := ""
	if state == forge.PullRequestStateMerged {
		mergeSHA = a.MergeCommitSHA
	}
	return forge.Result{Events: []forge.Event{{
		Type:       forge.EventPullRequestPrefix + suffix,
		Subject:    "pull_requests/" + strconv.FormatInt(a.IID, 10),
		Time:       a.UpdatedAt.Time,
		Repository: eventRepository(p.Project, 0),
		Sender:     p.User.actor(),
		Data: forge.PullRequestData{
			Number: a.IID,
			Title:  a.Title,
			Body:   a.Description,
			State:  state,
			Draft:  draft,
			URL:    a.URL,
			Author: author,
			Source: source,
			// GitLab's merge request events do not carry the target branch's head.
			Target:   forge.RefAt{Ref: a.TargetBranch},
			MergeSHA: mergeSHA,
			Action:   a.Action,
		},
	}}}, nil
}

// projectEventTypes maps GitLab project lifecycle events to event type suffixes.
var projectEventTypes = map[string]string{
	"project_create":   "created",
	"project_destroy":  "deleted",
	"project_rename":   "renamed",
	"project_transfer": "transferred",
	"project_update":   "edited",
}

// mapProjectEvent maps system (and group) project events. They name neither who acted nor
// the project's URLs and default branch, so the sender is empty and the catalog entry
// carries only what is said; the next discovery completes it. The time is created_at for a
// creation and updated_at for a change; a deletion has no time of its own.
func (w *Webhooks) mapProjectEvent(kind string, body []byte) (forge.Result, error) {
	var p projectEventPayload
	if err := w.decode(body, &p); err != nil {
		return forge.Result{}, err
	}
	if p.ProjectID == 0 {
		return forge.Result{}, malformed("%s has no project_id", kind)
	}
	id := strconv.FormatInt(p.ProjectID, 10)
	ns, name := splitPath(p.PathWithNamespace)
	if p.Path != "" {
		name = p.Path
	}
	private := p.ProjectVisibility != "" && p.ProjectVisibility != "public"
	changes := map[string]any{}
	if kind == "project_rename" || kind == "project_transfer" {
		changes["old_full_name"] = p.OldPathWithNamespace
	}
	var effect forge.Effect = forge.RepositoryChanged{Repository: forge.Repository{
		HostID:     id,
		FullName:   p.PathWithNamespace,
		Name:       name,
		Owner:      ns,
		Group:      ns,
		Visibility: p.ProjectVisibility,
		Private:    private,
	}}
	at := p.UpdatedAt.Time
	switch kind {
	case "project_destroy":
		effect = forge.RepositoryDeleted{HostID: id}
		at = time.Time{}
	case "project_create":
		at = p.CreatedAt.Time
	}
	return forge.Result{
		Events: []forge.Event{{
			Type: forge.EventRepositoryPrefix + projectEventTypes[kind],
			Time: at,
			Repository: &forge.EventRepository{
				ID:       id,
				FullName: p.PathWithNamespace,
				Name:     name,
				Owner:    ns,
				Private:  private,
			},
			Data: forge.RepositoryData{Changes: changes},
		}},
		Effects: []forge.Effect{effect},
	}, nil
}
