// Package jsontop reads JSON documents without decoding what is not needed. Webhook ingest
// must validate a whole body (a malformed one is refused) but needs only a few of its
// top-level fields to file it: Members validates the document and picks them in one pass of
// a hand-written scanner that accepts exactly what encoding/json.Valid accepts (a fuzz test
// holds it to that) at several times its speed. Processing decodes a payload into the Go
// type of what its mapping reads: Shape validates the document the same way and hands
// encoding/json only the members that type names (shape.go).
package jsontop

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
)

// ErrNotObject is returned for valid JSON that is not an object.
var ErrNotObject = errors.New("the payload is not a JSON object")

// maxDepth bounds nesting as encoding/json does (it refuses documents nested deeper than
// 10,000), so that a hostile body cannot exhaust the stack.
const maxDepth = 10000

// Members validates doc and returns the raw values of the wanted top-level members (absent
// ones are nil; a repeated member keeps its last value, as encoding/json does). A document
// that does not start as an object gives ErrNotObject; an invalid object gives
// encoding/json's own error.
func Members(doc []byte, want ...string) ([][]byte, error) {
	if i := skipSpace(doc, 0); i >= len(doc) || doc[i] != '{' {
		return nil, ErrNotObject // whatever else it is, it is not an object
	}
	out := make([][]byte, len(want))
	if !scanTop(doc, want, out) {
		var v any
		err := json.Unmarshal(doc, &v) // only to explain what is wrong
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return nil, err
	}
	return out, nil
}

// Valid reports whether doc is one valid JSON value, as encoding/json.Valid does.
func Valid(doc []byte) bool {
	end, ok := scanValue(doc, skipSpace(doc, 0), 0)
	return ok && skipSpace(doc, end) == len(doc)
}

// scanTop validates doc, an object, filling out with the wanted members' values.
func scanTop(doc []byte, want []string, out [][]byte) bool {
	i := skipSpace(doc, 0) + 1 // past '{'
	i = skipSpace(doc, i)
	if i < len(doc) && doc[i] == '}' {
		return skipSpace(doc, i+1) == len(doc)
	}
	for {
		if i >= len(doc) || doc[i] != '"' {
			return false
		}
		keyStart := i
		keyEnd, ok := scanString(doc, i)
		if !ok {
			return false
		}
		i = skipSpace(doc, keyEnd)
		if i >= len(doc) || doc[i] != ':' {
			return false
		}
		start := skipSpace(doc, i+1)
		end, ok := scanValue(doc, start, 1)
		if !ok {
			return false
		}
		if len(want) > 0 {
			match(keyOf(doc[keyStart:keyEnd]), want, out, doc[start:end])
		}
		i = skipSpace(doc, end)
		if i >= len(doc) {
			return false
		}
		switch doc[i] {
		case ',':
			i = skipSpace(doc, i+1)
		case '}':
			return skipSpace(doc, i+1) == len(doc)
		default:
			return false
		}
	}
}

// Pick is Members for a document already known to be valid JSON (a member Members returned):
// it does not validate again.
func Pick(doc []byte, want ...string) ([][]byte, error) {
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return nil, ErrNotObject
	}
	out := make([][]byte, len(want))
	i = skipSpace(doc, i+1)
	for i < len(doc) && doc[i] != '}' {
		keyEnd := skipString(doc, i)
		key := keyOf(doc[i:keyEnd])
		i = skipSpace(doc, keyEnd)
		i = skipSpace(doc, i+1) // ':'
		valEnd := skipValue(doc, i)
		match(key, want, out, doc[i:valEnd])
		i = skipSpace(doc, valEnd)
		if i < len(doc) && doc[i] == ',' {
			i = skipSpace(doc, i+1)
		}
	}
	return out, nil
}

// keyOf returns a quoted member name's text, unescaped when it holds escapes.
func keyOf(quoted []byte) []byte {
	key := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(key, '\\') >= 0 {
		var k string
		if err := json.Unmarshal(quoted, &k); err == nil {
			return []byte(k)
		}
	}
	return key
}

// match stores val in out for every wanted name equal to key.
func match(key []byte, want []string, out [][]byte, val []byte) {
	for n, w := range want {
		if string(key) == w {
			out[n] = val
		}
	}
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && isSpace[doc[i]] {
		i++
	}
	return i
}

// Eight copies of a byte, for the word-at-a-time loops.
const (
	ones      = 0x0101010101010101
	highs     = 0x8080808080808080
	spaces    = 0x20 * ones
	quotes    = '"' * ones
	backslash = '\\' * ones
)

// notPlain marks, in a byte's high bit, the bytes of w (little-endian) that are not plain: a
// '"', a '\\' or a control character. The lowest mark is exact, which is all its callers
// read; marks above it may not be (a borrow can mark a byte above a match, never below one).
func notPlain(w uint64) uint64 {
	q, b := w^quotes, w^backslash
	return ((q-ones)&^q | (b-ones)&^b | (w-spaces)&^w) & highs
}

// isSpace marks JSON's four whitespace bytes.
var isSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// plain marks the bytes a string may hold without a closer look: not '"', not '\\', not a
// control character. (encoding/json does not check UTF-8 either: Valid accepts any bytes
// from 0x20 up.)
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// isHex marks hexadecimal digits.
var isHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdefABCDEF" {
		t[c] = true
	}
	return t
}()

// scanString validates the string starting at doc[i] (a '"') and returns the index after it.
func scanString(doc []byte, i int) (int, bool) {
	j := i + 1
	for {
		// The loop every byte of a payload's text goes through: eight at a time, to the
		// first byte that is not plain.
		for j+8 <= len(doc) {
			if m := notPlain(binary.LittleEndian.Uint64(doc[j:])); m != 0 {
				j += bits.TrailingZeros64(m) / 8
				break
			}
			j += 8
		}
		for j < len(doc) && plain[doc[j]] {
			j++
		}
		if j >= len(doc) {
			return 0, false
		}
		switch doc[j] {
		case '"':
			return j + 1, true
		case '\\':
			if j+1 >= len(doc) {
				return 0, false
			}
			switch doc[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(doc) || !isHex[doc[j+2]] || !isHex[doc[j+3]] || !isHex[doc[j+4]] || !isHex[doc[j+5]] {
					return 0, false
				}
				j += 6
			default:
				return 0, false
			}
		default: // a control character
			return 0, false
		}
	}
}

// scanValue validates the value starting at doc[i] and returns the index after it; depth is
// the number of arrays and objects it is inside.
func scanValue(doc []byte, i, depth int) (int, bool) {
	if i >= len(doc) {
		return 0, false
	}
	switch c := doc[i]; {
	case c == '"':
		return scanString(doc, i)
	case c == '{':
		return scanObject(doc, i, depth+1)
	case c == '[':
		return scanArray(doc, i, depth+1)
	case c == 't':
		return literal(doc, i, "true")
	case c == 'f':
		return literal(doc, i, "false")
	case c == 'n':
		return literal(doc, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return scanNumber(doc, i)
	}
	return 0, false
}

func literal(doc []byte, i int, lit string) (int, bool) {
	if len(doc)-i < len(lit) || string(doc[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

func scanObject(doc []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return 0, false
	}
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(doc) || doc[i] != '"' {
			return 0, false
		}
		end, ok := scanString(doc, i)
		if !ok {
			return 0, false
		}
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return 0, false
		}
		if i, ok = scanValue(doc, skipSpace(doc, i+1), depth); !ok {
			return 0, false
		}
		i = skipSpace(doc, i)
		if i >= len(doc) {
			return 0, false
		}
		switch doc[i] {
		case ',':
			i = skipSpace(doc, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

func scanArray(doc []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return 0, false
	}
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = scanValue(doc, i, depth); !ok {
			return 0, false
		}
		i = skipSpace(doc, i)
		if i >= len(doc) {
			return 0, false
		}
		switch doc[i] {
		case ',':
			i = skipSpace(doc, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// scanNumber validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(doc []byte, i int) (int, bool) {
	if doc[i] == '-' {
		i++
	}
	switch {
	case i >= len(doc):
		return 0, false
	case doc[i] == '0':
		i++
	case doc[i] >= '1' && doc[i] <= '9':
		i = digits(doc, i+1)
	default:
		return 0, false
	}
	if i < len(doc) && doc[i] == '.' {
		j := digits(doc, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(doc) && (doc[i] == 'e' || doc[i] == 'E') {
		i++
		if i < len(doc) && (doc[i] == '+' || doc[i] == '-') {
			i++
		}
		j := digits(doc, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func digits(doc []byte, i int) int {
	for i < len(doc) && doc[i] >= '0' && doc[i] <= '9' {
		i++
	}
	return i
}

// skipString returns the index after the string starting at doc[i] (a '"'), in a valid
// document.
func skipString(doc []byte, i int) int {
	for j := i + 1; j < len(doc); j++ {
		switch doc[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(doc)
}

// skipValue returns the index after the value starting at doc[i], in a valid document.
func skipValue(doc []byte, i int) int {
	switch doc[i] {
	case '"':
		return skipString(doc, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(doc); j++ {
			switch doc[j] {
			case '"':
				j = skipString(doc, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(doc)
	}
	j := i
	for j < len(doc) && doc[j] != ',' && doc[j] != '}' && doc[j] != ']' && !isSpace[doc[j]] {
		j++
	}
	return j
}
