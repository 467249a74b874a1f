package gitea

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// gitUser is the user name of git's basic credentials: with a token as the password Gitea
// ignores the name, so any works.
const gitUser = "forgeway"

// GitAuth returns an HTTP Basic header for git with the integration's token, or the acting
// person's token when as is set. Gitea access tokens do not expire, so the header carries no
// expiry; an acting person's credential that Forgeway knows to expire before minValidity has
// passed is refused with forge.ErrUnauthorized.
func (c *Client) GitAuth(_ context.Context, repo forge.Repository, as *forge.UserCredential, minValidity time.Duration) (forge.GitAuth, error) {
	basic := func(user, tok string, exp time.Time) forge.GitAuth {
		return forge.GitAuth{
			Header:  "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+tok)),
			Expires: exp,
		}
	}
	if as != nil && as.Token != "" {
		if !as.Expires.IsZero() && as.Expires.Sub(c.now()) < minValidity {
			return forge.GitAuth{}, &forge.HostError{
				Op:      "git credentials for " + repo.FullName,
				Message: fmt.Sprintf("%s's Gitea token expires at %s, before the operation would end; renew it first", as.Login, as.Expires.UTC().Format(time.RFC3339)),
				Err:     forge.ErrUnauthorized,
			}
		}
		user := as.Login
		if user == "" {
			user = gitUser
		}
		return basic(user, as.Token, as.Expires), nil
	}
	return basic(gitUser, c.cfg.token, time.Time{}), nil
}

// actingToken is the acting person's token when as is set, else "" (the integration's).
func actingToken(as *forge.UserCredential) string {
	if as != nil {
		return as.Token
	}
	return ""
}

// apiBranch is Gitea's Branch object.
type apiBranch struct {
	Name   string `json:"name"`
	Commit struct {
		ID string `json:"id"`
	} `json:"commit"`
}

// CreateBranch creates refs/heads/name at sha (POST /repos/{owner}/{repo}/branches with
// old_ref_name), as the acting person when as is set. Gitea before 1.20 ignores old_ref_name
// and branches from the default branch instead; such a branch is deleted again and the call
// fails, rather than leaving a branch at the wrong commit.
func (c *Client) CreateBranch(ctx context.Context, repo forge.Repository, name, sha string, as *forge.UserCredential) (forge.Ref, error) {
	name = strings.TrimPrefix(name, "refs/heads/")
	if name == "" || sha == "" {
		return forge.Ref{}, fmt.Errorf("create branch on %s: a branch name and a commit sha are required", repo.FullName)
	}
	base, err := repoPath(repo)
	if err != nil {
		return forge.Ref{}, err
	}
	op := fmt.Sprintf("create branch %s on %s", name, repo.FullName)
	var out apiBranch
	_, err = c.do(ctx, request{
		op: op, method: http.MethodPost, path: base + "/branches", token: actingToken(as),
		body: map[string]string{"new_branch_name": name, "old_ref_name": sha}, out: &out,
	})
	if err != nil {
		return forge.Ref{}, err
	}
	if !strings.HasPrefix(strings.ToLower(out.Commit.ID), strings.ToLower(sha)) {
		_, derr := c.do(ctx, request{op: "delete the misplaced branch " + name + " on " + repo.FullName, method: http.MethodDelete,
			path: base + "/branches/" + url.PathEscape(name), token: actingToken(as)})
		msg := fmt.Sprintf("Gitea created the branch at %s instead of %s: it ignores old_ref_name (Gitea before 1.20); upgrade Gitea", out.Commit.ID, sha)
		if derr != nil {
			msg += "; deleting the misplaced branch failed too: " + derr.Error()
		}
		return forge.Ref{}, &forge.HostError{Op: op, Status: http.StatusCreated, Message: msg}
	}
	return forge.Ref{Name: "refs/heads/" + out.Name, SHA: out.Commit.ID}, nil
}

// Branches lists the repository's branches (GET /repos/{owner}/{repo}/branches, every page),
// named refs/heads/….
func (c *Client) Branches(ctx context.Context, repo forge.Repository) ([]forge.Ref, error) {
	base, err := repoPath(repo)
	if err != nil {
		return nil, err
	}
	list, err := getAll[apiBranch](ctx, c, "list the branches of "+repo.FullName, base+"/branches", "")
	if err != nil {
		return nil, err
	}
	out := make([]forge.Ref, 0, len(list))
	for _, b := range list {
		out = append(out, forge.Ref{Name: "refs/heads/" + b.Name, SHA: b.Commit.ID})
	}
	return out, nil
}

// apiPull is Gitea's PullRequest object.
type apiPull struct {
	Number  int64   `json:"number"`
	Title   string  `json:"title"`
	Body    string  `json:"body"`
	State   string  `json:"state"`
	Draft   bool    `json:"draft"`
	Merged  bool    `json:"merged"`
	HTMLURL string  `json:"html_url"`
	User    apiUser `json:"user"`
	Head    struct {
		Ref  string   `json:"ref"`
		SHA  string   `json:"sha"`
		Repo *apiRepo `json:"repo"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	} `json:"base"`
	MergeCommitSHA *string   `json:"merge_commit_sha"`
	CreatedAt      time.Time `json:"created_at"`
}

func (p apiPull) toForge() forge.PullRequest {
	out := forge.PullRequest{
		Number: p.Number, Title: p.Title, Body: p.Body, State: p.State, Draft: p.Draft, URL: p.HTMLURL,
		Author:  forge.Actor{Login: p.User.login(), Name: p.User.FullName, Email: p.User.Email},
		Source:  forge.RefAt{Ref: p.Head.Ref, SHA: p.Head.SHA},
		Target:  forge.RefAt{Ref: p.Base.Ref, SHA: p.Base.SHA},
		Created: p.CreatedAt,
	}
	if p.Head.Repo != nil {
		out.Source.RepositoryFullName = p.Head.Repo.FullName
	}
	if p.Merged {
		out.State = forge.PullRequestStateMerged
		if p.MergeCommitSHA != nil {
			out.MergeSHA = *p.MergeCommitSHA
		}
	}
	return out
}

// draftPrefix marks a draft: Gitea has no draft flag on creation, it reads a title starting
// with one of its WORK_IN_PROGRESS_PREFIXES ("WIP:" and "[WIP]" by default) as a draft.
const draftPrefix = "WIP: "

// CreatePullRequest opens a pull request from pr.Source into pr.Target (POST
// /repos/{owner}/{repo}/pulls), as the acting person when as is set. A draft is opened with
// "WIP: " before its title, which is how Gitea marks drafts.
func (c *Client) CreatePullRequest(ctx context.Context, repo forge.Repository, pr forge.NewPullRequest, as *forge.UserCredential) (forge.PullRequest, error) {
	if pr.Title == "" || pr.Source == "" || pr.Target == "" {
		return forge.PullRequest{}, fmt.Errorf("create pull request on %s: a title, a source and a target branch are required", repo.FullName)
	}
	base, err := repoPath(repo)
	if err != nil {
		return forge.PullRequest{}, err
	}
	title := pr.Title
	if pr.Draft && !isWIP(title) {
		title = draftPrefix + title
	}
	src, dst := strings.TrimPrefix(pr.Source, "refs/heads/"), strings.TrimPrefix(pr.Target, "refs/heads/")
	var out apiPull
	_, err = c.do(ctx, request{
		op:     fmt.Sprintf("create a pull request from %s into %s on %s", src, dst, repo.FullName),
		method: http.MethodPost, path: base + "/pulls", token: actingToken(as),
		body: map[string]any{"title": title, "body": pr.Body, "head": src, "base": dst},
		out:  &out,
	})
	if err != nil {
		return forge.PullRequest{}, err
	}
	return out.toForge(), nil
}

func isWIP(title string) bool {
	t := strings.ToUpper(strings.TrimSpace(title))
	return strings.HasPrefix(t, "WIP:") || strings.HasPrefix(t, "[WIP]")
}
