package ghwebhook

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// corpusDir finds the shared GitHub corpus: $FORGEWAY_SHARED/corpus/github, else the shared
// folder beside the repository checkout (X/main/internal/forge/github/ghwebhook → X/shared).
// A missing corpus fails the test: the corpus is the point of these tests.
func corpusDir(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("FORGEWAY_SHARED")
	if base == "" {
		wd, err := os.Getwd()
		if err != nil {
			tb.Fatalf("find corpus: %v", err)
		}
		base = filepath.Join(wd, "..", "..", "..", "..", "..", "shared")
	}
	dir := filepath.Join(base, "corpus", "github")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		tb.Fatalf("GitHub corpus not found at %s (set FORGEWAY_SHARED to the shared folder): %v", dir, err)
	}
	return dir
}

// corpusFiles lists the corpus payloads by file name.
func corpusFiles(tb testing.TB) map[string][]byte {
	tb.Helper()
	dir := corpusDir(tb)
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		tb.Fatalf("list corpus: %v", err)
	}
	if len(names) == 0 {
		tb.Fatalf("no payloads in %s", dir)
	}
	files := make(map[string][]byte, len(names))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			tb.Fatalf("read corpus file: %v", err)
		}
		files[filepath.Base(n)] = b
	}
	return files
}

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
