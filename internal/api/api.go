// Package api owns Forgeway's REST API (/api/v1): authentication with API tokens, the
// handlers over the integration, catalog, delivery, event and job services, RFC 9457
// problem+json errors, Idempotency-Key replays, and the OpenAPI document generated from the
// same route table the server registers.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/catalog"
	"github.com/forgeway/forgeway/internal/events"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/integrations"
	"github.com/forgeway/forgeway/internal/outbound"
	"github.com/forgeway/forgeway/internal/problem"
	"github.com/forgeway/forgeway/internal/store"
)

// Prefix is the API's base path.
const Prefix = "/api/v1"

// maxBody bounds request bodies of the API (integrations carry PEM keys and CA bundles).
const maxBody = 1 << 20

// Server is the API.
type Server struct {
	ints    *integrations.Service
	st      store.Store
	cat     *catalog.Service
	broker  *events.Broker
	log     *slog.Logger
	notify  func()
	now     func() time.Time
	routes  []Route
	version string
	subs    *outbound.Service
}

// Options configures the API.
type Options struct {
	Integrations *integrations.Service
	Catalog      *catalog.Service
	Broker       *events.Broker
	Logger       *slog.Logger
	Notify       func()
	Now          func() time.Time
	Version      string
	// Subscriptions manages outbound subscriptions; nil: one on the integrations' store and
	// keyring (whose dispatcher is not run).
	Subscriptions *outbound.Service
}

// New returns the API server.
func New(o Options) *Server {
	s := &Server{ints: o.Integrations, st: o.Integrations.Store(), cat: o.Catalog, broker: o.Broker, log: o.Logger, notify: o.Notify, now: o.Now, version: o.Version, subs: o.Subscriptions}
	if s.subs == nil {
		s.subs = outbound.New(outbound.Options{Store: s.st, Keys: o.Integrations.Keys(), Logger: o.Logger})
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.notify == nil {
		s.notify = func() {}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.broker == nil {
		s.broker = events.NewBroker()
	}
	s.routes = s.routeTable()
	return s
}

// Access levels of routes.
type access int

const (
	public access = iota // no token (browser callbacks, the OpenAPI document)
	member               // any valid token; project tokens see their project's integrations
	admin                // admin tokens only
)

// Route is one operation of the API, registered on the mux and described in OpenAPI.
type Route struct {
	Method   string
	Path     string // full path pattern, e.g. /api/v1/integrations/{id}
	Summary  string
	Tag      string
	Access   access
	Request  string // schema name of the JSON body, "" for none
	Response string // schema name of the success body
	Status   int    // success status
	Query    []string
	handler  http.HandlerFunc
}

// Routes returns the route table.
func (s *Server) Routes() []Route { return s.routes }

// Register mounts every route on the mux.
func (s *Server) Register(mux *http.ServeMux) {
	for _, rt := range s.routes {
		if rt.handler == nil {
			continue // served by another package; listed for the OpenAPI document
		}
		h := rt.handler
		// Idempotency runs inside authentication: saved answers are kept per token, and a
		// request without a valid token never reaches them.
		if rt.Method != http.MethodGet {
			h = s.idempotent(h)
		}
		if rt.Access != public {
			h = s.authenticated(rt.Access, h)
		}
		mux.Handle(rt.Method+" "+rt.Path, s.recoverer(h))
	}
}

type ctxKey int

const tokenKey ctxKey = 0

func tokenFrom(ctx context.Context) store.APIToken {
	t, _ := ctx.Value(tokenKey).(store.APIToken)
	return t
}

// HashToken is how API tokens are stored: SHA-256 (tokens are random; no salt needed).
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func (s *Server) authenticated(level access, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || raw == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="forgeway"`)
			problem.Send(w, http.StatusUnauthorized, "unauthenticated", "An API token is required", "send Authorization: Bearer <token>", "Create a token with `forgeway tokens create` or use the admin token printed at first start.")
			return
		}
		hash := HashToken(strings.TrimSpace(raw))
		tok, err := s.st.FindAPIToken(r.Context(), hash)
		if err != nil || subtle.ConstantTimeCompare(tok.Hash, hash) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="forgeway", error="invalid_token"`)
			problem.Send(w, http.StatusUnauthorized, "invalid-token", "The API token is not valid", "no token matches", "The token may have been deleted; create a new one.")
			return
		}
		if level == admin && !tok.Admin {
			problem.Send(w, http.StatusForbidden, "forbidden", "This needs an admin token", "the token is scoped to project "+tok.ProjectID, "Use an admin token.")
			return
		}
		if now := s.now(); now.Sub(tok.LastUsed) > time.Minute {
			_ = s.st.TouchAPIToken(r.Context(), tok.ID, now.UTC())
		}
		next(w, r.WithContext(context.WithValue(r.Context(), tokenKey, tok)))
	}
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in API handler", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				problem.Send(w, http.StatusInternalServerError, "internal", "Internal error", "the server hit a bug; it is logged", "")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// visible reports whether the caller's token may see an integration.
func visible(ctx context.Context, rec store.Integration) bool {
	t := tokenFrom(ctx)
	return t.Admin || (t.ProjectID != "" && t.ProjectID == rec.ProjectID)
}

// decode reads a JSON body strictly: unknown fields and trailing data are errors.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		problem.Send(w, http.StatusUnsupportedMediaType, "unsupported-media-type", "The body must be JSON", "Content-Type is "+ct, "Send Content-Type: application/json.")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			problem.Send(w, http.StatusRequestEntityTooLarge, "body-too-large", "The request body is too large", fmt.Sprintf("the limit is %d bytes", maxBody), "")
			return false
		}
		if errors.Is(err, io.EOF) {
			problem.Send(w, http.StatusBadRequest, "invalid-json", "The request body is empty", "a JSON object is required", "")
			return false
		}
		problem.Send(w, http.StatusBadRequest, "invalid-json", "The request body is not valid JSON for this operation", err.Error(), "")
		return false
	}
	if dec.More() {
		problem.Send(w, http.StatusBadRequest, "invalid-json", "The request body has trailing data", "only one JSON object is allowed", "")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// fail maps a service error to a problem. Unknown errors are 500s with a generic detail and
// the real error in the log only.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	var pd *problem.Details
	var rl *forge.RateLimitError
	var he *forge.HostError
	switch {
	case errors.As(err, &pd):
		problem.Write(w, pd)
	case errors.Is(err, store.ErrBadCursor):
		problem.Send(w, http.StatusBadRequest, "invalid-cursor", what+": the cursor is not valid", err.Error(), "Start again without ?cursor, or pass next_cursor exactly as returned.")
	case errors.Is(err, store.ErrNotFound):
		problem.Send(w, http.StatusNotFound, "not-found", what+": not found", err.Error(), "")
	case errors.Is(err, store.ErrConflict):
		problem.Send(w, http.StatusConflict, "conflict", what+": already exists", err.Error(), "")
	case errors.Is(err, integrations.ErrInvalid):
		problem.Send(w, http.StatusUnprocessableEntity, "invalid-integration", what+": the integration is not valid", err.Error(), "Check the fields with `GET /api/v1/kinds`.")
	case errors.Is(err, catalog.ErrFiltered):
		problem.Send(w, http.StatusConflict, "filtered", what+": the repository is excluded by the integration's filter", err.Error(), "Change the integration's filter, then refresh.")
	case errors.Is(err, catalog.ErrNotAttached):
		problem.Send(w, http.StatusConflict, "not-attached", what+": the repository is not attached", err.Error(), "Attach it first: POST /api/v1/repositories/{id}/attach.")
	case errors.Is(err, catalog.ErrSuspended):
		problem.Send(w, http.StatusConflict, "suspended", what+": the integration is suspended", err.Error(), "Resume it first.")
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", fmt.Sprint(max(1, int(time.Until(rl.Reset).Seconds()))))
		problem.Send(w, http.StatusServiceUnavailable, "host-rate-limited", what+": the host's rate limit is spent", err.Error(), "Retry after the reset.")
	case errors.Is(err, forge.ErrUnauthorized):
		problem.Send(w, http.StatusBadGateway, "host-unauthorized", what+": the host refused the credential", err.Error(), "Renew the token or the App's key; run the integration's test for a diagnosis.")
	case errors.Is(err, forge.ErrForbidden):
		problem.Send(w, http.StatusBadGateway, "host-forbidden", what+": the credential lacks a permission on the host", err.Error(), "Grant the permissions listed in docs/hosts.")
	case errors.Is(err, forge.ErrUnsupported):
		problem.Send(w, http.StatusNotImplemented, "unsupported", what+": not supported for this host or credential", err.Error(), "")
	case errors.As(err, &he) && (he.Status == http.StatusUnprocessableEntity || he.Status == http.StatusConflict):
		// The host refused the request itself (a pull request with no commits, a branch that
		// exists): the caller's to fix, with the host's reason.
		problem.Send(w, he.Status, "host-refused", what+": the host refused the request", he.Error(), "Change the request as the host's message says.")
	case errors.As(err, &he):
		problem.Send(w, http.StatusBadGateway, "host-error", what+": the host answered with an error", he.Error(), "Run the integration's test for a diagnosis.")
	case errors.Is(err, context.DeadlineExceeded):
		problem.Send(w, http.StatusGatewayTimeout, "timeout", what+": timed out", err.Error(), "")
	default:
		s.log.Error("API error", "op", what, "path", r.URL.Path, "err", err)
		problem.Send(w, http.StatusInternalServerError, "internal", what+": internal error", "the error is in the server log", "")
	}
}

func jobResource(j store.Job) Job {
	out := Job{ID: j.ID, Kind: j.Kind, State: j.State, Attempt: j.Attempt, MaxAttempts: j.MaxAttempts, RunAt: j.RunAt, LastError: j.LastError, Progress: nullable(j.Progress), Args: nullable(j.Args), CreatedAt: j.CreatedAt}
	if !j.FinishedAt.IsZero() {
		t := j.FinishedAt
		out.FinishedAt = &t
	}
	return out
}

func nullable(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// accepted answers 202 with the job to poll.
func accepted(w http.ResponseWriter, j store.Job) {
	w.Header().Set("Location", fmt.Sprintf("%s/jobs/%d", Prefix, j.ID))
	writeJSON(w, http.StatusAccepted, jobResource(j))
}
