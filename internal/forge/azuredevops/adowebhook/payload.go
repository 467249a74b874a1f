package adowebhook

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// adoTime is a timestamp as Azure DevOps writes it: RFC 3339 with up to seven fractional
// digits ("2014-05-02T19:17:13.3309587Z"), sometimes without a zone ("0001-01-01T00:00:00",
// read as UTC). Anything else, and year 1, leave the zero time: a time is informative and the
// core falls back to the receipt time, so an odd value must not cost the event.
type adoTime struct{ time.Time }

// UnmarshalJSON never fails; see adoTime.
func (t *adoTime) UnmarshalJSON(b []byte) error {
	t.Time = time.Time{}
	var s string
	if json.Unmarshal(b, &s) != nil || s == "" {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999"} {
		if v, err := time.Parse(layout, s); err == nil {
			if v.Year() > 1 {
				t.Time = v.UTC()
			}
			return nil
		}
	}
	return nil
}

// identity is an IdentityRef: a person or group as Azure DevOps names them.
type identity struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	UniqueName  string `json:"uniqueName"`
}

// actor maps an identity: the login is its unique name (an account or UPN), the name its
// display name. Azure DevOps gives no separate e-mail address, so none is invented.
func (i *identity) actor() forge.Actor {
	if i == nil {
		return forge.Actor{}
	}
	return forge.Actor{Login: i.UniqueName, Name: i.DisplayName}
}

// project is a TeamProjectReference inside a repository.
type project struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Visibility string `json:"visibility"`
}

// repository is a GitRepository as deliveries describe it.
type repository struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Project       *project `json:"project"`
	DefaultBranch string   `json:"defaultBranch"`
	RemoteURL     string   `json:"remoteUrl"`
	WebURL        string   `json:"webUrl"`
}

func (r *repository) projectName() string {
	if r == nil || r.Project == nil {
		return ""
	}
	return r.Project.Name
}

// fullName is "project/name", the catalog's full name of an Azure DevOps repository.
func (r *repository) fullName() string {
	if r == nil {
		return ""
	}
	return r.projectName() + "/" + r.Name
}

// webURL is the repository's page: webUrl when sent, else the remote URL, which Azure DevOps
// serves as the same page to browsers.
func (r *repository) webURL() string {
	if r.WebURL != "" {
		return withoutUserinfo(r.WebURL)
	}
	return withoutUserinfo(r.RemoteURL)
}

// eventRepository maps the delivery's repository. A project is private unless Azure DevOps
// says it is public: that is the default, and deliveries often send no visibility (or
// "unchanged").
func (r *repository) eventRepository() *forge.EventRepository {
	if r == nil {
		return nil
	}
	return &forge.EventRepository{
		ID:            r.ID,
		FullName:      r.fullName(),
		Name:          r.Name,
		Owner:         r.projectName(),
		DefaultBranch: strings.TrimPrefix(r.DefaultBranch, "refs/heads/"),
		WebURL:        r.webURL(),
		CloneURL:      withoutUserinfo(r.RemoteURL),
		Private:       r.Project == nil || !strings.EqualFold(r.Project.Visibility, "public"),
	}
}

// withoutUserinfo drops the "org@" Azure DevOps puts in some remote URLs
// (https://org@dev.azure.com/org/project/_git/repo): a user name is no part of the address.
func withoutUserinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// userDate is a GitUserDate: a commit's author or committer.
type userDate struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Date  string `json:"date"`
}

// commit is a GitCommitRef of a push.
type commit struct {
	CommitID  string    `json:"commitId"`
	Author    *userDate `json:"author"`
	Committer *userDate `json:"committer"`
	Comment   string    `json:"comment"`
	URL       string    `json:"url"`
}

// refUpdate is one ref a push changed. Forced is set only where Azure DevOps says so.
type refUpdate struct {
	Name        string `json:"name"`
	OldObjectID string `json:"oldObjectId"`
	NewObjectID string `json:"newObjectId"`
	Forced      bool   `json:"forced"`
}

// pushResource is the resource of git.push.
type pushResource struct {
	Commits    []commit    `json:"commits"`
	RefUpdates []refUpdate `json:"refUpdates"`
	Repository *repository `json:"repository"`
	PushedBy   *identity   `json:"pushedBy"`
	Date       adoTime     `json:"date"`
}

// commitRef is a GitCommitRef reduced to its id.
type commitRef struct {
	CommitID string `json:"commitId"`
}

func (c *commitRef) id() string {
	if c == nil {
		return ""
	}
	return c.CommitID
}

// pullRequest is the resource of git.pullrequest.* (a GitPullRequest).
type pullRequest struct {
	Repository            *repository `json:"repository"`
	PullRequestID         int64       `json:"pullRequestId"`
	Status                string      `json:"status"`
	CreatedBy             *identity   `json:"createdBy"`
	ClosedBy              *identity   `json:"closedBy"`
	CreationDate          adoTime     `json:"creationDate"`
	ClosedDate            adoTime     `json:"closedDate"`
	Title                 string      `json:"title"`
	Description           string      `json:"description"`
	SourceRefName         string      `json:"sourceRefName"`
	TargetRefName         string      `json:"targetRefName"`
	MergeStatus           string      `json:"mergeStatus"`
	IsDraft               bool        `json:"isDraft"`
	LastMergeSourceCommit *commitRef  `json:"lastMergeSourceCommit"`
	LastMergeTargetCommit *commitRef  `json:"lastMergeTargetCommit"`
	LastMergeCommit       *commitRef  `json:"lastMergeCommit"`
	ForkSource            *struct {
		Repository *repository `json:"repository"`
	} `json:"forkSource"`
	Links *struct {
		Web *struct {
			Href string `json:"href"`
		} `json:"web"`
	} `json:"_links"`
}

// webURL is the pull request's page: _links.web when sent, else the repository's page
// followed by /pullrequest/{id}, as Azure DevOps addresses it.
func (p *pullRequest) webURL() string {
	if p.Links != nil && p.Links.Web != nil && p.Links.Web.Href != "" {
		return p.Links.Web.Href
	}
	if p.Repository == nil || p.Repository.webURL() == "" {
		return ""
	}
	return strings.TrimSuffix(p.Repository.webURL(), "/") + "/pullrequest/" + itoa(p.PullRequestID)
}

// notification is a delivery's body: the event and its resource.
type notification struct {
	SubscriptionID string          `json:"subscriptionId"`
	ID             string          `json:"id"`
	EventType      string          `json:"eventType"`
	Resource       json.RawMessage `json:"resource"`
	CreatedDate    adoTime         `json:"createdDate"`
}
