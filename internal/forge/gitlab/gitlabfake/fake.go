// Package gitlabfake is an in-memory GitLab for tests, written from GitLab's REST API
// documentation (docs.gitlab.com/api: projects, project webhooks, branches, merge requests,
// personal access tokens, version, OAuth 2.0 provider, rate limits, webhook events) rather
// than from any client's assumptions. GitLab publishes its OpenAPI description only inside its
// own repository (it is not among the shared apispecs), so unlike the GitHub fake its requests
// and responses are not checked against a machine-readable description: the documentation
// pages are the reference.
//
// New starts it on an httptest server. The REST API is under /api/v4; OAuth and git are at
// the root, as on a GitLab instance.
//
// REST endpoints (under /api/v4):
//
//	GET    /version                                  version and revision (read_user, read_api or api)
//	GET    /user                                     the authenticated user
//	GET    /personal_access_tokens/self              the access token's name, scopes, expiry (404 for OAuth tokens)
//	GET    /projects                                 visible projects; membership, simple, offset or keyset
//	                                                 (pagination=keyset&order_by=id&sort=asc|desc) pagination
//	GET    /projects/:id                             a project, by id or URL-encoded full path
//	GET    /projects/:id/hooks                       webhooks (Maintainer; offset pagination)
//	POST   /projects/:id/hooks                       create (url, token, signing_token, push_events,
//	                                                 tag_push_events, merge_requests_events, enable_ssl_verification)
//	GET    /projects/:id/hooks/:hook_id
//	PUT    /projects/:id/hooks/:hook_id              update (url required; changing the URL resets the token)
//	DELETE /projects/:id/hooks/:hook_id
//	GET    /projects/:id/repository/branches         branches (offset pagination)
//	POST   /projects/:id/repository/branches         create a branch (branch, ref; Developer); sends the push event
//	POST   /projects/:id/merge_requests              open a merge request (Developer); sends the merge request event
//
// Web endpoints (at the root):
//
//	GET  /oauth/authorize                            authorizes the browser user (SetBrowserUser) and
//	                                                 redirects to redirect_uri with a code and the state
//	POST /oauth/token                                authorization_code and refresh_token grants (form or JSON)
//	GET  /oauth/token/info                           the OAuth token's scopes and remaining validity
//	*    /{namespace…}/{project}.git/…                git smart HTTP for projects made with AddGitProject
//
// Behaviour, as GitLab documents it: requests authenticate with "Authorization: Bearer" (access
// or OAuth token) or "PRIVATE-TOKEN" (access token); an unknown token is 401 {"message":"401
// Unauthorized"}, an expired or revoked one 401 {"error":"invalid_token",…}, a missing scope 403
// {"error":"insufficient_scope",…}; anonymous requests see public projects only. Access
// tokens expire at the start of their expiry date (UTC); OAuth access tokens last two hours,
// and a refresh revokes the refresh token used. Roles are access levels (Reporter 20,
// Developer 30, Maintainer 40, Owner 50), inherited from parent groups; a project the caller
// cannot see is 404 {"message":"404 Project Not Found"}. Offset pagination takes page and
// per_page (default 20, max 100) and answers X-Page, X-Per-Page, X-Total, X-Total-Pages,
// X-Next-Page, X-Prev-Page and a Link header; keyset pagination answers only Link rel="next".
// GETs carry a weak ETag and answer a matching If-None-Match with 304. Every answer carries
// RateLimit-Limit, -Observed, -Remaining, -Reset (epoch) and -ResetTime; beyond the limit (per
// user, per minute) the answer is 429 "Retry later" with Retry-After. Webhook URLs on localhost
// or a private network are refused ("Invalid url given", 422) unless Options.AllowLocalRequests,
// as GitLab's default outbound-request settings do (names are not resolved: only IP literals and
// localhost are recognised). Deliveries carry X-Gitlab-Event, X-Gitlab-Token, Idempotency-Key,
// X-Gitlab-Event-UUID, X-Gitlab-Webhook-UUID, X-Gitlab-Instance and, for hooks with a signing
// token, the Standard Webhooks headers; a push touching more than three refs sends no push
// hooks (push_event_hooks_limit). Project hooks that fail are disabled as GitLab does: after
// four failures for a backoff from one minute doubling to a day (temporarily_disabled), after
// forty for good (disabled); a successful delivery re-enables them.
package gitlabfake

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge/forgetest/fault"
)

// Options configure a fake.
type Options struct {
	// Now is the fake's clock (token expiry, rate-limit windows, hook backoff); default
	// time.Now.
	Now func() time.Time
	// Version is what GET /version reports; default "17.5.0-ee".
	Version string
	// RateLimit is each user's budget of API requests per minute (GitLab.com's authenticated
	// API limit is 2000); default 2000.
	RateLimit int
	// AllowLocalRequests lets webhooks deliver to localhost and private networks, as the admin
	// setting "Allow requests to the local network from webhooks and integrations" does. Tests
	// whose receiver is an httptest server need it.
	AllowLocalRequests bool
	// DeliveryClient sends webhook deliveries; nil: a client with GitLab's 10-second timeout
	// that verifies TLS certificates unless the hook's enable_ssl_verification is false.
	DeliveryClient *http.Client
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the root: the instance's external URL, OAuth and git endpoints, and the
	// integration's BaseURL.
	URL string
	// API is URL + "/api/v4".
	API string

	t    testing.TB
	opts Options
	now  func() time.Time
	srv  *httptest.Server
	mux  *http.ServeMux
	done chan struct{} // closed when the test ends, releasing hung requests and deliveries

	// Faults holds the failures, hangs and latency a test arranged (FailNext, FailAny,
	// HangNext, SetLatency; see injected for how a failure reads) and counts requests
	// (RequestCount). Its paths are the part after /api/v4 ("/projects"), or the full path
	// of a web endpoint ("/oauth/token").
	*fault.Faults

	gitOnce sync.Once
	gitRoot string
	git     http.Handler
	pushMu  sync.Map // project id → *sync.Mutex, serializing pushes so the pusher is known
	sending sync.WaitGroup

	mu          sync.Mutex
	seq         int64
	users       map[string]*user // lower username
	usersByID   map[int64]*user
	tokens      map[string]*token
	refresh     map[string]*refreshToken
	codes       map[string]*oauthCode
	apps        map[string]*oauthApp // client id
	browserUser *user
	namespaces  map[string]*namespace // lower full path
	projects    map[int64]*project
	byPath      map[string]*project // lower full path
	pusher      map[int64]*user     // project id → user of the push in progress
	budgets     map[string]*budget
	deliveries  []Delivery
}

type budget struct {
	used  int
	reset time.Time
}

// New starts a fake GitLab for the test; it stops when the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "17.5.0-ee"
	}
	if o.RateLimit == 0 {
		o.RateLimit = 2000
	}
	s := &Server{
		t: t, opts: o, now: o.Now, mux: http.NewServeMux(), done: make(chan struct{}),
		users: map[string]*user{}, usersByID: map[int64]*user{}, tokens: map[string]*token{},
		refresh: map[string]*refreshToken{}, codes: map[string]*oauthCode{}, apps: map[string]*oauthApp{},
		namespaces: map[string]*namespace{}, projects: map[int64]*project{}, byPath: map[string]*project{},
		pusher: map[int64]*user{}, budgets: map[string]*budget{},
	}
	s.Faults = fault.New(s.done)
	s.routes()
	s.srv = httptest.NewServer(s.mux)
	t.Cleanup(s.srv.Close)
	t.Cleanup(s.sending.Wait)           // deliveries in flight end before the server closes
	t.Cleanup(func() { close(s.done) }) // runs first: hung handlers and deliveries return
	s.URL = s.srv.URL
	s.API = s.srv.URL + "/api/v4"
	return s
}

// Client is an HTTP client for the fake (plain HTTP; no proxies).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// RateLimitUsed is how much of the current minute's budget a user has used ("anonymous"
// for unauthenticated requests).
func (s *Server) RateLimitUsed(username string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.budgets[strings.ToLower(username)]; b != nil && s.now().Before(b.reset) {
		return b.used
	}
	return 0
}

// reply is what an API handler answers; serveAPI adds GitLab's common headers.
type reply struct {
	status int
	body   any    // JSON-encoded; nil: no body
	text   string // a plain-text body instead
	header http.Header
	links  []link
	page   *pageInfo
}

type link struct {
	rel   string
	query url.Values
}

// pageInfo is offset pagination's headers.
type pageInfo struct {
	page, perPage, total, totalPages int
}

func jsonReply(status int, body any) reply { return reply{status: status, body: body} }

// message is GitLab's usual error body.
func message(status int, msg any) reply { return jsonReply(status, map[string]any{"message": msg}) }

func notFound(what string) reply { return message(http.StatusNotFound, "404 "+what+" Not Found") }

func unauthorized() reply { return message(http.StatusUnauthorized, "401 Unauthorized") }

func forbidden() reply { return message(http.StatusForbidden, "403 Forbidden") }

// missing is Grape's answer to a missing required parameter.
func missing(param string) reply {
	return jsonReply(http.StatusBadRequest, map[string]any{"error": param + " is missing"})
}

// call is one API request as a handler sees it, with its authenticated token (nil when
// anonymous) and its parameters (query, then JSON or form body).
type call struct {
	r      *http.Request
	tok    *token
	params map[string]any
}

func (c *call) user() *user {
	if c.tok == nil {
		return nil
	}
	return c.tok.user
}

// str reads a parameter as a string ("" when absent).
func (c *call) str(name string) string {
	switch v := c.params[name].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// has reports whether a parameter was sent.
func (c *call) has(name string) bool {
	_, ok := c.params[name]
	return ok
}

// boolean reads a parameter as Grape coerces a Boolean; ok is false when it is absent, and a
// value Grape would refuse gives a 400.
func (c *call) boolean(name string) (v, ok bool, bad *reply) {
	raw, present := c.params[name]
	if !present || raw == nil {
		return false, false, nil
	}
	switch x := raw.(type) {
	case bool:
		return x, true, nil
	case string:
		switch strings.ToLower(x) {
		case "true", "1", "yes", "t":
			return true, true, nil
		case "false", "0", "no", "f", "":
			return false, true, nil
		}
	case float64:
		return x != 0, true, nil
	}
	rep := jsonReply(http.StatusBadRequest, map[string]any{"error": name + " is invalid"})
	return false, false, &rep
}

type handler func(*call) reply

// api registers an API handler under /api/v4; scopes are those that may call it (none: any
// valid token).
func (s *Server) api(pattern string, scopes []string, h handler) {
	method, p, _ := strings.Cut(pattern, " ")
	s.mux.HandleFunc(method+" /api/v4"+p, func(w http.ResponseWriter, r *http.Request) { s.serveAPI(w, r, scopes, h) })
}

var (
	readScopes  = []string{"api", "read_api"}
	writeScopes = []string{"api"}
	userScopes  = []string{"api", "read_api", "read_user"}
)

func (s *Server) routes() {
	s.api("GET /version", userScopes, s.getVersion)
	s.api("GET /user", userScopes, s.getUser)
	s.api("GET /personal_access_tokens/self", nil, s.getTokenSelf)
	s.api("GET /projects", readScopes, s.listProjects)
	s.api("GET /projects/{id}", readScopes, s.getProject)
	s.api("GET /projects/{id}/hooks", readScopes, s.listHooks)
	s.api("POST /projects/{id}/hooks", writeScopes, s.createHook)
	s.api("GET /projects/{id}/hooks/{hook}", readScopes, s.getHook)
	s.api("PUT /projects/{id}/hooks/{hook}", writeScopes, s.updateHook)
	s.api("DELETE /projects/{id}/hooks/{hook}", writeScopes, s.deleteHook)
	s.api("GET /projects/{id}/repository/branches", readScopes, s.listBranches)
	s.api("POST /projects/{id}/repository/branches", writeScopes, s.createBranch)
	s.api("POST /projects/{id}/merge_requests", writeScopes, s.createMergeRequest)
	s.mux.HandleFunc("/api/v4/", func(w http.ResponseWriter, r *http.Request) {
		s.serveAPI(w, r, nil, func(*call) reply { return message(http.StatusNotFound, "404 Not Found") })
	})

	s.web("GET /oauth/authorize", s.oauthAuthorize)
	s.web("POST /oauth/token", s.oauthToken)
	s.web("GET /oauth/token/info", s.oauthTokenInfo)
	s.mux.HandleFunc("/", s.serveGit)
}

// web registers a web endpoint: latency, counting and injected failures apply, nothing else.
func (s *Server) web(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, s.Web(h)) }

// readParams merges the query and a JSON or form body, as Grape does.
func readParams(r *http.Request) (map[string]any, error) {
	params := map[string]any{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		return params, err
	}
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/json"):
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			params[k] = v
		}
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		for k, v := range form {
			params[k] = v[0]
		}
	}
	return params, nil
}

// serveAPI is the pipeline every REST request goes through: latency, injected failures,
// authentication and scopes, the rate limit, the handler, then ETag, pagination and
// rate-limit headers.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, scopes []string, h handler) {
	if !s.Delay(r.Context()) {
		return
	}
	apiPath := strings.TrimPrefix(r.URL.Path, "/api/v4")
	params, perr := readParams(r)

	s.Count(apiPath, true)
	f := s.Take(apiPath, r.URL.Query(), true)
	if f != nil && f.Hang {
		s.Hang(r.Context())
		return
	}
	s.mu.Lock()
	tok, authFail := s.authenticate(r)
	subject := "anonymous"
	if tok != nil {
		subject = strings.ToLower(tok.user.username)
	}
	b := s.budgetLocked(subject)
	limit := s.opts.RateLimit
	b.used++ // GitLab's rate limiter counts every request, refused or not

	var rep reply
	switch {
	case f != nil:
		rep = injected(f)
	case b.used > limit:
		rep = reply{status: http.StatusTooManyRequests, text: "Retry later\n",
			header: http.Header{"Retry-After": {strconv.Itoa(int(max(b.reset.Sub(s.now()), time.Second).Seconds()))}}}
	case authFail != nil:
		rep = *authFail
	case perr != nil:
		rep = message(http.StatusBadRequest, "400 Bad request - "+perr.Error())
	case tok != nil && len(scopes) > 0 && !tok.hasScope(scopes...):
		rep = jsonReply(http.StatusForbidden, map[string]any{
			"error":             "insufficient_scope",
			"error_description": "The request requires higher privileges than provided by the access token.",
			"scope":             strings.Join(scopes, " "),
		})
	default:
		rep = h(&call{r: r, tok: tok, params: params})
	}

	var out []byte
	if rep.body != nil {
		var err error
		if out, err = json.Marshal(rep.body); err != nil {
			s.mu.Unlock()
			s.t.Errorf("gitlabfake: encode response to %s %s: %v", r.Method, r.URL.Path, err)
			http.Error(w, "encode", http.StatusInternalServerError)
			return
		}
	} else if rep.text != "" {
		out = []byte(rep.text)
	}
	hdr := w.Header()
	if rep.status == http.StatusOK && r.Method == http.MethodGet {
		sum := sha256.Sum256(out)
		etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
		hdr.Set("ETag", etag)
		hdr.Set("Cache-Control", "max-age=0, private, must-revalidate")
		if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
			rep.status, out = http.StatusNotModified, nil
		}
	}
	hdr.Set("RateLimit-Name", "throttle_authenticated_api")
	hdr.Set("RateLimit-Limit", strconv.Itoa(limit))
	hdr.Set("RateLimit-Observed", strconv.Itoa(b.used))
	hdr.Set("RateLimit-Remaining", strconv.Itoa(max(limit-b.used, 0)))
	hdr.Set("RateLimit-Reset", strconv.FormatInt(b.reset.Unix(), 10))
	hdr.Set("RateLimit-ResetTime", b.reset.UTC().Format(http.TimeFormat))
	hdr.Set("X-Request-Id", randomHex(13))
	if rep.page != nil {
		p := rep.page
		hdr.Set("X-Page", strconv.Itoa(p.page))
		hdr.Set("X-Per-Page", strconv.Itoa(p.perPage))
		hdr.Set("X-Total", strconv.Itoa(p.total))
		hdr.Set("X-Total-Pages", strconv.Itoa(p.totalPages))
		next, prev := "", ""
		if p.page < p.totalPages {
			next = strconv.Itoa(p.page + 1)
		}
		if p.page > 1 {
			prev = strconv.Itoa(p.page - 1)
		}
		hdr.Set("X-Next-Page", next)
		hdr.Set("X-Prev-Page", prev)
	}
	if len(rep.links) > 0 {
		parts := make([]string, 0, len(rep.links))
		for _, l := range rep.links {
			parts = append(parts, fmt.Sprintf(`<%s%s?%s>; rel="%s"`, s.API, apiPath, l.query.Encode(), l.rel))
		}
		hdr.Set("Link", strings.Join(parts, ", "))
	}
	for k, v := range rep.header {
		hdr[k] = v
	}
	s.mu.Unlock()

	switch {
	case rep.body != nil && rep.status != http.StatusNotModified:
		hdr.Set("Content-Type", "application/json")
	case rep.text != "":
		hdr.Set("Content-Type", "text/plain")
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(out)
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

// injected is an injected failure's answer, shaped as GitLab's: 429 from its rate limiter,
// 502/503/504 from its proxy, otherwise the usual {"message": "<status> <text>"}.
func injected(f *fault.Failure) reply {
	var rep reply
	switch f.Status {
	case http.StatusTooManyRequests:
		rep = reply{status: f.Status, text: "Retry later\n"}
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		rep = reply{status: f.Status, text: "<html><body><h1>" + strconv.Itoa(f.Status) + "</h1>GitLab is not responding</body></html>\n"}
	default:
		rep = message(f.Status, strconv.Itoa(f.Status)+" "+http.StatusText(f.Status))
	}
	rep.header = f.Header
	return rep
}

func (s *Server) budgetLocked(subject string) *budget {
	b := s.budgets[subject]
	now := s.now()
	if b == nil || !now.Before(b.reset) {
		b = &budget{reset: now.Truncate(time.Minute).Add(time.Minute)}
		s.budgets[subject] = b
	}
	return b
}

// offsetPage cuts items to the requested page (per_page default 20, max 100) and returns the
// reply's pagination headers and Link relations.
func offsetPage[T any](c *call, items []T) ([]T, *pageInfo, []link) {
	q := c.r.URL.Query()
	per, pg := 20, 1
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil {
		per = min(max(n, 1), 100)
	}
	if n, err := strconv.Atoi(q.Get("page")); err == nil {
		pg = max(n, 1)
	}
	last := max((len(items)+per-1)/per, 1)
	lo := min((pg-1)*per, len(items))
	hi := min(lo+per, len(items))
	at := func(rel string, n int) link {
		v := c.r.URL.Query()
		v.Set("page", strconv.Itoa(n))
		v.Set("per_page", strconv.Itoa(per))
		return link{rel: rel, query: v}
	}
	var links []link
	if pg > 1 {
		links = append(links, at("prev", pg-1))
	}
	if pg < last {
		links = append(links, at("next", pg+1))
	}
	links = append(links, at("first", 1), at("last", last))
	return items[lo:hi], &pageInfo{page: pg, perPage: per, total: len(items), totalPages: last}, links
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// ts formats a time as GitLab's API does.
func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
