package giteafake

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The JSON shapes below follow Gitea 1.27.3's API description (User, Repository, Hook,
// Branch, PayloadCommit, PullRequest, PRBranchInfo, ServerVersion, APIError) and the payload
// structs of modules/structs/hook.go. Gitea sends null for some absent objects (a
// repository's parent, a pull request's milestone); the description does not declare them
// nullable, so the fake leaves them out.

type apiError struct {
	Message string   `json:"message"`
	URL     string   `json:"url"`
	Errors  []string `json:"errors,omitempty"`
}

type userJSON struct {
	ID                int64  `json:"id"`
	Login             string `json:"login"`
	LoginName         string `json:"login_name"`
	SourceID          int64  `json:"source_id"`
	FullName          string `json:"full_name"`
	Email             string `json:"email"`
	AvatarURL         string `json:"avatar_url"`
	HTMLURL           string `json:"html_url"`
	Language          string `json:"language"`
	IsAdmin           bool   `json:"is_admin"`
	LastLogin         string `json:"last_login"`
	Created           string `json:"created"`
	Restricted        bool   `json:"restricted"`
	Active            bool   `json:"active"`
	ProhibitLogin     bool   `json:"prohibit_login"`
	Location          string `json:"location"`
	Website           string `json:"website"`
	Description       string `json:"description"`
	Visibility        string `json:"visibility"`
	FollowersCount    int    `json:"followers_count"`
	FollowingCount    int    `json:"following_count"`
	StarredReposCount int    `json:"starred_repos_count"`
	// UserName repeats the login, as Gitea adds it for older clients.
	UserName string `json:"username"`
}

type permissionJSON struct {
	Admin bool `json:"admin"`
	Push  bool `json:"push"`
	Pull  bool `json:"pull"`
}

type internalTrackerJSON struct {
	EnableTimeTracker                bool `json:"enable_time_tracker"`
	AllowOnlyContributorsToTrackTime bool `json:"allow_only_contributors_to_track_time"`
	EnableIssueDependencies          bool `json:"enable_issue_dependencies"`
}

type repoJSON struct {
	ID                            int64                `json:"id"`
	Owner                         userJSON             `json:"owner"`
	Name                          string               `json:"name"`
	FullName                      string               `json:"full_name"`
	Description                   string               `json:"description"`
	Empty                         bool                 `json:"empty"`
	Private                       bool                 `json:"private"`
	Fork                          bool                 `json:"fork"`
	Template                      bool                 `json:"template"`
	Mirror                        bool                 `json:"mirror"`
	Size                          int64                `json:"size"`
	Language                      string               `json:"language"`
	LanguagesURL                  string               `json:"languages_url"`
	HTMLURL                       string               `json:"html_url"`
	URL                           string               `json:"url"`
	Link                          string               `json:"link"`
	SSHURL                        string               `json:"ssh_url"`
	CloneURL                      string               `json:"clone_url"`
	OriginalURL                   string               `json:"original_url"`
	Website                       string               `json:"website"`
	StarsCount                    int64                `json:"stars_count"`
	ForksCount                    int64                `json:"forks_count"`
	WatchersCount                 int64                `json:"watchers_count"`
	OpenIssuesCount               int64                `json:"open_issues_count"`
	OpenPRCounter                 int64                `json:"open_pr_counter"`
	ReleaseCounter                int64                `json:"release_counter"`
	DefaultBranch                 string               `json:"default_branch"`
	Archived                      bool                 `json:"archived"`
	CreatedAt                     string               `json:"created_at"`
	UpdatedAt                     string               `json:"updated_at"`
	ArchivedAt                    string               `json:"archived_at"`
	Permissions                   *permissionJSON      `json:"permissions,omitempty"`
	HasIssues                     bool                 `json:"has_issues"`
	InternalTracker               *internalTrackerJSON `json:"internal_tracker,omitempty"`
	HasWiki                       bool                 `json:"has_wiki"`
	HasPullRequests               bool                 `json:"has_pull_requests"`
	HasProjects                   bool                 `json:"has_projects"`
	HasReleases                   bool                 `json:"has_releases"`
	HasPackages                   bool                 `json:"has_packages"`
	HasActions                    bool                 `json:"has_actions"`
	IgnoreWhitespaceConflicts     bool                 `json:"ignore_whitespace_conflicts"`
	AllowMergeCommits             bool                 `json:"allow_merge_commits"`
	AllowRebase                   bool                 `json:"allow_rebase"`
	AllowRebaseExplicit           bool                 `json:"allow_rebase_explicit"`
	AllowSquashMerge              bool                 `json:"allow_squash_merge"`
	AllowFastForwardOnlyMerge     bool                 `json:"allow_fast_forward_only_merge"`
	AllowRebaseUpdate             bool                 `json:"allow_rebase_update"`
	DefaultDeleteBranchAfterMerge bool                 `json:"default_delete_branch_after_merge"`
	DefaultMergeStyle             string               `json:"default_merge_style"`
	DefaultAllowMaintainerEdit    bool                 `json:"default_allow_maintainer_edit"`
	AvatarURL                     string               `json:"avatar_url"`
	Internal                      bool                 `json:"internal"`
	MirrorInterval                string               `json:"mirror_interval"`
	ObjectFormatName              string               `json:"object_format_name"`
	MirrorUpdated                 string               `json:"mirror_updated"`
	Topics                        []string             `json:"topics"`
	Licenses                      []string             `json:"licenses"`
}

type hookJSON struct {
	ID                  int64             `json:"id"`
	Type                string            `json:"type"`
	BranchFilter        string            `json:"branch_filter"`
	Config              map[string]string `json:"config"`
	Events              []string          `json:"events"`
	AuthorizationHeader string            `json:"authorization_header"`
	Active              bool              `json:"active"`
	UpdatedAt           string            `json:"updated_at"`
	CreatedAt           string            `json:"created_at"`
}

type payloadUserJSON struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	UserName string `json:"username"`
}

type verificationJSON struct {
	Verified  bool   `json:"verified"`
	Reason    string `json:"reason"`
	Signature string `json:"signature"`
	Payload   string `json:"payload"`
}

type payloadCommitJSON struct {
	ID           string           `json:"id"`
	Message      string           `json:"message"`
	URL          string           `json:"url"`
	Author       payloadUserJSON  `json:"author"`
	Committer    payloadUserJSON  `json:"committer"`
	Verification verificationJSON `json:"verification"`
	Timestamp    string           `json:"timestamp"`
	Added        []string         `json:"added"`
	Removed      []string         `json:"removed"`
	Modified     []string         `json:"modified"`
}

type branchJSON struct {
	Name                          string            `json:"name"`
	Commit                        payloadCommitJSON `json:"commit"`
	Protected                     bool              `json:"protected"`
	RequiredApprovals             int64             `json:"required_approvals"`
	EnableStatusCheck             bool              `json:"enable_status_check"`
	StatusCheckContexts           []string          `json:"status_check_contexts"`
	UserCanPush                   bool              `json:"user_can_push"`
	UserCanMerge                  bool              `json:"user_can_merge"`
	EffectiveBranchProtectionName string            `json:"effective_branch_protection_name"`
}

type prBranchJSON struct {
	Label  string   `json:"label"`
	Ref    string   `json:"ref"`
	SHA    string   `json:"sha"`
	RepoID int64    `json:"repo_id"`
	Repo   repoJSON `json:"repo"`
}

type pullJSON struct {
	ID                      int64        `json:"id"`
	URL                     string       `json:"url"`
	Number                  int64        `json:"number"`
	User                    userJSON     `json:"user"`
	Title                   string       `json:"title"`
	Body                    string       `json:"body"`
	Labels                  []struct{}   `json:"labels"`
	Assignees               []userJSON   `json:"assignees"`
	RequestedReviewers      []userJSON   `json:"requested_reviewers"`
	RequestedReviewersTeams []struct{}   `json:"requested_reviewers_teams"`
	State                   string       `json:"state"`
	Draft                   bool         `json:"draft"`
	IsLocked                bool         `json:"is_locked"`
	Comments                int64        `json:"comments"`
	ReviewComments          int64        `json:"review_comments"`
	Additions               int64        `json:"additions"`
	Deletions               int64        `json:"deletions"`
	ChangedFiles            int64        `json:"changed_files"`
	HTMLURL                 string       `json:"html_url"`
	DiffURL                 string       `json:"diff_url"`
	PatchURL                string       `json:"patch_url"`
	Mergeable               bool         `json:"mergeable"`
	Merged                  bool         `json:"merged"`
	MergedAt                *string      `json:"merged_at,omitempty"`
	MergeCommitSHA          *string      `json:"merge_commit_sha,omitempty"`
	MergedBy                *userJSON    `json:"merged_by,omitempty"`
	AllowMaintainerEdit     bool         `json:"allow_maintainer_edit"`
	Base                    prBranchJSON `json:"base"`
	Head                    prBranchJSON `json:"head"`
	MergeBase               string       `json:"merge_base"`
	CreatedAt               string       `json:"created_at"`
	UpdatedAt               string       `json:"updated_at"`
	ClosedAt                *string      `json:"closed_at,omitempty"`
	PinOrder                int64        `json:"pin_order"`
}

// ts formats a time as Gitea does: RFC 3339 in the server's zone, whole seconds.
func ts(t time.Time) string { return t.Truncate(time.Second).Format(time.RFC3339) }

// swaggerURL is what Gitea puts in the "url" of its errors.
func (s *Server) swaggerURL() string { return s.URL + "/api/swagger" }

func (s *Server) userJSON(a *account) userJSON {
	vis := "public"
	if a.org && a.private {
		vis = "private"
	}
	return userJSON{
		ID:         a.id,
		Login:      a.login,
		FullName:   a.fullName,
		Email:      a.email,
		AvatarURL:  fmt.Sprintf("%s/avatars/%x", s.URL, a.id),
		HTMLURL:    s.URL + "/" + url.PathEscape(a.login),
		Language:   "en-US",
		IsAdmin:    a.admin,
		LastLogin:  ts(a.created),
		Created:    ts(a.created),
		Active:     !a.org,
		Visibility: vis,
		UserName:   a.login,
	}
}

func (s *Server) repoJSON(r *repo, perm string) repoJSON {
	web := s.URL + "/" + r.fullName()
	host := strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://")
	j := repoJSON{
		ID:                        r.id,
		Owner:                     s.userJSON(r.owner),
		Name:                      r.name,
		FullName:                  r.fullName(),
		Description:               r.description,
		Empty:                     s.headOf(r) == "",
		Private:                   r.private,
		Fork:                      r.fork,
		LanguagesURL:              s.API + "/repos/" + r.fullName() + "/languages",
		HTMLURL:                   web,
		URL:                       s.API + "/repos/" + r.fullName(),
		SSHURL:                    "git@" + host + ":" + r.fullName() + ".git",
		CloneURL:                  web + ".git",
		OpenPRCounter:             int64(r.openPulls()),
		DefaultBranch:             r.defaultBranch,
		Archived:                  r.archived,
		CreatedAt:                 ts(r.created),
		UpdatedAt:                 ts(r.updated),
		ArchivedAt:                ts(time.Unix(0, 0).UTC()),
		HasIssues:                 true,
		InternalTracker:           &internalTrackerJSON{EnableTimeTracker: true, AllowOnlyContributorsToTrackTime: true, EnableIssueDependencies: true},
		HasWiki:                   true,
		HasPullRequests:           true,
		HasProjects:               true,
		HasReleases:               true,
		HasPackages:               true,
		HasActions:                true,
		AllowMergeCommits:         true,
		AllowRebase:               true,
		AllowRebaseExplicit:       true,
		AllowSquashMerge:          true,
		AllowFastForwardOnlyMerge: true,
		AllowRebaseUpdate:         true,
		DefaultMergeStyle:         "merge",
		AvatarURL:                 "",
		Internal:                  !r.private && r.owner.org && r.owner.private,
		MirrorInterval:            "",
		ObjectFormatName:          "sha1",
		MirrorUpdated:             ts(time.Time{}.UTC()),
		Topics:                    []string{},
		Licenses:                  []string{},
	}
	if perm != "" {
		j.Permissions = &permissionJSON{Admin: roles[perm] >= roles[permAdmin], Push: roles[perm] >= roles[permWrite], Pull: roles[perm] >= roles[permRead]}
	}
	return j
}

func (s *Server) hookJSON(h *hook) hookJSON {
	return hookJSON{
		ID:                  h.id,
		Type:                h.typ,
		BranchFilter:        h.branchFilter,
		Config:              map[string]string{"url": h.url, "content_type": h.contentType},
		Events:              h.eventsArray(),
		AuthorizationHeader: h.authHeader,
		Active:              h.active,
		UpdatedAt:           ts(h.updated),
		CreatedAt:           ts(h.created),
	}
}

func (s *Server) pullJSON(r *repo, p *pull) pullJSON {
	web := fmt.Sprintf("%s/%s/pulls/%d", s.URL, r.fullName(), p.number)
	rj := s.repoJSON(r, "")
	j := pullJSON{
		ID:                      p.id,
		URL:                     web,
		Number:                  p.number,
		User:                    s.userJSON(p.author),
		Title:                   p.title,
		Body:                    p.body,
		Labels:                  []struct{}{},
		Assignees:               []userJSON{},
		RequestedReviewers:      []userJSON{},
		RequestedReviewersTeams: []struct{}{},
		State:                   p.state,
		Draft:                   isWIP(p.title),
		HTMLURL:                 web,
		DiffURL:                 web + ".diff",
		PatchURL:                web + ".patch",
		Mergeable:               p.state == "open",
		Merged:                  p.merged,
		AllowMaintainerEdit:     false,
		Base:                    prBranchJSON{Label: p.base, Ref: p.base, SHA: p.baseSHA, RepoID: r.id, Repo: rj},
		Head:                    prBranchJSON{Label: p.head, Ref: p.head, SHA: p.headSHA, RepoID: r.id, Repo: rj},
		MergeBase:               p.baseSHA,
		CreatedAt:               ts(p.created),
		UpdatedAt:               ts(p.updated),
	}
	if p.state == "closed" {
		at := ts(p.closed)
		j.ClosedAt = &at
	}
	if p.merged {
		at, sha := ts(p.closed), p.mergeSHA
		j.MergedAt, j.MergeCommitSHA = &at, &sha
		by := s.userJSON(p.mergedBy)
		j.MergedBy = &by
	}
	return j
}

// isWIP reports a title Gitea reads as a draft (its default WORK_IN_PROGRESS_PREFIXES).
func isWIP(title string) bool {
	t := strings.ToUpper(strings.TrimSpace(title))
	return slices.ContainsFunc([]string{"WIP:", "[WIP]"}, func(p string) bool { return strings.HasPrefix(t, p) })
}
