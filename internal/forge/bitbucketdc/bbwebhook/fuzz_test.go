package bbwebhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest/corpus"
)

// FuzzVerify checks that Verify never panics on any header and body, that a signature made
// with Sign under a non-empty secret always passes, and that every failure is ErrSignature.
func FuzzVerify(f *testing.F) {
	files := corpus.Files(f, "bitbucket-dc")
	for _, name := range sortedKeys(files) {
		body := files[name]
		f.Add(body, Sign("corpus-secret", body), "corpus-secret")
	}
	kat := files["go-scm/repo.refs_changed.json"]
	f.Add(kat, "sha256=c90565fa018f3039414a7929c9187a147f1ac463076961c4cf411e3c67c541f8", "71295b197fa25f4356d2fb9965df3f2379d903d7")
	f.Add([]byte{}, "sha256=", "")
	f.Add([]byte("x"), "sha1=00", "s")
	f.Add([]byte("x"), "SHA256=zz", "s")
	f.Add([]byte("x"), "=", "s")

	w := New()
	f.Fuzz(func(t *testing.T, body []byte, header, secret string) {
		h := http.Header{}
		h.Set(HeaderSignature, header)
		err := w.Verify(forge.Delivery{Header: h, Body: body}, forge.VerifyKeys{Secrets: []string{secret, "other"}})
		if err != nil && !errors.Is(err, forge.ErrSignature) {
			t.Fatalf("Verify error %q does not wrap ErrSignature", err)
		}
		if secret == "" {
			return
		}
		h.Set(HeaderSignature, Sign(secret, body))
		if err := w.Verify(forge.Delivery{Header: h, Body: body}, forge.VerifyKeys{Secrets: []string{"other", secret}}); err != nil {
			t.Fatalf("Verify of Sign(secret, body): %v", err)
		}
	})
}

// FuzzNormalize checks that Identify and Normalize never panic, that their failures are
// ErrMalformed, that a successful Normalize either gives events or says why not, and that
// every event it gives can be encoded (the core stores it as JSON).
func FuzzNormalize(f *testing.F) {
	files := corpus.Files(f, "bitbucket-dc")
	for _, name := range sortedKeys(files) {
		var top struct {
			EventKey string `json:"eventKey"`
		}
		_ = json.Unmarshal(files[name], &top)
		f.Add(top.EventKey, files[name])
	}
	f.Add(EventPing, []byte(`{"test":true}`))
	f.Add("repo:refs_changed", []byte(`{"repository":{"id":1,"slug":"s","project":{"key":"K"}},"changes":[{"refId":"refs/heads/x","type":"ADD"}]}`))
	f.Add("pr:opened", []byte(`{"pullRequest":{"id":1,"toRef":{"repository":{"id":1,"slug":"s","project":{"key":"K"}}},"updatedDate":"x"}}`))
	f.Add("", []byte(`{"eventKey":"pr:deleted","pullRequest":null}`))
	f.Add("pr:comment:added", []byte(`[]`))

	w := New()
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		h := http.Header{}
		h.Set(HeaderRequestID, "fuzz")
		h.Set(HeaderEvent, event)
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
		if (len(res.Events) == 0) == (res.Ignored == "") {
			t.Fatalf("Normalize must give events or a reason, not both or neither: %+v", res)
		}
		for _, ev := range res.Events {
			if ev.Type == "" {
				t.Fatalf("event without a type: %+v", ev)
			}
			if _, err := json.Marshal(ev.Data); err != nil {
				t.Fatalf("event data does not encode: %v", err)
			}
		}
	})
}
