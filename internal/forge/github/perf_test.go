package github

import (
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
	"testing"
	"time"
)

func TestListingIsConcurrent(t *testing.T) {
	e := newEnv(t, githubfake.Options{Unchecked: true})
	in, _ := e.tokenIntegration("alice")
	e.fake.AddRepositories("alice", 10000)
	c := e.open(in)
	e.fake.SetLatency(20 * time.Millisecond)
	start := time.Now()
	all, pages, err := collect(t, c)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 10000 || pages != 100 {
		t.Fatalf("%d repositories in %d pages", len(all), pages)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].FullName >= all[i].FullName {
			t.Fatalf("repository %d (%s) comes after %s: pages out of order", i, all[i].FullName, all[i-1].FullName)
		}
	}
	t.Logf("100 pages at 20 ms each: %s", elapsed)
	if elapsed > 2*time.Second && !raceEnabled {
		t.Errorf("listing took %s; sequential would be 2 s", elapsed)
	}
}
