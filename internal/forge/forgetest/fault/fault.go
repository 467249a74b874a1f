// Package fault is the trouble every fake host lets a test arrange, the same way on every
// host: a queue of injected failures matched by path and query, answers that hang until the
// client gives up, a latency added to each answer, and counts of the requests that reached
// each path. A fake embeds *Faults, which gives it FailNext, FailAny, HangNext, SetLatency
// and RequestCount, and calls Delay, Count, Take and Hang from its request pipeline; how an
// injected failure's answer reads (the host's error body, its rate-limit message) stays the
// fake's own.
package fault

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Faults is one fake's arranged trouble. It is safe for concurrent use, and takes no lock of
// the fake's: a fake may call it while holding its own.
type Faults struct {
	done <-chan struct{} // closed when the fake closes: delays and hangs end

	mu      sync.Mutex
	queue   []Failure
	latency time.Duration
	counts  map[string]int
}

// Failure is an injected failure a request matched: answer Status with Header added, or, if
// Hang, no answer at all.
type Failure struct {
	Status int
	Header http.Header
	Hang   bool

	path  string // "" or "*": any request
	query url.Values
	api   bool // any API request (FailAny)
}

// New returns a fake's Faults; done is closed when the fake closes.
func New(done <-chan struct{}) *Faults {
	return &Faults{done: done, counts: map[string]int{}}
}

// FailNext makes the next request to path fail with status, with header added to the answer.
// path is what the fake's documentation says (the part after its API root, or the full path
// of a web endpoint), or "*" (or "") for any request; it may carry query parameters that must
// all be in the request ("/user/repos?page=3"). Failures queue in order.
func (f *Faults) FailNext(path string, status int, header http.Header) {
	p, q := splitQuery(path)
	f.push(Failure{path: p, query: q, Status: status, Header: header.Clone()})
}

// FailAny makes the next n API requests, whatever their path, fail with status and header.
func (f *Faults) FailAny(n, status int, header http.Header) {
	for range n {
		f.push(Failure{api: true, Status: status, Header: header.Clone()})
	}
}

// HangNext makes the next request to path (as in FailNext) hang until the client gives up
// (or the test ends), as an unresponsive host does.
func (f *Faults) HangNext(path string) {
	p, q := splitQuery(path)
	f.push(Failure{path: p, query: q, Hang: true})
}

func (f *Faults) push(x Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, x)
}

func splitQuery(p string) (string, url.Values) {
	path, rawQuery, _ := strings.Cut(p, "?")
	q, _ := url.ParseQuery(rawQuery)
	return path, q
}

// SetLatency delays every answer the fake's pipeline serves by d (git is not delayed).
func (f *Faults) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// RequestCount is how many requests reached path (as in FailNext, without query); "" counts
// every API request.
func (f *Faults) RequestCount(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[path]
}

// Delay waits out the latency. It reports false when the client or the fake gave up first:
// the request is then not to be answered.
func (f *Faults) Delay(ctx context.Context) bool {
	f.mu.Lock()
	d := f.latency
	f.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-f.done:
		return false
	}
}

// Count records a request to path; an API request also counts under "".
func (f *Faults) Count(path string, api bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[path]++
	if api {
		f.counts[""]++
	}
}

// Take pops the first queued failure that a request to path with query q matches, or
// returns nil. FailAny's match API requests only.
func (f *Faults) Take(path string, q url.Values, api bool) *Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.queue {
		if !x.matches(path, q, api) {
			continue
		}
		f.queue = append(f.queue[:i], f.queue[i+1:]...)
		return &x
	}
	return nil
}

func (x *Failure) matches(path string, q url.Values, api bool) bool {
	if x.api {
		return api
	}
	if x.path != "" && x.path != "*" && x.path != path {
		return false
	}
	for k, vs := range x.query {
		if q.Get(k) != vs[0] {
			return false
		}
	}
	return true
}

// Hang blocks until the client gives up (ctx) or the fake closes.
func (f *Faults) Hang(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-f.done:
	}
}

// Web wraps a fake's web endpoint (OAuth, the App's pages: not its API) in the latency, the
// request count and the injected failures, a failure answered with its status in plain text.
func (f *Faults) Web(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !f.Delay(r.Context()) {
			return
		}
		f.Count(r.URL.Path, false)
		if x := f.Take(r.URL.Path, r.URL.Query(), false); x != nil {
			if x.Hang {
				f.Hang(r.Context())
				return
			}
			for k, v := range x.Header {
				w.Header()[k] = v
			}
			http.Error(w, http.StatusText(x.Status), x.Status)
			return
		}
		h(w, r)
	}
}
