package giteawebhook

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// eventOfFile is the X-Gitea-Event of a corpus file: the first part of its base name.
func eventOfFile(name string) string {
	event, _, _ := strings.Cut(filepath.Base(name), ".")
	return event
}

// flavor selects the headers a delivery carries.
type flavor int

const (
	giteaHeaders   flavor = iota // what Gitea sends
	forgejoHeaders               // what Forgejo sends: its own family beside Gitea's
	forgejoOnly                  // only Forgejo's family (a proxy that dropped the others)
)

// delivery builds a delivery as Gitea sends it: the compatibility headers included, the
// signature over the JSON payload. form switches to the form content type (payload=…), whose
// signature Gitea still computes over the JSON.
func delivery(event, id, secret string, doc []byte, fl flavor, form bool) forge.Delivery {
	body := doc
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if form {
		body = []byte(url.Values{"payload": {string(doc)}}.Encode())
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	sig := ""
	if secret != "" {
		sig = Sign(secret, doc)
	}
	if fl != forgejoOnly {
		h.Set(HeaderDelivery, id)
		h.Set(HeaderEvent, event)
		h.Set(HeaderEventType, event)
		h.Set(HeaderSignature, sig)
		h.Set("X-Gogs-Delivery", id)
		h.Set("X-Gogs-Event", event)
		h.Set("X-Gogs-Signature", sig)
		h.Set("X-GitHub-Delivery", id)
		h.Set("X-GitHub-Event", event)
		h.Set("X-Hub-Signature-256", "sha256="+sig)
	}
	if fl != giteaHeaders {
		h.Set(HeaderForgejoDelivery, id)
		h.Set(HeaderForgejoEvent, event)
		h.Set(HeaderForgejoEventType, event)
		h.Set(HeaderForgejoSignature, sig)
	}
	return forge.Delivery{Header: h, Body: body, ReceivedAt: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
}

func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		tb.Fatalf("parse %q: %v", s, err)
	}
	return v.UTC()
}

// noState fails the test if Normalize asks about the past: Gitea says everything itself.
type noState struct{ tb testing.TB }

func (s noState) PullRequestHead(_ context.Context, repo string, number int64) (string, bool, error) {
	s.tb.Errorf("PullRequestHead(%s, %d) called; Gitea normalization must not need state", repo, number)
	return "", false, nil
}
