package adowebhook

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
)

// TestBasicAuthKnownAnswer checks the header against RFC 7617's own example.
func TestBasicAuthKnownAnswer(t *testing.T) {
	if got := BasicAuth("Aladdin", "open sesame"); got != "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==" {
		t.Errorf("BasicAuth = %q", got)
	}
	u, p, ok := parseBasic("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
	if !ok || u != "Aladdin" || p != "open sesame" {
		t.Errorf("parseBasic = %q %q %v", u, p, ok)
	}
	// A password may hold colons; only the first separates the user.
	if u, p, ok := parseBasic(BasicAuth("u", "a:b")); !ok || u != "u" || p != "a:b" {
		t.Errorf("parseBasic of a password with a colon = %q %q %v", u, p, ok)
	}
}

func TestHeaderToken(t *testing.T) {
	a, b := HeaderToken("s1"), HeaderToken("s2")
	if a == b || len(a) != 64 || strings.Contains(a, "s1") || a != HeaderToken("s1") {
		t.Errorf("HeaderToken: %q %q", a, b)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"eventType":"git.push","id":"e"}`)
	settings := func(kv ...string) forge.Integration {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return forge.Integration{Settings: m}
	}
	withHeader := func(d forge.Delivery, k, v string) forge.Delivery {
		d.Header = d.Header.Clone()
		d.Header.Set(k, v)
		return d
	}
	raw := func(auth string) forge.Delivery {
		d := delivery(body, "", "")
		d.Header.Set("Authorization", auth)
		return d
	}
	const cur, prev = "current-secret", "previous-secret"
	tests := []struct {
		name    string
		d       forge.Delivery
		keys    forge.VerifyKeys
		wantErr string // empty: passes
	}{
		{"default user, current secret", delivery(body, "forgeway", cur), forge.VerifyKeys{Secrets: []string{cur, prev}}, ""},
		{"previous secret while rotating", delivery(body, "forgeway", prev), forge.VerifyKeys{Secrets: []string{cur, prev}}, ""},
		{"configured user", delivery(body, "svc-hooks", cur), forge.VerifyKeys{Secrets: []string{cur}, Integration: settings(SettingWebhookUser, "svc-hooks")}, ""},
		{"default user refused when another is configured", delivery(body, "forgeway", cur), forge.VerifyKeys{Secrets: []string{cur}, Integration: settings(SettingWebhookUser, "svc-hooks")}, "user name"},
		{"wrong user", delivery(body, "someone", cur), forge.VerifyKeys{Secrets: []string{cur}}, "user name"},
		{"wrong password", delivery(body, "forgeway", "guess"), forge.VerifyKeys{Secrets: []string{cur, prev}}, "none of the 2 configured"},
		{"empty secrets skipped", delivery(body, "forgeway", "x"), forge.VerifyKeys{Secrets: []string{"", cur}}, "none of the 1 configured"},
		{"no secret configured", delivery(body, "forgeway", "x"), forge.VerifyKeys{Secrets: []string{""}}, "no webhook secret"},
		{"no Authorization header", delivery(body, "", ""), forge.VerifyKeys{Secrets: []string{cur}}, "no Authorization header"},
		{"bearer instead of basic", raw("Bearer " + cur), forge.VerifyKeys{Secrets: []string{cur}}, "not HTTP basic"},
		{"bad base64", raw("Basic !!!"), forge.VerifyKeys{Secrets: []string{cur}}, "not HTTP basic"},
		{"no colon", raw("Basic " + base64.StdEncoding.EncodeToString([]byte("forgeway"+cur))), forge.VerifyKeys{Secrets: []string{cur}}, "not HTTP basic"},
		{"secret header required and missing", delivery(body, "forgeway", cur), forge.VerifyKeys{Secrets: []string{cur}, Integration: settings(SettingWebhookHeader, "X-Forgeway-Token")}, "is missing"},
		{"secret header wrong", withHeader(delivery(body, "forgeway", cur), "X-Forgeway-Token", HeaderToken(prev)),
			forge.VerifyKeys{Secrets: []string{cur, prev}, Integration: settings(SettingWebhookHeader, "X-Forgeway-Token")}, "does not match"},
		{"secret header right", withHeader(delivery(body, "forgeway", cur), "X-Forgeway-Token", HeaderToken(cur)),
			forge.VerifyKeys{Secrets: []string{cur}, Integration: settings(SettingWebhookHeader, "X-Forgeway-Token")}, ""},
		{"secret header of the previous secret", withHeader(delivery(body, "forgeway", prev), "x-forgeway-token", HeaderToken(prev)),
			forge.VerifyKeys{Secrets: []string{cur, prev}, Integration: settings(SettingWebhookHeader, "X-Forgeway-Token")}, ""},
		{"the raw secret is not the header token", withHeader(delivery(body, "forgeway", cur), "X-Forgeway-Token", cur),
			forge.VerifyKeys{Secrets: []string{cur}, Integration: settings(SettingWebhookHeader, "X-Forgeway-Token")}, "does not match"},
	}
	w := New()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := w.Verify(tc.d, tc.keys)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, forge.ErrSignature) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Verify error %v, want ErrSignature saying %q", err, tc.wantErr)
			}
			for _, s := range append(tc.keys.Secrets, "svc-hooks", HeaderToken(cur), HeaderToken(prev)) {
				if s != "" && strings.Contains(err.Error(), s) {
					t.Errorf("error %q reveals %q", err, s)
				}
			}
		})
	}
}

func TestIdentify(t *testing.T) {
	tests := []struct {
		name string
		body string
		want forge.DeliveryInfo
	}{
		{"real push", `{"subscriptionId":"AAAA-1","notificationId":4,"id":"E-1","eventType":"git.push","resource":{"repository":{"id":"r"}}}`,
			forge.DeliveryInfo{ID: "aaaa-1:e-1", Event: "git.push"}},
		{"pull request status as action", `{"subscriptionId":"s","id":"e","eventType":"git.pullrequest.updated","resource":{"status":"abandoned"}}`,
			forge.DeliveryInfo{ID: "s:e", Event: "git.pullrequest.updated", Action: "abandoned"}},
		{"status of other events is no action", `{"subscriptionId":"s","id":"e","eventType":"build.complete","resource":{"status":"completed"}}`,
			forge.DeliveryInfo{ID: "s:e", Event: "build.complete"}},
		{"test from the subscription dialog", `{"subscriptionId":"00000000-0000-0000-0000-000000000000","notificationId":2,"id":"x","eventType":"git.push"}`,
			forge.DeliveryInfo{ID: "00000000-0000-0000-0000-000000000000:x:2", Event: "git.push", Test: true}},
		{"sample id on another repository is real", `{"subscriptionId":"s","notificationId":2,"id":"03c164c2-8912-4d5e-8009-3707d5f83734","eventType":"git.push","resource":{"repository":{"id":"d5bb1147-bd9f-4ae1-8554-aec3d164f94c"}}}`,
			forge.DeliveryInfo{ID: "s:03c164c2-8912-4d5e-8009-3707d5f83734", Event: "git.push"}},
		{"no subscription", `{"id":"e","eventType":"git.push"}`, forge.DeliveryInfo{ID: "e", Event: "git.push"}},
		{"fields of odd types are left out", `{"subscriptionId":5,"notificationId":"x","id":"e","eventType":"git.pullrequest.created","resource":{"status":3,"repository":[]}}`,
			forge.DeliveryInfo{ID: "e", Event: "git.pullrequest.created"}},
		{"byte-order mark", "\xef\xbb\xbf" + `{"subscriptionId":"s","id":"e","eventType":"git.push"}`, forge.DeliveryInfo{ID: "s:e", Event: "git.push"}},
	}
	w := New()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.Identify(forge.Delivery{Header: http.Header{}, Body: []byte(tc.body)})
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tc.want.ID || got.Event != tc.want.Event || got.Action != tc.want.Action || got.Test != tc.want.Test || got.RouteKeys != nil {
				t.Errorf("Identify = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestIdentifyDerivesAStableID(t *testing.T) {
	w := New()
	body := []byte(`{"eventType":"git.push","resource":{}}`)
	a, err := w.Identify(forge.Delivery{Body: body})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := w.Identify(forge.Delivery{Body: append([]byte(nil), body...)})
	c, _ := w.Identify(forge.Delivery{Body: []byte(`{"eventType":"git.push","resource":{"x":1}}`)})
	if !strings.HasPrefix(a.ID, "sha256:") || a.ID != b.ID || a.ID == c.ID {
		t.Errorf("derived ids %q %q %q", a.ID, b.ID, c.ID)
	}
}

func TestIdentifyMalformed(t *testing.T) {
	w := New()
	for _, body := range []string{``, `[]`, `"git.push"`, `{"eventType":`, `{"id":"e"}`, `{"eventType":7}`, `null`} {
		if _, err := w.Identify(forge.Delivery{Body: []byte(body)}); !errors.Is(err, forge.ErrMalformed) {
			t.Errorf("Identify(%q) = %v, want ErrMalformed", body, err)
		}
	}
}

func TestMaxBodyBytes(t *testing.T) {
	if New().MaxBodyBytes() < 1<<20 {
		t.Errorf("MaxBodyBytes %d is too small for a push", New().MaxBodyBytes())
	}
}
