package adowebhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// Event types Forgeway subscribes to, and the merge attempt it knows to ignore.
const (
	EventPush               = "git.push"
	EventPullRequestCreated = "git.pullrequest.created"
	EventPullRequestUpdated = "git.pullrequest.updated"
	EventPullRequestMerged  = "git.pullrequest.merged"
)

// Normalize turns a verified delivery into events as spec/events.md says for Azure DevOps:
//
//   - a sample notification (the "Test" button; see Identify) gives dev.forgeway.ping with the
//     subscription id as hook_id: its data describe Microsoft's sample repository, not one of
//     the organization's, so no push or pull request event is made of it;
//   - git.push gives one dev.forgeway.push per branch or tag in refUpdates, each followed by
//     dev.forgeway.ref.created (zero oldObjectId) or .deleted (zero newObjectId);
//   - git.pullrequest.created gives pull_request.opened;
//   - git.pullrequest.updated gives pull_request.merged for status completed, .closed for
//     abandoned, and otherwise .updated when the source head (lastMergeSourceCommit) differs
//     from the last one seen for the pull request (state), .edited when it is the same. When no
//     head was seen before, or the payload has none, it is .updated: Forgeway's own
//     subscription delivers source-branch pushes only;
//   - git.pullrequest.merged (a merge attempt, not a completion) and every other event give a
//     Result with Ignored set.
//
// A body that is not JSON, or a mapped event missing what defines it (refUpdates, a
// repository, a pull request id), gives an error wrapping forge.ErrMalformed; an event sent
// without its resource (the subscription's "Resource details to send" is not "All") is
// ignored with that reason. Errors of state are returned as they are, for a retry.
func (w *Webhooks) Normalize(ctx context.Context, d forge.Delivery, state forge.State) (forge.Result, error) {
	body := bytes.TrimPrefix(d.Body, []byte("\xef\xbb\xbf"))
	env, err := readEnvelope(body)
	if err != nil {
		return forge.Result{}, fmt.Errorf("normalize Azure DevOps delivery: %w: %s", forge.ErrMalformed, err)
	}
	if env.EventType == "" {
		return forge.Result{}, fmt.Errorf("normalize Azure DevOps delivery: the body has no eventType: %w", forge.ErrMalformed)
	}
	var n notification
	if err := w.payloads.Unmarshal(body, &n); err != nil {
		return forge.Result{}, fmt.Errorf("normalize Azure DevOps %.60q delivery: %w: %s", env.EventType, forge.ErrMalformed, err)
	}
	if env.test() {
		return forge.Result{Events: []forge.Event{ping(env, n)}}, nil
	}
	switch n.EventType {
	case EventPush, EventPullRequestCreated, EventPullRequestUpdated:
	case EventPullRequestMerged:
		return forge.Result{Ignored: fmt.Sprintf("Azure DevOps %s reports a merge attempt (merge status %q), not a completed pull request; completion arrives as %s with status completed",
			EventPullRequestMerged, env.mergeStatus(body), EventPullRequestUpdated)}, nil
	default:
		return forge.Result{Ignored: fmt.Sprintf("Azure DevOps event %.80q has no mapping", n.EventType)}, nil
	}
	if len(bytes.TrimSpace(n.Resource)) == 0 || bytes.Equal(bytes.TrimSpace(n.Resource), []byte("null")) {
		return forge.Result{Ignored: fmt.Sprintf("Azure DevOps %s delivery carries no resource: set the subscription's \"Resource details to send\" to All", n.EventType)}, nil
	}
	var res forge.Result
	if n.EventType == EventPush {
		res, err = w.mapPush(n)
	} else {
		res, err = w.mapPullRequest(ctx, n, state)
	}
	if err != nil {
		return forge.Result{}, fmt.Errorf("normalize Azure DevOps %s delivery: %w", n.EventType, err)
	}
	return res, nil
}

// mergeStatus is the resource's mergeStatus, for the reason a merge attempt is ignored.
func (envelope) mergeStatus(body []byte) string {
	var v struct {
		Resource *struct {
			MergeStatus json.RawMessage `json:"mergeStatus"`
		} `json:"resource"`
	}
	if json.Unmarshal(body, &v) != nil || v.Resource == nil {
		return ""
	}
	return rawString(v.Resource.MergeStatus)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", forge.ErrMalformed, fmt.Sprintf(format, args...))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// ping is the event of a sample notification.
func ping(env envelope, n notification) forge.Event {
	hook := env.SubscriptionID
	if hook == zeroGUID {
		hook = ""
	}
	return forge.Event{Type: forge.EventPing, Time: n.CreatedDate.Time, Data: forge.PingData{HookID: hook}}
}

// refType is "branch" or "tag" for refs/heads/… and refs/tags/…, "" for any other ref.
func refType(ref string) string {
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		return forge.RefTypeBranch
	case strings.HasPrefix(ref, "refs/tags/"):
		return forge.RefTypeTag
	}
	return ""
}

// isZero reports an absent object id: Azure DevOps writes forty zeros.
func isZero(sha string) bool { return strings.Trim(sha, "0") == "" }

func shaOrZero(sha string) string {
	if isZero(sha) {
		return forge.ZeroSHA
	}
	return sha
}

func (w *Webhooks) mapPush(n notification) (forge.Result, error) {
	var p pushResource
	if err := w.payloads.Unmarshal(n.Resource, &p); err != nil {
		return forge.Result{}, malformed("push resource: %s", err)
	}
	if len(p.RefUpdates) == 0 {
		return forge.Result{}, malformed("push has no refUpdates")
	}
	if p.Repository == nil || p.Repository.ID == "" {
		return forge.Result{}, malformed("push has no repository")
	}
	commits := make([]forge.Commit, 0, len(p.Commits))
	for _, c := range p.Commits {
		fc := forge.Commit{ID: c.CommitID, Message: c.Comment, URL: c.URL}
		if c.Author != nil {
			fc.Author = forge.Person{Name: c.Author.Name, Email: c.Author.Email}
			fc.Timestamp = c.Author.Date
		}
		if fc.Timestamp == "" && c.Committer != nil {
			fc.Timestamp = c.Committer.Date
		}
		commits = append(commits, fc)
	}
	// Azure DevOps lists the push's commits without saying which ref each belongs to. With one
	// ref moved forward they are all its own; with several, each ref gets the commit that is its
	// new head, when the push lists it.
	var moved int
	for _, u := range p.RefUpdates {
		if refType(u.Name) != "" && !isZero(u.NewObjectID) {
			moved++
		}
	}
	at := p.Date.Time
	if at.IsZero() {
		at = n.CreatedDate.Time
	}
	repo := p.Repository.eventRepository()
	pusher := p.PushedBy.actor()
	var res forge.Result
	var skipped []string
	for _, u := range p.RefUpdates {
		rt := refType(u.Name)
		if rt == "" {
			skipped = append(skipped, u.Name)
			continue
		}
		before, after := shaOrZero(u.OldObjectID), shaOrZero(u.NewObjectID)
		created, deleted := isZero(u.OldObjectID), isZero(u.NewObjectID)
		own := []forge.Commit{}
		switch {
		case deleted:
		case moved == 1:
			own = commits
		default:
			for _, c := range commits {
				if c.ID == after {
					own = append(own, c)
				}
			}
		}
		res.Events = append(res.Events, forge.Event{
			Type: forge.EventPush, Subject: u.Name, Time: at, Repository: repo, Sender: pusher,
			Data: forge.PushData{
				Ref: u.Name, RefType: rt, Before: before, After: after,
				Created: created, Deleted: deleted, Forced: u.Forced,
				Commits: own, TotalCommits: len(own), Pusher: pusher,
			},
		})
		switch {
		case created && !deleted:
			res.Events = append(res.Events, refEvent(forge.EventRefCreated, u.Name, rt, after, at, repo, pusher))
		case deleted && !created:
			res.Events = append(res.Events, refEvent(forge.EventRefDeleted, u.Name, rt, "", at, repo, pusher))
		}
	}
	if len(res.Events) == 0 {
		return forge.Result{Ignored: fmt.Sprintf("Azure DevOps push to %.200s, which is neither a branch nor a tag", strings.Join(skipped, ", "))}, nil
	}
	return res, nil
}

func refEvent(typ, ref, rt, sha string, at time.Time, repo *forge.EventRepository, sender forge.Actor) forge.Event {
	return forge.Event{Type: typ, Subject: ref, Time: at, Repository: repo, Sender: sender,
		Data: forge.RefData{Ref: ref, RefType: rt, SHA: sha}}
}

func (w *Webhooks) mapPullRequest(ctx context.Context, n notification, state forge.State) (forge.Result, error) {
	var p pullRequest
	if err := w.payloads.Unmarshal(n.Resource, &p); err != nil {
		return forge.Result{}, malformed("pull request resource: %s", err)
	}
	if p.PullRequestID <= 0 {
		return forge.Result{}, malformed("pull request has no pullRequestId")
	}
	if p.Repository == nil || p.Repository.ID == "" {
		return forge.Result{}, malformed("pull request %d has no repository", p.PullRequestID)
	}
	head := p.LastMergeSourceCommit.id()
	stateWord := forge.PullRequestStateOpen
	mergeSHA := ""
	switch strings.ToLower(p.Status) {
	case "completed":
		stateWord, mergeSHA = forge.PullRequestStateMerged, p.LastMergeCommit.id()
	case "abandoned":
		stateWord = forge.PullRequestStateClosed
	}
	suffix := "opened"
	at := p.CreationDate.Time
	var sender forge.Actor
	if n.EventType == EventPullRequestCreated {
		sender = p.CreatedBy.actor()
	} else {
		at = n.CreatedDate.Time
		switch stateWord {
		case forge.PullRequestStateMerged, forge.PullRequestStateClosed:
			suffix = stateWord
			if !p.ClosedDate.IsZero() {
				at = p.ClosedDate.Time
			}
			// Who completed or abandoned it, when Azure DevOps says; nobody is invented.
			sender = p.ClosedBy.actor()
		default:
			suffix = "updated"
			if head != "" && state != nil {
				prev, seen, err := state.PullRequestHead(ctx, p.Repository.ID, p.PullRequestID)
				if err != nil {
					return forge.Result{}, fmt.Errorf("last head of pull request %d: %w", p.PullRequestID, err)
				}
				if seen && prev == head {
					suffix = "edited"
				}
			}
		}
	}
	if at.IsZero() {
		at = n.CreatedDate.Time
	}
	source := forge.RefAt{
		Ref: strings.TrimPrefix(p.SourceRefName, "refs/heads/"), SHA: head,
		RepositoryFullName: p.Repository.fullName(),
	}
	if p.ForkSource != nil && p.ForkSource.Repository != nil && p.ForkSource.Repository.Name != "" {
		source.RepositoryFullName = p.ForkSource.Repository.fullName()
	}
	return forge.Result{Events: []forge.Event{{
		Type:       forge.EventPullRequestPrefix + suffix,
		Subject:    "pull_requests/" + itoa(p.PullRequestID),
		Time:       at,
		Repository: p.Repository.eventRepository(),
		Sender:     sender,
		Data: forge.PullRequestData{
			Number:   p.PullRequestID,
			Title:    p.Title,
			Body:     p.Description,
			State:    stateWord,
			Draft:    p.IsDraft,
			URL:      p.webURL(),
			Author:   p.CreatedBy.actor(),
			Source:   source,
			Target:   forge.RefAt{Ref: strings.TrimPrefix(p.TargetRefName, "refs/heads/"), SHA: p.LastMergeTargetCommit.id()},
			MergeSHA: mergeSHA,
			Action:   n.EventType,
		},
	}}}, nil
}
