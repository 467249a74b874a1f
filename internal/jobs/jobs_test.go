package jobs

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		base    time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{10, 512 * time.Second}, {12, 2048 * time.Second}, {13, time.Hour}, {100, time.Hour}, {1 << 30, time.Hour},
	} {
		lo, hi := time.Duration(float64(tc.base)*0.75), time.Duration(float64(tc.base)*1.25)
		seen := map[time.Duration]bool{}
		for range 200 {
			d := Backoff(tc.attempt)
			if d < lo || d > hi {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", tc.attempt, d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 100 {
			t.Errorf("Backoff(%d) gave only %d distinct values in 200: no jitter", tc.attempt, len(seen))
		}
	}
}

func TestTruncateError(t *testing.T) {
	short := "host said 502"
	if got := truncateError(short); got != short {
		t.Errorf("short error changed: %q", got)
	}
	long := strings.Repeat("é", 3000) // 2 bytes each
	got := truncateError(long)
	if len(got) > maxLastError || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("truncated to %d bytes, valid=%v", len(got), utf8.ValidString(got))
	}
}

func TestClassify(t *testing.T) {
	now := utc("2026-01-01T00:00:00Z")
	fixed := func(int) time.Duration { return time.Minute }
	at := now.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		err     error
		attempt int
		kindMax int
		dead    bool
		retryAt time.Time
	}{
		{"plain", errors.New("x"), 1, 0, false, now.Add(time.Minute)},
		{"permanent", Permanent(errors.New("x")), 1, 0, true, now.Add(time.Minute)},
		{"wrapped permanent", fmt.Errorf("sync: %w", Permanent(errors.New("gone"))), 1, 0, true, now.Add(time.Minute)},
		{"retry at", RetryAt(at, errors.New("rate limited")), 1, 0, false, at},
		{"kind max reached", errors.New("x"), 3, 3, true, now.Add(time.Minute)},
		{"kind max not reached", errors.New("x"), 2, 3, false, now.Add(time.Minute)},
	} {
		f := classify(tc.err, tc.attempt, tc.kindMax, now, fixed)
		if f.dead != tc.dead || !f.retryAt.Equal(tc.retryAt) || f.msg != tc.err.Error() {
			t.Errorf("%s: %+v, want dead=%v retryAt=%v", tc.name, f, tc.dead, tc.retryAt)
		}
	}
	if Permanent(nil) != nil || RetryAt(now, nil) != nil {
		t.Error("wrapping a nil error must give nil")
	}
	base := errors.New("base")
	if !errors.Is(Permanent(base), base) || !errors.Is(RetryAt(now, base), base) {
		t.Error("wrappers must unwrap to the error")
	}
}
