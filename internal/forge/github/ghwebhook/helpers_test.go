package ghwebhook

import (
	"context"
	"net/http"
	"net/url"
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

// eventOf is the X-GitHub-Event of a corpus file: the first part of its name.
func eventOf(name string) string {
	event, _, _ := strings.Cut(name, ".")
	return event
}

// delivery builds a signed delivery as GitHub sends it. form switches to the
// application/x-www-form-urlencoded content type (payload=<urlencoded JSON>).
func delivery(event, id, secret string, doc []byte, form bool) forge.Delivery {
	body := doc
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if form {
		body = []byte(url.Values{"payload": {string(doc)}}.Encode())
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	h.Set(HeaderDelivery, id)
	h.Set(HeaderEvent, event)
	h.Set("User-Agent", "GitHub-Hookshot/044aadd")
	if secret != "" {
		h.Set(HeaderSignature, Sign(secret, body))
	}
	return forge.Delivery{Header: h, Body: body, ReceivedAt: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
}

func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		tb.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// noState fails the test if Normalize asks about the past: GitHub says everything itself.
type noState struct{ tb testing.TB }

func (s noState) PullRequestHead(_ context.Context, repo string, number int64) (string, bool, error) {
	s.tb.Errorf("PullRequestHead(%s, %d) called; GitHub normalization must not need state", repo, number)
	return "", false, nil
}
