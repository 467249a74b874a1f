package gitlab

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/forgeway/forgeway/internal/forge"
)

// glProject is GitLab's project object (GET /projects, not simple).
type glProject struct {
	ID                int64   `json:"id"`
	Name              string  `json:"name"`
	Path              string  `json:"path"`
	PathWithNamespace string  `json:"path_with_namespace"`
	Description       *string `json:"description"`
	DefaultBranch     string  `json:"default_branch"`
	Visibility        string  `json:"visibility"`
	Archived          bool    `json:"archived"`
	HTTPURLToRepo     string  `json:"http_url_to_repo"`
	WebURL            string  `json:"web_url"`
	Namespace         struct {
		FullPath string `json:"full_path"`
		Kind     string `json:"kind"`
	} `json:"namespace"`
	ForkedFromProject *struct {
		ID int64 `json:"id"`
	} `json:"forked_from_project"`
	Permissions *struct {
		ProjectAccess *accessLevel `json:"project_access"`
		GroupAccess   *accessLevel `json:"group_access"`
	} `json:"permissions"`
}

type accessLevel struct {
	AccessLevel int `json:"access_level"`
}

// GitLab's roles, as access levels.
const (
	levelReporter   = 20
	levelDeveloper  = 30
	levelMaintainer = 40
)

// permission is the credential's role on the project: Maintainer and up may manage webhooks
// (admin), Developer may push (write), Reporter may read.
func (p glProject) permission() forge.Permission {
	level := 0
	if p.Permissions != nil {
		for _, a := range []*accessLevel{p.Permissions.ProjectAccess, p.Permissions.GroupAccess} {
			if a != nil {
				level = max(level, a.AccessLevel)
			}
		}
	}
	switch {
	case level >= levelMaintainer:
		return forge.PermissionAdmin
	case level >= levelDeveloper:
		return forge.PermissionWrite
	case level >= levelReporter:
		return forge.PermissionRead
	}
	return forge.PermissionNone
}

// toForge maps a project. Name is the project's path (the last part of path_with_namespace),
// as webhook payloads name it; Owner and Group are the namespace's full path.
func (p glProject) toForge() forge.Repository {
	ns := p.Namespace.FullPath
	if ns == "" {
		if i := strings.LastIndex(p.PathWithNamespace, "/"); i >= 0 {
			ns = p.PathWithNamespace[:i]
		}
	}
	name := p.Path
	if name == "" {
		name = p.PathWithNamespace[strings.LastIndex(p.PathWithNamespace, "/")+1:]
	}
	out := forge.Repository{
		HostID:        strconv.FormatInt(p.ID, 10),
		FullName:      p.PathWithNamespace,
		Name:          name,
		Owner:         ns,
		Group:         ns,
		DefaultBranch: p.DefaultBranch,
		Visibility:    p.Visibility,
		Private:       p.Visibility != "public",
		Archived:      p.Archived,
		Fork:          p.ForkedFromProject != nil,
		CloneURL:      p.HTTPURLToRepo,
		WebURL:        p.WebURL,
		Permission:    p.permission(),
	}
	if p.Description != nil {
		out.Description = *p.Description
	}
	return out
}

// listPath is the first page of discovery: the projects the credential is a member of, in
// keyset pagination by id, which stays fast and consistent however many projects there are.
const listPath = "/projects?membership=true&pagination=keyset&order_by=id&sort=asc&per_page=100"

// Repositories lists every project the credential is a member of (directly or through a
// group), 100 per page, following the Link header's rel="next" as keyset pagination requires.
// Keyset pages cannot be fetched out of order, so the next page is fetched while fn consumes
// the current one; fn is called in order. The first error, a page's or fn's, stops it.
func (c *Client) Repositories(ctx context.Context, fn func(page []forge.Repository) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // a page still in flight when fn fails is abandoned
		wg.Wait()
	}()
	type page struct {
		repos []forge.Repository
		next  string
		err   error
	}
	// fetch starts fetching the page at path; its result arrives on the channel.
	fetch := func(path string, n int) <-chan page {
		ch := make(chan page, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var items []glProject
			op := fmt.Sprintf("list the projects the credential is a member of (page %d)", n)
			resp, err := c.do(ctx, request{op: op, method: http.MethodGet, path: path, cred: c.integrationCredential(), out: &items})
			if err != nil {
				ch <- page{err: err}
				return
			}
			next, err := c.nextPath(op, resp.Header)
			if err != nil {
				ch <- page{err: err}
				return
			}
			repos := make([]forge.Repository, 0, len(items))
			for _, p := range items {
				repos = append(repos, p.toForge())
			}
			ch <- page{repos: repos, next: next}
		}()
		return ch
	}
	pending := fetch(listPath, 1)
	for n := 1; ; n++ {
		p := <-pending
		if p.err != nil {
			return p.err
		}
		var following <-chan page
		if p.next != "" {
			following = fetch(p.next, n+1)
		}
		if err := fn(p.repos); err != nil {
			return err
		}
		if following == nil {
			return nil
		}
		pending = following
	}
}

// projectPath addresses a repository in API paths: by its id (stable across renames and
// transfers), else by its URL-encoded full path.
func projectPath(repo forge.Repository) (string, error) {
	if isDigits(repo.HostID) {
		return "/projects/" + repo.HostID, nil
	}
	if repo.FullName == "" || strings.HasPrefix(repo.FullName, "/") || strings.HasSuffix(repo.FullName, "/") {
		return "", fmt.Errorf("repository %q has neither a GitLab project id nor a full path", repo.FullName)
	}
	return "/projects/" + url.PathEscape(repo.FullName), nil
}

func isDigits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Repository fetches a project by its id (GET /projects/:id); a project that is gone, or
// that the credential can no longer see, is forge.ErrNotFound.
func (c *Client) Repository(ctx context.Context, hostID string, hint forge.Repository) (forge.Repository, error) {
	hint.HostID = hostID
	path, err := projectPath(hint)
	if err != nil {
		return forge.Repository{}, fmt.Errorf("get repository: %w", err)
	}
	name := hint.FullName
	if name == "" {
		name = hostID
	}
	var p glProject
	if _, err := c.do(ctx, request{op: "get project " + name, method: http.MethodGet, path: path, cred: c.integrationCredential(), out: &p}); err != nil {
		return forge.Repository{}, err
	}
	if hostID != "" && strconv.FormatInt(p.ID, 10) != hostID {
		return forge.Repository{}, &forge.HostError{Op: "get project " + name, Status: http.StatusNotFound,
			Message: fmt.Sprintf("%s is now project %d, not %s: the project was deleted or replaced", name, p.ID, hostID), Err: forge.ErrNotFound}
	}
	return p.toForge(), nil
}
