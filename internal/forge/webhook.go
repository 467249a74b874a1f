package forge

import (
	"context"
	"net/http"
	"time"
)

// Delivery is one inbound webhook request exactly as received: the headers and the raw body
// that was verified. The ingest path alone owns HTTP; drivers see only these bytes.
type Delivery struct {
	Header     http.Header
	Body       []byte
	ReceivedAt time.Time
}

// DeliveryInfo is what a driver reads from a delivery before it is verified: enough to
// deduplicate it and find its integration. Nothing here may be trusted until Verify passes.
type DeliveryInfo struct {
	// ID is the host's delivery id (X-GitHub-Delivery, Idempotency-Key, X-Request-Id, …),
	// the deduplication key. Drivers derive a stable one from the body when the host sends
	// none, so that the same bytes always deduplicate.
	ID string
	// Event is the host's event name (X-GitHub-Event, X-Gitlab-Event, eventType, …).
	Event string
	// Action is the host's action word when it has one (opened, synchronize, …).
	Action string
	// RouteKeys find the integration for host-level endpoints (e.g. "app:12345").
	RouteKeys []string
	// Test marks a host's sample delivery (Azure DevOps' "Test" button).
	Test bool
}

// VerifyKeys are the secrets a delivery may be authenticated with.
type VerifyKeys struct {
	// Secrets holds the current webhook secret and, while rotating, the previous one.
	Secrets []string
	// Integration is the integration the delivery is addressed to, for hosts whose scheme
	// uses more than the webhook secret (basic-auth user and password, a signing token).
	Integration Integration
}

// Webhooks is the delivery side of a host.
type Webhooks interface {
	// MaxBodyBytes is the largest body the host sends; larger requests are refused.
	MaxBodyBytes() int64
	// Identify reads the delivery id, event name and route keys. It fails with ErrMalformed
	// when the request cannot be a delivery of this host.
	Identify(d Delivery) (DeliveryInfo, error)
	// Verify authenticates the delivery against keys, comparing in constant time. It returns
	// ErrSignature (wrapped with what was missing or wrong) when it fails.
	Verify(d Delivery, keys VerifyKeys) error
	// Normalize turns a verified delivery into normalized events and catalog effects. A
	// delivery with nothing to say gives a Result with Ignored set.
	Normalize(ctx context.Context, d Delivery, state State) (Result, error)
}

// State is what normalization may ask the core about the past.
type State interface {
	// PullRequestHead returns the source head last seen for a pull request, to tell
	// "new commits" from "edited" on hosts that do not say (Azure DevOps).
	PullRequestHead(ctx context.Context, repoHostID string, number int64) (sha string, ok bool, err error)
}

// Result is what one delivery means.
type Result struct {
	Events  []Event
	Effects []Effect
	// Ignored says why a delivery gave no event ("pull_request action labeled has no mapping").
	Ignored string
}

// Event types, as in spec/events.md.
const (
	EventPush                 = "dev.forgeway.push"
	EventRefCreated           = "dev.forgeway.ref.created"
	EventRefDeleted           = "dev.forgeway.ref.deleted"
	EventPullRequestPrefix    = "dev.forgeway.pull_request."
	EventRepositoryPrefix     = "dev.forgeway.repository."
	EventInstallationPrefix   = "dev.forgeway.installation."
	EventAuthorizationRevoked = "dev.forgeway.authorization.revoked"
	EventPing                 = "dev.forgeway.ping"
	ZeroSHA                   = "0000000000000000000000000000000000000000"
	RefTypeBranch             = "branch"
	RefTypeTag                = "tag"
	PullRequestStateOpen      = "open"
	PullRequestStateClosed    = "closed"
	PullRequestStateMerged    = "merged"
)

// Event is one normalized event before the core gives it its envelope (id, source,
// integration). Data is one of the *Data types below.
type Event struct {
	Type       string
	Subject    string    // refs/heads/main, pull_requests/12; empty otherwise
	Time       time.Time // when the host says it happened; zero: when received
	Repository *EventRepository
	Sender     Actor
	Data       any
}

// EventRepository is the repository object of every event's data.
type EventRepository struct {
	ID            string `json:"id"`
	FullName      string `json:"full_name"`
	Name          string `json:"name"`
	Owner         string `json:"owner"`
	DefaultBranch string `json:"default_branch"`
	WebURL        string `json:"web_url"`
	CloneURL      string `json:"clone_url"`
	Private       bool   `json:"private"`
}

// Commit is one commit of a push, as the host lists it.
type Commit struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	Author    Person `json:"author"`
	URL       string `json:"url"`
}

// Person is a commit author.
type Person struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// PushData is the data of dev.forgeway.push.
type PushData struct {
	Ref          string   `json:"ref"`
	RefType      string   `json:"ref_type"`
	Before       string   `json:"before"`
	After        string   `json:"after"`
	Created      bool     `json:"created"`
	Deleted      bool     `json:"deleted"`
	Forced       bool     `json:"forced"`
	Commits      []Commit `json:"commits"`
	TotalCommits int      `json:"total_commits"`
	Pusher       Actor    `json:"pusher"`
}

// RefData is the data of dev.forgeway.ref.created and .deleted.
type RefData struct {
	Ref     string `json:"ref"`
	RefType string `json:"ref_type"`
	SHA     string `json:"sha"`
}

// PullRequestData is the data of dev.forgeway.pull_request.*.
type PullRequestData struct {
	Number   int64  `json:"number"`
	Title    string `json:"title"`
	Body     string `json:"body"`
	State    string `json:"state"`
	Draft    bool   `json:"draft"`
	URL      string `json:"url"`
	Author   Actor  `json:"author"`
	Source   RefAt  `json:"source"`
	Target   RefAt  `json:"target"`
	MergeSHA string `json:"merge_sha,omitempty"`
	Action   string `json:"action"`
}

// RepositoryData is the data of dev.forgeway.repository.*.
type RepositoryData struct {
	Changes map[string]any `json:"changes"`
}

// InstallationData is the data of dev.forgeway.installation.*.
type InstallationData struct {
	Installation InstallationRef `json:"installation"`
	Repositories []RepositoryRef `json:"repositories,omitempty"`
}

// InstallationRef identifies an installation in event data.
type InstallationRef struct {
	ID                  string         `json:"id"`
	Account             InstallAccount `json:"account"`
	RepositorySelection string         `json:"repository_selection"`
}

// InstallAccount is the account an App is installed on.
type InstallAccount struct {
	Login string `json:"login"`
	Type  string `json:"type"`
}

// RepositoryRef is a repository named in installation events.
type RepositoryRef struct {
	ID       string `json:"id"`
	FullName string `json:"full_name"`
}

// AuthorizationData is the data of dev.forgeway.authorization.revoked.
type AuthorizationData struct {
	User struct {
		Login string `json:"login"`
	} `json:"user"`
}

// PingData is the data of dev.forgeway.ping.
type PingData struct {
	HookID string `json:"hook_id,omitempty"`
	Zen    string `json:"zen,omitempty"`
}

// Effect is a change to Forgeway's own state that a delivery implies, applied by the core
// in the same transaction as the events.
type Effect interface{ isEffect() }

// InstallationChanged: an App installation was created, suspended, unsuspended or deleted.
type InstallationChanged struct {
	Installation Installation
	Status       string // active, suspended, deleted
}

// RepositoriesAdded: an installation gained repositories. Entries may carry only the id and
// full name; the core refreshes them from the host.
type RepositoriesAdded struct {
	Installation string
	Repositories []Repository
}

// RepositoriesRemoved: an installation lost repositories.
type RepositoriesRemoved struct {
	Installation string
	HostIDs      []string
}

// RepositoryChanged: a repository was created, renamed, transferred or edited; upsert it.
type RepositoryChanged struct{ Repository Repository }

// RepositoryDeleted: a repository is gone from the host.
type RepositoryDeleted struct{ HostID string }

// UserCredentialRevoked: a person revoked the app's authorization.
type UserCredentialRevoked struct{ Login string }

func (InstallationChanged) isEffect()   {}
func (RepositoriesAdded) isEffect()     {}
func (RepositoriesRemoved) isEffect()   {}
func (RepositoryChanged) isEffect()     {}
func (RepositoryDeleted) isEffect()     {}
func (UserCredentialRevoked) isEffect() {}

// Common secret keys. Drivers keep their own keys beside these.
const (
	// SecretWebhook is the key under which a driver returns a webhook secret it learned
	// from the host (a GitHub App's, from the manifest conversion).
	SecretWebhook = "webhook_secret"
)
