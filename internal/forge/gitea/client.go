package gitea

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/forgeway/forgeway/internal/hostclient"
)

// Client is one integration's connection to Gitea. It is safe for concurrent use. Gitea
// access tokens do not expire, so there is nothing to renew: the token is sent as is.
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
	path   string // below /api/v1, with its query: "/user/repos?limit=50&page=1"
	token  string // the acting person's token; "" uses the integration's
	anon   bool   // send no credential
	body   any    // JSON-encoded when non-nil
	out    any    // JSON-decoded from a 2xx body when non-nil
}

// maxBody bounds what is read of one answer (a page of 50 repositories is ~250 KB).
const maxBody = 32 << 20

// do sends req and decodes a 2xx answer into req.out. Any other answer becomes an error mapped
// as the forge contract asks (see hostError). The response is returned, body closed, for its
// headers.
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
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	tok := c.cfg.token
	if req.token != "" {
		tok = req.token
	}
	if !req.anon {
		hr.Header.Set("Authorization", "token "+tok)
	}
	resp, body, err := forge.Exchange(ctx, c.http, hr, req.op, "Gitea", maxBody)
	if err != nil {
		return nil, err
	}
	c.observe(resp.Header)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, c.hostError(req.op, resp, body, tok)
	}
	if req.out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, req.out); err != nil {
			return resp, &forge.HostError{Op: req.op, Status: resp.StatusCode, Message: "Gitea's answer is not the JSON expected: " + err.Error()}
		}
	}
	return resp, nil
}

// observe keeps the rate-limit budget from response headers. Gitea itself sends none; a
// rate-limiting proxy in front of it may (X-RateLimit-*).
func (c *Client) observe(h http.Header) {
	b, ok := hostclient.ParseBudget(h, c.now())
	if !ok {
		return
	}
	c.mu.Lock()
	c.budget = b
	c.mu.Unlock()
}

// Budget reports the rate-limit headers of the last API answer that carried them (zero when
// none did: Gitea has no rate limit of its own).
func (c *Client) Budget() forge.Budget {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.budget
}

// giteaError is Gitea's error body (APIError, and the "errors" list of not-found and
// validation answers).
type giteaError struct {
	Message string            `json:"message"`
	Errors  []json.RawMessage `json:"errors"`
}

func (e giteaError) text(status int) string {
	msg := strings.TrimSpace(e.Message)
	var details []string
	for _, raw := range e.Errors {
		var s string
		if json.Unmarshal(raw, &s) == nil && s != "" && s != msg {
			details = append(details, s)
		}
	}
	if msg == "" {
		msg = http.StatusText(status)
		if len(details) > 0 {
			msg, details = details[0], details[1:]
		}
	}
	if len(details) > 0 {
		msg += " (" + strings.Join(details, "; ") + ")"
	}
	return msg
}

// hostError maps a non-2xx answer: a refusal for rate limiting (429, or a 403/503 with
// Retry-After or a spent budget, as a proxy in front of Gitea sends them) →
// *forge.RateLimitError; 401 → ErrUnauthorized; 403 → ErrForbidden (Gitea names a missing
// token scope in the message: "token does not have at least one of required scope(s):
// [write:repository]"); 404 → ErrNotFound. The message is Gitea's own; never the request or a
// credential.
func (c *Client) hostError(op string, resp *http.Response, body []byte, tok string) error {
	var ge giteaError
	if json.Unmarshal(body, &ge) != nil {
		ge = giteaError{}
	}
	msg := ge.text(resp.StatusCode)
	if tok != "" {
		msg = forge.Scrubber("Authorization: token " + tok)(msg)
	}
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
	case http.StatusNotFound:
		he.Err = forge.ErrNotFound
	}
	return he
}

// missingScope reads the scopes Gitea says a token lacks from a 403's message (nil when the
// refusal is about something else, such as repository permissions).
func missingScope(err error) []string {
	var he *forge.HostError
	if !errors.As(err, &he) || he.Status != http.StatusForbidden {
		return nil
	}
	m := scopeRE.FindStringSubmatch(he.Message)
	if m == nil {
		return nil
	}
	return strings.Fields(strings.NewReplacer(",", " ").Replace(m[1]))
}

var scopeRE = regexp.MustCompile(`required scope\(s\):?\s*\[([^\]]*)\]`)

// pageLimit is the page size Forgeway asks for: Gitea's default MAX_RESPONSE_ITEMS. A server
// configured lower answers fewer; the listing adapts.
const pageLimit = 50

// listConcurrency bounds the pages of one listing fetched at once.
const listConcurrency = 8

var linkRE = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="([^"]+)"`)

// links parses a Link header into rel → URL. Gitea writes its links with its configured
// ROOT_URL, which may not be the address Forgeway uses: only their page numbers are read.
func links(h http.Header) map[string]string {
	out := map[string]string{}
	for _, v := range h.Values("Link") {
		for _, m := range linkRE.FindAllStringSubmatch(v, -1) {
			out[m[2]] = m[1]
		}
	}
	return out
}

// linkPage is the page number of a Link relation (0 when absent).
func linkPage(h http.Header, rel string) int {
	u, err := url.Parse(links(h)[rel])
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(u.Query().Get("page"))
	return n
}

// totalCount reads X-Total-Count, which Gitea sets on every list.
func totalCount(h http.Header) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Total-Count")))
	return n, err == nil && n >= 0
}

// pagePath is path with limit and page set.
func pagePath(path string, page int) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return fmt.Sprintf("%s%slimit=%d&page=%d", path, sep, pageLimit, page)
}

// lastPageOf says how many pages a listing has, from its first page: the page of rel="last"
// when Gitea sends one, else X-Total-Count divided by the page size the server actually
// used (fewer items than asked for while more exist means MAX_RESPONSE_ITEMS is lower).
// 0 means the answer says nothing, and pages must be followed one by one.
func lastPageOf(h http.Header, firstLen int) int {
	if n := linkPage(h, "last"); n > 0 {
		return n
	}
	total, ok := totalCount(h)
	if !ok {
		return 0
	}
	per := pageLimit
	if firstLen > 0 && firstLen < pageLimit && total > firstLen {
		per = firstLen
	}
	return max((total+per-1)/per, 1)
}

// maxPages stops a listing whose host never says it is done.
const maxPages = 10000

// getAll fetches every page of a list, one after the other (hooks and branches are short).
// When the answers say nothing of the number of pages (a proxy dropped X-Total-Count and
// Link), it reads on until a page is shorter than the first.
func getAll[T any](ctx context.Context, c *Client, op, path, tok string) ([]T, error) {
	var all []T
	last, per := 0, 0
	for page := 1; page <= maxPages; page++ {
		var items []T
		resp, err := c.do(ctx, request{op: fmt.Sprintf("%s (page %d)", op, page), method: http.MethodGet, path: pagePath(path, page), token: tok, out: &items})
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if page == 1 {
			last, per = lastPageOf(resp.Header, len(items)), len(items)
		}
		if len(items) == 0 || (last > 0 && page >= last) || (last == 0 && len(items) < per) {
			return all, nil
		}
	}
	return nil, &forge.HostError{Op: op, Message: fmt.Sprintf("Gitea kept answering pages past %d", maxPages)}
}

// listPages fetches page 1, learns the number of pages from it, then fetches pages 2…last
// concurrently (listConcurrency at most in flight or waiting to be consumed) and hands them to
// fn in order. The first error — a page's or fn's — cancels the rest and is returned.
func listPages[T any](ctx context.Context, c *Client, op, path string, convert func([]T) []forge.Repository, fn func([]forge.Repository) error) error {
	fetch := func(ctx context.Context, page int) ([]T, *http.Response, error) {
		var items []T
		resp, err := c.do(ctx, request{op: fmt.Sprintf("%s (page %d)", op, page), method: http.MethodGet, path: pagePath(path, page), out: &items})
		return items, resp, err
	}
	first, resp, err := fetch(ctx, 1)
	if err != nil {
		return err
	}
	if err := fn(convert(first)); err != nil {
		return err
	}
	last := lastPageOf(resp.Header, len(first))
	if len(first) == 0 || last == 1 {
		return nil
	}
	if last == 0 {
		// Nothing says how many pages there are (a proxy dropped X-Total-Count and Link):
		// read them one by one until one is shorter than the first.
		for page := 2; page <= maxPages; page++ {
			items, _, err := fetch(ctx, page)
			if err != nil {
				return err
			}
			if len(items) == 0 {
				return nil
			}
			if err := fn(convert(items)); err != nil {
				return err
			}
			if len(items) < len(first) {
				return nil
			}
		}
		return &forge.HostError{Op: op, Message: fmt.Sprintf("Gitea kept answering pages past %d", maxPages)}
	}

	return forge.FetchPages(ctx, op, 2, last, listConcurrency, func(ctx context.Context, page int) ([]T, error) {
		items, _, err := fetch(ctx, page)
		return items, err
	}, func(items []T) error { return fn(convert(items)) })
}

// repoPath is "/repos/{owner}/{repo}" for a repository, escaped.
func repoPath(repo forge.Repository) (string, error) {
	owner, name, ok := strings.Cut(repo.FullName, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("repository full name %q is not owner/name", repo.FullName)
	}
	return "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name), nil
}
