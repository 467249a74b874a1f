package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/api"
)

// jobScript answers GET /api/v1/jobs/{id} with the next state of a script, repeating the last.
func jobScript(t *testing.T, f *fakeAPI, id string, states ...api.Job) {
	t.Helper()
	var mu sync.Mutex
	i := 0
	f.on("GET /api/v1/jobs/"+id, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		j := states[min(i, len(states)-1)]
		i++
		mu.Unlock()
		writeTestJSON(w, 200, j)
	})
}

func progress(s string) json.RawMessage { return json.RawMessage(s) }

func TestRefreshWaitShowsProgressUntilCompleted(t *testing.T) {
	f := newFake(t)
	start := api.Job{ID: 9, Kind: "integration.discover", State: "available", Attempt: 0, MaxAttempts: 10}
	f.json("POST /api/v1/integrations/int_1/refresh", 202, start)
	run1 := api.Job{ID: 9, Kind: "integration.discover", State: "running", Attempt: 1, MaxAttempts: 10, Progress: progress(`{"phase":"listing","repositories":100,"pages":1,"matched":90}`)}
	run2 := run1
	run2.Progress = progress(`{"phase":"listing","repositories":1200,"pages":12,"matched":1100}`)
	done := run2
	done.State = "completed"
	// run1 twice: an unchanged state prints no new line.
	jobScript(t, f, "9", run1, run1, run2, done)
	r := run(t, f.srv.URL, "integrations", "refresh", "int_1", "--wait")
	wantCode(t, r, 0)
	wantErr := []string{
		"job 9 (integration.discover) available",
		"job 9 (integration.discover) running: repositories: 100, pages: 1, matched: 90 (listing)",
		"job 9 (integration.discover) running: repositories: 1200, pages: 12, matched: 1100 (listing)",
	}
	if diff := cmp.Diff(wantErr, lines(r.stderr)); diff != "" {
		t.Errorf("progress lines (-want +got):\n%s", diff)
	}
	if r.stdout != "job 9 (integration.discover) completed: repositories: 1200, pages: 12, matched: 1100 (listing)\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
}

func TestWaitOnATerminalUpdatesOneLine(t *testing.T) {
	f := newFake(t)
	f.json("POST /api/v1/repositories/r1/sync", 202, api.Job{ID: 4, Kind: "repository.sync", State: "running", Attempt: 1, MaxAttempts: 8})
	// git progress is reported without JSON tags.
	p1 := api.Job{ID: 4, Kind: "repository.sync", State: "running", Attempt: 1, MaxAttempts: 8, Progress: progress(`{"Phase":"Receiving objects","Percent":45,"Done":9,"Total":20}`)}
	p2 := p1
	p2.Progress = progress(`{"Phase":"Resolving deltas","Percent":100,"Done":20,"Total":20}`)
	done := api.Job{ID: 4, Kind: "repository.sync", State: "completed", Attempt: 1, MaxAttempts: 8, Progress: progress(`{"cloned":true,"updated":3,"duration_ms":1500}`)}
	jobScript(t, f, "4", p1, p2, done)
	r := runWith(t, f.srv.URL, runOpts{terminal: true}, "repos", "sync", "r1", "--wait")
	wantCode(t, r, 0)
	want := "\r\033[Kjob 4 (repository.sync) running" +
		"\r\033[Kjob 4 (repository.sync) running: Receiving objects 45% (9/20)" +
		"\r\033[Kjob 4 (repository.sync) running: Resolving deltas 100% (20/20)" +
		"\r\033[K"
	if r.stderr != want {
		t.Errorf("stderr = %q\nwant     %q", r.stderr, want)
	}
	if strings.Contains(r.stderr, "\n") {
		t.Errorf("a terminal got more than one line: %q", r.stderr)
	}
	if r.stdout != "job 4 (repository.sync) completed: cloned: true, updated: 3, duration: 1.5s\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
}

func TestWaitFailsWhenTheJobIsDead(t *testing.T) {
	f := newFake(t)
	f.json("POST /api/v1/repositories/r1/push", 202, api.Job{ID: 5, Kind: "repository.push", State: "available", MaxAttempts: 2})
	retry := api.Job{ID: 5, Kind: "repository.push", State: "retryable", Attempt: 1, MaxAttempts: 2, LastError: "remote rejected", RunAt: created}
	dead := api.Job{ID: 5, Kind: "repository.push", State: "dead", Attempt: 2, MaxAttempts: 2, LastError: "remote rejected: protected branch"}
	jobScript(t, f, "5", retry, dead)
	r := run(t, f.srv.URL, "repos", "push", "r1", "main", "--wait")
	wantCode(t, r, 1)
	wantErr := []string{
		"job 5 (repository.push) available",
		"job 5 (repository.push) retryable, attempt 1/2, next try at 2026-03-04T05:06:07Z (last error: remote rejected)",
		"error: job 5 (repository.push) is dead: remote rejected: protected branch",
		"hint: See `forgeway jobs get 5`; once the cause is fixed, run it again with `forgeway jobs retry 5`.",
	}
	if diff := cmp.Diff(wantErr, lines(r.stderr)); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
	if r.stdout != "job 5 (repository.push) dead, attempt 2/2\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
}

func TestJobsWaitJSONAndRetry(t *testing.T) {
	f := newFake(t)
	jobScript(t, f, "8", api.Job{ID: 8, Kind: "k", State: "running"}, api.Job{ID: 8, Kind: "k", State: "completed"})
	r := run(t, f.srv.URL, "--json", "jobs", "wait", "8")
	wantCode(t, r, 0)
	var j api.Job
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.State != "completed" {
		t.Errorf("stdout = %q (%v)", r.stdout, err)
	}
	f.json("POST /api/v1/jobs/8/retry", 202, api.Job{ID: 8, Kind: "k", State: "available"})
	r = run(t, f.srv.URL, "jobs", "retry", "8", "--wait")
	wantCode(t, r, 0)
}

func TestWaitStopsWhenInterrupted(t *testing.T) {
	f := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	n := 0
	f.on("GET /api/v1/jobs/6", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		if n == 3 {
			cancel() // the user presses Ctrl-C while the job runs
		}
		mu.Unlock()
		writeTestJSON(w, 200, api.Job{ID: 6, Kind: "k", State: "running"})
	})
	done := make(chan result, 1)
	go func() { done <- runWith(t, f.srv.URL, runOpts{ctx: ctx}, "jobs", "wait", "6") }()
	select {
	case r := <-done:
		wantCode(t, r, 1)
		if !strings.Contains(r.stderr, "stopped waiting for job 6") || !strings.Contains(r.stderr, "hint: Wait for it again with `forgeway jobs wait 6`") {
			t.Errorf("stderr = %q", r.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not stop on interruption")
	}
}

func TestProgressText(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{``, ""},
		{`null`, ""},
		{`{"phase":"listing","repositories":1200,"pages":12,"matched":0}`, "repositories: 1200, pages: 12, matched: 0 (listing)"},
		{`{"Phase":"Receiving objects","Percent":45,"Done":9,"Total":20}`, "Receiving objects 45% (9/20)"},
		{`{"Phase":"remote: Enumerating objects","Percent":0,"Done":5,"Total":0}`, "remote: Enumerating objects 5"},
		{`{"repaired":2}`, "repaired: 2"},
		{`{"zeta":"z","alpha":[1,2],"pages":3}`, "pages: 3, alpha: [1,2], zeta: z"},
		{`{"phase":"removing"}`, "removing"},
		{`"just text"`, `"just text"`},
	}
	for _, tt := range tests {
		if got := progressText(json.RawMessage(tt.raw)); got != tt.want {
			t.Errorf("progressText(%s) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}
