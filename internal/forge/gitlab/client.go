package gitlab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/hostclient"
)

// Client is one integration's connection to GitLab. It is safe for concurrent use and meant
// to be held: with an OAuth integration it keeps the current access token and renews it
// ahead of its expiry.
type Client struct {
	cfg  config
	http *http.Client
	now  func() time.Time
	save func(ctx context.Context, secrets map[string]string) error

	renewMu sync.Mutex // one OAuth renewal at a time, so concurrent callers share it

	mu     sync.Mutex
	oauth  oauthState
	budget forge.Budget
}

var (
	_ forge.Client             = (*Client)(nil)
	_ forge.UserTokenRefresher = (*Client)(nil)
	_ forge.HookSecretRotator  = (*Client)(nil)
)

func newClient(c config, env forge.Env) *Client {
	env = envDefaults(env)
	return &Client{
		cfg: c, http: env.HTTP, now: env.Now, save: env.SaveSecrets,
		oauth: oauthState{access: c.access, refresh: c.refresh, expires: c.expires},
	}
}

// credential supplies the Authorization header of a request. When GitLab refuses it (401)
// and renew is set, the request is retried once with renew's header, given the refused one:
// an OAuth token revoked or expired before the time it was given.
type credential struct {
	header func(ctx context.Context) (string, error)
	renew  func(ctx context.Context, refused string) (string, error)
}

func bearer(token string) credential {
	h := "Bearer " + token
	return credential{header: func(context.Context) (string, error) { return h, nil }}
}

// request is one REST call.
type request struct {
	op     string // what is being done, for errors: "list projects"
	method string
	path   string // below the API base, with its query: "/projects?per_page=100"
	cred   credential
	body   any // JSON-encoded when non-nil
	out    any // JSON-decoded from a 2xx body when non-nil
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
			return nil, fmt.Errorf("%s: %w", req.op, err)
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
			return nil, fmt.Errorf("%s: %w", req.op, err)
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
			return resp, &forge.HostError{Op: req.op, Status: resp.StatusCode, Message: "GitLab's answer is not the JSON expected: " + err.Error()}
		}
	}
	return resp, nil
}

// maxBody bounds what is read of one answer (a page of 100 projects is ~500 KB).
const maxBody = 32 << 20

func (c *Client) send(ctx context.Context, req request, auth string, payload []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, c.cfg.apiBase+req.path, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: build request: %w", req.op, forge.StripURL(err))
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", "forgeway")
	if payload != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		hr.Header.Set("Authorization", auth)
	}
	resp, body, err := forge.Exchange(ctx, c.http, hr, req.op, "GitLab", maxBody)
	if err != nil {
		return nil, nil, err
	}
	c.observe(resp.Header)
	return resp, body, nil
}

// observe keeps the rate-limit budget of GitLab's RateLimit-* headers (GitLab.com sends them).
func (c *Client) observe(h http.Header) {
	b, ok := hostclient.ParseBudget(h, c.now())
	if !ok {
		return
	}
	c.mu.Lock()
	c.budget = b
	c.mu.Unlock()
}

// Budget reports the RateLimit-* headers of the last API answer that had them (zero before
// any; self-managed instances without rate limits never send them).
func (c *Client) Budget() forge.Budget {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.budget
}

// glError is what GitLab answers on failure, in its several shapes: {"message": "404 Project
// Not Found"}, {"message": {"url": ["is blocked: …"]}}, {"message": ["…"]}, {"error": "…"}
// (Grape validation) and OAuth's {"error": "insufficient_scope", "error_description": "…",
// "scope": "api"}.
type glError struct {
	Message          json.RawMessage `json:"message"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
	Scope            string          `json:"scope"`
}

// messageText flattens GitLab's "message", whatever its shape.
func messageText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, "; ")
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) == nil {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			if v := messageText(fields[k]); v != "" {
				parts = append(parts, k+" "+v)
			}
		}
		return strings.Join(parts, "; ")
	}
	return strings.TrimSpace(string(raw))
}

// maxMessage bounds the part of an answer quoted in an error (a proxy's HTML page).
const maxMessage = 300

func (e glError) text(status int, body []byte) string {
	msg := messageText(e.Message)
	switch {
	case msg != "":
	case e.ErrorDescription != "":
		msg = e.ErrorDescription
		if e.Error != "" {
			msg = e.Error + ": " + msg
		}
	case e.Error != "":
		msg = e.Error
	default:
		// Not JSON: GitLab's rate limiter answers "Retry later", a proxy its own page.
		msg = strings.TrimSpace(string(body))
		if len(msg) > maxMessage || strings.ContainsAny(msg, "<>") {
			msg = ""
		}
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return msg
}

// hostError maps a non-2xx answer: a rate-limit refusal (429, or Retry-After with 403/503)
// → *forge.RateLimitError; 401 → ErrUnauthorized; 403 → ErrForbidden, saying which scope is
// missing when GitLab names it; 404 → ErrNotFound. The message is GitLab's own; never the
// request or a credential.
func (c *Client) hostError(op string, resp *http.Response, body []byte) error {
	var ge glError
	_ = json.Unmarshal(body, &ge)
	msg := ge.text(resp.StatusCode, body)
	if rl, ok := hostclient.RateLimited(resp, c.now()); ok {
		rl.Detail = op + ": " + msg
		return rl
	}
	he := &forge.HostError{Op: op, Status: resp.StatusCode, Message: msg}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		he.Err = forge.ErrUnauthorized
	case http.StatusForbidden:
		he.Err = forge.ErrForbidden
		if ge.Error == "insufficient_scope" {
			he.Message = "the token lacks a scope this needs"
			if ge.Scope != "" {
				he.Message += " (needs: " + ge.Scope + ")"
			}
		}
	case http.StatusNotFound:
		he.Err = forge.ErrNotFound
	}
	return he
}

var linkRE = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="([^"]+)"`)

// nextPath is the Link header's rel="next" as a path below the API base ("" when this is the
// last page). GitLab writes links with its external URL, which may differ from the base URL
// the integration uses (a proxy, another host name, http behind https): the link's part after
// /api/v4 is followed on the integration's own base, so credentials only ever go there. A
// next link without /api/v4 is an error, not the end of the listing.
func (c *Client) nextPath(op string, h http.Header) (string, error) {
	for _, v := range h.Values("Link") {
		for _, m := range linkRE.FindAllStringSubmatch(v, -1) {
			if m[2] != "next" {
				continue
			}
			u, err := url.Parse(m[1])
			if err == nil {
				if _, rest, ok := strings.Cut(u.EscapedPath(), "/api/v4/"); ok {
					p := "/" + rest
					if u.RawQuery != "" {
						p += "?" + u.RawQuery
					}
					return p, nil
				}
			}
			return "", &forge.HostError{Op: op, Message: fmt.Sprintf("GitLab's link to the next page (%.200s) is not an API URL", m[1])}
		}
	}
	return "", nil
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
		if path, err = c.nextPath(op, resp.Header); err != nil {
			return nil, err
		}
	}
	return all, nil
}
