package fault

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

func q(raw string) url.Values {
	v, _ := url.ParseQuery(raw)
	return v
}

func TestTake(t *testing.T) {
	f := New(make(chan struct{}))
	f.FailNext("/user/repos?page=3", http.StatusBadGateway, nil)
	f.FailNext("/user/repos", http.StatusNotFound, http.Header{"X-A": {"1"}})
	f.FailAny(1, http.StatusTooManyRequests, nil)
	f.FailNext("*", http.StatusTeapot, nil)

	// The page-3 failure waits for page 3; the next in line that matches is taken.
	if x := f.Take("/user/repos", q("page=2"), true); x == nil || x.Status != http.StatusNotFound || x.Header.Get("X-A") != "1" {
		t.Fatalf("page 2: %+v", x)
	}
	if x := f.Take("/user/repos", q("page=3&per_page=100"), true); x == nil || x.Status != http.StatusBadGateway {
		t.Fatalf("page 3: %+v", x)
	}
	// FailAny is for API requests only; "*" for any.
	if x := f.Take("/login/oauth/access_token", nil, false); x == nil || x.Status != http.StatusTeapot {
		t.Fatalf("web request: %+v", x)
	}
	if x := f.Take("/anything", nil, true); x == nil || x.Status != http.StatusTooManyRequests {
		t.Fatalf("API request: %+v", x)
	}
	if x := f.Take("/anything", nil, true); x != nil {
		t.Fatalf("queue not empty: %+v", x)
	}
}

func TestCountAndWeb(t *testing.T) {
	f := New(make(chan struct{}))
	h := f.Web(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	f.FailNext("/oauth/token", http.StatusServiceUnavailable, http.Header{"Retry-After": {"1"}})
	f.Count("/projects", true)
	for _, want := range []int{http.StatusServiceUnavailable, http.StatusNoContent} {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodPost, "/oauth/token", nil))
		if rec.Code != want {
			t.Fatalf("status %d, want %d", rec.Code, want)
		}
		if want == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") != "1" {
			t.Fatalf("the injected header is missing: %v", rec.Header())
		}
	}
	// Web requests count under their path only; API requests under "" too.
	if f.RequestCount("/oauth/token") != 2 || f.RequestCount("/projects") != 1 || f.RequestCount("") != 1 {
		t.Fatalf("counts: %d %d %d", f.RequestCount("/oauth/token"), f.RequestCount("/projects"), f.RequestCount(""))
	}
}

func TestDelayAndHang(t *testing.T) {
	done := make(chan struct{})
	f := New(done)
	f.SetLatency(20 * time.Millisecond)
	start := time.Now()
	if !f.Delay(context.Background()) || time.Since(start) < 20*time.Millisecond {
		t.Fatal("the latency was not waited out")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if f.Delay(ctx) {
		t.Fatal("a client that gave up is still to be answered")
	}
	f.HangNext("/repos")
	x := f.Take("/repos", nil, true)
	if x == nil || !x.Hang {
		t.Fatalf("hang: %+v", x)
	}
	released := make(chan struct{})
	go func() { f.Hang(context.Background()); close(released) }()
	close(done) // the fake closes: hung requests end
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("a hung request outlived its fake")
	}
	f.SetLatency(time.Hour)
	if f.Delay(context.Background()) {
		t.Fatal("a closed fake still delays its answers")
	}
}
