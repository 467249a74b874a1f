// Package integrations owns integrations as the core sees them: creating one through its
// host's driver, sealing and opening its secrets, and handing out one live forge.Client per
// integration (with its own rate-limited, caching HTTP client). It also keeps people's own
// credentials (user credentials), renewing them before they expire.
//
// It never branches on the host kind: everything host-specific is asked of the forge.Driver.
package integrations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/hostclient"
	"github.com/forgeway/forgeway/internal/secrets"
	"github.com/forgeway/forgeway/internal/store"
)

// Settings keys the core itself reads from an integration (beside the driver's own).
const (
	SettingCABundle        = "ca_bundle"          // PEM trusted for API calls and git
	SettingInsecureSkipTLS = "insecure_skip_tls"  // "true" to skip TLS verification (warned about)
	SettingRateReserve     = "rate_limit_reserve" // requests kept in reserve before the reset
)

// Defaults for new integrations.
const (
	DefaultSchedule    = "0 2 * * *" // nightly at 02:00, like the seeds' cron job
	DefaultRateReserve = 100
)

// ErrInvalid wraps every error that comes from bad input, for the API's 4xx.
var ErrInvalid = errors.New("invalid integration")

// Service is the integration registry.
type Service struct {
	st        store.Store
	keys      *secrets.Keyring
	drivers   map[forge.Kind]forge.Driver
	publicURL string
	log       *slog.Logger
	observe   func(integrationID string, r hostclient.ObservedRequest)
	now       func() time.Time

	mu        sync.Mutex
	clients   map[string]*liveClient
	verifiers map[string]verifier
	routes    map[string]routeEntry
}

type liveClient struct {
	version time.Time
	client  forge.Client
	http    *hostclient.Client
}

// Options configures a Service.
type Options struct {
	Store     store.Store
	Keys      *secrets.Keyring
	Drivers   []forge.Driver
	PublicURL string // Forgeway's externally reachable base URL, for webhook URLs
	Logger    *slog.Logger
	// Observe receives every host request, for metrics. Optional.
	Observe func(integrationID string, r hostclient.ObservedRequest)
	Now     func() time.Time
}

// New returns a Service.
func New(o Options) *Service {
	s := &Service{
		st: o.Store, keys: o.Keys, drivers: map[forge.Kind]forge.Driver{},
		publicURL: strings.TrimRight(o.PublicURL, "/"), log: o.Logger, observe: o.Observe,
		now: o.Now, clients: map[string]*liveClient{}, verifiers: map[string]verifier{},
		routes: map[string]routeEntry{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, d := range o.Drivers {
		s.drivers[d.Kind()] = d
	}
	return s
}

// Driver returns the driver of a host kind.
func (s *Service) Driver(kind string) (forge.Driver, error) {
	d, ok := s.drivers[forge.Kind(kind)]
	if !ok {
		return nil, fmt.Errorf("%w: unknown host kind %q (known: %s)", ErrInvalid, kind, strings.Join(s.KindNames(), ", "))
	}
	return d, nil
}

// KindNames lists the kinds with a driver.
func (s *Service) KindNames() []string {
	var out []string
	for _, k := range forge.Kinds() {
		if _, ok := s.drivers[k]; ok {
			out = append(out, string(k))
		}
	}
	return out
}

// Keys returns the keyring (for rotation).
func (s *Service) Keys() *secrets.Keyring { return s.keys }

// Store returns the store.
func (s *Service) Store() store.Store { return s.st }

// WebhookURL is where the host delivers for one integration.
func (s *Service) WebhookURL(in store.Integration) string {
	return s.publicURL + "/webhooks/" + in.Kind + "/" + in.ID
}

// AppWebhookURL is the host-level endpoint (GitHub App hooks).
func (s *Service) AppWebhookURL(kind string) string { return s.publicURL + "/webhooks/" + kind }

// PublicURL is Forgeway's external base URL.
func (s *Service) PublicURL() string { return s.publicURL }

// Input is what creating or changing an integration takes.
type Input struct {
	Kind          string
	Name          string
	BaseURL       string
	Settings      map[string]string
	Secrets       map[string]string
	WebhookSecret string // empty: generated
	Filter        string
	Schedule      string
	ProjectID     string
	Status        string
}

// Prepare validates in through its driver and returns the record to store, secrets sealed.
// validateFilter and validateSchedule are the catalog's and scheduler's own checks.
func (s *Service) Prepare(in Input, validate func(filter, schedule string) error) (store.Integration, error) {
	d, err := s.Driver(in.Kind)
	if err != nil {
		return store.Integration{}, err
	}
	if strings.TrimSpace(in.Name) == "" {
		in.Name = in.Kind + " " + hostOf(in.BaseURL)
	}
	if in.Schedule == "" {
		in.Schedule = DefaultSchedule
	}
	if validate != nil {
		if err := validate(in.Filter, in.Schedule); err != nil {
			return store.Integration{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	fi := forge.Integration{BaseURL: in.BaseURL, Settings: copyMap(in.Settings), Secrets: copyMap(in.Secrets)}
	routes, err := d.Configure(&fi)
	if err != nil {
		return store.Integration{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if ws, ok := fi.Secrets[forge.SecretWebhook]; ok {
		if in.WebhookSecret == "" {
			in.WebhookSecret = ws
		}
		delete(fi.Secrets, forge.SecretWebhook)
	}
	if in.WebhookSecret == "" {
		in.WebhookSecret = randomSecret()
	}
	rec := store.Integration{
		Kind: in.Kind, Name: in.Name, BaseURL: fi.BaseURL, Status: in.Status,
		Settings: fi.Settings, Filter: in.Filter, Schedule: in.Schedule, RouteKeys: routes,
		ProjectID: in.ProjectID,
	}
	if rec.Status == "" {
		rec.Status = store.StatusPending
	}
	if err := s.sealInto(&rec, fi.Secrets, in.WebhookSecret); err != nil {
		return store.Integration{}, err
	}
	return rec, nil
}

func (s *Service) sealInto(rec *store.Integration, sec map[string]string, webhook string) error {
	raw, err := json.Marshal(sec)
	if err != nil {
		return fmt.Errorf("encode secrets: %w", err)
	}
	if rec.SecretsEnc, err = s.keys.Seal(raw); err != nil {
		return err
	}
	if rec.WebhookEnc, err = s.keys.Seal([]byte(webhook)); err != nil {
		return err
	}
	return nil
}

// Open decrypts an integration's secrets into the form drivers take, and returns the webhook
// secrets deliveries may be signed with (current first, then the previous one while rotating).
func (s *Service) Open(rec store.Integration) (forge.Integration, []string, error) {
	fi := forge.Integration{ID: rec.ID, BaseURL: rec.BaseURL, Settings: copyMap(rec.Settings), Secrets: map[string]string{}}
	raw, err := s.keys.Open(rec.SecretsEnc)
	if err != nil {
		return fi, nil, fmt.Errorf("open secrets of integration %s: %w", rec.ID, err)
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &fi.Secrets); err != nil {
			return fi, nil, fmt.Errorf("decode secrets of integration %s: %w", rec.ID, err)
		}
	}
	var hooks []string
	for _, enc := range [][]byte{rec.WebhookEnc, rec.WebhookPrev} {
		if len(enc) == 0 {
			continue
		}
		v, err := s.keys.Open(enc)
		if err != nil {
			return fi, nil, fmt.Errorf("open webhook secret of integration %s: %w", rec.ID, err)
		}
		hooks = append(hooks, string(v))
	}
	return fi, hooks, nil
}

// SecretKeys lists which secret keys an integration holds (never their values).
func (s *Service) SecretKeys(rec store.Integration) []string {
	fi, _, err := s.Open(rec)
	if err != nil {
		return nil
	}
	var out []string
	for k := range fi.Secrets {
		out = append(out, k)
	}
	return out
}

// ApplyChanges merges settings and secrets into an existing record (nil values keep, empty
// strings delete) and re-validates it through the driver.
func (s *Service) ApplyChanges(rec *store.Integration, settings, sec map[string]*string) error {
	d, err := s.Driver(rec.Kind)
	if err != nil {
		return err
	}
	fi, hooks, err := s.Open(*rec)
	if err != nil {
		return err
	}
	merge(fi.Settings, settings)
	merge(fi.Secrets, sec)
	fi.BaseURL = rec.BaseURL
	routes, err := d.Configure(&fi)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	delete(fi.Secrets, forge.SecretWebhook)
	rec.Settings, rec.RouteKeys, rec.BaseURL = fi.Settings, mergeRoutes(routes, rec.RouteKeys), fi.BaseURL
	cur := ""
	if len(hooks) > 0 {
		cur = hooks[0]
	}
	return s.sealInto(rec, fi.Secrets, cur)
}

// RotateWebhookSecret makes next the current webhook secret and keeps the old one accepted
// until the rotation is finished with FinishRotation.
func (s *Service) RotateWebhookSecret(rec *store.Integration, next string) error {
	if next == "" {
		next = randomSecret()
	}
	sealed, err := s.keys.Seal([]byte(next))
	if err != nil {
		return err
	}
	rec.WebhookPrev, rec.WebhookEnc = rec.WebhookEnc, sealed
	return nil
}

// mergeRoutes keeps installation routes learned from deliveries beside the driver's own.
func mergeRoutes(driver, existing []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range driver {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, r := range existing {
		if forge.IsInstallationRoute(r) && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// Client returns the live client of an integration, reusing it while the record is unchanged.
func (s *Service) Client(ctx context.Context, rec store.Integration) (forge.Client, error) {
	s.mu.Lock()
	lc, ok := s.clients[rec.ID]
	s.mu.Unlock()
	if ok && lc.version.Equal(rec.UpdatedAt) {
		return lc.client, nil
	}
	d, err := s.Driver(rec.Kind)
	if err != nil {
		return nil, err
	}
	fi, _, err := s.Open(rec)
	if err != nil {
		return nil, err
	}
	env, hc, err := s.env(rec)
	if err != nil {
		return nil, err
	}
	c, err := d.Open(ctx, fi, env)
	if err != nil {
		return nil, fmt.Errorf("open %s client for integration %s: %w", rec.Kind, rec.ID, err)
	}
	s.mu.Lock()
	s.clients[rec.ID] = &liveClient{version: rec.UpdatedAt, client: c, http: hc}
	s.mu.Unlock()
	return c, nil
}

// Env is what a driver is lent for one integration outside a Client (the App setup flows).
func (s *Service) Env(rec store.Integration) (forge.Env, error) {
	env, _, err := s.env(rec)
	return env, err
}

func (s *Service) env(rec store.Integration) (forge.Env, *hostclient.Client, error) {
	hc, err := s.httpClient(rec)
	if err != nil {
		return forge.Env{}, nil, err
	}
	id := rec.ID
	return forge.Env{
		HTTP: hc.HTTP(),
		Now:  s.now,
		SaveSecrets: func(ctx context.Context, updated map[string]string) error {
			return s.saveSecrets(ctx, id, updated)
		},
	}, hc, nil
}

// ClientByID loads the integration and returns its client.
func (s *Service) ClientByID(ctx context.Context, id string) (forge.Client, store.Integration, error) {
	rec, err := s.st.GetIntegration(ctx, id)
	if err != nil {
		return nil, rec, fmt.Errorf("load integration %s: %w", id, err)
	}
	c, err := s.Client(ctx, rec)
	return c, rec, err
}

// Forget drops what this process cached about an integration (its client, its opened
// secrets, the routes): call it after changing or deleting one.
func (s *Service) Forget(id string) {
	s.mu.Lock()
	delete(s.clients, id)
	delete(s.verifiers, id)
	clear(s.routes)
	s.mu.Unlock()
}

// Budget reports the last rate-limit budget seen for each integration with a live client.
func (s *Service) Budgets() map[string]forge.Budget {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]forge.Budget, len(s.clients))
	for id, lc := range s.clients {
		out[id] = lc.http.Budget()
	}
	return out
}

func (s *Service) httpClient(rec store.Integration) (*hostclient.Client, error) {
	reserve := DefaultRateReserve
	if v := rec.Settings[SettingRateReserve]; v != "" {
		if _, err := fmt.Sscan(v, &reserve); err != nil {
			return nil, fmt.Errorf("%w: %s must be a number", ErrInvalid, SettingRateReserve)
		}
	}
	id := rec.ID
	o := hostclient.Options{
		CABundle:        []byte(rec.Settings[SettingCABundle]),
		InsecureSkipTLS: rec.Settings[SettingInsecureSkipTLS] == "true",
		Reserve:         reserve,
		Cache:           storeCache{st: s.st},
		CacheScope:      rec.ID,
		Now:             s.now,
		UserAgent:       "Forgeway",
	}
	if s.observe != nil {
		o.Observer = func(r hostclient.ObservedRequest) { s.observe(id, r) }
	}
	hc, err := hostclient.New(o)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return hc, nil
}

func (s *Service) saveSecrets(ctx context.Context, id string, updated map[string]string) error {
	return s.st.Tx(ctx, func(tx store.Tx) error {
		rec, err := tx.GetIntegration(ctx, id)
		if err != nil {
			return err
		}
		fi, hooks, err := s.Open(rec)
		if err != nil {
			return err
		}
		for k, v := range updated {
			fi.Secrets[k] = v
		}
		cur := ""
		if len(hooks) > 0 {
			cur = hooks[0]
		}
		prev := rec.WebhookPrev
		if err := s.sealInto(&rec, fi.Secrets, cur); err != nil {
			return err
		}
		rec.WebhookPrev = prev
		return tx.UpdateIntegration(ctx, &rec)
	})
}

// storeCache adapts the store's conditional-request cache to hostclient.
type storeCache struct{ st store.Store }

func (c storeCache) Get(ctx context.Context, scope, key string) (hostclient.Entry, bool, error) {
	e, err := c.st.GetCacheEntry(ctx, scope, key)
	if errors.Is(err, store.ErrNotFound) {
		return hostclient.Entry{}, false, nil
	}
	if err != nil {
		return hostclient.Entry{}, false, err
	}
	return hostclient.Entry{ETag: e.ETag, LastModified: e.LastModified, Header: e.Header, Body: e.Body}, true, nil
}

func (c storeCache) Put(ctx context.Context, scope, key string, e hostclient.Entry) error {
	return c.st.PutCacheEntry(ctx, &store.CacheEntry{
		IntegrationID: scope, Key: key, ETag: e.ETag, LastModified: e.LastModified,
		Header: e.Header, Body: e.Body,
	})
}

func randomSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the OS has no entropy: nothing is safe
	}
	return hex.EncodeToString(b)
}

// RandomSecret returns 32 random bytes as hex, for generated secrets.
func RandomSecret() string { return randomSecret() }

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Host
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func merge(dst map[string]string, changes map[string]*string) {
	for k, v := range changes {
		switch {
		case v == nil:
		case *v == "":
			delete(dst, k)
		default:
			dst[k] = *v
		}
	}
}
