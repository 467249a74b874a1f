package gitea

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/forgeway/forgeway/internal/forge"
)

// hookEvents are the events Forgeway's repository hooks subscribe to. Gitea turns
// "pull_request" into every pull request event, pull_request_sync (new commits) included.
func hookEvents() []string { return []string{"create", "delete", "push", "pull_request"} }

// requiredEvents are the events a hook must list, as Gitea lists them back, to deliver what
// Forgeway maps. Gitea lists "pull_request" expanded into its sub-events, in no set order.
func requiredEvents() []string {
	return []string{"create", "delete", "push", "pull_request", "pull_request_sync"}
}

// ourTypes are the hook types whose deliveries carry Gitea's headers and signature (Forgejo
// adds its own "forgejo" type).
var ourTypes = []string{"gitea", "forgejo"}

// apiHook is Gitea's Hook object. Gitea never shows a hook's secret.
type apiHook struct {
	ID           int64             `json:"id"`
	Type         string            `json:"type"`
	Config       map[string]string `json:"config"`
	Events       []string          `json:"events"`
	Active       bool              `json:"active"`
	BranchFilter string            `json:"branch_filter"`
}

func (h apiHook) url() string { return h.Config["url"] }

// allBranches reports a branch filter that lets every branch through.
func (h apiHook) allBranches() bool { return h.BranchFilter == "" || h.BranchFilter == "*" }

// toForge reports a hook's health as far as Gitea's API shows it. Gitea never disables a hook
// on its own and does not report delivery failures through the API, so a hook is unhealthy
// when it differs from what Forgeway set up (see problem): inactive, filtering branches,
// missing events or sending forms. That is exactly what EnsureHooks repairs.
func (h apiHook) toForge() forge.Hook {
	out := forge.Hook{ID: strconv.FormatInt(h.ID, 10), URL: h.url(), Events: h.Events, Active: h.Active, Healthy: true}
	if note := h.problem(); note != "" {
		out.Healthy, out.Note = false, note
	}
	return out
}

// problem says how the hook differs from Forgeway's, "" when it does not.
func (h apiHook) problem() string {
	var missing []string
	for _, e := range requiredEvents() {
		if !slices.Contains(h.Events, e) {
			missing = append(missing, e)
		}
	}
	switch {
	case !h.Active:
		return "the webhook is inactive on Gitea"
	case !h.allBranches():
		return fmt.Sprintf("the webhook's branch filter %q drops pushes to other branches", h.BranchFilter)
	case len(missing) > 0:
		return "the webhook does not send " + strings.Join(missing, ", ")
	case h.Config["content_type"] != "json":
		return fmt.Sprintf("the webhook sends %q payloads, not JSON", h.Config["content_type"])
	}
	return ""
}

// mine is the hook's URL being url and its type one whose deliveries Forgeway reads.
func (h apiHook) mine(url string) bool {
	return h.url() == url && slices.Contains(ourTypes, h.Type)
}

// differs reports that Forgeway must repair its hook.
func (h apiHook) differs() bool { return h.problem() != "" }

func (c *Client) listHooks(ctx context.Context, repo forge.Repository) ([]apiHook, string, error) {
	base, err := repoPath(repo)
	if err != nil {
		return nil, "", err
	}
	base += "/hooks"
	hooks, err := getAll[apiHook](ctx, c, "list the webhooks of "+repo.FullName, base, "")
	return hooks, base, err
}

// EnsureHooks makes the repository deliver to spec.URL: it creates a "gitea" webhook when
// there is none (JSON, the secret, events create, delete, push and pull_request, active, all
// branches) and repairs one that differs — inactive, a branch filter, a form content type, or
// events missing — by setting its config (secret included), events and active flag, which
// also clears a branch filter; duplicates are removed. Gitea never shows a hook's secret, so a
// hook that is otherwise right is left alone: after rotating the secret call RotateHookSecret.
// Gitea has no per-hook TLS setting (spec.InsecureSkipTLS is the server-wide
// [webhook] SKIP_TLS_VERIFY); it is ignored.
func (c *Client) EnsureHooks(ctx context.Context, repo forge.Repository, spec forge.HookSpec) ([]forge.Hook, error) {
	return c.ensureHooks(ctx, repo, spec, false)
}

// RotateHookSecret sets spec.Secret on the repository's webhooks to spec.URL (creating one
// when missing), whether or not anything else differs.
func (c *Client) RotateHookSecret(ctx context.Context, repo forge.Repository, spec forge.HookSpec) ([]forge.Hook, error) {
	return c.ensureHooks(ctx, repo, spec, true)
}

// RotateIntegrationHook does nothing: a Gitea integration has no integration-wide hook, only
// repository hooks.
func (c *Client) RotateIntegrationHook(context.Context, forge.HookSpec) error { return nil }

func (c *Client) ensureHooks(ctx context.Context, repo forge.Repository, spec forge.HookSpec, force bool) ([]forge.Hook, error) {
	if spec.URL == "" {
		return nil, fmt.Errorf("ensure webhooks on %s: no delivery URL", repo.FullName)
	}
	if spec.Secret == "" {
		return nil, fmt.Errorf("ensure webhooks on %s: no webhook secret (Gitea would send unsigned deliveries)", repo.FullName)
	}
	hooks, base, err := c.listHooks(ctx, repo)
	if err != nil {
		return nil, err
	}
	var mine []apiHook
	for _, h := range hooks {
		if h.mine(spec.URL) {
			mine = append(mine, h)
		}
	}
	config := map[string]string{"url": spec.URL, "content_type": "json", "secret": spec.Secret}
	if len(mine) == 0 {
		var created apiHook
		_, err := c.do(ctx, request{
			op: "create a webhook on " + repo.FullName, method: http.MethodPost, path: base,
			body: map[string]any{"type": "gitea", "config": config, "events": hookEvents(), "active": true},
			out:  &created,
		})
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
	if force || keep.differs() {
		// Gitea's edit replaces the events and the branch filter with what is sent and keeps
		// config keys that are not; the secret is sent so that a repaired hook signs with the
		// integration's current secret.
		var updated apiHook
		_, err := c.do(ctx, request{
			op: "update the webhook on " + repo.FullName, method: http.MethodPatch,
			path: base + "/" + strconv.FormatInt(keep.ID, 10),
			body: map[string]any{"config": config, "events": hookEvents(), "active": true},
			out:  &updated,
		})
		if err != nil {
			return nil, err
		}
		keep = updated
	}
	return []forge.Hook{keep.toForge()}, nil
}

func (c *Client) deleteHook(ctx context.Context, repo forge.Repository, base string, id int64) error {
	_, err := c.do(ctx, request{op: "delete a webhook on " + repo.FullName, method: http.MethodDelete, path: base + "/" + strconv.FormatInt(id, 10)})
	if err != nil && errors.Is(err, forge.ErrNotFound) {
		return nil // someone deleted it already
	}
	return err
}

// RemoveHooks deletes every Gitea webhook of the repository that delivers to url; one
// already gone is not an error.
func (c *Client) RemoveHooks(ctx context.Context, repo forge.Repository, url string) error {
	hooks, base, err := c.listHooks(ctx, repo)
	if err != nil {
		return err
	}
	for _, h := range hooks {
		if h.mine(url) {
			if err := c.deleteHook(ctx, repo, base, h.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Hooks lists the repository's Gitea webhooks that deliver to url, healthy unless inactive or
// filtering branches.
func (c *Client) Hooks(ctx context.Context, repo forge.Repository, url string) ([]forge.Hook, error) {
	hooks, _, err := c.listHooks(ctx, repo)
	if err != nil {
		return nil, err
	}
	var out []forge.Hook
	for _, h := range hooks {
		if h.mine(url) {
			out = append(out, h.toForge())
		}
	}
	return out, nil
}
