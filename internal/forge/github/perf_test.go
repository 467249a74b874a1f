package github

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
)

// inFlight counts concurrent listing requests.
type inFlight struct {
	base     http.RoundTripper
	mu       sync.Mutex
	now, max int
}

func (f *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	listing := strings.HasSuffix(r.URL.Path, "/user/repos")
	if listing {
		f.mu.Lock()
		f.now++
		f.max = max(f.max, f.now)
		f.mu.Unlock()
		defer func() { f.mu.Lock(); f.now--; f.mu.Unlock() }()
	}
	return f.base.RoundTrip(r)
}

// TestListingIsConcurrent lists 100 pages from a host answering each in 20 ms and checks
// that pages are fetched several at a time, never more than the bound, and delivered in order. The description check
// is off here (its CPU cost on 10,000 repositories would swamp the measure); the other
// listing tests keep it on.
func TestListingIsConcurrent(t *testing.T) {
	pages := 100
	if raceEnabled {
		pages = 20 // the race detector makes the JSON work several times slower
	}
	e := newEnv(t, githubfake.Options{Unchecked: true})
	in, _ := e.tokenIntegration("alice")
	e.fake.AddRepositories("alice", pages*100)
	counter := &inFlight{base: e.fake.Client().Transport}
	if _, err := New().Configure(&in); err != nil {
		t.Fatal(err)
	}
	fc, err := New().Open(context.Background(), in, forge.Env{HTTP: &http.Client{Transport: counter}, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := fc.(*Client)
	e.fake.SetLatency(20 * time.Millisecond)
	start := time.Now()
	all, got, err := collect(t, c)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != pages*100 || got != pages {
		t.Fatalf("%d repositories in %d pages", len(all), got)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].FullName >= all[i].FullName {
			t.Fatalf("repository %d (%s) comes after %s: pages out of order", i, all[i].FullName, all[i-1].FullName)
		}
	}
	t.Logf("%d pages at 20 ms each: %s, at most %d at once", pages, elapsed, counter.max)
	if counter.max > listConcurrency || counter.max < 2 {
		t.Errorf("%d requests in flight at once, want 2…%d", counter.max, listConcurrency)
	}
	// The time itself is measured where it belongs, in BenchmarkP3Discovery (internal/e2e).
}
