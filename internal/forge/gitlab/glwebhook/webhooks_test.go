package glwebhook

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// The Standard Webhooks reference vector (standard-webhooks libraries/go webhook_test.go
// TestWebhookSign), as HEADERS.md records it.
const (
	katSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	katID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	katTimestamp = 1614265330
	katBody      = `{"test": 2432232314}`
	katSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignKnownAnswer(t *testing.T) {
	got, err := Sign(katSecret, katID, time.Unix(katTimestamp, 0), []byte(katBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != katSignature {
		t.Fatalf("Sign = %s, want %s", got, katSignature)
	}
}

func TestVerifyKnownAnswer(t *testing.T) {
	h := http.Header{}
	h.Set("webhook-id", katID)
	h.Set("webhook-timestamp", strconv.Itoa(katTimestamp))
	h.Set("webhook-signature", katSignature)
	keys := forge.VerifyKeys{Integration: forge.Integration{Secrets: map[string]string{SecretSigningToken: katSecret}}}
	w := New()
	d := forge.Delivery{Header: h, Body: []byte(katBody), ReceivedAt: time.Unix(katTimestamp+90, 0)}
	if err := w.Verify(d, keys); err != nil {
		t.Fatalf("the reference vector does not verify: %v", err)
	}
	// The same delivery received today is a replay.
	d.ReceivedAt = received
	if err := w.Verify(d, keys); !errors.Is(err, forge.ErrSignature) || !strings.Contains(err.Error(), "tolerance") {
		t.Fatalf("a delivery signed in 2021 verified in 2026: %v", err)
	}
}

func TestVerifyToken(t *testing.T) {
	const current, previous = "current-secret", "previous-secret"
	body := []byte(`{"object_kind":"push"}`)
	cases := []struct {
		name    string
		headers []string // X-Gitlab-Token values
		secrets []string
		wantErr string // "" when it must verify
	}{
		{"current secret", []string{current}, []string{current, previous}, ""},
		{"previous secret while rotating", []string{previous}, []string{current, previous}, ""},
		{"empty secrets are skipped", []string{current}, []string{"", current}, ""},
		{"missing header", nil, []string{current}, "is missing"},
		{"empty header", []string{""}, []string{current}, "is missing"},
		{"wrong token", []string{"guess"}, []string{current, previous}, "matches none of the 2 configured secrets"},
		{"prefix of the secret", []string{current[:5]}, []string{current}, "matches none"},
		{"sent twice", []string{current, current}, []string{current}, "sent 2 times"},
		{"no secret configured", []string{current}, []string{"", ""}, "no webhook secret is configured"},
	}
	w := New()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.headers {
				h.Add(HeaderToken, v)
			}
			err := w.Verify(forge.Delivery{Header: h, Body: body, ReceivedAt: received}, forge.VerifyKeys{Secrets: tc.secrets})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, forge.ErrSignature) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Verify error %v, want ErrSignature saying %q", err, tc.wantErr)
			}
			for _, s := range append([]string{current, previous}, tc.headers...) {
				if s != "" && strings.Contains(err.Error(), s) {
					t.Fatalf("the error %q reveals a token", err)
				}
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	const secret = "hook-secret"
	token := "whsec_" + "c2lnbmluZy1rZXktb2YtdGhpcnR5LXR3by1ieXRlcyEh" // base64 of a 32-byte key
	body := []byte(`{"object_kind":"push","ref":"refs/heads/main"}`)
	sentAt := received.Add(-time.Minute)
	signed := func(tb testing.TB) http.Header {
		d := delivery(tb, "Push Hook", "key-1", secret, token, sentAt, body)
		return d.Header
	}
	keys := forge.VerifyKeys{Secrets: []string{secret}, Integration: forge.Integration{Secrets: map[string]string{SecretSigningToken: token}}}
	cases := []struct {
		name    string
		edit    func(h http.Header)
		body    []byte
		keys    *forge.VerifyKeys
		wantErr string
	}{
		{"signed", func(http.Header) {}, body, nil, ""},
		{"several signatures, one matching", func(h http.Header) {
			h.Set("webhook-signature", "v1,AAAA v2,xyz "+h.Get("webhook-signature"))
		}, body, nil, ""},
		{"body changed", func(http.Header) {}, []byte(`{"object_kind":"push","ref":"refs/heads/evil"}`), nil, "none of the 1 v1 signatures"},
		{"id changed", func(h http.Header) { h.Set("webhook-id", "key-2") }, body, nil, "none of the 1 v1 signatures"},
		{"timestamp changed", func(h http.Header) {
			h.Set("webhook-timestamp", strconv.FormatInt(sentAt.Unix()+1, 10))
		}, body, nil, "none of the 1 v1 signatures"},
		{"no signature", func(h http.Header) { h.Del("webhook-signature") }, body, nil, "webhook-signature is missing"},
		{"no id nor timestamp", func(h http.Header) { h.Del("webhook-id"); h.Del("webhook-timestamp") }, body, nil, "webhook-id and webhook-timestamp is missing"},
		{"timestamp not a number", func(h http.Header) { h.Set("webhook-timestamp", "yesterday") }, body, nil, "not Unix seconds"},
		{"too old", func(h http.Header) {
			sig, _ := Sign(token, "key-1", received.Add(-6*time.Minute), body)
			h.Set("webhook-timestamp", strconv.FormatInt(received.Add(-6*time.Minute).Unix(), 10))
			h.Set("webhook-signature", sig)
		}, body, nil, "beyond the 5m0s tolerance"},
		{"from the future", func(h http.Header) {
			sig, _ := Sign(token, "key-1", received.Add(6*time.Minute), body)
			h.Set("webhook-timestamp", strconv.FormatInt(received.Add(6*time.Minute).Unix(), 10))
			h.Set("webhook-signature", sig)
		}, body, nil, "beyond the 5m0s tolerance"},
		{"only other versions", func(h http.Header) { h.Set("webhook-signature", "v1a,xyz v2,abc") }, body, nil, "no v1 signature"},
		{"signature not base64", func(h http.Header) { h.Set("webhook-signature", "v1,!!!") }, body, nil, "none of the 1 v1 signatures"},
		{"signed but the secret token is wrong", func(h http.Header) { h.Set(HeaderToken, "nope") }, body, nil, "X-Gitlab-Token matches none"},
		{"signed without the secret token", func(h http.Header) { h.Del(HeaderToken) }, body, nil, "X-Gitlab-Token is missing"},
		{"signing token alone", func(h http.Header) { h.Del(HeaderToken) }, body,
			&forge.VerifyKeys{Integration: keys.Integration}, ""},
		{"unusable signing token", func(http.Header) {}, body,
			&forge.VerifyKeys{Secrets: []string{secret}, Integration: forge.Integration{Secrets: map[string]string{SecretSigningToken: "whsec_%%%"}}},
			"signing_token is unusable"},
	}
	w := New()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := signed(t)
			tc.edit(h)
			k := keys
			if tc.keys != nil {
				k = *tc.keys
			}
			err := w.Verify(forge.Delivery{Header: h, Body: tc.body, ReceivedAt: received}, k)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, forge.ErrSignature) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Verify error %v, want ErrSignature saying %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), strings.TrimPrefix(token, "whsec_")) {
				t.Fatalf("the error %q reveals a secret", err)
			}
		})
	}
}

func TestParseSigningToken(t *testing.T) {
	for in, want := range map[string]string{
		" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ": katSecret,
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw":         katSecret,
	} {
		got, err := ParseSigningToken(in)
		if err != nil || got != want {
			t.Errorf("ParseSigningToken(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "whsec_", "whsec_not base64!", "plain-secret"} {
		if _, err := ParseSigningToken(bad); err == nil {
			t.Errorf("ParseSigningToken(%q) accepted", bad)
		}
	}
}

func TestIdentify(t *testing.T) {
	body := []byte(`{"object_kind":"merge_request","object_attributes":{"action":"approved","iid":4}}`)
	header := func(kv ...string) http.Header {
		h := http.Header{}
		h.Set(HeaderEvent, "Merge Request Hook")
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	cases := []struct {
		name   string
		header http.Header
		body   []byte
		wantID string
		action string
		bad    string // an ErrMalformed error saying this
	}{
		{"Idempotency-Key first", header(HeaderIdempotencyKey, "idem", HeaderWebhookID, "wid", HeaderEventUUID, "uuid"), body, "idem", "approved", ""},
		{"then webhook-id", header(HeaderWebhookID, "wid", HeaderEventUUID, "uuid"), body, "wid", "approved", ""},
		{"then X-Gitlab-Event-UUID", header(HeaderEventUUID, "uuid"), body, "uuid", "approved", ""},
		{"else derived from the body", header(), body, DerivedID("Merge Request Hook", body), "approved", ""},
		{"system event names its action", header(HeaderEventUUID, "u"), []byte(`{"event_name":"project_rename","project_id":3}`), "u", "project_rename", ""},
		{"push has no action", header(HeaderEventUUID, "u"), []byte(`{"object_kind":"push","event_name":"push"}`), "u", "", ""},
		{"non-string action is no action", header(HeaderEventUUID, "u"), []byte(`{"object_kind":"note","object_attributes":{"action":7}}`), "u", "", ""},
		{"no event header", http.Header{HeaderIdempotencyKey: {"x"}}, body, "", "", "X-Gitlab-Event is missing"},
		{"not JSON", header(HeaderEventUUID, "u"), []byte("payload=%7B%7D"), "", "", "not a JSON object"},
		{"JSON array", header(HeaderEventUUID, "u"), []byte(`[1]`), "", "", "not a JSON object"},
		{"id too long", header(HeaderIdempotencyKey, strings.Repeat("a", 201)), body, "", "", "201 characters"},
	}
	w := New()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info, err := w.Identify(forge.Delivery{Header: tc.header, Body: tc.body})
			if tc.bad != "" {
				if !errors.Is(err, forge.ErrMalformed) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("Identify error %v, want ErrMalformed saying %q", err, tc.bad)
				}
				return
			}
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			if info.ID != tc.wantID || info.Action != tc.action || info.Event != tc.header.Get(HeaderEvent) || info.Test || len(info.RouteKeys) != 0 {
				t.Fatalf("Identify = %+v, want id %q, action %q", info, tc.wantID, tc.action)
			}
		})
	}
}

// TestDerivedIDStable: a delivery without an id deduplicates on its bytes: the same bytes
// give the same id, other bytes or another event another one.
func TestDerivedIDStable(t *testing.T) {
	w := New()
	body := []byte(`{"object_kind":"push","ref":"refs/heads/main","after":"a"}`)
	id := func(event string, b []byte) string {
		h := http.Header{}
		h.Set(HeaderEvent, event)
		info, err := w.Identify(forge.Delivery{Header: h, Body: b})
		if err != nil {
			t.Fatal(err)
		}
		return info.ID
	}
	first := id("Push Hook", body)
	if !strings.HasPrefix(first, "sha256:") || len(first) != len("sha256:")+64 {
		t.Fatalf("derived id %q", first)
	}
	if again := id("Push Hook", append([]byte(nil), body...)); again != first {
		t.Errorf("the same delivery replayed got id %s, then %s", first, again)
	}
	if other := id("Push Hook", []byte(`{"object_kind":"push","ref":"refs/heads/main","after":"b"}`)); other == first {
		t.Error("two different pushes share an id")
	}
	if other := id("System Hook", body); other == first {
		t.Error("the same body under another event shares an id")
	}
}

func TestMaxBodyBytes(t *testing.T) {
	if got := New().MaxBodyBytes(); got != 25<<20 {
		t.Fatalf("MaxBodyBytes = %d", got)
	}
}
