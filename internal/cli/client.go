package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/problem"
	"github.com/forgeway/forgeway/internal/server"
)

// maxAnswer bounds an API answer the CLI reads (a delivery carries its whole body).
const maxAnswer = 64 << 20

// client calls one Forgeway server's API.
type client struct {
	base    *url.URL // scheme://host[:port][/prefix], no trailing slash
	token   string
	http    *http.Client
	timeout time.Duration
}

// apiError is a non-2xx answer of the API, as a problem document (built from the status when
// the server did not send one).
type apiError struct {
	status  int
	problem problem.Details
	hint    string // the problem's hint, plus the CLI's own advice
}

func (a *apiError) Error() string {
	if a.problem.Detail == "" {
		return a.problem.Title
	}
	return a.problem.Title + ": " + a.problem.Detail
}

// client builds the API client from the global flags and the environment.
func (e *env) client() (*client, error) {
	raw := e.server
	if raw == "" {
		raw = e.getenv("FORGEWAY_URL")
	}
	if raw == "" {
		raw = defaultServer
	}
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--server must be an http(s) URL like %s, got %q", defaultServer, redactURL(raw))
	}
	if u.User != nil {
		return nil, usagef("--server must not carry credentials; use FORGEWAY_TOKEN")
	}
	u.RawQuery, u.Fragment = "", ""
	tok := e.token
	if tok == "" {
		tok = e.getenv("FORGEWAY_TOKEN")
	}
	return &client{base: u, token: strings.TrimSpace(tok), http: e.httpClient, timeout: e.timeout}, nil
}

// redactURL hides any password in a URL the user typed before it is shown.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// endpoint is the absolute URL of an API path (relative to /api/v1, its segments already
// escaped by pathf) with its query.
func (c *client) endpoint(path string, q url.Values) string {
	u := *c.base
	escaped := c.base.EscapedPath() + api.Prefix + path
	unescaped, err := url.PathUnescape(escaped)
	if err != nil {
		unescaped = escaped
	}
	u.Path, u.RawPath = unescaped, escaped
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// pathf builds an API path, escaping each argument as one path segment.
func pathf(format string, ids ...string) string {
	a := make([]any, len(ids))
	for i, id := range ids {
		a[i] = url.PathEscape(id)
	}
	return fmt.Sprintf(format, a...)
}

// newRequest builds an authenticated API request; body, when not nil, is sent as JSON.
func (c *client) newRequest(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint(path, q), rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "forgeway-cli/"+server.Version)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// call sends one request and returns the answer's body (nil for 204). A non-2xx answer is an
// *apiError; a server that cannot be reached is explained.
func (c *client) call(ctx context.Context, method, path string, q url.Values, body any) ([]byte, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, c.transportError(ctx, method, path, fmt.Errorf("read answer: %w", err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.answerError(resp, raw)
	}
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	return raw, nil
}

// get calls GET and decodes the answer into out; it returns the raw answer too.
func (c *client) get(ctx context.Context, path string, q url.Values, out any) ([]byte, error) {
	raw, err := c.call(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return nil, err
	}
	return raw, decodeAnswer(path, raw, out)
}

// send calls a write and decodes the answer into out (when not nil); it returns the raw answer.
func (c *client) send(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	raw, err := c.call(ctx, method, path, nil, body)
	if err != nil {
		return nil, err
	}
	return raw, decodeAnswer(path, raw, out)
}

func decodeAnswer(path string, raw []byte, out any) error {
	if out == nil || raw == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("read the answer of %s: %w", api.Prefix+path, err)
	}
	return nil
}

// transportError explains a request that got no answer.
func (c *client) transportError(ctx context.Context, method, path string, err error) error {
	where := c.base.String()
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return fmt.Errorf("%s %s: interrupted", method, api.Prefix+path)
	case errors.Is(err, context.DeadlineExceeded):
		return &hintError{
			err:  fmt.Errorf("%s %s: no answer from %s within %s", method, api.Prefix+path, where, c.timeout),
			hint: "The server may be busy; try again, or raise --timeout.",
		}
	case unreachable(err):
		return &hintError{
			err:  fmt.Errorf("the Forgeway server is not reachable at %s (%s)", where, rootCause(err)),
			hint: "Start it with `forgeway serve`, or point --server (or FORGEWAY_URL) at a running one.",
		}
	}
	return fmt.Errorf("%s %s: %w", method, api.Prefix+path, err)
}

// unreachable reports whether err means no server answers at the address.
func unreachable(err error) bool {
	var dns *net.DNSError
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.As(err, &dns) ||
		(errors.As(err, &op) && op.Op == "dial")
}

// rootCause is the innermost message of a network error, without the URL (which the caller
// already names).
func rootCause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	return err.Error()
}

// answerError turns a non-2xx answer into an *apiError.
func (c *client) answerError(resp *http.Response, raw []byte) error {
	ae := &apiError{status: resp.StatusCode}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if (mt == "application/problem+json" || mt == "application/json") && json.Unmarshal(raw, &ae.problem) == nil && ae.problem.Title != "" {
		ae.hint = ae.problem.Hint
	} else {
		ae.problem = problem.Details{
			Title:  fmt.Sprintf("the server answered %s", resp.Status),
			Status: resp.StatusCode,
			Detail: snippet(raw),
		}
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusBadGateway {
			ae.hint = fmt.Sprintf("Is %s a Forgeway server (its API is under %s)?", c.base, api.Prefix)
		}
	}
	if resp.StatusCode == http.StatusUnauthorized && c.token == "" {
		ae.hint = strings.TrimSpace(ae.hint + " No token was given: set FORGEWAY_TOKEN (or --token).")
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			if n, err := strconv.Atoi(ra); err == nil {
				ae.hint = strings.TrimSpace(ae.hint + fmt.Sprintf(" Retry in %ds.", n))
			}
		}
	}
	return ae
}

// snippet is the start of a non-problem error body, on one line.
func snippet(raw []byte) string {
	s := strings.Join(strings.Fields(string(raw)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// listAll fetches a list: every page (following next_cursor) when limit is 0, else one page
// of at most limit items starting at cursor. The answer keeps the items raw.
func (c *client) listAll(ctx context.Context, path string, q url.Values, limit int, cursor string) (api.List[json.RawMessage], error) {
	var out api.List[json.RawMessage]
	out.Items = []json.RawMessage{}
	q = cloneValues(q)
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	seen := map[string]bool{}
	for {
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page api.List[json.RawMessage]
		if _, err := c.get(ctx, path, q, &page); err != nil {
			return out, err
		}
		out.Items = append(out.Items, page.Items...)
		out.NextCursor = page.NextCursor
		if limit > 0 || page.NextCursor == "" || len(page.Items) == 0 {
			return out, nil
		}
		if seen[page.NextCursor] {
			return out, fmt.Errorf("list %s: the server returned the cursor %q twice", api.Prefix+path, page.NextCursor)
		}
		seen[page.NextCursor] = true
		cursor = page.NextCursor
	}
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}
