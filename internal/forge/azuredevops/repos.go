package azuredevops

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/forgeway/forgeway/internal/forge"
)

// ExtraProjectID is the key of forge.Repository.Extra holding the repository's project id:
// the service hook subscriptions need it, and it survives a project rename.
const ExtraProjectID = "project_id"

// adoProject is a TeamProjectReference.
type adoProject struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	State      string `json:"state"`
	Visibility string `json:"visibility"`
}

// adoRepo is a GitRepository.
type adoRepo struct {
	ID            string      `json:"id"`
	Name          string      `json:"name"`
	Project       *adoProject `json:"project"`
	DefaultBranch string      `json:"defaultBranch"`
	RemoteURL     string      `json:"remoteUrl"`
	WebURL        string      `json:"webUrl"`
	IsDisabled    bool        `json:"isDisabled"`
	IsFork        bool        `json:"isFork"`
}

// toForge maps a repository: full name "project/name", grouped under its project; private
// unless its project is public; a disabled repository is archived (it can be neither cloned
// nor pushed to until it is enabled).
func (r adoRepo) toForge() forge.Repository {
	out := forge.Repository{
		HostID:        r.ID,
		Name:          r.Name,
		DefaultBranch: strings.TrimPrefix(r.DefaultBranch, "refs/heads/"),
		Archived:      r.IsDisabled,
		Fork:          r.IsFork,
		CloneURL:      withoutUserinfo(r.RemoteURL),
		WebURL:        withoutUserinfo(r.WebURL),
		Visibility:    "private",
		Private:       true,
	}
	if out.WebURL == "" {
		out.WebURL = out.CloneURL
	}
	if r.Project != nil {
		out.FullName = r.Project.Name + "/" + r.Name
		out.Owner, out.Group = r.Project.Name, r.Project.Name
		if strings.EqualFold(r.Project.Visibility, "public") {
			out.Visibility, out.Private = "public", false
		}
		if r.Project.ID != "" {
			out.Extra = map[string]string{ExtraProjectID: r.Project.ID}
		}
	}
	return out
}

// withoutUserinfo drops the "org@" Azure DevOps puts in remote URLs: git must authenticate
// with the header Forgeway gives it, not prompt for that user.
func withoutUserinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// projectPage is how many projects one page of the project listing asks for.
const projectPage = 100

// listConcurrency bounds the projects whose repositories are listed at once.
const listConcurrency = 8

// projectsToList returns the projects discovery covers: the configured ones (by name, as
// the repository listing takes them), else every well-formed project, page by page with
// $top and continuationToken (GET _apis/projects), each sent to yield in order.
func (c *Client) projectsToList(ctx context.Context, yield func(name string) bool) error {
	if len(c.cfg.projects) > 0 {
		for _, p := range c.cfg.projects {
			if !yield(p) {
				return nil
			}
		}
		return nil
	}
	token := ""
	for page := 1; ; page++ {
		q := url.Values{"$top": {fmt.Sprint(projectPage)}}
		if token != "" {
			q.Set("continuationToken", token)
		}
		var l list[adoProject]
		resp, err := c.do(ctx, request{op: fmt.Sprintf("list projects (page %d)", page), method: http.MethodGet, path: "/_apis/projects", query: q, out: &l})
		if err != nil {
			return err
		}
		for _, p := range l.Value {
			if !yield(p.Name) {
				return nil
			}
		}
		next := resp.header.Get(continuationHeader)
		if next == "" || next == token || len(l.Value) == 0 {
			return nil
		}
		token = next
	}
}

// listRepos lists one project's repositories (GET {project}/_apis/git/repositories, which
// Azure DevOps answers in one page).
func (c *Client) listRepos(ctx context.Context, project string) ([]forge.Repository, error) {
	var l list[adoRepo]
	_, err := c.do(ctx, request{op: "list the repositories of project " + project, method: http.MethodGet,
		path: "/" + url.PathEscape(project) + "/_apis/git/repositories", out: &l})
	if err != nil {
		return nil, err
	}
	out := make([]forge.Repository, 0, len(l.Value))
	for _, r := range l.Value {
		out = append(out, r.toForge())
	}
	return out, nil
}

// Repositories lists the repositories of every project the token sees (or of the configured
// projects): it pages through the projects and lists each project's repositories, at most 8
// projects at a time, calling fn once per project that has repositories, in the projects'
// order. The first error — a listing's or fn's — stops the rest and is returned.
func (c *Client) Repositories(ctx context.Context, fn func(page []forge.Repository) error) error {
	return forge.InOrder(ctx, "list Azure DevOps repositories", listConcurrency, c.projectsToList, c.listRepos,
		func(repos []forge.Repository) error {
			if len(repos) == 0 {
				return nil
			}
			return fn(repos)
		})
}

// projectRef is how a repository's project is addressed: its id when the catalog has it
// (it survives renames), else its name.
func projectRef(repo forge.Repository) (string, error) {
	if id := repo.Extra[ExtraProjectID]; id != "" {
		return id, nil
	}
	if repo.Group != "" {
		return repo.Group, nil
	}
	if p, _, ok := strings.Cut(repo.FullName, "/"); ok && p != "" {
		return p, nil
	}
	return "", fmt.Errorf("repository %q names no Azure DevOps project: its full name must be project/name", repo.FullName)
}

// repoPath is the API path of a repository: /{project}/_apis/git/repositories/{id}.
func repoPath(repo forge.Repository, id string) (string, error) {
	p, err := projectRef(repo)
	if err != nil {
		return "", err
	}
	if id == "" {
		id = repo.HostID
	}
	if id == "" {
		return "", fmt.Errorf("repository %q has no Azure DevOps id", repo.FullName)
	}
	return "/" + url.PathEscape(p) + "/_apis/git/repositories/" + url.PathEscape(id), nil
}

// Repository fetches a repository by its id, in the project the hint names (its project id,
// else its group or full name). A deleted repository is forge.ErrNotFound.
func (c *Client) Repository(ctx context.Context, hostID string, hint forge.Repository) (forge.Repository, error) {
	p, err := repoPath(hint, hostID)
	if err != nil {
		return forge.Repository{}, fmt.Errorf("get repository %s: %w", hostID, err)
	}
	var r adoRepo
	if _, err := c.do(ctx, request{op: "get repository " + firstNonEmpty(hint.FullName, hostID), method: http.MethodGet, path: p, out: &r}); err != nil {
		return forge.Repository{}, err
	}
	if !strings.EqualFold(r.ID, hostID) {
		return forge.Repository{}, &forge.HostError{Op: "get repository " + hostID, Status: http.StatusNotFound,
			Message: fmt.Sprintf("Azure DevOps answered with repository %s", r.ID), Err: forge.ErrNotFound}
	}
	return r.toForge(), nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
