package jobs

import (
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestScheduleNext(t *testing.T) {
	for _, tc := range []struct {
		spec, after, want string
	}{
		{"*/15 * * * *", "2026-01-01T10:07:30Z", "2026-01-01T10:15:00Z"},
		{"*/15 * * * *", "2026-01-01T10:45:00Z", "2026-01-01T11:00:00Z"},
		{"* * * * *", "2026-01-01T10:07:59Z", "2026-01-01T10:08:00Z"},
		{"0 * * * *", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z"},
		{"30 2 * * *", "2026-01-31T03:00:00Z", "2026-02-01T02:30:00Z"},
		{"0 0 1 * *", "2026-12-15T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"0 9 * * MON-FRI", "2026-01-02T10:00:00Z", "2026-01-05T09:00:00Z"}, // Friday → Monday
		{"0 9 * * 1-5", "2026-01-05T08:59:00Z", "2026-01-05T09:00:00Z"},
		{"0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"0 0 1,15 * 1", "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z"}, // both days restricted: either
		{"0 0 1,15 * 1", "2026-01-12T00:00:00Z", "2026-01-15T00:00:00Z"}, // the 15th is a Thursday
		{"0 0 */2 * 1", "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z"},  // "*" day: both must match
		{"0 0 */2 * 1", "2026-01-05T00:00:00Z", "2026-01-19T00:00:00Z"},  // 12 is even, 19 odd
		{"0 12 * JAN,jul SUN", "2026-02-01T00:00:00Z", "2026-07-05T12:00:00Z"},
		{"0 0 * * 7", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"}, // 7 is Sunday
		{"0 0 * * 5-7", "2026-01-03T01:00:00Z", "2026-01-04T00:00:00Z"},
		{"5/20 * * * *", "2026-01-01T10:26:00Z", "2026-01-01T10:45:00Z"},
		{"10-20/5 8 * * *", "2026-01-01T08:16:00Z", "2026-01-01T08:20:00Z"},
		{"10-20/5 8 * * *", "2026-01-01T08:20:00Z", "2026-01-02T08:10:00Z"},
		{"59 23 31 12 *", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z"},
		{"0 0 31 * *", "2026-02-01T00:00:00Z", "2026-03-31T00:00:00Z"},
		{"@hourly", "2026-01-01T10:59:59Z", "2026-01-01T11:00:00Z"},
		{"@daily", "2026-01-01T10:00:00Z", "2026-01-02T00:00:00Z"},
		{"@midnight", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"},
		{"@weekly", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"},
		{"@monthly", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"},
		{"@yearly", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"@annually", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"@every 10m", "2026-01-01T10:07:00Z", "2026-01-01T10:10:00Z"},
		{"@every 10m", "2026-01-01T10:10:00Z", "2026-01-01T10:20:00Z"},
		{"@every 90s", "2026-01-01T00:00:00Z", "2026-01-01T00:01:30Z"},
		{"@every 1h30m", "2026-01-01T01:00:00Z", "2026-01-01T01:30:00Z"},
		{"  0   3  *  *  *  ", "2026-01-01T00:00:00Z", "2026-01-01T03:00:00Z"},
	} {
		s, err := ParseSchedule(tc.spec)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tc.spec, err)
			continue
		}
		if got := s.Next(utc(tc.after)); !got.Equal(utc(tc.want)) {
			t.Errorf("%q.Next(%s) = %s, want %s", tc.spec, tc.after, got.Format(time.RFC3339), tc.want)
		}
	}
}

func TestScheduleNextIsUTC(t *testing.T) {
	s, err := ParseSchedule("0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	paris := time.FixedZone("CET", 3600)
	after := time.Date(2026, 1, 1, 3, 30, 0, 0, paris) // 02:30 UTC
	got := s.Next(after)
	if got.Location() != time.UTC || !got.Equal(utc("2026-01-01T03:00:00Z")) {
		t.Errorf("Next = %v, want 2026-01-01 03:00 UTC", got)
	}
}

func TestScheduleNeverFires(t *testing.T) {
	s, err := ParseSchedule("0 0 30 2 *")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Next(utc("2026-01-01T00:00:00Z")); !got.IsZero() {
		t.Errorf("30 February fires at %v", got)
	}
	if err := ValidateSchedule("0 0 30 2 *"); err == nil || !strings.Contains(err.Error(), "never fires") {
		t.Errorf("ValidateSchedule(30 February) = %v, want never fires", err)
	}
	if err := ValidateSchedule("*/5 * * * *"); err != nil {
		t.Errorf("ValidateSchedule of a good spec: %v", err)
	}
}

func TestParseScheduleErrors(t *testing.T) {
	for _, tc := range []struct {
		spec, want string
	}{
		{"", "want 5 fields"},
		{"* * * *", "want 5 fields"},
		{"* * * * * *", "want 5 fields"},
		{"60 * * * *", "minute field"},
		{"-1 * * * *", "minute field"},
		{"* 24 * * *", "hour field"},
		{"* * 0 * *", "day-of-month field"},
		{"* * 32 * *", "day-of-month field"},
		{"* * * 13 *", "month field"},
		{"* * * FOO *", "month field"},
		{"* * * * 8", "day-of-week field"},
		{"* * * * MONDAY", "day-of-week field"},
		{"*/0 * * * *", "minute field"},
		{"*/x * * * *", "minute field"},
		{"5-1 * * * *", "minute field"},
		{"1,,2 * * * *", "minute field"},
		{"1-2-3 * * * *", "minute field"},
		{"* * * * FRI-MON", "day-of-week field"},
		{"@every", "@every needs a duration"},
		{"@every soon", "@every needs a duration"},
		{"@every 0s", "at least 1s"},
		{"@every -1m", "at least 1s"},
		{"@every 1500ms", "whole number of seconds"},
		{"@fortnightly", "unknown macro"},
	} {
		_, err := ParseSchedule(tc.spec)
		if err == nil {
			t.Errorf("ParseSchedule(%q) succeeded, want an error about %s", tc.spec, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSchedule(%q) = %q, want it to mention %q", tc.spec, err, tc.want)
		}
		if verr := ValidateSchedule(tc.spec); verr == nil {
			t.Errorf("ValidateSchedule(%q) accepted it", tc.spec)
		}
	}
}

func TestScheduleLatest(t *testing.T) {
	for _, tc := range []struct {
		spec, now, want string
	}{
		{"@every 1m", "2026-01-01T10:07:30Z", "2026-01-01T10:07:00Z"},
		{"@every 1m", "2026-01-01T10:07:00Z", "2026-01-01T10:07:00Z"},
		{"*/15 * * * *", "2026-01-01T10:07:30Z", "2026-01-01T10:00:00Z"},
		{"0 0 1 1 *", "2026-06-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"0 0 29 2 *", "2027-06-01T00:00:00Z", "2024-02-29T00:00:00Z"},
	} {
		s, err := ParseSchedule(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.latest(utc(tc.now)); !got.Equal(utc(tc.want)) {
			t.Errorf("%q.latest(%s) = %s, want %s", tc.spec, tc.now, got.Format(time.RFC3339), tc.want)
		}
	}
}
