package gitea

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/forgeway/forgeway/internal/forge"
)

// apiUser is Gitea's user (and organization) object.
type apiUser struct {
	ID       int64  `json:"id"`
	Login    string `json:"login"`
	UserName string `json:"username"`
	FullName string `json:"full_name"`
	Email    string `json:"email"`
}

func (u apiUser) login() string {
	if u.Login != "" {
		return u.Login
	}
	return u.UserName
}

// apiRepo is Gitea's Repository object.
type apiRepo struct {
	ID            int64   `json:"id"`
	Name          string  `json:"name"`
	FullName      string  `json:"full_name"`
	Owner         apiUser `json:"owner"`
	Description   string  `json:"description"`
	Private       bool    `json:"private"`
	Internal      bool    `json:"internal"`
	Fork          bool    `json:"fork"`
	Archived      bool    `json:"archived"`
	Mirror        bool    `json:"mirror"`
	Empty         bool    `json:"empty"`
	DefaultBranch string  `json:"default_branch"`
	CloneURL      string  `json:"clone_url"`
	HTMLURL       string  `json:"html_url"`
	Permissions   *struct {
		Admin bool `json:"admin"`
		Push  bool `json:"push"`
		Pull  bool `json:"pull"`
	} `json:"permissions"`
}

// toForge maps a Gitea repository. Group is the owner: on Gitea the user or organization
// owning a repository is what groups it.
func (r apiRepo) toForge() forge.Repository {
	vis := "public"
	switch {
	case r.Private:
		vis = "private"
	case r.Internal:
		// Public in a limited or private organization: visible to signed-in users only.
		vis = "internal"
	}
	owner := r.Owner.login()
	out := forge.Repository{
		HostID:        strconv.FormatInt(r.ID, 10),
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
	switch p := r.Permissions; {
	case p == nil:
	case p.Admin:
		out.Permission = forge.PermissionAdmin
	case p.Push:
		out.Permission = forge.PermissionWrite
	case p.Pull:
		out.Permission = forge.PermissionRead
	}
	return out
}

func toForgeRepos(list []apiRepo) []forge.Repository {
	out := make([]forge.Repository, 0, len(list))
	for _, r := range list {
		out = append(out, r.toForge())
	}
	return out
}

// Repositories lists every repository the token's user can see — their own, their
// collaborations and their organizations' (GET /user/repos) — 50 per page. It reads page 1,
// learns the number of pages from its X-Total-Count (or Link) header, fetches the rest at most
// 8 at a time and calls fn in page order.
func (c *Client) Repositories(ctx context.Context, fn func(page []forge.Repository) error) error {
	return listPages(ctx, c, "list the token's repositories", "/user/repos", toForgeRepos, fn)
}

// Repository fetches a repository by its id (GET /repositories/{id}), so that a renamed or
// transferred repository is still found; forge.ErrNotFound when it is gone or the token no
// longer sees it. hint is not needed.
func (c *Client) Repository(ctx context.Context, hostID string, hint forge.Repository) (forge.Repository, error) {
	id, err := strconv.ParseInt(hostID, 10, 64)
	if err != nil || id <= 0 {
		return forge.Repository{}, fmt.Errorf("get repository: %q is not a Gitea repository id", hostID)
	}
	op := "get repository " + hostID
	if hint.FullName != "" {
		op += " (" + hint.FullName + ")"
	}
	var r apiRepo
	if _, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/repositories/" + hostID, out: &r}); err != nil {
		return forge.Repository{}, err
	}
	return r.toForge(), nil
}
