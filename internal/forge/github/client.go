package github

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// Client is one integration's connection to GitHub. It is safe for concurrent use and
// meant to be held: it caches installation tokens and renews them before they run out.
type Client struct {
	cfg  config
	http *http.Client
	now  func() time.Time
	save func(ctx context.Context, secrets map[string]string) error

	mintMu sync.Mutex // one installation-token mint at a time, so concurrent callers share it

	mu     sync.Mutex
	tokens map[int64]installationToken
	budget forge.Budget
	patExp time.Time // a personal token's expiry, when GitHub reported it
}

var (
	_ forge.Client             = (*Client)(nil)
	_ forge.Installations      = (*Client)(nil)
	_ forge.UserTokenRefresher = (*Client)(nil)
	_ forge.AppManifest        = Driver{}
	_ forge.Authorizer         = Driver{}
)

func newClient(c config, env forge.Env) *Client {
	env = envDefaults(env)
	return &Client{cfg: c, http: env.HTTP, now: env.Now, save: env.SaveSecrets, tokens: map[int64]installationToken{}}
}

// credential supplies the Authorization header of a request. When GitHub refuses it (401) and
// renew is set, the request is retried once with renew's header, given the refused one: a
// cached installation token the host revoked or expired early.
type credential struct {
	header func(ctx context.Context) (string, error)
	renew  func(ctx context.Context, refused string) (string, error)
}

func staticCredential(h string) credential {
	return credential{header: func(context.Context) (string, error) { return h, nil }}
}

var anonymous = credential{}

// request is one REST call.
type request struct {
	op     string // what is being done, for errors: "list repositories"
	method string
	path   string // below the API base, with its query: "/user/repos?per_page=100"
	cred   credential
	body   any // JSON-encoded when non-nil
	out    any // JSON-decoded from a 2xx body when non-nil
	abs    string
}

// do sends req and decodes a 2xx answer into req.out. Any other answer becomes an error
// mapped as the forge contract asks (see hostError). The response is returned, body closed,
// for its headers.
func (c *Client) do(ctx context.Context, req request) (*http.Response, error) {
	var payload []byte
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("%s: encode request: %w", req.op, err)
		}
		payload = b
	}
	auth := ""
	if req.cred.header != nil {
		h, err := req.cred.header(ctx)
		if err != nil {
			return nil, err
		}
		auth = h
	}
	resp, body, err := c.send(ctx, req, auth, payload)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized && req.cred.renew != nil {
		h, err := req.cred.renew(ctx, auth)
		if err != nil {
			return nil, err
		}
		if resp, body, err = c.send(ctx, req, h, payload); err != nil {
			return nil, err
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, c.hostError(req.op, resp, body)
	}
	if req.out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, req.out); err != nil {
			return resp, &forge.HostError{Op: req.op, Status: resp.StatusCode, Message: "GitHub's answer is not the JSON expected: " + err.Error()}
		}
	}
	return resp, nil
}

// maxBody bounds what is read of one answer (a page of 100 repositories is ~600 KB).
const maxBody = 32 << 20

func (c *Client) send(ctx context.Context, req request, auth string, payload []byte) (*http.Response, []byte, error) {
	target := req.abs
	if target == "" {
		target = c.cfg.apiBase + req.path
	}
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, target, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: build request: %w", req.op, forge.StripURL(err))
	}
	hr.Header.Set("Accept", "application/vnd.github+json")
	hr.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	hr.Header.Set("User-Agent", "forgeway")
	if payload != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		hr.Header.Set("Authorization", auth)
	}
	resp, body, err := forge.Exchange(ctx, c.http, hr, req.op, "GitHub", maxBody)
	if err != nil {
		return nil, nil, err
	}
	c.observe(resp.Header)
	return resp, body, nil
}

// observe keeps the rate-limit budget and a personal token's expiry from response headers.
func (c *Client) observe(h http.Header) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if lim, err := strconv.Atoi(h.Get("X-RateLimit-Limit")); err == nil {
		rem, _ := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
		c.budget = forge.Budget{Limit: lim, Remaining: rem, Reset: unixHeader(h.Get("X-RateLimit-Reset"))}
	}
	if v := h.Get("GitHub-Authentication-Token-Expiration"); v != "" {
		for _, layout := range []string{"2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700", time.RFC3339} {
			if t, err := time.Parse(layout, v); err == nil {
				c.patExp = t
				break
			}
		}
	}
}

func unixHeader(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// Budget reports the x-ratelimit-* headers of the last API answer (zero before any).
func (c *Client) Budget() forge.Budget {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.budget
}

// ghError is GitHub's error body.
type ghError struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
	Errors           []struct {
		Resource string `json:"resource"`
		Field    string `json:"field"`
		Code     string `json:"code"`
		Message  string `json:"message"`
	} `json:"errors"`
}

func (e ghError) text(status int) string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	var details []string
	for _, d := range e.Errors {
		switch {
		case d.Message != "":
			details = append(details, d.Message)
		case d.Field != "":
			details = append(details, d.Field+" "+d.Code)
		}
	}
	if len(details) > 0 {
		msg += " (" + strings.Join(details, "; ") + ")"
	}
	return msg
}

// hostError maps a non-2xx answer: 401 → ErrUnauthorized; 403/429 with
// x-ratelimit-remaining 0 → *forge.RateLimitError until x-ratelimit-reset; 403/429 with
// Retry-After (or GitHub's secondary-limit message) → *forge.RateLimitError{Secondary}; other
// 403 → ErrForbidden; 404 → ErrNotFound, or ErrForbidden when GitHub says the token lacks the
// scope the endpoint accepts. The message is GitHub's own; never the request or a credential.
func (c *Client) hostError(op string, resp *http.Response, body []byte) error {
	var ge ghError
	_ = json.Unmarshal(body, &ge)
	msg := ge.text(resp.StatusCode)
	h := resp.Header
	status := resp.StatusCode
	if status == http.StatusForbidden || status == http.StatusTooManyRequests {
		if h.Get("X-RateLimit-Remaining") == "0" {
			reset := unixHeader(h.Get("X-RateLimit-Reset"))
			if reset.IsZero() {
				reset = c.now().Add(time.Minute)
			}
			return &forge.RateLimitError{Reset: reset, Detail: op + ": " + msg}
		}
		retry := h.Get("Retry-After")
		if retry != "" || status == http.StatusTooManyRequests || strings.Contains(strings.ToLower(msg), "secondary rate limit") {
			wait := time.Minute // GitHub: without retry-after, wait at least a minute
			if n, err := strconv.Atoi(retry); err == nil && n >= 0 {
				wait = time.Duration(n) * time.Second
			}
			return &forge.RateLimitError{Reset: c.now().Add(wait), Secondary: true, Detail: op + ": " + msg}
		}
	}
	he := &forge.HostError{Op: op, Status: status, Message: msg}
	switch status {
	case http.StatusUnauthorized:
		he.Err = forge.ErrUnauthorized
	case http.StatusForbidden:
		he.Err = forge.ErrForbidden
	case http.StatusNotFound:
		he.Err = forge.ErrNotFound
		if accepted := h.Get("X-Accepted-OAuth-Scopes"); accepted != "" && h.Get("X-OAuth-Scopes") != "" && !scopesSatisfy(h.Get("X-OAuth-Scopes"), accepted) {
			he.Err = forge.ErrForbidden
			he.Message = fmt.Sprintf("the token lacks a scope this needs (one of: %s; it has: %s)", accepted, h.Get("X-OAuth-Scopes"))
		}
	}
	return he
}

func splitScopes(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// scopeImplies lists, for a classic token scope, the broader scopes that include it.
var scopeImplies = map[string][]string{
	"public_repo":     {"repo"},
	"repo:status":     {"repo"},
	"read:repo_hook":  {"write:repo_hook", "admin:repo_hook"},
	"write:repo_hook": {"admin:repo_hook"},
	"read:org":        {"write:org", "admin:org"},
	"write:org":       {"admin:org"},
}

func hasScope(have []string, want string) bool {
	for _, h := range have {
		if h == want {
			return true
		}
		for _, broader := range scopeImplies[want] {
			if h == broader {
				return true
			}
		}
	}
	return false
}

// scopesSatisfy reports whether the token's scopes include one of the accepted ones.
func scopesSatisfy(have, accepted string) bool {
	hs := splitScopes(have)
	for _, a := range splitScopes(accepted) {
		if hasScope(hs, a) {
			return true
		}
	}
	return false
}

var linkRE = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="([^"]+)"`)

// links parses a Link header into rel → URL.
func links(h http.Header) map[string]string {
	out := map[string]string{}
	for _, v := range h.Values("Link") {
		for _, m := range linkRE.FindAllStringSubmatch(v, -1) {
			out[m[2]] = m[1]
		}
	}
	return out
}

// lastPage reads the page number of rel="last" (0 when there is none).
func lastPage(h http.Header) int {
	u, err := url.Parse(links(h)["last"])
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(u.Query().Get("page"))
	return n
}

// nextPath is rel="next" as a path below the API base ("" when this is the last page).
func (c *Client) nextPath(h http.Header) string {
	next := links(h)["next"]
	if next == "" {
		return ""
	}
	if p, ok := strings.CutPrefix(next, c.cfg.apiBase); ok {
		return p
	}
	// A Link on another origin is not followed with this integration's credentials.
	return ""
}

// getAll follows rel="next" from path and decodes every page into a slice.
func getAll[T any](ctx context.Context, c *Client, op, path string, cred credential) ([]T, error) {
	var all []T
	for path != "" {
		var page []T
		resp, err := c.do(ctx, request{op: op, method: http.MethodGet, path: path, cred: cred, out: &page})
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		path = c.nextPath(resp.Header)
	}
	return all, nil
}
