package ghwebhook

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
)

func TestMaxBodyBytes(t *testing.T) {
	if got, want := New().MaxBodyBytes(), int64(25*1024*1024); got != want {
		t.Errorf("MaxBodyBytes() = %d, want %d", got, want)
	}
}

// TestSignKnownAnswer is GitHub's own test vector from "Validating webhook deliveries".
func TestSignKnownAnswer(t *testing.T) {
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	body := []byte("Hello, World!")
	if got := Sign("It's a Secret to Everybody", body); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	d := forge.Delivery{Header: http.Header{}, Body: body}
	d.Header.Set(HeaderSignature, want)
	if err := New().Verify(d, forge.VerifyKeys{Secrets: []string{"It's a Secret to Everybody"}}); err != nil {
		t.Errorf("Verify of GitHub's known answer: %v", err)
	}
}

func TestVerify(t *testing.T) {
	const (
		current  = "current-secret-9f2c"
		previous = "previous-secret-41aa"
	)
	body := []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)
	good := Sign(current, body)
	withSig := func(sig string) http.Header {
		h := http.Header{}
		if sig != "" {
			h.Set(HeaderSignature, sig)
		}
		return h
	}

	tests := []struct {
		name    string
		header  http.Header
		body    []byte
		secrets []string
		wantErr string // substring of the error; "" for success
	}{
		{name: "current secret", header: withSig(good), secrets: []string{current}},
		{name: "rotation: signed with the previous secret", header: withSig(Sign(previous, body)), secrets: []string{current, previous}},
		{name: "rotation: signed with the new secret", header: withSig(good), secrets: []string{current, previous}},
		{name: "uppercase hex", header: withSig("sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256="))), secrets: []string{current}},
		{name: "missing header", header: withSig(""), secrets: []string{current}, wantErr: "is missing"},
		{name: "only the legacy SHA-1 header", header: http.Header{headerLegacySignature: {"sha1=7d38cdd689735b008b3c702edd92eea23791c5f6"}},
			secrets: []string{current}, wantErr: "legacy SHA-1"},
		{name: "SHA-1 value in the SHA-256 header", header: withSig("sha1=7d38cdd689735b008b3c702edd92eea23791c5f6"),
			secrets: []string{current}, wantErr: `does not start with "sha256="`},
		{name: "bare hex without prefix", header: withSig(strings.TrimPrefix(good, "sha256=")), secrets: []string{current}, wantErr: "does not start with"},
		{name: "bad hex", header: withSig("sha256=zz" + strings.Repeat("0", 62)), secrets: []string{current}, wantErr: "not hexadecimal"},
		{name: "truncated", header: withSig(good[:len(good)-2]), secrets: []string{current}, wantErr: "holds 31 bytes"},
		{name: "wrong secret", header: withSig(Sign("someone-else", body)), secrets: []string{current, previous}, wantErr: "matches none of the 2"},
		{name: "body changed after signing", header: withSig(good), body: append([]byte(" "), body...), secrets: []string{current}, wantErr: "matches none"},
		{name: "no secret configured", header: withSig(good), secrets: nil, wantErr: "no webhook secret"},
		{name: "empty secret never authenticates", header: withSig(Sign("", body)), secrets: []string{""}, wantErr: "no webhook secret"},
		{name: "empty secret skipped beside a real one", header: withSig(Sign("", body)), secrets: []string{"", current}, wantErr: "matches none of the 1"},
	}
	w := New()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := body
			if tc.body != nil {
				b = tc.body
			}
			err := w.Verify(forge.Delivery{Header: tc.header, Body: b}, forge.VerifyKeys{Secrets: tc.secrets})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify succeeded, want error containing %q", tc.wantErr)
			}
			if !errors.Is(err, forge.ErrSignature) {
				t.Errorf("error %q does not wrap forge.ErrSignature", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantErr) {
				t.Errorf("error %q does not say %q", msg, tc.wantErr)
			}
			for _, s := range append(tc.secrets, current, previous) {
				if s != "" && strings.Contains(msg, s) {
					t.Errorf("error %q reveals a secret", msg)
				}
			}
			for _, s := range tc.secrets {
				if expected := strings.TrimPrefix(Sign(s, b), "sha256="); strings.Contains(msg, expected) {
					t.Errorf("error %q reveals the expected signature", msg)
				}
			}
		})
	}
}

func TestIdentify(t *testing.T) {
	const id = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	base := func(event string, body string, mod func(h http.Header)) forge.Delivery {
		d := delivery(event, id, "s", []byte(body), false)
		if mod != nil {
			mod(d.Header)
		}
		return d
	}
	tests := []struct {
		name    string
		d       forge.Delivery
		want    forge.DeliveryInfo
		wantErr string
	}{
		{
			name: "App hook: target type integration gives the app key",
			d: base("installation", `{"action":"created","installation":{"id":957387,"app_id":29310}}`, func(h http.Header) {
				h.Set(HeaderTargetType, "integration")
				h.Set(HeaderTargetID, "29310")
			}),
			want: forge.DeliveryInfo{ID: id, Event: "installation", Action: "created", RouteKeys: []string{"app:29310", "installation:957387"}},
		},
		{
			name: "repository hook: the target id is not an App",
			d: base("push", `{"ref":"refs/heads/main"}`, func(h http.Header) {
				h.Set(HeaderTargetType, "repository")
				h.Set(HeaderTargetID, "79929171")
			}),
			want: forge.DeliveryInfo{ID: id, Event: "push"},
		},
		{
			name: "the header wins over a ping's hook.app_id",
			d: base("ping", `{"zen":"z","hook":{"app_id":1}}`, func(h http.Header) {
				h.Set(HeaderTargetType, "integration")
				h.Set(HeaderTargetID, "2")
			}),
			want: forge.DeliveryInfo{ID: id, Event: "ping", RouteKeys: []string{"app:2"}},
		},
		{
			name: "an unmodelled event still identifies",
			d:    base("issues", `{"action":"labeled","issue":{"number":"not-a-number"},"installation":{"id":5}}`, nil),
			want: forge.DeliveryInfo{ID: id, Event: "issues", Action: "labeled", RouteKeys: []string{"installation:5"}},
		},
		{
			name: "action of another type is no action",
			d:    base("issues", `{"action":{"x":1}}`, nil),
			want: forge.DeliveryInfo{ID: id, Event: "issues"},
		},
		{
			name: "no Content-Type: read as JSON",
			d:    base("pull_request", `{"action":"opened"}`, func(h http.Header) { h.Del("Content-Type") }),
			want: forge.DeliveryInfo{ID: id, Event: "pull_request", Action: "opened"},
		},
		{
			name: "JSON with charset",
			d:    base("pull_request", `{"action":"opened"}`, func(h http.Header) { h.Set("Content-Type", "application/json; charset=utf-8") }),
			want: forge.DeliveryInfo{ID: id, Event: "pull_request", Action: "opened"},
		},
		{name: "missing delivery header", d: base("push", `{}`, func(h http.Header) { h.Del(HeaderDelivery) }), wantErr: HeaderDelivery},
		{name: "blank delivery header", d: base("push", `{}`, func(h http.Header) { h.Set(HeaderDelivery, "  ") }), wantErr: HeaderDelivery},
		{name: "missing event header", d: base("push", `{}`, func(h http.Header) { h.Del(HeaderEvent) }), wantErr: HeaderEvent},
		{name: "malformed JSON", d: base("push", `{"ref":`, nil), wantErr: "unexpected end of JSON input"},
		{name: "JSON that is not an object", d: base("push", `[1,2]`, nil), wantErr: "not a JSON object"},
		{name: "JSON null", d: base("push", `null`, nil), wantErr: "not a JSON object"},
		{name: "other content type", d: base("push", `{}`, func(h http.Header) { h.Set("Content-Type", "text/plain") }), wantErr: "text/plain"},
		{name: "unparseable content type", d: base("push", `{}`, func(h http.Header) { h.Set("Content-Type", "/;") }), wantErr: "content type"},
		{
			name: "form body without payload",
			d: base("push", `ref=refs%2Fheads%2Fmain`, func(h http.Header) {
				h.Set("Content-Type", "application/x-www-form-urlencoded")
			}),
			wantErr: "no payload field",
		},
		{
			name: "App target id that is not a number",
			d: base("installation", `{}`, func(h http.Header) {
				h.Set(HeaderTargetType, "integration")
				h.Set(HeaderTargetID, "12a")
			}),
			wantErr: HeaderTargetID,
		},
		{
			name: "installation id that is not an integer is not a route key",
			d:    base("push", `{"installation":{"id":"1; drop"}}`, nil),
			want: forge.DeliveryInfo{ID: id, Event: "push"},
		},
	}
	w := New()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.Identify(tc.d)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Identify = %+v, want error containing %q", got, tc.wantErr)
				}
				if !errors.Is(err, forge.ErrMalformed) {
					t.Errorf("error %q does not wrap forge.ErrMalformed", err)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q does not say %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Identify (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFormEncoded checks that a form-encoded delivery is verified over the form body as
// sent and normalized from its payload field.
func TestFormEncoded(t *testing.T) {
	doc := []byte(`{"action":"revoked","sender":{"login":"mona & co=1+1"}}`)
	d := delivery("github_app_authorization", "d-1", "s3cret", doc, true)
	if strings.Contains(string(d.Body), `"action"`) {
		t.Fatalf("test delivery body %q is not form-encoded", d.Body)
	}
	w := New()
	if err := w.Verify(d, forge.VerifyKeys{Secrets: []string{"s3cret"}}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// A signature over the decoded JSON instead of the raw form body must not pass.
	d2 := d
	d2.Header = d.Header.Clone()
	d2.Header.Set(HeaderSignature, Sign("s3cret", doc))
	if err := w.Verify(d2, forge.VerifyKeys{Secrets: []string{"s3cret"}}); !errors.Is(err, forge.ErrSignature) {
		t.Errorf("Verify with a signature of the decoded payload = %v, want ErrSignature", err)
	}
	info, err := w.Identify(d)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	if info.Action != "revoked" {
		t.Errorf("Identify action = %q, want revoked", info.Action)
	}
	res, err := w.Normalize(t.Context(), d, noState{t})
	if err != nil {
		t.Fatalf("Normalize: %v", err)
	}
	want := []forge.Effect{forge.UserCredentialRevoked{Login: "mona & co=1+1"}}
	if diff := cmp.Diff(want, res.Effects); diff != "" {
		t.Errorf("effects (-want +got):\n%s", diff)
	}
}
