// Package ghwebhook owns GitHub's delivery side: it identifies a webhook delivery from its
// headers and body, authenticates it with X-Hub-Signature-256, and normalizes it into the
// host-neutral events and catalog effects of spec/events.md.
//
// It knows nothing of the GitHub API client; the GitHub driver returns a *Webhooks from its
// Webhooks method.
package ghwebhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"net/url"
	"reflect"
	"strings"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/webhookmac"
	"github.com/forgeway/forgeway/internal/jsontop"
)

// Delivery headers GitHub sends.
const (
	// HeaderDelivery carries the delivery GUID, shared by redeliveries: the dedup key.
	HeaderDelivery = "X-GitHub-Delivery"
	// HeaderEvent names the event (push, pull_request, installation, ping, ...).
	HeaderEvent = "X-GitHub-Event"
	// HeaderSignature carries "sha256=" + hex HMAC-SHA256(secret, raw body).
	HeaderSignature = "X-Hub-Signature-256"
	// HeaderTargetType says where the hook lives; "integration" for a GitHub App's hook.
	HeaderTargetType = "X-GitHub-Hook-Installation-Target-Type"
	// HeaderTargetID is the id of that target: the App id for an App's hook.
	HeaderTargetID = "X-GitHub-Hook-Installation-Target-ID"
	// headerLegacySignature is the SHA-1 signature; named only to say that it is refused.
	headerLegacySignature = "X-Hub-Signature"
)

// maxBodyBytes is GitHub's cap on a delivery's payload (25 MB); larger events are not sent.
const maxBodyBytes = 25 << 20

const signaturePrefix = "sha256="

// Webhooks is GitHub's implementation of forge.Webhooks. It is safe for
// concurrent use: its decoder is made by New and never changes, and its MAC states are
// reused under webhookmac's own synchronization.
type Webhooks struct {
	// payload is what Normalize decodes of a payload: the members its mappings read.
	payload *jsontop.Shape
	// macs keeps each webhook secret's HMAC state between deliveries.
	macs webhookmac.Keys
}

var _ forge.Webhooks = (*Webhooks)(nil)

// New returns GitHub's delivery handler.
func New() *Webhooks { return &Webhooks{payload: jsontop.ShapeOf(reflect.TypeFor[payload]())} }

// MaxBodyBytes returns 25 MiB, the largest payload GitHub delivers.
func (*Webhooks) MaxBodyBytes() int64 { return maxBodyBytes }

// Identify reads the delivery id (X-GitHub-Delivery), the event (X-GitHub-Event), the body's
// top-level action and the route keys: "app:<id>" from X-GitHub-Hook-Installation-Target-ID
// when the hook belongs to an App (target type "integration"), else from a ping's
// hook.app_id; and "installation:<id>" from the body's installation.id. It fails with
// forge.ErrMalformed when a header is missing or the body is not a JSON object (directly or
// as a form's payload field). Nothing it returns is authenticated.
func (*Webhooks) Identify(d forge.Delivery) (forge.DeliveryInfo, error) {
	id := strings.TrimSpace(d.Header.Get(HeaderDelivery))
	if id == "" {
		return forge.DeliveryInfo{}, fmt.Errorf("identify GitHub delivery: header %s is missing: %w", HeaderDelivery, forge.ErrMalformed)
	}
	event := strings.TrimSpace(d.Header.Get(HeaderEvent))
	if event == "" {
		return forge.DeliveryInfo{}, fmt.Errorf("identify GitHub delivery %.80q: header %s is missing: %w", id, HeaderEvent, forge.ErrMalformed)
	}
	doc, err := document(d)
	if err != nil {
		return forge.DeliveryInfo{}, fmt.Errorf("identify GitHub delivery %.80q: %w", id, err)
	}
	env, err := readEnvelope(doc)
	if err != nil {
		return forge.DeliveryInfo{}, fmt.Errorf("identify GitHub delivery %.80q: %w: %s", id, forge.ErrMalformed, err)
	}

	var keys []string
	if strings.EqualFold(strings.TrimSpace(d.Header.Get(HeaderTargetType)), "integration") {
		target := strings.TrimSpace(d.Header.Get(HeaderTargetID))
		if !isDecimal(target) {
			return forge.DeliveryInfo{}, fmt.Errorf("identify GitHub delivery %.80q: header %s is %.40q, not a numeric App id: %w", id, HeaderTargetID, target, forge.ErrMalformed)
		}
		keys = append(keys, forge.AppRoute(target))
	} else if env.HookAppID != "" {
		keys = append(keys, forge.AppRoute(env.HookAppID))
	}
	if env.InstallationID != "" {
		keys = append(keys, forge.InstallationRoute(env.InstallationID))
	}
	return forge.DeliveryInfo{ID: id, Event: event, Action: env.Action, RouteKeys: keys}, nil
}

// Verify checks X-Hub-Signature-256 against an HMAC-SHA256 of the raw body under each of
// keys.Secrets (the current secret and, while rotating, the previous one), in constant time.
// Empty secrets are skipped: a MAC under an empty key proves nothing. It returns an error
// wrapping forge.ErrSignature that says what was wrong: no secret configured, header missing
// (or only the legacy SHA-1 X-Hub-Signature sent), wrong prefix, bad hex, or no match. The
// error never contains a secret or an expected signature.
func (w *Webhooks) Verify(d forge.Delivery, keys forge.VerifyKeys) error {
	sig := strings.TrimSpace(d.Header.Get(HeaderSignature))
	if sig == "" {
		if d.Header.Get(headerLegacySignature) != "" {
			return fmt.Errorf("verify GitHub delivery: header %s is missing; only the legacy SHA-1 %s was sent, which is not accepted: %w", HeaderSignature, headerLegacySignature, forge.ErrSignature)
		}
		return fmt.Errorf("verify GitHub delivery: header %s is missing (is a secret set on the hook?): %w", HeaderSignature, forge.ErrSignature)
	}
	hexSig, ok := strings.CutPrefix(sig, signaturePrefix)
	if !ok {
		return fmt.Errorf("verify GitHub delivery: header %s does not start with %q: %w", HeaderSignature, signaturePrefix, forge.ErrSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("verify GitHub delivery: header %s is not hexadecimal: %w", HeaderSignature, forge.ErrSignature)
	}
	if len(got) != sha256.Size {
		return fmt.Errorf("verify GitHub delivery: header %s holds %d bytes, want %d: %w", HeaderSignature, len(got), sha256.Size, forge.ErrSignature)
	}
	tried := 0
	var sum [sha256.Size]byte
	for _, secret := range keys.Secrets {
		if secret == "" {
			continue
		}
		tried++
		if hmac.Equal(got, w.macs.Sum(sum[:0], secret, d.Body)) {
			return nil
		}
	}
	if tried == 0 {
		return fmt.Errorf("verify GitHub delivery: no webhook secret is configured for the integration: %w", forge.ErrSignature)
	}
	return fmt.Errorf("verify GitHub delivery: header %s matches none of the %d configured secrets: %w", HeaderSignature, tried, forge.ErrSignature)
}

// Sign returns the X-Hub-Signature-256 value GitHub would send for body under secret:
// "sha256=" followed by the lowercase hex HMAC-SHA256. For tests and the fake host.
func Sign(secret string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(webhookmac.Sum(secret, body))
}

// document returns the JSON payload of a delivery: the body itself, or the "payload" field of
// a form-encoded body, as the hook's content type says. A delivery without Content-Type is
// read as JSON (replays and tools often drop it).
func document(d forge.Delivery) ([]byte, error) {
	ct := d.Header.Get("Content-Type")
	if ct == "" {
		return d.Body, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, fmt.Errorf("content type %.80q: %w: %s", ct, forge.ErrMalformed, err)
	}
	switch mt {
	case "application/json":
		return d.Body, nil
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(d.Body))
		if err != nil {
			return nil, fmt.Errorf("form-encoded body: %w: %s", forge.ErrMalformed, err)
		}
		if !form.Has("payload") {
			return nil, fmt.Errorf("form-encoded body has no payload field: %w", forge.ErrMalformed)
		}
		return []byte(form.Get("payload")), nil
	default:
		return nil, fmt.Errorf("content type %.80q is neither application/json nor application/x-www-form-urlencoded: %w", mt, forge.ErrMalformed)
	}
}

func isDecimal(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
