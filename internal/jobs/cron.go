package jobs

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed schedule: a 5-field cron expression or a macro. Times are evaluated
// in UTC, so that every replica agrees on the slots whatever its local zone. The zero
// Schedule never fires; get one from ParseSchedule.
type Schedule struct {
	spec  string
	every time.Duration // @every: slots are the multiples of every since the zero time

	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	// domStar and dowStar record a day field starting with "*": as in Vixie cron, when both
	// day fields are restricted a day matching either runs; otherwise both must match.
	domStar, dowStar bool
}

// cronField describes one of the five fields.
type cronField struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
	dayNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
)

// The five fields, in order. Day of week accepts 7 for Sunday.
var cronFields = [5]cronField{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day-of-month", 1, 31, nil},
	{"month", 1, 12, monthNames},
	{"day-of-week", 0, 7, dayNames},
}

var macros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// ParseSchedule parses a schedule: five fields (minute hour day-of-month month day-of-week)
// each `*`, a value, a range `1-5`, a step `*/15`, `1-30/5` or `5/15` (from 5 to the end),
// or a comma-separated list of those; months and days of week may be given by their
// three-letter English names. Macros: @yearly, @annually, @monthly, @weekly, @daily,
// @midnight, @hourly and `@every <duration>` (whole seconds, at least 1s). An error names the
// bad field.
func ParseSchedule(spec string) (Schedule, error) {
	s := Schedule{spec: spec}
	text := strings.TrimSpace(spec)
	if rest, ok := strings.CutPrefix(text, "@every"); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		switch {
		case err != nil || strings.TrimSpace(rest) == "":
			return Schedule{}, fmt.Errorf("schedule %q: @every needs a duration such as 10m or 1h30m", spec)
		case d < time.Second || d%time.Second != 0:
			return Schedule{}, fmt.Errorf("schedule %q: @every needs a whole number of seconds, at least 1s", spec)
		}
		s.every = d
		return s, nil
	}
	if strings.HasPrefix(text, "@") {
		m, ok := macros[strings.ToLower(text)]
		if !ok {
			return Schedule{}, fmt.Errorf("schedule %q: unknown macro (known: @yearly, @monthly, @weekly, @daily, @hourly, @every <duration>)", spec)
		}
		text = m
	}
	fields := strings.Fields(text)
	if len(fields) != 5 {
		return Schedule{}, fmt.Errorf("schedule %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", spec, len(fields))
	}
	sets := [5]*uint64{&s.minute, &s.hour, &s.dom, &s.month, &s.dow}
	for i, f := range fields {
		set, err := parseField(f, cronFields[i])
		if err != nil {
			return Schedule{}, fmt.Errorf("schedule %q: %s field %q: %w", spec, cronFields[i].name, f, err)
		}
		*sets[i] = set
	}
	if s.dow&(1<<7) != 0 { // 7 is Sunday too
		s.dow = s.dow&^(1<<7) | 1
	}
	s.domStar = strings.HasPrefix(fields[2], "*")
	s.dowStar = strings.HasPrefix(fields[4], "*")
	return s, nil
}

// ValidateSchedule reports whether spec is a valid schedule that fires at least once (a
// schedule for 30 February never does).
func ValidateSchedule(spec string) error {
	s, err := ParseSchedule(spec)
	if err != nil {
		return err
	}
	if s.Next(time.Now()).IsZero() {
		return fmt.Errorf("schedule %q never fires: no date matches its day and month", spec)
	}
	return nil
}

// parseField parses one comma-separated field into a bit set.
func parseField(f string, fd cronField) (uint64, error) {
	var set uint64
	for part := range strings.SplitSeq(f, ",") {
		if part == "" {
			return 0, errors.New("empty list element")
		}
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("step %q is not a positive number", stepText)
			}
			step = n
		}
		lo, hi := fd.min, fd.max
		switch {
		case rng == "*":
			if fd.name == "day-of-week" {
				hi = 6 // 7 would repeat Sunday
			}
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = fieldValue(a, fd); err != nil {
				return 0, err
			}
			if hi, err = fieldValue(b, fd); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			v, err := fieldValue(rng, fd)
			if err != nil {
				return 0, err
			}
			lo, hi = v, v
			if hasStep { // "5/15": from 5 to the end of the range
				hi = fd.max
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

// fieldValue parses a number or a name within the field's range.
func fieldValue(s string, fd cronField) (int, error) {
	if v, ok := fd.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < fd.min || v > fd.max {
		return 0, fmt.Errorf("value %d out of range %d-%d", v, fd.min, fd.max)
	}
	return v, nil
}

// String returns the spec the schedule was parsed from.
func (s Schedule) String() string { return s.spec }

// Next returns the first slot strictly after after, in UTC, or the zero time when the
// schedule never fires (searching up to nine years ahead, which covers 29 February).
func (s Schedule) Next(after time.Time) time.Time {
	after = after.UTC()
	if s.every > 0 {
		return after.Truncate(s.every).Add(s.every)
	}
	t := after.Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(9, 0, 0)
	for t.Before(limit) {
		switch {
		case s.month&(1<<uint(t.Month())) == 0:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !s.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
		case s.hour&(1<<uint(t.Hour())) == 0:
			t = t.Truncate(time.Hour).Add(time.Hour)
		case s.minute&(1<<uint(t.Minute())) == 0:
			// Jump to the next matching minute of this hour, or the next hour.
			rest := s.minute >> uint(t.Minute()+1)
			if rest == 0 {
				t = t.Truncate(time.Hour).Add(time.Hour)
			} else {
				t = t.Add(time.Duration(bits.TrailingZeros64(rest)+1) * time.Minute)
			}
		default:
			return t
		}
	}
	return time.Time{}
}

func (s Schedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// latest returns the last slot at or before now, or the zero time when there is none in
// the search range. It widens its look-back window until a slot falls in it, so that it
// costs a few periods' worth of Next calls, not one per slot since the schedule began.
func (s Schedule) latest(now time.Time) time.Time {
	now = now.UTC()
	for window := time.Minute; window <= 10*366*24*time.Hour; window *= 2 {
		slot := s.Next(now.Add(-window))
		if slot.IsZero() || slot.After(now) {
			continue
		}
		for {
			n := s.Next(slot)
			if n.IsZero() || n.After(now) {
				return slot
			}
			slot = n
		}
	}
	return time.Time{}
}
