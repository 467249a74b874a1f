package azuredevops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/adowebhook"
)

// The Service Hooks publisher, consumer and action of Forgeway's subscriptions.
const (
	publisherTFS = "tfs"
	consumerWeb  = "webHooks"
	actionHTTP   = "httpRequest"
	// notificationPush restricts git.pullrequest.updated to source-branch pushes.
	notificationPush = "PushNotification"
)

// subscriptionEvents are the events of a repository's subscriptions, in the order Forgeway
// reports them.
func subscriptionEvents() []string {
	return []string{adowebhook.EventPush, adowebhook.EventPullRequestCreated, adowebhook.EventPullRequestUpdated}
}

// subscription is a Service Hooks Subscription.
type subscription struct {
	ID               string            `json:"id,omitempty"`
	PublisherID      string            `json:"publisherId"`
	EventType        string            `json:"eventType"`
	ResourceVersion  string            `json:"resourceVersion,omitempty"`
	ConsumerID       string            `json:"consumerId"`
	ConsumerActionID string            `json:"consumerActionId"`
	PublisherInputs  map[string]string `json:"publisherInputs"`
	ConsumerInputs   map[string]string `json:"consumerInputs"`
	Status           string            `json:"status,omitempty"`
}

// statusNotes explains the statuses of a subscription that does not deliver normally.
var statusNotes = map[string]string{
	"onProbation":                "Azure DevOps put the subscription on probation after failed deliveries; it retries with growing delays",
	"disabledBySystem":           "Azure DevOps disabled the subscription after repeated failed deliveries",
	"disabledByUser":             "someone disabled the subscription (Project settings › Service hooks)",
	"disabledByInactiveIdentity": "Azure DevOps disabled the subscription because the identity that created it is inactive",
}

// toForge maps a subscription: active while it delivers (enabled, or on probation), healthy
// only when enabled.
func (s subscription) toForge() forge.Hook {
	h := forge.Hook{ID: s.ID, URL: s.ConsumerInputs["url"], Events: []string{s.EventType}}
	switch s.Status {
	case "enabled", "":
		h.Active, h.Healthy = true, true
	case "onProbation":
		h.Active = true
	}
	if !h.Healthy {
		h.Note = statusNotes[s.Status]
		if h.Note == "" {
			h.Note = "the subscription's status is " + s.Status
		}
	}
	return h
}

// hookTarget is what the subscriptions of one repository are made of.
type hookTarget struct {
	repo      forge.Repository
	projectID string
	url       string
	user      string
	password  string
	insecure  bool
}

// desired returns the subscription Forgeway wants for event.
func (c *Client) desired(t hookTarget, event string) subscription {
	pub := map[string]string{"projectId": t.projectID, "repository": t.repo.HostID}
	if event == adowebhook.EventPullRequestUpdated && c.cfg.prUpdates == PullRequestUpdatesPush {
		pub["notificationType"] = notificationPush
	}
	con := map[string]string{
		"url":               t.url,
		"basicAuthUsername": t.user,
		"basicAuthPassword": t.password,
		// The resource is all Forgeway reads; the messages would only make deliveries larger.
		"messagesToSend":         "none",
		"detailedMessagesToSend": "none",
	}
	if c.cfg.header != "" {
		con["httpHeaders"] = c.cfg.header + ":" + adowebhook.HeaderToken(t.password)
	}
	if t.insecure {
		con["acceptUntrustedCerts"] = "true"
	}
	return subscription{
		PublisherID: publisherTFS, EventType: event, ResourceVersion: "1.0",
		ConsumerID: consumerWeb, ConsumerActionID: actionHTTP,
		PublisherInputs: pub, ConsumerInputs: con,
	}
}

// differs reports whether an existing subscription must be replaced to be want: disabled or
// on probation, other filters, another user, header, TLS choice, or resource details that are
// not "all". The password cannot be compared: Azure DevOps masks it.
func differs(have, want subscription) bool {
	if have.Status != "enabled" {
		return true
	}
	for _, k := range []string{"projectId", "repository", "notificationType"} {
		if !strings.EqualFold(have.PublisherInputs[k], want.PublisherInputs[k]) {
			return true
		}
	}
	for _, k := range []string{"basicAuthUsername", "httpHeaders"} {
		if have.ConsumerInputs[k] != want.ConsumerInputs[k] {
			return true
		}
	}
	if (have.ConsumerInputs["acceptUntrustedCerts"] == "true") != (want.ConsumerInputs["acceptUntrustedCerts"] == "true") {
		return true
	}
	rd := have.ConsumerInputs["resourceDetailsToSend"]
	return rd != "" && !strings.EqualFold(rd, "all")
}

// target resolves what a repository's subscriptions need: the project id (from the catalog,
// else from the repository itself) and the credentials deliveries carry.
func (c *Client) target(ctx context.Context, repo forge.Repository, spec forge.HookSpec) (hookTarget, error) {
	t := hookTarget{repo: repo, url: spec.URL, user: spec.BasicAuthUser, password: spec.BasicAuthPassword, insecure: spec.InsecureSkipTLS}
	if t.user == "" {
		t.user = c.cfg.webhookUser
	}
	if t.password == "" {
		t.password = spec.Secret
	}
	switch {
	case t.url == "":
		return t, fmt.Errorf("service hooks of %s: no delivery URL", repo.FullName)
	case t.password == "":
		return t, fmt.Errorf("service hooks of %s: no webhook secret to give the subscriptions as their basic-auth password", repo.FullName)
	case len(t.password) > 256 || strings.ContainsAny(t.password, " \t\r\n"):
		return t, fmt.Errorf("service hooks of %s: Azure DevOps takes a basic-auth password of at most 256 characters without spaces; rotate the integration's webhook secret", repo.FullName)
	}
	pid, err := c.projectID(ctx, repo)
	if err != nil {
		return t, err
	}
	t.projectID = pid
	return t, nil
}

// projectID is the id of the repository's project: the catalog's, or the repository's own.
func (c *Client) projectID(ctx context.Context, repo forge.Repository) (string, error) {
	if id := repo.Extra[ExtraProjectID]; guidRE.MatchString(id) {
		return id, nil
	}
	r, err := c.Repository(ctx, repo.HostID, repo)
	if err != nil {
		return "", err
	}
	if id := r.Extra[ExtraProjectID]; id != "" {
		return id, nil
	}
	return "", fmt.Errorf("service hooks of %s: Azure DevOps did not name the repository's project", repo.FullName)
}

// query returns the subscriptions of Forgeway's kind (tfs → webHooks httpRequest) for the
// repository that deliver to url (POST _apis/hooks/subscriptionsquery, filtered on the
// publisher input repository and the consumer input url), in subscriptionEvents order.
func (c *Client) query(ctx context.Context, repo forge.Repository, hookURL string) ([]subscription, error) {
	if repo.HostID == "" {
		return nil, fmt.Errorf("service hooks of %s: the repository has no Azure DevOps id", repo.FullName)
	}
	cond := func(id, value string, caseSensitive bool) map[string]any {
		return map[string]any{"conditions": []map[string]any{{"inputId": id, "operator": "equals", "inputValue": value, "caseSensitive": caseSensitive}}}
	}
	body := map[string]any{
		"publisherId": publisherTFS, "consumerId": consumerWeb, "consumerActionId": actionHTTP,
		"publisherInputFilters": []any{cond("repository", repo.HostID, false)},
		"consumerInputFilters":  []any{cond("url", hookURL, true)},
	}
	var out struct {
		Results []subscription `json:"results"`
	}
	_, err := c.do(ctx, request{op: "list the service hook subscriptions of " + repo.FullName, method: http.MethodPost,
		path: "/_apis/hooks/subscriptionsquery", body: body, out: &out})
	if err != nil {
		return nil, err
	}
	// Only what the query asked for, in case a server applies the filters loosely.
	var mine []subscription
	for _, ev := range subscriptionEvents() {
		for _, s := range out.Results {
			if s.EventType == ev && s.ConsumerInputs["url"] == hookURL && strings.EqualFold(s.PublisherInputs["repository"], repo.HostID) {
				mine = append(mine, s)
			}
		}
	}
	return mine, nil
}

// EnsureHooks makes Azure DevOps deliver the repository's pushes and pull request events to
// spec.URL: one subscription each for git.push, git.pullrequest.created and
// git.pullrequest.updated (filtered to source-branch pushes unless pull_request_updates is
// "all"), with the webhook_user and spec.Secret as basic-auth credentials. It creates the
// missing ones, removes duplicates, and replaces (re-enabling it) any that is disabled or on
// probation or whose filters, user, header or TLS choice differ. Azure DevOps never shows a
// subscription's password, so a subscription otherwise right is left alone: after rotating the
// secret call RotateHookSecret.
func (c *Client) EnsureHooks(ctx context.Context, repo forge.Repository, spec forge.HookSpec) ([]forge.Hook, error) {
	return c.ensure(ctx, repo, spec, false)
}

// RotateHookSecret replaces the repository's subscriptions to spec.URL (creating missing ones)
// so that they deliver with spec.Secret as their password, whether or not anything else
// differs.
func (c *Client) RotateHookSecret(ctx context.Context, repo forge.Repository, spec forge.HookSpec) ([]forge.Hook, error) {
	return c.ensure(ctx, repo, spec, true)
}

// RotateIntegrationHook does nothing: every Azure DevOps subscription belongs to one
// repository; there is no integration-wide hook.
func (c *Client) RotateIntegrationHook(context.Context, forge.HookSpec) error { return nil }

func (c *Client) ensure(ctx context.Context, repo forge.Repository, spec forge.HookSpec, force bool) ([]forge.Hook, error) {
	t, err := c.target(ctx, repo, spec)
	if err != nil {
		return nil, err
	}
	have, err := c.query(ctx, repo, t.url)
	if err != nil {
		return nil, err
	}
	var out []forge.Hook
	for _, ev := range subscriptionEvents() {
		want := c.desired(t, ev)
		var same []subscription
		for _, s := range have {
			if s.EventType == ev {
				same = append(same, s)
			}
		}
		if len(same) == 0 {
			var created subscription
			if _, err := c.do(ctx, request{op: fmt.Sprintf("create the %s service hook of %s", ev, repo.FullName), method: http.MethodPost,
				path: "/_apis/hooks/subscriptions", body: want, out: &created}); err != nil {
				return nil, err
			}
			out = append(out, created.toForge())
			continue
		}
		keep := same[0]
		for _, dup := range same[1:] {
			if err := c.deleteSubscription(ctx, repo, dup.ID); err != nil {
				return nil, err
			}
		}
		if force || differs(keep, want) {
			want.ID, want.Status = keep.ID, "enabled"
			var replaced subscription
			if _, err := c.do(ctx, request{op: fmt.Sprintf("update the %s service hook of %s", ev, repo.FullName), method: http.MethodPut,
				path: "/_apis/hooks/subscriptions/" + url.PathEscape(keep.ID), body: want, out: &replaced}); err != nil {
				return nil, err
			}
			keep = replaced
		}
		out = append(out, keep.toForge())
	}
	return out, nil
}

func (c *Client) deleteSubscription(ctx context.Context, repo forge.Repository, id string) error {
	_, err := c.do(ctx, request{op: "delete a service hook of " + repo.FullName, method: http.MethodDelete,
		path: "/_apis/hooks/subscriptions/" + url.PathEscape(id)})
	if err != nil && errors.Is(err, forge.ErrNotFound) {
		return nil // someone deleted it already
	}
	return err
}

// RemoveHooks deletes the repository's subscriptions that deliver to url; one already gone is
// not an error.
func (c *Client) RemoveHooks(ctx context.Context, repo forge.Repository, url string) error {
	have, err := c.query(ctx, repo, url)
	if err != nil {
		return err
	}
	for _, s := range have {
		if err := c.deleteSubscription(ctx, repo, s.ID); err != nil {
			return err
		}
	}
	return nil
}

// Hooks lists the repository's subscriptions that deliver to url: healthy when enabled,
// unhealthy with Azure DevOps' reason otherwise.
func (c *Client) Hooks(ctx context.Context, repo forge.Repository, url string) ([]forge.Hook, error) {
	have, err := c.query(ctx, repo, url)
	if err != nil {
		return nil, err
	}
	out := make([]forge.Hook, 0, len(have))
	for _, s := range have {
		out = append(out, s.toForge())
	}
	return out, nil
}
