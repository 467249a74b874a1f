// Package corpus reads the shared corpus of real webhook deliveries (shared/corpus/<host>,
// go-scm/ included) for tests. A missing corpus fails the test: it is the point of the tests
// that read it.
package corpus

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/apicheck"
)

// Dir is the corpus of one host (its directory name: github, gitlab, bitbucket-dc,
// azure-devops, gitea).
func Dir(tb testing.TB, host string) string {
	tb.Helper()
	shared, err := apicheck.SharedDir()
	if err != nil {
		tb.Fatalf("find the corpus: %v", err)
	}
	dir := filepath.Join(shared, "corpus", host)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		tb.Fatalf("%s corpus not found at %s (set FORGEWAY_SHARED to the shared folder): %v", host, dir, err)
	}
	return dir
}

// Files reads every payload of a host's corpus, by its path relative to the corpus
// ("push.json", "go-scm/push.json").
func Files(tb testing.TB, host string) map[string][]byte {
	tb.Helper()
	dir := Dir(tb, host)
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
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
		tb.Fatalf("read the %s corpus: %v", host, err)
	}
	if len(files) == 0 {
		tb.Fatalf("no payloads in %s", dir)
	}
	return files
}

// Names lists a corpus's file names in order.
func Names(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
