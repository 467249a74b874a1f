package bbwebhook

import (
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/forgeway/forgeway/internal/forge"
)

// corpusDir finds the shared Bitbucket DC corpus: $FORGEWAY_SHARED/corpus/bitbucket-dc, else
// the shared folder beside the repository checkout. A missing corpus fails the test: the
// corpus is the point of these tests.
func corpusDir(tb testing.TB) string {
	tb.Helper()
	shared, err := apicheck.SharedDir()
	if err != nil {
		tb.Fatalf("Bitbucket corpus not found (set FORGEWAY_SHARED to the shared folder): %v", err)
	}
	dir := filepath.Join(shared, "corpus", "bitbucket-dc")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		tb.Fatalf("Bitbucket corpus not found at %s (set FORGEWAY_SHARED to the shared folder): %v", dir, err)
	}
	return dir
}

// corpusFiles reads every payload of the corpus, subfolders (go-scm/) included, by path
// relative to the corpus folder.
func corpusFiles(tb testing.TB) map[string][]byte {
	tb.Helper()
	dir := corpusDir(tb)
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".json" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		tb.Fatalf("read corpus: %v", err)
	}
	if len(files) == 0 {
		tb.Fatalf("no payloads in %s", dir)
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
