package api

import (
	"encoding/json"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// The resources of the REST API. Field names are API: change them only additively.

// Integration is an integration as the API shows it. Secret values are never shown; Secrets
// lists which are set.
type Integration struct {
	ID            string            `json:"id"`
	Kind          string            `json:"kind"`
	Name          string            `json:"name"`
	BaseURL       string            `json:"base_url"`
	Status        string            `json:"status"`
	StatusNote    string            `json:"status_note,omitempty"`
	Settings      map[string]string `json:"settings"`
	Secrets       []string          `json:"secrets"`
	Filter        string            `json:"filter"`
	Schedule      string            `json:"schedule"`
	ProjectID     string            `json:"project_id,omitempty"`
	WebhookURL    string            `json:"webhook_url"`
	AppWebhookURL string            `json:"app_webhook_url,omitempty"`
	Rotating      bool              `json:"webhook_secret_rotating"`
	Installations []Installation    `json:"installations,omitempty"`
	Budget        *Budget           `json:"rate_limit,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

// Installation is where an App integration is installed.
type Installation struct {
	ID                  string `json:"id"`
	Account             string `json:"account"`
	AccountType         string `json:"account_type"`
	RepositorySelection string `json:"repository_selection"`
	Status              string `json:"status"`
}

// Budget is the host's rate-limit budget last seen.
type Budget struct {
	Limit     int       `json:"limit"`
	Remaining int       `json:"remaining"`
	Reset     time.Time `json:"reset"`
}

// IntegrationCreate is the body of POST /integrations.
type IntegrationCreate struct {
	Kind          string            `json:"kind"`
	Name          string            `json:"name"`
	BaseURL       string            `json:"base_url"`
	Settings      map[string]string `json:"settings"`
	Secrets       map[string]string `json:"secrets"`
	WebhookSecret string            `json:"webhook_secret"`
	Filter        string            `json:"filter"`
	Schedule      string            `json:"schedule"`
	ProjectID     string            `json:"project_id"`
	// Discover starts a first discovery at once (default true).
	Discover *bool `json:"discover"`
}

// IntegrationPatch is the body of PATCH /integrations/{id}. Absent fields keep their value;
// a settings or secrets key set to null (or "") is removed.
type IntegrationPatch struct {
	Name                *string            `json:"name"`
	BaseURL             *string            `json:"base_url"`
	Settings            map[string]*string `json:"settings"`
	Secrets             map[string]*string `json:"secrets"`
	Filter              *string            `json:"filter"`
	Schedule            *string            `json:"schedule"`
	RotateWebhookSecret *string            `json:"rotate_webhook_secret"` // "" generates one
	FinishRotation      bool               `json:"finish_rotation"`
}

// Diagnosis is the answer of POST /integrations/{id}/test.
type Diagnosis struct {
	OK     bool          `json:"ok"`
	Checks []forge.Check `json:"checks"`
}

// Repository is a catalog entry.
type Repository struct {
	ID            string            `json:"id"`
	IntegrationID string            `json:"integration_id"`
	HostID        string            `json:"host_id"`
	FullName      string            `json:"full_name"`
	Name          string            `json:"name"`
	Owner         string            `json:"owner"`
	Group         string            `json:"group"`
	DefaultBranch string            `json:"default_branch"`
	Visibility    string            `json:"visibility"`
	Private       bool              `json:"private"`
	Archived      bool              `json:"archived"`
	Fork          bool              `json:"fork"`
	CloneURL      string            `json:"clone_url"`
	WebURL        string            `json:"web_url"`
	Permission    string            `json:"permission"`
	Description   string            `json:"description,omitempty"`
	Installation  string            `json:"installation,omitempty"`
	Matched       bool              `json:"matched"`
	Attached      bool              `json:"attached"`
	HookStatus    string            `json:"hook_status,omitempty"`
	HookError     string            `json:"hook_error,omitempty"`
	Hooks         json.RawMessage   `json:"hooks,omitempty"`
	Mirror        *Mirror           `json:"mirror,omitempty"`
	Extra         map[string]string `json:"extra,omitempty"`
	SeenAt        time.Time         `json:"seen_at"`
}

// Mirror is an attached repository's mirror state.
type Mirror struct {
	Status    string     `json:"status"`
	Error     string     `json:"error,omitempty"`
	Head      string     `json:"head,omitempty"`
	SyncedAt  *time.Time `json:"synced_at,omitempty"`
	SyncCount int64      `json:"sync_count"`
}

// Delivery is a received webhook.
type Delivery struct {
	ID            string              `json:"id"`
	IntegrationID string              `json:"integration_id"`
	Kind          string              `json:"kind"`
	HostID        string              `json:"host_delivery_id"`
	Event         string              `json:"event"`
	Action        string              `json:"action,omitempty"`
	Status        string              `json:"status"`
	Reason        string              `json:"reason,omitempty"`
	Error         string              `json:"error,omitempty"`
	Test          bool                `json:"test,omitempty"`
	EventIDs      []string            `json:"event_ids"`
	ReceivedAt    time.Time           `json:"received_at"`
	ProcessedAt   *time.Time          `json:"processed_at,omitempty"`
	Headers       map[string][]string `json:"headers,omitempty"`
	Body          json.RawMessage     `json:"body,omitempty"`
	BodyText      string              `json:"body_text,omitempty"`
	Events        []json.RawMessage   `json:"events,omitempty"`
}

// Job is a unit of durable work (long actions answer 202 with one).
type Job struct {
	ID          int64           `json:"id"`
	Kind        string          `json:"kind"`
	State       string          `json:"state"`
	Attempt     int             `json:"attempt"`
	MaxAttempts int             `json:"max_attempts"`
	RunAt       time.Time       `json:"run_at"`
	LastError   string          `json:"last_error,omitempty"`
	Progress    json.RawMessage `json:"progress,omitempty"`
	Args        json.RawMessage `json:"args,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
}

// List is every list answer: items and the cursor of the next page ("" at the end).
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// BranchCreate is the body of POST /repositories/{id}/branches.
type BranchCreate struct {
	Name string `json:"name"`
	SHA  string `json:"sha"`  // default: the default branch's head
	User string `json:"user"` // act as this person (their stored credential)
}

// PullCreate is the body of POST /repositories/{id}/pulls.
type PullCreate struct {
	Title  string `json:"title"`
	Body   string `json:"body"`
	Source string `json:"source"`
	Target string `json:"target"` // default: the default branch
	Draft  bool   `json:"draft"`
	User   string `json:"user"`
}

// PushRequest is the body of POST /repositories/{id}/push.
type PushRequest struct {
	Refspecs []string `json:"refspecs"`
	User     string   `json:"user"`
}

// CredentialPut is the body of PUT /users/{user}/credentials/{integration}.
type CredentialPut struct {
	Token        string    `json:"token"`
	Login        string    `json:"login"`
	RefreshToken string    `json:"refresh_token"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// Credential says whether a person has a credential on an integration, and whose it is.
type Credential struct {
	User          string     `json:"user"`
	IntegrationID string     `json:"integration_id"`
	Login         string     `json:"login"`
	Set           bool       `json:"set"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// Token is an API token (its value is shown once, on creation).
type Token struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Admin     bool       `json:"admin"`
	ProjectID string     `json:"project_id,omitempty"`
	Token     string     `json:"token,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
}

// TokenCreate is the body of POST /tokens.
type TokenCreate struct {
	Name      string `json:"name"`
	Admin     bool   `json:"admin"`
	ProjectID string `json:"project_id"`
}

// Project is a tenant.
type Project struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// AppFlow is the answer of GET /integrations/{id}/{kind}/manifest and …/install: the URL a
// person opens in a browser to continue on the host.
type AppFlow struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}
