// Package giteafake is an in-memory Gitea (or Forgejo) for tests, written from Gitea's API
// description and source (routers/api/v1, services/webhook) rather than from any client's
// assumptions.
//
// New starts it on an httptest server. The REST API is served under /api/v1 and checked,
// request and response, against Gitea 1.27.3's published OpenAPI description (package
// apicheck): a violation fails the test. Git is served at the root, as Gitea serves it.
//
// REST endpoints (under /api/v1):
//
//	GET    /version                                   the server's version (no credential needed)
//	GET    /user                                      the token's user (read:user)
//	GET    /user/repos                                their repositories, collaborations and
//	                                                  organizations' (read:user, read:repository; paginated)
//	GET    /repositories/{id}                         a repository by id (read:repository)
//	GET    /repos/{owner}/{repo}                      a repository (read:repository)
//	GET    /repos/{owner}/{repo}/hooks                webhooks (repository administrators; paginated)
//	POST   /repos/{owner}/{repo}/hooks                (write:repository)
//	GET    /repos/{owner}/{repo}/hooks/{id}
//	PATCH  /repos/{owner}/{repo}/hooks/{id}           (write:repository)
//	DELETE /repos/{owner}/{repo}/hooks/{id}           (write:repository)
//	POST   /repos/{owner}/{repo}/hooks/{id}/tests     Gitea's "Test Delivery" (write:repository)
//	GET    /repos/{owner}/{repo}/branches             branches (paginated)
//	POST   /repos/{owner}/{repo}/branches             create a branch at old_ref_name (write:repository)
//	GET    /repos/{owner}/{repo}/branches/{branch}
//	DELETE /repos/{owner}/{repo}/branches/{branch}    (write:repository)
//	POST   /repos/{owner}/{repo}/pulls                open a pull request (write:repository)
//	GET    /repos/{owner}/{repo}/pulls/{index}
//
// Git smart HTTP: /{owner}/{repo}.git/… for repositories created with AddGitRepository,
// through git http-backend, behind HTTP Basic credentials whose password (or user name, with
// an empty password) is a token.
//
// Behaviour, as Gitea has it: tokens are sent as "Authorization: token …" (or Bearer, or as
// Basic's password) and checked for their scope before anything else (a 403 naming the
// missing scope, "token does not have at least one of required scope(s): [write:repository]");
// a wrong or deleted token is a 401 "invalid username, password or token" on every route, and
// none where one is required a 401 "token is required"; private repositories are a 404 to
// those who may not read them; webhooks need repository administrators (403 otherwise);
// lists take page (from 1) and limit (default 30, at most MAX_RESPONSE_ITEMS, 50) and answer
// with X-Total-Count and a Link header (next, last, first, prev) written with the server's
// ROOT_URL; there are no ETags on the API and no rate limit (Options.RateLimit stands for a
// rate-limiting proxy in front of Gitea, answering 429 with Retry-After). Pushes through git,
// branches created through the API, pull requests opened, synchronized and closed, and test
// deliveries make the fake send Gitea's deliveries (X-Gitea-*, X-Gogs-*, X-GitHub-*, and
// X-Forgejo-* with Options.Forgejo; the HMAC-SHA256 of the JSON payload under the hook's
// secret) to every active hook that wants the event. Tests arrange state and inject failures
// with the methods of Server.
package giteafake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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
	// Now is the fake's clock (timestamps, rate-limit windows); default time.Now.
	Now func() time.Time
	// Loader caches the API description between fakes; nil loads it for this fake alone
	// (about a quarter of a second).
	Loader *apicheck.Loader
	// Unchecked serves the API without checking it against the description: for load tests,
	// where validating large listings would cost more than what they measure.
	Unchecked bool
	// Version is what GET /version reports; default "1.27.3", or "11.0.1+gitea-1.22.0" with
	// Forgejo.
	Version string
	// Forgejo makes the fake a Forgejo: deliveries also carry the X-Forgejo-* headers, and
	// hooks of type "forgejo" may be created.
	Forgejo bool
	// DefaultPagingNum and MaxResponseItems are Gitea's [api] settings: the page size when a
	// request gives no limit (default 30) and the largest it may ask for (default 50).
	DefaultPagingNum int
	MaxResponseItems int
	// FeedMaxCommitNum is how many commits a push delivery lists (Gitea's [ui]
	// FEED_MAX_COMMIT_NUM, default 5); total_commits counts them all.
	FeedMaxCommitNum int
	// RateLimit, when positive, puts a rate-limiting proxy in front of the API (Gitea has no
	// rate limit of its own): each credential may make RateLimit requests per RateWindow
	// (default an hour); every answer carries X-RateLimit-Limit, -Remaining and -Reset, and
	// a spent budget answers 429 with Retry-After.
	RateLimit  int
	RateWindow time.Duration
	// DeliveryClient sends webhook deliveries; nil: a client with Gitea's default 5-second
	// timeout ([webhook] DELIVER_TIMEOUT).
	DeliveryClient *http.Client
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the root (Gitea's ROOT_URL without its trailing slash): web, git, and the
	// integration's BaseURL.
	URL string
	// API is URL + "/api/v1".
	API string

	t    testing.TB
	opts Options
	now  func() time.Time
	srv  *httptest.Server
	mux  *http.ServeMux
	done chan struct{} // closed when the test ends, releasing hung requests

	// Faults holds the failures, hangs and latency a test arranged (FailNext, HangNext,
	// SetLatency) and counts requests (RequestCount). Its paths are below /api/v1
	// ("/user/repos"); "" matches any API request.
	*fault.Faults

	gitOnce sync.Once
	gitRoot string
	git     http.Handler
	pushMu  sync.Mutex // one git push at a time, so that its deliveries know the pusher
	pusher  *account   // the pusher of the push in progress (guarded by pushMu)

	mu         sync.Mutex
	seq        int64
	users      map[string]*account // lower login
	repos      map[int64]*repo
	names      map[string]int64 // lower full name → id
	tokens     map[string]*token
	budgets    map[string]*budget
	deliveries []Delivery
}

type budget struct {
	used  int
	reset time.Time
}

// SpecPath is where the Gitea description the fake checks against lives, below the shared
// test data directory (see apicheck.SharedDir).
const SpecPath = "apispecs/gitea/v1_openapi3_json.tmpl"

// SpecOptions are the apicheck options for checking the fake's API: the description's
// template placeholders filled in (README of apispecs, §2), the API under /api/v1, and
// Gitea's APIError as the body of error statuses an operation does not declare (every
// endpoint may answer 401, 403 or 5xx).
func SpecOptions() apicheck.Options {
	return apicheck.Options{
		Replace:     map[string]string{"{{.SwaggerAppSubUrl}}": "http://gitea.local", "{{.SwaggerAppVer}}": "1.27.3"},
		PathPrefix:  "/api/v1",
		ErrorSchema: "APIError",
	}
}

func loadSpec(l *apicheck.Loader) (*apicheck.Spec, error) {
	dir, err := apicheck.SharedDir()
	if err != nil {
		return nil, err
	}
	if l != nil {
		return l.Load(filepath.Join(dir, SpecPath), SpecOptions())
	}
	return apicheck.Load(filepath.Join(dir, SpecPath), SpecOptions())
}

// New starts a fake Gitea for the test; it stops when the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "1.27.3"
		if o.Forgejo {
			o.Version = "11.0.1+gitea-1.22.0"
		}
	}
	if o.DefaultPagingNum <= 0 {
		o.DefaultPagingNum = 30
	}
	if o.MaxResponseItems <= 0 {
		o.MaxResponseItems = 50
	}
	if o.FeedMaxCommitNum <= 0 {
		o.FeedMaxCommitNum = 5
	}
	if o.RateWindow <= 0 {
		o.RateWindow = time.Hour
	}
	s := &Server{
		t: t, opts: o, now: o.Now, mux: http.NewServeMux(), done: make(chan struct{}),
		users: map[string]*account{}, repos: map[int64]*repo{}, names: map[string]int64{},
		tokens: map[string]*token{}, budgets: map[string]*budget{},
	}
	s.Faults = fault.New(s.done)
	s.routes()
	var handler http.Handler = s.mux
	if !o.Unchecked {
		spec, err := loadSpec(o.Loader)
		if err != nil {
			t.Fatalf("giteafake: %v", err)
		}
		handler = spec.Middleware(func(format string, args ...any) {
			t.Helper()
			t.Errorf(format, args...)
		}, s.mux)
	}
	s.srv = httptest.NewServer(handler)
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { close(s.done) }) // runs first: hung handlers return, so Close does not wait on them
	s.URL = s.srv.URL
	s.API = s.srv.URL + "/api/v1"
	return s
}

// Client is an HTTP client for the fake (plain HTTP; no proxies).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// reply is what an API handler answers; serveAPI adds Gitea's common headers.
type reply struct {
	status int
	body   any // JSON-encoded; nil: no body
	header http.Header
}

func jsonReply(status int, body any) reply { return reply{status: status, body: body} }

func (s *Server) errReply(status int, msg string) reply {
	return jsonReply(status, apiError{Message: msg, URL: s.swaggerURL()})
}

// notFound is Gitea's APIErrorNotFound.
func (s *Server) notFound() reply {
	return s.errReply(http.StatusNotFound, "The target couldn't be found.")
}

// call is one API request as a handler sees it, with its authenticated user.
type call struct {
	r    *http.Request
	body []byte
	user *account // nil: anonymous
	tok  *token   // nil: anonymous
}

func (c *call) decode(s *Server, v any) *reply {
	if len(bytes.TrimSpace(c.body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		r := s.errReply(http.StatusUnprocessableEntity, "[]: "+err.Error())
		return &r
	}
	return nil
}

type handler func(*call) reply

// route is how an endpoint is guarded: whether it needs a token, and the scope categories
// Gitea's tokenRequiresScopes checks, in order (read for GET, write otherwise).
type route struct {
	token  bool
	scopes []string
}

// api registers an API handler under /api/v1.
func (s *Server) api(pattern string, rt route, h handler) {
	method, p, _ := strings.Cut(pattern, " ")
	s.mux.HandleFunc(method+" /api/v1"+p, func(w http.ResponseWriter, r *http.Request) { s.serveAPI(w, r, rt, h) })
}

func (s *Server) routes() {
	none := route{}
	user := route{token: true, scopes: []string{"user"}}
	userRepos := route{token: true, scopes: []string{"user", "repository"}}
	repoRead := route{scopes: []string{"repository"}}
	repoToken := route{token: true, scopes: []string{"repository"}}

	s.api("GET /version", none, s.version)
	s.api("GET /user", user, s.getUser)
	s.api("GET /user/repos", userRepos, s.myRepos)
	s.api("GET /repositories/{id}", repoToken, s.getRepoByID)
	s.api("GET /repos/{owner}/{repo}", repoRead, s.getRepo)
	s.api("GET /repos/{owner}/{repo}/hooks", repoToken, s.listHooks)
	s.api("POST /repos/{owner}/{repo}/hooks", repoToken, s.createHook)
	s.api("GET /repos/{owner}/{repo}/hooks/{id}", repoToken, s.getHook)
	s.api("PATCH /repos/{owner}/{repo}/hooks/{id}", repoToken, s.editHook)
	s.api("DELETE /repos/{owner}/{repo}/hooks/{id}", repoToken, s.deleteHook)
	s.api("POST /repos/{owner}/{repo}/hooks/{id}/tests", repoToken, s.testHook)
	s.api("GET /repos/{owner}/{repo}/branches", repoRead, s.listBranches)
	s.api("POST /repos/{owner}/{repo}/branches", repoToken, s.createBranch)
	s.api("GET /repos/{owner}/{repo}/branches/{branch}", repoRead, s.getBranch)
	s.api("DELETE /repos/{owner}/{repo}/branches/{branch}", repoToken, s.deleteBranch)
	s.api("POST /repos/{owner}/{repo}/pulls", repoToken, s.createPull)
	s.api("GET /repos/{owner}/{repo}/pulls/{index}", repoRead, s.getPull)
	s.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		s.serveAPI(w, r, none, func(*call) reply { return s.notFound() })
	})
	s.mux.HandleFunc("/{owner}/{repo}/", s.serveGit)
}

// serveAPI is the pipeline every REST request goes through: latency, injected failures, the
// proxy's rate limit, authentication, the token's scopes, the handler, then the headers.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, rt route, h handler) {
	if !s.Delay(r.Context()) {
		return
	}
	apiPath := strings.TrimPrefix(r.URL.Path, "/api/v1")
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return
	}

	s.Count(apiPath, true)
	f := s.Take(apiPath, r.URL.Query(), true)
	if f != nil && f.Hang {
		// No answer to send, nor one for the description check to see.
		s.Hang(r.Context())
		panic(http.ErrAbortHandler)
	}
	s.mu.Lock()
	tok, authFail := s.authenticateLocked(r)
	var b *budget
	if s.opts.RateLimit > 0 {
		b = s.budgetLocked(tok)
	}

	var rep reply
	switch {
	case f != nil:
		rep = s.errReply(f.Status, http.StatusText(f.Status))
		rep.header = f.Header
	case b != nil && b.used >= s.opts.RateLimit:
		rep = s.errReply(http.StatusTooManyRequests, "rate limit exceeded")
		rep.header = http.Header{"Retry-After": {strconv.Itoa(max(int(b.reset.Sub(s.now()).Seconds()), 1))}}
	case authFail != nil:
		rep = *authFail
	default:
		rep = s.guardLocked(r, rt, tok)
		if rep.status == 0 {
			c := &call{r: r, body: body, tok: tok}
			if tok != nil {
				c.user = tok.user
			}
			s.mu.Unlock()
			rep = h(c)
			s.mu.Lock()
		}
	}
	if b != nil && f == nil && rep.status != http.StatusTooManyRequests {
		b.used++
	}
	hdr := w.Header()
	if b != nil {
		hdr.Set("X-RateLimit-Limit", strconv.Itoa(s.opts.RateLimit))
		hdr.Set("X-RateLimit-Remaining", strconv.Itoa(max(s.opts.RateLimit-b.used, 0)))
		hdr.Set("X-RateLimit-Reset", strconv.FormatInt(b.reset.Unix(), 10))
	}
	s.mu.Unlock()

	var out []byte
	if rep.body != nil {
		if out, err = json.Marshal(rep.body); err != nil {
			s.t.Errorf("giteafake: encode response to %s %s: %v", r.Method, r.URL.Path, err)
			http.Error(w, "encode", http.StatusInternalServerError)
			return
		}
		hdr.Set("Content-Type", "application/json;charset=utf-8")
	}
	for k, v := range rep.header {
		hdr[k] = v
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(out)
}

// guardLocked applies a route's guard: a token where one is required, then each scope
// category the token must grant (read for GET and HEAD, write otherwise), as Gitea's
// middleware does before the handler runs. A zero reply lets the request through.
func (s *Server) guardLocked(r *http.Request, rt route, tok *token) reply {
	if tok != nil {
		level := "write"
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			level = "read"
		}
		for _, category := range rt.scopes {
			if want := level + ":" + category; !hasScope(tok.scopes, want) {
				return s.errReply(http.StatusForbidden, "token does not have at least one of required scope(s): ["+want+"]")
			}
		}
	}
	if rt.token && tok == nil {
		return s.errReply(http.StatusUnauthorized, "token is required")
	}
	return reply{}
}

func (s *Server) budgetLocked(tok *token) *budget {
	subject := "anonymous"
	if tok != nil {
		subject = tok.value
	}
	b := s.budgets[subject]
	now := s.now()
	if b == nil || !now.Before(b.reset) {
		b = &budget{reset: now.Add(s.opts.RateWindow).Truncate(time.Second)}
		s.budgets[subject] = b
	}
	return b
}

// paginate cuts items to the requested page as Gitea does (page from 1; limit default
// DefaultPagingNum, at most MaxResponseItems) and returns the X-Total-Count and Link headers
// it sends.
func paginate[T any](s *Server, r *http.Request, items []T) ([]T, http.Header) {
	q := r.URL.Query()
	per, _ := strconv.Atoi(q.Get("limit"))
	if per <= 0 {
		per = s.opts.DefaultPagingNum
	}
	per = min(per, s.opts.MaxResponseItems)
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	lo := min((page-1)*per, len(items))
	hi := min(lo+per, len(items))
	h := http.Header{}
	h.Set("X-Total-Count", strconv.Itoa(len(items)))
	pages := max((len(items)+per-1)/per, 1)
	var links []string
	link := func(n int, rel string) {
		u := *r.URL
		v := u.Query()
		v.Set("page", strconv.Itoa(n))
		u.RawQuery = v.Encode()
		links = append(links, fmt.Sprintf(`<%s/%s>; rel="%s"`, s.URL, strings.TrimPrefix(u.RequestURI(), "/"), rel))
	}
	if page < pages {
		link(page+1, "next")
		link(pages, "last")
	}
	if page > 1 {
		link(1, "first")
		link(min(page-1, pages), "prev")
	}
	if len(links) > 0 {
		h.Set("Link", strings.Join(links, ","))
	}
	h.Set("Access-Control-Expose-Headers", "X-Total-Count, Link")
	return items[lo:hi], h
}

// pathValue reads a path parameter (ServeMux has already unescaped it).
func pathValue(r *http.Request, name string) string { return r.PathValue(name) }
