package bbwebhook

import (
	"context"
	"net/http"
	"sort"
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

// delivery builds a delivery as Bitbucket sends it, signed with secret when it is not empty.
func delivery(event, id, secret string, body []byte) forge.Delivery {
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	if id != "" {
		h.Set(HeaderRequestID, id)
	}
	if event != "" {
		h.Set(HeaderEvent, event)
	}
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

// noState fails the test if Normalize asks about the past: Bitbucket says everything itself.
type noState struct{ tb testing.TB }

func (s noState) PullRequestHead(_ context.Context, repo string, number int64) (string, bool, error) {
	s.tb.Errorf("PullRequestHead(%s, %d) called; Bitbucket normalization must not need state", repo, number)
	return "", false, nil
}
