// Package bbwebhook owns Bitbucket Data Center's delivery side: it identifies a webhook
// delivery from its headers and body, authenticates it with the X-Hub-Signature HMAC-SHA256
// Bitbucket computes with the webhook's secret, and normalizes it into the host-neutral events
// of spec/events.md.
//
// It knows nothing of the REST client; the Bitbucket DC driver returns a *Webhooks from its
// Webhooks method, and the fake host signs its deliveries with Sign.
package bbwebhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/webhookmac"
	"github.com/forgeway/forgeway/internal/jsontop"
)

// Delivery headers Bitbucket Data Center sends.
const (
	// HeaderRequestID carries a UUID unique to each webhook request: the dedup key.
	HeaderRequestID = "X-Request-Id"
	// HeaderEvent names the event (repo:refs_changed, pr:opened, diagnostics:ping, ...).
	HeaderEvent = "X-Event-Key"
	// HeaderSignature carries "sha256=" + hex HMAC-SHA256(secret, raw body) when the webhook
	// has a secret. The name is GitHub's SHA-1 header; Bitbucket puts SHA-256 in it.
	HeaderSignature = "X-Hub-Signature"
)

// EventPing is the event key of the delivery Bitbucket sends when a webhook's connection is
// tested.
const EventPing = "diagnostics:ping"

// maxBodyBytes bounds a delivery. Bitbucket documents no cap; its payloads describe one
// repository and at most its ref changes or one pull request, far below this.
const maxBodyBytes = 10 << 20

const signaturePrefix = "sha256="

// Webhooks is Bitbucket Data Center's implementation of forge.Webhooks. It is safe for
// concurrent use: its decoder is made by New and never changes, and its MAC states are
// reused under webhookmac's own synchronization.
type Webhooks struct {
	// payload is what Normalize decodes of a payload: the members its mappings read.
	payload *jsontop.Shape
	// macs keeps each webhook secret's HMAC state between deliveries.
	macs webhookmac.Keys
}

var _ forge.Webhooks = (*Webhooks)(nil)

// New returns Bitbucket Data Center's delivery handler.
func New() *Webhooks { return &Webhooks{payload: jsontop.ShapeOf(reflect.TypeFor[payload]())} }

// MaxBodyBytes returns 10 MiB: Bitbucket documents no cap, and its largest payloads (a push
// of many refs) stay far below it.
func (*Webhooks) MaxBodyBytes() int64 { return maxBodyBytes }

// Identify reads the delivery id (X-Request-Id), the event (X-Event-Key, or the body's
// eventKey when the header was dropped by a replay tool) and whether it is the test button's
// diagnostics:ping. A delivery without X-Request-Id gets an id derived from the SHA-256 of its
// event and body, so the same bytes always deduplicate. Bitbucket has no action word apart
// from the event key and no host-level route keys. It fails with forge.ErrMalformed when no
// event can be found or the body is not a JSON object. Nothing it returns is authenticated.
func (*Webhooks) Identify(d forge.Delivery) (forge.DeliveryInfo, error) {
	key, err := readEventKey(d.Body)
	if err != nil {
		return forge.DeliveryInfo{}, fmt.Errorf("identify Bitbucket delivery: %w: %s", forge.ErrMalformed, err)
	}
	event := strings.TrimSpace(d.Header.Get(HeaderEvent))
	if event == "" {
		event = key
	}
	if event == "" {
		return forge.DeliveryInfo{}, fmt.Errorf("identify Bitbucket delivery: header %s is missing and the body has no eventKey: %w", HeaderEvent, forge.ErrMalformed)
	}
	id := strings.TrimSpace(d.Header.Get(HeaderRequestID))
	if id == "" {
		id = DerivedID(event, d.Body)
	}
	return forge.DeliveryInfo{ID: id, Event: event, Test: event == EventPing}, nil
}

// DerivedID is the delivery id Identify gives a delivery that arrived without X-Request-Id:
// "sha256-" and the hex SHA-256 of the event key, a newline and the body.
func DerivedID(event string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(event))
	h.Write([]byte{'\n'})
	h.Write(body)
	return "sha256-" + hex.EncodeToString(h.Sum(nil))
}

// readEventKey checks that body is a JSON object and returns its eventKey ("" when absent or
// not a string: the test ping has none).
func readEventKey(body []byte) (string, error) {
	// One validation pass and one member: the rest of the payload is not decoded here.
	m, err := jsontop.Members(body, "eventKey")
	if err != nil {
		return "", err
	}
	var key string
	_ = json.Unmarshal(m[0], &key) // absent or not a string: no key
	return strings.TrimSpace(key), nil
}

// Verify checks X-Hub-Signature against an HMAC-SHA256 of the raw body under each of
// keys.Secrets (the current secret and, while rotating, the previous one), in constant time.
// Empty secrets are skipped: a MAC under an empty key proves nothing. It returns an error
// wrapping forge.ErrSignature that says what was wrong: no secret configured, header missing
// (or only basic authentication sent), another algorithm, bad hex, wrong length, or no match.
// The error never contains a secret or an expected signature.
func (w *Webhooks) Verify(d forge.Delivery, keys forge.VerifyKeys) error {
	sig := strings.TrimSpace(d.Header.Get(HeaderSignature))
	if sig == "" {
		if strings.HasPrefix(d.Header.Get("Authorization"), "Basic ") {
			return fmt.Errorf("verify Bitbucket delivery: header %s is missing; the webhook sends basic authentication instead, which Forgeway does not use: set the webhook's secret: %w", HeaderSignature, forge.ErrSignature)
		}
		return fmt.Errorf("verify Bitbucket delivery: header %s is missing (is a secret set on the webhook?): %w", HeaderSignature, forge.ErrSignature)
	}
	algo, hexSig, ok := strings.Cut(sig, "=")
	if !ok {
		return fmt.Errorf("verify Bitbucket delivery: header %s is not algorithm=digest: %w", HeaderSignature, forge.ErrSignature)
	}
	if !strings.EqualFold(algo, "sha256") {
		return fmt.Errorf("verify Bitbucket delivery: header %s uses %.20q, not sha256: %w", HeaderSignature, algo, forge.ErrSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("verify Bitbucket delivery: header %s is not hexadecimal: %w", HeaderSignature, forge.ErrSignature)
	}
	if len(got) != sha256.Size {
		return fmt.Errorf("verify Bitbucket delivery: header %s holds %d bytes, want %d: %w", HeaderSignature, len(got), sha256.Size, forge.ErrSignature)
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
		return fmt.Errorf("verify Bitbucket delivery: no webhook secret is configured for the integration: %w", forge.ErrSignature)
	}
	return fmt.Errorf("verify Bitbucket delivery: header %s matches none of the %d configured secrets: %w", HeaderSignature, tried, forge.ErrSignature)
}

// Sign returns the X-Hub-Signature value Bitbucket Data Center sends for body under secret:
// "sha256=" followed by the lowercase hex HMAC-SHA256. For tests and the fake host.
func Sign(secret string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(webhookmac.Sum(secret, body))
}
