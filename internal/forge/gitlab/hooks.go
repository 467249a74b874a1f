package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// glHook is GitLab's project webhook.
type glHook struct {
	ID                    int64      `json:"id"`
	URL                   string     `json:"url"`
	PushEvents            bool       `json:"push_events"`
	TagPushEvents         bool       `json:"tag_push_events"`
	MergeRequestsEvents   bool       `json:"merge_requests_events"`
	EnableSSLVerification bool       `json:"enable_ssl_verification"`
	AlertStatus           string     `json:"alert_status"`
	DisabledUntil         *time.Time `json:"disabled_until"`
	// SigningTokenPresent says whether the hook has a signing token, on GitLab versions that
	// sign webhooks (nil on others).
	SigningTokenPresent *bool `json:"signing_token_present"`
}

// GitLab's hook alert statuses.
const (
	alertExecutable          = "executable"
	alertTemporarilyDisabled = "temporarily_disabled"
	alertDisabled            = "disabled"
)

func (h glHook) disabled() bool { return h.AlertStatus != "" && h.AlertStatus != alertExecutable }

func (h glHook) events() []string {
	var out []string
	for _, e := range []struct {
		name string
		on   bool
	}{{"push_events", h.PushEvents}, {"tag_push_events", h.TagPushEvents}, {"merge_requests_events", h.MergeRequestsEvents}} {
		if e.on {
			out = append(out, e.name)
		}
	}
	return out
}

func (h glHook) toForge() forge.Hook {
	out := forge.Hook{ID: strconv.FormatInt(h.ID, 10), URL: h.URL, Events: h.events(), Active: true, Healthy: true}
	switch h.AlertStatus {
	case "", alertExecutable:
	case alertTemporarilyDisabled:
		out.Active, out.Healthy = false, false
		out.Note = "GitLab disabled the webhook for a while after failed deliveries"
		if h.DisabledUntil != nil {
			out.Note += " (until " + h.DisabledUntil.UTC().Format(time.RFC3339) + ")"
		}
		out.Note += "; Forgeway re-creates it on the next reconciliation"
	case alertDisabled:
		out.Active, out.Healthy = false, false
		out.Note = "GitLab disabled the webhook after repeated failed deliveries; Forgeway re-creates it on the next reconciliation"
	default:
		out.Active, out.Healthy = false, false
		out.Note = "GitLab reports the webhook as " + h.AlertStatus
	}
	return out
}

// hookBody is what Forgeway sets on its webhook: push, tag push and merge request events, the
// secret token and, when configured, the signing token. GitLab never shows either token, and
// forgets the secret token when the URL changes, so both are sent on every write.
func (c *Client) hookBody(spec forge.HookSpec) map[string]any {
	b := map[string]any{
		"url":                     spec.URL,
		"token":                   spec.Secret,
		"push_events":             true,
		"tag_push_events":         true,
		"merge_requests_events":   true,
		"enable_ssl_verification": !spec.InsecureSkipTLS,
	}
	if c.cfg.signing != "" {
		b["signing_token"] = c.cfg.signing
	}
	return b
}

func (c *Client) listHooks(ctx context.Context, repo forge.Repository) ([]glHook, string, error) {
	base, err := projectPath(repo)
	if err != nil {
		return nil, "", err
	}
	base += "/hooks"
	hooks, err := getAll[glHook](ctx, c, "list the webhooks of "+repo.FullName, base+"?per_page=100", c.integrationCredential())
	return hooks, base, err
}

// EnsureHooks makes the project deliver to spec.URL. It creates the webhook when missing
// (push, tag push and merge request events, spec.Secret as its secret token, SSL
// verification unless spec.InsecureSkipTLS, the integration's signing token when it has one)
// and updates it when its events or SSL verification differ, or when GitLab reports it has no
// signing token while the integration has one; duplicates are removed. A webhook GitLab disabled after failed
// deliveries is deleted and created again: GitLab's API has no switch to re-enable one (only a
// successful delivery does, and a test request would send a sample event). GitLab never shows
// a webhook's secret, so a webhook that is otherwise right is left alone: after rotating the
// secret call RotateHookSecret.
func (c *Client) EnsureHooks(ctx context.Context, repo forge.Repository, spec forge.HookSpec) ([]forge.Hook, error) {
	return c.ensureHooks(ctx, repo, spec, false)
}

// RotateHookSecret sets spec.Secret on the project's webhooks to spec.URL (creating one when
// missing), whether or not anything else differs.
func (c *Client) RotateHookSecret(ctx context.Context, repo forge.Repository, spec forge.HookSpec) ([]forge.Hook, error) {
	return c.ensureHooks(ctx, repo, spec, true)
}

// RotateIntegrationHook does nothing: a GitLab integration has no integration-wide hook
// (system and group hooks, when an administrator points them at Forgeway, are theirs to
// change).
func (c *Client) RotateIntegrationHook(context.Context, forge.HookSpec) error { return nil }

func (c *Client) ensureHooks(ctx context.Context, repo forge.Repository, spec forge.HookSpec, force bool) ([]forge.Hook, error) {
	if spec.URL == "" {
		return nil, fmt.Errorf("ensure webhooks on %s: no delivery URL", repo.FullName)
	}
	hooks, base, err := c.listHooks(ctx, repo)
	if err != nil {
		return nil, err
	}
	var mine []glHook
	for _, h := range hooks {
		if h.URL == spec.URL {
			mine = append(mine, h)
		}
	}
	if len(mine) == 0 {
		h, err := c.createHook(ctx, repo, base, spec)
		if err != nil {
			return nil, err
		}
		return []forge.Hook{h.toForge()}, nil
	}
	keep := mine[0]
	for _, dup := range mine[1:] {
		if err := c.deleteHook(ctx, repo, base, dup.ID); err != nil {
			return nil, err
		}
	}
	if keep.disabled() {
		if err := c.deleteHook(ctx, repo, base, keep.ID); err != nil {
			return nil, err
		}
		h, err := c.createHook(ctx, repo, base, spec)
		if err != nil {
			return nil, err
		}
		return []forge.Hook{h.toForge()}, nil
	}
	differs := !keep.PushEvents || !keep.TagPushEvents || !keep.MergeRequestsEvents || keep.EnableSSLVerification == spec.InsecureSkipTLS ||
		(c.cfg.signing != "" && keep.SigningTokenPresent != nil && !*keep.SigningTokenPresent)
	if differs || force {
		var updated glHook
		_, err := c.do(ctx, request{
			op: "update the webhook on " + repo.FullName, method: http.MethodPut,
			path: base + "/" + strconv.FormatInt(keep.ID, 10), cred: c.integrationCredential(),
			body: c.hookBody(spec), out: &updated,
		})
		if err != nil {
			return nil, explainBlockedURL(err, spec.URL)
		}
		keep = updated
	}
	return []forge.Hook{keep.toForge()}, nil
}

func (c *Client) createHook(ctx context.Context, repo forge.Repository, base string, spec forge.HookSpec) (glHook, error) {
	var created glHook
	_, err := c.do(ctx, request{
		op: "create a webhook on " + repo.FullName, method: http.MethodPost, path: base, cred: c.integrationCredential(),
		body: c.hookBody(spec), out: &created,
	})
	if err != nil {
		return glHook{}, explainBlockedURL(err, spec.URL)
	}
	return created, nil
}

// explainBlockedURL adds what to do to GitLab's refusal of a webhook URL: GitLab refuses URLs
// that resolve to localhost or a private network unless an administrator allows them ("Url is
// blocked: Requests to the local network are not allowed", which the project hooks API reports
// as "Invalid url given").
func explainBlockedURL(err error, hookURL string) error {
	var he *forge.HostError
	if !errors.As(err, &he) || (he.Status != http.StatusUnprocessableEntity && he.Status != http.StatusBadRequest) {
		return err
	}
	msg := strings.ToLower(he.Message)
	if !strings.Contains(msg, "invalid url") && !strings.Contains(msg, "is blocked") {
		return err
	}
	out := *he
	out.Message = fmt.Sprintf("GitLab refused the webhook URL %s (%s). If it points to this network (localhost or a private address), "+
		"a GitLab administrator must allow it: Admin Area › Settings › Network › Outbound requests › "+
		`"Allow requests to the local network from webhooks and integrations" (or add the host to the allowlist below it). `+
		"Otherwise check Forgeway's public URL.", hookURL, he.Message)
	return &out
}

func (c *Client) deleteHook(ctx context.Context, repo forge.Repository, base string, id int64) error {
	_, err := c.do(ctx, request{
		op: "delete a webhook on " + repo.FullName, method: http.MethodDelete,
		path: base + "/" + strconv.FormatInt(id, 10), cred: c.integrationCredential(),
	})
	if err != nil && errors.Is(err, forge.ErrNotFound) {
		return nil // someone deleted it already
	}
	return err
}

// RemoveHooks deletes every webhook of the project that delivers to url; one already gone is
// not an error.
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

// Hooks lists the project's webhooks that deliver to url. One GitLab disabled after failed
// deliveries (alert_status temporarily_disabled or disabled) is neither active nor healthy,
// with a note saying why.
func (c *Client) Hooks(ctx context.Context, repo forge.Repository, url string) ([]forge.Hook, error) {
	hooks, _, err := c.listHooks(ctx, repo)
	if err != nil {
		return nil, err
	}
	var out []forge.Hook
	for _, h := range hooks {
		if h.URL == url {
			out = append(out, h.toForge())
		}
	}
	return out, nil
}
