// Package githubfake is an in-memory GitHub Enterprise Server for tests, written from
// GitHub's REST documentation rather than from any client's assumptions.
//
// New starts it on an httptest server. The REST API is served under /api/v3 and checked,
// request and response, against GitHub's published OpenAPI description (package apicheck):
// a violation fails the test. The web endpoints (OAuth, App creation) and git are at the
// root, as on GitHub Enterprise Server.
//
// REST endpoints (under /api/v3):
//
//	GET    /app                                      the App (JWT)
//	GET    /app/installations                        its installations (JWT, paginated)
//	GET    /app/installations/{installation_id}      one installation (JWT)
//	POST   /app/installations/{installation_id}/access_tokens   installation token (JWT)
//	POST   /app-manifests/{code}/conversions          App from a manifest (no auth)
//	GET    /installation/repositories                the installation's repositories (paginated)
//	GET    /user                                     the authenticated user
//	GET    /user/repos                               the user's repositories (paginated)
//	GET    /repos/{owner}/{repo}                     a repository (301 after a rename)
//	GET    /repos/{owner}/{repo}/installation        the App's installation covering it (JWT)
//	GET    /repositories/{id}                        a repository by id (the 301's target; undocumented, so unchecked)
//	GET    /repos/{owner}/{repo}/hooks               webhooks (paginated)
//	POST   /repos/{owner}/{repo}/hooks
//	GET    /repos/{owner}/{repo}/hooks/{hook_id}
//	PATCH  /repos/{owner}/{repo}/hooks/{hook_id}
//	DELETE /repos/{owner}/{repo}/hooks/{hook_id}
//	GET    /repos/{owner}/{repo}/branches            branches (paginated)
//	GET    /repos/{owner}/{repo}/git/ref/{ref}       one ref ("heads/main")
//	POST   /repos/{owner}/{repo}/git/refs            create a ref
//	DELETE /repos/{owner}/{repo}/git/refs/{ref}
//	POST   /repos/{owner}/{repo}/pulls               open a pull request
//	GET    /meta
//	GET    /rate_limit                               (free: does not count against the limit)
//
// Web endpoints (at the root):
//
//	POST /login/oauth/access_token                   OAuth code exchange and refresh (form or JSON)
//	POST /settings/apps/new?state=…                  App manifest flow: redirects to the
//	POST /organizations/{org}/settings/apps/new?state=…   manifest's redirect_url with a code
//	GET  /apps/{slug}/installations/new              the App's installation page (200 when it exists)
//	*    /{owner}/{repo}.git/…                        git smart HTTP, when Options.Git is set
//
// Behaviour, as GitHub documents it: App JWTs are checked (RS256 with the App's key, iss,
// iat at most 60 s ahead, exp in the future and at most 10 minutes after iat); installation
// tokens (ghs_) last an hour, user tokens (ghu_) 8 hours with 6-month refresh tokens (ghr_),
// personal tokens (ghp_, github_pat_) until their expiry; lists paginate with per_page
// (default 30, max 100) and page, and a Link header with next, last, first and prev; GETs carry
// an ETag and answer a matching If-None-Match with a bodyless 304 that does not count against
// the rate limit; every API response carries x-ratelimit-* headers, and a spent budget answers
// 403 with remaining 0. Tests arrange state and inject failures with the methods of Server.
package githubfake

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
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
	// Now is the fake's clock (token expiry, JWT checks, rate-limit windows); default time.Now.
	Now func() time.Time
	// Git, when set, serves git smart HTTP for /{owner}/{repo}.git/… once the fake has
	// checked the request's HTTP Basic credentials (the password must be a token that may
	// read the repository, or write it for a push). It sees the request unchanged.
	Git http.Handler
	// Loader caches the API description between fakes; nil loads it for this fake alone
	// (most of a second).
	Loader *apicheck.Loader
	// RateLimit is each credential's hourly budget; default 5000 (60 without credentials).
	RateLimit int
	// Version is the X-GitHub-Enterprise-Version the API reports; default "3.17.0".
	Version string
	// AppKey is the private key of the Apps the fake creates itself (AddApp without a Key,
	// manifest conversions); nil generates a 2048-bit key for each, which takes a while
	// under the race detector.
	AppKey *rsa.PrivateKey
	// DeliveryClient sends webhook deliveries; nil: a client with GitHub's 10-second timeout
	// that verifies TLS certificates unless the hook's insecure_ssl is "1".
	DeliveryClient *http.Client
	// Unchecked serves the API without checking it against the description: for load tests,
	// where validating megabytes of listings would cost more CPU than what they measure.
	// Other tests keep the check on.
	Unchecked bool
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the root: web, OAuth and git endpoints, and the integration's BaseURL.
	URL string
	// API is URL + "/api/v3".
	API string

	t    testing.TB
	opts Options
	now  func() time.Time
	srv  *httptest.Server
	mux  *http.ServeMux
	done chan struct{} // closed when the test ends, releasing hung requests

	// Faults holds the failures, hangs and latency a test arranged (FailNext, HangNext,
	// SetLatency; a 403 or 429 with Retry-After gets GitHub's secondary-rate-limit message,
	// with x-ratelimit-remaining 0 its primary one) and counts requests (RequestCount). Its
	// paths are the part after /api/v3 ("/user/repos"), or the full path of a web endpoint
	// ("/login/oauth/access_token").
	*fault.Faults

	mu            sync.Mutex
	seq           int64
	accounts      map[string]*account // lower login
	apps          map[int64]*app
	installs      map[int64]*installation
	repos         map[int64]*repo
	names         map[string]int64 // lower full name → repository id
	idx           *repoIndex       // nil when repositories changed since it was built
	moved         map[string]int64 // former lower full names → repository id
	tokens        map[string]*token
	refresh       map[string]*refreshToken
	oauthCodes    map[string]*oauthCode
	manifestCodes map[string]*manifestCode
	budgets       map[string]*budget
}

type budget struct {
	used  int
	reset time.Time
}

// SpecPath is where the GitHub description the fake checks against lives, below the shared
// test data directory (see apicheck.SharedDir).
const SpecPath = "apispecs/github/api.github.com.2021-10-10.json"

// SpecOptions are the apicheck options for checking the fake's API.
func SpecOptions() apicheck.Options {
	return apicheck.Options{
		Server:      "https://api.github.com",
		PathPrefix:  "/api/v3",
		SlashParams: []string{"/repos/{owner}/{repo}/git/ref/{ref}", "/repos/{owner}/{repo}/git/refs/{ref}"},
		ErrorSchema: "basic-error",
	}
}

// loadSpec loads the GitHub description from the shared test data, through l when given.
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

// New starts a fake GitHub for the test; it stops when the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RateLimit == 0 {
		o.RateLimit = 5000
	}
	if o.Version == "" {
		o.Version = "3.17.0"
	}
	s := &Server{
		t: t, opts: o, now: o.Now, mux: http.NewServeMux(), done: make(chan struct{}),
		accounts: map[string]*account{}, apps: map[int64]*app{}, installs: map[int64]*installation{},
		repos: map[int64]*repo{}, names: map[string]int64{}, moved: map[string]int64{},
		tokens: map[string]*token{}, refresh: map[string]*refreshToken{},
		oauthCodes: map[string]*oauthCode{}, manifestCodes: map[string]*manifestCode{},
		budgets: map[string]*budget{},
	}
	s.Faults = fault.New(s.done)
	s.routes()
	report := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
	}
	var checked http.Handler = s.mux
	if !o.Unchecked {
		spec, err := loadSpec(o.Loader)
		if err != nil {
			t.Fatalf("githubfake: %v", err)
		}
		checked = spec.Middleware(report, s.mux)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// GET /repositories/{id} is real (the target of GitHub's rename redirects) but not in
		// the description, so it is served outside the check.
		if rest, ok := strings.CutPrefix(r.URL.Path, "/api/v3/repositories/"); ok && isDigits(rest) {
			s.mux.ServeHTTP(w, r)
			return
		}
		checked.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { close(s.done) }) // runs first: hung handlers return, so Close does not wait on them
	s.URL = s.srv.URL
	s.API = s.srv.URL + "/api/v3"
	return s
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Client is an HTTP client for the fake (plain HTTP; no proxies).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// RateLimitUsed is how much of its hourly budget a credential has used in the current
// window. subject is "app:<id>" (JWT), "installation:<id>", "user:<login>" or "anonymous".
func (s *Server) RateLimitUsed(subject string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.budgets[subject]; b != nil && s.now().Before(b.reset) {
		return b.used
	}
	return 0
}

// reply is what an API handler answers; serveAPI adds GitHub's common headers.
type reply struct {
	status int
	body   any // JSON-encoded; nil: no body
	header http.Header
	link   []page
}

type page struct {
	rel string
	n   int
}

func jsonReply(status int, body any) reply { return reply{status: status, body: body} }

func errReply(status int, msg string) reply {
	return jsonReply(status, basicError{Message: msg, DocumentationURL: docsURL})
}

func notFound() reply { return errReply(http.StatusNotFound, "Not Found") }

func badCredentials() reply { return errReply(http.StatusUnauthorized, "Bad credentials") }

func validationFailed(msg string, errs ...validationEntry) reply {
	return jsonReply(http.StatusUnprocessableEntity, validationError{Message: msg, DocumentationURL: docsURL, Errors: errs})
}

// call is one API request as a handler sees it, with its authenticated principal.
type call struct {
	r    *http.Request
	body []byte
	who  principal
}

func (c *call) decode(v any) *reply {
	if len(bytes.TrimSpace(c.body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		r := errReply(http.StatusBadRequest, "Problems parsing JSON")
		return &r
	}
	return nil
}

type handler func(*call) reply

// api registers an API handler under /api/v3.
func (s *Server) api(pattern string, h handler) {
	method, p, _ := strings.Cut(pattern, " ")
	s.mux.HandleFunc(method+" /api/v3"+p, func(w http.ResponseWriter, r *http.Request) { s.serveAPI(w, r, h) })
}

func (s *Server) routes() {
	s.api("GET /app", s.getApp)
	s.api("GET /app/installations", s.listInstallations)
	s.api("GET /app/installations/{id}", s.getInstallation)
	s.api("POST /app/installations/{id}/access_tokens", s.createInstallationToken)
	s.api("POST /app-manifests/{code}/conversions", s.convertManifest)
	s.api("GET /installation/repositories", s.installationRepos)
	s.api("GET /user", s.getUser)
	s.api("GET /user/repos", s.userRepos)
	s.api("GET /repos/{owner}/{repo}", s.getRepo)
	s.api("GET /repos/{owner}/{repo}/installation", s.repoInstallation)
	s.api("GET /repositories/{id}", s.getRepoByID)
	s.api("GET /repos/{owner}/{repo}/hooks", s.listHooks)
	s.api("POST /repos/{owner}/{repo}/hooks", s.createHook)
	s.api("GET /repos/{owner}/{repo}/hooks/{id}", s.getHook)
	s.api("PATCH /repos/{owner}/{repo}/hooks/{id}", s.updateHook)
	s.api("DELETE /repos/{owner}/{repo}/hooks/{id}", s.deleteHook)
	s.api("GET /repos/{owner}/{repo}/branches", s.listBranches)
	s.api("GET /repos/{owner}/{repo}/git/ref/{ref...}", s.getRef)
	s.api("POST /repos/{owner}/{repo}/git/refs", s.createRef)
	s.api("DELETE /repos/{owner}/{repo}/git/refs/{ref...}", s.deleteRef)
	s.api("POST /repos/{owner}/{repo}/pulls", s.createPull)
	s.api("GET /meta", s.meta)
	s.api("GET /rate_limit", s.rateLimit)
	s.mux.HandleFunc("/api/v3/", func(w http.ResponseWriter, r *http.Request) {
		s.serveAPI(w, r, func(*call) reply { return notFound() })
	})

	s.web("POST /login/oauth/access_token", s.oauthAccessToken)
	s.web("POST /settings/apps/new", s.manifestForm)
	s.web("POST /organizations/{org}/settings/apps/new", s.manifestForm)
	s.web("GET /apps/{slug}/installations/new", s.installPage)
	s.mux.HandleFunc("/{owner}/{repo}/", s.serveGit)
}

// web registers a web endpoint: latency, counting and injected failures apply, nothing else.
func (s *Server) web(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, s.Web(h)) }

// newKey is an App's key: Options.AppKey, or a fresh one.
func (s *Server) newKey() (*rsa.PrivateKey, error) {
	if s.opts.AppKey != nil {
		return s.opts.AppKey, nil
	}
	return rsa.GenerateKey(rand.Reader, 2048)
}

// serveAPI is the pipeline every REST request goes through: latency, injected failures,
// authentication, the rate limit, the handler, then ETag, Link and rate-limit headers.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, h handler) {
	if !s.Delay(r.Context()) {
		return
	}
	apiPath := strings.TrimPrefix(r.URL.Path, "/api/v3")
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return
	}

	s.Count(apiPath, true)
	f := s.Take(apiPath, r.URL.Query(), true)
	if f != nil && f.Hang {
		s.Hang(r.Context())
		return
	}
	s.mu.Lock()
	who, authFail := s.authenticate(r)
	subject := who.subject()
	b := s.budgetLocked(subject)
	limit := s.opts.RateLimit
	if who.kind == 0 {
		limit = 60
	}
	free := apiPath == "/rate_limit"

	var rep reply
	switch {
	case f != nil:
		rep = injected(f)
	case authFail != nil:
		rep = *authFail
	case !free && b.used >= limit:
		rep = jsonReply(http.StatusForbidden, basicError{
			Message:          fmt.Sprintf("API rate limit exceeded for %s.", who.describe()),
			DocumentationURL: "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
		})
	default:
		rep = h(&call{r: r, body: body, who: who})
	}

	var out []byte
	if rep.body != nil {
		out, err = json.Marshal(rep.body)
		if err != nil {
			s.mu.Unlock()
			s.t.Errorf("githubfake: encode response to %s %s: %v", r.Method, r.URL.Path, err)
			http.Error(w, "encode", http.StatusInternalServerError)
			return
		}
	}
	hdr := w.Header()
	if rep.status == http.StatusOK && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		sum := sha256.Sum256(append([]byte(subject+"\x00"), out...))
		etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
		hdr.Set("ETag", etag)
		if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
			rep.status, out = http.StatusNotModified, nil
		}
	}
	if rep.status != http.StatusNotModified && !free && f == nil {
		b.used++
	}
	remaining := max(limit-b.used, 0)
	if rep.status == http.StatusForbidden && b.used >= limit && f == nil {
		remaining = 0
	}
	hdr.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	hdr.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	hdr.Set("X-RateLimit-Used", strconv.Itoa(b.used))
	hdr.Set("X-RateLimit-Reset", strconv.FormatInt(b.reset.Unix(), 10))
	hdr.Set("X-RateLimit-Resource", "core")
	hdr.Set("X-GitHub-Enterprise-Version", s.opts.Version)
	hdr.Set("X-GitHub-Media-Type", "github.v3; format=json")
	hdr.Set("X-GitHub-Request-Id", strings.ToUpper(randomHex(8)))
	if who.token != nil && who.token.kind == kindPAT && !who.token.fine {
		hdr.Set("X-OAuth-Scopes", strings.Join(who.token.scopes, ", "))
	}
	if len(rep.link) > 0 {
		hdr.Set("Link", linkHeader(s.API, r, rep.link))
	}
	for k, v := range rep.header {
		hdr[k] = v
	}
	s.mu.Unlock()

	if out != nil {
		hdr.Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(rep.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(out)
	}
}

func etagMatch(header, etag string) bool {
	weak := strings.TrimPrefix(etag, "W/")
	for _, c := range strings.Split(header, ",") {
		c = strings.TrimSpace(c)
		if c == "*" || c == etag || strings.TrimPrefix(c, "W/") == weak {
			return true
		}
	}
	return false
}

// injected is an injected failure's answer, in GitHub's error form: a 403 or 429 with
// Retry-After gets GitHub's secondary-rate-limit message, with x-ratelimit-remaining 0 its
// primary one.
func injected(f *fault.Failure) reply {
	msg := http.StatusText(f.Status)
	doc := docsURL
	switch {
	case (f.Status == http.StatusForbidden || f.Status == http.StatusTooManyRequests) && f.Header.Get("Retry-After") != "":
		msg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
		doc = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	case (f.Status == http.StatusForbidden || f.Status == http.StatusTooManyRequests) && f.Header.Get("X-RateLimit-Remaining") == "0":
		msg = "API rate limit exceeded."
		doc = "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
	}
	rep := jsonReply(f.Status, basicError{Message: msg, DocumentationURL: doc})
	rep.header = f.Header
	return rep
}

func (s *Server) budgetLocked(subject string) *budget {
	b := s.budgets[subject]
	now := s.now()
	if b == nil || !now.Before(b.reset) {
		b = &budget{reset: now.Add(time.Hour).Truncate(time.Second)}
		s.budgets[subject] = b
	}
	return b
}

// paginate cuts items to the requested page (per_page default 30, max 100) and returns the
// Link relations GitHub would send.
func paginate[T any](r *http.Request, items []T) ([]T, []page, *reply) {
	q := r.URL.Query()
	per, pg := 30, 1
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			rep := validationFailed("Validation Failed")
			return nil, nil, &rep
		}
		per = min(max(n, 1), 100)
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			rep := validationFailed("Validation Failed")
			return nil, nil, &rep
		}
		pg = max(n, 1)
	}
	last := max((len(items)+per-1)/per, 1)
	lo := min((pg-1)*per, len(items))
	hi := min(lo+per, len(items))
	var links []page
	if pg < last {
		links = append(links, page{"next", pg + 1}, page{"last", last})
	}
	if pg > 1 {
		links = append(links, page{"first", 1}, page{"prev", min(pg-1, last)})
	}
	return items[lo:hi], links, nil
}

func linkHeader(api string, r *http.Request, links []page) string {
	parts := make([]string, 0, len(links))
	for _, l := range links {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(l.n))
		u := api + strings.TrimPrefix(r.URL.Path, "/api/v3") + "?" + q.Encode()
		parts = append(parts, fmt.Sprintf(`<%s>; rel="%s"`, u, l.rel))
	}
	return strings.Join(parts, ", ")
}
