// Package apicheck checks HTTP traffic against a Git host's published OpenAPI description.
//
// It owns loading those descriptions (OpenAPI 3 as published, Swagger 2.0 converted, with the
// hosts' quirks fixed in memory) and validating requests and responses against them, either
// one exchange at a time (CheckRequest, (*Exchange).CheckResponse) or as an http.Handler
// middleware in front of a fake host. It is test tooling: the fakes use it so that when a fake
// answers something the host's description does not allow, or a client sends something the
// host would refuse, a test fails.
package apicheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Options adapts a description to the way a fake serves it.
type Options struct {
	// Replace substitutes placeholders in the file's text before parsing (Gitea's
	// {{.SwaggerAppSubUrl}}). Values land inside JSON strings and must be JSON-safe.
	Replace map[string]string
	// Server replaces the description's servers, so that routing works for descriptions
	// whose server URL does not route (Bitbucket's port variable) or is a placeholder.
	// Empty: the description's first server.
	Server string
	// PathPrefix is the prefix a fake serves the API under (GitHub Enterprise's "/api/v3").
	// Only requests under it are checked; it is stripped before routing.
	PathPrefix string
	// SlashParams lists path templates whose last parameter may contain slashes that clients
	// send unescaped (GitHub's "/repos/{owner}/{repo}/git/ref/{ref}" with ref "heads/main").
	// The router matches a parameter to one segment only, so those slashes are escaped before
	// routing when the path matches nothing otherwise.
	SlashParams []string
	// ErrorSchema names a component schema that the body of an error status (4xx, 5xx) an
	// operation does not declare must match ("basic-error" for GitHub, whose every endpoint
	// may answer 401, 403 or 5xx). Empty: undeclared error statuses are violations.
	ErrorSchema string
}

func (o Options) key() string {
	b, _ := json.Marshal(o) // maps marshal in key order, so equal options give equal keys
	return string(b)
}

// Spec is one loaded description with its router. It is safe for concurrent use.
type Spec struct {
	doc        *openapi3.T
	router     routers.Router
	opts       Options
	server     *url.URL // where the routes live; nil: any host
	errSchema  *openapi3.Schema
	slashTmpls [][]string
}

// Load reads the description at path (OpenAPI 3 or Swagger 2.0, JSON, with or without a
// UTF-8 byte-order mark) and prepares its router. It never validates the document itself:
// the hosts' descriptions do not pass kin-openapi's document validation.
func Load(path string, o Options) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read API description: %w", err)
	}
	spec, err := parse(data, o)
	if err != nil {
		return nil, fmt.Errorf("load API description %s: %w", path, err)
	}
	return spec, nil
}

func parse(data []byte, o Options) (*Spec, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(o.Replace) > 0 {
		text := string(data)
		for from, to := range o.Replace {
			text = strings.ReplaceAll(text, from, to)
		}
		data = []byte(text)
	}
	var probe struct {
		Swagger string `json:"swagger"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("parse JSON: %w", err)
	}
	var doc *openapi3.T
	if probe.Swagger != "" {
		var d2 openapi2.T
		if err := json.Unmarshal(data, &d2); err != nil {
			return nil, fmt.Errorf("parse Swagger 2.0: %w", err)
		}
		d3, err := openapi2conv.ToV3(&d2)
		if err != nil {
			return nil, fmt.Errorf("convert Swagger 2.0 to OpenAPI 3: %w", err)
		}
		doc = d3
	} else {
		d3, err := openapi3.NewLoader().LoadFromData(data)
		if err != nil {
			return nil, fmt.Errorf("parse OpenAPI 3: %w", err)
		}
		doc = d3
	}
	if o.Server != "" {
		doc.Servers = openapi3.Servers{{URL: o.Server}}
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("build router: %w", err)
	}
	s := &Spec{doc: doc, router: router, opts: o}
	if len(doc.Servers) > 0 {
		u, err := url.Parse(doc.Servers[0].URL)
		if err == nil && u.Host != "" && !strings.Contains(u.Host, "{") {
			s.server = u
		}
	}
	if o.ErrorSchema != "" {
		ref := doc.Components.Schemas[o.ErrorSchema]
		if ref == nil || ref.Value == nil {
			return nil, fmt.Errorf("error schema %q is not in the description's components", o.ErrorSchema)
		}
		s.errSchema = ref.Value
	}
	for _, t := range o.SlashParams {
		s.slashTmpls = append(s.slashTmpls, strings.Split(strings.Trim(t, "/"), "/"))
	}
	return s, nil
}

// Loader caches descriptions by path and options: loading GitHub's takes most of a second,
// so the tests of a binary share one Loader. It is safe for concurrent use; the zero value
// is not usable, call NewLoader.
type Loader struct {
	mu    sync.Mutex
	specs map[string]func() (*Spec, error)
}

// NewLoader returns an empty cache.
func NewLoader() *Loader {
	return &Loader{specs: make(map[string]func() (*Spec, error))}
}

// Load is Load, loading each (path, options) pair once; concurrent callers for the same pair
// wait for the one load.
func (l *Loader) Load(path string, o Options) (*Spec, error) {
	k := path + "\x00" + o.key()
	l.mu.Lock()
	f, ok := l.specs[k]
	if !ok {
		f = sync.OnceValues(func() (*Spec, error) { return Load(path, o) })
		l.specs[k] = f
	}
	l.mu.Unlock()
	return f()
}

// Exchange is a request matched to an operation of the description, ready to check the
// response against it.
type Exchange struct {
	spec  *Spec
	input *openapi3filter.RequestValidationInput
}

// OperationID names the matched operation ("repos/get"), or METHOD and path template when
// the operation has no id.
func (e *Exchange) OperationID() string {
	if id := e.input.Route.Operation.OperationID; id != "" {
		return id
	}
	return e.input.Route.Method + " " + e.input.Route.Path
}

// ErrNoOperation is returned (wrapped) by CheckRequest when no operation of the description
// matches the request's method and path.
var ErrNoOperation = errors.New("no operation")

// Under reports whether req's path is under Options.PathPrefix, that is whether CheckRequest
// applies to it.
func (s *Spec) Under(req *http.Request) bool {
	_, ok := s.strip(req.URL.EscapedPath())
	return ok
}

func (s *Spec) strip(escaped string) (string, bool) {
	p := strings.TrimSuffix(s.opts.PathPrefix, "/")
	if p == "" {
		return escaped, true
	}
	if escaped == p {
		return "/", true
	}
	if rest, ok := strings.CutPrefix(escaped, p+"/"); ok {
		return "/" + rest, true
	}
	return "", false
}

// CheckRequest finds the operation for req and validates its parameters and body. The body
// is read and restored, so req can still be served. When no operation matches, the error
// wraps ErrNoOperation and says "no operation for METHOD PATH"; when one matches but the
// request violates it, the Exchange is returned with the error, so the response can still
// be checked.
func (s *Spec) CheckRequest(req *http.Request) (*Exchange, error) {
	escaped, ok := s.strip(req.URL.EscapedPath())
	if !ok {
		return nil, fmt.Errorf("%w for %s %s: outside the API prefix %s", ErrNoOperation, req.Method, req.URL.Path, s.opts.PathPrefix)
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body of %s %s: %w", req.Method, req.URL.Path, err)
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	route, params, rreq, err := s.route(req, escaped, body)
	if err != nil {
		return nil, fmt.Errorf("%w for %s %s", ErrNoOperation, req.Method, req.URL.Path)
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    rreq,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	ex := &Exchange{spec: s, input: in}
	if err := openapi3filter.ValidateRequest(context.WithoutCancel(req.Context()), in); err != nil {
		return ex, fmt.Errorf("request %s %s (%s): %w", req.Method, req.URL.Path, ex.OperationID(), err)
	}
	return ex, nil
}

// route matches the escaped API path (prefix stripped) to an operation, escaping the slashes
// of a SlashParams parameter when the plain path matches nothing.
func (s *Spec) route(req *http.Request, escaped string, body []byte) (*routers.Route, map[string]string, *http.Request, error) {
	candidates := []string{escaped}
	if alt, ok := s.slashEscaped(escaped); ok {
		candidates = append(candidates, alt)
	}
	var lastErr error
	for _, p := range candidates {
		rreq, err := s.routingRequest(req, p, body)
		if err != nil {
			return nil, nil, nil, err
		}
		route, params, err := s.router.FindRoute(rreq)
		if err == nil {
			return route, params, rreq, nil
		}
		lastErr = err
	}
	return nil, nil, nil, lastErr
}

func (s *Spec) slashEscaped(escaped string) (string, bool) {
	segs := strings.Split(strings.Trim(escaped, "/"), "/")
	for _, t := range s.slashTmpls {
		if len(segs) <= len(t) {
			continue
		}
		match := true
		for i, ts := range t[:len(t)-1] {
			isParam := strings.HasPrefix(ts, "{") && strings.HasSuffix(ts, "}")
			if segs[i] == "" || (!isParam && segs[i] != ts) {
				match = false
				break
			}
		}
		if match {
			n := len(t) - 1
			return "/" + strings.Join(segs[:n], "/") + "/" + strings.Join(segs[n:], "%2F"), true
		}
	}
	return "", false
}

// routingRequest is req addressed to the description's server, with the API path p (escaped).
func (s *Spec) routingRequest(req *http.Request, p string, body []byte) (*http.Request, error) {
	u := *req.URL
	base := ""
	if s.server != nil {
		u.Scheme = s.server.Scheme
		u.Host = s.server.Host
		base = strings.TrimSuffix(s.server.EscapedPath(), "/")
	} else {
		if u.Scheme == "" {
			u.Scheme = "http"
		}
		if u.Host == "" {
			u.Host = req.Host
		}
	}
	full := base + p
	dec, err := url.PathUnescape(full)
	if err != nil {
		return nil, fmt.Errorf("unescape path %q: %w", full, err)
	}
	u.Path = dec
	u.RawPath = ""
	if u.EscapedPath() != full {
		u.RawPath = full
	}
	rreq := req.Clone(context.WithoutCancel(req.Context()))
	rreq.URL = &u
	rreq.Host = u.Host
	rreq.RequestURI = ""
	rreq.Body = io.NopCloser(bytes.NewReader(body))
	rreq.ContentLength = int64(len(body))
	if len(body) == 0 {
		rreq.Body = http.NoBody
	}
	return rreq, nil
}

// CheckResponse validates a response to the exchange's request: its status must be one the
// operation declares (or, for an error status, match Options.ErrorSchema), and its body must
// match the schema declared for that status. A 304 must have no body.
func (e *Exchange) CheckResponse(status int, header http.Header, body []byte) error {
	op := e.input.Route.Operation
	where := fmt.Sprintf("response %d to %s %s (%s)", status, e.input.Request.Method, e.input.Request.URL.Path, e.OperationID())
	if e.input.Request.Method == http.MethodHead {
		return nil
	}
	switch status {
	case http.StatusNotModified:
		if len(body) > 0 {
			return fmt.Errorf("%s: a 304 has no body, got %d bytes", where, len(body))
		}
		return nil
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if header.Get("Location") == "" {
			return fmt.Errorf("%s: redirect without a Location header", where)
		}
		return nil
	}
	declared := op.Responses != nil && (op.Responses.Status(status) != nil || op.Responses.Default() != nil)
	if !declared {
		if status < 400 {
			return fmt.Errorf("%s: status not declared by the operation", where)
		}
		if e.spec.errSchema == nil {
			return fmt.Errorf("%s: error status not declared by the operation", where)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return fmt.Errorf("%s: error body is not JSON: %w", where, err)
		}
		if err := e.spec.errSchema.VisitJSON(v); err != nil {
			return fmt.Errorf("%s: error body does not match %s: %w", where, e.spec.opts.ErrorSchema, err)
		}
		return nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: e.input,
		Status:                 status,
		Header:                 header,
		Options:                e.input.Options,
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

// Middleware checks every request under Options.PathPrefix and the response next gives it,
// calling report for each violation: "no operation for METHOD PATH" when the description has
// no such operation, the request's or the response's mismatch otherwise. The response is
// buffered, checked, then forwarded unchanged. Requests outside the prefix (a host's web
// and git endpoints) pass through unchecked.
func (s *Spec) Middleware(report func(format string, args ...any), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.Under(r) {
			next.ServeHTTP(w, r)
			return
		}
		ex, err := s.CheckRequest(r)
		if err != nil {
			report("apicheck: %v", err)
		}
		rec := &recorder{header: make(http.Header)}
		next.ServeHTTP(rec, r)
		if r.Context().Err() != nil {
			return // the client went away: there is no response to check or forward
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		if ex != nil {
			if err := ex.CheckResponse(rec.status, rec.header, rec.body.Bytes()); err != nil {
				report("apicheck: %v", err)
			}
		}
		dst := w.Header()
		for k, v := range rec.header {
			dst[k] = slices.Clone(v)
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	})
}

// recorder buffers a response so it can be checked before the client sees it.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
