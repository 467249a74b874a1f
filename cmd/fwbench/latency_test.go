package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// A slow server shows in the latencies, never in how far the sender fell behind: the sender
// waits for no answer, which is what lets p1 tell a server's stall from the machine's.
func TestLatencyRunSeparatesServerFromSender(t *testing.T) {
	const delay = 100 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(delay)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	l := newLoad(srv.URL, forge.GitHub, []byte(`{"ref":"refs/heads/main"}`), srv.Client())
	run := l.latency(context.Background(), 200, 500*time.Millisecond)
	if len(run.lat) != 100 || run.failed != 0 {
		t.Fatalf("%d latencies, %d failed; want 100 and 0", len(run.lat), run.failed)
	}
	if p50 := pct(run.lat, 0.50); p50 < delay {
		t.Errorf("p50 %s, below the server's own %s", p50, delay)
	}
	if run.behind >= delay {
		t.Errorf("the sender fell %s behind: the server's delay leaked into it", run.behind)
	}
}
