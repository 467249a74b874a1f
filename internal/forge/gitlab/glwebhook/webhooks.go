// Package glwebhook owns GitLab's delivery side: it identifies a webhook delivery (project,
// group or system hook) from its headers and body, authenticates it with the X-Gitlab-Token
// secret token and, when the integration has one, GitLab's Standard Webhooks signing token,
// and normalizes it into the host-neutral events and catalog effects of spec/events.md.
//
// It knows nothing of the GitLab API client; the GitLab driver returns a *Webhooks from its
// Webhooks method. Sign and Authenticate produce deliveries as GitLab sends them, for the
// fake host and tests.
package glwebhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/jsontop"
)

// Delivery headers GitLab sends.
const (
	// HeaderEvent names the event class: "Push Hook", "Tag Push Hook", "Merge Request Hook",
	// "Project Hook" (group hooks), "System Hook", …
	HeaderEvent = "X-Gitlab-Event"
	// HeaderToken carries the hook's secret token verbatim (no HMAC).
	HeaderToken = "X-Gitlab-Token"
	// HeaderIdempotencyKey is stable across retries of one delivery (GitLab 17.4+): the
	// preferred dedup key.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderEventUUID identifies the event a hook was triggered by (GitLab 16.2+).
	HeaderEventUUID = "X-Gitlab-Event-UUID"
	// HeaderWebhookUUID identifies the hook's configuration.
	HeaderWebhookUUID = "X-Gitlab-Webhook-UUID"
	// HeaderInstance is the base URL of the sending instance.
	HeaderInstance = "X-Gitlab-Instance"
	// HeaderWebhookID, HeaderWebhookTimestamp and HeaderWebhookSignature are the Standard
	// Webhooks headers GitLab adds when the hook has a signing token.
	HeaderWebhookID        = "Webhook-Id"
	HeaderWebhookTimestamp = "Webhook-Timestamp"
	HeaderWebhookSignature = "Webhook-Signature"
)

// SecretSigningToken is the integration secret holding the hooks' Standard Webhooks signing
// token ("whsec_" followed by the base64 key). When it is set, every delivery must carry a
// valid webhook-signature besides the X-Gitlab-Token.
const SecretSigningToken = "signing_token"

// SigningTokenPrefix starts a Standard Webhooks signing token.
const SigningTokenPrefix = "whsec_"

// Tolerance is how far a signed delivery's webhook-timestamp may be from the time it was
// received: the Standard Webhooks recommendation, which bounds replays of a captured
// delivery.
const Tolerance = 5 * time.Minute

// maxBodyBytes is GitLab's limit on a webhook payload (25 MB on GitLab.com, the default of
// self-managed instances); larger events are not sent.
const maxBodyBytes = 25 << 20

// maxIDLength bounds a delivery id taken from a header; GitLab's are 36-character UUIDs.
const maxIDLength = 200

// Webhooks is GitLab's implementation of forge.Webhooks. It is safe for concurrent use: what
// it holds is made by New and never changes.
type Webhooks struct {
	// payloads are what Normalize decodes of each kind of payload: the members its mappings
	// read.
	payloads jsontop.Shapes
}

var _ forge.Webhooks = (*Webhooks)(nil)

// New returns GitLab's delivery handler.
func New() *Webhooks {
	return &Webhooks{payloads: jsontop.ShapesOf(reflect.TypeFor[pushPayload](), reflect.TypeFor[mergeRequestPayload](), reflect.TypeFor[projectEventPayload]())}
}

// MaxBodyBytes returns 25 MiB, the largest payload GitLab delivers.
func (*Webhooks) MaxBodyBytes() int64 { return maxBodyBytes }

// envelope is what Identify reads of any GitLab payload.
type envelope struct {
	ObjectKind       string `json:"object_kind"`
	EventName        string `json:"event_name"`
	ObjectAttributes *struct {
		Action json.RawMessage `json:"action"`
	} `json:"object_attributes"`
}

func readEnvelope(body []byte) (envelope, error) {
	// One validation pass and three members: the rest of the payload is not decoded here.
	m, err := jsontop.Members(body, "object_kind", "event_name", "object_attributes")
	if err != nil {
		return envelope{}, err
	}
	var env envelope
	_ = json.Unmarshal(m[0], &env.ObjectKind) // absent or not a string: empty
	_ = json.Unmarshal(m[1], &env.EventName)
	if m[2] != nil {
		if a, err := jsontop.Pick(m[2], "action"); err == nil {
			env.ObjectAttributes = &struct {
				Action json.RawMessage `json:"action"`
			}{Action: a[0]}
		}
	}
	return env, nil
}

// kind is what the payload says it is: object_kind, or event_name for system and group
// events that carry no object_kind.
func (e envelope) kind() string {
	if e.ObjectKind != "" {
		return e.ObjectKind
	}
	return e.EventName
}

// action is object_attributes.action when it is a string; for payloads without object_kind
// (system and group events), event_name names the action ("project_create").
func (e envelope) action() string {
	if e.ObjectAttributes != nil && len(e.ObjectAttributes.Action) > 0 {
		var s string
		if json.Unmarshal(e.ObjectAttributes.Action, &s) == nil && s != "" {
			return s
		}
	}
	if e.ObjectKind == "" {
		return e.EventName
	}
	return ""
}

// Identify reads the delivery id, the event (X-Gitlab-Event) and the action. The id is
// Idempotency-Key (stable across GitLab's retries), else webhook-id (the same value on signed
// deliveries), else X-Gitlab-Event-UUID, else "sha256:" and a hash of the event and the body,
// so that a delivery from a GitLab too old to send an id still deduplicates. The action is
// object_attributes.action ("open", "update", …), or event_name for system and group events
// ("project_create"). There are no route keys: GitLab delivers to each integration's own URL.
// It fails with forge.ErrMalformed when X-Gitlab-Event is missing, an id header is too long,
// or the body is not a JSON object. Nothing it returns is authenticated.
func (*Webhooks) Identify(d forge.Delivery) (forge.DeliveryInfo, error) {
	event := strings.TrimSpace(d.Header.Get(HeaderEvent))
	if event == "" {
		return forge.DeliveryInfo{}, fmt.Errorf("identify GitLab delivery: header %s is missing: %w", HeaderEvent, forge.ErrMalformed)
	}
	env, err := readEnvelope(d.Body)
	if err != nil {
		return forge.DeliveryInfo{}, fmt.Errorf("identify GitLab %.60q delivery: %w: the body is not a JSON object: %s", event, forge.ErrMalformed, err)
	}
	id := ""
	for _, h := range []string{HeaderIdempotencyKey, HeaderWebhookID, HeaderEventUUID} {
		if v := strings.TrimSpace(d.Header.Get(h)); v != "" {
			if len(v) > maxIDLength {
				return forge.DeliveryInfo{}, fmt.Errorf("identify GitLab %.60q delivery: header %s is %d characters long: %w", event, h, len(v), forge.ErrMalformed)
			}
			id = v
			break
		}
	}
	if id == "" {
		id = DerivedID(event, d.Body)
	}
	return forge.DeliveryInfo{ID: id, Event: event, Action: env.action()}, nil
}

// DerivedID is the delivery id Identify gives a delivery that carries none: "sha256:" and the
// hex SHA-256 of the event name, a newline and the body.
func DerivedID(event string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(event))
	h.Write([]byte{'\n'})
	h.Write(body)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Verify authenticates a delivery with every scheme the integration configures, each in
// constant time, and fails unless all of them pass:
//   - keys.Secrets (the webhook secret and, while rotating, the previous one): X-Gitlab-Token
//     must equal one of them;
//   - the integration secret SecretSigningToken: webhook-id, webhook-timestamp and a
//     webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>" must be present, one
//     signature must match, and the timestamp must be within Tolerance of d.ReceivedAt.
//
// Empty secrets are skipped; with none configured at all it fails. Errors wrap
// forge.ErrSignature and say what was missing or wrong, never a secret or an expected value.
func (*Webhooks) Verify(d forge.Delivery, keys forge.VerifyKeys) error {
	var secrets []string
	for _, s := range keys.Secrets {
		if s != "" {
			secrets = append(secrets, s)
		}
	}
	signing := keys.Integration.Secrets[SecretSigningToken]
	if len(secrets) == 0 && signing == "" {
		return fmt.Errorf("verify GitLab delivery: no webhook secret is configured for the integration: %w", forge.ErrSignature)
	}
	if len(secrets) > 0 {
		if err := verifyToken(d.Header, secrets); err != nil {
			return err
		}
	}
	if signing != "" {
		received := d.ReceivedAt
		if received.IsZero() {
			received = time.Now()
		}
		if err := verifySignature(d, signing, received); err != nil {
			return err
		}
	}
	return nil
}

func verifyToken(h http.Header, secrets []string) error {
	values := h.Values(HeaderToken)
	if len(values) == 0 || values[0] == "" {
		return fmt.Errorf("verify GitLab delivery: header %s is missing (is the hook's secret token set?): %w", HeaderToken, forge.ErrSignature)
	}
	if len(values) > 1 {
		return fmt.Errorf("verify GitLab delivery: header %s is sent %d times: %w", HeaderToken, len(values), forge.ErrSignature)
	}
	// Digests have equal lengths, so the comparison takes the same time whatever the
	// lengths of the token and the secrets.
	got := sha256.Sum256([]byte(values[0]))
	matched := 0
	for _, s := range secrets {
		want := sha256.Sum256([]byte(s))
		matched |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	if matched == 1 {
		return nil
	}
	return fmt.Errorf("verify GitLab delivery: header %s matches none of the %d configured secrets: %w", HeaderToken, len(secrets), forge.ErrSignature)
}

// signingKey decodes a "whsec_<base64>" signing token into its key.
func signingKey(token string) ([]byte, error) {
	raw := strings.TrimPrefix(strings.TrimSpace(token), SigningTokenPrefix)
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) == 0 {
		return nil, errors.New(`the signing token is not "whsec_" followed by a base64 key`)
	}
	return key, nil
}

// ParseSigningToken checks that token is a Standard Webhooks signing token ("whsec_" and a
// base64 key) and returns it in its canonical form (trimmed, with the prefix).
func ParseSigningToken(token string) (string, error) {
	if _, err := signingKey(token); err != nil {
		return "", err
	}
	return SigningTokenPrefix + strings.TrimPrefix(strings.TrimSpace(token), SigningTokenPrefix), nil
}

func verifySignature(d forge.Delivery, signing string, received time.Time) error {
	key, err := signingKey(signing)
	if err != nil {
		return fmt.Errorf("verify GitLab delivery: the integration's %s is unusable (%s): %w", SecretSigningToken, err, forge.ErrSignature)
	}
	id := strings.TrimSpace(d.Header.Get(HeaderWebhookID))
	ts := strings.TrimSpace(d.Header.Get(HeaderWebhookTimestamp))
	sig := strings.TrimSpace(d.Header.Get(HeaderWebhookSignature))
	var missing []string
	for _, h := range []struct{ name, v string }{{HeaderWebhookID, id}, {HeaderWebhookTimestamp, ts}, {HeaderWebhookSignature, sig}} {
		if h.v == "" {
			missing = append(missing, strings.ToLower(h.name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("verify GitLab delivery: header %s is missing (is the hook's signing token set?): %w", strings.Join(missing, " and "), forge.ErrSignature)
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("verify GitLab delivery: header webhook-timestamp is not Unix seconds: %w", forge.ErrSignature)
	}
	sent := time.Unix(secs, 0)
	if skew := received.Sub(sent); skew > Tolerance || skew < -Tolerance {
		return fmt.Errorf("verify GitLab delivery: webhook-timestamp %s is %s away from the time received, beyond the %s tolerance (a replay, or a clock out of sync): %w",
			sent.UTC().Format(time.RFC3339), skew.Round(time.Second).Abs(), Tolerance, forge.ErrSignature)
	}
	want := standardMAC(key, id, ts, d.Body)
	v1 := 0
	for _, entry := range strings.Fields(sig) {
		version, value, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		v1++
		got, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	if v1 == 0 {
		return fmt.Errorf("verify GitLab delivery: header webhook-signature holds no v1 signature: %w", forge.ErrSignature)
	}
	return fmt.Errorf("verify GitLab delivery: none of the %d v1 signatures in webhook-signature matches the signing token: %w", v1, forge.ErrSignature)
}

func standardMAC(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the webhook-signature value GitLab sends for a delivery with id, sent at ts,
// under signingToken ("whsec_…"): "v1," and the base64 HMAC-SHA256 of "id.ts.body". For the
// fake host and tests.
func Sign(signingToken, id string, ts time.Time, body []byte) (string, error) {
	key, err := signingKey(signingToken)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(standardMAC(key, id, strconv.FormatInt(ts.Unix(), 10), body)), nil
}

// Authenticate sets the headers with which GitLab authenticates a delivery: X-Gitlab-Token
// when secret is set and, when signingToken is set, webhook-id (id), webhook-timestamp (ts)
// and webhook-signature. For the fake host and tests.
func Authenticate(h http.Header, secret, signingToken, id string, ts time.Time, body []byte) error {
	if secret != "" {
		h.Set(HeaderToken, secret)
	}
	if signingToken == "" {
		return nil
	}
	sig, err := Sign(signingToken, id, ts, body)
	if err != nil {
		return err
	}
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderWebhookSignature, sig)
	return nil
}
