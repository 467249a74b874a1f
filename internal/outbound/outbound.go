// Package outbound owns delivering events to subscribers: the subscriptions (a consumer's
// URL, its signing secret, its filters), queuing an attempt per matching event and
// subscriber, POSTing each event's CloudEvents document signed per Standard Webhooks,
// retrying on the schedule, dead-lettering, and redelivery by hand.
//
// It survives restarts and shares the work between replicas through the store: each
// subscription's cursor in the event log says which events were matched, attempts are unique
// per (subscription, event), and a try runs under a lease on the attempt. Attempts of one
// repository (a lane) go out one at a time in event order: an event is not sent while an
// older one of the same repository to the same subscriber is pending.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/events"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/secrets"
	"github.com/forgeway/forgeway/internal/store"
)

// DefaultSchedule is the delay before each retry after a failed try (Standard Webhooks'):
// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; a try failing after the last is dead-lettered.
var defaultSchedule = [...]time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// DefaultSchedule returns the retry delays of the specification (a copy).
func DefaultSchedule() []time.Duration { return slices.Clone(defaultSchedule[:]) }

// Defaults of Options.
const (
	DefaultTimeout = 15 * time.Second
	DefaultPoll    = time.Second
	DefaultWorkers = 8
)

// ErrInvalid marks bad subscription input (a 4xx); the message says which field and why.
var ErrInvalid = errors.New("invalid subscription")

// Options configures a Service. Zero values take the defaults shown.
type Options struct {
	Store store.Store
	Keys  *secrets.Keyring // seals signing secrets
	// Broker wakes the dispatcher when events are committed in this process. Optional:
	// without it (or for events committed by another replica) the poll finds them.
	Broker *events.Broker
	// Schedule is the delay before each retry. Default DefaultSchedule().
	Schedule []time.Duration
	// Timeout bounds one POST: no answer within it is a failed try. Default 15 s.
	Timeout time.Duration
	// Poll is how often the log and the queue are checked when nothing wakes the
	// dispatcher. Default 1 s.
	Poll time.Duration
	// Workers is how many POSTs run at once. Default 8.
	Workers int
	// Owner names this replica in attempt leases. Default: the host name.
	Owner string
	// Retention is how long delivered and dead attempts are kept; 0 keeps them.
	Retention time.Duration
	// Client sends the POSTs. Default: an http.Client that does not follow redirects.
	Client *http.Client
	Logger *slog.Logger
	Now    func() time.Time
}

// Service manages subscriptions and delivers events to them.
type Service struct {
	st   store.Store
	keys *secrets.Keyring
	o    Options
	log  *slog.Logger
	wake chan struct{}
}

// New returns a Service; call Run to deliver.
func New(o Options) *Service {
	if len(o.Schedule) == 0 {
		o.Schedule = DefaultSchedule()
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Owner == "" {
		o.Owner, _ = os.Hostname()
		o.Owner = "outbound-" + o.Owner
	}
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{st: o.Store, keys: o.Keys, o: o, log: o.Logger, wake: make(chan struct{}, 1)}
}

// Spec is what a subscription is made of, as a caller gives it.
type Spec struct {
	Name string
	URL  string
	// Secret is the signing secret ("whsec_<base64>"); empty: one is generated.
	Secret         string
	EventTypes     []string
	IntegrationIDs []string
	RepositoryIDs  []string
	Disabled       bool
}

// Patch changes a subscription; nil fields keep their value.
type Patch struct {
	Name           *string
	URL            *string
	EventTypes     *[]string
	IntegrationIDs *[]string
	RepositoryIDs  *[]string
	Disabled       *bool
	// RotateSecret replaces the signing secret; "" generates one.
	RotateSecret *string
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// validateURL accepts absolute http(s) URLs with a host and without userinfo or fragment.
func validateURL(raw string) error {
	if len(raw) > 2048 {
		return invalid("url is longer than 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("url is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalid("url must be http or https (got %q)", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return invalid("url has no host")
	}
	if u.User != nil {
		// Credentials in a URL end up in logs and process lists: the signature authenticates.
		return invalid("url must not carry a user name or password; consumers verify the signature instead")
	}
	if u.Fragment != "" {
		return invalid("url must not have a #fragment")
	}
	return nil
}

// actionPattern is the last part of a typed event under a prefix ("opened", "head_changed").
var actionPattern = regexp.MustCompile(`^[a-z][a-z_]*$`)

// validateType accepts the normalized event types, their families' prefixes ending in ".",
// the prefix of them all ("dev.forgeway."), and types under a family prefix.
func validateType(f string) error {
	exact := []string{forge.EventPush, forge.EventRefCreated, forge.EventRefDeleted, forge.EventAuthorizationRevoked, forge.EventPing}
	prefixes := []string{forge.EventPullRequestPrefix, forge.EventRepositoryPrefix, forge.EventInstallationPrefix}
	switch {
	case f == "dev.forgeway." || slices.Contains(exact, f) || slices.Contains(prefixes, f):
		return nil
	case f == "dev.forgeway.ref.":
		return nil
	}
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(f, p); ok && actionPattern.MatchString(rest) {
			return nil
		}
	}
	return invalid("unknown event type filter %q: use a type (dev.forgeway.push, dev.forgeway.pull_request.opened, …) or a prefix ending in \".\" (dev.forgeway.pull_request.)", f)
}

// cleanList trims entries, drops duplicates and refuses empty or overlong ones.
func cleanList(field string, in []string) ([]string, error) {
	if len(in) > 100 {
		return nil, invalid("%s has more than 100 entries", field)
	}
	var out []string
	for _, v := range in {
		v = strings.TrimSpace(v)
		if v == "" || len(v) > 200 {
			return nil, invalid("%s has an empty or overlong entry", field)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// validate checks and normalizes a subscription's fields (not its secret).
func (s *Service) validate(ctx context.Context, sub *store.Subscription) error {
	sub.Name = strings.TrimSpace(sub.Name)
	if len(sub.Name) > 200 {
		return invalid("name is longer than 200 characters")
	}
	if err := validateURL(sub.URL); err != nil {
		return err
	}
	var err error
	if sub.EventTypes, err = cleanList("event_types", sub.EventTypes); err != nil {
		return err
	}
	for _, f := range sub.EventTypes {
		if err := validateType(f); err != nil {
			return err
		}
	}
	if sub.IntegrationIDs, err = cleanList("integration_ids", sub.IntegrationIDs); err != nil {
		return err
	}
	for _, id := range sub.IntegrationIDs {
		if _, err := s.st.GetIntegration(ctx, id); errors.Is(err, store.ErrNotFound) {
			return invalid("integration_ids: no integration %s", id)
		} else if err != nil {
			return fmt.Errorf("check integration %s: %w", id, err)
		}
	}
	if sub.RepositoryIDs, err = cleanList("repository_ids", sub.RepositoryIDs); err != nil {
		return err
	}
	return nil
}

// sealSecret validates a given secret (or generates one) and seals it.
func (s *Service) sealSecret(given string) (secret string, sealed []byte, err error) {
	secret = given
	if secret == "" {
		secret = NewSecret()
	} else if err := ValidateSecret(secret); err != nil {
		return "", nil, invalid("secret: %v", err)
	}
	sealed, err = s.keys.Seal([]byte(secret))
	if err != nil {
		return "", nil, fmt.Errorf("seal subscription secret: %w", err)
	}
	return secret, sealed, nil
}

// Create validates spec and stores a subscription; it returns it and its signing secret (the
// only time the secret is shown). The subscription receives events committed after it.
func (s *Service) Create(ctx context.Context, spec Spec) (store.Subscription, string, error) {
	sub := store.Subscription{Name: spec.Name, URL: spec.URL, EventTypes: spec.EventTypes, IntegrationIDs: spec.IntegrationIDs,
		RepositoryIDs: spec.RepositoryIDs, Disabled: spec.Disabled}
	if err := s.validate(ctx, &sub); err != nil {
		return store.Subscription{}, "", err
	}
	secret, sealed, err := s.sealSecret(spec.Secret)
	if err != nil {
		return store.Subscription{}, "", err
	}
	sub.SecretEnc = sealed
	if err := s.st.CreateSubscription(ctx, &sub); err != nil {
		return store.Subscription{}, "", err
	}
	return sub, secret, nil
}

// Update applies p to subscription id. It returns the new secret when p rotated it, else "".
func (s *Service) Update(ctx context.Context, id string, p Patch) (store.Subscription, string, error) {
	sub, err := s.st.GetSubscription(ctx, id)
	if err != nil {
		return sub, "", err
	}
	if p.Name != nil {
		sub.Name = *p.Name
	}
	if p.URL != nil {
		sub.URL = *p.URL
	}
	if p.EventTypes != nil {
		sub.EventTypes = *p.EventTypes
	}
	if p.IntegrationIDs != nil {
		sub.IntegrationIDs = *p.IntegrationIDs
	}
	if p.RepositoryIDs != nil {
		sub.RepositoryIDs = *p.RepositoryIDs
	}
	if p.Disabled != nil {
		sub.Disabled = *p.Disabled
	}
	if err := s.validate(ctx, &sub); err != nil {
		return store.Subscription{}, "", err
	}
	secret := ""
	if p.RotateSecret != nil {
		if secret, sub.SecretEnc, err = s.sealSecret(*p.RotateSecret); err != nil {
			return store.Subscription{}, "", err
		}
	}
	if err := s.st.UpdateSubscription(ctx, &sub); err != nil {
		return store.Subscription{}, "", err
	}
	s.Wake()
	return sub, secret, nil
}

// Redeliver sends attempt n of subscription id again, now, with a fresh retry schedule.
func (s *Service) Redeliver(ctx context.Context, id string, n int64) (store.SubscriptionAttempt, error) {
	a, err := s.st.RedeliverSubscriptionAttempt(ctx, id, n)
	if err != nil {
		return a, err
	}
	s.Wake()
	return a, nil
}

// Wake makes the dispatcher look at the log and the queue now (without waiting for Poll).
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Matches reports whether an event passes a subscription's filters: each non-empty list must
// hold the event's type (exactly, or a prefix ending in "."), integration and repository.
func Matches(sub store.Subscription, ev store.Event) bool {
	if len(sub.EventTypes) > 0 && !slices.ContainsFunc(sub.EventTypes, func(f string) bool { return events.TypeMatches(f, ev.Type) }) {
		return false
	}
	if len(sub.IntegrationIDs) > 0 && !slices.Contains(sub.IntegrationIDs, ev.IntegrationID) {
		return false
	}
	if len(sub.RepositoryIDs) > 0 && !slices.Contains(sub.RepositoryIDs, ev.RepositoryID) {
		return false
	}
	return true
}

// Lane is the ordering key of an event's attempts: its integration and repository; an event
// of no repository is a lane of its own (nothing to keep it in order with).
func Lane(ev store.Event) string {
	if ev.RepositoryID == "" {
		return "event/" + ev.ID
	}
	return "repo/" + ev.IntegrationID + "/" + ev.RepositoryID
}
