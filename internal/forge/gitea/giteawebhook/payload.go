package giteawebhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The payload shapes below follow Gitea's modules/structs (PushPayload, CreatePayload,
// DeletePayload, PullRequestPayload, RepositoryPayload); only the fields Normalize maps are
// decoded.

// intID is a Gitea numeric id kept as its decimal text: Gitea sends ids as JSON integers, and
// keeping the literal avoids float rounding and gives the string form the contract wants.
type intID string

// UnmarshalJSON accepts a JSON integer or null; anything else is a malformed payload.
func (id *intID) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*id = ""
		return nil
	}
	if _, err := strconv.ParseInt(string(b), 10, 64); err != nil {
		return fmt.Errorf("id %.40s is not an integer", b)
	}
	*id = intID(b)
	return nil
}

// giteaTime is an RFC 3339 timestamp as Gitea writes it ("2017-03-13T13:52:11-04:00"). A value
// in another form, null, or Go's zero time ("0001-01-01T00:00:00Z", Gitea's "never") leaves
// the zero time: the time is informative and the core falls back to the receipt time, so an
// odd value must not cost the event.
type giteaTime struct{ time.Time }

// UnmarshalJSON never fails; see giteaTime.
func (t *giteaTime) UnmarshalJSON(b []byte) error {
	t.Time = time.Time{}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	if v, err := time.Parse(time.RFC3339, s); err == nil && v.Year() > 1 {
		t.Time = v.UTC()
	}
	return nil
}

// user is a Gitea user or organization. Gitea sends the login as "login" and, for older
// clients, again as "username".
type user struct {
	Login    string `json:"login"`
	UserName string `json:"username"`
	FullName string `json:"full_name"`
	Email    string `json:"email"`
}

func (u *user) login() string {
	if u == nil {
		return ""
	}
	if u.Login != "" {
		return u.Login
	}
	return u.UserName
}

// repository is a payload's repository object.
type repository struct {
	ID            intID     `json:"id"`
	Name          string    `json:"name"`
	FullName      string    `json:"full_name"`
	Owner         *user     `json:"owner"`
	Private       bool      `json:"private"`
	Internal      bool      `json:"internal"`
	Fork          bool      `json:"fork"`
	Archived      bool      `json:"archived"`
	Description   string    `json:"description"`
	DefaultBranch string    `json:"default_branch"`
	HTMLURL       string    `json:"html_url"`
	CloneURL      string    `json:"clone_url"`
	CreatedAt     giteaTime `json:"created_at"`
	UpdatedAt     giteaTime `json:"updated_at"`
}

// commit is one commit of a push payload (PayloadCommit). The timestamp is kept as sent.
type commit struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	URL       string `json:"url"`
	Timestamp string `json:"timestamp"`
	Author    *struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"author"`
}

// branchInfo is the head or base of a pull request (PRBranchInfo).
type branchInfo struct {
	Ref  string `json:"ref"`
	SHA  string `json:"sha"`
	Repo *struct {
		FullName string `json:"full_name"`
	} `json:"repo"`
}

// pullRequest is a pull_request payload's pull_request object.
type pullRequest struct {
	Number         int64      `json:"number"`
	Title          string     `json:"title"`
	Body           string     `json:"body"`
	State          string     `json:"state"`
	Draft          bool       `json:"draft"`
	Merged         bool       `json:"merged"`
	HTMLURL        string     `json:"html_url"`
	User           *user      `json:"user"`
	Head           branchInfo `json:"head"`
	Base           branchInfo `json:"base"`
	MergeCommitSHA *string    `json:"merge_commit_sha"`
	UpdatedAt      giteaTime  `json:"updated_at"`
}

// payload holds the fields of every event Normalize maps. It is decoded only for those events;
// unknown events are not decoded past the envelope.
type payload struct {
	Action     string      `json:"action"`
	Repository *repository `json:"repository"`
	Sender     *user       `json:"sender"`

	// push
	Ref          string   `json:"ref"`
	Before       string   `json:"before"`
	After        string   `json:"after"`
	Commits      []commit `json:"commits"`
	TotalCommits *int     `json:"total_commits"`
	HeadCommit   *commit  `json:"head_commit"`
	Pusher       *user    `json:"pusher"`

	// create, delete
	RefType string `json:"ref_type"`
	SHA     string `json:"sha"`

	// pull_request
	Number      int64        `json:"number"`
	PullRequest *pullRequest `json:"pull_request"`
}
