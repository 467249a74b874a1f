package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/forgeway/forgeway/internal/problem"
)

// Listener serves the webhook endpoints, and nothing else, on a listener of their own (the
// webhook_listen setting): the port to put behind the public ingress while the API stays
// private. It runs on fasthttp rather than net/http because a delivery is a small,
// independent request that a host sends at the rate its users push: fasthttp parses a
// request without allocating and keeps no goroutine reading behind the handler, which
// `fwbench ab` measured at 7-18 µs less server CPU per delivery (94 against 112 µs, 100
// against 107 in a second run), up to a sixth of what accepting one costs. The deliveries
// get the same handler, checks and answers as on the main listener; what this one lacks is
// what a webhook does not use (HTTP/2, the API, noticing a host that hangs up before its
// delivery is committed).
type Listener struct {
	h   *Handler
	srv *fasthttp.Server
	// ctx is what deliveries taken here are committed under: fasthttp gives a handler no
	// context that ends with its request, and a commit once started is let finish.
	ctx   context.Context
	names headerNames
}

// headerNames copies requests' headers into the http.Header the handler reads, keeping one
// copy of each header name seen: a host sends the same dozen names with every delivery, and
// a string of each name and value per request was about half the listener's allocations. The
// names are a copy-on-write map, read without a lock; hostile clients cannot grow it past
// maxHeaderNames.
type headerNames struct {
	mu sync.Mutex // held to add a name
	m  atomic.Pointer[map[string]string]
}

// maxHeaderNames bounds the names kept: more than hosts send, together.
const maxHeaderNames = 256

// name returns b as a string, the kept copy when there is one.
func (n *headerNames) name(b []byte) string {
	m := n.m.Load()
	if m != nil {
		if s, ok := (*m)[string(b)]; ok {
			return s
		}
	}
	s := string(b)
	if m != nil && len(*m) >= maxHeaderNames {
		return s // full: a client making up names does not take the lock
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.m.Load()
	if old == nil {
		old = new(map[string]string)
	}
	if _, ok := (*old)[s]; ok || len(*old) >= maxHeaderNames {
		return s
	}
	next := make(map[string]string, len(*old)+1)
	for k, v := range *old {
		next[k] = v
	}
	next[s] = s
	n.m.Store(&next)
	return s
}

// header copies rh, but for Host (net/http moves it out of the header too), into an
// http.Header whose values share one string.
func (n *headerNames) header(rh *fasthttp.RequestHeader) http.Header {
	type field struct {
		name string
		end  int // of its value in values
	}
	var (
		stackFields [32]field
		stackValues [1024]byte
	)
	fields, values := stackFields[:0], stackValues[:0]
	for k, v := range rh.All() {
		if string(k) == "Host" {
			continue
		}
		values = append(values, v...)
		fields = append(fields, field{n.name(k), len(values)})
	}
	all := string(values)
	vals := make([]string, len(fields))
	h := make(http.Header, len(fields))
	start := 0
	for i, f := range fields {
		vals[i] = all[start:f.end]
		start = f.end
		if prev, ok := h[f.name]; ok {
			h[f.name] = append(prev, vals[i])
		} else {
			h[f.name] = vals[i : i+1 : i+1] // a repeat appends to a copy, not over vals[i+1]
		}
	}
	return h
}

// ListenerOptions configures a Listener.
type ListenerOptions struct {
	// MaxBodyBytes is the largest body read. 0: the largest any host kind allows (each
	// kind's own limit is checked after).
	MaxBodyBytes int64
	// ReadTimeout bounds reading a request, IdleTimeout a kept-alive connection's wait for
	// the next one.
	ReadTimeout, IdleTimeout time.Duration
}

// maxHeaderBytes bounds a request's header block. Hosts send a few hundred bytes to 2 KB.
const maxHeaderBytes = 16 << 10

// NewListener returns the webhook listener's server for h.
func (h *Handler) NewListener(ctx context.Context, o ListenerOptions) *Listener {
	l := &Listener{h: h, ctx: context.WithoutCancel(ctx)}
	if o.MaxBodyBytes == 0 {
		for _, kind := range h.ints.KindNames() {
			if drv, err := h.ints.Driver(kind); err == nil {
				o.MaxBodyBytes = max(o.MaxBodyBytes, drv.Webhooks().MaxBodyBytes())
			}
		}
	}
	l.srv = &fasthttp.Server{
		Name:                         "forgeway",
		Handler:                      l.route,
		ErrorHandler:                 l.refuse,
		Logger:                       fasthttpLogger{h.log},
		MaxRequestBodySize:           int(o.MaxBodyBytes),
		ReadBufferSize:               maxHeaderBytes,
		ReadTimeout:                  o.ReadTimeout,
		IdleTimeout:                  o.IdleTimeout,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		// fasthttp's errors otherwise quote the header block they could not parse, and a
		// host's webhook token (GitLab's X-Gitlab-Token) is in it. See also cutQuoted.
		SecureErrorLogMessage: true,
		// Header names are normalized (fasthttp's default) as net/http canonicalizes them,
		// so drivers and stored deliveries see the same names from either listener.
	}
	return l
}

// Serve serves on ln until Shutdown.
func (l *Listener) Serve(ln net.Listener) error {
	if err := l.srv.Serve(lingerListener{ln}); err != nil {
		return fmt.Errorf("serve webhooks on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting and waits, until ctx ends, for the requests being served.
func (l *Listener) Shutdown(ctx context.Context) error {
	if err := l.srv.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("stop the webhook listener: %w", err)
	}
	return nil
}

const webhooksPrefix = "/webhooks/"

// route sends POST /webhooks/{kind} and POST /webhooks/{kind}/{integration} to the
// handler, answers GET /healthz for load balancers, and refuses the rest.
func (l *Listener) route(c *fasthttp.RequestCtx) {
	w := &fastWriter{c: c}
	path := c.Path() // decoded, with dot segments resolved
	rest, ok := bytes.CutPrefix(path, []byte(webhooksPrefix))
	if !ok {
		if string(path) == "/healthz" && (c.IsGet() || c.IsHead()) {
			c.SetContentType("text/plain")
			c.SetBodyString("ok\n")
			return
		}
		problem.Send(w, http.StatusNotFound, "not-found", "No such endpoint", string(c.Method())+" "+string(path), "This listener serves only webhooks: POST /webhooks/{kind}/{integration_id}. The API is on the main listener.")
		return
	}
	kind, integration, _ := bytes.Cut(rest, []byte("/"))
	if len(kind) == 0 || bytes.IndexByte(integration, '/') >= 0 || (len(integration) == 0 && len(rest) > len(kind)) {
		problem.Send(w, http.StatusNotFound, "not-found", "No such endpoint", string(c.Method())+" "+string(path), "Webhooks go to /webhooks/{kind}/{integration_id}.")
		return
	}
	if !c.IsPost() {
		w.Header().Set("Allow", http.MethodPost)
		problem.Send(w, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", string(c.Method())+" "+string(path), "Hosts deliver webhooks with POST.")
		return
	}
	header := l.names.header(&c.Request.Header)
	body := c.PostBody()
	length := int64(c.Request.Header.ContentLength())
	if length < 0 { // chunked: read whole by now
		length = int64(len(body))
	}
	l.h.handle(w, request{
		ctx: l.ctx, kind: string(kind), integration: string(integration),
		header: header, length: length, remote: c.RemoteAddr(), // formatted only if logged
		body: func(limit int64) io.Reader { return &limitedBytes{b: body, limit: limit} },
	})
	if !w.wrote {
		// Every path of the handler answers; were one not to, fasthttp's default would be
		// a 200, which a host takes for "committed".
		problem.Send(w, http.StatusServiceUnavailable, "not-stored", "The delivery was not stored", "no answer was made for it", "The host may retry.")
	}
}

// refuse answers a request fasthttp could not read: too large a body, too large a header
// block, or not HTTP; a connection whose request did not come within the read timeout is
// closed without an answer.
func (l *Listener) refuse(c *fasthttp.RequestCtx, err error) {
	w := &fastWriter{c: c}
	var (
		small   *fasthttp.ErrSmallBuffer
		timeout interface{ Timeout() bool }
	)
	switch {
	case errors.As(err, &timeout) && timeout.Timeout():
		// The client sent nothing, or not all of it, within the read timeout. net/http
		// closes such a connection without a word, and so must this server: a client that
		// keeps a connection it dialed and never used (Go's transport does) takes it for an
		// idle one, and may send a delivery on it just as an answer arrives, which it
		// would then read as the answer to that delivery. fasthttp writes whatever this
		// handler leaves, so the connection is closed first, and its write fails.
		closeNow(c.Conn())
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		tooLarge(w, int64(l.srv.MaxRequestBodySize))
	case errors.As(err, &small):
		problem.Send(w, http.StatusRequestHeaderFieldsTooLarge, "headers-too-large", "The request's headers are too large", fmt.Sprintf("the header block exceeds %d bytes", maxHeaderBytes), "Hosts never send such headers; check what is posting to this URL.")
	default:
		problem.Send(w, http.StatusBadRequest, "bad-request", "The request could not be read", cutQuoted(err.Error()), "")
	}
}

// closeNow closes a connection at once, without the lingering close of lingerConn: there is
// nothing of the client's to wait for.
func closeNow(c net.Conn) {
	if lc, ok := c.(lingerConn); ok {
		_ = lc.TCPConn.Close()
		return
	}
	_ = c.Close()
}

// cutQuoted blanks the quoted strings ("…", with Go's escapes) of a fasthttp message: its
// parser quotes the request line or header line it refused, which may be the one carrying
// a webhook token, even with SecureErrorLogMessage. The message keeps its shape.
func cutQuoted(msg string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(msg, '"')
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		b.WriteString(msg[:i])
		b.WriteString(`"…"`)
		j := i + 1
		for j < len(msg) && msg[j] != '"' {
			if msg[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(msg) {
			return b.String() // unterminated: the rest is quoted too
		}
		msg = msg[j+1:]
	}
}

// lingerListener gives its connections a lingering close, as net/http does: fasthttp
// closes a connection right after refusing a request whose body it did not read (one too
// large), and a close with unread data sends a reset, which makes the client drop the answer
// it has not yet read. The write side is shut first; what the client still sends is read
// and discarded until it closes too, or for lingerTimeout.
type lingerListener struct{ net.Listener }

// lingerTimeout bounds the wait for a client to stop sending after its connection was
// closed: enough for the rest of a refused 25 MiB body over a slow link to start failing.
const lingerTimeout = 2 * time.Second

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		return lingerConn{tc}, nil
	}
	return c, err
}

type lingerConn struct{ *net.TCPConn }

func (c lingerConn) Close() error {
	if err := c.CloseWrite(); err != nil {
		return c.TCPConn.Close()
	}
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.Copy(io.Discard, c.TCPConn)
		_ = c.TCPConn.Close()
	}()
	return nil
}

// limitedBytes reads b, failing past limit bytes as http.MaxBytesReader does, so that the
// handler sees one kind of error whichever listener read the body.
type limitedBytes struct {
	b     []byte
	limit int64
}

func (r *limitedBytes) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if int64(len(r.b)) > r.limit {
		return 0, &http.MaxBytesError{Limit: r.limit}
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	r.limit -= int64(n)
	return n, nil
}

// fastWriter is an http.ResponseWriter over a fasthttp request, for the handler's answers.
type fastWriter struct {
	c      *fasthttp.RequestCtx
	header http.Header
	wrote  bool
}

func (f *fastWriter) Header() http.Header {
	if f.header == nil {
		f.header = http.Header{}
	}
	return f.header
}

func (f *fastWriter) WriteHeader(status int) {
	if f.wrote {
		return
	}
	f.wrote = true
	for k, vs := range f.header {
		for _, v := range vs {
			f.c.Response.Header.Add(k, v)
		}
	}
	f.c.SetStatusCode(status)
}

func (f *fastWriter) Write(b []byte) (int, error) {
	f.WriteHeader(http.StatusOK)
	return f.c.Write(b)
}

// writeJSON answers status with a JSON body without the header map (writeAccepted's path).
func (f *fastWriter) writeJSON(status int, body []byte) {
	f.wrote = true
	f.c.SetStatusCode(status)
	f.c.SetContentType("application/json")
	f.c.SetBody(body)
}

// fasthttpLogger sends fasthttp's own messages (a connection it could not serve) to slog.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	for i, a := range args {
		if err, ok := a.(error); ok { // what it quotes of a request may hold a token
			args[i] = cutQuoted(err.Error())
		}
	}
	l.log.Warn("webhook listener: " + fmt.Sprintf(format, args...))
}
