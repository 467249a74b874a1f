package jsontop

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
)

// Shape is what encoding/json reads of a document when it decodes into one Go type: the
// members of each object that name a field of the struct it goes into (matched as
// encoding/json matches them, exactly or case-insensitively), down through nested structs,
// pointers, slices and arrays. Shape.Unmarshal drops every other member before handing the
// document to encoding/json, which otherwise reads, and checks twice, every byte of members
// it then ignores: a GitHub push is 7 KB, of which the fields the event mapping reads are
// well under 1 KB, and decoding it was the largest cost of processing a delivery.
//
// A Shape is immutable once made and safe for concurrent use.
type Shape struct {
	object bool
	// byLen holds the members an object keeps, by their names in lower case (ASCII) and
	// indexed by length (names of maxIndexed bytes or more share the last slot); a nil Shape
	// keeps the member's value whole.
	byLen [maxIndexed + 1][]member
	// folded lists the members named with bytes beyond ASCII, which match as bytes.EqualFold
	// says, as encoding/json's do.
	folded []member
	// elem is the shape of an array's elements, when they are structs.
	elem *Shape
}

// member is a member an object keeps.
type member struct {
	name  string
	shape *Shape
}

const maxIndexed = 32

// ShapeOf returns the shape of what encoding/json decodes into a value of type t (a nil
// Shape, which keeps everything, when t is not a struct, or a pointer, slice or array of
// them).
func ShapeOf(t reflect.Type) *Shape {
	return shapeOf(t, map[reflect.Type]*Shape{})
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// shapeOf is ShapeOf; seen holds the shapes being made, for types that contain themselves.
func shapeOf(t reflect.Type, seen map[reflect.Type]*Shape) *Shape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) ||
		t.Implements(textUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return nil // decoded by its own method, which may read anything
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil // []byte: base64 text
		}
		el := shapeOf(t.Elem(), seen)
		if el == nil {
			return nil
		}
		return &Shape{elem: el}
	case reflect.Struct:
		if s, ok := seen[t]; ok {
			return s
		}
		s := &Shape{object: true}
		seen[t] = s
		s.addFields(t, seen)
		return s
	}
	return nil
}

// addFields adds the members a struct's fields read, its embedded structs' promoted fields
// included.
func (s *Shape) addFields(t reflect.Type, seen map[reflect.Type]*Shape) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			s.addFields(ft, seen) // promoted, as encoding/json promotes them
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		var child *Shape
		if !strings.Contains(","+opts+",", ",string,") {
			child = shapeOf(f.Type, seen)
		}
		s.add(name, child)
	}
}

// add keeps the member name with shape child. Fields whose names fold together (differ only
// in case, or by the Kelvin sign) may read one member with different shapes: such a member
// is then kept whole.
func (s *Shape) add(name string, child *Shape) {
	key, own := name, &s.folded
	if isASCII(name) {
		key = strings.ToLower(name)
		own = &s.byLen[min(len(key), maxIndexed)]
	}
	found := false
	for l := range len(s.byLen) + 1 {
		list := &s.folded
		if l < len(s.byLen) {
			list = &s.byLen[l]
		}
		for n := range *list {
			m := &(*list)[n]
			if !strings.EqualFold(m.name, key) {
				continue
			}
			if m.shape != child {
				m.shape, child = nil, nil
			}
			found = found || list == own && m.name == key
		}
	}
	if !found {
		*own = append(*own, member{key, child})
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// lookup returns the shape of the member named key (unescaped) and whether it is kept.
func (s *Shape) lookup(key []byte) (*Shape, bool) {
	var buf [maxIndexed]byte
	lower, ascii := buf[:0], true
	for _, c := range key {
		if c >= 0x80 {
			ascii = false
			break
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower = append(lower, c) // on the stack up to maxIndexed bytes
	}
	if ascii {
		for _, m := range s.byLen[min(len(lower), maxIndexed)] {
			if m.name == string(lower) {
				return m.shape, true
			}
		}
	}
	// Beyond ASCII, names fold as encoding/json folds them: a key with the Kelvin sign
	// matches a field "k", and a field named with it matches the key "k".
	if child, ok := foldMatch(s.folded, key); ok || ascii {
		return child, ok
	}
	for _, list := range s.byLen {
		if child, ok := foldMatch(list, key); ok {
			return child, true
		}
	}
	return nil, false
}

// foldMatch returns the shape of the member of list whose name equals key under Unicode
// case folding.
func foldMatch(list []member, key []byte) (*Shape, bool) {
	for _, m := range list {
		if bytes.EqualFold(key, []byte(m.name)) {
			return m.shape, true
		}
	}
	return nil, false
}

// Unmarshal decodes doc into v, whose type s was made for, as encoding/json.Unmarshal does:
// the same result and, for an invalid document, the same error. It validates doc as it
// prunes it, and only the members s keeps reach encoding/json.
func (s *Shape) Unmarshal(doc []byte, v any) error {
	if s == nil {
		return json.Unmarshal(doc, v)
	}
	pruned, end, ok := s.prune(make([]byte, 0, 1024), doc, skipSpace(doc, 0), 0)
	if !ok || skipSpace(doc, end) != len(doc) {
		return json.Unmarshal(doc, v) // for its error
	}
	return json.Unmarshal(pruned, v)
}

// prune validates the value starting at doc[i], inside depth arrays and objects, appends it to
// dst with only the members s keeps, and returns the index after it; ok is false when the
// value is not valid JSON.
func (s *Shape) prune(dst, doc []byte, i, depth int) (out []byte, end int, ok bool) {
	switch {
	case i >= len(doc):
		return dst, 0, false
	case s != nil && s.object && doc[i] == '{':
		if depth++; depth > maxDepth {
			return dst, 0, false
		}
		dst = append(dst, '{')
		first := true
		if i = skipSpace(doc, i+1); i < len(doc) && doc[i] == '}' {
			return append(dst, '}'), i + 1, true
		}
		for {
			if i >= len(doc) || doc[i] != '"' {
				return dst, 0, false
			}
			keyEnd, ok := scanString(doc, i)
			if !ok {
				return dst, 0, false
			}
			key := doc[i:keyEnd]
			if i = skipSpace(doc, keyEnd); i >= len(doc) || doc[i] != ':' {
				return dst, 0, false
			}
			i = skipSpace(doc, i+1)
			if child, keep := s.lookup(keyOf(key)); keep {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = append(append(dst, key...), ':')
				dst, i, ok = child.prune(dst, doc, i, depth)
			} else {
				i, ok = scanValue(doc, i, depth)
			}
			var closed bool
			if !ok {
				return dst, 0, false
			}
			if i, closed, ok = next(doc, i, '}'); !ok || closed {
				return append(dst, '}'), i, ok
			}
		}
	case s != nil && s.elem != nil && doc[i] == '[':
		if depth++; depth > maxDepth {
			return dst, 0, false
		}
		dst = append(dst, '[')
		if i = skipSpace(doc, i+1); i < len(doc) && doc[i] == ']' {
			return append(dst, ']'), i + 1, true
		}
		for n := 0; ; n++ {
			if n > 0 {
				dst = append(dst, ',')
			}
			var closed bool
			if dst, i, ok = s.elem.prune(dst, doc, i, depth); !ok {
				return dst, 0, false
			}
			if i, closed, ok = next(doc, i, ']'); !ok || closed {
				return append(dst, ']'), i, ok
			}
		}
	}
	// Kept whole: a value of any other type, or one whose kind differs from the Go type's,
	// which encoding/json then reports as it would have.
	if end, ok = scanValue(doc, i, depth); !ok {
		return dst, 0, false
	}
	return append(dst, doc[i:end]...), end, true
}

// next reads what follows a member or an element ending at doc[i]: a comma and the start of
// the next one, or closer and the index after it (closed); ok is false for anything else.
func next(doc []byte, i int, closer byte) (after int, closed, ok bool) {
	if i = skipSpace(doc, i); i < len(doc) {
		switch doc[i] {
		case ',':
			return skipSpace(doc, i+1), false, true
		case closer:
			return i + 1, true, true
		}
	}
	return 0, false, false
}

// Shapes holds the shapes of the types a decoder decodes documents into. It is made once
// and never changes.
type Shapes map[reflect.Type]*Shape

// ShapesOf returns the shapes of types.
func ShapesOf(types ...reflect.Type) Shapes {
	ss := make(Shapes, len(types))
	for _, t := range types {
		ss[t] = ShapeOf(t)
	}
	return ss
}

// Unmarshal decodes doc into v, a pointer, as encoding/json.Unmarshal does, with the shape of
// v's type when ss has it.
func (ss Shapes) Unmarshal(doc []byte, v any) error {
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer {
		return ss[t.Elem()].Unmarshal(doc, v)
	}
	return json.Unmarshal(doc, v)
}
