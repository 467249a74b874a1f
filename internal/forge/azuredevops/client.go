package azuredevops

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/hostclient"
)

// Client is one integration's connection to Azure DevOps. It is safe for concurrent use.
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

// basic is the Authorization value of a personal access token: HTTP basic with an empty user
// name, as Azure DevOps documents for PATs.
func basic(token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+token))
}

// request is one REST call.
type request struct {
	op      string // what is being done, for errors: "list the repositories of project X"
	method  string
	path    string     // below the organization URL, escaped: "/_apis/projects"
	query   url.Values // without api-version
	version string     // api-version; default apiVersion
	token   string     // the credential; default the integration's
	body    any        // JSON-encoded when non-nil
	out     any        // JSON-decoded from a 2xx body when non-nil
}

// response is what do keeps of an answer.
type response struct {
	status int
	header http.Header
}

// maxBody bounds what is read of one answer.
const maxBody = 32 << 20

// do sends req and decodes a 2xx answer into req.out. Any other answer becomes an error
// mapped as the forge contract asks (see hostError).
func (c *Client) do(ctx context.Context, req request) (response, error) {
	var payload []byte
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return response{}, fmt.Errorf("%s: encode request: %w", req.op, err)
		}
		payload = b
	}
	q := url.Values{}
	for k, v := range req.query {
		q[k] = v
	}
	version := req.version
	if version == "" {
		version = apiVersion
	}
	q.Set("api-version", version)
	target := c.cfg.base + req.path + "?" + q.Encode()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, target, rd)
	if err != nil {
		return response{}, fmt.Errorf("%s: build request: %w", req.op, forge.StripURL(err))
	}
	token := req.token
	if token == "" {
		token = c.cfg.token
	}
	hr.Header.Set("Authorization", basic(token))
	hr.Header.Set("Accept", "application/json")
	// Without it, Azure DevOps answers a refused credential with 203 and its sign-in page.
	hr.Header.Set("X-TFS-FedAuthRedirect", "Suppress")
	hr.Header.Set("User-Agent", "forgeway")
	if payload != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, body, err := forge.Exchange(ctx, c.http, hr, req.op, "Azure DevOps", maxBody)
	if err != nil {
		return response{}, err
	}
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	c.observe(resp.Header)
	out := response{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return out, c.hostError(req.op, resp, body)
	}
	if resp.StatusCode == http.StatusNonAuthoritativeInfo && !isJSON(resp.Header) {
		return out, &forge.HostError{Op: req.op, Status: resp.StatusCode, Err: forge.ErrUnauthorized,
			Message: "Azure DevOps answered with its sign-in page: the request carried no credential it accepts"}
	}
	if req.out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, req.out); err != nil {
			return out, &forge.HostError{Op: req.op, Status: resp.StatusCode, Message: "Azure DevOps' answer is not the JSON expected: " + err.Error()}
		}
	}
	return out, nil
}

func isJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// observe keeps the rate-limit budget Azure DevOps reports. It sends X-RateLimit-* only while
// a user's consumption is being tracked near or past a threshold; other answers leave the last
// budget seen.
func (c *Client) observe(h http.Header) {
	b, ok := hostclient.ParseBudget(h, c.now())
	if !ok {
		return
	}
	c.mu.Lock()
	c.budget = b
	c.mu.Unlock()
}

// Budget reports the X-RateLimit-* headers of the last answer that had them (zero before).
func (c *Client) Budget() forge.Budget {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.budget
}

// apiError is Azure DevOps' error body (a serialized exception).
type apiError struct {
	Message string `json:"message"`
	TypeKey string `json:"typeKey"`
}

// typedError is a failed call with the exception type Azure DevOps named, for diagnosis
// (VssVersionOutOfRangeException). It unwraps to its *forge.HostError.
type typedError struct {
	*forge.HostError
	typeKey string
}

func (e *typedError) Unwrap() error { return e.HostError }

// typeKey is the exception type of a failed call ("" when Azure DevOps named none).
func typeKey(err error) string {
	var te *typedError
	if errors.As(err, &te) {
		return te.typeKey
	}
	return ""
}

// hostError maps a non-2xx answer: a refusal for rate limiting (429, or 503 with
// Retry-After) → *forge.RateLimitError; 401 → ErrUnauthorized (Azure DevOps answers 401 both
// for a bad token and for one that lacks the scope the endpoint needs); 403 → ErrForbidden;
// 404 → ErrNotFound. The message is Azure DevOps' own; never the request or a credential.
func (c *Client) hostError(op string, resp *http.Response, body []byte) error {
	var ae apiError
	if isJSON(resp.Header) {
		_ = json.Unmarshal(body, &ae)
	}
	msg := strings.TrimSpace(ae.Message)
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
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
	if ae.TypeKey != "" {
		return &typedError{HostError: he, typeKey: ae.TypeKey}
	}
	return he
}

// list is Azure DevOps' collection envelope.
type list[T any] struct {
	Count int `json:"count"`
	Value []T `json:"value"`
}

// continuationHeader carries the token of the next page of a listing.
const continuationHeader = "X-MS-ContinuationToken"

// getAll reads every page of a listing that pages with $top and continuationToken.
func getAll[T any](ctx context.Context, c *Client, op, path string, query url.Values, top int) ([]T, error) {
	var all []T
	token := ""
	for page := 1; ; page++ {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("$top", fmt.Sprint(top))
		if token != "" {
			q.Set("continuationToken", token)
		}
		var l list[T]
		resp, err := c.do(ctx, request{op: fmt.Sprintf("%s (page %d)", op, page), method: http.MethodGet, path: path, query: q, out: &l})
		if err != nil {
			return nil, err
		}
		all = append(all, l.Value...)
		next := resp.header.Get(continuationHeader)
		if next == "" || next == token {
			return all, nil
		}
		token = next
	}
}

// adoTime is a timestamp as Azure DevOps writes it: RFC 3339 with up to seven fractional
// digits, sometimes without a zone (read as UTC). Anything else, and year 1, leave the zero
// time rather than fail the answer that carries it.
type adoTime struct{ time.Time }

// UnmarshalJSON never fails; see adoTime.
func (t *adoTime) UnmarshalJSON(b []byte) error {
	t.Time = time.Time{}
	var s string
	if json.Unmarshal(b, &s) != nil || s == "" {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999"} {
		if v, err := time.Parse(layout, s); err == nil {
			if v.Year() > 1 {
				t.Time = v.UTC()
			}
			return nil
		}
	}
	return nil
}
