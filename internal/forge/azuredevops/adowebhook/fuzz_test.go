package adowebhook

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest/corpus"
)

// FuzzVerify checks that Verify never panics on any body, header and secret, that every
// failure is ErrSignature, and that a delivery authenticated with BasicAuth under a non-empty
// secret and a user without a colon always passes, whatever its body.
func FuzzVerify(f *testing.F) {
	files := corpus.Files(f, "azure-devops")
	for _, name := range sortedKeys(files) {
		f.Add(files[name], BasicAuth("forgeway", "corpus-secret"), "forgeway", "corpus-secret", "")
	}
	f.Add([]byte("{}"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Aladdin", "open sesame", "")
	f.Add([]byte{}, "Basic", "", "", "")
	f.Add([]byte("x"), "Bearer x", "u", "p", "X-Token")
	f.Add([]byte("x"), "basic !!", "u", "p", "X-Token")
	w := New()
	f.Fuzz(func(t *testing.T, body []byte, auth, user, secret, header string) {
		h := http.Header{}
		h.Set("Authorization", auth)
		keys := forge.VerifyKeys{Secrets: []string{secret, "other"},
			Integration: forge.Integration{Settings: map[string]string{SettingWebhookUser: user, SettingWebhookHeader: header}}}
		if err := w.Verify(forge.Delivery{Header: h, Body: body}, keys); err != nil && !errors.Is(err, forge.ErrSignature) {
			t.Fatalf("Verify error %q does not wrap ErrSignature", err)
		}
		if secret == "" || containsAny(user, ":\r\n") || containsAny(header, ":\r\n ") || header != strings.TrimSpace(header) || user != strings.TrimSpace(user) {
			return
		}
		if user == "" {
			user = DefaultWebhookUser
		}
		h = http.Header{}
		h.Set("Authorization", BasicAuth(user, secret))
		if header != "" {
			if !validHeaderName(header) {
				return
			}
			h.Set(header, HeaderToken(secret))
		}
		keys.Secrets = []string{"other", secret}
		if err := w.Verify(forge.Delivery{Header: h, Body: body}, keys); err != nil {
			t.Fatalf("Verify of BasicAuth(%q, secret): %v", user, err)
		}
	})
}

// FuzzNormalize checks that Identify and Normalize never panic, that their failures are
// ErrMalformed, and that a successful Normalize either gives events or says why not.
func FuzzNormalize(f *testing.F) {
	files := corpus.Files(f, "azure-devops")
	for _, name := range sortedKeys(files) {
		f.Add(files[name])
		f.Add(withIdentity(f, files[name], "435e539d-3ce2-4283-8da9-8f3c0fe2e45e", 3, "56e81d32-b0e8-44e2-a92a-55eb7b6ccdce"))
	}
	f.Add([]byte(`{"eventType":"git.push","resource":{"refUpdates":[{"name":"refs/heads/a","oldObjectId":"0","newObjectId":"1"}],"repository":{"id":"r"}}}`))
	f.Add([]byte(`{"eventType":"git.pullrequest.updated","resource":{"pullRequestId":1,"status":"active","repository":{"id":"r"},"lastMergeSourceCommit":{"commitId":"a"}}}`))
	f.Add([]byte(`{"eventType":"git.repo.created","resource":null}`))
	w := New()
	f.Fuzz(func(t *testing.T, body []byte) {
		d := forge.Delivery{Header: http.Header{}, Body: body}
		if _, err := w.Identify(d); err != nil && !errors.Is(err, forge.ErrMalformed) {
			t.Fatalf("Identify error %q does not wrap ErrMalformed", err)
		}
		res, err := w.Normalize(context.Background(), d, &heads{m: map[string]string{"r#1": "a"}})
		if err != nil {
			if !errors.Is(err, forge.ErrMalformed) {
				t.Fatalf("Normalize error %q does not wrap ErrMalformed", err)
			}
			return
		}
		if len(res.Events) == 0 && res.Ignored == "" {
			t.Fatalf("Normalize gave no event and no reason: %+v", res)
		}
		if len(res.Events) > 0 && res.Ignored != "" {
			t.Fatalf("Normalize gave events and a reason to ignore: %+v", res)
		}
	})
}

func containsAny(s, chars string) bool {
	for _, c := range chars {
		for _, x := range s {
			if x == c {
				return true
			}
		}
	}
	return false
}

// validHeaderName reports an RFC 9110 token, the only names net/http carries as given.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c >= 0x7f || c <= ' ' || containsAny(string(c), "\"(),/:;<=>?@[\\]{}") {
			return false
		}
	}
	return true
}
