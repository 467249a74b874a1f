package azuredevops

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// GitAuth returns the header git authenticates with: HTTP basic with an empty user name and
// the personal access token (the acting person's own when as is set). Azure DevOps does not
// say when a token expires, so Expires is zero unless the person's credential says.
func (c *Client) GitAuth(_ context.Context, repo forge.Repository, as *forge.UserCredential, minValidity time.Duration) (forge.GitAuth, error) {
	if as != nil && as.Token != "" {
		if !as.Expires.IsZero() && as.Expires.Sub(c.now()) < minValidity {
			return forge.GitAuth{}, &forge.HostError{
				Op:      "git credentials for " + repo.FullName,
				Message: fmt.Sprintf("%s's Azure DevOps token expires at %s, before the operation would end; renew it first", as.Login, as.Expires.UTC().Format(time.RFC3339)),
				Err:     forge.ErrUnauthorized,
			}
		}
		return forge.GitAuth{Header: "Authorization: " + basic(as.Token), Expires: as.Expires}, nil
	}
	return forge.GitAuth{Header: "Authorization: " + basic(c.cfg.token)}, nil
}

// actingToken is the acting person's token when as is set, else "" (the integration's).
func actingToken(as *forge.UserCredential) string {
	if as != nil {
		return as.Token
	}
	return ""
}

// refUpdateResult is a GitRefUpdateResult.
type refUpdateResult struct {
	Name          string `json:"name"`
	NewObjectID   string `json:"newObjectId"`
	Success       bool   `json:"success"`
	UpdateStatus  string `json:"updateStatus"`
	CustomMessage string `json:"customMessage"`
}

// CreateBranch creates refs/heads/name at sha (POST {project}/_apis/git/repositories/{id}/refs
// with an all-zero old object id), as the acting person when as is set. Azure DevOps answers a
// refused update with success false and a reason: an existing branch, a missing permission.
func (c *Client) CreateBranch(ctx context.Context, repo forge.Repository, name, sha string, as *forge.UserCredential) (forge.Ref, error) {
	name = strings.TrimPrefix(name, "refs/heads/")
	if name == "" || sha == "" {
		return forge.Ref{}, fmt.Errorf("create branch on %s: a branch name and a commit sha are required", repo.FullName)
	}
	p, err := repoPath(repo, "")
	if err != nil {
		return forge.Ref{}, fmt.Errorf("create branch on %s: %w", repo.FullName, err)
	}
	op := fmt.Sprintf("create branch %s on %s", name, repo.FullName)
	var out list[refUpdateResult]
	_, err = c.do(ctx, request{op: op, method: http.MethodPost, path: p + "/refs", token: actingToken(as),
		body: []map[string]string{{"name": "refs/heads/" + name, "oldObjectId": forge.ZeroSHA, "newObjectId": sha}}, out: &out})
	if err != nil {
		return forge.Ref{}, err
	}
	if len(out.Value) == 0 {
		return forge.Ref{}, &forge.HostError{Op: op, Status: http.StatusOK, Message: "Azure DevOps answered without the ref's result"}
	}
	r := out.Value[0]
	if !r.Success {
		he := &forge.HostError{Op: op, Status: http.StatusConflict, Message: "Azure DevOps refused the update: " + r.UpdateStatus}
		if r.CustomMessage != "" {
			he.Message += ": " + r.CustomMessage
		}
		switch r.UpdateStatus {
		case "writePermissionRequired", "createBranchPermissionRequired", "manageNotePermissionRequired", "createTagPermissionRequired":
			he.Status, he.Err = http.StatusForbidden, forge.ErrForbidden
		}
		return forge.Ref{}, he
	}
	return forge.Ref{Name: r.Name, SHA: r.NewObjectID}, nil
}

// gitRef is a GitRef.
type gitRef struct {
	Name     string `json:"name"`
	ObjectID string `json:"objectId"`
}

// refPage is how many refs one page of the branch listing asks for.
const refPage = 1000

// Branches lists the repository's branches (GET …/refs?filter=heads/, every page), named
// refs/heads/….
func (c *Client) Branches(ctx context.Context, repo forge.Repository) ([]forge.Ref, error) {
	p, err := repoPath(repo, "")
	if err != nil {
		return nil, fmt.Errorf("list branches of %s: %w", repo.FullName, err)
	}
	refs, err := getAll[gitRef](ctx, c, "list the branches of "+repo.FullName, p+"/refs", url.Values{"filter": {"heads/"}}, refPage)
	if err != nil {
		return nil, err
	}
	out := make([]forge.Ref, 0, len(refs))
	for _, r := range refs {
		if strings.HasPrefix(r.Name, "refs/heads/") {
			out = append(out, forge.Ref{Name: r.Name, SHA: r.ObjectID})
		}
	}
	return out, nil
}

// identityRef is an IdentityRef.
type identityRef struct {
	DisplayName string `json:"displayName"`
	UniqueName  string `json:"uniqueName"`
}

// adoPull is a GitPullRequest.
type adoPull struct {
	PullRequestID         int64        `json:"pullRequestId"`
	Status                string       `json:"status"`
	Title                 string       `json:"title"`
	Description           string       `json:"description"`
	IsDraft               bool         `json:"isDraft"`
	SourceRefName         string       `json:"sourceRefName"`
	TargetRefName         string       `json:"targetRefName"`
	CreatedBy             *identityRef `json:"createdBy"`
	CreationDate          adoTime      `json:"creationDate"`
	Repository            *adoRepo     `json:"repository"`
	LastMergeSourceCommit *struct {
		CommitID string `json:"commitId"`
	} `json:"lastMergeSourceCommit"`
	LastMergeTargetCommit *struct {
		CommitID string `json:"commitId"`
	} `json:"lastMergeTargetCommit"`
	LastMergeCommit *struct {
		CommitID string `json:"commitId"`
	} `json:"lastMergeCommit"`
}

func (p adoPull) toForge(repo forge.Repository) forge.PullRequest {
	out := forge.PullRequest{
		Number: p.PullRequestID, Title: p.Title, Body: p.Description, Draft: p.IsDraft,
		State:   forge.PullRequestStateOpen,
		Source:  forge.RefAt{Ref: strings.TrimPrefix(p.SourceRefName, "refs/heads/"), RepositoryFullName: repo.FullName},
		Target:  forge.RefAt{Ref: strings.TrimPrefix(p.TargetRefName, "refs/heads/")},
		Created: p.CreationDate.Time,
	}
	if p.CreatedBy != nil {
		out.Author = forge.Actor{Login: p.CreatedBy.UniqueName, Name: p.CreatedBy.DisplayName}
	}
	if p.LastMergeSourceCommit != nil {
		out.Source.SHA = p.LastMergeSourceCommit.CommitID
	}
	if p.LastMergeTargetCommit != nil {
		out.Target.SHA = p.LastMergeTargetCommit.CommitID
	}
	switch p.Status {
	case "completed":
		out.State = forge.PullRequestStateMerged
		if p.LastMergeCommit != nil {
			out.MergeSHA = p.LastMergeCommit.CommitID
		}
	case "abandoned":
		out.State = forge.PullRequestStateClosed
	}
	web := repo.WebURL
	if p.Repository != nil && p.Repository.WebURL != "" {
		web = withoutUserinfo(p.Repository.WebURL)
	}
	if web != "" {
		out.URL = strings.TrimSuffix(web, "/") + "/pullrequest/" + fmt.Sprint(p.PullRequestID)
	}
	return out
}

// CreatePullRequest opens a pull request from pr.Source into pr.Target (POST
// …/pullrequests), as the acting person when as is set.
func (c *Client) CreatePullRequest(ctx context.Context, repo forge.Repository, pr forge.NewPullRequest, as *forge.UserCredential) (forge.PullRequest, error) {
	src, tgt := strings.TrimPrefix(pr.Source, "refs/heads/"), strings.TrimPrefix(pr.Target, "refs/heads/")
	if pr.Title == "" || src == "" || tgt == "" {
		return forge.PullRequest{}, fmt.Errorf("create pull request on %s: a title, a source and a target branch are required", repo.FullName)
	}
	p, err := repoPath(repo, "")
	if err != nil {
		return forge.PullRequest{}, fmt.Errorf("create pull request on %s: %w", repo.FullName, err)
	}
	var out adoPull
	_, err = c.do(ctx, request{
		op:     fmt.Sprintf("create a pull request from %s into %s on %s", src, tgt, repo.FullName),
		method: http.MethodPost, path: p + "/pullrequests", token: actingToken(as),
		body: map[string]any{
			"sourceRefName": "refs/heads/" + src, "targetRefName": "refs/heads/" + tgt,
			"title": pr.Title, "description": pr.Body, "isDraft": pr.Draft,
		},
		out: &out,
	})
	if err != nil {
		return forge.PullRequest{}, err
	}
	return out.toForge(repo), nil
}
