package glwebhook

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/forgetest/corpus"
)

// FuzzVerify checks that Verify never panics on any headers and body, that every failure is
// ErrSignature, and that a delivery authenticated with Authenticate under non-empty secrets
// always passes.
func FuzzVerify(f *testing.F) {
	files := corpus.Files(f, "gitlab")
	for _, name := range sortedKeys(files) {
		f.Add(files[name], "corpus-secret", "corpus-secret", "idem-1", int64(0), "")
	}
	f.Add([]byte(katBody), "", "", katID, int64(katTimestamp), katSignature)
	f.Add([]byte{}, "x", "y", "", int64(-1), "v1,")
	f.Add([]byte("x"), "s", "s", "id", int64(1<<62), "v1,AAAA v2,BBBB")

	w := New()
	signing := map[string]string{SecretSigningToken: katSecret}
	f.Fuzz(func(t *testing.T, body []byte, token, secret, id string, ts int64, signature string) {
		h := http.Header{}
		h.Set(HeaderToken, token)
		h.Set(HeaderWebhookID, id)
		h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
		h.Set(HeaderWebhookSignature, signature)
		d := forge.Delivery{Header: h, Body: body, ReceivedAt: time.Unix(katTimestamp, 0)}
		for _, keys := range []forge.VerifyKeys{
			{Secrets: []string{secret, "other"}},
			{Secrets: []string{secret}, Integration: forge.Integration{Secrets: signing}},
		} {
			if err := w.Verify(d, keys); err != nil && !errors.Is(err, forge.ErrSignature) {
				t.Fatalf("Verify error %q does not wrap ErrSignature", err)
			}
		}
		// HTTP strips the whitespace around header values, so an id with some cannot arrive
		// as it was signed.
		if secret == "" || id == "" || id != strings.TrimSpace(id) {
			return
		}
		good := http.Header{}
		sent := time.Unix(katTimestamp, 0)
		if err := Authenticate(good, secret, katSecret, id, sent, body); err != nil {
			t.Fatal(err)
		}
		if err := w.Verify(forge.Delivery{Header: good, Body: body, ReceivedAt: sent},
			forge.VerifyKeys{Secrets: []string{"other", secret}, Integration: forge.Integration{Secrets: signing}}); err != nil {
			t.Fatalf("Verify of an authenticated delivery: %v", err)
		}
	})
}

// FuzzNormalize checks that Identify and Normalize never panic, that their failures are
// ErrMalformed, and that a successful Normalize either gives events or says why not.
func FuzzNormalize(f *testing.F) {
	files := corpus.Files(f, "gitlab")
	for _, name := range sortedKeys(files) {
		f.Add(eventOf(name), files[name])
	}
	f.Add("Merge Request Hook", []byte(`{"object_kind":"merge_request","object_attributes":{"action":"update","iid":1,"oldrev":"a"}}`))
	f.Add("System Hook", []byte(`{"event_name":"project_transfer","project_id":1}`))
	f.Add("Note Hook", []byte(`{"object_kind":"note","object_attributes":{"action":1}}`))
	f.Add("", []byte(`{}`))

	w := New()
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		h := http.Header{}
		h.Set(HeaderEvent, event)
		d := forge.Delivery{Header: h, Body: body}
		info, err := w.Identify(d)
		if err != nil && !errors.Is(err, forge.ErrMalformed) {
			t.Fatalf("Identify error %q does not wrap ErrMalformed", err)
		}
		if err == nil && info.ID == "" {
			t.Fatal("Identify gave no id")
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
