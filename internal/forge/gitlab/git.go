package gitlab

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// basicAuth is the header git sends: GitLab accepts "oauth2" with an OAuth token and any user
// name with an access token.
func basicAuth(token string, expires time.Time) forge.GitAuth {
	return forge.GitAuth{
		Header:  "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("oauth2:"+token)),
		Expires: expires,
	}
}

// GitAuth returns an HTTP Basic header for git (user "oauth2", the token as password): the
// acting person's token, the integration's access token, or its OAuth token renewed first
// when it would expire within minValidity (or half an hour).
func (c *Client) GitAuth(ctx context.Context, repo forge.Repository, as *forge.UserCredential, minValidity time.Duration) (forge.GitAuth, error) {
	switch {
	case as != nil && as.Token != "":
		if !as.Expires.IsZero() && as.Expires.Sub(c.now()) < minValidity {
			return forge.GitAuth{}, &forge.HostError{
				Op:      "git credentials for " + repo.FullName,
				Message: fmt.Sprintf("%s's GitLab token expires at %s, before the operation would end; renew it first", as.Login, as.Expires.UTC().Format(time.RFC3339)),
				Err:     forge.ErrUnauthorized,
			}
		}
		return basicAuth(as.Token, as.Expires), nil
	case c.cfg.auth == AuthOAuth:
		tok, exp, err := c.accessToken(ctx, minValidity, "")
		if err != nil {
			return forge.GitAuth{}, fmt.Errorf("git credentials for %s: %w", repo.FullName, err)
		}
		return basicAuth(tok, exp), nil
	default:
		return basicAuth(c.cfg.token, time.Time{}), nil
	}
}

// CreateBranch creates refs/heads/name at sha (POST /projects/:id/repository/branches), as
// the acting person when as is set.
func (c *Client) CreateBranch(ctx context.Context, repo forge.Repository, name, sha string, as *forge.UserCredential) (forge.Ref, error) {
	name = strings.TrimPrefix(name, "refs/heads/")
	if name == "" || sha == "" {
		return forge.Ref{}, fmt.Errorf("create branch on %s: a branch name and a commit sha are required", repo.FullName)
	}
	base, err := projectPath(repo)
	if err != nil {
		return forge.Ref{}, err
	}
	var out glBranch
	_, err = c.do(ctx, request{
		op: fmt.Sprintf("create branch %s on %s", name, repo.FullName), method: http.MethodPost,
		path: base + "/repository/branches", cred: c.actingCredential(as),
		body: map[string]string{"branch": name, "ref": sha}, out: &out,
	})
	if err != nil {
		return forge.Ref{}, err
	}
	return forge.Ref{Name: "refs/heads/" + out.Name, SHA: out.Commit.ID}, nil
}

type glBranch struct {
	Name   string `json:"name"`
	Commit struct {
		ID string `json:"id"`
	} `json:"commit"`
}

// Branches lists the project's branches (GET /projects/:id/repository/branches, every
// page), named refs/heads/….
func (c *Client) Branches(ctx context.Context, repo forge.Repository) ([]forge.Ref, error) {
	base, err := projectPath(repo)
	if err != nil {
		return nil, err
	}
	list, err := getAll[glBranch](ctx, c, "list the branches of "+repo.FullName, base+"/repository/branches?per_page=100", c.integrationCredential())
	if err != nil {
		return nil, err
	}
	out := make([]forge.Ref, 0, len(list))
	for _, b := range list {
		out = append(out, forge.Ref{Name: "refs/heads/" + b.Name, SHA: b.Commit.ID})
	}
	return out, nil
}

// glMergeRequest is GitLab's merge request object.
type glMergeRequest struct {
	IID             int64     `json:"iid"`
	Title           string    `json:"title"`
	Description     *string   `json:"description"`
	State           string    `json:"state"`
	Draft           bool      `json:"draft"`
	WorkInProgress  bool      `json:"work_in_progress"`
	WebURL          string    `json:"web_url"`
	Author          glUser    `json:"author"`
	SourceBranch    string    `json:"source_branch"`
	TargetBranch    string    `json:"target_branch"`
	SourceProjectID int64     `json:"source_project_id"`
	TargetProjectID int64     `json:"target_project_id"`
	SHA             string    `json:"sha"`
	MergeCommitSHA  *string   `json:"merge_commit_sha"`
	CreatedAt       time.Time `json:"created_at"`
	DiffRefs        *struct {
		BaseSHA string `json:"base_sha"`
	} `json:"diff_refs"`
}

func (m glMergeRequest) toForge(repo forge.Repository) forge.PullRequest {
	out := forge.PullRequest{
		Number: m.IID, Title: m.Title, Draft: m.Draft || m.WorkInProgress, URL: m.WebURL,
		Author:  forge.Actor{Login: m.Author.Username, Name: m.Author.Name},
		Source:  forge.RefAt{Ref: m.SourceBranch, SHA: m.SHA},
		Target:  forge.RefAt{Ref: m.TargetBranch},
		Created: m.CreatedAt,
	}
	if m.Description != nil {
		out.Body = *m.Description
	}
	if m.DiffRefs != nil {
		out.Target.SHA = m.DiffRefs.BaseSHA
	}
	if m.SourceProjectID == m.TargetProjectID {
		out.Source.RepositoryFullName = repo.FullName
	}
	switch m.State {
	case "merged":
		out.State = forge.PullRequestStateMerged
		if m.MergeCommitSHA != nil {
			out.MergeSHA = *m.MergeCommitSHA
		}
	case "closed":
		out.State = forge.PullRequestStateClosed
	default: // opened, locked
		out.State = forge.PullRequestStateOpen
	}
	return out
}

// draftPrefix marks a draft merge request: GitLab's create endpoint takes no draft flag.
const draftPrefix = "Draft: "

// CreatePullRequest opens a merge request from pr.Source into pr.Target (POST
// /projects/:id/merge_requests), as the acting person when as is set. A draft gets GitLab's
// "Draft: " title prefix.
func (c *Client) CreatePullRequest(ctx context.Context, repo forge.Repository, pr forge.NewPullRequest, as *forge.UserCredential) (forge.PullRequest, error) {
	if pr.Title == "" || pr.Source == "" || pr.Target == "" {
		return forge.PullRequest{}, fmt.Errorf("create merge request on %s: a title, a source and a target branch are required", repo.FullName)
	}
	base, err := projectPath(repo)
	if err != nil {
		return forge.PullRequest{}, err
	}
	title := pr.Title
	if pr.Draft && !isDraftTitle(title) {
		title = draftPrefix + title
	}
	source, target := strings.TrimPrefix(pr.Source, "refs/heads/"), strings.TrimPrefix(pr.Target, "refs/heads/")
	var out glMergeRequest
	_, err = c.do(ctx, request{
		op:     fmt.Sprintf("create a merge request from %s into %s on %s", source, target, repo.FullName),
		method: http.MethodPost, path: base + "/merge_requests", cred: c.actingCredential(as),
		body: map[string]any{"source_branch": source, "target_branch": target, "title": title, "description": pr.Body},
		out:  &out,
	})
	if err != nil {
		return forge.PullRequest{}, err
	}
	return out.toForge(repo), nil
}

// isDraftTitle reports whether GitLab reads title as a draft's.
func isDraftTitle(title string) bool {
	t := strings.ToLower(strings.TrimSpace(title))
	for _, p := range []string{"draft:", "[draft]", "(draft)"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}
