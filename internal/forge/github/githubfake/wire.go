package githubfake

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// The JSON shapes below follow the schemas of GitHub's REST description (simple-user,
// repository, hook, installation, integration, pull-request, …): every property the
// description requires is present, with null where GitHub sends null.

const docsURL = "https://docs.github.com/enterprise-server@3.17/rest"

type basicError struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
}

type validationError struct {
	Message          string            `json:"message"`
	DocumentationURL string            `json:"documentation_url"`
	Errors           []validationEntry `json:"errors,omitempty"`
}

type validationEntry struct {
	Resource string `json:"resource"`
	Field    string `json:"field,omitempty"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
}

type userJSON struct {
	Login             string `json:"login"`
	ID                int64  `json:"id"`
	NodeID            string `json:"node_id"`
	AvatarURL         string `json:"avatar_url"`
	GravatarID        string `json:"gravatar_id"`
	URL               string `json:"url"`
	HTMLURL           string `json:"html_url"`
	FollowersURL      string `json:"followers_url"`
	FollowingURL      string `json:"following_url"`
	GistsURL          string `json:"gists_url"`
	StarredURL        string `json:"starred_url"`
	SubscriptionsURL  string `json:"subscriptions_url"`
	OrganizationsURL  string `json:"organizations_url"`
	ReposURL          string `json:"repos_url"`
	EventsURL         string `json:"events_url"`
	ReceivedEventsURL string `json:"received_events_url"`
	Type              string `json:"type"`
	SiteAdmin         bool   `json:"site_admin"`
}

type planJSON struct {
	Collaborators int    `json:"collaborators"`
	Name          string `json:"name"`
	Space         int    `json:"space"`
	PrivateRepos  int    `json:"private_repos"`
}

// privateUserJSON is GET /user: the authenticated user's own view (schema private-user).
type privateUserJSON struct {
	userJSON
	Name              *string  `json:"name"`
	Company           *string  `json:"company"`
	Blog              *string  `json:"blog"`
	Location          *string  `json:"location"`
	Email             *string  `json:"email"`
	Hireable          *bool    `json:"hireable"`
	Bio               *string  `json:"bio"`
	TwitterUsername   *string  `json:"twitter_username"`
	PublicRepos       int      `json:"public_repos"`
	PublicGists       int      `json:"public_gists"`
	Followers         int      `json:"followers"`
	Following         int      `json:"following"`
	CreatedAt         string   `json:"created_at"`
	UpdatedAt         string   `json:"updated_at"`
	PrivateGists      int      `json:"private_gists"`
	TotalPrivateRepos int      `json:"total_private_repos"`
	OwnedPrivateRepos int      `json:"owned_private_repos"`
	DiskUsage         int      `json:"disk_usage"`
	Collaborators     int      `json:"collaborators"`
	TwoFactorAuth     bool     `json:"two_factor_authentication"`
	Plan              planJSON `json:"plan"`
}

type repoPermsJSON struct {
	Admin    bool `json:"admin"`
	Maintain bool `json:"maintain"`
	Push     bool `json:"push"`
	Triage   bool `json:"triage"`
	Pull     bool `json:"pull"`
}

type repoJSON struct {
	ID               int64          `json:"id"`
	NodeID           string         `json:"node_id"`
	Name             string         `json:"name"`
	FullName         string         `json:"full_name"`
	Owner            userJSON       `json:"owner"`
	Private          bool           `json:"private"`
	HTMLURL          string         `json:"html_url"`
	Description      *string        `json:"description"`
	Fork             bool           `json:"fork"`
	URL              string         `json:"url"`
	ArchiveURL       string         `json:"archive_url"`
	AssigneesURL     string         `json:"assignees_url"`
	BlobsURL         string         `json:"blobs_url"`
	BranchesURL      string         `json:"branches_url"`
	CollaboratorsURL string         `json:"collaborators_url"`
	CommentsURL      string         `json:"comments_url"`
	CommitsURL       string         `json:"commits_url"`
	CompareURL       string         `json:"compare_url"`
	ContentsURL      string         `json:"contents_url"`
	ContributorsURL  string         `json:"contributors_url"`
	DeploymentsURL   string         `json:"deployments_url"`
	DownloadsURL     string         `json:"downloads_url"`
	EventsURL        string         `json:"events_url"`
	ForksURL         string         `json:"forks_url"`
	GitCommitsURL    string         `json:"git_commits_url"`
	GitRefsURL       string         `json:"git_refs_url"`
	GitTagsURL       string         `json:"git_tags_url"`
	GitURL           string         `json:"git_url"`
	IssueCommentURL  string         `json:"issue_comment_url"`
	IssueEventsURL   string         `json:"issue_events_url"`
	IssuesURL        string         `json:"issues_url"`
	KeysURL          string         `json:"keys_url"`
	LabelsURL        string         `json:"labels_url"`
	LanguagesURL     string         `json:"languages_url"`
	MergesURL        string         `json:"merges_url"`
	MilestonesURL    string         `json:"milestones_url"`
	NotificationsURL string         `json:"notifications_url"`
	PullsURL         string         `json:"pulls_url"`
	ReleasesURL      string         `json:"releases_url"`
	SSHURL           string         `json:"ssh_url"`
	StargazersURL    string         `json:"stargazers_url"`
	StatusesURL      string         `json:"statuses_url"`
	SubscribersURL   string         `json:"subscribers_url"`
	SubscriptionURL  string         `json:"subscription_url"`
	TagsURL          string         `json:"tags_url"`
	TeamsURL         string         `json:"teams_url"`
	TreesURL         string         `json:"trees_url"`
	CloneURL         string         `json:"clone_url"`
	MirrorURL        *string        `json:"mirror_url"`
	HooksURL         string         `json:"hooks_url"`
	SvnURL           string         `json:"svn_url"`
	Homepage         *string        `json:"homepage"`
	Language         *string        `json:"language"`
	ForksCount       int            `json:"forks_count"`
	StargazersCount  int            `json:"stargazers_count"`
	WatchersCount    int            `json:"watchers_count"`
	Size             int            `json:"size"`
	DefaultBranch    string         `json:"default_branch"`
	OpenIssuesCount  int            `json:"open_issues_count"`
	IsTemplate       bool           `json:"is_template"`
	Topics           []string       `json:"topics"`
	HasIssues        bool           `json:"has_issues"`
	HasProjects      bool           `json:"has_projects"`
	HasWiki          bool           `json:"has_wiki"`
	HasPages         bool           `json:"has_pages"`
	HasDownloads     bool           `json:"has_downloads"`
	Archived         bool           `json:"archived"`
	Disabled         bool           `json:"disabled"`
	Visibility       string         `json:"visibility"`
	PushedAt         string         `json:"pushed_at"`
	CreatedAt        string         `json:"created_at"`
	UpdatedAt        string         `json:"updated_at"`
	Permissions      *repoPermsJSON `json:"permissions,omitempty"`
	License          *struct{}      `json:"license"` // always null: the fake's repositories have none
	Forks            int            `json:"forks"`
	OpenIssues       int            `json:"open_issues"`
	Watchers         int            `json:"watchers"`
	// full-repository only (GET /repos/{owner}/{repo})
	SubscribersCount *int `json:"subscribers_count,omitempty"`
	NetworkCount     *int `json:"network_count,omitempty"`
}

type hookConfigJSON struct {
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	InsecureSSL string `json:"insecure_ssl"`
	Secret      string `json:"secret,omitempty"`
}

type hookResponseJSON struct {
	Code    *int    `json:"code"`
	Status  *string `json:"status"`
	Message *string `json:"message"`
}

type hookJSON struct {
	Type          string           `json:"type"`
	ID            int64            `json:"id"`
	Name          string           `json:"name"`
	Active        bool             `json:"active"`
	Events        []string         `json:"events"`
	Config        hookConfigJSON   `json:"config"`
	UpdatedAt     string           `json:"updated_at"`
	CreatedAt     string           `json:"created_at"`
	URL           string           `json:"url"`
	TestURL       string           `json:"test_url"`
	PingURL       string           `json:"ping_url"`
	DeliveriesURL string           `json:"deliveries_url"`
	LastResponse  hookResponseJSON `json:"last_response"`
}

type gitObjectJSON struct {
	Type string `json:"type"`
	SHA  string `json:"sha"`
	URL  string `json:"url"`
}

type gitRefJSON struct {
	Ref    string        `json:"ref"`
	NodeID string        `json:"node_id"`
	URL    string        `json:"url"`
	Object gitObjectJSON `json:"object"`
}

type branchCommitJSON struct {
	SHA string `json:"sha"`
	URL string `json:"url"`
}

type branchJSON struct {
	Name          string           `json:"name"`
	Commit        branchCommitJSON `json:"commit"`
	Protected     bool             `json:"protected"`
	ProtectionURL string           `json:"protection_url"`
}

type installationJSON struct {
	ID                  int64             `json:"id"`
	Account             userJSON          `json:"account"`
	RepositorySelection string            `json:"repository_selection"`
	AccessTokensURL     string            `json:"access_tokens_url"`
	RepositoriesURL     string            `json:"repositories_url"`
	HTMLURL             string            `json:"html_url"`
	AppID               int64             `json:"app_id"`
	AppSlug             string            `json:"app_slug"`
	TargetID            int64             `json:"target_id"`
	TargetType          string            `json:"target_type"`
	Permissions         map[string]string `json:"permissions"`
	Events              []string          `json:"events"`
	CreatedAt           string            `json:"created_at"`
	UpdatedAt           string            `json:"updated_at"`
	SingleFileName      *string           `json:"single_file_name"`
	SuspendedBy         *userJSON         `json:"suspended_by"`
	SuspendedAt         *string           `json:"suspended_at"`
}

type integrationJSON struct {
	ID                 int64             `json:"id"`
	Slug               string            `json:"slug"`
	NodeID             string            `json:"node_id"`
	Owner              userJSON          `json:"owner"`
	Name               string            `json:"name"`
	Description        *string           `json:"description"`
	ExternalURL        string            `json:"external_url"`
	HTMLURL            string            `json:"html_url"`
	CreatedAt          string            `json:"created_at"`
	UpdatedAt          string            `json:"updated_at"`
	Permissions        map[string]string `json:"permissions"`
	Events             []string          `json:"events"`
	InstallationsCount int               `json:"installations_count"`
}

// manifestAppJSON is the answer to a manifest conversion: the App with its credentials.
type manifestAppJSON struct {
	integrationJSON
	ClientID      string  `json:"client_id"`
	ClientSecret  string  `json:"client_secret"`
	WebhookSecret *string `json:"webhook_secret"`
	PEM           string  `json:"pem"`
}

type installationTokenJSON struct {
	Token               string            `json:"token"`
	ExpiresAt           string            `json:"expires_at"`
	Permissions         map[string]string `json:"permissions"`
	RepositorySelection string            `json:"repository_selection"`
	Repositories        []repoJSON        `json:"repositories,omitempty"`
}

type linkJSON struct {
	Href string `json:"href"`
}

type prLinksJSON struct {
	Comments       linkJSON `json:"comments"`
	Commits        linkJSON `json:"commits"`
	Statuses       linkJSON `json:"statuses"`
	HTML           linkJSON `json:"html"`
	Issue          linkJSON `json:"issue"`
	ReviewComments linkJSON `json:"review_comments"`
	ReviewComment  linkJSON `json:"review_comment"`
	Self           linkJSON `json:"self"`
}

type prRefJSON struct {
	Label string   `json:"label"`
	Ref   string   `json:"ref"`
	Repo  repoJSON `json:"repo"`
	SHA   string   `json:"sha"`
	User  userJSON `json:"user"`
}

type pullJSON struct {
	URL                 string      `json:"url"`
	ID                  int64       `json:"id"`
	NodeID              string      `json:"node_id"`
	HTMLURL             string      `json:"html_url"`
	DiffURL             string      `json:"diff_url"`
	PatchURL            string      `json:"patch_url"`
	IssueURL            string      `json:"issue_url"`
	CommitsURL          string      `json:"commits_url"`
	ReviewCommentsURL   string      `json:"review_comments_url"`
	ReviewCommentURL    string      `json:"review_comment_url"`
	CommentsURL         string      `json:"comments_url"`
	StatusesURL         string      `json:"statuses_url"`
	Number              int64       `json:"number"`
	State               string      `json:"state"`
	Locked              bool        `json:"locked"`
	Title               string      `json:"title"`
	User                userJSON    `json:"user"`
	Body                *string     `json:"body"`
	Labels              []struct{}  `json:"labels"`
	Milestone           *struct{}   `json:"milestone"`
	CreatedAt           string      `json:"created_at"`
	UpdatedAt           string      `json:"updated_at"`
	ClosedAt            *string     `json:"closed_at"`
	MergedAt            *string     `json:"merged_at"`
	MergeCommitSHA      *string     `json:"merge_commit_sha"`
	Assignee            *userJSON   `json:"assignee"`
	Assignees           []userJSON  `json:"assignees"`
	RequestedReviewers  []userJSON  `json:"requested_reviewers"`
	RequestedTeams      []struct{}  `json:"requested_teams"`
	Head                prRefJSON   `json:"head"`
	Base                prRefJSON   `json:"base"`
	Links               prLinksJSON `json:"_links"`
	AuthorAssociation   string      `json:"author_association"`
	AutoMerge           *struct{}   `json:"auto_merge"`
	Draft               bool        `json:"draft"`
	Merged              bool        `json:"merged"`
	Mergeable           *bool       `json:"mergeable"`
	MergeableState      string      `json:"mergeable_state"`
	MergedBy            *userJSON   `json:"merged_by"`
	Comments            int         `json:"comments"`
	ReviewComments      int         `json:"review_comments"`
	MaintainerCanModify bool        `json:"maintainer_can_modify"`
	Commits             int         `json:"commits"`
	Additions           int         `json:"additions"`
	Deletions           int         `json:"deletions"`
	ChangedFiles        int         `json:"changed_files"`
}

type rateJSON struct {
	Limit     int   `json:"limit"`
	Remaining int   `json:"remaining"`
	Reset     int64 `json:"reset"`
	Used      int   `json:"used"`
}

type rateOverviewJSON struct {
	Resources map[string]rateJSON `json:"resources"`
	Rate      rateJSON            `json:"rate"`
}

type metaJSON struct {
	VerifiablePasswordAuthentication bool     `json:"verifiable_password_authentication"`
	Hooks                            []string `json:"hooks"`
	Web                              []string `json:"web"`
	API                              []string `json:"api"`
	Git                              []string `json:"git"`
}

// ts formats a time as GitHub does: RFC 3339, UTC, whole seconds.
func ts(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

func nodeID(kind string, id int64) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "0%d:%s%d", len(kind), kind, id))
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// userJSON renders an account as a simple-user.
func (s *Server) userJSON(a *account) userJSON {
	api := s.API + "/users/" + url.PathEscape(a.login)
	return userJSON{
		Login:             a.login,
		ID:                a.id,
		NodeID:            nodeID(a.typ, a.id),
		AvatarURL:         s.URL + "/avatars/u/" + fmt.Sprint(a.id),
		GravatarID:        "",
		URL:               api,
		HTMLURL:           s.URL + "/" + url.PathEscape(a.login),
		FollowersURL:      api + "/followers",
		FollowingURL:      api + "/following{/other_user}",
		GistsURL:          api + "/gists{/gist_id}",
		StarredURL:        api + "/starred{/owner}{/repo}",
		SubscriptionsURL:  api + "/subscriptions",
		OrganizationsURL:  api + "/orgs",
		ReposURL:          api + "/repos",
		EventsURL:         api + "/events{/privacy}",
		ReceivedEventsURL: api + "/received_events",
		Type:              a.typ,
	}
}

func (s *Server) repoJSON(r *repo, perms *repoPermsJSON, full bool) repoJSON {
	api := s.API + "/repos/" + r.fullName()
	web := s.URL + "/" + r.fullName()
	host := strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://")
	j := repoJSON{
		ID:               r.id,
		NodeID:           nodeID("Repository", r.id),
		Name:             r.name,
		FullName:         r.fullName(),
		Owner:            s.userJSON(r.owner),
		Private:          r.visibility != "public",
		HTMLURL:          web,
		Description:      strPtr(r.description),
		Fork:             r.fork,
		URL:              api,
		ArchiveURL:       api + "/{archive_format}{/ref}",
		AssigneesURL:     api + "/assignees{/user}",
		BlobsURL:         api + "/git/blobs{/sha}",
		BranchesURL:      api + "/branches{/branch}",
		CollaboratorsURL: api + "/collaborators{/collaborator}",
		CommentsURL:      api + "/comments{/number}",
		CommitsURL:       api + "/commits{/sha}",
		CompareURL:       api + "/compare/{base}...{head}",
		ContentsURL:      api + "/contents/{+path}",
		ContributorsURL:  api + "/contributors",
		DeploymentsURL:   api + "/deployments",
		DownloadsURL:     api + "/downloads",
		EventsURL:        api + "/events",
		ForksURL:         api + "/forks",
		GitCommitsURL:    api + "/git/commits{/sha}",
		GitRefsURL:       api + "/git/refs{/sha}",
		GitTagsURL:       api + "/git/tags{/sha}",
		GitURL:           "git://" + host + "/" + r.fullName() + ".git",
		IssueCommentURL:  api + "/issues/comments{/number}",
		IssueEventsURL:   api + "/issues/events{/number}",
		IssuesURL:        api + "/issues{/number}",
		KeysURL:          api + "/keys{/key_id}",
		LabelsURL:        api + "/labels{/name}",
		LanguagesURL:     api + "/languages",
		MergesURL:        api + "/merges",
		MilestonesURL:    api + "/milestones{/number}",
		NotificationsURL: api + "/notifications{?since,all,participating}",
		PullsURL:         api + "/pulls{/number}",
		ReleasesURL:      api + "/releases{/id}",
		SSHURL:           "git@" + host + ":" + r.fullName() + ".git",
		StargazersURL:    api + "/stargazers",
		StatusesURL:      api + "/statuses/{sha}",
		SubscribersURL:   api + "/subscribers",
		SubscriptionURL:  api + "/subscription",
		TagsURL:          api + "/tags",
		TeamsURL:         api + "/teams",
		TreesURL:         api + "/git/trees{/sha}",
		CloneURL:         web + ".git",
		HooksURL:         api + "/hooks",
		SvnURL:           web,
		DefaultBranch:    r.defaultBranch,
		Topics:           []string{},
		HasIssues:        true,
		HasProjects:      true,
		HasWiki:          true,
		HasDownloads:     true,
		Archived:         r.archived,
		Visibility:       r.visibility,
		PushedAt:         ts(r.pushedAt),
		CreatedAt:        ts(r.createdAt),
		UpdatedAt:        ts(r.updatedAt),
		Permissions:      perms,
	}
	if full {
		zero := 0
		j.SubscribersCount, j.NetworkCount = &zero, &zero
	}
	return j
}

func (s *Server) hookJSON(r *repo, h *hook) hookJSON {
	api := fmt.Sprintf("%s/repos/%s/hooks/%d", s.API, r.fullName(), h.id)
	j := hookJSON{
		Type:          "Repository",
		ID:            h.id,
		Name:          "web",
		Active:        h.active,
		Events:        append([]string{}, h.events...),
		Config:        hookConfigJSON{URL: h.url, ContentType: h.contentType, InsecureSSL: h.insecureSSL},
		UpdatedAt:     ts(h.updatedAt),
		CreatedAt:     ts(h.createdAt),
		URL:           api,
		TestURL:       api + "/test",
		PingURL:       api + "/pings",
		DeliveriesURL: api + "/deliveries",
		LastResponse:  hookResponseJSON{Code: h.last.Code, Status: strPtr(h.last.Status), Message: strPtr(h.last.Message)},
	}
	if h.secret != "" {
		// GitHub masks a set secret; it cannot be read back.
		j.Config.Secret = "********"
	}
	return j
}

func (s *Server) installationJSON(in *installation) installationJSON {
	a := s.apps[in.appID]
	j := installationJSON{
		ID:                  in.id,
		Account:             s.userJSON(in.account),
		RepositorySelection: in.selection(),
		AccessTokensURL:     fmt.Sprintf("%s/app/installations/%d/access_tokens", s.API, in.id),
		RepositoriesURL:     s.API + "/installation/repositories",
		HTMLURL:             fmt.Sprintf("%s/settings/installations/%d", s.URL, in.id),
		AppID:               a.id,
		AppSlug:             a.slug,
		TargetID:            in.account.id,
		TargetType:          in.account.typ,
		Permissions:         a.permissions,
		Events:              append([]string{}, a.events...),
		CreatedAt:           ts(in.createdAt),
		UpdatedAt:           ts(in.createdAt),
	}
	if in.suspended {
		at := ts(in.suspendedAt)
		j.SuspendedAt = &at
		u := s.userJSON(in.account)
		j.SuspendedBy = &u
	}
	return j
}

func (s *Server) integrationJSON(a *app) integrationJSON {
	n := 0
	for _, in := range s.installs {
		if in.appID == a.id {
			n++
		}
	}
	return integrationJSON{
		ID:                 a.id,
		Slug:               a.slug,
		NodeID:             nodeID("Integration", a.id),
		Owner:              s.userJSON(a.owner),
		Name:               a.name,
		Description:        strPtr(a.description),
		ExternalURL:        a.homepage,
		HTMLURL:            s.URL + "/apps/" + a.slug,
		CreatedAt:          ts(a.createdAt),
		UpdatedAt:          ts(a.createdAt),
		Permissions:        a.permissions,
		Events:             append([]string{}, a.events...),
		InstallationsCount: n,
	}
}

func (s *Server) gitRefJSON(r *repo, ref, sha string) gitRefJSON {
	api := s.API + "/repos/" + r.fullName()
	return gitRefJSON{
		Ref:    ref,
		NodeID: base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("Ref:%d:%s", r.id, ref))),
		URL:    api + "/git/" + ref,
		Object: gitObjectJSON{Type: "commit", SHA: sha, URL: api + "/git/commits/" + sha},
	}
}

func (s *Server) pullJSON(r *repo, p *pull) pullJSON {
	api := fmt.Sprintf("%s/repos/%s", s.API, r.fullName())
	self := fmt.Sprintf("%s/pulls/%d", api, p.number)
	web := fmt.Sprintf("%s/%s/pull/%d", s.URL, r.fullName(), p.number)
	issue := fmt.Sprintf("%s/issues/%d", api, p.number)
	author := s.userJSON(p.author)
	repoJ := s.repoJSON(r, nil, false)
	owner := s.userJSON(r.owner)
	assoc := "CONTRIBUTOR"
	if p.author == r.owner {
		assoc = "OWNER"
	} else if _, ok := r.collaborators[strings.ToLower(p.author.login)]; ok {
		assoc = "COLLABORATOR"
	}
	return pullJSON{
		URL:                self,
		ID:                 p.id,
		NodeID:             nodeID("PullRequest", p.id),
		HTMLURL:            web,
		DiffURL:            web + ".diff",
		PatchURL:           web + ".patch",
		IssueURL:           issue,
		CommitsURL:         self + "/commits",
		ReviewCommentsURL:  self + "/comments",
		ReviewCommentURL:   api + "/pulls/comments{/number}",
		CommentsURL:        issue + "/comments",
		StatusesURL:        api + "/statuses/" + p.headSHA,
		Number:             p.number,
		State:              p.state,
		Title:              p.title,
		User:               author,
		Body:               strPtr(p.body),
		Labels:             []struct{}{},
		CreatedAt:          ts(p.createdAt),
		UpdatedAt:          ts(p.createdAt),
		Assignees:          []userJSON{},
		RequestedReviewers: []userJSON{},
		RequestedTeams:     []struct{}{},
		Head:               prRefJSON{Label: r.owner.login + ":" + p.head, Ref: p.head, Repo: repoJ, SHA: p.headSHA, User: owner},
		Base:               prRefJSON{Label: r.owner.login + ":" + p.base, Ref: p.base, Repo: repoJ, SHA: p.baseSHA, User: owner},
		Links: prLinksJSON{
			Comments: linkJSON{issue + "/comments"}, Commits: linkJSON{self + "/commits"},
			Statuses: linkJSON{api + "/statuses/" + p.headSHA}, HTML: linkJSON{web}, Issue: linkJSON{issue},
			ReviewComments: linkJSON{self + "/comments"}, ReviewComment: linkJSON{api + "/pulls/comments{/number}"},
			Self: linkJSON{self},
		},
		AuthorAssociation:   assoc,
		Draft:               p.draft,
		MergeableState:      "unknown",
		MaintainerCanModify: false,
		Commits:             1,
	}
}
