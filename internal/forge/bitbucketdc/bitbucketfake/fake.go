// Package bitbucketfake is an in-memory Bitbucket Data Center for tests, written from
// Atlassian's REST documentation and published API description rather than from any client's
// assumptions.
//
// New starts it on an httptest server. The REST API is served under /rest/api/1.0 and
// /rest/api/latest (the same resources, as on Bitbucket) and checked, request and response,
// against Bitbucket's OpenAPI description (package apicheck): a violation fails the test. Git
// is served at /scm/{project}/{repo}.git through git http-backend.
//
// REST endpoints (under /rest/api/1.0 or /rest/api/latest):
//
//	GET    /application-properties                                   version (anonymous)
//	GET    /repos                                                    repositories (paged; permission, projectkey, name, visibility, archived)
//	GET    /projects/{key}/repos                                     a project's repositories (paged)
//	GET    /projects/{key}/repos/{slug}                              a repository
//	GET    /projects/{key}/repos/{slug}/default-branch               its default branch
//	GET    /projects/{key}/repos/{slug}/branches                     branches (paged)
//	POST   /projects/{key}/repos/{slug}/branches                     create a branch (REPO_WRITE)
//	GET    /projects/{key}/repos/{slug}/webhooks                     webhooks (paged; REPO_ADMIN)
//	POST   /projects/{key}/repos/{slug}/webhooks                     create a webhook (201)
//	GET    /projects/{key}/repos/{slug}/webhooks/{id}
//	PUT    /projects/{key}/repos/{slug}/webhooks/{id}                replace a webhook
//	DELETE /projects/{key}/repos/{slug}/webhooks/{id}
//	GET    /projects/{key}/repos/{slug}/webhooks/{id}/statistics/summary   last success, failure, error
//	POST   /projects/{key}/repos/{slug}/pull-requests                open a pull request (201; delivers pr:opened)
//	GET    /projects/{key}/repos/{slug}/pull-requests/{id}
//
// Git (smart HTTP, git http-backend):
//
//   - /scm/{project}/{repo}.git/…   read: REPO_READ or public; push: REPO_WRITE; a push
//     delivers repo:refs_changed (and pr:from_ref_updated)
//
// Behaviour, as Bitbucket documents it: HTTP access tokens (project, repository or personal)
// authenticate as "Authorization: Bearer <token>", personal ones also as Basic with the
// owner's login; a refused credential is 401 IncorrectPasswordAuthenticationException, a
// valid one lacking the permission 401 AuthorisationException, a repository the credential
// cannot see 404; paged resources take start and limit (default 25, at most
// Options.MaxPageSize) and answer size, limit, start, isLastPage, nextPageStart and values;
// authenticated answers carry X-AUSERNAME and X-AUSERID; rate limiting (off unless
// Options.RateLimit) is a token bucket per user that answers 429 with Retry-After,
// X-RateLimit-Limit, X-RateLimit-Interval-Seconds and X-RateLimit-FillRate. Bitbucket's REST
// API does not answer conditional requests, and neither does the fake. Webhook deliveries
// are sent in order by one worker, as POSTs with X-Request-Id, X-Event-Key and, when the
// webhook has a secret, X-Hub-Signature: sha256=<hex HMAC-SHA256>; their outcomes feed the
// webhook's statistics. Bitbucket's circuit breaker (skipping a failing webhook for a while)
// is not modelled. Tests arrange state (projects, users, grants, tokens, repositories, git
// repositories, webhooks) and cause events (Push, Ping, pull request merges, declines,
// deletions and edits) with the methods of Server.
package bitbucketfake

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/apicheck"
	"github.com/forgeway/forgeway/internal/forge/forgetest/fault"
)

// Options configure a fake.
type Options struct {
	// Now is the fake's clock (token expiry, rate-limit refills, dates); default time.Now.
	Now func() time.Time
	// Loader caches the API description between fakes; nil loads it for this fake alone
	// (about half a second).
	Loader *apicheck.Loader
	// Version is what /application-properties reports; default "9.2.0".
	Version string
	// MaxPageSize caps the limit of paged resources (Bitbucket's page.max.* settings);
	// default 1000.
	MaxPageSize int
	// RateLimit switches Bitbucket's rate limiting on; nil leaves it off, Bitbucket's default.
	RateLimit *RateLimit
	// NoAnonymous turns anonymous access off: unauthenticated requests are refused, even
	// /application-properties.
	NoAnonymous bool
	// DeliveryClient sends webhook deliveries; nil: a client with a 10-second timeout that
	// verifies TLS certificates unless the webhook says not to.
	DeliveryClient *http.Client
	// Unchecked serves the API without checking it against the description: for load tests.
	Unchecked bool
}

// RateLimit is Bitbucket's token bucket: each user may make BucketSize requests at once, and
// gets FillRate more per second.
type RateLimit struct {
	BucketSize int
	FillRate   float64
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL people browse to and an integration's BaseURL; the REST API is at
	// URL/rest/api/1.0 and git at URL/scm.
	URL string

	t    testing.TB
	opts Options
	now  func() time.Time
	srv  *httptest.Server
	mux  *http.ServeMux
	done chan struct{} // closed when the test ends, releasing hung requests

	// Faults holds the failures, hangs and latency a test arranged (FailNext, HangNext,
	// SetLatency; a 429 gets Bitbucket's rate-limit message) and counts requests
	// (RequestCount). Its paths are below /rest/api/1.0 ("/repos"); "" matches any API
	// request.
	*fault.Faults

	gitRoot string
	git     http.Handler
	queue   *queue

	mu         sync.Mutex
	seq        int
	users      map[string]*user    // lower login
	projects   map[string]*project // upper key
	repos      map[int]*repo
	tokens     map[string]*token // by value
	buckets    map[string]*bucket
	deliveries []Delivery
	pushLocks  map[string]*sync.Mutex // per git repository: one push at a time
	pushers    map[string]*user       // git path → who is pushing
}

type bucket struct {
	tokens float64
	at     time.Time
}

// SpecPath is where the Bitbucket description the fake checks against lives, below the
// shared test data directory (see apicheck.SharedDir).
const SpecPath = "apispecs/bitbucket-dc/bitbucket-dc-9.2.swagger.v3.json"

// SpecOptions are the apicheck options for checking the fake's API. The description's server
// (a port in a variable) does not route, so it is replaced; its paths say /api/latest, which
// the fake also serves (requests to /api/1.0 are checked as /api/latest). Atlassian's file
// marks every "links" object (and a webhook's statistics) writeOnly although Bitbucket
// returns them, which would fail every repository in a response: those marks are lifted in
// memory. Errors not declared by an operation must match RestErrors, Bitbucket's error body.
func SpecOptions() apicheck.Options {
	rep := map[string]string{
		`"links": { "type": "object", "properties": {}, "writeOnly": true }`: `"links": { "type": "object", "properties": {} }`,
	}
	for n := 1; n <= 32; n++ {
		tabs := strings.Repeat("\t", n)
		rep["\"properties\": {},\n"+tabs+"\"writeOnly\": true"] = "\"properties\": {},\n" + tabs + "\"writeOnly\": false"
	}
	return apicheck.Options{
		Server:      "http://example.com:7990/rest",
		PathPrefix:  "/rest",
		ErrorSchema: "RestErrors",
		Replace:     rep,
	}
}

// knownQuirk reports a violation that is the description's error, not the fake's: Bitbucket
// answers 201 to a webhook's creation, which the description declares as 200.
func knownQuirk(msg string) bool {
	return strings.Contains(msg, "response 201 to POST") && strings.Contains(msg, "(createWebhook_1): status not declared")
}

// LoadSpec loads the Bitbucket description from the shared test data, through l when given.
func LoadSpec(l *apicheck.Loader) (*apicheck.Spec, error) {
	dir, err := apicheck.SharedDir()
	if err != nil {
		return nil, err
	}
	if l != nil {
		return l.Load(filepath.Join(dir, SpecPath), SpecOptions())
	}
	return apicheck.Load(filepath.Join(dir, SpecPath), SpecOptions())
}

// New starts a fake Bitbucket for the test; it stops when the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	var spec *apicheck.Spec
	if !o.Unchecked {
		var err error
		if spec, err = LoadSpec(o.Loader); err != nil {
			t.Fatalf("bitbucketfake: %v", err)
		}
	}
	return newServer(t, o, spec)
}

func newServer(t testing.TB, o Options, spec *apicheck.Spec) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "9.2.0"
	}
	if o.MaxPageSize <= 0 {
		o.MaxPageSize = 1000
	}
	s := &Server{
		t: t, opts: o, now: o.Now, mux: http.NewServeMux(), done: make(chan struct{}), gitRoot: t.TempDir(),
		users: map[string]*user{}, projects: map[string]*project{}, repos: map[int]*repo{}, tokens: map[string]*token{},
		buckets: map[string]*bucket{}, pushLocks: map[string]*sync.Mutex{}, pushers: map[string]*user{},
	}
	s.Faults = fault.New(s.done)
	s.git = s.gitHandler()
	s.routes()
	var checked http.Handler = s.mux
	if spec != nil {
		report := func(format string, args ...any) {
			t.Helper()
			if msg := fmt.Sprintf(format, args...); !knownQuirk(msg) {
				t.Errorf("%s", msg)
			}
		}
		checked = spec.Middleware(report, s.mux)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /rest/api/1.0 and /rest/api/latest are the same resources; the description knows
		// the second.
		if rest, ok := strings.CutPrefix(r.URL.Path, "/rest/api/1.0/"); ok {
			r.URL.Path = "/rest/api/latest/" + rest
			r.URL.RawPath = ""
		}
		checked.ServeHTTP(w, r)
	}))
	s.URL = s.srv.URL
	s.queue = newQueue()
	t.Cleanup(s.srv.Close)
	t.Cleanup(s.queue.stop) // after the test's own cleanups, before the server closes
	t.Cleanup(func() { close(s.done) })
	return s
}

// Client is an HTTP client for the fake (plain HTTP; no proxies).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// API is the REST API's root, URL/rest/api/1.0.
func (s *Server) API() string { return s.URL + "/rest/api/1.0" }

// reply is what an API handler answers; serveAPI adds Bitbucket's common headers.
type reply struct {
	status int
	body   any // JSON-encoded; nil: no body
	header http.Header
}

type restError struct {
	// Context is left out: Bitbucket sends null, which the description does not allow.
	Message       string `json:"message"`
	ExceptionName string `json:"exceptionName,omitempty"`
}

type restErrors struct {
	Errors []restError `json:"errors"`
}

func jsonReply(status int, body any) reply { return reply{status: status, body: body} }

func errReply(status int, exception, msg string) reply {
	return jsonReply(status, restErrors{Errors: []restError{{Message: msg, ExceptionName: exception}}})
}

func badRequest(msg string) reply {
	return errReply(http.StatusBadRequest, "com.atlassian.bitbucket.validation.ArgumentValidationException", msg)
}

// call is one API request as a handler sees it, with its authenticated principal.
type call struct {
	r    *http.Request
	body []byte
	who  principal
}

func (c *call) decode(v any) *reply {
	if err := json.Unmarshal(c.body, v); err != nil {
		r := badRequest("The request body could not be read as JSON: " + err.Error())
		return &r
	}
	return nil
}

type handler func(*call) reply

const apiPrefix = "/rest/api/latest"

// api registers an API handler; patterns are below /rest/api/latest.
func (s *Server) api(pattern string, h handler) {
	method, p, _ := strings.Cut(pattern, " ")
	s.mux.HandleFunc(method+" "+apiPrefix+p, func(w http.ResponseWriter, r *http.Request) { s.serveAPI(w, r, h) })
}

// shuttingDown answers a request cut short by the end of the test (or by its client) with
// a 503 in Bitbucket's error form, so that nothing half-written is checked or sent.
func (s *Server) shuttingDown(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`{"errors":[{"message":"Bitbucket is shutting down"}]}`))
}

// serveAPI is the pipeline every REST request goes through: latency, injected failures,
// authentication, rate limiting, the handler, then Bitbucket's common headers.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, h handler) {
	if !s.Delay(r.Context()) {
		s.shuttingDown(w)
		return
	}
	apiPath := strings.TrimPrefix(r.URL.Path, apiPrefix)
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return
	}

	s.Count(apiPath, true)
	f := s.Take(apiPath, r.URL.Query(), true)
	if f != nil && f.Hang {
		s.Hang(r.Context())
		s.shuttingDown(w)
		return
	}
	s.mu.Lock()
	who, authFail := s.authenticate(r)
	var rep reply
	switch {
	case f != nil:
		rep = injected(f)
	case authFail != nil:
		rep = *authFail
	case who.anonymous() && s.opts.NoAnonymous:
		rep = errReply(http.StatusUnauthorized, "com.atlassian.bitbucket.AuthorisationException", "Authentication required")
	default:
		if limited, ok := s.rateLimitLocked(who); ok {
			rep = limited
		} else {
			rep = h(&call{r: r, body: body, who: who})
		}
	}
	hdr := w.Header()
	hdr.Set("X-AREQUESTID", "@"+strings.ToUpper(randomHex(4))+"x"+strconv.Itoa(s.RequestCount(""))+"x0")
	if !who.anonymous() {
		hdr.Set("X-AUSERNAME", who.user.name)
		hdr.Set("X-AUSERID", strconv.Itoa(who.user.id))
	}
	for k, v := range rep.header {
		hdr[k] = v
	}
	s.mu.Unlock()

	var out []byte
	if rep.body != nil {
		if out, err = json.Marshal(rep.body); err != nil {
			s.t.Errorf("bitbucketfake: encode response to %s %s: %v", r.Method, r.URL.Path, err)
			http.Error(w, "encode", http.StatusInternalServerError)
			return
		}
		hdr.Set("Content-Type", "application/json;charset=UTF-8")
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(out)
}

// injected is an injected failure's answer, with Bitbucket's message for a rate limit.
func injected(f *fault.Failure) reply {
	msg := http.StatusText(f.Status)
	exception := ""
	if f.Status == http.StatusTooManyRequests {
		msg = "Rate limit exceeded. Try again later."
		exception = "com.atlassian.bitbucket.ratelimit.RateLimitedException"
	}
	rep := errReply(f.Status, exception, msg)
	rep.header = f.Header
	return rep
}

// rateLimitLocked spends one token of the user's bucket, refusing with 429 when it is empty.
func (s *Server) rateLimitLocked(who principal) (reply, bool) {
	rl := s.opts.RateLimit
	if rl == nil || who.anonymous() {
		return reply{}, false
	}
	now := s.now()
	b := s.buckets[who.user.name]
	if b == nil {
		b = &bucket{tokens: float64(rl.BucketSize), at: now}
		s.buckets[who.user.name] = b
	}
	b.tokens = math.Min(float64(rl.BucketSize), b.tokens+now.Sub(b.at).Seconds()*rl.FillRate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return reply{}, false
	}
	wait := 1
	if rl.FillRate > 0 {
		wait = max(int(math.Ceil((1-b.tokens)/rl.FillRate)), 1)
	}
	rep := errReply(http.StatusTooManyRequests, "com.atlassian.bitbucket.ratelimit.RateLimitedException", "Rate limit exceeded. Try again later.")
	rep.header = http.Header{
		"Retry-After":                  {strconv.Itoa(wait)},
		"X-Ratelimit-Limit":            {strconv.Itoa(rl.BucketSize)},
		"X-Ratelimit-Interval-Seconds": {"1"},
		"X-Ratelimit-Fillrate":         {strconv.FormatFloat(rl.FillRate, 'f', -1, 64)},
	}
	return rep, true
}

// pageOf cuts items to the requested page: start (default 0) and limit (default 25, at most
// MaxPageSize), answered with Bitbucket's paging fields.
func pageOf[T any](s *Server, r *http.Request, items []T) map[string]any {
	q := r.URL.Query()
	start, _ := strconv.Atoi(q.Get("start"))
	start = max(start, 0)
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = 25
	}
	limit = min(limit, s.opts.MaxPageSize)
	lo := min(start, len(items))
	hi := min(lo+limit, len(items))
	values := items[lo:hi]
	if values == nil {
		values = []T{}
	}
	out := map[string]any{
		"size": len(values), "limit": limit, "start": start, "isLastPage": hi >= len(items), "values": values,
	}
	if hi < len(items) {
		out["nextPageStart"] = hi
	}
	return out
}

// queue runs webhook deliveries one at a time, in the order they were queued, off the request
// that caused them (Bitbucket delivers asynchronously).
type queue struct {
	mu      sync.Mutex
	idle    *sync.Cond // signalled when pending drops to zero
	jobs    []func()
	pending int // queued or running
	wake    chan struct{}
	quit    chan struct{}
	stopped chan struct{}
}

func newQueue() *queue {
	q := &queue{wake: make(chan struct{}, 1), stopped: make(chan struct{}), quit: make(chan struct{})}
	q.idle = sync.NewCond(&q.mu)
	go q.run()
	return q
}

func (q *queue) add(job func()) {
	q.mu.Lock()
	q.jobs = append(q.jobs, job)
	q.pending++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) run() {
	defer close(q.stopped)
	for {
		q.mu.Lock()
		var job func()
		if len(q.jobs) > 0 {
			job, q.jobs = q.jobs[0], q.jobs[1:]
		}
		q.mu.Unlock()
		if job != nil {
			job()
			q.mu.Lock()
			if q.pending--; q.pending == 0 {
				q.idle.Broadcast()
			}
			q.mu.Unlock()
			continue
		}
		select {
		case <-q.wake:
		case <-q.quit:
			return
		}
	}
}

// wait returns when no delivery is queued or running.
func (q *queue) wait() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.pending > 0 {
		q.idle.Wait()
	}
}

// stop waits for the queued deliveries, then ends the worker.
func (q *queue) stop() {
	q.wait()
	close(q.quit)
	<-q.stopped
}

// WaitDeliveries waits until every delivery queued so far has been sent.
func (s *Server) WaitDeliveries() { s.queue.wait() }
