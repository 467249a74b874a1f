package ghwebhook

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// Normalize turns a verified GitHub delivery into events and effects as spec/events.md says.
// Events the contract does not map (and actions of mapped events it does not map) give a
// Result with Ignored set and no error. A body that is not valid JSON, or a mapped event
// missing what defines it (a push without ref, a pull_request without its object), gives an
// error wrapping forge.ErrMalformed. GitHub says everything needed, so state is not consulted.
func (w *Webhooks) Normalize(_ context.Context, d forge.Delivery, _ forge.State) (forge.Result, error) {
	event := strings.TrimSpace(d.Header.Get(HeaderEvent))
	if event == "" {
		return forge.Result{}, fmt.Errorf("normalize GitHub delivery: header %s is missing: %w", HeaderEvent, forge.ErrMalformed)
	}
	doc, err := document(d)
	if err != nil {
		return forge.Result{}, fmt.Errorf("normalize GitHub %.60q delivery: %w", event, err)
	}
	mapper, known := mappers[event]
	if !known {
		// Still refuse a body that is not JSON, so that a broken delivery is reported as such.
		if _, err := readEnvelope(doc); err != nil {
			return forge.Result{}, fmt.Errorf("normalize GitHub %.60q delivery: %w: %s", event, forge.ErrMalformed, err)
		}
		return forge.Result{Ignored: fmt.Sprintf("GitHub event %.60q has no mapping", event)}, nil
	}
	var p payload
	// Only the members the mappings read are decoded (a push's repository alone has ~90).
	if err := w.payload.Unmarshal(doc, &p); err != nil {
		return forge.Result{}, fmt.Errorf("normalize GitHub %s delivery: %w: %s", event, forge.ErrMalformed, err)
	}
	res, err := mapper(&p)
	if err != nil {
		return forge.Result{}, fmt.Errorf("normalize GitHub %s delivery: %w", event, err)
	}
	return res, nil
}

// mapper turns one decoded event into its result.
type mapper func(p *payload) (forge.Result, error)

// mappers lists the GitHub events with a mapping; it is never modified.
var mappers = map[string]mapper{
	"push":                      mapPush,
	"create":                    mapRef(forge.EventRefCreated),
	"delete":                    mapRef(forge.EventRefDeleted),
	"pull_request":              mapPullRequest,
	"repository":                mapRepository,
	"installation":              mapInstallation,
	"installation_repositories": mapInstallationRepositories,
	"github_app_authorization":  mapAuthorization,
	"ping":                      mapPing,
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", forge.ErrMalformed, fmt.Sprintf(format, args...))
}

func noMapping(event, action string) forge.Result {
	return forge.Result{Ignored: fmt.Sprintf("GitHub %s action %.60q has no mapping", event, action)}
}

func mapPush(p *payload) (forge.Result, error) {
	if p.Ref == "" {
		return forge.Result{}, malformed("push has no ref")
	}
	refType := refTypeOf(p.Ref)
	if refType == "" {
		return forge.Result{Ignored: fmt.Sprintf("GitHub push to %.100q, which is neither a branch nor a tag", p.Ref)}, nil
	}
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
	var pusher forge.Actor
	if p.Pusher != nil {
		// GitHub's pusher.name is the pusher's login, not a display name.
		pusher = forge.Actor{Login: p.Pusher.Name, Email: p.Pusher.Email}
	}
	var at time.Time
	switch {
	case p.HeadCommit != nil && !p.HeadCommit.Timestamp.IsZero():
		at = p.HeadCommit.Timestamp.Time
	case p.Repository != nil:
		at = p.Repository.PushedAt.Time
	}
	return forge.Result{Events: []forge.Event{{
		Type:       forge.EventPush,
		Subject:    p.Ref,
		Time:       at,
		Repository: eventRepository(p.Repository),
		Sender:     actor(p.Sender),
		Data: forge.PushData{
			Ref:          p.Ref,
			RefType:      refType,
			Before:       shaOrZero(p.Before),
			After:        shaOrZero(p.After),
			Created:      p.Created,
			Deleted:      p.Deleted,
			Forced:       p.Forced,
			Commits:      commits,
			TotalCommits: len(commits), // GitHub sends no count of its own
			Pusher:       pusher,
		},
	}}}, nil
}

// mapRef maps create and delete deliveries, whose ref is a short name beside its ref_type.
func mapRef(eventType string) mapper {
	return func(p *payload) (forge.Result, error) {
		if p.Ref == "" {
			return forge.Result{}, malformed("ref event has no ref")
		}
		var ref string
		switch p.RefType {
		case forge.RefTypeBranch:
			ref = "refs/heads/" + p.Ref
		case forge.RefTypeTag:
			ref = "refs/tags/" + p.Ref
		default:
			return forge.Result{Ignored: fmt.Sprintf("GitHub ref_type %.60q has no mapping", p.RefType)}, nil
		}
		return forge.Result{Events: []forge.Event{{
			Type:       eventType,
			Subject:    ref,
			Repository: eventRepository(p.Repository),
			Sender:     actor(p.Sender),
			// GitHub's create payload names no sha; the push that follows carries it.
			Data: forge.RefData{Ref: ref, RefType: p.RefType},
		}}}, nil
	}
}

// pullRequestTypes maps GitHub pull_request actions to event type suffixes; closed is decided
// by the merged flag.
var pullRequestTypes = map[string]string{
	"opened":             "opened",
	"synchronize":        "updated",
	"edited":             "edited",
	"ready_for_review":   "edited",
	"converted_to_draft": "edited",
	"reopened":           "reopened",
}

func mapPullRequest(p *payload) (forge.Result, error) {
	suffix, ok := pullRequestTypes[p.Action]
	if p.Action == "closed" {
		ok = true
		suffix = "closed"
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
	state := pr.State
	mergeSHA := ""
	if pr.Merged {
		state = forge.PullRequestStateMerged
		mergeSHA = pr.MergeCommitSHA
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

// repositoryTypes maps GitHub repository actions to event type suffixes.
var repositoryTypes = map[string]string{
	"created":     "created",
	"deleted":     "deleted",
	"renamed":     "renamed",
	"transferred": "transferred",
	"archived":    "archived",
	"unarchived":  "unarchived",
	"privatized":  "visibility_changed",
	"publicized":  "visibility_changed",
	"edited":      "edited",
}

func mapRepository(p *payload) (forge.Result, error) {
	suffix, ok := repositoryTypes[p.Action]
	if !ok {
		return noMapping("repository", p.Action), nil
	}
	r := p.Repository
	if r == nil || r.ID == "" {
		return forge.Result{}, malformed("repository %s has no repository id", p.Action)
	}
	changes, err := repositoryChanges(p)
	if err != nil {
		return forge.Result{}, err
	}
	var effect forge.Effect
	if p.Action == "deleted" {
		effect = forge.RepositoryDeleted{HostID: string(r.ID)}
	} else {
		effect = forge.RepositoryChanged{Repository: catalogRepository(r, p.Installation)}
	}
	return forge.Result{
		Events: []forge.Event{{
			Type:       forge.EventRepositoryPrefix + suffix,
			Time:       r.UpdatedAt.Time,
			Repository: eventRepository(r),
			Sender:     actor(p.Sender),
			Data:       forge.RepositoryData{Changes: changes},
		}},
		Effects: []forge.Effect{effect},
	}, nil
}

// repositoryChanges builds data.changes: the old full name for renamed and transferred (from
// what the payload says; left out when it does not say), the old visibility for privatized /
// publicized, and GitHub's own changes object for edited.
func repositoryChanges(p *payload) (map[string]any, error) {
	changes := map[string]any{}
	r := p.Repository
	switch p.Action {
	case "renamed":
		var c struct {
			Repository struct {
				Name struct {
					From string `json:"from"`
				} `json:"name"`
			} `json:"repository"`
		}
		if err := decodeChanges(p.Changes, &c); err != nil {
			return nil, err
		}
		if from := c.Repository.Name.From; from != "" && r.Owner != nil && ownerLogin(r.Owner) != "" {
			changes["old_full_name"] = ownerLogin(r.Owner) + "/" + from
		}
	case "transferred":
		var c struct {
			Owner struct {
				From struct {
					User         *account `json:"user"`
					Organization *account `json:"organization"`
				} `json:"from"`
			} `json:"owner"`
		}
		if err := decodeChanges(p.Changes, &c); err != nil {
			return nil, err
		}
		from := ""
		if c.Owner.From.Organization != nil {
			from = c.Owner.From.Organization.Login
		}
		if from == "" && c.Owner.From.User != nil {
			from = c.Owner.From.User.Login
		}
		if from != "" && r.Name != "" {
			changes["old_full_name"] = from + "/" + r.Name
		}
	case "privatized":
		changes["old_private"] = false
	case "publicized":
		changes["old_private"] = true
	case "edited":
		if err := decodeChanges(p.Changes, &changes); err != nil {
			return nil, err
		}
		if changes == nil { // "changes": null
			changes = map[string]any{}
		}
	}
	return changes, nil
}

func decodeChanges(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return malformed("changes: %s", err)
	}
	return nil
}

// installationTypes maps GitHub installation actions to event type suffixes and the status
// of the InstallationChanged effect ("" for none: accepting new permissions changes nothing
// the catalog keeps about an installation).
var installationTypes = map[string]struct{ suffix, status string }{
	"created":                  {"created", "active"},
	"deleted":                  {"deleted", "deleted"},
	"suspend":                  {"suspended", "suspended"},
	"unsuspend":                {"unsuspended", "active"},
	"new_permissions_accepted": {"permissions_accepted", ""},
}

func mapInstallation(p *payload) (forge.Result, error) {
	t, ok := installationTypes[p.Action]
	if !ok {
		return noMapping("installation", p.Action), nil
	}
	in := p.Installation
	if in == nil || in.ID == "" {
		return forge.Result{}, malformed("installation %s has no installation id", p.Action)
	}
	res := forge.Result{Events: []forge.Event{{
		Type:   forge.EventInstallationPrefix + t.suffix,
		Time:   in.UpdatedAt.Time,
		Sender: actor(p.Sender),
		Data:   forge.InstallationData{Installation: installationRef(in)},
	}}}
	if t.status != "" {
		ref := installationRef(in)
		res.Effects = append(res.Effects, forge.InstallationChanged{
			Installation: forge.Installation{
				ID:                  ref.ID,
				Account:             ref.Account.Login,
				AccountType:         ref.Account.Type,
				RepositorySelection: ref.RepositorySelection,
				Suspended:           t.status == "suspended",
			},
			Status: t.status,
		})
	}
	if p.Action == "created" && len(p.Repositories) > 0 {
		res.Effects = append(res.Effects, forge.RepositoriesAdded{
			Installation: string(in.ID),
			Repositories: partialRepositories(p.Repositories, string(in.ID)),
		})
	}
	return res, nil
}

func mapInstallationRepositories(p *payload) (forge.Result, error) {
	var list []repoRef
	var suffix string
	switch p.Action {
	case "added":
		list, suffix = p.RepositoriesAdded, "repositories_added"
	case "removed":
		list, suffix = p.RepositoriesRemoved, "repositories_removed"
	default:
		return noMapping("installation_repositories", p.Action), nil
	}
	in := p.Installation
	if in == nil || in.ID == "" {
		return forge.Result{}, malformed("installation_repositories %s has no installation id", p.Action)
	}
	refs := make([]forge.RepositoryRef, 0, len(list))
	for _, r := range list {
		refs = append(refs, forge.RepositoryRef{ID: string(r.ID), FullName: r.FullName})
	}
	var effect forge.Effect
	if p.Action == "added" {
		effect = forge.RepositoriesAdded{Installation: string(in.ID), Repositories: partialRepositories(list, string(in.ID))}
	} else {
		ids := make([]string, 0, len(list))
		for _, r := range list {
			ids = append(ids, string(r.ID))
		}
		effect = forge.RepositoriesRemoved{Installation: string(in.ID), HostIDs: ids}
	}
	return forge.Result{
		Events: []forge.Event{{
			Type:   forge.EventInstallationPrefix + suffix,
			Time:   in.UpdatedAt.Time,
			Sender: actor(p.Sender),
			Data:   forge.InstallationData{Installation: installationRef(in), Repositories: refs},
		}},
		Effects: []forge.Effect{effect},
	}, nil
}

func mapAuthorization(p *payload) (forge.Result, error) {
	if p.Action != "revoked" {
		return noMapping("github_app_authorization", p.Action), nil
	}
	sender := actor(p.Sender)
	if sender.Login == "" {
		return forge.Result{}, malformed("github_app_authorization revoked names no sender login")
	}
	var data forge.AuthorizationData
	data.User.Login = sender.Login
	return forge.Result{
		Events: []forge.Event{{
			Type:   forge.EventAuthorizationRevoked,
			Sender: sender,
			Data:   data,
		}},
		Effects: []forge.Effect{forge.UserCredentialRevoked{Login: sender.Login}},
	}, nil
}

func mapPing(p *payload) (forge.Result, error) {
	return forge.Result{Events: []forge.Event{{
		Type:       forge.EventPing,
		Repository: eventRepository(p.Repository),
		Sender:     actor(p.Sender),
		Data:       forge.PingData{HookID: string(p.HookID), Zen: p.Zen},
	}}}, nil
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

func actor(a *account) forge.Actor {
	if a == nil {
		return forge.Actor{}
	}
	return forge.Actor{Login: a.Login, Name: a.Name, Email: a.Email}
}

// ownerLogin is the owner's login; push payloads also carry it as name.
func ownerLogin(a *account) string {
	if a == nil {
		return ""
	}
	if a.Login != "" {
		return a.Login
	}
	return a.Name
}

func defaultBranch(r *repository) string {
	if r.DefaultBranch != "" {
		return r.DefaultBranch
	}
	return r.MasterBranch
}

func eventRepository(r *repository) *forge.EventRepository {
	if r == nil {
		return nil
	}
	return &forge.EventRepository{
		ID:            string(r.ID),
		FullName:      r.FullName,
		Name:          r.Name,
		Owner:         ownerLogin(r.Owner),
		DefaultBranch: defaultBranch(r),
		WebURL:        r.HTMLURL,
		CloneURL:      r.CloneURL,
		Private:       r.Private,
	}
}

// catalogRepository is the repository as the catalog keeps it. Group is the owner: on GitHub
// the account (user or organization) is what groups repositories.
func catalogRepository(r *repository, in *installation) forge.Repository {
	owner := ownerLogin(r.Owner)
	repo := forge.Repository{
		HostID:        string(r.ID),
		FullName:      r.FullName,
		Name:          r.Name,
		Owner:         owner,
		Group:         owner,
		DefaultBranch: defaultBranch(r),
		Visibility:    visibility(r),
		Private:       r.Private,
		Archived:      r.Archived,
		Fork:          r.Fork,
		CloneURL:      r.CloneURL,
		WebURL:        r.HTMLURL,
		Description:   r.Description,
	}
	if in != nil {
		repo.Installation = string(in.ID)
	}
	return repo
}

// visibility takes "internal" from the payload's visibility, the one thing it adds to the
// private flag; otherwise private decides, because payloads have been seen where visibility
// lags behind a privatized repository's private flag.
func visibility(r *repository) string {
	switch {
	case r.Visibility == "internal":
		return "internal"
	case r.Private:
		return "private"
	}
	return "public"
}

func installationRef(in *installation) forge.InstallationRef {
	ref := forge.InstallationRef{ID: string(in.ID), RepositorySelection: in.RepositorySelection}
	if in.Account != nil {
		ref.Account = forge.InstallAccount{Login: in.Account.Login, Type: in.Account.Type}
	}
	return ref
}

// partialRepositories turns an installation payload's repository list into catalog entries
// carrying what the payload says; the core refreshes the rest from the host.
func partialRepositories(list []repoRef, installationID string) []forge.Repository {
	out := make([]forge.Repository, 0, len(list))
	for _, r := range list {
		out = append(out, forge.Repository{
			HostID:       string(r.ID),
			FullName:     r.FullName,
			Name:         r.Name,
			Private:      r.Private,
			Installation: installationID,
		})
	}
	return out
}
