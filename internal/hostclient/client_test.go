package hostclient

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

func newClient(t *testing.T, o Options) *Client {
	t.Helper()
	if o.RetryBackoff == 0 {
		o.RetryBackoff = time.Millisecond
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func get(t *testing.T, c *Client, url string, header ...string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.HTTP().Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b), nil
}

func TestParseBudget(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name   string
		header map[string]string
		want   forge.Budget
		ok     bool
	}{
		{"github", map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": "1700003600"},
			forge.Budget{Limit: 5000, Remaining: 4999, Reset: time.Unix(1_700_003_600, 0)}, true},
		{"gitlab", map[string]string{"RateLimit-Limit": "2000", "RateLimit-Remaining": "1990", "RateLimit-Reset": "1700000060"},
			forge.Budget{Limit: 2000, Remaining: 1990, Reset: time.Unix(1_700_000_060, 0)}, true},
		{"seconds from now", map[string]string{"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"},
			forge.Budget{Limit: 60, Remaining: 0, Reset: now.Add(30 * time.Second)}, true},
		{"gitlab reset time", map[string]string{"RateLimit-Remaining": "5", "RateLimit-ResetTime": "Tue, 14 Nov 2023 22:14:20 GMT"},
			forge.Budget{Remaining: 5, Reset: time.Date(2023, 11, 14, 22, 14, 20, 0, time.UTC)}, true},
		{"float", map[string]string{"X-RateLimit-Limit": "100.0", "X-RateLimit-Remaining": "99.0"},
			forge.Budget{Limit: 100, Remaining: 99}, true},
		{"no remaining", map[string]string{"X-RateLimit-Limit": "5000"}, forge.Budget{}, false},
		{"garbage", map[string]string{"X-RateLimit-Remaining": "lots"}, forge.Budget{}, false},
		{"none", map[string]string{}, forge.Budget{}, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.header {
			h.Set(k, v)
		}
		got, ok := ParseBudget(h, now)
		if ok != tt.ok || got.Limit != tt.want.Limit || got.Remaining != tt.want.Remaining || !got.Reset.Equal(tt.want.Reset) {
			t.Errorf("%s: ParseBudget = %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{"0", 0, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"-5", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.v, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tt.v, got, ok, tt.want, tt.ok)
		}
	}
}

// clock is a settable clock for budgets.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func TestBudgetTrackedAndReserveKept(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	reset := base.Add(time.Hour)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(12-int(n)))
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	clk := &clock{t: base}
	c := newClient(t, Options{Reserve: 10, Now: clk.Now})

	if _, _, err := get(t, c, srv.URL+"/a"); err != nil { // remaining 11 after
		t.Fatal(err)
	}
	if b := c.Budget(); b.Limit != 5000 || b.Remaining != 11 || !b.Reset.Equal(reset) {
		t.Fatalf("Budget = %+v", b)
	}
	if _, _, err := get(t, c, srv.URL+"/b"); err != nil { // remaining 10 after: the reserve
		t.Fatal(err)
	}
	_, _, err := get(t, c, srv.URL+"/c")
	var rle *forge.RateLimitError
	if !errors.As(err, &rle) || !rle.Reset.Equal(reset) {
		t.Fatalf("request into the reserve: %v, want *forge.RateLimitError until %s", err, reset)
	}
	if hits.Load() != 2 {
		t.Fatalf("the host saw %d requests, want 2: the refused one must not be sent", hits.Load())
	}
	// A POST is refused too, and its body closed.
	body := &closeRecorder{Reader: strings.NewReader("{}")}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/p", body)
	if _, err := c.HTTP().Do(req); !errors.As(err, &rle) || !body.closed.Load() {
		t.Fatalf("POST into the reserve: %v (body closed: %v)", err, body.closed.Load())
	}

	clk.Set(reset.Add(time.Second))
	if _, got, err := get(t, c, srv.URL+"/d"); err != nil || got != "ok" {
		t.Fatalf("after the reset: %q, %v", got, err)
	}
	if hits.Load() != 3 {
		t.Fatalf("the host saw %d requests, want 3", hits.Load())
	}
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func TestGitLabHeadersFeedTheBudget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RateLimit-Limit", "2000")
		w.Header().Set("RateLimit-Remaining", "0")
		w.Header().Set("RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	}))
	defer srv.Close()
	c := newClient(t, Options{})
	if _, _, err := get(t, c, srv.URL); err != nil {
		t.Fatal(err)
	}
	if b := c.Budget(); b.Limit != 2000 || b.Remaining != 0 {
		t.Fatalf("Budget = %+v", b)
	}
	var rle *forge.RateLimitError
	if _, _, err := get(t, c, srv.URL); !errors.As(err, &rle) {
		t.Fatalf("with nothing left (reserve 0): %v, want RateLimitError", err)
	}
}

func TestOtherResourcesDoNotTouchTheMainBudget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		if strings.HasPrefix(r.URL.Path, "/search") {
			w.Header().Set("X-RateLimit-Resource", "search")
			w.Header().Set("X-RateLimit-Remaining", "0")
			return
		}
		w.Header().Set("X-RateLimit-Resource", "core")
		w.Header().Set("X-RateLimit-Remaining", "4000")
	}))
	defer srv.Close()
	c := newClient(t, Options{})
	get(t, c, srv.URL+"/repos")
	get(t, c, srv.URL+"/search/code")
	if _, _, err := get(t, c, srv.URL+"/repos/2"); err != nil {
		t.Fatalf("core request after the search budget ran out: %v", err)
	}
	if b := c.Budget(); b.Remaining != 4000 {
		t.Fatalf("Budget = %+v, want core's", b)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	var hits atomic.Int32
	var bodies []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		switch r.URL.Path {
		case "/once":
			if hits.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
		case "/long":
			hits.Add(1)
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		case "/secondary":
			if hits.Add(1) == 1 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusForbidden)
				return
			}
		case "/spent":
			if hits.Add(1) == 1 {
				w.Header().Set("X-RateLimit-Remaining", "0")
				w.Header().Set("X-RateLimit-Reset", "1") // one second from now
				w.WriteHeader(http.StatusForbidden)
				return
			}
		}
		fmt.Fprint(w, "done")
	}))
	defer srv.Close()
	c := newClient(t, Options{MaxRetryWait: 5 * time.Second})

	start := time.Now()
	resp, body, err := get(t, c, srv.URL+"/once")
	if err != nil || resp.StatusCode != 200 || body != "done" || hits.Load() != 2 {
		t.Fatalf("after Retry-After: %v %q %v, hits %d", resp, body, err, hits.Load())
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("retried after %s, before Retry-After", waited)
	}

	hits.Store(0)
	resp, _, err = get(t, c, srv.URL+"/long")
	if err != nil || resp.StatusCode != http.StatusTooManyRequests || hits.Load() != 1 {
		t.Fatalf("wait beyond MaxRetryWait: %v %v, hits %d; want the 429 as is", resp, err, hits.Load())
	}
	rle, ok := RateLimited(resp, time.Now())
	if !ok || time.Until(rle.Reset) < 59*time.Minute {
		t.Fatalf("RateLimited = %+v, %v", rle, ok)
	}

	hits.Store(0)
	if resp, _, err = get(t, c, srv.URL+"/secondary"); err != nil || resp.StatusCode != 200 || hits.Load() != 2 {
		t.Fatalf("403 with Retry-After: %v %v, hits %d", resp, err, hits.Load())
	}

	hits.Store(0)
	if resp, _, err = get(t, c, srv.URL+"/spent"); err != nil || resp.StatusCode != 200 || hits.Load() != 2 {
		t.Fatalf("403 with the budget spent until a near reset: %v %v, hits %d", resp, err, hits.Load())
	}

	// A POST that the host refused for rate limiting was not processed: it is replayed,
	// body included.
	hits.Store(0)
	mu.Lock()
	bodies = nil
	mu.Unlock()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/secondary", strings.NewReader(`{"a":1}`))
	resp, err = c.HTTP().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST after a rate-limit refusal: %v %v", resp, err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 || bodies[1] != `{"a":1}` {
		t.Fatalf("bodies the host saw: %q", bodies)
	}
}

func TestRetryAfterWaitHonoursContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c := newClient(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	start := time.Now()
	_, err := c.HTTP().Do(req)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("wait under a short context: %v after %s", err, time.Since(start))
	}
}

func TestServerErrorsRetriedForIdempotentOnly(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		switch r.URL.Path {
		case "/flaky":
			if n <= 2 {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
		case "/down":
			w.WriteHeader(http.StatusInternalServerError)
			return
		case "/unavailable":
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "fine")
	}))
	defer srv.Close()
	c := newClient(t, Options{})

	tests := []struct {
		method, path string
		status       int
		hits         int32
	}{
		{http.MethodGet, "/flaky", 200, 3},
		{http.MethodGet, "/down", 500, 4}, // one try and three retries
		{http.MethodPost, "/flaky", 502, 1},
		{http.MethodPost, "/down", 500, 1},
		{http.MethodPost, "/unavailable", 503, 1},
		{http.MethodPut, "/flaky", 200, 3},
		{http.MethodDelete, "/down", 500, 4},
	}
	for _, tt := range tests {
		hits.Store(0)
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader("x"))
		resp, err := c.HTTP().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status || hits.Load() != tt.hits {
			t.Errorf("%s %s = %d after %d requests; want %d after %d", tt.method, tt.path, resp.StatusCode, hits.Load(), tt.status, tt.hits)
		}
	}
}

func TestConnectionErrorsRetriedForGET(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // the connection drops before any answer
			}
			return
		}
		fmt.Fprint(w, "back")
	}))
	defer srv.Close()
	c := newClient(t, Options{})
	if _, body, err := get(t, c, srv.URL); err != nil || body != "back" || hits.Load() != 2 {
		t.Fatalf("GET after a dropped connection: %q, %v, hits %d", body, err, hits.Load())
	}
	hits.Store(0)
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("x"))
	if _, err := c.HTTP().Do(req); err == nil || hits.Load() != 1 {
		t.Fatalf("POST after a dropped connection: %v, hits %d; want the error, no retry", err, hits.Load())
	}
}

func TestAttemptTimeout(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		fmt.Fprint(w, "quick")
	}))
	defer srv.Close()
	c := newClient(t, Options{Timeout: 100 * time.Millisecond})
	if _, body, err := get(t, c, srv.URL); err != nil || body != "quick" || hits.Load() != 2 {
		t.Fatalf("GET after a slow attempt: %q, %v, hits %d", body, err, hits.Load())
	}
}

// recordingCache is a MemoryCache that keeps the keys and entries it was given.
type recordingCache struct {
	*MemoryCache
	mu      sync.Mutex
	keys    []string
	entries []Entry
}

func (r *recordingCache) Put(ctx context.Context, scope, key string, e Entry) error {
	r.mu.Lock()
	r.keys = append(r.keys, scope+" "+key)
	r.entries = append(r.entries, e)
	r.mu.Unlock()
	return r.MemoryCache.Put(ctx, scope, key, e)
}

func (r *recordingCache) Get(ctx context.Context, scope, key string) (Entry, bool, error) {
	r.mu.Lock()
	r.keys = append(r.keys, scope+" "+key)
	r.mu.Unlock()
	return r.MemoryCache.Get(ctx, scope, key)
}

func TestConditionalRequestsServedFromCache(t *testing.T) {
	const token = "ghp_S3cretTokenValue123456"
	var hits, notModified atomic.Int32
	var version atomic.Int32
	version.Store(1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(5000-int(hits.Load())))
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		w.Header().Set("Set-Cookie", "session=abc")
		switch r.URL.Path {
		case "/etag":
			etag := fmt.Sprintf(`"v%d"`, version.Load())
			if r.Header.Get("If-None-Match") == etag {
				notModified.Add(1)
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("ETag", etag)
			w.Header().Set("Link", `<next>; rel="next"`)
			fmt.Fprintf(w, "body v%d", version.Load())
		case "/lastmod":
			lm := "Wed, 21 Oct 2015 07:28:00 GMT"
			if r.Header.Get("If-Modified-Since") == lm {
				notModified.Add(1)
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("Last-Modified", lm)
			fmt.Fprint(w, "dated body")
		case "/nostore":
			w.Header().Set("ETag", `"n"`)
			w.Header().Set("Cache-Control", "private, no-store")
			if r.Header.Get("If-None-Match") != "" {
				t.Error("a no-store response was revalidated")
			}
			fmt.Fprint(w, "secret-ish")
		}
	}))
	defer srv.Close()
	cache := &recordingCache{MemoryCache: NewMemoryCache()}
	var observed []ObservedRequest
	var obsMu sync.Mutex
	c := newClient(t, Options{Cache: cache, CacheScope: "integ-1", Observer: func(o ObservedRequest) {
		obsMu.Lock()
		observed = append(observed, o)
		obsMu.Unlock()
	}})
	auth := []string{"Authorization", "Bearer " + token, "Accept", "application/json"}

	resp, body, err := get(t, c, srv.URL+"/etag", auth...)
	if err != nil || body != "body v1" || resp.Header.Get(CacheHeader) != "" {
		t.Fatalf("first GET: %q %v %v", body, err, resp.Header)
	}
	resp, body, err = get(t, c, srv.URL+"/etag", auth...)
	if err != nil || resp.StatusCode != 200 || body != "body v1" || resp.Header.Get(CacheHeader) != "hit" {
		t.Fatalf("second GET: %d %q %v, cache header %q", resp.StatusCode, body, err, resp.Header.Get(CacheHeader))
	}
	if notModified.Load() != 1 {
		t.Fatalf("host answered 304 %d times, want 1", notModified.Load())
	}
	if resp.Header.Get("Link") != `<next>; rel="next"` || resp.Header.Get("ETag") != `"v1"` {
		t.Fatalf("cached headers lost: %v", resp.Header)
	}
	if got := resp.Header.Get("X-RateLimit-Remaining"); got != "4998" {
		t.Fatalf("rate-limit header %q, want the fresh 4998 from the 304", got)
	}
	if resp.ContentLength != int64(len("body v1")) {
		t.Fatalf("ContentLength = %d", resp.ContentLength)
	}
	obsMu.Lock()
	if n := len(observed); n != 2 || observed[0].Cached || !observed[1].Cached || observed[1].Status != 304 || observed[1].Host == "" {
		t.Fatalf("observed %+v", observed)
	}
	obsMu.Unlock()

	// The resource changes: a fresh 200 replaces the entry.
	version.Store(2)
	if _, body, _ = get(t, c, srv.URL+"/etag", auth...); body != "body v2" {
		t.Fatalf("after a change: %q", body)
	}
	if _, body, _ = get(t, c, srv.URL+"/etag", auth...); body != "body v2" || notModified.Load() != 2 {
		t.Fatalf("revalidated change: %q, 304s %d", body, notModified.Load())
	}

	// Another credential has its own entry: no validator is sent on its first GET.
	before := notModified.Load()
	if _, body, _ = get(t, c, srv.URL+"/etag", "Authorization", "Bearer other-token-xyz", "Accept", "application/json"); body != "body v2" || notModified.Load() != before {
		t.Fatalf("another credential got a cache hit: %q", body)
	}

	if _, body, _ = get(t, c, srv.URL+"/lastmod", auth...); body != "dated body" {
		t.Fatal(body)
	}
	resp, body, _ = get(t, c, srv.URL+"/lastmod", auth...)
	if body != "dated body" || resp.Header.Get(CacheHeader) != "hit" {
		t.Fatalf("Last-Modified revalidation: %q %v", body, resp.Header)
	}

	get(t, c, srv.URL+"/nostore", auth...)
	get(t, c, srv.URL+"/nostore", auth...)

	cache.mu.Lock()
	defer cache.mu.Unlock()
	if len(cache.keys) == 0 {
		t.Fatal("the cache was never used")
	}
	for _, k := range cache.keys {
		if strings.Contains(k, token) || strings.Contains(k, "other-token-xyz") || !strings.HasPrefix(k, "integ-1 GET ") {
			t.Fatalf("cache key %q holds the credential or misses the scope", k)
		}
	}
	for _, e := range cache.entries {
		if e.Header.Get("Set-Cookie") != "" || e.Header.Get("Authorization") != "" {
			t.Fatalf("stored headers hold a credential: %v", e.Header)
		}
		if strings.Contains(string(e.Body), "secret-ish") {
			t.Fatal("a no-store response was stored")
		}
	}
}

func TestCacheKey(t *testing.T) {
	mk := func(url, auth, accept string) string {
		r, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		return CacheKey(r)
	}
	a := mk("https://h/api/v4/projects?page=2", "Bearer t1-secret", "application/json")
	if a != mk("https://h/api/v4/projects?page=2", "Bearer t1-secret", "application/json") {
		t.Fatal("CacheKey is not stable")
	}
	for name, other := range map[string]string{
		"credential": mk("https://h/api/v4/projects?page=2", "Bearer t2-secret", "application/json"),
		"accept":     mk("https://h/api/v4/projects?page=2", "Bearer t1-secret", "application/vnd.github+json"),
		"url":        mk("https://h/api/v4/projects?page=3", "Bearer t1-secret", "application/json"),
	} {
		if other == a {
			t.Errorf("CacheKey ignores the %s", name)
		}
	}
	q1 := mk("https://h/api?private_token=glpat-SECRET1&page=1", "", "")
	q2 := mk("https://h/api?private_token=glpat-SECRET2&page=1", "", "")
	u := mk("https://user:pw-SECRET@h/api", "", "")
	for _, k := range []string{a, q1, q2, u} {
		if strings.Contains(k, "SECRET") || strings.Contains(k, "secret") {
			t.Errorf("CacheKey %q reveals a credential", k)
		}
	}
	if q1 == q2 {
		t.Error("credentials in the query share a key")
	}
	if !strings.HasPrefix(a, "GET https://h/api/v4/projects?page=2 ") {
		t.Errorf("CacheKey = %q", a)
	}
}

func TestMemoryCacheEvictsAndCopies(t *testing.T) {
	c := NewMemoryCache()
	c.max = 2
	ctx := context.Background()
	body := []byte("abc")
	c.Put(ctx, "s", "k1", Entry{ETag: "1", Body: body})
	body[0] = 'X' // the cache must have copied
	c.Put(ctx, "s", "k2", Entry{ETag: "2"})
	if e, ok, _ := c.Get(ctx, "s", "k1"); !ok || string(e.Body) != "abc" {
		t.Fatalf("k1 = %+v, %v", e, ok)
	}
	c.Put(ctx, "s", "k3", Entry{ETag: "3"}) // evicts k2, the least recently used
	if _, ok, _ := c.Get(ctx, "s", "k2"); ok {
		t.Fatal("k2 not evicted")
	}
	if _, ok, _ := c.Get(ctx, "other", "k1"); ok {
		t.Fatal("scopes share entries")
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d", c.Len())
	}
}

func TestIdenticalGETsCoalesce(t *testing.T) {
	var hits atomic.Int32
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		arrived <- struct{}{}
		<-release
		w.Header().Set("ETag", `"x"`)
		fmt.Fprint(w, "shared body")
	}))
	defer srv.Close()
	c := newClient(t, Options{Cache: NewMemoryCache()})

	const n = 6
	var wg sync.WaitGroup
	bodies := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, bodies[i], errs[i] = get(t, c, srv.URL+"/list", "Authorization", "token same")
		})
	}
	<-arrived
	time.Sleep(200 * time.Millisecond) // let the others join the flight
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || bodies[i] != "shared body" {
			t.Fatalf("caller %d: %q, %v", i, bodies[i], errs[i])
		}
	}
	if hits.Load() != 1 {
		t.Fatalf("the host saw %d requests for %d identical GETs, want 1", hits.Load(), n)
	}

	// Different credentials are not coalesced.
	hits.Store(0)
	for i := range 2 {
		wg.Go(func() { get(t, c, srv.URL+"/list2", "Authorization", fmt.Sprintf("token t%d", i)) })
	}
	<-arrived
	<-arrived
	wg.Wait()
	if hits.Load() != 2 {
		t.Fatalf("GETs with different credentials: %d requests, want 2", hits.Load())
	}
}

func TestCoalescedWaiterSurvivesTheLeaderCancelling(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			<-r.Context().Done() // the first request hangs until its caller gives up
			return
		}
		fmt.Fprint(w, "second time")
	}))
	defer srv.Close()
	c := newClient(t, Options{})

	ctx, cancel := context.WithCancel(context.Background())
	leaderDone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		_, err := c.HTTP().Do(req)
		leaderDone <- err
	}()
	for hits.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	waiter := make(chan string, 1)
	go func() {
		_, body, err := get(t, c, srv.URL)
		if err != nil {
			body = err.Error()
		}
		waiter <- body
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-leaderDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v", err)
	}
	select {
	case body := <-waiter:
		if body != "second time" {
			t.Fatalf("waiter got %q, want its own retry", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter stuck")
	}
}

func TestConcurrencyBound(t *testing.T) {
	var inFlight, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond)
		inFlight.Add(-1)
	}))
	defer srv.Close()
	c := newClient(t, Options{MaxConcurrent: 3})
	var wg sync.WaitGroup
	for i := range 15 {
		wg.Go(func() {
			if _, _, err := get(t, c, fmt.Sprintf("%s/r/%d", srv.URL, i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 3 || p < 2 {
		t.Fatalf("peak concurrency %d, want at most 3 (and the bound used)", p)
	}
}

func TestCABundleTrust(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "tls ok")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			hits.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	plain := newClient(t, Options{})
	if _, _, err := get(t, plain, srv.URL); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("default trust accepted a self-signed test certificate: %v", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("an untrusted certificate was tried %d times; it will not pass on retry", hits.Load())
	}
	trusting := newClient(t, Options{CABundle: pemBytes})
	if _, body, err := get(t, trusting, srv.URL); err != nil || body != "tls ok" {
		t.Fatalf("with the CA bundle: %q, %v", body, err)
	}
	insecure := newClient(t, Options{InsecureSkipTLS: true})
	if _, body, err := get(t, insecure, srv.URL); err != nil || body != "tls ok" {
		t.Fatalf("with verification off: %q, %v", body, err)
	}
	if _, err := New(Options{CABundle: []byte("not pem")}); err == nil {
		t.Fatal("New accepted a CA bundle without certificates")
	}
}

func TestUserAgentDefault(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("User-Agent")
	}))
	defer srv.Close()
	c := newClient(t, Options{UserAgent: "Forgeway/1.0 (+ops@example.com)"})
	get(t, c, srv.URL)
	get(t, c, srv.URL+"/x", "User-Agent", "driver-own")
	if a, b := <-got, <-got; a != "Forgeway/1.0 (+ops@example.com)" || b != "driver-own" {
		t.Fatalf("User-Agents %q, %q", a, b)
	}
}

func TestRateLimited(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	mk := func(status int, h map[string]string) *http.Response {
		r := &http.Response{StatusCode: status, Status: strconv.Itoa(status) + " " + http.StatusText(status), Header: http.Header{}}
		for k, v := range h {
			r.Header.Set(k, v)
		}
		r.Request, _ = http.NewRequest(http.MethodGet, "https://api.github.com/repos/a/b", nil)
		return r
	}
	tests := []struct {
		name      string
		resp      *http.Response
		limited   bool
		reset     time.Time
		secondary bool
	}{
		{"429 retry-after", mk(429, map[string]string{"Retry-After": "30"}), true, now.Add(30 * time.Second), false},
		{"403 spent", mk(403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1800000600"}), true, time.Unix(1_800_000_600, 0), false},
		{"403 secondary", mk(403, map[string]string{"Retry-After": "60", "X-RateLimit-Remaining": "4000"}), true, now.Add(time.Minute), true},
		{"403 permission", mk(403, map[string]string{"X-RateLimit-Remaining": "4000"}), false, time.Time{}, false},
		{"503 retry-after", mk(503, map[string]string{"Retry-After": "5"}), true, now.Add(5 * time.Second), false},
		{"503 plain", mk(503, nil), false, time.Time{}, false},
		{"429 unknown wait", mk(429, nil), true, now.Add(time.Minute), false},
		{"200", mk(200, map[string]string{"X-RateLimit-Remaining": "0"}), false, time.Time{}, false},
	}
	for _, tt := range tests {
		rle, ok := RateLimited(tt.resp, now)
		if ok != tt.limited {
			t.Errorf("%s: limited = %v", tt.name, ok)
			continue
		}
		if ok && (!rle.Reset.Equal(tt.reset) || rle.Secondary != tt.secondary || !strings.Contains(rle.Detail, "/repos/a/b")) {
			t.Errorf("%s: %+v, want reset %s secondary %v", tt.name, rle, tt.reset, tt.secondary)
		}
	}
}

// Each credential has its own budget: an anonymous probe answered with a nearly spent small
// budget does not stop the token's requests, and the reserve never takes a whole small window.
func TestBudgetsArePerCredential(t *testing.T) {
	reset := time.Now().Add(time.Hour).Unix()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, remaining := "5000", "4000"
		if r.Header.Get("Authorization") == "" {
			limit, remaining = "60", "5"
		}
		w.Header().Set("X-RateLimit-Limit", limit)
		w.Header().Set("X-RateLimit-Remaining", remaining)
		w.Header().Set("X-RateLimit-Reset", fmt.Sprint(reset))
	}))
	defer srv.Close()
	c, err := New(Options{Reserve: 100})
	if err != nil {
		t.Fatal(err)
	}
	get := func(auth string) error {
		req, _ := http.NewRequest("GET", srv.URL+"/x", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.HTTP().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(""); err != nil {
		t.Fatal(err)
	}
	// 5 of 60 left, reserve capped at 6: anonymous calls now stop…
	var rl *forge.RateLimitError
	if err := get(""); !errors.As(err, &rl) {
		t.Fatalf("anonymous call under the (capped) reserve: %v", err)
	}
	// …but the token's do not, and the token's budget is what Budget reports.
	if err := get("token secret-1"); err != nil {
		t.Fatalf("token call held back by the anonymous budget: %v", err)
	}
	if b := c.Budget(); b.Limit != 5000 || b.Remaining != 4000 {
		t.Errorf("Budget() = %+v, want the token's", b)
	}
}
