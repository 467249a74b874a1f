package hostclient

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// epochThreshold separates a reset given as epoch seconds from one given as seconds from now:
// no host's window is anywhere near this long, and no epoch is this small.
const epochThreshold = 1_000_000_000

// ParseBudget reads a rate-limit budget from response headers, host-neutral:
// X-RateLimit-Limit/Remaining/Reset (GitHub, Gitea, Azure DevOps) or
// RateLimit-Limit/Remaining/Reset and RateLimit-ResetTime (GitLab). A reset is accepted as
// epoch seconds or, when small, as seconds from now. ok is false when the headers carry no
// remaining count.
func ParseBudget(h http.Header, now time.Time) (b forge.Budget, ok bool) {
	remaining, ok := headerInt(h, "X-RateLimit-Remaining", "RateLimit-Remaining")
	if !ok {
		return forge.Budget{}, false
	}
	b.Remaining = remaining
	b.Limit, _ = headerInt(h, "X-RateLimit-Limit", "RateLimit-Limit")
	if v := firstHeader(h, "X-RateLimit-Reset", "RateLimit-Reset"); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
			if f >= epochThreshold {
				b.Reset = time.Unix(int64(f), 0)
			} else {
				b.Reset = now.Add(time.Duration(f * float64(time.Second))).Truncate(time.Second)
			}
		}
	}
	if b.Reset.IsZero() {
		if t, err := http.ParseTime(h.Get("RateLimit-ResetTime")); err == nil {
			b.Reset = t
		}
	}
	return b, true
}

// ParseRetryAfter reads a Retry-After header: delay seconds or an HTTP date. ok is false when
// the header is absent or unreadable. A date in the past gives zero.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// primaryResource reports whether a response's budget is the host's main one. GitHub keeps
// separate budgets (search, graphql, code_search) and names them in X-RateLimit-Resource;
// a spent search budget must not stop the listing calls.
func primaryResource(h http.Header) bool {
	r := strings.ToLower(h.Get("X-RateLimit-Resource"))
	return r == "" || r == "core"
}

func headerInt(h http.Header, names ...string) (int, bool) {
	v := firstHeader(h, names...)
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		// Some hosts send "5000.0".
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			return 0, false
		}
		n = int(f)
	}
	return n, true
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(h.Get(n)); v != "" {
			return v
		}
	}
	return ""
}

// rateLimitHeaders are the response headers a cache hit takes from the fresh 304 rather than
// from the stored response.
var rateLimitHeaders = []string{
	"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Used", "X-RateLimit-Resource",
	"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-ResetTime", "RateLimit-Observed",
	"Retry-After", "Date",
}
