package giteawebhook

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest/corpus"
)

// FuzzVerify checks that Verify never panics on any header and body, that a signature made
// with Sign under a non-empty secret always passes (under Gitea's header and Forgejo's), and
// that every failure is ErrSignature.
func FuzzVerify(f *testing.F) {
	files := corpus.Files(f, "gitea")
	for _, name := range sortedKeys(files) {
		body := files[name]
		f.Add(body, Sign("corpus-secret", body), "corpus-secret", "application/json")
	}
	f.Add([]byte("Hello, World!"), "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "It's a Secret to Everybody", "")
	f.Add([]byte{}, "", "", "")
	f.Add([]byte("payload=%7B%7D"), "zz", "s", "application/x-www-form-urlencoded")
	f.Add([]byte("x"), "sha256=00", "s", "text/plain")

	w := New()
	f.Fuzz(func(t *testing.T, body []byte, header, secret, contentType string) {
		h := http.Header{}
		h.Set(HeaderSignature, header)
		h.Set("Content-Type", contentType)
		err := w.Verify(forge.Delivery{Header: h, Body: body}, forge.VerifyKeys{Secrets: []string{secret, "other"}})
		if err != nil && !errors.Is(err, forge.ErrSignature) {
			t.Fatalf("Verify error %q does not wrap ErrSignature", err)
		}
		if secret == "" {
			return
		}
		// Sign the body as a JSON delivery, under each header family.
		for _, name := range []string{HeaderSignature, HeaderForgejoSignature} {
			h := http.Header{}
			h.Set(name, Sign(secret, body))
			if err := w.Verify(forge.Delivery{Header: h, Body: body}, forge.VerifyKeys{Secrets: []string{"other", secret}}); err != nil {
				t.Fatalf("Verify of Sign(secret, body) under %s: %v", name, err)
			}
		}
	})
}

// FuzzNormalize checks that Identify and Normalize never panic, that their failures are
// ErrMalformed, and that a successful Normalize either gives events or says why not.
func FuzzNormalize(f *testing.F) {
	files := corpus.Files(f, "gitea")
	for _, name := range sortedKeys(files) {
		f.Add(eventOfFile(name), "application/json", files[name])
	}
	f.Add("push", "application/x-www-form-urlencoded", []byte("payload=%7B%22ref%22%3A%22refs%2Fheads%2Fx%22%7D"))
	f.Add("push", "", []byte(modernPush))
	f.Add("push", "", []byte(`{"ref":"refs/heads/x","before":"1","after":"1"}`))
	f.Add("repository", "application/json", []byte(`{"action":"created","repository":{"id":1}}`))
	f.Add("pull_request", "application/json", []byte(`{"action":"closed","pull_request":{"merged":true,"merge_commit_sha":null}}`))
	f.Add("issues", "text/plain", []byte(`{}`))

	w := New()
	f.Fuzz(func(t *testing.T, event, contentType string, body []byte) {
		h := http.Header{}
		h.Set(HeaderDelivery, "fuzz")
		h.Set(HeaderEvent, event)
		h.Set("Content-Type", contentType)
		d := forge.Delivery{Header: h, Body: body}
		if _, err := w.Identify(d); err != nil && !errors.Is(err, forge.ErrMalformed) {
			t.Fatalf("Identify error %q does not wrap ErrMalformed", err)
		}
		res, err := w.Normalize(context.Background(), d, noState{t})
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
