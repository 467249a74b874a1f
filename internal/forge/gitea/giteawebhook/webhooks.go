// Package giteawebhook owns the delivery side of Gitea and Forgejo: it identifies a webhook
// delivery from its headers and body, authenticates it with X-Gitea-Signature (or Forgejo's
// X-Forgejo-Signature), and normalizes it into the host-neutral events and catalog effects of
// spec/events.md.
//
// Gitea also sends GitHub's and Gogs' headers (X-GitHub-Event, X-Hub-Signature-256, …) for
// compatibility. They are never read here: the endpoint a delivery arrives at decides which
// driver parses it, and a Gitea delivery is read as Gitea's.
//
// It knows nothing of the Gitea API client; the Gitea driver returns a *Webhooks from its
// Webhooks method.
package giteawebhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/webhookmac"
	"github.com/forgeway/forgeway/internal/jsontop"
)

// Delivery headers Gitea and Forgejo send (Forgejo sends both families).
const (
	// HeaderDelivery carries the delivery's UUID, kept by redeliveries: the dedup key.
	HeaderDelivery = "X-Gitea-Delivery"
	// HeaderEvent names the coarse event (push, create, delete, pull_request, repository, …).
	HeaderEvent = "X-Gitea-Event"
	// HeaderEventType names the fine-grained hook type (pull_request_sync, …).
	HeaderEventType = "X-Gitea-Event-Type"
	// HeaderSignature carries the lowercase hex HMAC-SHA256 of the payload under the hook's
	// secret, without prefix; empty when the hook has no secret.
	HeaderSignature = "X-Gitea-Signature"

	// Forgejo's own names for the same values.
	HeaderForgejoDelivery  = "X-Forgejo-Delivery"
	HeaderForgejoEvent     = "X-Forgejo-Event"
	HeaderForgejoEventType = "X-Forgejo-Event-Type"
	HeaderForgejoSignature = "X-Forgejo-Signature"
)

// maxBodyBytes bounds a delivery. Gitea sets no cap of its own, but its push payloads list at
// most FEED_MAX_COMMIT_NUM commits (5 by default) and other payloads one object each, so real
// deliveries stay far below this.
const maxBodyBytes = 25 << 20

// derivedIDPrefix marks a delivery id computed from the body because no header carried one.
const derivedIDPrefix = "body-sha256:"

// Webhooks is Gitea's implementation of forge.Webhooks. It is safe for
// concurrent use: its decoder is made by New and never changes, and its MAC states are
// reused under webhookmac's own synchronization.
type Webhooks struct {
	// payload is what Normalize decodes of a payload: the members its mappings read.
	payload *jsontop.Shape
	// macs keeps each webhook secret's HMAC state between deliveries.
	macs webhookmac.Keys
}

var _ forge.Webhooks = (*Webhooks)(nil)

// New returns Gitea's delivery handler.
func New() *Webhooks { return &Webhooks{payload: jsontop.ShapeOf(reflect.TypeFor[payload]())} }

// MaxBodyBytes returns 25 MiB, far above any delivery Gitea or Forgejo sends.
func (*Webhooks) MaxBodyBytes() int64 { return maxBodyBytes }

// firstHeader returns the first of names with a non-blank value, and which one it was.
func firstHeader(h http.Header, names ...string) (value, name string) {
	for _, n := range names {
		for _, v := range h.Values(n) {
			if v = strings.TrimSpace(v); v != "" {
				return v, n
			}
		}
	}
	return "", ""
}

// eventOf reads the event name: X-Gitea-Event, else X-Forgejo-Event.
func eventOf(h http.Header) string {
	ev, _ := firstHeader(h, HeaderEvent, HeaderForgejoEvent)
	return ev
}

// Identify reads the delivery id (X-Gitea-Delivery, else X-Forgejo-Delivery, else a stable id
// derived from the body: "body-sha256:" and the SHA-256 of the payload), the event
// (X-Gitea-Event, else X-Forgejo-Event), the payload's top-level action, and whether it is
// Gitea's test delivery (a push whose before and after are the same commit, which no real
// push produces). It fails with forge.ErrMalformed when there is no event header or the
// payload is not a JSON object (directly or as a form's payload field). Gitea deliveries
// carry no route keys: hooks point at the integration's own URL. Nothing it returns is
// authenticated.
func (*Webhooks) Identify(d forge.Delivery) (forge.DeliveryInfo, error) {
	h := d.Header
	event := eventOf(h)
	if event == "" {
		return forge.DeliveryInfo{}, fmt.Errorf("identify Gitea delivery: headers %s and %s are both missing (is this a Gitea or Forgejo webhook?): %w",
			HeaderEvent, HeaderForgejoEvent, forge.ErrMalformed)
	}
	doc, err := document(h, d.Body)
	if err != nil {
		return forge.DeliveryInfo{}, fmt.Errorf("identify Gitea %.60q delivery: %w", event, err)
	}
	env, err := readEnvelope(doc)
	if err != nil {
		return forge.DeliveryInfo{}, fmt.Errorf("identify Gitea %.60q delivery: %w: %s", event, forge.ErrMalformed, err)
	}
	id, _ := firstHeader(h, HeaderDelivery, HeaderForgejoDelivery)
	if id == "" {
		sum := sha256.Sum256(doc)
		id = derivedIDPrefix + hex.EncodeToString(sum[:])
	}
	return forge.DeliveryInfo{ID: id, Event: event, Action: env.Action, Test: event == "push" && env.isTestPush()}, nil
}

// Verify checks X-Gitea-Signature (else X-Forgejo-Signature) against an HMAC-SHA256 of the
// payload under each of keys.Secrets (the current secret and, while rotating, the previous
// one), in constant time. The payload is the body, or a form-encoded body's payload field:
// Gitea signs the JSON it sends, not the form around it. Empty secrets are skipped: a MAC
// under an empty key proves nothing. It returns an error wrapping forge.ErrSignature that says
// what was wrong: no secret configured, header missing or empty (the hook has no secret),
// not hexadecimal, the wrong length, or no match. The error never contains a secret or an
// expected signature.
func (w *Webhooks) Verify(d forge.Delivery, keys forge.VerifyKeys) error {
	h := d.Header
	sig, name := firstHeader(h, HeaderSignature, HeaderForgejoSignature)
	if sig == "" {
		if len(h.Values(HeaderSignature))+len(h.Values(HeaderForgejoSignature)) > 0 {
			return fmt.Errorf("verify Gitea delivery: header %s is empty: the hook on Gitea has no secret; set the integration's webhook secret on it (Forgeway does when it creates the hook): %w",
				HeaderSignature, forge.ErrSignature)
		}
		return fmt.Errorf("verify Gitea delivery: headers %s and %s are missing: %w", HeaderSignature, HeaderForgejoSignature, forge.ErrSignature)
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("verify Gitea delivery: header %s is not hexadecimal (Gitea sends the bare hex digest, without a \"sha256=\" prefix): %w", name, forge.ErrSignature)
	}
	if len(got) != sha256.Size {
		return fmt.Errorf("verify Gitea delivery: header %s holds %d bytes, want %d: %w", name, len(got), sha256.Size, forge.ErrSignature)
	}
	doc, err := document(h, d.Body)
	if err != nil {
		return fmt.Errorf("verify Gitea delivery: %v: %w", err, forge.ErrSignature)
	}
	tried := 0
	var sum [sha256.Size]byte
	for _, secret := range keys.Secrets {
		if secret == "" {
			continue
		}
		tried++
		if hmac.Equal(got, w.macs.Sum(sum[:0], secret, doc)) {
			return nil
		}
	}
	if tried == 0 {
		return fmt.Errorf("verify Gitea delivery: no webhook secret is configured for the integration: %w", forge.ErrSignature)
	}
	return fmt.Errorf("verify Gitea delivery: header %s matches none of the %d configured secrets: %w", name, tried, forge.ErrSignature)
}

// Sign returns the X-Gitea-Signature value Gitea sends for payload under secret: the
// lowercase hex HMAC-SHA256, without prefix. payload is the JSON document, also for hooks
// whose content type is form (Gitea signs the JSON, not the form). For tests and the fake.
func Sign(secret string, payload []byte) string {
	return hex.EncodeToString(webhookmac.Sum(secret, payload))
}

// document returns a delivery's JSON payload: the body itself, or the "payload" field of a
// form-encoded body, as the hook's content type says. A delivery without Content-Type is
// read as JSON (replays and tools often drop it).
func document(h http.Header, body []byte) ([]byte, error) {
	ct, _ := firstHeader(h, "Content-Type")
	if ct == "" {
		return body, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, fmt.Errorf("content type %.80q: %w: %s", ct, forge.ErrMalformed, err)
	}
	switch mt {
	case "application/json":
		return body, nil
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
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

// envelope is the little Identify reads from any delivery; each field on its own, so that an
// event whose payload is not modelled still identifies.
type envelope struct {
	Action string
	Before string
	After  string
}

// isTestPush reports Gitea's "Test Delivery": a push of one commit onto itself.
func (e envelope) isTestPush() bool {
	return e.Before != "" && e.Before == e.After && !isZeroSHA(e.Before)
}

// readEnvelope reads the envelope from a JSON object. It fails only when the document is not
// a JSON object; fields of an unexpected type are left empty.
func readEnvelope(doc []byte) (envelope, error) {
	// One validation pass and three members: the rest of the payload is not decoded here.
	m, err := jsontop.Members(doc, "action", "before", "after")
	if err != nil {
		return envelope{}, err
	}
	var env envelope
	_ = json.Unmarshal(m[0], &env.Action) // absent or not a string: no action
	_ = json.Unmarshal(m[1], &env.Before)
	_ = json.Unmarshal(m[2], &env.After)
	return env, nil
}

// isZeroSHA reports an all-zero object id (40 hex for SHA-1 repositories, 64 for SHA-256).
func isZeroSHA(s string) bool {
	return s != "" && strings.Trim(s, "0") == ""
}
