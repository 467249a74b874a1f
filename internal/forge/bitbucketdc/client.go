package bitbucketdc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/hostclient"
)

// Client is one integration's connection to Bitbucket Data Center. It is safe for concurrent
// use. Bitbucket's access tokens do not renew, so there is nothing to cache but the rate-limit
// budget last seen.
type Client struct {
	cfg  config
	http *http.Client
	now  func() time.Time

	mu     sync.Mutex
	budget forge.Budget
}

var (
	_ forge.Client            = (*Client)(nil)
	_ forge.HookSecretRotator = (*Client)(nil)
)

// request is one REST call.
type request struct {
	op     string // what is being done, for errors: "list repositories"
	method string
	path   string // below /rest/api/1.0, with its query: "/repos?limit=100"
	token  string // bearer token; "" sends none
	body   any    // JSON-encoded when non-nil
	out    any    // JSON-decoded from a 2xx body when non-nil
}

// maxBody bounds what is read of one answer (a page of 1000 repositories is ~2 MB).
const maxBody = 32 << 20

// do sends req and decodes a 2xx answer into req.out. Any other answer becomes an error
// mapped as the forge contract asks (see hostError). The response is returned, body closed,
// for its status and headers.
func (c *Client) do(ctx context.Context, req request) (*http.Response, error) {
	var payload io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("%s: encode request: %w", req.op, err)
		}
		payload = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, c.cfg.api+req.path, payload)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", req.op, forge.StripURL(err))
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", "Forgeway")
	// Bitbucket's XSRF check refuses browser-like writes without it; it is harmless otherwise.
	hr.Header.Set("X-Atlassian-Token", "no-check")
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if req.token != "" {
		hr.Header.Set("Authorization", "Bearer "+req.token)
	}
	resp, body, err := forge.Exchange(ctx, c.http, hr, req.op, "Bitbucket", maxBody)
	if err != nil {
		return nil, err
	}
	c.observe(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, c.hostError(req.op, resp, body)
	}
	if req.out != nil && len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, req.out); err != nil {
			return resp, &forge.HostError{Op: req.op, Status: resp.StatusCode, Message: "Bitbucket's answer is not the JSON expected (" + err.Error() + "): is the base URL Bitbucket's?"}
		}
	}
	return resp, nil
}

// observe keeps a rate-limit budget when the answer carries one. Bitbucket sends its
// X-RateLimit-* headers only when it refuses a request (429), so the budget is mostly unknown.
func (c *Client) observe(resp *http.Response) {
	now := c.now()
	if b, ok := hostclient.ParseBudget(resp.Header, now); ok {
		c.mu.Lock()
		c.budget = b
		c.mu.Unlock()
		return
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		return
	}
	b := forge.Budget{Remaining: 0, Reset: now.Add(time.Minute)}
	b.Limit, _ = strconv.Atoi(resp.Header.Get("X-RateLimit-Limit"))
	if d, ok := hostclient.ParseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
		b.Reset = now.Add(d)
	}
	c.mu.Lock()
	c.budget = b
	c.mu.Unlock()
}

// Budget reports the rate-limit budget last seen: Bitbucket only reports one when it refuses
// a request (429), as spent until its Retry-After; zero otherwise.
func (c *Client) Budget() forge.Budget {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.budget
}

// restErrors is Bitbucket's error body.
type restErrors struct {
	Errors []struct {
		Context       *string `json:"context"`
		Message       string  `json:"message"`
		ExceptionName string  `json:"exceptionName"`
	} `json:"errors"`
}

// text is the host's messages, or the status text when it sent none (or no JSON: a proxy's
// or another server's page).
func (e restErrors) text(resp *http.Response) string {
	var msgs []string
	for _, m := range e.Errors {
		if m.Message != "" {
			msgs = append(msgs, m.Message)
		}
	}
	if len(msgs) > 0 {
		return strings.Join(msgs, "; ")
	}
	msg := http.StatusText(resp.StatusCode)
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "" && mt != "application/json" {
		msg += " (the answer is " + mt + ", not Bitbucket's JSON: check the base URL and any proxy in front of Bitbucket)"
	}
	return msg
}

// authorisation reports whether Bitbucket refused a request for want of a permission.
// Bitbucket answers 401 both for a refused credential and for a valid one lacking a
// permission; the second names com.atlassian.bitbucket.AuthorisationException.
func (e restErrors) authorisation() bool {
	for _, m := range e.Errors {
		name := strings.ToLower(m.ExceptionName)
		msg := strings.ToLower(m.Message)
		if strings.HasSuffix(name, ".authorisationexception") || strings.Contains(msg, "insufficient permission") || strings.Contains(msg, "not permitted") {
			return true
		}
	}
	return false
}

// hostError maps a non-2xx answer: a rate-limit refusal (429, or 503 with Retry-After) →
// *forge.RateLimitError until Retry-After; 401 → ErrForbidden when Bitbucket names an
// AuthorisationException (a valid token without the permission), ErrUnauthorized otherwise;
// 403 → ErrForbidden; 404 → ErrNotFound. The message is Bitbucket's own; never the request or
// the credential.
func (c *Client) hostError(op string, resp *http.Response, body []byte) error {
	var re restErrors
	_ = json.Unmarshal(body, &re)
	msg := re.text(resp)
	if rl, ok := hostclient.RateLimited(resp, c.now()); ok {
		rl.Detail = op + ": " + msg
		return rl
	}
	he := &forge.HostError{Op: op, Status: resp.StatusCode, Message: msg}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		he.Err = forge.ErrUnauthorized
		if re.authorisation() {
			he.Err = forge.ErrForbidden
		}
	case http.StatusForbidden:
		he.Err = forge.ErrForbidden
	case http.StatusNotFound:
		he.Err = forge.ErrNotFound
	}
	return he
}

// page is one page of a Bitbucket paged resource.
type page[T any] struct {
	Values        []T  `json:"values"`
	Size          int  `json:"size"`
	Limit         int  `json:"limit"`
	Start         int  `json:"start"`
	IsLastPage    bool `json:"isLastPage"`
	NextPageStart *int `json:"nextPageStart"`
}

// next is the start of the page after p; ok is false when p is the last one (or Bitbucket
// gave no next start, which would otherwise loop).
func (p page[T]) next() (int, bool) {
	if p.IsLastPage || p.NextPageStart == nil || *p.NextPageStart <= p.Start {
		return 0, false
	}
	return *p.NextPageStart, true
}

// withStart adds start (and limit when set) to a path that may already have a query.
func withStart(path string, start, limit int) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	q := sep + "start=" + strconv.Itoa(start)
	if limit > 0 {
		q += "&limit=" + strconv.Itoa(limit)
	}
	return path + q
}

// getAll reads every page of path, following nextPageStart, and returns the values in order.
func getAll[T any](ctx context.Context, c *Client, op, path string, limit int) ([]T, error) {
	var all []T
	start := 0
	for {
		var p page[T]
		if _, err := c.do(ctx, request{op: op, method: http.MethodGet, path: withStart(path, start, limit), token: c.cfg.token, out: &p}); err != nil {
			return nil, err
		}
		all = append(all, p.Values...)
		n, ok := p.next()
		if !ok {
			return all, nil
		}
		start = n
	}
}

// repoPath is the REST path of a repository, "/projects/{key}/repos/{slug}".
func repoPath(repo forge.Repository) (string, error) {
	key, slug, err := splitFullName(repo.FullName)
	if err != nil {
		return "", err
	}
	return "/projects/" + url.PathEscape(key) + "/repos/" + url.PathEscape(slug), nil
}

// splitFullName splits PROJECTKEY/slug.
func splitFullName(full string) (string, string, error) {
	key, slug, ok := strings.Cut(full, "/")
	if !ok || key == "" || slug == "" || strings.Contains(slug, "/") {
		return "", "", fmt.Errorf("repository full name %q is not PROJECTKEY/slug", full)
	}
	return key, slug, nil
}
