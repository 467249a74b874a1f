package bitbucketdc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// HookEvents are the events Forgeway's repository webhooks subscribe to: pushes (branch and
// tag changes) and the pull request lifecycle.
func HookEvents() []string {
	return []string{"repo:refs_changed", "pr:opened", "pr:from_ref_updated", "pr:modified", "pr:merged", "pr:declined", "pr:deleted"}
}

// bbHook is Bitbucket's webhook representation (RestWebhook, with the id and dates Bitbucket
// adds to it).
type bbHook struct {
	ID            int64          `json:"id,omitempty"`
	Name          string         `json:"name"`
	URL           string         `json:"url"`
	Active        bool           `json:"active"`
	Events        []string       `json:"events"`
	Configuration map[string]any `json:"configuration,omitempty"`
	// SSLVerificationRequired is a pointer so that a hook Bitbucket shows without it reads as
	// verifying (Bitbucket's default).
	SSLVerificationRequired *bool `json:"sslVerificationRequired,omitempty"`
}

func (h bbHook) sslVerify() bool {
	return h.SSLVerificationRequired == nil || *h.SSLVerificationRequired
}

// secret is the webhook's secret when Bitbucket shows it ("" when it does not).
func (h bbHook) secret() string {
	s, _ := h.Configuration["secret"].(string)
	return s
}

func (h bbHook) toForge() forge.Hook {
	out := forge.Hook{ID: strconv.FormatInt(h.ID, 10), URL: h.URL, Events: h.Events, Active: h.Active, Healthy: h.Active}
	if !h.Active {
		out.Note = "the webhook is inactive on Bitbucket"
	}
	return out
}

// wantHook is the webhook Forgeway wants for spec.
func (c *Client) wantHook(spec forge.HookSpec) bbHook {
	verify := !spec.InsecureSkipTLS
	h := bbHook{Name: c.cfg.name, URL: spec.URL, Active: true, Events: HookEvents(), SSLVerificationRequired: &verify}
	if spec.Secret != "" {
		h.Configuration = map[string]any{"secret": spec.Secret}
	}
	return h
}

func sameEvents(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// listHooks reads every webhook of the repository.
func (c *Client) listHooks(ctx context.Context, repo forge.Repository) ([]bbHook, string, error) {
	path, err := repoPath(repo)
	if err != nil {
		return nil, "", fmt.Errorf("list the webhooks of %s: %w", repo.FullName, err)
	}
	base := path + "/webhooks"
	hooks, err := getAll[bbHook](ctx, c, "list the webhooks of "+repo.FullName, base, 0)
	return hooks, base, err
}

// EnsureHooks makes the repository deliver to spec.URL: it creates a repository webhook when
// none delivers there (events HookEvents, the secret as configuration.secret, TLS verification
// unless spec.InsecureSkipTLS), and replaces the one that does when it is inactive, its events
// or TLS setting differ, or Bitbucket shows a secret that differs; duplicates are deleted.
// Bitbucket shows a webhook's secret to its admins, so a secret changed elsewhere is put back;
// RotateHookSecret forces the update where it does not.
func (c *Client) EnsureHooks(ctx context.Context, repo forge.Repository, spec forge.HookSpec) ([]forge.Hook, error) {
	return c.ensureHooks(ctx, repo, spec, false)
}

// RotateHookSecret sets spec.Secret on the repository's webhook to spec.URL (creating one
// when missing), whether or not anything else differs.
func (c *Client) RotateHookSecret(ctx context.Context, repo forge.Repository, spec forge.HookSpec) ([]forge.Hook, error) {
	return c.ensureHooks(ctx, repo, spec, true)
}

// RotateIntegrationHook returns nil: Bitbucket integrations have repository webhooks only.
func (c *Client) RotateIntegrationHook(context.Context, forge.HookSpec) error { return nil }

func (c *Client) ensureHooks(ctx context.Context, repo forge.Repository, spec forge.HookSpec, force bool) ([]forge.Hook, error) {
	if spec.URL == "" {
		return nil, fmt.Errorf("ensure webhooks on %s: no delivery URL", repo.FullName)
	}
	hooks, base, err := c.listHooks(ctx, repo)
	if err != nil {
		return nil, err
	}
	want := c.wantHook(spec)
	var mine []bbHook
	for _, h := range hooks {
		if h.URL == spec.URL {
			mine = append(mine, h)
		}
	}
	if len(mine) == 0 {
		var created bbHook
		_, err := c.do(ctx, request{op: "create a webhook on " + repo.FullName, method: http.MethodPost, path: base,
			token: c.cfg.token, body: want, out: &created})
		if err != nil {
			return nil, err
		}
		return []forge.Hook{created.toForge()}, nil
	}
	keep := mine[0]
	for _, dup := range mine[1:] {
		if err := c.deleteHook(ctx, repo, base, dup.ID); err != nil {
			return nil, err
		}
	}
	secretDiffers := keep.secret() != "" && subtle.ConstantTimeCompare([]byte(keep.secret()), []byte(spec.Secret)) != 1
	differs := !keep.Active || !sameEvents(keep.Events, want.Events) || keep.sslVerify() != !spec.InsecureSkipTLS || secretDiffers
	if differs || force {
		// PUT replaces the webhook: the secret is always sent with it.
		want.Name = keep.Name
		var updated bbHook
		_, err := c.do(ctx, request{op: "update the webhook on " + repo.FullName, method: http.MethodPut,
			path: base + "/" + strconv.FormatInt(keep.ID, 10), token: c.cfg.token, body: want, out: &updated})
		if err != nil {
			return nil, err
		}
		keep = updated
	}
	return []forge.Hook{keep.toForge()}, nil
}

func (c *Client) deleteHook(ctx context.Context, repo forge.Repository, base string, id int64) error {
	_, err := c.do(ctx, request{op: "delete a webhook on " + repo.FullName, method: http.MethodDelete,
		path: base + "/" + strconv.FormatInt(id, 10), token: c.cfg.token})
	if err != nil && errors.Is(err, forge.ErrNotFound) {
		return nil // someone deleted it already
	}
	return err
}

// RemoveHooks deletes every webhook of the repository that delivers to url; one already gone
// is not an error. A repository that is gone is forge.ErrNotFound.
func (c *Client) RemoveHooks(ctx context.Context, repo forge.Repository, url string) error {
	hooks, base, err := c.listHooks(ctx, repo)
	if err != nil {
		return err
	}
	for _, h := range hooks {
		if h.URL == url {
			if err := c.deleteHook(ctx, repo, base, h.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// invocation is one delivery attempt in a webhook's statistics.
type invocation struct {
	Event  string `json:"event"`
	Finish int64  `json:"finish"` // epoch milliseconds
	Result struct {
		Description string `json:"description"`
		Outcome     string `json:"outcome"` // SUCCESS, FAILURE, ERROR
	} `json:"result"`
}

// statistics is GET …/webhooks/{id}/statistics/summary.
type statistics struct {
	LastSuccess *invocation `json:"lastSuccess"`
	LastFailure *invocation `json:"lastFailure"`
	LastError   *invocation `json:"lastError"`
}

// latestProblem is the latest failed or errored invocation when it is more recent than the
// latest success: Bitbucket then skips the webhook for a while (its circuit breaker).
func (s statistics) latestProblem() *invocation {
	var worst *invocation
	for _, inv := range []*invocation{s.LastFailure, s.LastError} {
		if inv != nil && (worst == nil || inv.Finish > worst.Finish) {
			worst = inv
		}
	}
	if worst == nil || (s.LastSuccess != nil && s.LastSuccess.Finish >= worst.Finish) {
		return nil
	}
	return worst
}

// Hooks lists the repository's webhooks that deliver to url. Each is healthy unless it is
// inactive or its latest delivery (in Bitbucket's statistics) failed, in which case Note says
// how and when.
func (c *Client) Hooks(ctx context.Context, repo forge.Repository, url string) ([]forge.Hook, error) {
	hooks, base, err := c.listHooks(ctx, repo)
	if err != nil {
		return nil, err
	}
	var out []forge.Hook
	for _, h := range hooks {
		if h.URL != url {
			continue
		}
		fh := h.toForge()
		if h.Active {
			var st statistics
			_, err := c.do(ctx, request{op: "read the delivery statistics of the webhook on " + repo.FullName, method: http.MethodGet,
				path: base + "/" + strconv.FormatInt(h.ID, 10) + "/statistics/summary", token: c.cfg.token, out: &st})
			if err != nil && !errors.Is(err, forge.ErrNotFound) {
				return nil, err
			}
			if bad := st.latestProblem(); bad != nil {
				fh.Healthy = false
				what := bad.Result.Description
				if what == "" {
					what = bad.Result.Outcome
				}
				fh.Note = fmt.Sprintf("the latest delivery (%s, %s) failed: %s; Bitbucket skips a failing webhook for a while",
					bad.Event, time.UnixMilli(bad.Finish).UTC().Format(time.RFC3339), what)
			}
		}
		out = append(out, fh)
	}
	return out, nil
}
