// Package hostclient builds the HTTP client one integration uses to call its host's API,
// kind to the host's rate limit: the integration's TLS trust, a bound on concurrent requests,
// a budget read from rate-limit headers that stops spending before it runs out, waits for
// Retry-After and resets, retries of idempotent requests on 5xx, and conditional GETs (ETag,
// Last-Modified) with coalescing of identical concurrent GETs.
//
// It owns no host knowledge: drivers get the *http.Client from Client.HTTP through
// forge.Env and build their requests as usual.
package hostclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/forgeway/forgeway/internal/forge"
)

// Defaults for Options' zero values.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultMaxConcurrent = 8
	DefaultMaxRetryWait  = 60 * time.Second
	DefaultRetryBackoff  = 500 * time.Millisecond
	DefaultUserAgent     = "Forgeway"
)

// CacheHeader is set to "hit" on a response served from the cache after the host answered
// 304 Not Modified.
const CacheHeader = "X-Forgeway-Cache"

const (
	maxFailureRetries = 3 // 5xx and connection errors, idempotent requests only
	maxLimitRetries   = 3 // waits for Retry-After or a reset
	maxBackoff        = 30 * time.Second
	maxSharedBody     = 64 << 20 // coalesced GET bodies are held in memory
)

// Options configure a Client.
type Options struct {
	// CABundle is PEM; its certificates are trusted in addition to the system's.
	CABundle []byte
	// InsecureSkipTLS switches certificate verification off. Only when the user asked.
	InsecureSkipTLS bool
	// Timeout bounds one attempt, from sending to the end of the body; the waits between
	// attempts are bounded by the request's context. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxConcurrent bounds the requests on the wire at once. Zero means DefaultMaxConcurrent.
	MaxConcurrent int
	// Reserve is the part of the budget left alone: when the host says at most Reserve
	// requests remain before its reset, requests fail with *forge.RateLimitError without being
	// sent, until the reset passes.
	Reserve int
	// Cache enables conditional GETs; nil disables them.
	Cache Cache
	// CacheScope separates this client's cache entries from other integrations'.
	CacheScope string
	// MaxRetryWait is the longest wait for a Retry-After or a reset before retrying; a longer
	// one returns the host's response as is. Zero means DefaultMaxRetryWait.
	MaxRetryWait time.Duration
	// RetryBackoff is the first backoff after a 5xx or connection error; it doubles on each
	// retry, with jitter. Zero means DefaultRetryBackoff.
	RetryBackoff time.Duration
	// Observer, when set, is called once per request sent on the wire, for metrics.
	Observer func(ObservedRequest)
	// Now is the clock for budgets and resets; nil means time.Now.
	Now func() time.Time
	// UserAgent is set on requests that have none. Empty means DefaultUserAgent.
	UserAgent string
	// Logger receives cache failures; nil discards.
	Logger *slog.Logger
}

// ObservedRequest describes one request sent on the wire.
type ObservedRequest struct {
	Method string
	Host   string
	// Status is the host's status code; zero when no response arrived.
	Status int
	// Cached is true when the host answered 304 and the response came from the cache.
	Cached   bool
	Duration time.Duration
	// Budget is the budget after the response.
	Budget forge.Budget
}

// Client is one integration's HTTP client. It is safe for concurrent use.
type Client struct {
	o       Options
	base    http.RoundTripper
	http    *http.Client
	sem     chan struct{}
	flights singleflight.Group

	mu sync.Mutex
	// budgets are per credential: a host counts each token (and anonymous requests) apart, so
	// an anonymous probe's small budget must not hold back the token's calls. Keyed by a hash
	// of the Authorization header ("" for none), never the header itself.
	budgets map[string]forge.Budget
	last    string // the authenticated credential whose budget was seen last
}

// New returns a Client for o. It fails when the CA bundle holds no certificate.
func New(o Options) (*Client, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.MaxRetryWait <= 0 {
		o.MaxRetryWait = DefaultMaxRetryWait
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Reserve < 0 {
		return nil, fmt.Errorf("rate-limit reserve %d is negative", o.Reserve)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(o.CABundle) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(o.CABundle) {
			return nil, errors.New("the CA bundle holds no PEM certificate: paste the host's CA certificate(s), BEGIN CERTIFICATE blocks")
		}
		tlsConf.RootCAs = pool
	}
	if o.InsecureSkipTLS {
		tlsConf.InsecureSkipVerify = true // the user switched verification off for this host
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.MaxIdleConnsPerHost = o.MaxConcurrent
	c := &Client{o: o, base: tr, sem: make(chan struct{}, o.MaxConcurrent), budgets: map[string]forge.Budget{}}
	c.http = &http.Client{Transport: transport{c}}
	return c, nil
}

// HTTP returns the client to call the host with. It follows redirects like any
// *http.Client; its Timeout is zero because Options.Timeout bounds each attempt instead.
func (c *Client) HTTP() *http.Client { return c.http }

// Budget returns the host's main rate-limit budget of the credential used last (zero when
// none was seen), counting down the requests sent since.
func (c *Client) Budget() forge.Budget {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.budgets[c.last]
}

// credentialKey identifies the credential of a request without holding it.
func credentialKey(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if a == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(a))
	return hex.EncodeToString(sum[:8])
}

type transport struct{ c *Client }

// RoundTrip implements http.RoundTripper.
func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if coalescable(req) {
		return t.c.sharedGET(req)
	}
	return t.c.do(req, false)
}

// coalescable: GETs without a body, a range or the caller's own conditions, whose response
// any identical concurrent request can share.
func coalescable(r *http.Request) bool {
	if r.Method != http.MethodGet || (r.Body != nil && r.Body != http.NoBody) {
		return false
	}
	for _, h := range []string{"Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	return true
}

// flightKey identifies identical requests: method, URL and every header, hashed so that the
// credential is never held in the clear.
func flightKey(r *http.Request) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", r.Method, r.URL.String())
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		fmt.Fprintf(h, "%s: %s\n", k, strings.Join(r.Header[k], "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// shared is a complete response that several callers receive.
type shared struct {
	status     int
	statusText string
	proto      string
	protoMajor int
	protoMinor int
	header     http.Header
	body       []byte
	tls        *tls.ConnectionState
}

func (s *shared) response(req *http.Request) *http.Response {
	return &http.Response{
		Status:        s.statusText,
		StatusCode:    s.status,
		Proto:         s.proto,
		ProtoMajor:    s.protoMajor,
		ProtoMinor:    s.protoMinor,
		Header:        s.header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(s.body)),
		ContentLength: int64(len(s.body)),
		Request:       req,
		TLS:           s.tls,
	}
}

// leaderGone marks a shared request that failed because the caller who ran it went away;
// the other callers try again instead of inheriting the cancellation.
type leaderGone struct{ err error }

func (e *leaderGone) Error() string { return e.err.Error() }
func (e *leaderGone) Unwrap() error { return e.err }

func (c *Client) sharedGET(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	key := flightKey(req)
	for {
		ch := c.flights.DoChan(key, func() (any, error) { return c.fetchShared(req) })
		select {
		case r := <-ch:
			if r.Err != nil {
				var lg *leaderGone
				if errors.As(r.Err, &lg) && ctx.Err() == nil {
					continue
				}
				return nil, r.Err
			}
			return r.Val.(*shared).response(req), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// fetchShared sends one GET, conditionally when the cache holds the resource, and returns
// the complete response.
func (c *Client) fetchShared(req *http.Request) (*shared, error) {
	ctx := req.Context()
	fail := func(err error) (*shared, error) {
		if ctx.Err() != nil {
			return nil, &leaderGone{err}
		}
		return nil, err
	}
	var (
		entry Entry
		have  bool
		key   string
	)
	if c.o.Cache != nil {
		key = CacheKey(req)
		e, ok, err := c.o.Cache.Get(ctx, c.o.CacheScope, key)
		switch {
		case err != nil:
			c.o.Logger.WarnContext(ctx, "response cache read failed; sending an unconditional request", "host", req.URL.Host, "error", err)
		case ok && (e.ETag != "" || e.LastModified != ""):
			entry, have = e, true
		}
	}
	r := req
	if have {
		r = req.Clone(ctx)
		if entry.ETag != "" {
			r.Header.Set("If-None-Match", entry.ETag)
		}
		if entry.LastModified != "" {
			r.Header.Set("If-Modified-Since", entry.LastModified)
		}
	}
	resp, err := c.do(r, have)
	if err != nil {
		return fail(err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSharedBody+1))
	resp.Body.Close()
	if err == nil && len(body) > maxSharedBody {
		err = fmt.Errorf("response larger than %d bytes", maxSharedBody)
	}
	if err != nil {
		return fail(fmt.Errorf("read the response to GET %s%s: %w", req.URL.Host, req.URL.Path, err))
	}
	if have && resp.StatusCode == http.StatusNotModified {
		h := entry.Header.Clone()
		if h == nil {
			h = http.Header{}
		}
		for _, name := range rateLimitHeaders {
			if v := resp.Header.Values(name); len(v) > 0 {
				h[http.CanonicalHeaderKey(name)] = slices.Clone(v)
			}
		}
		h.Set(CacheHeader, "hit")
		h.Set("Content-Length", strconv.Itoa(len(entry.Body)))
		return &shared{
			status: http.StatusOK, statusText: "200 OK",
			proto: resp.Proto, protoMajor: resp.ProtoMajor, protoMinor: resp.ProtoMinor,
			header: h, body: entry.Body, tls: resp.TLS,
		}, nil
	}
	if c.o.Cache != nil && resp.StatusCode == http.StatusOK && storable(resp.Header) {
		stored := resp.Header.Clone()
		stored.Del("Set-Cookie")
		stored.Del(CacheHeader)
		e := Entry{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Header: stored, Body: body}
		if err := c.o.Cache.Put(ctx, c.o.CacheScope, key, e); err != nil {
			c.o.Logger.WarnContext(ctx, "response cache write failed", "host", req.URL.Host, "error", err)
		}
	}
	return &shared{
		status: resp.StatusCode, statusText: resp.Status,
		proto: resp.Proto, protoMajor: resp.ProtoMajor, protoMinor: resp.ProtoMinor,
		header: resp.Header, body: body, tls: resp.TLS,
	}, nil
}

func storable(h http.Header) bool {
	if h.Get("ETag") == "" && h.Get("Last-Modified") == "" {
		return false
	}
	return !strings.Contains(strings.ToLower(h.Get("Cache-Control")), "no-store")
}

// idempotent follows net/http: the methods RFC 9110 calls idempotent, or a request that
// carries an idempotency key.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Header.Get("Idempotency-Key") != "" || r.Header.Get("X-Idempotency-Key") != ""
}

// transient reports whether a transport error may pass on retry: a certificate the client
// does not trust will not.
func transient(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	return !errors.As(err, &verify) && !errors.As(err, &unknownCA) && !errors.As(err, &hostname) && !errors.As(err, &invalid)
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// do sends req with the budget check, retries and waits. conditional marks a request the
// cache made conditional, for the observer.
func (c *Client) do(req *http.Request, conditional bool) (*http.Response, error) {
	ctx := req.Context()
	hasBody := req.Body != nil && req.Body != http.NoBody
	replayable := !hasBody || req.GetBody != nil
	idem := idempotent(req)
	var failures, waits int
	for attempt := 0; ; attempt++ {
		r := req.Clone(ctx)
		if attempt > 0 && hasBody {
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("replay the request body: %w", err)
			}
			r.Body = body
		}
		if r.Header.Get("User-Agent") == "" {
			r.Header.Set("User-Agent", c.o.UserAgent)
		}
		if err := c.spend(credentialKey(r)); err != nil {
			if r.Body != nil {
				r.Body.Close() // a RoundTripper closes the body, even unsent
			}
			return nil, err
		}
		resp, err := c.attempt(r, conditional)
		if err != nil {
			if ctx.Err() == nil && idem && replayable && failures < maxFailureRetries && transient(err) {
				failures++
				if err := sleep(ctx, c.backoff(failures)); err != nil {
					return nil, err
				}
				continue
			}
			return nil, err
		}
		if lim := limitOf(resp, c.o.Now()); lim.limited {
			retry := lim.waitKnown && lim.wait <= c.o.MaxRetryWait && replayable && waits < maxLimitRetries &&
				(resp.StatusCode != http.StatusServiceUnavailable || idem) // 503 is a 5xx: idempotent only
			if !retry {
				return resp, nil
			}
			waits++
			discard(resp)
			if err := sleep(ctx, lim.wait); err != nil {
				return nil, err
			}
			continue
		}
		if retryableStatus(resp.StatusCode) && idem && replayable && failures < maxFailureRetries {
			failures++
			discard(resp)
			if err := sleep(ctx, c.backoff(failures)); err != nil {
				return nil, err
			}
			continue
		}
		return resp, nil
	}
}

// spend checks the budget before a request and counts the request against it, so that
// concurrent requests do not all pass the last units of it.
func (c *Client) spend(key string) error {
	now := c.o.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	b, known := c.budgets[key]
	if !known || b.Reset.IsZero() || !now.Before(b.Reset) {
		return nil
	}
	// The reserve never takes more than a tenth of the window: a 60-request budget is not
	// reserved whole by a reserve meant for 5,000.
	reserve := c.o.Reserve
	if b.Limit > 0 {
		reserve = min(reserve, b.Limit/10)
	}
	if b.Remaining <= reserve {
		return &forge.RateLimitError{
			Reset:  b.Reset,
			Detail: fmt.Sprintf("%d of %d requests left, keeping %d in reserve until the reset", max(b.Remaining, 0), b.Limit, reserve),
		}
	}
	b.Remaining--
	c.budgets[key] = b
	return nil
}

// attempt sends one request on the wire, holding a concurrency slot until the body is
// closed or read to the end.
func (c *Client) attempt(r *http.Request, conditional bool) (*http.Response, error) {
	ctx := r.Context()
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, ctx.Err()
	}
	actx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	start := time.Now()
	resp, err := c.base.RoundTrip(r.WithContext(actx))
	elapsed := time.Since(start)
	if err != nil {
		cancel()
		<-c.sem
		c.observe(r, 0, false, elapsed)
		return nil, err
	}
	if b, ok := ParseBudget(resp.Header, c.o.Now()); ok && primaryResource(resp.Header) {
		key := credentialKey(r)
		c.mu.Lock()
		c.budgets[key] = b
		if key != "" || c.last == "" {
			c.last = key
		}
		c.mu.Unlock()
	}
	var once sync.Once
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() {
		once.Do(func() {
			cancel()
			<-c.sem
		})
	}}
	c.observe(r, resp.StatusCode, conditional && resp.StatusCode == http.StatusNotModified, elapsed)
	return resp, nil
}

func (c *Client) observe(r *http.Request, status int, cached bool, d time.Duration) {
	if c.o.Observer == nil {
		return
	}
	c.o.Observer(ObservedRequest{
		Method: r.Method, Host: r.URL.Host, Status: status, Cached: cached, Duration: d, Budget: c.Budget(),
	})
}

// releasingBody gives the attempt's slot and timer back at EOF or Close, whichever first.
type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.release()
	}
	return n, err
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

// discard drains a little of a response that will be retried, so the connection can be
// reused, and closes it.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
}

func (c *Client) backoff(n int) time.Duration {
	d := min(c.o.RetryBackoff<<(n-1), maxBackoff)
	return d/2 + rand.N(d/2+1) // jitter, so that clients that failed together do not retry together
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// limit is what a response says about rate limiting.
type limit struct {
	limited   bool
	waitKnown bool
	wait      time.Duration
	reset     time.Time
	secondary bool
}

// limitOf reads a rate-limit refusal: 429; 403 with the budget spent or with Retry-After
// (GitHub's secondary limits); 503 with Retry-After.
func limitOf(resp *http.Response, now time.Time) limit {
	ra, hasRA := ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	b, hasB := ParseBudget(resp.Header, now)
	spent := hasB && b.Remaining <= 0
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
	case resp.StatusCode == http.StatusForbidden && (hasRA || spent):
	case resp.StatusCode == http.StatusServiceUnavailable && hasRA:
	default:
		return limit{}
	}
	// Refused while the budget still has room: a secondary (abuse) limit, not the budget.
	l := limit{limited: true, secondary: hasRA && hasB && !spent}
	switch {
	case hasRA:
		l.waitKnown, l.wait, l.reset = true, ra, now.Add(ra)
	case spent && !b.Reset.IsZero():
		l.waitKnown, l.wait, l.reset = true, max(b.Reset.Sub(now), 0), b.Reset
	}
	return l
}

// RateLimited reports whether resp is the host refusing a request for rate limiting, and if
// so returns the error a driver returns for it, with the time to retry at (a minute from now
// when the host does not say).
func RateLimited(resp *http.Response, now time.Time) (*forge.RateLimitError, bool) {
	l := limitOf(resp, now)
	if !l.limited {
		return nil, false
	}
	reset := l.reset
	if !l.waitKnown {
		reset = now.Add(time.Minute)
	}
	detail := "the host answered " + resp.Status
	if r := resp.Request; r != nil && r.URL != nil {
		detail = fmt.Sprintf("%s %s%s answered %s", r.Method, r.URL.Host, r.URL.Path, resp.Status)
	}
	return &forge.RateLimitError{Reset: reset, Secondary: l.secondary, Detail: detail}, true
}
