// Package ingest owns the inbound webhook endpoints. For each request it reads the body
// (bounded by the host's limit), finds the integration, verifies the delivery through the
// host's driver, and writes the delivery with its processing job in one transaction before
// it answers 202: a 2xx to a host means the delivery is committed. It never waits for
// processing.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/forgeway/forgeway/internal/events"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/integrations"
	"github.com/forgeway/forgeway/internal/problem"
	"github.com/forgeway/forgeway/internal/store"
)

// Outcome labels for metrics.
const (
	OutcomeAccepted  = "accepted"
	OutcomeDuplicate = "duplicate"
	OutcomeRejected  = "rejected"  // failed verification
	OutcomeMalformed = "malformed" // not a delivery of this host
	OutcomeUnknown   = "unknown"   // no such integration
	OutcomeTooLarge  = "too_large"
	OutcomeError     = "error"
	OutcomeAborted   = "aborted" // the sender disconnected before the commit
)

// Handler serves POST /webhooks/{kind} and POST /webhooks/{kind}/{integration}.
type Handler struct {
	ints    *integrations.Service
	st      store.Store
	log     *slog.Logger
	notify  func()
	observe func(kind, outcome string, d time.Duration)
	now     func() time.Time
	// bodies recycles request body buffers (see readBody): the bodies were the largest part
	// of what the server allocated per delivery.
	bodies sync.Pool // of *[]byte
}

// Options configures a Handler.
type Options struct {
	Integrations *integrations.Service
	Logger       *slog.Logger
	Notify       func()                                      // wakes the job runner; optional
	Observe      func(kind, outcome string, d time.Duration) // metrics; optional
	Now          func() time.Time
}

// New returns the webhook handler.
func New(o Options) *Handler {
	h := &Handler{ints: o.Integrations, st: o.Integrations.Store(), log: o.Logger, notify: o.Notify, observe: o.Observe, now: o.Now}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.notify == nil {
		h.notify = func() {}
	}
	if h.observe == nil {
		h.observe = func(string, string, time.Duration) {}
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// Register mounts the endpoints on a mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /webhooks/{kind}", h.serve)
	mux.HandleFunc("POST /webhooks/{kind}/{integration}", h.serve)
}

// Accepted is the body of a 202.
type Accepted struct {
	DeliveryID string `json:"delivery_id"`
	Duplicate  bool   `json:"duplicate"`
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	h.handle(w, request{
		ctx: r.Context(), kind: r.PathValue("kind"), integration: r.PathValue("integration"),
		header: r.Header, length: r.ContentLength, remote: r.RemoteAddr,
		body: func(limit int64) io.Reader { return http.MaxBytesReader(w, r.Body, limit) },
	})
}

// request is what the handler reads of a delivery's HTTP request, whichever server took it
// (net/http on the main listener, the webhook listener's; see listener.go).
type request struct {
	ctx               context.Context
	kind, integration string // from the path; integration is empty on /webhooks/{kind}
	header            http.Header
	length            int64 // the announced Content-Length; -1 when unknown
	// body opens the body, failing with an *http.MaxBytesError past limit bytes.
	body func(limit int64) io.Reader
	// remote is the client's address, for the log line of a failed verification: net/http
	// gives it as a string, fasthttp as a net.Addr, formatted (fmt.Sprint) only when logged.
	remote any
}

func (h *Handler) handle(w http.ResponseWriter, r request) {
	start := h.now()
	kind := r.kind
	outcome := OutcomeError
	defer func() { h.observe(kind, outcome, h.now().Sub(start)) }()

	drv, err := h.ints.Driver(kind)
	if err != nil {
		outcome = OutcomeUnknown
		problem.Send(w, http.StatusNotFound, "unknown-host-kind", "Unknown host kind", err.Error(), "Use /webhooks/{kind}/{integration_id} with one of: "+strings.Join(h.ints.KindNames(), ", "))
		return
	}
	wh := drv.Webhooks()
	limit := wh.MaxBodyBytes()
	if r.length > limit {
		outcome = OutcomeTooLarge
		tooLarge(w, limit)
		return
	}
	buf, _ := h.bodies.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	body, err := readBody(r.body(limit), r.length, (*buf)[:0])
	// The buffer goes back to the pool when the request is over, unless a store call may
	// still hold the body (it failed or was abandoned while queued for the commit): drivers
	// only read it, and every string taken from it is a copy.
	recycle := true
	defer func() {
		if recycle && cap(body) <= maxPooledBody {
			*buf = body[:0]
			h.bodies.Put(buf)
		}
	}()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			outcome = OutcomeTooLarge
			tooLarge(w, limit)
			return
		}
		problem.Send(w, http.StatusBadRequest, "unreadable-body", "The request body could not be read", err.Error(), "")
		return
	}
	// Drivers only read the headers: no copy.
	d := forge.Delivery{Header: r.header, Body: body, ReceivedAt: start.UTC()}
	info, err := wh.Identify(d)
	if err != nil {
		outcome = OutcomeMalformed
		problem.Send(w, http.StatusBadRequest, "malformed-delivery", "Not a "+kind+" delivery", err.Error(), "Point only "+kind+" webhooks at this URL.")
		return
	}
	rec, perr := h.authenticate(r.ctx, kind, r.integration, wh, d, info)
	if perr != nil {
		outcome = OutcomeUnknown
		if perr.Status == http.StatusUnauthorized {
			outcome = OutcomeRejected
			h.log.Warn("webhook verification failed", "kind", kind, "integration", r.integration, "delivery", info.ID, "event", info.Event, "remote", fmt.Sprint(r.remote), "reason", perr.Detail)
		}
		problem.Write(w, perr)
		return
	}
	sd := &store.Delivery{
		IntegrationID: rec.ID, Kind: kind, HostID: info.ID, Event: info.Event, Action: info.Action,
		Headers: keepHeaders(r.header), Body: body, Status: store.DeliveryReceived, Test: info.Test,
		ReceivedAt: d.ReceivedAt,
	}
	inserted, err := h.st.InsertDelivery(r.ctx, sd, store.NewJob{Kind: events.JobProcess, MaxAttempts: 12})
	recycle = err == nil
	if err != nil && r.ctx.Err() != nil {
		// The host hung up before the commit: nobody reads the answer, and whether the
		// delivery was committed or not, the host's retry is deduplicated.
		outcome = OutcomeAborted
		h.log.Info("the sender disconnected before the delivery was committed", "kind", kind, "integration", rec.ID, "delivery", info.ID)
		return
	}
	if err != nil {
		h.log.Error("could not store delivery", "kind", kind, "integration", rec.ID, "delivery", info.ID, "err", err)
		// 503 makes hosts that retry (all but GitHub) try again; nothing was committed.
		w.Header().Set("Retry-After", "5")
		problem.Send(w, http.StatusServiceUnavailable, "store-unavailable", "The delivery could not be stored", "the database did not accept the write", "Check Forgeway's database; the host may retry.")
		return
	}
	outcome = OutcomeAccepted
	if !inserted {
		outcome = OutcomeDuplicate
	} else {
		h.notify()
	}
	writeAccepted(w, Accepted{DeliveryID: sd.ID, Duplicate: !inserted})
}

// authenticate finds the integration a delivery is for and verifies it against that
// integration's secrets. Host-level deliveries (no integration in the path) are matched
// through the route keys the driver read from them; the integration whose secret verifies
// the delivery is the one.
func (h *Handler) authenticate(ctx context.Context, kind, id string, wh forge.Webhooks, d forge.Delivery, info forge.DeliveryInfo) (store.Integration, *problem.Details) {
	type candidate struct {
		rec     store.Integration
		fi      forge.Integration
		secrets []string
		err     error
	}
	var one [1]candidate // one integration is the common case: no allocation for it
	candidates := one[:0]
	if id != "" {
		rec, fi, secrets, err := h.ints.ForDelivery(ctx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && rec.Kind != kind) {
			return rec, problem.New(http.StatusNotFound, "unknown-integration", "Unknown integration", fmt.Sprintf("no %s integration %q", kind, id), "Check the webhook URL on the host: it must be the one Forgeway shows for the integration.")
		}
		if err != nil && rec.ID == "" {
			return rec, problem.New(http.StatusServiceUnavailable, "store-unavailable", "The integration could not be looked up", "the database did not answer", "")
		}
		candidates = append(candidates, candidate{rec, fi, secrets, err})
	} else {
		seen := map[string]bool{}
		for _, key := range info.RouteKeys {
			recs, err := h.ints.RouteDelivery(ctx, kind, key)
			if err != nil {
				return store.Integration{}, problem.New(http.StatusServiceUnavailable, "store-unavailable", "The integration could not be looked up", "the database did not answer", "")
			}
			for _, rec := range recs {
				if !seen[rec.ID] {
					seen[rec.ID] = true
					_, fi, secrets, err := h.ints.ForDelivery(ctx, rec.ID)
					candidates = append(candidates, candidate{rec, fi, secrets, err})
				}
			}
		}
		if len(candidates) == 0 {
			return store.Integration{}, problem.New(http.StatusNotFound, "unknown-integration", "No integration for this delivery", fmt.Sprintf("no %s integration matches %s", kind, strings.Join(info.RouteKeys, ", ")), "Connect the App in Forgeway first, or point repository hooks at /webhooks/"+kind+"/{integration_id}.")
		}
	}
	var lastErr error
	for _, c := range candidates {
		if c.err != nil {
			lastErr = c.err
			continue
		}
		if err := wh.Verify(d, forge.VerifyKeys{Secrets: c.secrets, Integration: c.fi}); err != nil {
			lastErr = err
			continue
		}
		return c.rec, nil
	}
	detail := "the delivery's signature does not match the webhook secret"
	if lastErr != nil && errors.Is(lastErr, forge.ErrSignature) {
		detail = lastErr.Error()
	}
	return store.Integration{}, problem.New(http.StatusUnauthorized, "invalid-signature", "Delivery verification failed", detail, "The webhook secret on the host must match the integration's; rotate it in Forgeway and update the host if in doubt.")
}

// maxPrealloc bounds what readBody allocates on a client's word: a Content-Length is only
// a claim, and many connections claiming 25 MiB each must not reserve it before sending it.
const maxPrealloc = 256 << 10

// maxPooledBody is the largest buffer kept for reuse: webhook payloads are mostly a few KB,
// and a rare 25 MiB one must not stay pinned in the pool.
const maxPooledBody = 256 << 10

// readBody reads a request body into buf (grown to the announced length when needed; io.ReadAll
// would grow and copy it several times on its way to a 7 KB push).
func readBody(r io.Reader, length int64, buf []byte) ([]byte, error) {
	if want := min(length, maxPrealloc) + 1; length > 0 && int64(cap(buf)) < want { // +1: EOF is seen without growing
		buf = make([]byte, 0, want)
	}
	if cap(buf) == 0 {
		buf = make([]byte, 0, 512)
	}
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // more than announced: let append grow it
		}
	}
}

func tooLarge(w http.ResponseWriter, limit int64) {
	problem.Send(w, http.StatusRequestEntityTooLarge, "delivery-too-large", "The delivery is too large", fmt.Sprintf("the body exceeds %d bytes", limit), "Hosts never send larger deliveries; check what is posting to this URL.")
}

// keepHeaders keeps the headers worth storing with a delivery and drops those that carry
// credentials (a GitLab token, a basic-auth password): a stored delivery never holds a secret.
// The values are shared with h, which the store only reads (it encodes them before
// InsertDelivery returns); so is h itself when it has nothing to drop, as most hosts'
// deliveries have not, which saves a map per delivery.
func keepHeaders(h http.Header) map[string][]string {
	for k := range h {
		if credentialHeader(k) {
			return withoutCredentials(h)
		}
	}
	return h
}

// withoutCredentials copies h without the headers that carry credentials.
func withoutCredentials(h http.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, v := range h {
		if !credentialHeader(k) {
			out[k] = v
		}
	}
	return out
}

// credentialHeader reports whether a header name is one that carries a credential.
func credentialHeader(k string) bool {
	return strings.EqualFold(k, "authorization") || strings.EqualFold(k, "proxy-authorization") ||
		strings.EqualFold(k, "cookie") || containsFold(k, "token") || containsFold(k, "secret") ||
		containsFold(k, "password")
}

// containsFold reports whether s contains the lower-case ASCII word sub in any case, without
// the copy strings.ToLower makes of every header name of every delivery. A window of s as long
// as sub (in bytes) folds to sub only if it is ASCII, so its first byte must be sub's first
// letter in either case: that test skips most windows before EqualFold.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i]|0x20 == sub[0] && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
