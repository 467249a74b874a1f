package bbwebhook

import (
	"errors"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
)

func TestIdentify(t *testing.T) {
	w := New()
	body := []byte(`{"eventKey":"pr:opened","date":"2018-07-05T19:21:30+0000"}`)
	for _, tc := range []struct {
		name       string
		event, id  string
		body       []byte
		want       forge.DeliveryInfo
		errHas     string
		derivedFor string // the id is derived from this event and the body
	}{
		{name: "headers", event: "pr:opened", id: "abc-123", body: body, want: forge.DeliveryInfo{ID: "abc-123", Event: "pr:opened"}},
		{name: "header wins over the body", event: "pr:merged", id: "x", body: body, want: forge.DeliveryInfo{ID: "x", Event: "pr:merged"}},
		{name: "event from the body", id: "y", body: body, want: forge.DeliveryInfo{ID: "y", Event: "pr:opened"}},
		{name: "no request id", event: "pr:opened", body: body, derivedFor: "pr:opened"},
		{name: "test ping", event: "diagnostics:ping", id: "p", body: []byte(`{"test":true}`), want: forge.DeliveryInfo{ID: "p", Event: "diagnostics:ping", Test: true}},
		{name: "no event anywhere", id: "z", body: []byte(`{"test":true}`), errHas: "X-Event-Key is missing"},
		{name: "not JSON", event: "pr:opened", id: "z", body: []byte(`eventKey=pr:opened`), errHas: "not a JSON object"},
		{name: "JSON array", event: "pr:opened", id: "z", body: []byte(`[{"eventKey":"pr:opened"}]`), errHas: "not a JSON object"},
		{name: "truncated JSON", event: "pr:opened", id: "z", body: []byte(`{"eventKey":"pr:op`), errHas: "malformed"},
		{name: "empty body", event: "pr:opened", id: "z", body: nil, errHas: "not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := w.Identify(delivery(tc.event, tc.id, "", tc.body))
			if tc.errHas != "" {
				if !errors.Is(err, forge.ErrMalformed) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("Identify error %v; want ErrMalformed saying %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			want := tc.want
			if tc.derivedFor != "" {
				want = forge.DeliveryInfo{ID: DerivedID(tc.derivedFor, tc.body), Event: tc.derivedFor}
				if !strings.HasPrefix(info.ID, "sha256-") || len(info.ID) != len("sha256-")+64 {
					t.Errorf("derived id %q", info.ID)
				}
			}
			if info.ID != want.ID || info.Event != want.Event || info.Test != want.Test || info.Action != "" || len(info.RouteKeys) != 0 {
				t.Errorf("Identify = %+v, want %+v", info, want)
			}
		})
	}
}

// The id derived for a delivery without X-Request-Id is stable (a replay of the same bytes
// deduplicates) and differs with the body or the event.
func TestDerivedIDStability(t *testing.T) {
	w := New()
	body := []byte(`{"eventKey":"repo:refs_changed","changes":[]}`)
	a, _ := w.Identify(delivery("repo:refs_changed", "", "", body))
	b, _ := w.Identify(delivery("repo:refs_changed", "", "", append([]byte(nil), body...)))
	c, _ := w.Identify(delivery("repo:refs_changed", "", "", []byte(`{"eventKey":"repo:refs_changed","changes":[{}]}`)))
	d, _ := w.Identify(delivery("repo:modified", "", "", body))
	if a.ID == "" || a.ID != b.ID || a.ID == c.ID || a.ID == d.ID {
		t.Errorf("ids %q %q %q %q", a.ID, b.ID, c.ID, d.ID)
	}
	// The same id whether the header is there or the key comes from the body.
	e, _ := w.Identify(delivery("", "", "", body))
	if e.ID != a.ID {
		t.Errorf("id without the header %q, with %q", e.ID, a.ID)
	}
}

func TestVerify(t *testing.T) {
	w := New()
	body := []byte(`{"eventKey":"repo:refs_changed"}`)
	good := Sign("s3cret", body)
	for _, tc := range []struct {
		name    string
		header  string
		auth    string
		secrets []string
		errHas  string // "" when it must pass
	}{
		{name: "current secret", header: good, secrets: []string{"s3cret"}},
		{name: "previous secret while rotating", header: good, secrets: []string{"n3w", "s3cret"}},
		{name: "upper-case hex", header: "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), secrets: []string{"s3cret"}},
		{name: "no secret configured", header: good, secrets: []string{"", ""}, errHas: "no webhook secret is configured"},
		{name: "no header", secrets: []string{"s3cret"}, errHas: "X-Hub-Signature is missing (is a secret set"},
		{name: "basic auth instead", auth: "Basic dTpw", secrets: []string{"s3cret"}, errHas: "basic authentication instead"},
		{name: "other algorithm", header: "sha1=" + strings.Repeat("0", 40), secrets: []string{"s3cret"}, errHas: `uses "sha1", not sha256`},
		{name: "no algorithm", header: strings.TrimPrefix(good, "sha256="), secrets: []string{"s3cret"}, errHas: "not algorithm=digest"},
		{name: "not hex", header: "sha256=zz" + strings.Repeat("0", 62), secrets: []string{"s3cret"}, errHas: "not hexadecimal"},
		{name: "short", header: "sha256=abcd", secrets: []string{"s3cret"}, errHas: "holds 2 bytes, want 32"},
		{name: "wrong secret", header: good, secrets: []string{"other", "another"}, errHas: "matches none of the 2 configured secrets"},
		{name: "empty secret skipped", header: Sign("", body), secrets: []string{"", "s3cret"}, errHas: "matches none of the 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := delivery("repo:refs_changed", "id", "", body)
			if tc.header != "" {
				d.Header.Set(HeaderSignature, tc.header)
			}
			if tc.auth != "" {
				d.Header.Set("Authorization", tc.auth)
			}
			err := w.Verify(d, forge.VerifyKeys{Secrets: tc.secrets})
			if tc.errHas == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, forge.ErrSignature) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("Verify error %v; want ErrSignature saying %q", err, tc.errHas)
			}
			for _, s := range tc.secrets {
				if s != "" && strings.Contains(err.Error(), s) {
					t.Errorf("error %q shows a secret", err)
				}
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(good, "sha256=")) {
				t.Errorf("error %q shows the expected signature", err)
			}
		})
	}

	t.Run("body changed after signing", func(t *testing.T) {
		d := delivery("repo:refs_changed", "id", "s3cret", body)
		d.Body = []byte(`{"eventKey":"repo:refs_changed" }`)
		if err := w.Verify(d, forge.VerifyKeys{Secrets: []string{"s3cret"}}); !errors.Is(err, forge.ErrSignature) {
			t.Errorf("Verify of a changed body: %v", err)
		}
	})
}

func TestMaxBodyBytes(t *testing.T) {
	if n := New().MaxBodyBytes(); n < 1<<20 || n > 25<<20 {
		t.Errorf("MaxBodyBytes = %d", n)
	}
}

func TestSignFormat(t *testing.T) {
	// RFC 4231 test case 2, whose HMAC-SHA256 is published.
	got := Sign("Jefe", []byte("what do ya want for nothing?"))
	if got != "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Errorf("Sign = %s", got)
	}
}
