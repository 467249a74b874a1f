package bitbucketdc

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// GitAuth returns "Authorization: Bearer <token>" for git over HTTP, which Bitbucket accepts
// for HTTP access tokens: the acting person's token when as is set, else the integration's.
// Bitbucket tokens are not renewed, so the header is valid as long as the token is; an acting
// person's token known to expire before minValidity is refused with forge.ErrUnauthorized.
func (c *Client) GitAuth(_ context.Context, repo forge.Repository, as *forge.UserCredential, minValidity time.Duration) (forge.GitAuth, error) {
	if as != nil && as.Token != "" {
		if !as.Expires.IsZero() && as.Expires.Sub(c.now()) < minValidity {
			return forge.GitAuth{}, &forge.HostError{
				Op:      "git credentials for " + repo.FullName,
				Message: fmt.Sprintf("%s's Bitbucket token expires at %s, before the operation would end: create a new HTTP access token", as.Login, as.Expires.UTC().Format(time.RFC3339)),
				Err:     forge.ErrUnauthorized,
			}
		}
		return forge.GitAuth{Header: "Authorization: Bearer " + as.Token, Expires: as.Expires}, nil
	}
	return forge.GitAuth{Header: "Authorization: Bearer " + c.cfg.token}, nil
}

// token is the acting person's token when as is set, else the integration's.
func (c *Client) token(as *forge.UserCredential) string {
	if as != nil && as.Token != "" {
		return as.Token
	}
	return c.cfg.token
}

// bbBranch is Bitbucket's branch representation (RestBranch).
type bbBranch struct {
	ID           string `json:"id"`
	DisplayID    string `json:"displayId"`
	LatestCommit string `json:"latestCommit"`
	IsDefault    bool   `json:"isDefault"`
}

// CreateBranch creates refs/heads/name at sha (POST /projects/{key}/repos/{slug}/branches), as
// the acting person when as is set.
func (c *Client) CreateBranch(ctx context.Context, repo forge.Repository, name, sha string, as *forge.UserCredential) (forge.Ref, error) {
	name = strings.TrimPrefix(name, "refs/heads/")
	if name == "" || sha == "" {
		return forge.Ref{}, fmt.Errorf("create branch on %s: a branch name and a commit sha are required", repo.FullName)
	}
	path, err := repoPath(repo)
	if err != nil {
		return forge.Ref{}, fmt.Errorf("create branch %s: %w", name, err)
	}
	var out bbBranch
	_, err = c.do(ctx, request{
		op: fmt.Sprintf("create branch %s on %s", name, repo.FullName), method: http.MethodPost,
		path: path + "/branches", token: c.token(as),
		body: map[string]string{"name": name, "startPoint": sha}, out: &out,
	})
	if err != nil {
		return forge.Ref{}, err
	}
	ref := forge.Ref{Name: out.ID, SHA: out.LatestCommit}
	if ref.Name == "" {
		ref.Name = "refs/heads/" + name
	}
	return ref, nil
}

// Branches lists the repository's branches (GET /projects/{key}/repos/{slug}/branches, every
// page), named refs/heads/….
func (c *Client) Branches(ctx context.Context, repo forge.Repository) ([]forge.Ref, error) {
	path, err := repoPath(repo)
	if err != nil {
		return nil, fmt.Errorf("list branches: %w", err)
	}
	list, err := getAll[bbBranch](ctx, c, "list the branches of "+repo.FullName, path+"/branches", repoPageLimit)
	if err != nil {
		return nil, err
	}
	out := make([]forge.Ref, 0, len(list))
	for _, b := range list {
		name := b.ID
		if !strings.HasPrefix(name, "refs/") {
			name = "refs/heads/" + b.DisplayID
		}
		out = append(out, forge.Ref{Name: name, SHA: b.LatestCommit})
	}
	return out, nil
}

// bbPullRef is one side of a pull request.
type bbPullRef struct {
	ID           string  `json:"id"`
	DisplayID    string  `json:"displayId,omitempty"`
	LatestCommit string  `json:"latestCommit,omitempty"`
	Repository   *bbRepo `json:"repository,omitempty"`
}

// bbPull is Bitbucket's pull request representation (RestPullRequest).
type bbPull struct {
	ID          int64     `json:"id"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	State       string    `json:"state"`
	Draft       bool      `json:"draft"`
	CreatedDate int64     `json:"createdDate"`
	FromRef     bbPullRef `json:"fromRef"`
	ToRef       bbPullRef `json:"toRef"`
	Author      struct {
		User struct {
			Name         string `json:"name"`
			DisplayName  string `json:"displayName"`
			EmailAddress string `json:"emailAddress"`
		} `json:"user"`
	} `json:"author"`
	Links struct {
		Self []bbLink `json:"self"`
	} `json:"links"`
	Properties struct {
		MergeCommit *struct {
			ID string `json:"id"`
		} `json:"mergeCommit"`
	} `json:"properties"`
}

func (p bbPull) toForge() forge.PullRequest {
	out := forge.PullRequest{
		Number: p.ID, Title: p.Title, Body: p.Description, Draft: p.Draft,
		Author: forge.Actor{Login: p.Author.User.Name, Name: p.Author.User.DisplayName, Email: p.Author.User.EmailAddress},
		Source: forge.RefAt{Ref: strings.TrimPrefix(p.FromRef.ID, "refs/heads/"), SHA: p.FromRef.LatestCommit},
		Target: forge.RefAt{Ref: strings.TrimPrefix(p.ToRef.ID, "refs/heads/"), SHA: p.ToRef.LatestCommit},
	}
	if p.FromRef.Repository != nil {
		out.Source.RepositoryFullName = p.FromRef.Repository.Project.Key + "/" + p.FromRef.Repository.Slug
	}
	switch strings.ToUpper(p.State) {
	case "MERGED":
		out.State = forge.PullRequestStateMerged
		if p.Properties.MergeCommit != nil {
			out.MergeSHA = p.Properties.MergeCommit.ID
		}
	case "DECLINED":
		out.State = forge.PullRequestStateClosed
	default:
		out.State = forge.PullRequestStateOpen
	}
	for _, l := range p.Links.Self {
		if l.Href != "" {
			out.URL = l.Href
			break
		}
	}
	if p.CreatedDate > 0 {
		out.Created = time.UnixMilli(p.CreatedDate).UTC()
	}
	return out
}

// pullRefIn is one side of a new pull request: the branch and the repository it lives in.
type pullRefIn struct {
	ID         string `json:"id"`
	Repository struct {
		Slug    string `json:"slug"`
		Project struct {
			Key string `json:"key"`
		} `json:"project"`
	} `json:"repository"`
}

// CreatePullRequest opens a pull request from pr.Source into pr.Target, both branches of repo
// (POST /projects/{key}/repos/{slug}/pull-requests), as the acting person when as is set. A
// draft is asked for only when wanted: Bitbucket before 8.18 has no drafts.
func (c *Client) CreatePullRequest(ctx context.Context, repo forge.Repository, pr forge.NewPullRequest, as *forge.UserCredential) (forge.PullRequest, error) {
	if pr.Title == "" || pr.Source == "" || pr.Target == "" {
		return forge.PullRequest{}, fmt.Errorf("create pull request on %s: a title, a source and a target branch are required", repo.FullName)
	}
	key, slug, err := splitFullName(repo.FullName)
	if err != nil {
		return forge.PullRequest{}, fmt.Errorf("create pull request: %w", err)
	}
	path, _ := repoPath(repo)
	side := func(branch string) pullRefIn {
		var r pullRefIn
		r.ID = "refs/heads/" + strings.TrimPrefix(branch, "refs/heads/")
		r.Repository.Slug = slug
		r.Repository.Project.Key = key
		return r
	}
	body := map[string]any{
		"title": pr.Title, "description": pr.Body,
		"fromRef": side(pr.Source), "toRef": side(pr.Target),
	}
	if pr.Draft {
		body["draft"] = true
	}
	var out bbPull
	_, err = c.do(ctx, request{
		op:     fmt.Sprintf("create a pull request from %s into %s on %s", pr.Source, pr.Target, repo.FullName),
		method: http.MethodPost, path: path + "/pull-requests", token: c.token(as), body: body, out: &out,
	})
	if err != nil {
		return forge.PullRequest{}, err
	}
	return out.toForge(), nil
}
