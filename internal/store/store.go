// Package store is Forgeway's persistence contract: the records it keeps and the Store
// interface that the SQLite and PostgreSQL implementations (store/sqlstore, selected by
// store.Open) satisfy. One test suite (store/storetest) runs against both.
//
// Secret values never reach this package in the clear: fields named *Enc hold ciphertext
// produced by package secrets; the store only moves bytes.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors the store returns; callers match them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
	// ErrLeaseLost: a job's lease was taken over by another worker; its result is dropped.
	ErrLeaseLost = errors.New("job lease lost")
	// ErrBadCursor: a pagination cursor was not made by the store (bad input, a 400).
	ErrBadCursor = errors.New("invalid pagination cursor")
)

// Integration statuses.
const (
	StatusPending    = "pending"
	StatusInstalling = "installing"
	StatusActive     = "active"
	StatusSuspended  = "suspended"
	StatusError      = "error"
)

// Integration is one connection to one host with one credential.
type Integration struct {
	ID          string
	Kind        string
	Name        string
	BaseURL     string
	Status      string
	StatusNote  string            // why: the last error, "suspended on the host", …
	Settings    map[string]string // host-specific, non-secret
	SecretsEnc  []byte            // encrypted JSON map of host-specific secrets
	WebhookEnc  []byte            // encrypted current webhook secret
	WebhookPrev []byte            // encrypted previous webhook secret while rotating; nil otherwise
	Filter      string            // JMESPath expression; empty: every repository
	Schedule    string            // cron expression for discovery
	RouteKeys   []string          // keys host-level deliveries find this integration by
	ProjectID   string            // tenant; empty: none
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Installation is one place an App integration is installed.
type Installation struct {
	IntegrationID       string
	ID                  string // the host's installation id
	Account             string
	AccountType         string
	RepositorySelection string
	Status              string // active, suspended
	UpdatedAt           time.Time
}

// Repository is a catalog entry. It is keyed by (IntegrationID, HostID): names change, the
// host's id does not. ID is Forgeway's own id, used in the API.
type Repository struct {
	ID            string
	IntegrationID string
	HostID        string
	FullName      string
	Name          string
	Owner         string
	Group         string
	DefaultBranch string
	Visibility    string
	Private       bool
	Archived      bool
	Fork          bool
	CloneURL      string
	WebURL        string
	Permission    string
	Description   string
	Installation  string
	Extra         map[string]string
	// Matched is the result of the integration's filter when the entry was last written.
	Matched bool
	// Attached marks repositories the platform uses: hooks on the host, a mirror, an index.
	Attached   bool
	Hooks      json.RawMessage // the hooks Forgeway created on the host, as the driver returned them
	HookStatus string          // ok, missing, unhealthy, error; empty when not attached
	HookError  string
	Mirror     MirrorState
	SeenAt     time.Time // last time discovery or a delivery saw it on the host
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// MirrorState is the state of an attached repository's local mirror.
type MirrorState struct {
	Status    string // none, cloning, ready, error
	Error     string
	Head      string // the default branch's head in the mirror
	SyncedAt  time.Time
	SyncCount int64
}

// RepositoryFilter selects catalog entries.
type RepositoryFilter struct {
	IntegrationID string
	Query         string // substring of full_name
	Group         string
	Attached      *bool
	Matched       *bool
	Page
}

// Page is keyset pagination: After is an opaque cursor (empty for the first page).
type Page struct {
	After string
	Limit int
}

// Delivery statuses.
const (
	DeliveryReceived  = "received"
	DeliveryProcessed = "processed"
	DeliveryIgnored   = "ignored"
	DeliveryFailed    = "failed"
)

// Delivery is one inbound webhook request exactly as received.
type Delivery struct {
	ID            string // Forgeway's id
	IntegrationID string
	Kind          string
	HostID        string // the host's delivery id: the deduplication key
	Event         string
	Action        string
	Headers       map[string][]string // the headers that matter, secrets removed
	Body          []byte
	Status        string
	Reason        string // why ignored
	Error         string // why failed
	Attempts      int
	Test          bool
	EventIDs      []string
	ReceivedAt    time.Time
	ProcessedAt   time.Time
}

// DeliveryFilter selects deliveries.
type DeliveryFilter struct {
	IntegrationID string
	Status        string
	Page
}

// Event is a normalized event in the log. Seq orders the log; ID is the CloudEvents id.
type Event struct {
	Seq           int64
	ID            string
	IntegrationID string
	RepositoryID  string // the host's repository id, empty when none
	DeliveryID    string // Forgeway's delivery id
	Type          string
	Time          time.Time
	Document      json.RawMessage // the whole CloudEvents document
}

// EventFilter selects events. AfterSeq is exclusive.
type EventFilter struct {
	AfterSeq     int64
	Type         string // exact type, or a prefix ending in "." ("dev.forgeway.pull_request.")
	RepositoryID string
	// IntegrationID and DeliveryID narrow the log to one integration or one delivery.
	IntegrationID string
	DeliveryID    string
	Limit         int
}

// UserCredential is one person's own token on one integration, encrypted.
type UserCredential struct {
	IntegrationID string
	User          string // the platform's user id
	Login         string // the person's login on the host
	TokenEnc      []byte // encrypted JSON of the token, refresh token and their expiries
	Expires       time.Time
	UpdatedAt     time.Time
}

// APIToken is a hashed API token.
type APIToken struct {
	ID        string
	Name      string
	Hash      []byte // SHA-256 of the token; the token itself is never stored
	Admin     bool
	ProjectID string // scope; empty with Admin
	CreatedAt time.Time
	LastUsed  time.Time
}

// Project is a tenant of the platform.
type Project struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// PullRequestHead is the last source head seen for a pull request.
type PullRequestHead struct {
	IntegrationID string
	RepoHostID    string
	Number        int64
	SHA           string
}

// CacheEntry is one conditional-request cache entry (ETag and the body it validates).
type CacheEntry struct {
	IntegrationID string
	Key           string // method + URL + credential identity hash
	ETag          string
	LastModified  string
	Body          []byte
	Header        map[string][]string
	UpdatedAt     time.Time
}

// Subscription is a consumer's HTTP endpoint that events are pushed to (outbound delivery).
// Empty filter lists mean every value.
type Subscription struct {
	ID             string
	Name           string
	URL            string
	SecretEnc      []byte   // encrypted signing secret ("whsec_…")
	EventTypes     []string // exact types, or prefixes ending in "."
	IntegrationIDs []string
	RepositoryIDs  []string // the hosts' repository ids
	Disabled       bool
	// Cursor is the seq of the newest event already considered for this subscription: events
	// after it are still to be matched and queued.
	Cursor    int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Subscription attempt statuses.
const (
	AttemptPending   = "pending"   // not yet delivered: due at NextAt, or in flight
	AttemptDelivered = "delivered" // the consumer answered 2xx
	AttemptDead      = "dead"      // every retry failed; redelivered only by hand
)

// SubscriptionAttempt is the delivery of one event to one subscription, with its tries. N
// identifies it. Attempts of one Lane are sent in EventSeq order, one at a time.
type SubscriptionAttempt struct {
	N              int64
	SubscriptionID string
	EventSeq       int64
	EventID        string
	EventType      string
	Lane           string
	Status         string
	Tries          int // tries started so far
	NextAt         time.Time
	LeaseOwner     string
	LeaseUntil     time.Time
	ResponseStatus int    // the consumer's last HTTP status, 0 when it did not answer
	Error          string // why the last try failed
	CreatedAt      time.Time
	UpdatedAt      time.Time
	DeliveredAt    time.Time
}

// NewSubscriptionAttempt is an attempt to queue for an event.
type NewSubscriptionAttempt struct {
	EventSeq  int64
	EventID   string
	EventType string
	Lane      string
}

// SubscriptionAttemptFilter selects a subscription's attempts (newest first).
type SubscriptionAttemptFilter struct {
	SubscriptionID string
	Status         string
	Page
}

// AttemptOutcome is the result of one try of an attempt.
type AttemptOutcome struct {
	Delivered      bool
	Dead           bool      // no more tries: the attempt is dead-lettered
	NextAt         time.Time // when neither delivered nor dead: the next try
	ResponseStatus int
	Error          string
}

// Job states.
const (
	JobAvailable = "available" // waiting for RunAt
	JobRunning   = "running"
	JobCompleted = "completed"
	JobRetryable = "retryable" // failed, will run again at RunAt
	JobDead      = "dead"      // failed its last attempt; kept for inspection and retry by hand
	JobCancelled = "cancelled"
)

// Job is one unit of durable work.
type Job struct {
	ID          int64
	Kind        string
	Args        json.RawMessage
	UniqueKey   string // while a job with this key is pending (available/retryable), no other is inserted
	State       string
	Attempt     int // attempts started so far
	MaxAttempts int
	RunAt       time.Time
	LeaseOwner  string
	LeaseUntil  time.Time
	LastError   string
	Progress    json.RawMessage
	CreatedAt   time.Time
	FinishedAt  time.Time
}

// NewJob is a job to insert.
type NewJob struct {
	Kind        string
	Args        any // marshalled to JSON
	UniqueKey   string
	MaxAttempts int       // 0: the default (25)
	RunAt       time.Time // zero: now
}

// JobProcessDelivery is the kind of the job that processes stored deliveries (the events
// package runs it). It is written with every group commit, so the store indexes jobs by kind
// for the other kinds only and lists this one in id order (most of the table is of it).
const JobProcessDelivery = "delivery.process"

// DeliveryJobArgs are the args InsertDelivery gives a delivery's default processing job: the
// delivery's id, or, for a job shared by the deliveries committed together, their ids in the
// order they were committed.
type DeliveryJobArgs struct {
	DeliveryID  string   `json:"delivery_id,omitempty"`
	DeliveryIDs []string `json:"delivery_ids,omitempty"`
}

// IDs returns the deliveries the job is for.
func (a DeliveryJobArgs) IDs() []string {
	if a.DeliveryID != "" {
		return append([]string{a.DeliveryID}, a.DeliveryIDs...)
	}
	return a.DeliveryIDs
}

// JobFilter selects jobs for the API.
type JobFilter struct {
	State string
	Kind  string
	Page
}

// PruneResult counts what Prune deleted.
type PruneResult struct {
	Jobs, Deliveries, Events, CacheEntries, KV int64
}

// JobStats is the queue's depth by state, for metrics.
type JobStats map[string]int64

// Store is the persistence contract. Every method is safe for concurrent use. Methods that
// change several records do it in one transaction; Tx exposes that to callers that need
// their own.
type Store interface {
	// Tx runs fn in one transaction; if fn returns an error nothing it wrote is kept.
	Tx(ctx context.Context, fn func(tx Tx) error) error
	Tx

	// InsertDelivery writes a verified delivery and, when it is new, its
	// processing job, committing many concurrent callers together (group commit). It reports
	// whether it was new; a delivery whose (Kind, IntegrationID, HostID) is
	// already stored is a duplicate and writes nothing. It returns only once the rows are
	// durable. A job with nil Args, no UniqueKey and no RunAt is the delivery's default
	// processing job, with DeliveryJobArgs for args; deliveries committed together share one.
	InsertDelivery(ctx context.Context, d *Delivery, job NewJob) (inserted bool, err error)

	// ClaimJobs leases up to n due jobs of the given kinds (all kinds when empty) to owner
	// until now+lease, marks them running and increments their attempt. Two callers never
	// claim the same job while its lease holds.
	ClaimJobs(ctx context.Context, owner string, kinds []string, n int, lease time.Duration) ([]Job, error)
	// ExtendLease renews a running job's lease; ErrLeaseLost when owner no longer holds it.
	ExtendLease(ctx context.Context, id int64, owner string, lease time.Duration) error
	// Prune deletes what retention no longer keeps: finished jobs (completed, cancelled, dead)
	// and finished deliveries, with their events, from before cutoff; conditional-request
	// cache entries not refreshed since cutoff; Idempotency-Key answers and browser-flow states
	// older than a day. It works in small transactions, so it never holds the writer long.
	Prune(ctx context.Context, cutoff time.Time) (PruneResult, error)
	// Ping checks the database is reachable and migrated.
	Ping(ctx context.Context) error

	// ClaimSubscriptionAttempts leases to owner until now+lease up to n pending attempts
	// that are due (NextAt reached, no lease held) and first in their lane (no older pending
	// attempt of the same subscription and lane) of enabled subscriptions, and counts a try
	// on each. Two callers never hold the same attempt, nor two attempts of one lane.
	ClaimSubscriptionAttempts(ctx context.Context, owner string, n int, lease time.Duration) ([]SubscriptionAttempt, error)
	// FinishSubscriptionAttempt records a try's outcome and releases the lease; ErrLeaseLost
	// when owner no longer holds the attempt.
	FinishSubscriptionAttempt(ctx context.Context, n int64, owner string, out AttemptOutcome) error
	// PruneSubscriptionAttempts deletes delivered and dead attempts last changed before cutoff.
	PruneSubscriptionAttempts(ctx context.Context, cutoff time.Time) (int64, error)
	// Close releases the database.
	Close() error
}

// Tx is everything that can be done inside a transaction.
type Tx interface {
	// Integrations
	CreateIntegration(ctx context.Context, in *Integration) error
	GetIntegration(ctx context.Context, id string) (Integration, error)
	ListIntegrations(ctx context.Context) ([]Integration, error)
	// FindIntegrationByRoute returns the integrations of kind registered under routeKey.
	FindIntegrationsByRoute(ctx context.Context, kind, routeKey string) ([]Integration, error)
	UpdateIntegration(ctx context.Context, in *Integration) error
	DeleteIntegration(ctx context.Context, id string) error

	// Installations
	UpsertInstallation(ctx context.Context, in *Installation) error
	ListInstallations(ctx context.Context, integrationID string) ([]Installation, error)
	DeleteInstallation(ctx context.Context, integrationID, id string) error

	// Repositories. UpsertRepository keys on (IntegrationID, HostID) and keeps Forgeway's id,
	// the attachment, hooks and mirror state of an existing entry; it sets r.ID.
	UpsertRepository(ctx context.Context, r *Repository) error
	// UpsertRepositories is UpsertRepository for many entries of one integration in one
	// statement (a discovery page); it does not report the entries back.
	UpsertRepositories(ctx context.Context, rs []Repository) error
	GetRepository(ctx context.Context, id string) (Repository, error)
	GetRepositoryByHostID(ctx context.Context, integrationID, hostID string) (Repository, error)
	ListRepositories(ctx context.Context, f RepositoryFilter) (items []Repository, next string, err error)
	// UpdateRepositoryState writes the attachment, hooks and mirror fields of r.
	UpdateRepositoryState(ctx context.Context, r *Repository) error
	DeleteRepository(ctx context.Context, id string) error
	// DeleteRepositoriesNotSeen removes the unattached entries of an integration (of one
	// installation when installation is set) whose SeenAt is before cutoff, and returns the
	// attached ones left behind (the caller detaches them).
	DeleteRepositoriesNotSeen(ctx context.Context, integrationID, installation string, cutoff time.Time) (deleted int, attachedGone []Repository, err error)

	// Deliveries
	GetDelivery(ctx context.Context, id string) (Delivery, error)
	// GetDeliveries returns the stored deliveries among ids, in the order of ids; ids with no
	// delivery are left out.
	GetDeliveries(ctx context.Context, ids []string) ([]Delivery, error)
	ListDeliveries(ctx context.Context, f DeliveryFilter) (items []Delivery, next string, err error)
	// FinishDelivery records the outcome of processing: status, reason or error, event ids.
	FinishDelivery(ctx context.Context, d *Delivery) error

	// Events. AppendEvents ignores events whose ID is already stored (reprocessing is
	// idempotent) and sets Seq on the ones it writes.
	AppendEvents(ctx context.Context, evs []Event) error
	ListEvents(ctx context.Context, f EventFilter) ([]Event, error)

	// Pull request heads (for hosts that do not say whether a head moved)
	GetPullRequestHead(ctx context.Context, integrationID, repoHostID string, number int64) (string, bool, error)
	SetPullRequestHead(ctx context.Context, h PullRequestHead) error

	// User credentials
	PutUserCredential(ctx context.Context, c *UserCredential) error
	GetUserCredential(ctx context.Context, integrationID, user string) (UserCredential, error)
	DeleteUserCredential(ctx context.Context, integrationID, user string) error
	// DeleteUserCredentialsByLogin removes every credential of a host login on an integration.
	DeleteUserCredentialsByLogin(ctx context.Context, integrationID, login string) (int, error)
	ListUserCredentials(ctx context.Context, integrationID string) ([]UserCredential, error)

	// API tokens and projects
	CreateAPIToken(ctx context.Context, t *APIToken) error
	FindAPIToken(ctx context.Context, hash []byte) (APIToken, error)
	ListAPITokens(ctx context.Context) ([]APIToken, error)
	DeleteAPIToken(ctx context.Context, id string) error
	TouchAPIToken(ctx context.Context, id string, at time.Time) error
	CreateProject(ctx context.Context, p *Project) error
	ListProjects(ctx context.Context) ([]Project, error)

	// Conditional-request cache
	GetCacheEntry(ctx context.Context, integrationID, key string) (CacheEntry, error)
	PutCacheEntry(ctx context.Context, e *CacheEntry) error

	// Key/value settings (bootstrap markers, the scheduler's last runs, flow states)
	GetKV(ctx context.Context, key string) ([]byte, error)
	PutKV(ctx context.Context, key string, value []byte) error
	// PutKVIfAbsent writes only when the key is absent and reports whether it wrote.
	PutKVIfAbsent(ctx context.Context, key string, value []byte) (bool, error)
	DeleteKV(ctx context.Context, key string) error

	// Jobs. InsertJob returns the existing job, and inserted=false, when one with the same
	// UniqueKey is pending (available or retryable). A running job does not block a new one:
	// a push that arrives during a sync must cause another sync.
	InsertJob(ctx context.Context, j NewJob) (job Job, inserted bool, err error)
	GetJob(ctx context.Context, id int64) (Job, error)
	ListJobs(ctx context.Context, f JobFilter) (items []Job, next string, err error)
	// CompleteJob, FailJob and SetJobProgress act only while owner holds the lease
	// (ErrLeaseLost otherwise). FailJob moves the job to retryable at retryAt, or to dead
	// when it was the last attempt (or dead is true).
	CompleteJob(ctx context.Context, id int64, owner string) error
	FailJob(ctx context.Context, id int64, owner string, errMsg string, retryAt time.Time, dead bool) error
	SetJobProgress(ctx context.Context, id int64, owner string, progress json.RawMessage) error
	// RetryJob makes a dead or completed job available again now (by hand, from the API).
	RetryJob(ctx context.Context, id int64) error
	JobStats(ctx context.Context) (JobStats, error)
	// Subscriptions. CreateSubscription sets ID and timestamps, and Cursor to the newest
	// event in the log: a subscription receives the events that arrive after it. The
	// attempts of a deleted subscription go with it.
	CreateSubscription(ctx context.Context, s *Subscription) error
	GetSubscription(ctx context.Context, id string) (Subscription, error)
	ListSubscriptions(ctx context.Context) ([]Subscription, error)
	// UpdateSubscription writes every field of s but ID, Cursor and CreatedAt.
	UpdateSubscription(ctx context.Context, s *Subscription) error
	DeleteSubscription(ctx context.Context, id string) error
	// EnqueueSubscriptionAttempts queues attempts (pending, due now) for a subscription,
	// skipping events already queued for it, and moves its Cursor forward to cursor (never
	// back), in one transaction. It returns how many attempts it queued.
	EnqueueSubscriptionAttempts(ctx context.Context, subscriptionID string, atts []NewSubscriptionAttempt, cursor int64) (int, error)
	ListSubscriptionAttempts(ctx context.Context, f SubscriptionAttemptFilter) (items []SubscriptionAttempt, next string, err error)
	GetSubscriptionAttempt(ctx context.Context, subscriptionID string, n int64) (SubscriptionAttempt, error)
	// RedeliverSubscriptionAttempt makes an attempt pending again, due now, with its tries
	// reset (a dead-lettered or delivered one is sent again).
	RedeliverSubscriptionAttempt(ctx context.Context, subscriptionID string, n int64) (SubscriptionAttempt, error)

	// RewriteSecrets is used by key rotation: it calls fn with every encrypted value
	// (subscriptions' secrets included) and writes back what fn returns.
	RewriteSecrets(ctx context.Context, fn func(old []byte) ([]byte, error)) (int, error)
}

type relaxedKey struct{}

// WithRelaxedDurability marks the writes made with ctx as ones whose loss in a power failure
// costs only redoing work: job bookkeeping, and the results of jobs that a rerun reproduces
// (their effects are idempotent). They commit without waiting for the disk (SQLite
// synchronous=NORMAL, PostgreSQL synchronous_commit off), which is what lets one SQLite
// writer keep up with ingest. A delivery's commit is never relaxed: the host's 2xx promises it.
func WithRelaxedDurability(ctx context.Context) context.Context {
	return context.WithValue(ctx, relaxedKey{}, true)
}

// RelaxedDurability reports whether ctx was marked by WithRelaxedDurability.
func RelaxedDurability(ctx context.Context) bool {
	v, _ := ctx.Value(relaxedKey{}).(bool)
	return v
}
