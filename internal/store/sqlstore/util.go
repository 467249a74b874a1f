package sqlstore

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

// ID prefixes of the records whose ids the store generates.
const (
	prefixIntegration = "int"
	prefixRepository  = "rep"
	prefixDelivery    = "dlv"
	prefixToken       = "tok"
	prefixProject     = "prj"
)

// Page sizes (store.Page) and event list sizes (store.EventFilter).
const (
	defaultPageLimit  = 50
	maxPageLimit      = 500
	defaultEventLimit = 100
	maxEventLimit     = 1000
)

// ErrBadCursor is returned (wrapped) by the List methods when Page.After is not a cursor one
// of them produced; it is store.ErrBadCursor, which the API answers with 400.
var ErrBadCursor = store.ErrBadCursor

// idEncoding is lowercase base32 without padding, its alphabet in byte order so that ids sort
// as their bytes do: 16 bytes give 26 characters.
var idEncoding = base32.NewEncoding("234567abcdefghijklmnopqrstuvwxyz").WithPadding(base32.NoPadding)

// newID returns "<prefix>_<26 lowercase base32 characters>" of 16 bytes: the time in
// milliseconds (6 bytes, big-endian) and 10 random bytes. Ids made later sort later, so a
// primary-key index grows at its right edge instead of dirtying a random page per insert (a
// group commit of deliveries writes a few index pages, not one per delivery); the random
// part keeps them unguessable and unique.
func newID(prefix string) string {
	return newIDAt(prefix, time.Now())
}

// newIDAt is newID for a record made at t: deliveries take the time they were received, so
// that ordering by id is ordering by that time (to the millisecond) and no index on the time
// itself is needed.
func newIDAt(prefix string, t time.Time) string {
	b := idTime(t)
	// crypto/rand.Read never returns an error (it panics if the system source fails).
	_, _ = rand.Read(b[6:])
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// idFloor returns the smallest id newIDAt(prefix, t') can give for any t' at or after t's
// millisecond: every id below it was made before t.
func idFloor(prefix string, t time.Time) string {
	b := idTime(t)
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// idTime returns an id's 16 bytes with t's millisecond in the first six (big-endian) and
// zeros after.
func idTime(t time.Time) [16]byte {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	return b
}

// micros converts a time to the stored form: microseconds since the epoch, 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of micros; times always come back in UTC.
func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// now is the store's clock, truncated to the stored precision so that a value written and
// the value returned compare equal.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// orNow returns t truncated to microseconds in UTC, or now when t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// toJSON marshals the maps and slices kept in text columns. A nil value is stored as "null"
// so that nil and empty survive a round trip.
func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// fromJSON unmarshals a text column written by toJSON; an empty column means the zero value.
func fromJSON(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

// rawJSON returns a stored JSON document, nil when empty.
func rawJSON(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// pageLimit applies the defaults of store.Page.
func pageLimit(n int) int {
	switch {
	case n <= 0:
		return defaultPageLimit
	case n > maxPageLimit:
		return maxPageLimit
	}
	return n
}

// encodeCursor makes an opaque cursor of the sort key of the last item of a page.
func encodeCursor(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

// decodeCursor parses a cursor made by encodeCursor with n parts.
func decodeCursor(c string, n int) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, ErrBadCursor
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != n {
		return nil, ErrBadCursor
	}
	return parts, nil
}

// likeContains returns a LIKE pattern matching s anywhere, with LIKE's wildcards escaped
// (queries use ESCAPE '\').
func likeContains(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// prefixCols qualifies a comma-separated column list with a table alias ("i.").
func prefixCols(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
