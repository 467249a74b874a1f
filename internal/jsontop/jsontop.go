// Package jsontop reads the top-level members of a JSON object without decoding the rest:
// webhook ingest must validate a whole body (a malformed one is refused) but needs only a few
// of its fields to file it. Validation is one json.Valid pass; picking the members from the
// then valid document is a plain byte scan.
package jsontop

import (
	"bytes"
	"encoding/json"
	"errors"
)

// ErrNotObject is returned for valid JSON that is not an object.
var ErrNotObject = errors.New("the payload is not a JSON object")

// Members validates doc and returns the raw values of the wanted top-level members (absent
// ones are nil; a repeated member keeps its last value, as encoding/json does). A document
// that does not start as an object gives ErrNotObject; an invalid object gives
// encoding/json's own error.
func Members(doc []byte, want ...string) ([][]byte, error) {
	if i := skipSpace(doc, 0); i >= len(doc) || doc[i] != '{' {
		return nil, ErrNotObject // whatever else it is, it is not an object
	}
	if !json.Valid(doc) {
		var v any
		err := json.Unmarshal(doc, &v) // only to explain what is wrong
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return nil, err
	}
	return Pick(doc, want...)
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
		quoted := doc[i:keyEnd]
		key := quoted[1 : len(quoted)-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if err := json.Unmarshal(quoted, &k); err == nil {
				key = []byte(k)
			}
		}
		i = skipSpace(doc, keyEnd)
		i = skipSpace(doc, i+1) // ':'
		valEnd := skipValue(doc, i)
		for n, w := range want {
			if string(key) == w {
				out[n] = doc[i:valEnd]
			}
		}
		i = skipSpace(doc, valEnd)
		if i < len(doc) && doc[i] == ',' {
			i = skipSpace(doc, i+1)
		}
	}
	return out, nil
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at doc[i] (a '"').
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
	for j < len(doc) && doc[j] != ',' && doc[j] != '}' && doc[j] != ']' && doc[j] != ' ' && doc[j] != '\t' && doc[j] != '\n' && doc[j] != '\r' {
		j++
	}
	return j
}
