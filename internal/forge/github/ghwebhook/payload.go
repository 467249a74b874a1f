package ghwebhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/forgeway/forgeway/internal/jsontop"
)

// ghID is a GitHub numeric id kept as its decimal text. GitHub sends ids as JSON integers;
// keeping the literal avoids float rounding and gives the string form the contract wants.
type ghID string

// UnmarshalJSON accepts a JSON integer or null; anything else is a malformed payload.
func (id *ghID) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*id = ""
		return nil
	}
	if _, err := strconv.ParseUint(string(b), 10, 64); err != nil {
		return fmt.Errorf("id %.40s is not an unsigned integer", b)
	}
	*id = ghID(b)
	return nil
}

// ghTime is a timestamp as GitHub writes it: an RFC 3339 string in most payloads, Unix seconds
// in push payloads' repository and in installation objects. A value in neither form (or null)
// leaves the zero time: the time is informative, and the core falls back to the receipt time,
// so an odd format must not cost the event.
type ghTime struct{ time.Time }

// UnmarshalJSON never fails; see ghTime.
func (t *ghTime) UnmarshalJSON(b []byte) error {
	t.Time = time.Time{}
	if len(b) == 0 {
		return nil
	}
	if b[0] == '"' {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return nil
		}
		if v, err := time.Parse(time.RFC3339, s); err == nil {
			t.Time = v.UTC()
		}
		return nil
	}
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		t.Time = time.Unix(n, 0).UTC()
	}
	return nil
}

// account is a user or organization object, or a push payload's pusher / commit author.
type account struct {
	Login string `json:"login"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Type  string `json:"type"`
}

// repository is a payload's repository object; push payloads give an owner with name and
// login, Unix-second times and master_branch beside default_branch.
type repository struct {
	ID            ghID     `json:"id"`
	Name          string   `json:"name"`
	FullName      string   `json:"full_name"`
	Owner         *account `json:"owner"`
	Private       bool     `json:"private"`
	Visibility    string   `json:"visibility"`
	Fork          bool     `json:"fork"`
	Archived      bool     `json:"archived"`
	Description   string   `json:"description"`
	DefaultBranch string   `json:"default_branch"`
	MasterBranch  string   `json:"master_branch"`
	HTMLURL       string   `json:"html_url"`
	CloneURL      string   `json:"clone_url"`
	UpdatedAt     ghTime   `json:"updated_at"`
	PushedAt      ghTime   `json:"pushed_at"`
}

// installation is the installation object of App deliveries.
type installation struct {
	ID                  ghID     `json:"id"`
	Account             *account `json:"account"`
	RepositorySelection string   `json:"repository_selection"`
	UpdatedAt           ghTime   `json:"updated_at"`
}

// repoRef is an entry of installation payloads' repository lists.
type repoRef struct {
	ID       ghID   `json:"id"`
	Name     string `json:"name"`
	FullName string `json:"full_name"`
	Private  bool   `json:"private"`
}

// commit is one commit of a push payload.
type commit struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	URL       string `json:"url"`
	Author    struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"author"`
}

// prRef is the head or base of a pull request.
type prRef struct {
	Ref  string `json:"ref"`
	SHA  string `json:"sha"`
	Repo *struct {
		FullName string `json:"full_name"`
	} `json:"repo"`
}

// pullRequest is a pull_request payload's pull_request object.
type pullRequest struct {
	Number         int64    `json:"number"`
	Title          string   `json:"title"`
	Body           string   `json:"body"`
	State          string   `json:"state"`
	Draft          bool     `json:"draft"`
	Merged         bool     `json:"merged"`
	HTMLURL        string   `json:"html_url"`
	User           *account `json:"user"`
	Head           prRef    `json:"head"`
	Base           prRef    `json:"base"`
	MergeCommitSHA string   `json:"merge_commit_sha"`
	UpdatedAt      ghTime   `json:"updated_at"`
}

// payload holds the fields of every event Normalize maps. It is only decoded for those
// events, whose payloads GitHub documents; unknown events are not decoded past "action".
type payload struct {
	Action       string        `json:"action"`
	Repository   *repository   `json:"repository"`
	Sender       *account      `json:"sender"`
	Installation *installation `json:"installation"`

	// push
	Ref        string   `json:"ref"`
	Before     string   `json:"before"`
	After      string   `json:"after"`
	Created    bool     `json:"created"`
	Deleted    bool     `json:"deleted"`
	Forced     bool     `json:"forced"`
	Commits    []commit `json:"commits"`
	HeadCommit *struct {
		Timestamp ghTime `json:"timestamp"`
	} `json:"head_commit"`
	Pusher *account `json:"pusher"`

	// create, delete
	RefType string `json:"ref_type"`

	// pull_request
	Number      int64        `json:"number"`
	PullRequest *pullRequest `json:"pull_request"`

	// repository
	Changes json.RawMessage `json:"changes"`

	// installation, installation_repositories
	Repositories        []repoRef `json:"repositories"`
	RepositoriesAdded   []repoRef `json:"repositories_added"`
	RepositoriesRemoved []repoRef `json:"repositories_removed"`

	// ping
	Zen    string `json:"zen"`
	HookID ghID   `json:"hook_id"`
}

// envelope is the little Identify reads from any delivery. Each field is decoded on its own
// so that an event whose payload we do not model still identifies.
type envelope struct {
	Action         string
	InstallationID string
	HookAppID      string
}

// readEnvelope reads the envelope from a JSON object. It fails only when the document is not
// a JSON object; fields of an unexpected type are left empty.
func readEnvelope(doc []byte) (envelope, error) {
	// Only three top-level fields matter here: validate the payload in one pass and pick
	// them out, without decoding the rest (decoding was a fifth of ingest's CPU).
	m, err := jsontop.Members(doc, "action", "installation", "hook")
	if err != nil {
		return envelope{}, err
	}
	var env envelope
	if m[0] != nil {
		_ = json.Unmarshal(m[0], &env.Action) // not a string: no action
	}
	var inst struct {
		ID ghID `json:"id"`
	}
	if m[1] != nil && json.Unmarshal(m[1], &inst) == nil {
		env.InstallationID = string(inst.ID)
	}
	var hook struct {
		AppID ghID `json:"app_id"`
	}
	if m[2] != nil && json.Unmarshal(m[2], &hook) == nil {
		env.HookAppID = string(hook.AppID)
	}
	return env, nil
}
