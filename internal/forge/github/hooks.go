package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/forgeway/forgeway/internal/forge"
)

// hookEvents are the events Forgeway's repository webhooks (and the App manifest) subscribe to.
func hookEvents() []string {
	return []string{"create", "delete", "push", "pull_request", "repository"}
}

type ghHook struct {
	ID     int64    `json:"id"`
	Name   string   `json:"name"`
	Active bool     `json:"active"`
	Events []string `json:"events"`
	Config struct {
		URL         string `json:"url"`
		ContentType string `json:"content_type"`
		InsecureSSL any    `json:"insecure_ssl"` // "0"/"1", sometimes a number
	} `json:"config"`
	LastResponse struct {
		Code    *int    `json:"code"`
		Status  *string `json:"status"`
		Message *string `json:"message"`
	} `json:"last_response"`
}

func (h ghHook) insecure() string {
	switch v := h.Config.InsecureSSL.(type) {
	case string:
		return v
	case float64:
		return strconv.Itoa(int(v))
	}
	return "0"
}

func (h ghHook) toForge() forge.Hook {
	out := forge.Hook{ID: strconv.FormatInt(h.ID, 10), URL: h.Config.URL, Events: h.Events, Active: h.Active, Healthy: true}
	status := ""
	if h.LastResponse.Status != nil {
		status = *h.LastResponse.Status
	}
	switch {
	case !h.Active:
		out.Healthy, out.Note = false, "the webhook is inactive on GitHub"
	case status == "" || status == "active" || status == "unused":
	default:
		out.Healthy, out.Note = false, status
		if h.LastResponse.Message != nil && *h.LastResponse.Message != "" {
			out.Note = *h.LastResponse.Message
		}
	}
	return out
}

// hookConfig is the config Forgeway sets on a webhook. GitHub replaces the whole config on
// update, so the secret is always sent with it.
type hookConfig struct {
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	Secret      string `json:"secret,omitempty"`
	InsecureSSL string `json:"insecure_ssl"`
}

func specConfig(spec forge.HookSpec) hookConfig {
	ins := "0"
	if spec.InsecureSkipTLS {
		ins = "1"
	}
	return hookConfig{URL: spec.URL, ContentType: "json", Secret: spec.Secret, InsecureSSL: ins}
}

func sameEvents(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// appHook stands for the App's own webhook, which serves every installation.
func appHook(url string) forge.Hook {
	return forge.Hook{ID: "app", URL: url, Events: hookEvents(), Active: true, Healthy: true,
		Note: "the GitHub App's webhook delivers for every installation"}
}

func (c *Client) listHooks(ctx context.Context, repo forge.Repository) ([]ghHook, string, credential, error) {
	owner, name, err := splitFullName(repo)
	if err != nil {
		return nil, "", credential{}, err
	}
	base := "/repos/" + owner + "/" + name + "/hooks"
	cred, err := c.repoCredential(ctx, repo)
	if err != nil {
		return nil, "", credential{}, err
	}
	hooks, err := getAll[ghHook](ctx, c, "list the webhooks of "+repo.FullName, base+"?per_page=100", cred)
	return hooks, base, cred, err
}

// EnsureHooks makes the repository deliver to spec.URL. For a token integration it creates
// the webhook when missing (events create, delete, push, pull_request, repository; JSON; the
// secret) and updates it — config, secret included, events, active — when its events, content
// type, TLS check or activity differ, which re-enables a disabled hook; duplicates are
// removed. GitHub never shows a webhook's secret, so a hook that is otherwise right is left
// alone: after rotating the secret call RotateHookSecret, or RemoveHooks then EnsureHooks.
// For an App integration the App's own webhook serves every installation: it returns one Hook
// with ID "app" and changes nothing.
func (c *Client) EnsureHooks(ctx context.Context, repo forge.Repository, spec forge.HookSpec) ([]forge.Hook, error) {
	if c.cfg.auth == AuthApp {
		return []forge.Hook{appHook(spec.URL)}, nil
	}
	return c.ensureHooks(ctx, repo, spec, false)
}

// RotateHookSecret sets spec.Secret on the repository's webhooks to spec.URL (creating one
// when missing), whether or not anything else differs. App integrations: the App's webhook
// secret is changed on the App's settings page, which the API cannot do: forge.ErrUnsupported.
func (c *Client) RotateHookSecret(ctx context.Context, repo forge.Repository, spec forge.HookSpec) ([]forge.Hook, error) {
	if c.cfg.auth == AuthApp {
		return nil, fmt.Errorf("a GitHub App's webhook secret is set on the App's settings page (General › Webhook secret), not by the API: %w", forge.ErrUnsupported)
	}
	return c.ensureHooks(ctx, repo, spec, true)
}

// RotateIntegrationHook: an App's webhook secret is set on the App's settings page, which the
// API cannot do (forge.ErrUnsupported); a token integration has no integration-wide hook.
func (c *Client) RotateIntegrationHook(ctx context.Context, spec forge.HookSpec) error {
	if c.cfg.auth == AuthApp {
		return fmt.Errorf("a GitHub App's webhook secret is set on the App's settings page (General › Webhook secret), not by the API: %w", forge.ErrUnsupported)
	}
	return nil
}

func (c *Client) ensureHooks(ctx context.Context, repo forge.Repository, spec forge.HookSpec, force bool) ([]forge.Hook, error) {
	if spec.URL == "" {
		return nil, fmt.Errorf("ensure webhooks on %s: no delivery URL", repo.FullName)
	}
	hooks, base, cred, err := c.listHooks(ctx, repo)
	if err != nil {
		return nil, err
	}
	want := specConfig(spec)
	var mine []ghHook
	for _, h := range hooks {
		if h.Config.URL == spec.URL {
			mine = append(mine, h)
		}
	}
	if len(mine) == 0 {
		var created ghHook
		_, err := c.do(ctx, request{
			op: "create a webhook on " + repo.FullName, method: http.MethodPost, path: base, cred: cred,
			body: map[string]any{"name": "web", "active": true, "events": hookEvents(), "config": want},
			out:  &created,
		})
		if err != nil {
			return nil, err
		}
		return []forge.Hook{created.toForge()}, nil
	}
	keep := mine[0]
	for _, dup := range mine[1:] {
		if err := c.deleteHook(ctx, repo, base, cred, dup.ID); err != nil {
			return nil, err
		}
	}
	differs := !keep.Active || !sameEvents(keep.Events, hookEvents()) || keep.Config.ContentType != "json" || keep.insecure() != want.InsecureSSL
	if differs || force {
		var updated ghHook
		_, err := c.do(ctx, request{
			op: "update the webhook on " + repo.FullName, method: http.MethodPatch,
			path: base + "/" + strconv.FormatInt(keep.ID, 10), cred: cred,
			body: map[string]any{"active": true, "events": hookEvents(), "config": want},
			out:  &updated,
		})
		if err != nil {
			return nil, err
		}
		keep = updated
	}
	return []forge.Hook{keep.toForge()}, nil
}

func (c *Client) deleteHook(ctx context.Context, repo forge.Repository, base string, cred credential, id int64) error {
	_, err := c.do(ctx, request{
		op: "delete a webhook on " + repo.FullName, method: http.MethodDelete,
		path: base + "/" + strconv.FormatInt(id, 10), cred: cred,
	})
	if err != nil && errors.Is(err, forge.ErrNotFound) {
		return nil // someone deleted it already
	}
	return err
}

// RemoveHooks deletes every webhook of the repository that delivers to url; one already gone
// is not an error. App integrations have none of their own: it does nothing.
func (c *Client) RemoveHooks(ctx context.Context, repo forge.Repository, url string) error {
	if c.cfg.auth == AuthApp {
		return nil
	}
	hooks, base, cred, err := c.listHooks(ctx, repo)
	if err != nil {
		return err
	}
	for _, h := range hooks {
		if h.Config.URL == url {
			if err := c.deleteHook(ctx, repo, base, cred, h.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Hooks lists the repository's webhooks that deliver to url, healthy unless GitHub reports
// their last delivery failed or they are inactive. App integrations: the "app" hook.
func (c *Client) Hooks(ctx context.Context, repo forge.Repository, url string) ([]forge.Hook, error) {
	if c.cfg.auth == AuthApp {
		return []forge.Hook{appHook(url)}, nil
	}
	hooks, _, _, err := c.listHooks(ctx, repo)
	if err != nil {
		return nil, err
	}
	var out []forge.Hook
	for _, h := range hooks {
		if h.Config.URL == url {
			out = append(out, h.toForge())
		}
	}
	return out, nil
}
