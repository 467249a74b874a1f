// Package forge is the host-neutral contract between Forgeway's core and the Git hosts.
//
// It owns the domain types every host maps onto (Repository, Hook, PullRequest, Event) and
// the Driver interface each host package implements. The core (ingest, catalog, events,
// gitmirror, api) only ever talks to hosts through this package: when the core wants to
// branch on a host kind, the difference belongs here, as a method or an optional interface.
package forge

import (
	"errors"
	"fmt"
	"time"
)

// Kind names a host type.
type Kind string

// The host kinds Forgeway supports.
const (
	GitHub      Kind = "github"
	GitLab      Kind = "gitlab"
	BitbucketDC Kind = "bitbucket-dc"
	AzureDevOps Kind = "azure-devops"
	Gitea       Kind = "gitea"
)

// Kinds lists every host kind, in a stable order.
func Kinds() []Kind { return []Kind{GitHub, GitLab, BitbucketDC, AzureDevOps, Gitea} }

// Valid reports whether k is a known host kind.
func (k Kind) Valid() bool {
	for _, v := range Kinds() {
		if v == k {
			return true
		}
	}
	return false
}

// Actor is a person (or bot) as the host describes them. Fields the host does not send stay
// empty; they are never invented.
type Actor struct {
	Login string `json:"login"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Permission is what a credential may do on a repository.
type Permission string

// Permission levels, from least to most.
const (
	PermissionNone  Permission = ""
	PermissionRead  Permission = "read"
	PermissionWrite Permission = "write"
	PermissionAdmin Permission = "admin"
)

// Repository is a repository as a host lists it. HostID is the host's own, stable id: names
// change, the id does not.
type Repository struct {
	HostID        string     `json:"id"`
	FullName      string     `json:"full_name"`
	Name          string     `json:"name"`
	Owner         string     `json:"owner"`
	Group         string     `json:"group"` // org, group/subgroup, project key or Azure project
	DefaultBranch string     `json:"default_branch"`
	Visibility    string     `json:"visibility"` // public, private, internal
	Private       bool       `json:"private"`
	Archived      bool       `json:"archived"`
	Fork          bool       `json:"fork"`
	CloneURL      string     `json:"clone_url"`
	WebURL        string     `json:"web_url"`
	Permission    Permission `json:"permission"`
	Description   string     `json:"description"`
	// Installation is the GitHub App installation (or equivalent) the repository is reached
	// through; empty for token integrations.
	Installation string `json:"installation,omitempty"`
	// Extra holds host-specific identifiers a driver needs to address the repository again
	// (for example Azure DevOps' project id). The core stores it and hands it back untouched.
	Extra map[string]string `json:"extra,omitempty"`
}

// Hook is one webhook (or service-hook subscription) that Forgeway created on the host.
type Hook struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Events []string `json:"events,omitempty"`
	Active bool     `json:"active"`
	// Healthy is false when the host disabled the hook after failures.
	Healthy bool `json:"healthy"`
	// Note is the host's reason when a hook is unhealthy.
	Note string `json:"note,omitempty"`
}

// HookSpec is what Forgeway wants on the host for one attached repository.
type HookSpec struct {
	// URL is where the host must deliver (Forgeway's endpoint for this integration).
	URL string
	// Secret signs or authenticates deliveries; how depends on the host.
	Secret string
	// BasicAuthUser and BasicAuthPassword are for hosts that authenticate deliveries with
	// HTTP basic auth instead of a signature (Azure DevOps service hooks).
	BasicAuthUser     string
	BasicAuthPassword string
	// InsecureSkipTLS asks the host not to verify Forgeway's certificate (only when asked).
	InsecureSkipTLS bool
}

// Ref is a branch or tag.
type Ref struct {
	Name string `json:"name"` // full name: refs/heads/main
	SHA  string `json:"sha"`
}

// PullRequest is a pull (merge) request.
type PullRequest struct {
	Number   int64     `json:"number"`
	Title    string    `json:"title"`
	Body     string    `json:"body"`
	State    string    `json:"state"` // open, closed, merged
	Draft    bool      `json:"draft"`
	URL      string    `json:"url"`
	Author   Actor     `json:"author"`
	Source   RefAt     `json:"source"`
	Target   RefAt     `json:"target"`
	MergeSHA string    `json:"merge_sha,omitempty"`
	Created  time.Time `json:"created_at"`
}

// RefAt is one side of a pull request.
type RefAt struct {
	Ref                string `json:"ref"`
	SHA                string `json:"sha"`
	RepositoryFullName string `json:"repository_full_name,omitempty"`
}

// NewPullRequest is what CreatePullRequest needs.
type NewPullRequest struct {
	Title  string
	Body   string
	Source string // branch name, without refs/heads/
	Target string // branch name, without refs/heads/
	Draft  bool
}

// GitAuth is how git authenticates to the host for one operation. Header is a complete HTTP
// header line ("Authorization: Basic …") that gitmirror hands to that one git process through
// its environment; it never reaches a URL, a config file, an argument or a log.
type GitAuth struct {
	Header  string
	Expires time.Time // zero when the credential does not expire
}

// Check is one step of a diagnosis: what was checked, whether it passed, and what to do.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	Hint   string `json:"hint,omitempty"`
	// Warning marks a check that passed with a caveat (a token that expires soon, TLS
	// verification switched off).
	Warning bool `json:"warning,omitempty"`
}

// Budget is what the host says is left of a rate limit.
type Budget struct {
	Limit     int
	Remaining int
	Reset     time.Time
}

// Errors drivers return so that the core can react without knowing the host.
var (
	// ErrNotFound: the host says the object does not exist (or the credential cannot see it).
	ErrNotFound = errors.New("not found on the host")
	// ErrUnauthorized: the credential was refused (bad, expired or revoked).
	ErrUnauthorized = errors.New("the host refused the credential")
	// ErrForbidden: the credential is valid but lacks a permission or scope.
	ErrForbidden = errors.New("the credential lacks a permission")
	// ErrSignature: a delivery failed authentication.
	ErrSignature = errors.New("delivery signature or secret does not match")
	// ErrUnsupported: the driver does not offer the operation for this kind of credential.
	ErrUnsupported = errors.New("not supported by this host or credential")
	// ErrMalformed: a delivery body could not be parsed.
	ErrMalformed = errors.New("malformed delivery")
)

// RateLimitError says the host's budget is spent; retry at Reset.
type RateLimitError struct {
	Reset time.Time
	// Secondary marks GitHub-style abuse/secondary limits as opposed to the hourly budget.
	Secondary bool
	Detail    string
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("host rate limit reached; retry after %s: %s", e.Reset.UTC().Format(time.RFC3339), e.Detail)
}

// HostError is a failed host API call, kept with its status for diagnosis. It never carries a
// credential: drivers build it from the status line and the host's own message.
type HostError struct {
	Op      string // what was being done: "list repositories", "create hook"
	Status  int
	Message string
	Err     error // one of the sentinel errors above when it applies
}

func (e *HostError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s: %s", e.Op, e.Message)
	}
	return fmt.Sprintf("%s: host answered %d: %s", e.Op, e.Status, e.Message)
}

func (e *HostError) Unwrap() error { return e.Err }
