package forge

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Integration is what a driver is told about one connection: where the host is, the
// host-specific settings (non-secret) and the secrets, already decrypted. Drivers read
// their own keys from Settings and Secrets and document them in Fields.
type Integration struct {
	ID       string
	BaseURL  string // API base as the user entered it, e.g. https://github.example.com
	Settings map[string]string
	Secrets  map[string]string
}

// Field documents one key of an integration's settings or secrets for a host.
type Field struct {
	Key      string `json:"key"`
	Secret   bool   `json:"secret"`
	Required bool   `json:"required"`
	Help     string `json:"help"`
}

// Env is what the core lends a driver's client: an HTTP client already wrapped with rate
// limiting, conditional-request caching and the integration's TLS trust, a way to persist
// renewed secrets (refreshed OAuth tokens), and a clock.
type Env struct {
	HTTP *http.Client
	// SaveSecrets stores updated secret values for the integration (merged into the existing
	// ones). Drivers call it when a refresh rotates a token.
	SaveSecrets func(ctx context.Context, secrets map[string]string) error
	Now         func() time.Time
}

// Driver is the contract every host implements. A Driver is stateless and shared: everything
// about one integration arrives as arguments.
type Driver interface {
	// Kind names the host.
	Kind() Kind
	// Fields lists the settings and secrets an integration of this host takes.
	Fields() []Field
	// Configure checks and normalizes an integration before it is stored: required fields,
	// a parseable private key, a well-formed URL. It calls nothing on the network. It returns
	// the route keys under which host-level deliveries (not tied to one integration's URL)
	// find this integration, e.g. "app:12345" for a GitHub App.
	Configure(in *Integration) (routeKeys []string, err error)
	// Open returns a Client bound to one integration.
	Open(ctx context.Context, in Integration, env Env) (Client, error)
	// Webhooks returns the delivery side of the host.
	Webhooks() Webhooks
}

// Client is one integration's live connection to its host. Implementations renew
// short-lived credentials before each operation, so callers may hold a Client for long.
type Client interface {
	// Diagnose runs the host's checks (reachable, TLS, version, credential, scopes, listing)
	// and reports each, passed or failed with what to do. It never returns a credential.
	Diagnose(ctx context.Context) []Check
	// Repositories calls fn with every repository the credential can see, one page at a time,
	// in the host's order. It stops at the first error fn returns.
	Repositories(ctx context.Context, fn func(page []Repository) error) error
	// Repository fetches one repository by its host id; ErrNotFound when it is gone.
	Repository(ctx context.Context, hostID string, hint Repository) (Repository, error)
	// EnsureHooks makes the host deliver the repository's events to spec.URL: it creates the
	// hooks that are missing, updates those that differ, re-enables those the host disabled,
	// and returns all of them. Calling it again changes nothing on the host.
	EnsureHooks(ctx context.Context, repo Repository, spec HookSpec) ([]Hook, error)
	// RemoveHooks deletes every hook on the repository that delivers to url. A hook someone
	// already deleted is not an error.
	RemoveHooks(ctx context.Context, repo Repository, url string) error
	// Hooks lists the repository's hooks that deliver to url, with their health.
	Hooks(ctx context.Context, repo Repository, url string) ([]Hook, error)
	// GitAuth returns the credential git uses for one operation on repo, valid for at least
	// minValidity (zero: any). as, when set, is the acting person's own credential.
	GitAuth(ctx context.Context, repo Repository, as *UserCredential, minValidity time.Duration) (GitAuth, error)
	// CreateBranch creates refs/heads/name at sha, as the acting person when as is set.
	CreateBranch(ctx context.Context, repo Repository, name, sha string, as *UserCredential) (Ref, error)
	// Branches lists the repository's branches.
	Branches(ctx context.Context, repo Repository) ([]Ref, error)
	// CreatePullRequest opens a pull request, as the acting person when as is set.
	CreatePullRequest(ctx context.Context, repo Repository, pr NewPullRequest, as *UserCredential) (PullRequest, error)
	// Budget reports the rate-limit budget last seen for this client (zero when unknown).
	Budget() Budget
}

// UserCredential is one person's own token on one integration.
type UserCredential struct {
	User         string // the platform's user id
	Login        string // the person's login on the host
	Token        string
	RefreshToken string
	Expires      time.Time // zero when the token does not expire
}

// Installation is one place an App integration is installed (a GitHub App on an account).
type Installation struct {
	ID                  string `json:"id"`
	Account             string `json:"account"`
	AccountType         string `json:"account_type"`
	RepositorySelection string `json:"repository_selection"`
	Suspended           bool   `json:"suspended"`
}

// Installations is implemented by clients whose credential is installed in several places
// (GitHub Apps). Discovery then lists repositories per installation.
type Installations interface {
	Installations(ctx context.Context) ([]Installation, error)
}

// UserTokenRefresher is implemented by clients whose user credentials expire and can be
// renewed with a refresh token (GitHub App user tokens, GitLab OAuth).
type UserTokenRefresher interface {
	// RefreshUserToken renews cred; it returns the new credential to store.
	RefreshUserToken(ctx context.Context, cred UserCredential) (UserCredential, error)
}

// HookSecretRotator is implemented by clients whose hooks' secret cannot be read back, so
// that EnsureHooks cannot see it differ: RotateHookSecret sets spec.Secret on the repository's
// hooks to spec.URL (creating them when missing). It returns ErrUnsupported when the secret is
// not the repository's to set (a GitHub App's webhook secret lives in the App's settings).
type HookSecretRotator interface {
	RotateHookSecret(ctx context.Context, repo Repository, spec HookSpec) ([]Hook, error)
	// RotateIntegrationHook sets the secret of the integration-wide hook, when there is one
	// (a GitHub App's webhook): nil when there is none, ErrUnsupported when the API cannot.
	RotateIntegrationHook(ctx context.Context, spec HookSpec) error
}

// AppManifest is implemented by drivers that can create the host-side app for the user
// (GitHub's app-manifest flow).
type AppManifest interface {
	// ManifestForm returns the URL to POST the manifest to and the manifest JSON, for a
	// browser form that the user submits on the host.
	ManifestForm(in Integration, urls AppURLs) (action string, manifest []byte, err error)
	// ConvertManifest exchanges the code the host redirected back with for the app's
	// credentials; it returns the settings and secrets to store.
	ConvertManifest(ctx context.Context, in Integration, env Env, code string) (settings, secrets map[string]string, err error)
}

// Authorizer is implemented by drivers whose users authorize Forgeway on the host in a
// browser — installing a GitHub App that requests the installer's authorization, or
// authorizing a GitLab OAuth application — so that Forgeway can act as them.
type Authorizer interface {
	// InstallURL is where a person installs the app or authorizes it; state comes back in
	// the callback.
	InstallURL(in Integration, state string) (string, error)
	// ExchangeCode turns the code of the callback into that person's user credential.
	ExchangeCode(ctx context.Context, in Integration, env Env, code string) (UserCredential, error)
}

// AppURLs are Forgeway's own URLs a host-side app points back to.
type AppURLs struct {
	Homepage string
	Callback string // OAuth callback and manifest redirect
	Setup    string // post-installation setup URL
	Webhook  string
	State    string // opaque value the host hands back, binding the flow to an integration
}

// Route keys find the integration of a host-level delivery (one not addressed to an
// integration's own URL). The core reads two kinds: an App's (the integration has one webhook
// for every repository) and an installation's (recorded as installations are learned).

const (
	routeApp          = "app:"
	routeInstallation = "installation:"
)

// AppRoute is the route key of a host-side App (a GitHub App's id).
func AppRoute(id string) string { return routeApp + id }

// InstallationRoute is the route key of an App installation.
func InstallationRoute(id string) string { return routeInstallation + id }

// IsAppRoute reports whether a route key names an App: its integration has an
// integration-wide webhook.
func IsAppRoute(key string) bool { return strings.HasPrefix(key, routeApp) }

// IsInstallationRoute reports whether a route key names an installation.
func IsInstallationRoute(key string) bool { return strings.HasPrefix(key, routeInstallation) }
