// Package azurefake is an in-memory Azure DevOps organization (or Azure DevOps Server
// collection) for tests, written from Microsoft's REST API 7.1 reference and Service Hooks
// documentation rather than from any client's assumptions.
//
// New starts it on an httptest server. Requests to the REST API are checked, request and
// response, against the published Swagger descriptions of the git, core and service hooks
// areas (package apicheck): a violation fails the test. Two wire facts the descriptions leave
// out are honoured: collections are answered in Azure DevOps' {"count", "value"} envelope (the
// value is what is checked), and "Pull Requests_Create" answers 201 (checked as the 200 it
// declares). _apis/connectionData, which no description covers, is served unchecked.
//
// Endpoints, below the organization URL (BaseURL: URL + Options.PathPrefix + "/" +
// Options.Organization):
//
//	GET    /_apis/connectionData                              who the token is (api-version 7.1-preview.1)
//	GET    /_apis/projects                                    projects ($top, $skip, continuationToken)
//	GET    /{project}/_apis/git/repositories                  a project's repositories (one page)
//	GET    /{project}/_apis/git/repositories/{repositoryId}   a repository by id or name
//	GET    /{project}/_apis/git/repositories/{repositoryId}/refs          refs (filter, $top, continuationToken)
//	POST   /{project}/_apis/git/repositories/{repositoryId}/refs          create, move or delete refs
//	POST   /{project}/_apis/git/repositories/{repositoryId}/pullrequests  open a pull request (201)
//	GET    /_apis/hooks/subscriptions                         subscriptions (publisherId, eventType, consumerId, consumerActionId)
//	POST   /_apis/hooks/subscriptions                         create a subscription
//	GET    /_apis/hooks/subscriptions/{subscriptionId}
//	PUT    /_apis/hooks/subscriptions/{subscriptionId}        replace a subscription (its status included)
//	DELETE /_apis/hooks/subscriptions/{subscriptionId}
//	POST   /_apis/hooks/subscriptionsquery                    subscriptions matching input filters
//	*      /{project}/_git/{repository}/…                     git smart HTTP, with Options.Git
//
// Behaviour, as Azure DevOps documents it: personal access tokens authenticate with HTTP basic
// (any user name); a request without credentials gets 203 and an HTML sign-in page unless it
// sends X-TFS-FedAuthRedirect: Suppress (then 401); a refused, expired or revoked token, and a
// token without the scope an endpoint needs, get 401 (TF400813); creating, replacing or
// deleting subscriptions needs the "Edit subscriptions" permission (403 otherwise); every call
// needs an api-version, and one above Options.APIVersion gets 400 VssVersionOutOfRangeException;
// errors are Azure DevOps' serialized exceptions ({"message", "typeKey", …}); the confidential
// basic-auth password of a subscription is masked in every answer. With Options.RateLimit, a
// user's requests count against a five-minute window: past half of it answers carry
// X-RateLimit-Resource/-Delay/-Limit/-Remaining/-Reset, and once it is spent requests get 429
// with Retry-After (TF400733). Azure DevOps documents no conditional requests for these
// endpoints, so the fake sends no ETag.
//
// Events: a push through git (or a ref created through the API) is delivered as git.push, a
// pull request opened as git.pullrequest.created, a push to an active pull request's source
// branch as git.pullrequest.updated (notificationType PushNotification), CompletePullRequest
// and AbandonPullRequest as git.pullrequest.updated (StatusUpdateNotification, with
// git.pullrequest.merged on completion), each to every subscription whose filters match, with
// its basic-auth credentials and HTTP headers, as the "Web Hooks" consumer posts them. A
// failed delivery puts the subscription on probation; three in a row disable it
// (disabledBySystem); a success enables it again. Deliveries are made before the operation
// that caused them returns and are not retried. Tests arrange state and inject failures with
// the methods of Server.
package azurefake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	// Organization is the organization (or collection) name; default "fabrikam".
	Organization string
	// PathPrefix serves the collection below a path, as Azure DevOps Server does
	// ("/tfs" gives BaseURL …/tfs/fabrikam). Empty: at the root, like dev.azure.com.
	PathPrefix string
	// OnPremises makes connectionData report an Azure DevOps Server ("onPremises") and remote
	// URLs carry no organization user name; default: Azure DevOps Services ("hosted").
	OnPremises bool
	// APIVersion is the highest REST API version served; default "7.1". "7.0" is an Azure
	// DevOps Server 2022 that refuses 7.1.
	APIVersion string
	// Now is the fake's clock (token expiry, rate-limit windows, timestamps); default time.Now.
	Now func() time.Time
	// Loader caches the API descriptions between fakes; nil loads them for this fake alone.
	Loader *apicheck.Loader
	// Unchecked serves the API without checking it against the descriptions: for load tests.
	Unchecked bool
	// RateLimit is each user's budget of requests per five-minute window; 0: unlimited.
	RateLimit int
	// Git serves git smart HTTP (git http-backend) for repositories added with
	// AddGitRepository, behind the token check (Code read; Code write to push).
	Git bool
	// DeliveryClient sends service hook deliveries; nil: a client with a 20-second timeout
	// that verifies certificates unless the subscription accepts untrusted ones.
	DeliveryClient *http.Client
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's root.
	URL string
	// BaseURL is the organization (collection) URL, an integration's base URL.
	BaseURL string

	t       testing.TB
	opts    Options
	now     func() time.Time
	srv     *httptest.Server
	mux     *http.ServeMux
	specs   []*apicheck.Spec
	base    string // the organization's path: PathPrefix + "/" + Organization
	git     http.Handler
	gitRoot string
	done    chan struct{}

	// Faults holds the failures, hangs and latency a test arranged (FailNext, HangNext,
	// SetLatency; a 429 gets Azure DevOps' throttling message) and counts requests
	// (RequestCount). Its paths are below the organization URL ("/_apis/projects"); "*"
	// matches any API request.
	*fault.Faults

	pushMu sync.Mutex // one push through git at a time, so that its pusher is known
	pusher *user      // the user of the push in progress, under pushMu

	mu         sync.Mutex
	collection string
	users      map[string]*user // by lower unique name
	pats       map[string]*pat  // by token
	projects   []*project       // in creation order
	repos      map[string]*repo // by id
	subs       map[string]*sub  // by id
	subOrder   []string         // subscription ids in creation order
	pulls      map[int64]*pull  // by id (unique in the collection)
	nextPull   int64            //
	pushes     int64            // push ids
	usage      map[string][]time.Time
	deliveries []Delivery
}

// SpecFiles are the Azure DevOps descriptions the fake checks against, below the shared test
// data directory (see apicheck.SharedDir): the git, core and service hooks areas.
func SpecFiles() []string {
	return []string{
		"apispecs/azure-devops/git-7.1.json",
		"apispecs/azure-devops/core-7.1.json",
		"apispecs/azure-devops/serviceHooks-7.1.json",
	}
}

// SpecOptions are the apicheck options for checking the fake's API served below prefix.
func SpecOptions(prefix string) apicheck.Options {
	return apicheck.Options{Server: "https://dev.azure.com", PathPrefix: prefix}
}

func loadSpecs(l *apicheck.Loader, prefix string) ([]*apicheck.Spec, error) {
	dir, err := apicheck.SharedDir()
	if err != nil {
		return nil, err
	}
	var out []*apicheck.Spec
	for _, f := range SpecFiles() {
		var s *apicheck.Spec
		if l != nil {
			s, err = l.Load(filepath.Join(dir, f), SpecOptions(prefix))
		} else {
			s, err = apicheck.Load(filepath.Join(dir, f), SpecOptions(prefix))
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// New starts a fake Azure DevOps for the test; it stops when the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Organization == "" {
		o.Organization = "fabrikam"
	}
	o.PathPrefix = strings.TrimSuffix(o.PathPrefix, "/")
	if o.APIVersion == "" {
		o.APIVersion = "7.1"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		t: t, opts: o, now: o.Now, mux: http.NewServeMux(), done: make(chan struct{}),
		base: o.PathPrefix + "/" + o.Organization, collection: newGUID(),
		users: map[string]*user{}, pats: map[string]*pat{}, repos: map[string]*repo{},
		subs: map[string]*sub{}, pulls: map[int64]*pull{},
		usage: map[string][]time.Time{},
	}
	s.Faults = fault.New(s.done)
	if !o.Unchecked {
		specs, err := loadSpecs(o.Loader, o.PathPrefix)
		if err != nil {
			t.Fatalf("azurefake: %v", err)
		}
		s.specs = specs
	}
	if o.Git {
		s.gitRoot = t.TempDir()
		s.git = s.gitHandler()
	}
	s.routes()
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { close(s.done) }) // runs first: hung handlers return, so Close does not wait on them
	s.URL = s.srv.URL
	s.BaseURL = s.srv.URL + s.base
	return s
}

// Client is an HTTP client for the fake.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// serve sends git to git http-backend and everything else through the API pipeline.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, s.base+"/"); ok && strings.Contains(rest, "/_git/") {
		s.serveGit(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// reply is what an API handler answers.
type reply struct {
	status int
	body   any // JSON-encoded; nil: no body
	// list, when set, is answered in the {"count", "value"} envelope; the value is what the
	// descriptions describe.
	list   any
	count  int
	header http.Header
	raw    []byte // a non-JSON body (the sign-in page)
	ctype  string
}

func jsonReply(status int, body any) reply { return reply{status: status, body: body} }

func listReply(items any, n int) reply { return reply{status: http.StatusOK, list: items, count: n} }

// adoError is Azure DevOps' serialized exception.
type adoError struct {
	ID             string `json:"$id"`
	InnerException any    `json:"innerException"`
	Message        string `json:"message"`
	TypeName       string `json:"typeName"`
	TypeKey        string `json:"typeKey"`
	ErrorCode      int    `json:"errorCode"`
	EventID        int    `json:"eventId"`
}

func errReply(status int, typeKey, msg string) reply {
	return jsonReply(status, adoError{ID: "1", Message: msg, TypeKey: typeKey,
		TypeName: "Microsoft.TeamFoundation.Framework.Server." + typeKey + ", Microsoft.TeamFoundation.Framework.Server", EventID: 3000})
}

func notFound(msg string) reply { return errReply(http.StatusNotFound, "NotFoundException", msg) }

func badRequest(msg string) reply { return errReply(http.StatusBadRequest, "ArgumentException", msg) }

// call is one API request as a handler sees it.
type call struct {
	r    *http.Request
	body []byte
	who  *user
}

func (c *call) decode(v any) *reply {
	if err := json.Unmarshal(c.body, v); err != nil {
		r := badRequest("The request body is not valid JSON: " + err.Error())
		return &r
	}
	return nil
}

// route describes one API operation.
type route struct {
	scope   string // the PAT scope it needs ("" for any valid token)
	preview bool   // a preview API: its api-version must say -preview
	checked bool   // covered by the descriptions
	h       func(*call) reply
}

// api registers an API operation below the organization.
func (s *Server) api(pattern string, rt route) {
	method, p, _ := strings.Cut(pattern, " ")
	s.mux.HandleFunc(method+" "+s.base+p, func(w http.ResponseWriter, r *http.Request) { s.serveAPI(w, r, rt) })
}

func (s *Server) routes() {
	s.api("GET /_apis/connectionData", route{preview: true, h: s.connectionData})
	s.api("GET /_apis/projects", route{scope: scopeProject, checked: true, h: s.listProjects})
	s.api("GET /{project}/_apis/git/repositories", route{scope: scopeCode, checked: true, h: s.listRepos})
	s.api("GET /{project}/_apis/git/repositories/{repositoryId}", route{scope: scopeCode, checked: true, h: s.getRepo})
	s.api("GET /{project}/_apis/git/repositories/{repositoryId}/refs", route{scope: scopeCode, checked: true, h: s.listRefs})
	s.api("POST /{project}/_apis/git/repositories/{repositoryId}/refs", route{scope: scopeCodeWrite, checked: true, h: s.updateRefs})
	s.api("POST /{project}/_apis/git/repositories/{repositoryId}/pullrequests", route{scope: scopeCodeWrite, checked: true, h: s.createPull})
	s.api("GET /_apis/hooks/subscriptions", route{scope: scopeCode, checked: true, h: s.listSubscriptions})
	s.api("POST /_apis/hooks/subscriptions", route{scope: scopeCode, checked: true, h: s.createSubscription})
	s.api("GET /_apis/hooks/subscriptions/{subscriptionId}", route{scope: scopeCode, checked: true, h: s.getSubscription})
	s.api("PUT /_apis/hooks/subscriptions/{subscriptionId}", route{scope: scopeCode, checked: true, h: s.replaceSubscription})
	s.api("DELETE /_apis/hooks/subscriptions/{subscriptionId}", route{scope: scopeCode, checked: true, h: s.deleteSubscription})
	s.api("POST /_apis/hooks/subscriptionsquery", route{scope: scopeCode, checked: true, h: s.querySubscriptions})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, s.base+"/") {
			s.serveAPI(w, r, route{checked: true, h: func(*call) reply {
				return notFound("The resource cannot be found: " + strings.TrimPrefix(r.URL.Path, s.base))
			}})
			return
		}
		http.NotFound(w, r)
	})
}

// serveAPI is the pipeline every REST request goes through: latency, injected failures,
// the description check, authentication, api-version, scope, the rate limit, the handler,
// then the answer's check.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, rt route) {
	if !s.Delay(r.Context()) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	apiPath := strings.TrimPrefix(r.URL.Path, s.base)

	s.Count(apiPath, true)
	f := s.Take(apiPath, r.URL.Query(), true)
	if f != nil && f.Hang {
		s.Hang(r.Context())
		return
	}

	var ex *apicheck.Exchange
	if rt.checked && s.specs != nil {
		ex = s.checkRequest(r)
	}
	var rep reply
	if f != nil {
		rep = injected(f)
	} else {
		rep = s.handle(r, body, rt)
	}
	s.write(w, r, rep, ex)
}

// checkRequest finds the operation in the description that has it and checks the request.
func (s *Server) checkRequest(r *http.Request) *apicheck.Exchange {
	for _, sp := range s.specs {
		ex, err := sp.CheckRequest(r)
		if errors.Is(err, apicheck.ErrNoOperation) {
			continue
		}
		if err != nil {
			s.t.Errorf("azurefake: apicheck: %v", err)
		}
		return ex
	}
	s.t.Errorf("azurefake: apicheck: no operation for %s %s in the Azure DevOps descriptions", r.Method, r.URL.Path)
	return nil
}

func injected(f *fault.Failure) reply {
	rep := errReply(f.Status, "", http.StatusText(f.Status))
	if f.Status == http.StatusTooManyRequests {
		rep = errReply(f.Status, "RequestBlockedException",
			"TF400733: The request has been canceled: Request was blocked due to exceeding usage of resource 'Core' in namespace 'User'.")
	}
	rep.header = f.Header
	return rep
}

// handle authenticates the request, checks its api-version, scope and budget, and runs rt.
func (s *Server) handle(r *http.Request, body []byte, rt route) reply {
	who, authFail := s.authenticate(r, rt.scope)
	if authFail != nil {
		return *authFail
	}
	if rep := s.checkVersion(r, rt.preview); rep != nil {
		return *rep
	}
	hdr, limited := s.spend(who)
	if limited != nil {
		return *limited
	}
	rep := rt.h(&call{r: r, body: body, who: who})
	if rep.header == nil {
		rep.header = http.Header{}
	}
	for k, v := range hdr {
		rep.header[k] = v
	}
	return rep
}

// checkVersion enforces api-version: present, well formed, not above Options.APIVersion,
// and marked -preview for a preview API.
func (s *Server) checkVersion(r *http.Request, preview bool) *reply {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		rep := errReply(http.StatusBadRequest, "VssVersionNotSpecifiedException",
			fmt.Sprintf("No api-version was supplied for the %q request. The version must be supplied either as part of the Accept header (e.g. \"application/json; api-version=1.0\") or as a query parameter (e.g. \"?api-version=1.0\").", r.Method))
		return &rep
	}
	num, stage, _ := strings.Cut(v, "-")
	want, ok := parseVersion(num)
	have, _ := parseVersion(s.opts.APIVersion)
	switch {
	case !ok:
		rep := errReply(http.StatusBadRequest, "VssInvalidApiVersionException", fmt.Sprintf("The requested api-version %q is not in a valid format.", v))
		return &rep
	case want > have:
		rep := errReply(http.StatusBadRequest, "VssVersionOutOfRangeException",
			fmt.Sprintf("The requested REST API version of %s is out of range for this server. The latest REST API version this server supports is %s.", num, s.opts.APIVersion))
		return &rep
	case preview && !strings.HasPrefix(stage, "preview"):
		rep := errReply(http.StatusBadRequest, "VssInvalidPreviewVersionException",
			fmt.Sprintf("The requested version %q of the resource is under \"preview\". The -preview flag must be supplied in the api-version for such requests. For example: %q", num, num+"-preview"))
		return &rep
	}
	return nil
}

// parseVersion reads "major.minor" as major*100+minor.
func parseVersion(v string) (int, bool) {
	maj, minor, _ := strings.Cut(v, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(firstNonEmpty(minor, "0"))
	return a*100 + b, err1 == nil && err2 == nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// rateWindow is Azure DevOps' sliding window of consumption.
const rateWindow = 5 * time.Minute

// spend counts a request against its user's budget: the X-RateLimit-* headers once half is
// used, 429 once it is spent.
func (s *Server) spend(who *user) (http.Header, *reply) {
	if s.opts.RateLimit <= 0 || who == nil {
		return nil, nil
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var kept []time.Time
	for _, t := range s.usage[who.id] {
		if now.Sub(t) < rateWindow {
			kept = append(kept, t)
		}
	}
	limit := s.opts.RateLimit
	h := http.Header{}
	setHeaders := func(remaining int, reset time.Time) {
		h.Set("X-RateLimit-Resource", "Core")
		h.Set("X-RateLimit-Delay", "0.000")
		h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	}
	if len(kept) >= limit {
		s.usage[who.id] = kept
		free := kept[len(kept)-limit].Add(rateWindow) // when one more request fits
		wait := max(int(free.Sub(now).Seconds()+0.999), 1)
		setHeaders(0, kept[len(kept)-1].Add(rateWindow))
		h.Set("Retry-After", strconv.Itoa(wait))
		rep := errReply(http.StatusTooManyRequests, "RequestBlockedException",
			"TF400733: The request has been canceled: Request was blocked due to exceeding usage of resource 'Core' in namespace 'User'.")
		rep.header = h
		return nil, &rep
	}
	kept = append(kept, now)
	s.usage[who.id] = kept
	if len(kept)*2 < limit {
		return nil, nil
	}
	setHeaders(limit-len(kept), now.Add(rateWindow))
	return h, nil
}

// write encodes the answer, checks it against the description, and sends it.
func (s *Server) write(w http.ResponseWriter, r *http.Request, rep reply, ex *apicheck.Exchange) {
	var out, checked []byte
	var err error
	switch {
	case rep.raw != nil:
		out = rep.raw
	case rep.list != nil:
		checked, err = json.Marshal(rep.list)
		if err == nil {
			out, err = json.Marshal(map[string]json.RawMessage{"count": json.RawMessage(strconv.Itoa(rep.count)), "value": checked})
		}
	case rep.body != nil:
		out, err = json.Marshal(rep.body)
		checked = out
	}
	if err != nil {
		s.t.Errorf("azurefake: encode the answer to %s %s: %v", r.Method, r.URL.Path, err)
		http.Error(w, "encode", http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	for k, v := range rep.header {
		hdr[k] = v
	}
	if ex != nil && rep.status >= 200 && rep.status < 300 && rep.raw == nil {
		status := rep.status
		if status == http.StatusCreated && ex.OperationID() == "Pull Requests_Create" {
			status = http.StatusOK // the description declares 200; the service answers 201
		}
		h := hdr.Clone()
		h.Set("Content-Type", "application/json; charset=utf-8")
		if err := ex.CheckResponse(status, h, checked); err != nil {
			s.t.Errorf("azurefake: apicheck: %v", err)
		}
	}
	switch {
	case rep.raw != nil:
		hdr.Set("Content-Type", firstNonEmpty(rep.ctype, "text/html; charset=utf-8"))
	case out != nil:
		hdr.Set("Content-Type", "application/json; charset=utf-8")
	}
	hdr.Set("X-TFS-ProcessId", s.collection)
	hdr.Set("ActivityId", newGUID())
	w.WriteHeader(rep.status)
	if r.Method != http.MethodHead && out != nil {
		_, _ = w.Write(out)
	}
}

// query reads an integer query parameter (def when absent); ok is false when it is not one.
func query(r *http.Request, name string, def int) (int, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 0
}

// escapePath escapes a name for a URL path.
func escapePath(s string) string { return url.PathEscape(s) }
