// Package adowebhook owns Azure DevOps' delivery side: it identifies a Service Hooks "Web
// Hooks" delivery from its body, authenticates it with the HTTP basic credentials (and the
// optional secret header) the subscription was given, and normalizes it into the host-neutral
// events of spec/events.md.
//
// Azure DevOps signs nothing: the subscription's consumer inputs carry a basic-auth user and
// password (and, optionally, extra HTTP headers) that every delivery repeats. Forgeway's
// subscriptions use the integration's webhook_user setting as the user and its webhook secret
// as the password. The event name, the delivery's identity and the whole event are in the
// body. It knows nothing of the REST client; the Azure DevOps driver returns a *Webhooks.
package adowebhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/jsontop"
)

// Settings of an Azure DevOps integration that delivery authentication reads. The driver
// documents them in its Fields.
const (
	// SettingWebhookUser is the basic-auth user name the subscriptions deliver with.
	SettingWebhookUser = "webhook_user"
	// SettingWebhookHeader, when set, names an extra HTTP header the subscriptions send
	// (consumer input httpHeaders) whose value is HeaderToken of the webhook secret.
	SettingWebhookHeader = "webhook_header"
	// DefaultWebhookUser is the user name when SettingWebhookUser is empty.
	DefaultWebhookUser = "forgeway"
)

// maxBodyBytes bounds a delivery. Azure DevOps documents no cap; a push with "all" resource
// details lists its commits, and 25 MiB leaves room for the largest pushes Azure reports.
const maxBodyBytes = 25 << 20

// zeroGUID is the subscription id of a test notification sent before the subscription exists
// (the "Test" button of the subscription dialog).
const zeroGUID = "00000000-0000-0000-0000-000000000000"

// Webhooks is Azure DevOps' implementation of forge.Webhooks. It is safe for concurrent use:
// what it holds is made by New and never changes.
type Webhooks struct {
	// payloads are what Normalize decodes of a notification and of its resources: the
	// members its mappings read.
	payloads jsontop.Shapes
}

var _ forge.Webhooks = (*Webhooks)(nil)

// New returns Azure DevOps' delivery handler.
func New() *Webhooks {
	return &Webhooks{payloads: jsontop.ShapesOf(reflect.TypeFor[notification](), reflect.TypeFor[pushResource](), reflect.TypeFor[pullRequest]())}
}

// MaxBodyBytes returns 25 MiB.
func (*Webhooks) MaxBodyBytes() int64 { return maxBodyBytes }

// Identify reads the delivery's identity from its body: the event (eventType), the action (a
// pull request's status, for pull request events), whether it is one of Azure DevOps' sample
// notifications (the "Test" button), and the deduplication id. The id is the subscription id
// and the event id ("<subscriptionId>:<id>"), which every retry of the notification repeats;
// for a test notification, whose event id is the fixed id of the sample, the notification id
// is added so that each click counts. A body without an event id gets "sha256:" and the hash
// of the body. It fails with forge.ErrMalformed when the body is not a JSON object with an
// eventType. Nothing it returns is authenticated.
func (*Webhooks) Identify(d forge.Delivery) (forge.DeliveryInfo, error) {
	env, err := readEnvelope(d.Body)
	if err != nil {
		return forge.DeliveryInfo{}, fmt.Errorf("identify Azure DevOps delivery: %w: %s", forge.ErrMalformed, err)
	}
	if env.EventType == "" {
		return forge.DeliveryInfo{}, fmt.Errorf("identify Azure DevOps delivery: the body has no eventType: %w", forge.ErrMalformed)
	}
	info := forge.DeliveryInfo{Event: env.EventType, Test: env.test()}
	if strings.HasPrefix(env.EventType, "git.pullrequest.") {
		info.Action = env.Status
	}
	switch {
	case env.ID == "":
		sum := sha256.Sum256(d.Body)
		info.ID = "sha256:" + hex.EncodeToString(sum[:])
	case info.Test && env.NotificationID != "":
		info.ID = env.SubscriptionID + ":" + env.ID + ":" + env.NotificationID
	case env.SubscriptionID != "":
		info.ID = env.SubscriptionID + ":" + env.ID
	default:
		info.ID = env.ID
	}
	return info, nil
}

// Verify authenticates a delivery: its Authorization header must be HTTP basic credentials
// whose user is the integration's webhook_user (default "forgeway") and whose password is one
// of keys.Secrets (the current webhook secret and, while rotating, the previous one); when the
// integration names a webhook_header, that header must carry HeaderToken of the same secret.
// Everything is compared in constant time; empty secrets are skipped. Failures wrap
// forge.ErrSignature and say what was missing or wrong, never a secret or the expected user.
func (*Webhooks) Verify(d forge.Delivery, keys forge.VerifyKeys) error {
	wantUser := strings.TrimSpace(keys.Integration.Settings[SettingWebhookUser])
	if wantUser == "" {
		wantUser = DefaultWebhookUser
	}
	raw := strings.TrimSpace(d.Header.Get("Authorization"))
	if raw == "" {
		return fmt.Errorf("verify Azure DevOps delivery: no Authorization header (the subscription must deliver with basic authentication): %w", forge.ErrSignature)
	}
	user, password, ok := parseBasic(raw)
	if !ok {
		return fmt.Errorf("verify Azure DevOps delivery: the Authorization header is not HTTP basic credentials: %w", forge.ErrSignature)
	}
	var secrets []string
	for _, s := range keys.Secrets {
		if s != "" {
			secrets = append(secrets, s)
		}
	}
	if len(secrets) == 0 {
		return fmt.Errorf("verify Azure DevOps delivery: no webhook secret is configured for the integration: %w", forge.ErrSignature)
	}
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(wantUser)) == 1
	matched := -1
	for i, s := range secrets {
		if subtle.ConstantTimeCompare([]byte(password), []byte(s)) == 1 && matched < 0 {
			matched = i
		}
	}
	switch {
	case !userOK:
		return fmt.Errorf("verify Azure DevOps delivery: the basic-auth user name is not the integration's webhook_user: %w", forge.ErrSignature)
	case matched < 0:
		return fmt.Errorf("verify Azure DevOps delivery: the basic-auth password matches none of the %d configured webhook secrets: %w", len(secrets), forge.ErrSignature)
	}
	name := strings.TrimSpace(keys.Integration.Settings[SettingWebhookHeader])
	if name == "" {
		return nil
	}
	got := strings.TrimSpace(d.Header.Get(name))
	if got == "" {
		return fmt.Errorf("verify Azure DevOps delivery: header %.80q is missing (the integration's webhook_header): %w", name, forge.ErrSignature)
	}
	if !hmac.Equal([]byte(got), []byte(HeaderToken(secrets[matched]))) {
		return fmt.Errorf("verify Azure DevOps delivery: header %.80q does not match the webhook secret: %w", name, forge.ErrSignature)
	}
	return nil
}

// BasicAuth returns the Authorization header value Azure DevOps sends for a subscription
// whose basic-auth user and password are user and password. For tests and the fake host.
func BasicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// HeaderToken is the value of the optional secret header for a webhook secret: a keyed hash
// of it, not the secret itself, because Azure DevOps shows a subscription's HTTP headers to
// anyone who can view service hooks (unlike the basic-auth password, which it masks).
func HeaderToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("forgeway azure-devops webhook header"))
	return hex.EncodeToString(m.Sum(nil))
}

// parseBasic decodes "Basic base64(user:password)", the scheme name case-insensitively.
func parseBasic(h string) (user, password string, ok bool) {
	scheme, enc, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(dec), ":")
}

// envelope is what Identify reads from any delivery. Each field is decoded on its own so
// that an odd field does not cost the identification.
type envelope struct {
	SubscriptionID string
	NotificationID string
	ID             string
	EventType      string
	Status         string // resource.status, for pull request events
	RepositoryID   string // resource.repository.id
}

// test reports whether the delivery is one of Azure DevOps' sample notifications: sent from
// the subscription dialog before the subscription exists (zero subscription id), or the
// documented sample event itself (its fixed event id together with the sample repository).
func (e envelope) test() bool {
	if e.SubscriptionID == zeroGUID {
		return true
	}
	return sampleEvents[e.ID] && sampleRepositories[e.RepositoryID]
}

// sampleEvents are the event ids of the sample notifications Azure DevOps sends for the
// events Forgeway subscribes to (and the merge attempt), as its events reference shows them.
var sampleEvents = map[string]bool{
	"03c164c2-8912-4d5e-8009-3707d5f83734": true, // git.push
	"2ab4e3d3-b7a6-425e-92b1-5a9982c1269e": true, // git.pullrequest.created
	"af07be1b-f3ad-44c8-a7f1-c4835f2df06b": true, // git.pullrequest.updated
	"6872ee8c-b333-4eff-bfb9-0d5274943566": true, // git.pullrequest.merged
}

// sampleRepositories are the repositories those samples describe (Fabrikam-Fiber-Git and
// Fabrikam).
var sampleRepositories = map[string]bool{
	"278d5cd2-584d-4b63-824a-2ba458937249": true,
	"4bc14d40-c903-45e2-872e-0462c7748079": true,
}

// readEnvelope reads the envelope of a JSON object; it fails only when the body is not one.
func readEnvelope(body []byte) (envelope, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	if first := bytes.TrimLeft(body, " \t\r\n"); len(first) == 0 || first[0] != '{' {
		return envelope{}, errors.New("the body is not a JSON object")
	}
	// One validation pass and a few members: the resource (most of the payload) is not decoded.
	m, err := jsontop.Members(body, "subscriptionId", "notificationId", "id", "eventType", "resource")
	if err != nil {
		return envelope{}, err
	}
	top := struct{ SubscriptionID, NotificationID, ID, EventType, Resource json.RawMessage }{m[0], m[1], m[2], m[3], m[4]}
	var env envelope
	env.SubscriptionID = strings.ToLower(strings.TrimSpace(rawString(top.SubscriptionID)))
	env.ID = strings.ToLower(strings.TrimSpace(rawString(top.ID)))
	env.EventType = strings.TrimSpace(rawString(top.EventType))
	var n json.Number
	if top.NotificationID != nil && json.Unmarshal(top.NotificationID, &n) == nil {
		env.NotificationID = n.String()
	}
	if r, err := jsontop.Pick(top.Resource, "status", "repository"); err == nil {
		env.Status = rawString(r[0])
		if repo, err := jsontop.Pick(r[1], "id"); err == nil {
			env.RepositoryID = strings.ToLower(rawString(repo[0]))
		}
	}
	return env, nil
}

// rawString is a JSON string's value, or "" for anything else.
func rawString(raw json.RawMessage) string {
	var s string
	if raw == nil || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}
