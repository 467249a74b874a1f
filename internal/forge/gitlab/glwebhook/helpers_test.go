package glwebhook

import (
	"context"
	"net/http"
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

// eventOf is the X-Gitlab-Event of a corpus file, from its name as HEADERS.md lists them.
func eventOf(name string) string {
	base := filepath.Base(name)
	switch {
	case strings.HasPrefix(base, "tag_push"):
		return "Tag Push Hook"
	case strings.HasPrefix(base, "push"):
		return "Push Hook"
	case strings.HasPrefix(base, "merge_request"):
		return "Merge Request Hook"
	case strings.HasPrefix(base, "project_hook"):
		return "Project Hook"
	case strings.HasPrefix(base, "system_hook"):
		return "System Hook"
	}
	return ""
}

var received = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// delivery builds a delivery as GitLab sends it: its headers, the secret token and, when
// signingToken is set, the Standard Webhooks signature made at sentAt.
func delivery(tb testing.TB, event, id, secret, signingToken string, sentAt time.Time, body []byte) forge.Delivery {
	tb.Helper()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "GitLab/17.5.0")
	h.Set(HeaderEvent, event)
	h.Set(HeaderIdempotencyKey, id)
	h.Set(HeaderEventUUID, "9cebe914-4827-408f-b014-cfa23a47a35f")
	h.Set(HeaderWebhookUUID, "3c5c0404-c866-44bc-a5f6-452bb1bfc76e")
	h.Set(HeaderInstance, "https://gitlab.example.com")
	if err := Authenticate(h, secret, signingToken, id, sentAt, body); err != nil {
		tb.Fatalf("Authenticate: %v", err)
	}
	return forge.Delivery{Header: h, Body: body, ReceivedAt: received}
}

func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		tb.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// noState fails the test if Normalize asks about the past: GitLab says everything itself.
type noState struct{ tb testing.TB }

func (s noState) PullRequestHead(_ context.Context, repo string, number int64) (string, bool, error) {
	s.tb.Errorf("PullRequestHead(%s, %d) called; GitLab normalization must not need state", repo, number)
	return "", false, nil
}
