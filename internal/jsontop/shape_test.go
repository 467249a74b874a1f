package jsontop

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/apicheck"
)

// upper is decoded by its own method, which sees the whole value.
type upper string

func (u *upper) UnmarshalJSON(b []byte) error {
	*u = upper(fmt.Sprintf("<%s>", b))
	return nil
}

type inner struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Tags []string
	Deep *inner `json:"deep"`
}

type Promoted struct {
	Extra string `json:"extra"`
}

type hidden struct {
	Secret string `json:"secret"`
}

// sample has a field of every kind Shape treats on its own.
type sample struct {
	Promoted
	hidden
	Action   string            `json:"action"`
	Repo     *inner            `json:"repository"`
	Commits  []inner           `json:"commits"`
	Pair     [2]inner          `json:"pair"`
	Raw      json.RawMessage   `json:"raw"`
	Custom   upper             `json:"custom"`
	When     time.Time         `json:"when"`
	Labels   map[string]inner  `json:"labels"`
	Any      any               `json:"any"`
	Bytes    []byte            `json:"bytes"`
	Quoted   int64             `json:"quoted,string"`
	Skipped  string            `json:"-"`
	Untagged string            // matched as "Untagged", in any case
	Kelvin   string            `json:"\u212aelvin"` // folds to "kelvin"
	Nested   [][]inner         `json:"nested"`
	Ptrs     []*inner          `json:"ptrs"`
	Headers  map[string]string `json:"headers"`
}

// checkShape decodes doc with Shape.Unmarshal and with encoding/json and fails on any
// difference in the value or the error.
func checkShape(t *testing.T, s *Shape, doc []byte) {
	t.Helper()
	var got, want sample
	err := s.Unmarshal(doc, &got)
	wantErr := json.Unmarshal(doc, &want)
	if fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Fatalf("%q: error %v, encoding/json %v", doc, err, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %+v\nwant %+v", doc, got, want)
	}
}

func TestShapeUnmarshal(t *testing.T) {
	s := ShapeOf(reflect.TypeFor[sample]())
	for _, doc := range []string{
		`{"action":"opened","repository":{"id":1,"name":"r","owner":{"login":"x"},"Tags":["a"],"deep":{"id":2,"junk":[1,2]}},"sender":{"a":1}}`,
		`{"commits":[{"id":1,"url":"u"},{"id":2,"name":"n","x":{}}],"pair":[{"id":3,"y":1},{"id":4}]}`,
		`{"raw":{"keep":[1,{"all":true}]},"custom":{"a":1},"when":"2024-01-02T03:04:05Z"}`,
		`{"labels":{"bug":{"id":1,"other":2}},"any":{"x":[1,"y"]},"bytes":"aGk=","quoted":"42"}`,
		`{"-":"x","Skipped":"y","untagged":"u","UNTAGGED":"v","private":"p","secret":"s","extra":"e"}`,
		`{"kelvin":"k1","\u212aelvin":"k2","KELVIN":"k3"}`,
		`{"ACTION":"a","Action":"b","action":"c","action":"d"}`,
		`{"act\u0069on":"escaped key","repository":{"n\u0061me":"x"}}`,
		`{"nested":[[{"id":1,"z":0}],[],null],"ptrs":[null,{"id":5,"q":1}],"headers":{"A":"b"}}`,
		// Kinds that differ from the Go type's: encoding/json's errors, and its partial results.
		`{"repository":"not an object","action":"still decoded"}`,
		`{"repository":{"id":"x","name":"n"},"commits":{"id":1}}`,
		`{"commits":[1,{"id":2}],"pair":[{"id":1},{"id":2},{"id":3}]}`,
		`{"action":7}`, `{"quoted":"x"}`, `{"repository":null,"commits":null,"pair":null}`,
		// Not objects, and not JSON.
		`[]`, `null`, `"x"`, `7`, ``, `{`, `{"a":1,}`, `{"action":"x"} trailing`, " \t{ \"action\" : \"spaced\" } \n",
		// Deep and wide.
		`{"repository":{"deep":{"deep":{"deep":{"id":9,"w":{"v":[{"u":1}]}}}}}}`,
	} {
		checkShape(t, s, []byte(doc))
	}
}

// TestShapePrunes checks that members no field reads are dropped before encoding/json sees
// the document, and that those kept are copied as they were.
func TestShapePrunes(t *testing.T) {
	s := ShapeOf(reflect.TypeFor[sample]())
	doc := []byte(`{ "action" : "a\"b", "sender":{"login":"x"}, "repository":{"id":1,"owner":{"l":1},"Tags":[ "t" ]}, "commits":[{"id":2,"added":["f"]}] }`)
	got, _, _ := s.prune(nil, doc, skipSpace(doc, 0), 0)
	want := `{"action":"a\"b","repository":{"id":1,"Tags":[ "t" ]},"commits":[{"id":2}]}`
	if string(got) != want {
		t.Fatalf("pruned\n got %s\nwant %s", got, want)
	}
}

// TestShapeOfNonStruct checks that types with nothing to prune keep everything.
func TestShapeOfNonStruct(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[map[string]any](), reflect.TypeFor[[]string](), reflect.TypeFor[json.RawMessage](), reflect.TypeFor[time.Time](), reflect.TypeFor[upper]()} {
		if s := ShapeOf(typ); s != nil {
			t.Errorf("ShapeOf(%v) = %+v, want nil", typ, s)
		}
	}
	var m map[string]any
	if err := (*Shape)(nil).Unmarshal([]byte(`{"a":1}`), &m); err != nil || m["a"] != 1.0 {
		t.Errorf("nil Shape: %v %v", m, err)
	}
}

// FuzzShape holds Shape.Unmarshal to encoding/json.Unmarshal on any input.
func FuzzShape(f *testing.F) {
	for _, s := range []string{
		`{"action":"x","repository":{"id":1,"deep":{"name":"y","q":[1]}},"commits":[{"id":2,"u":3}]}`,
		`{"raw":[1],"custom":"c","labels":{"a":{"id":1}},"quoted":"5","kelvin":"k"}`,
		`{"ACTION":1}`, `[{}]`, `{"pair":[{},{},{}]}`, `{"nested":[[{"id":1}]]}`,
	} {
		f.Add([]byte(s))
	}
	s := ShapeOf(reflect.TypeFor[sample]())
	f.Fuzz(func(t *testing.T, doc []byte) { checkShape(t, s, doc) })
}

// pushPayload reads what the GitHub driver reads of a push, for the benchmarks.
type pushPayload struct {
	Ref        string `json:"ref"`
	Before     string `json:"before"`
	After      string `json:"after"`
	Created    bool   `json:"created"`
	Deleted    bool   `json:"deleted"`
	Repository *struct {
		ID            json.Number `json:"id"`
		FullName      string      `json:"full_name"`
		DefaultBranch string      `json:"default_branch"`
		Private       bool        `json:"private"`
		Owner         *struct {
			Login string `json:"login"`
		} `json:"owner"`
	} `json:"repository"`
	Pusher *struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"pusher"`
}

// BenchmarkUnmarshal decodes a 7 KB push into what an event mapping reads of it, through its
// Shape ("shape") and with encoding/json alone ("encoding-json").
func BenchmarkUnmarshal(b *testing.B) {
	doc := benchDoc(b)
	for _, bc := range []struct {
		name      string
		unmarshal func([]byte, any) error
	}{{"shape", ShapeOf(reflect.TypeFor[pushPayload]()).Unmarshal}, {"encoding-json", json.Unmarshal}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				var p pushPayload
				if err := bc.unmarshal(doc, &p); err != nil || p.Ref == "" {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestShapeCorpus decodes every corpus payload of every host into a generic view of what a
// driver reads (a few members at each level) both ways.
func TestShapeCorpus(t *testing.T) {
	shared, err := apicheck.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(shared, "corpus", "*", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	s := ShapeOf(reflect.TypeFor[pushPayload]())
	for _, path := range files {
		doc, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var got, want pushPayload
		err, wantErr := s.Unmarshal(doc, &got), json.Unmarshal(doc, &want)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v (%v), encoding/json %+v (%v)", path, got, err, want, wantErr)
		}
		checkShape(t, ShapeOf(reflect.TypeFor[sample]()), doc)
	}
}

func TestShapesUnmarshal(t *testing.T) {
	ss := ShapesOf(reflect.TypeFor[sample](), reflect.TypeFor[inner]())
	doc := []byte(`{"id":3,"name":"n","junk":{"a":1},"repository":{"id":4,"x":2}}`)
	var s, wantS sample
	var in, wantIn inner
	var m, wantM map[string]any
	for _, c := range []struct{ got, want any }{{&s, &wantS}, {&in, &wantIn}, {&m, &wantM}} {
		if err := ss.Unmarshal(doc, c.got); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(doc, c.want)
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%T: got %+v, want %+v", c.got, c.got, c.want)
		}
	}
	for _, v := range []any{sample{}, nil} { // what encoding/json refuses, refused alike
		if err, want := ss.Unmarshal(doc, v), json.Unmarshal(doc, v); err == nil || fmt.Sprint(err) != fmt.Sprint(want) {
			t.Errorf("%T: %v, encoding/json %v", v, err, want)
		}
	}
}

// kelvinPair and kelvinPairReversed have two fields whose names fold together but whose types
// read different members; encoding/json gives a key that matches neither exactly to the one
// declared first.
type kelvinPair struct {
	K1 *kelvinA `json:"k"`
	K2 *kelvinB `json:"\u212a"`
}

type kelvinPairReversed struct {
	K2 *kelvinB `json:"\u212a"`
	K1 *kelvinA `json:"k"`
}

type kelvinA struct {
	A int `json:"a"`
}

type kelvinB struct {
	B int `json:"b"`
}

// TestShapeFoldedNamesKeepTheirMember checks that a member two fields may read with different
// shapes reaches encoding/json whole, whichever way the document spells it and whichever
// field comes first.
func TestShapeFoldedNamesKeepTheirMember(t *testing.T) {
	docs := []string{`{"k":{"a":1,"b":2,"c":3}}`, `{"\u212a":{"a":1,"b":2,"c":3}}`, `{"K":{"a":1,"b":2}}`}
	check := func(t *testing.T, typ reflect.Type) {
		s := ShapeOf(typ)
		for _, doc := range docs {
			got, want := reflect.New(typ), reflect.New(typ)
			err, wantErr := s.Unmarshal([]byte(doc), got.Interface()), json.Unmarshal([]byte(doc), want.Interface())
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got.Interface(), want.Interface()) {
				t.Errorf("%v %s: %s (%v), encoding/json %s (%v)", typ, doc, dump(got), err, dump(want), wantErr)
			}
		}
	}
	check(t, reflect.TypeFor[kelvinPair]())
	check(t, reflect.TypeFor[kelvinPairReversed]())
}

func dump(v reflect.Value) string {
	b, _ := json.Marshal(v.Interface())
	return string(b)
}
