package github

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// CreateBranch creates refs/heads/name at sha (POST /repos/{owner}/{repo}/git/refs), as the
// acting person when as is set.
func (c *Client) CreateBranch(ctx context.Context, repo forge.Repository, name, sha string, as *forge.UserCredential) (forge.Ref, error) {
	name = strings.TrimPrefix(name, "refs/heads/")
	if name == "" || sha == "" {
		return forge.Ref{}, fmt.Errorf("create branch on %s: a branch name and a commit sha are required", repo.FullName)
	}
	owner, rname, err := splitFullName(repo)
	if err != nil {
		return forge.Ref{}, err
	}
	cred, err := c.actingCredential(ctx, repo, as)
	if err != nil {
		return forge.Ref{}, err
	}
	var out struct {
		Ref    string `json:"ref"`
		Object struct {
			SHA string `json:"sha"`
		} `json:"object"`
	}
	_, err = c.do(ctx, request{
		op: fmt.Sprintf("create branch %s on %s", name, repo.FullName), method: http.MethodPost,
		path: "/repos/" + owner + "/" + rname + "/git/refs", cred: cred,
		body: map[string]string{"ref": "refs/heads/" + name, "sha": sha}, out: &out,
	})
	if err != nil {
		return forge.Ref{}, err
	}
	return forge.Ref{Name: out.Ref, SHA: out.Object.SHA}, nil
}

// Branches lists the repository's branches (GET /repos/{owner}/{repo}/branches, every page),
// named refs/heads/….
func (c *Client) Branches(ctx context.Context, repo forge.Repository) ([]forge.Ref, error) {
	owner, name, err := splitFullName(repo)
	if err != nil {
		return nil, err
	}
	cred, err := c.repoCredential(ctx, repo)
	if err != nil {
		return nil, err
	}
	type branch struct {
		Name   string `json:"name"`
		Commit struct {
			SHA string `json:"sha"`
		} `json:"commit"`
	}
	list, err := getAll[branch](ctx, c, "list the branches of "+repo.FullName, "/repos/"+owner+"/"+name+"/branches?per_page=100", cred)
	if err != nil {
		return nil, err
	}
	out := make([]forge.Ref, 0, len(list))
	for _, b := range list {
		out = append(out, forge.Ref{Name: "refs/heads/" + b.Name, SHA: b.Commit.SHA})
	}
	return out, nil
}

type ghPull struct {
	Number  int64     `json:"number"`
	Title   string    `json:"title"`
	Body    *string   `json:"body"`
	State   string    `json:"state"`
	Draft   bool      `json:"draft"`
	Merged  bool      `json:"merged"`
	HTMLURL string    `json:"html_url"`
	User    ghAccount `json:"user"`
	Head    struct {
		Ref  string `json:"ref"`
		SHA  string `json:"sha"`
		Repo *struct {
			FullName string `json:"full_name"`
		} `json:"repo"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	} `json:"base"`
	MergeCommitSHA *string   `json:"merge_commit_sha"`
	CreatedAt      time.Time `json:"created_at"`
}

func (p ghPull) toForge() forge.PullRequest {
	out := forge.PullRequest{
		Number: p.Number, Title: p.Title, State: p.State, Draft: p.Draft, URL: p.HTMLURL,
		Author:  forge.Actor{Login: p.User.Login},
		Source:  forge.RefAt{Ref: p.Head.Ref, SHA: p.Head.SHA},
		Target:  forge.RefAt{Ref: p.Base.Ref, SHA: p.Base.SHA},
		Created: p.CreatedAt,
	}
	if p.Body != nil {
		out.Body = *p.Body
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

// CreatePullRequest opens a pull request from pr.Source into pr.Target (POST
// /repos/{owner}/{repo}/pulls), as the acting person when as is set.
func (c *Client) CreatePullRequest(ctx context.Context, repo forge.Repository, pr forge.NewPullRequest, as *forge.UserCredential) (forge.PullRequest, error) {
	if pr.Title == "" || pr.Source == "" || pr.Target == "" {
		return forge.PullRequest{}, fmt.Errorf("create pull request on %s: a title, a source and a target branch are required", repo.FullName)
	}
	owner, name, err := splitFullName(repo)
	if err != nil {
		return forge.PullRequest{}, err
	}
	cred, err := c.actingCredential(ctx, repo, as)
	if err != nil {
		return forge.PullRequest{}, err
	}
	var out ghPull
	_, err = c.do(ctx, request{
		op:     fmt.Sprintf("create a pull request from %s into %s on %s", pr.Source, pr.Target, repo.FullName),
		method: http.MethodPost, path: "/repos/" + owner + "/" + name + "/pulls", cred: cred,
		body: map[string]any{
			"title": pr.Title, "body": pr.Body, "draft": pr.Draft,
			"head": strings.TrimPrefix(pr.Source, "refs/heads/"), "base": strings.TrimPrefix(pr.Target, "refs/heads/"),
		},
		out: &out,
	})
	if err != nil {
		return forge.PullRequest{}, err
	}
	return out.toForge(), nil
}
