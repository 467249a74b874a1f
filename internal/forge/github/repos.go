package github

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/forgeway/forgeway/internal/forge"
)

// ghAccount is the owner or account object of GitHub's answers.
type ghAccount struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
	Type  string `json:"type"`
}

type ghRepo struct {
	ID            int64     `json:"id"`
	Name          string    `json:"name"`
	FullName      string    `json:"full_name"`
	Owner         ghAccount `json:"owner"`
	Private       bool      `json:"private"`
	Visibility    string    `json:"visibility"`
	Archived      bool      `json:"archived"`
	Fork          bool      `json:"fork"`
	DefaultBranch string    `json:"default_branch"`
	CloneURL      string    `json:"clone_url"`
	HTMLURL       string    `json:"html_url"`
	Description   *string   `json:"description"`
	Permissions   *struct {
		Admin bool `json:"admin"`
		Push  bool `json:"push"`
		Pull  bool `json:"pull"`
	} `json:"permissions"`
}

// toForge maps a GitHub repository. installation is "" for token integrations; perms are the
// installation token's permissions, used when GitHub gives no per-repository permissions.
func (r ghRepo) toForge(installation string, perms map[string]string) forge.Repository {
	vis := r.Visibility
	if vis == "" {
		vis = "public"
		if r.Private {
			vis = "private"
		}
	}
	out := forge.Repository{
		HostID:        strconv.FormatInt(r.ID, 10),
		FullName:      r.FullName,
		Name:          r.Name,
		Owner:         r.Owner.Login,
		Group:         r.Owner.Login,
		DefaultBranch: r.DefaultBranch,
		Visibility:    vis,
		Private:       r.Private,
		Archived:      r.Archived,
		Fork:          r.Fork,
		CloneURL:      r.CloneURL,
		WebURL:        r.HTMLURL,
		Installation:  installation,
	}
	if r.Description != nil {
		out.Description = *r.Description
	}
	switch p := r.Permissions; {
	case p != nil && p.Admin:
		out.Permission = forge.PermissionAdmin
	case p != nil && p.Push:
		out.Permission = forge.PermissionWrite
	case p != nil && p.Pull:
		out.Permission = forge.PermissionRead
	case perms != nil:
		out.Permission = permissionFromApp(perms)
	}
	return out
}

// permissionFromApp is what an installation token may do on its repositories.
func permissionFromApp(perms map[string]string) forge.Permission {
	switch {
	case perms["administration"] == "write":
		return forge.PermissionAdmin
	case perms["contents"] == "write":
		return forge.PermissionWrite
	case perms["metadata"] != "" || perms["contents"] != "":
		return forge.PermissionRead
	}
	return forge.PermissionNone
}

type ghInstallation struct {
	ID                  int64     `json:"id"`
	Account             ghAccount `json:"account"`
	RepositorySelection string    `json:"repository_selection"`
	SuspendedAt         *string   `json:"suspended_at"`
}

// Installations lists where the App is installed (GET /app/installations, every page).
// Token integrations have none: ErrUnsupported.
func (c *Client) Installations(ctx context.Context) ([]forge.Installation, error) {
	if c.cfg.auth != AuthApp {
		return nil, fmt.Errorf("list installations: %w", forge.ErrUnsupported)
	}
	list, err := getAll[ghInstallation](ctx, c, "list the App's installations", "/app/installations?per_page=100", c.appCredential())
	if err != nil {
		return nil, err
	}
	out := make([]forge.Installation, 0, len(list))
	for _, in := range list {
		out = append(out, forge.Installation{
			ID:                  strconv.FormatInt(in.ID, 10),
			Account:             in.Account.Login,
			AccountType:         in.Account.Type,
			RepositorySelection: in.RepositorySelection,
			Suspended:           in.SuspendedAt != nil,
		})
	}
	return out, nil
}

// listConcurrency bounds the pages of one listing fetched at once.
const listConcurrency = 8

// Repositories lists every repository the integration can see: for an App, each active
// installation's (GET /installation/repositories with its token); for a token, the user's
// own, collaborations and organizations' (GET /user/repos). It reads page 1, learns the last
// page from its Link header, fetches the rest at most 8 at a time and calls fn in page order.
func (c *Client) Repositories(ctx context.Context, fn func(page []forge.Repository) error) error {
	if c.cfg.auth != AuthApp {
		return listPages(ctx, c, "list the token's repositories",
			"/user/repos?per_page=100&affiliation=owner,collaborator,organization_member&page=",
			c.tokenCredential(), func(repos []ghRepo) []forge.Repository {
				out := make([]forge.Repository, 0, len(repos))
				for _, r := range repos {
					out = append(out, r.toForge("", nil))
				}
				return out
			}, fn)
	}
	insts, err := c.Installations(ctx)
	if err != nil {
		return err
	}
	for _, in := range insts {
		if in.Suspended {
			continue
		}
		id, _ := strconv.ParseInt(in.ID, 10, 64)
		instID := in.ID
		err := listPages(ctx, c, "list the repositories of installation "+instID+" ("+in.Account+")",
			"/installation/repositories?per_page=100&page=", c.installationCredential(id),
			func(page installationRepos) []forge.Repository {
				c.mu.Lock()
				perms := c.tokens[id].permissions
				c.mu.Unlock()
				out := make([]forge.Repository, 0, len(page.Repositories))
				for _, r := range page.Repositories {
					out = append(out, r.toForge(instID, perms))
				}
				return out
			}, fn)
		if err != nil {
			return err
		}
	}
	return nil
}

// installationRepos is a page of GET /installation/repositories.
type installationRepos struct {
	TotalCount   int      `json:"total_count"`
	Repositories []ghRepo `json:"repositories"`
}

// listPages fetches prefix+"1", then pages 2…last concurrently (listConcurrency at most in
// flight or waiting to be consumed) and hands them to fn in order. The first error — a
// page's or fn's — cancels the rest and is returned.
func listPages[T any](ctx context.Context, c *Client, op, prefix string, cred credential,
	convert func(T) []forge.Repository, fn func([]forge.Repository) error) error {
	fetch := func(ctx context.Context, page int) ([]forge.Repository, *http.Response, error) {
		var body T
		resp, err := c.do(ctx, request{op: fmt.Sprintf("%s (page %d)", op, page), method: http.MethodGet,
			path: prefix + strconv.Itoa(page), cred: cred, out: &body})
		if err != nil {
			return nil, nil, err
		}
		return convert(body), resp, nil
	}
	first, resp, err := fetch(ctx, 1)
	if err != nil {
		return err
	}
	if err := fn(first); err != nil {
		return err
	}
	last := lastPage(resp.Header)
	if last <= 1 {
		return nil
	}

	return forge.FetchPages(ctx, op, 2, last, listConcurrency, func(ctx context.Context, page int) ([]forge.Repository, error) {
		repos, _, err := fetch(ctx, page)
		return repos, err
	}, fn)
}

// Repository fetches a repository by the hint's full name and checks it is still the one
// with hostID (GitHub redirects a renamed repository's old name to it). A repository that is
// gone, or whose name now belongs to another, is forge.ErrNotFound.
func (c *Client) Repository(ctx context.Context, hostID string, hint forge.Repository) (forge.Repository, error) {
	op := "get repository " + hint.FullName
	path := ""
	if hint.FullName != "" {
		owner, name, err := splitFullName(hint)
		if err != nil {
			return forge.Repository{}, err
		}
		path = "/repos/" + owner + "/" + name
	} else {
		if _, err := strconv.ParseInt(hostID, 10, 64); err != nil {
			return forge.Repository{}, fmt.Errorf("get repository: %q is not a GitHub repository id", hostID)
		}
		op, path = "get repository "+hostID, "/repositories/"+hostID
	}
	cred, inst := c.tokenCredential(), ""
	if c.cfg.auth == AuthApp {
		id, err := c.installationID(ctx, hint)
		if err != nil {
			return forge.Repository{}, err
		}
		cred, inst = c.installationCredential(id), strconv.FormatInt(id, 10)
	}
	var r ghRepo
	if _, err := c.do(ctx, request{op: op, method: http.MethodGet, path: path, cred: cred, out: &r}); err != nil {
		return forge.Repository{}, err
	}
	if got := strconv.FormatInt(r.ID, 10); got != hostID {
		return forge.Repository{}, &forge.HostError{Op: op, Status: http.StatusNotFound,
			Message: fmt.Sprintf("%s is now repository %s, not %s: the repository was deleted or replaced", hint.FullName, got, hostID),
			Err:     forge.ErrNotFound}
	}
	var perms map[string]string
	if inst != "" {
		id, _ := strconv.ParseInt(inst, 10, 64)
		c.mu.Lock()
		perms = c.tokens[id].permissions
		c.mu.Unlock()
	}
	return r.toForge(inst, perms), nil
}
