package bitbucketfake

import (
	"net/url"
	"strings"
	"time"
)

// The JSON shapes below follow Bitbucket's REST representations (RestRepository,
// RestProject, RestApplicationUser, RestWebhook, RestBranch, RestPullRequest) as its
// documentation shows them.

type linkJSON struct {
	Href string `json:"href"`
	Name string `json:"name,omitempty"`
}

type selfLinks struct {
	Self []linkJSON `json:"self"`
}

type userJSON struct {
	Name         string    `json:"name"`
	EmailAddress string    `json:"emailAddress,omitempty"`
	ID           int       `json:"id"`
	DisplayName  string    `json:"displayName"`
	Active       bool      `json:"active"`
	Slug         string    `json:"slug"`
	Type         string    `json:"type"`
	Links        selfLinks `json:"links"`
}

func (s *Server) userJSON(u *user) userJSON {
	typ := "NORMAL"
	if u.service {
		typ = "SERVICE"
	}
	return userJSON{Name: u.name, EmailAddress: u.email, ID: u.id, DisplayName: u.displayName, Active: true,
		Slug: strings.ToLower(u.name), Type: typ, Links: selfLinks{Self: []linkJSON{{Href: s.URL + "/users/" + url.PathEscape(strings.ToLower(u.name))}}}}
}

type projectJSON struct {
	Key         string    `json:"key"`
	ID          int       `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Public      bool      `json:"public"`
	Type        string    `json:"type"`
	Owner       *userJSON `json:"owner,omitempty"`
	Links       selfLinks `json:"links"`
}

func (s *Server) projectJSON(p *project) projectJSON {
	out := projectJSON{Key: p.key, ID: p.id, Name: p.name, Description: p.description, Public: p.public, Type: "NORMAL",
		Links: selfLinks{Self: []linkJSON{{Href: s.URL + "/projects/" + url.PathEscape(p.key)}}}}
	if p.personal != nil {
		out.Type = "PERSONAL"
		u := s.userJSON(p.personal)
		out.Owner = &u
		out.Links = u.Links
	}
	return out
}

type repoLinks struct {
	Clone []linkJSON `json:"clone"`
	Self  []linkJSON `json:"self"`
}

type repoJSON struct {
	Slug          string      `json:"slug"`
	ID            int         `json:"id"`
	Name          string      `json:"name"`
	Description   string      `json:"description,omitempty"`
	HierarchyID   string      `json:"hierarchyId"`
	ScmID         string      `json:"scmId"`
	State         string      `json:"state"`
	StatusMessage string      `json:"statusMessage"`
	Forkable      bool        `json:"forkable"`
	Origin        *repoJSON   `json:"origin,omitempty"`
	Project       projectJSON `json:"project"`
	Public        bool        `json:"public"`
	Archived      bool        `json:"archived"`
	Links         repoLinks   `json:"links"`
}

// cloneURL is the HTTP clone URL: /scm/{project key in lower case}/{slug}.git.
func (s *Server) cloneURL(r *repo) string { return s.URL + "/scm/" + r.gitPath() }

// webURL is the repository's browse page.
func (s *Server) webURL(r *repo) string {
	if r.project.personal != nil {
		return s.URL + "/users/" + url.PathEscape(strings.ToLower(r.project.personal.name)) + "/repos/" + r.slug + "/browse"
	}
	return s.URL + "/projects/" + url.PathEscape(r.project.key) + "/repos/" + r.slug + "/browse"
}

func (s *Server) repoJSON(r *repo) repoJSON {
	host := strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://")
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	out := repoJSON{
		Slug: r.slug, ID: r.id, Name: r.name, Description: r.description, HierarchyID: r.hierarchyID, ScmID: "git",
		State: "AVAILABLE", StatusMessage: "Available", Forkable: true, Project: s.projectJSON(r.project),
		Public: r.public, Archived: r.archived,
		Links: repoLinks{
			Clone: []linkJSON{
				{Href: s.cloneURL(r), Name: "http"},
				{Href: "ssh://git@" + host + ":7999/" + r.gitPath(), Name: "ssh"},
			},
			Self: []linkJSON{{Href: s.webURL(r)}},
		},
	}
	if r.origin != nil {
		o := s.repoJSON(r.origin)
		out.Origin = &o
	}
	return out
}

type minimalRefJSON struct {
	ID        string `json:"id"`
	DisplayID string `json:"displayId"`
	Type      string `json:"type"`
}

type branchJSON struct {
	ID              string `json:"id"`
	DisplayID       string `json:"displayId"`
	Type            string `json:"type"`
	LatestCommit    string `json:"latestCommit"`
	LatestChangeset string `json:"latestChangeset"`
	IsDefault       bool   `json:"isDefault"`
}

func branchOf(name, sha string, isDefault bool) branchJSON {
	return branchJSON{ID: "refs/heads/" + name, DisplayID: name, Type: "BRANCH", LatestCommit: sha, LatestChangeset: sha, IsDefault: isDefault}
}

// hookJSON is a webhook as Bitbucket shows it to the repository's admins, secret included.
type hookJSON struct {
	ID                      int               `json:"id"`
	Name                    string            `json:"name"`
	CreatedDate             int64             `json:"createdDate"`
	UpdatedDate             int64             `json:"updatedDate"`
	Events                  []string          `json:"events"`
	Configuration           map[string]string `json:"configuration"`
	URL                     string            `json:"url"`
	Active                  bool              `json:"active"`
	ScopeType               string            `json:"scopeType"`
	SSLVerificationRequired bool              `json:"sslVerificationRequired"`
}

func hookOut(h *hook) hookJSON {
	conf := map[string]string{}
	if h.secret != "" {
		conf["secret"] = h.secret
	}
	return hookJSON{ID: h.id, Name: h.name, CreatedDate: h.created.UnixMilli(), UpdatedDate: h.updated.UnixMilli(),
		Events: h.events, Configuration: conf, URL: h.url, Active: h.active, ScopeType: "repository", SSLVerificationRequired: h.sslVerify}
}

type invocationJSON struct {
	ID         int    `json:"id"`
	Event      string `json:"event"`
	EventScope struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"eventScope"`
	Request struct {
		URL    string `json:"url"`
		Method string `json:"method"`
	} `json:"request"`
	Result struct {
		Description string `json:"description"`
		Outcome     string `json:"outcome"`
	} `json:"result"`
	Duration int64 `json:"duration"`
	Start    int64 `json:"start"`
	Finish   int64 `json:"finish"`
}

func invocationOut(inv *invocation, repoID string) *invocationJSON {
	if inv == nil {
		return nil
	}
	out := &invocationJSON{ID: inv.id, Event: inv.event, Duration: inv.finish.Sub(inv.start).Milliseconds(),
		Start: inv.start.UnixMilli(), Finish: inv.finish.UnixMilli()}
	out.EventScope.ID, out.EventScope.Type = repoID, "repository"
	out.Request.URL, out.Request.Method = inv.url, "POST"
	out.Result.Description, out.Result.Outcome = inv.description, inv.outcome
	return out
}

type pullRefJSON struct {
	ID           string   `json:"id"`
	DisplayID    string   `json:"displayId"`
	LatestCommit string   `json:"latestCommit"`
	Type         string   `json:"type"`
	Repository   repoJSON `json:"repository"`
}

type participantJSON struct {
	User     userJSON `json:"user"`
	Role     string   `json:"role"`
	Approved bool     `json:"approved"`
	Status   string   `json:"status"`
}

type pullJSON struct {
	ID           int               `json:"id"`
	Version      int               `json:"version"`
	Title        string            `json:"title"`
	Description  string            `json:"description,omitempty"`
	State        string            `json:"state"`
	Open         bool              `json:"open"`
	Closed       bool              `json:"closed"`
	Draft        bool              `json:"draft"`
	CreatedDate  int64             `json:"createdDate"`
	UpdatedDate  int64             `json:"updatedDate"`
	ClosedDate   int64             `json:"closedDate,omitempty"`
	FromRef      pullRefJSON       `json:"fromRef"`
	ToRef        pullRefJSON       `json:"toRef"`
	Locked       bool              `json:"locked"`
	Author       participantJSON   `json:"author"`
	Reviewers    []participantJSON `json:"reviewers"`
	Participants []participantJSON `json:"participants"`
	Properties   map[string]any    `json:"properties,omitempty"`
	Links        selfLinks         `json:"links"`
}

func (s *Server) pullJSON(to *repo, p *pull) pullJSON {
	display := func(ref string) string {
		if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
			return b
		}
		return ref
	}
	out := pullJSON{
		ID: p.id, Version: p.version, Title: p.title, Description: p.description, State: p.state,
		Open: p.state == "OPEN", Closed: p.state != "OPEN", Draft: p.draft,
		CreatedDate: p.created.UnixMilli(), UpdatedDate: p.updated.UnixMilli(),
		FromRef:   pullRefJSON{ID: p.fromRef, DisplayID: display(p.fromRef), LatestCommit: p.fromSHA, Type: "BRANCH", Repository: s.repoJSON(p.from)},
		ToRef:     pullRefJSON{ID: p.toRef, DisplayID: display(p.toRef), LatestCommit: p.toSHA, Type: "BRANCH", Repository: s.repoJSON(to)},
		Author:    participantJSON{User: s.userJSON(p.author), Role: "AUTHOR", Status: "UNAPPROVED"},
		Reviewers: []participantJSON{}, Participants: []participantJSON{},
		Links: selfLinks{Self: []linkJSON{{Href: strings.TrimSuffix(s.webURL(to), "/browse") + "/pull-requests/" + itoa(p.id)}}},
	}
	if !p.closed.IsZero() {
		out.ClosedDate = p.closed.UnixMilli()
	}
	if p.mergeSHA != "" {
		out.Properties = map[string]any{"mergeCommit": map[string]string{"id": p.mergeSHA, "displayId": p.mergeSHA[:min(11, len(p.mergeSHA))]}}
	}
	return out
}

// eventDate is a payload's date as Bitbucket writes it: "2018-07-05T18:22:00+0000".
func eventDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05-0700") }
