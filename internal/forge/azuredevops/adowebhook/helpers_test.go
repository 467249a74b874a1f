package adowebhook

import (
	"context"
	"encoding/json"
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

// delivery builds a delivery as Azure DevOps sends it for a subscription whose basic-auth
// user and password are user and password (none when password is empty).
func delivery(body []byte, user, password string) forge.Delivery {
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	if password != "" {
		h.Set("Authorization", BasicAuth(user, password))
	}
	return forge.Delivery{Header: h, Body: body, ReceivedAt: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
}

// withIdentity returns doc with its top-level subscriptionId, notificationId and id replaced
// (an empty value removes the field), as Azure DevOps sets them on a real notification.
func withIdentity(tb testing.TB, doc []byte, subscription string, notification int, id string) []byte {
	tb.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		tb.Fatalf("corpus payload is not an object: %v", err)
	}
	set := func(k string, v any, keep bool) {
		if !keep {
			delete(m, k)
			return
		}
		b, _ := json.Marshal(v)
		m[k] = b
	}
	set("subscriptionId", subscription, subscription != "")
	set("notificationId", notification, notification != 0)
	set("id", id, id != "")
	out, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatalf("parse %q: %v", s, err)
	}
	return v.UTC()
}

// heads is a forge.State holding the last source head of pull requests, keyed "repo#number";
// it counts its calls.
type heads struct {
	m     map[string]string
	err   error
	calls int
}

func (h *heads) PullRequestHead(_ context.Context, repo string, number int64) (string, bool, error) {
	h.calls++
	if h.err != nil {
		return "", false, h.err
	}
	sha, ok := h.m[repo+"#"+itoa(number)]
	return sha, ok, nil
}

// noState fails the test if Normalize asks about the past.
type noState struct{ tb testing.TB }

func (s noState) PullRequestHead(_ context.Context, repo string, number int64) (string, bool, error) {
	s.tb.Errorf("PullRequestHead(%s, %d) called where the payload says everything", repo, number)
	return "", false, nil
}
