package jsontop

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/forgeway/forgeway/internal/apicheck"
)

// reference reads the same members with encoding/json.
func reference(doc []byte, want []string) ([][]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, err
	}
	if top == nil {
		return nil, ErrNotObject
	}
	out := make([][]byte, len(want))
	for n, w := range want {
		if v, ok := top[w]; ok {
			out[n] = v
		}
	}
	return out, nil
}

func check(t *testing.T, doc []byte) {
	t.Helper()
	want := []string{"action", "installation", "hook", "é", "a\"b"}
	got, err := Members(doc, want...)
	ref, refErr := reference(doc, want)
	if (err == nil) != (refErr == nil) && !(errors.Is(err, ErrNotObject) && refErr != nil) {
		t.Fatalf("%q: err %v, encoding/json %v", doc, err, refErr)
	}
	if err != nil {
		return
	}
	for n := range want {
		if !bytes.Equal(got[n], ref[n]) {
			t.Fatalf("%q: member %q = %q, encoding/json %q", doc, want[n], got[n], ref[n])
		}
	}
}

func TestMembers(t *testing.T) {
	for _, doc := range []string{
		`{"action":"opened","installation":{"id":42,"x":[1,{"y":"}"}]},"hook":null}`,
		` { "zen" : "a \"quoted\" }" , "action" : "closed" } `,
		`{"action":"a","action":"b"}`,
		`{"\u00e9":1,"a\"b":[true,false]}`,
		`{"hook":{"app_id":7}, "n": -1.5e3, "s": "\\"}`,
		`{}`, `[]`, `null`, `"x"`, `{"a":`, `{"a" 1}`, ``, `{"a":1}x`,
	} {
		check(t, []byte(doc))
	}
	if _, err := Members([]byte(`[1]`), "a"); !errors.Is(err, ErrNotObject) {
		t.Errorf("array: %v", err)
	}
}

func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{"action":"x","installation":{"id":1}}`, `{"a":[{"b":"]"}],"hook":{}}`, `[]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) { check(t, doc) })
}

// FuzzValid holds Valid to encoding/json.Valid on any input.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e-3,-0,true,false,null,"\u00e9\n"]}`, `01`, `1.`, `-`, `"\x01"`, `"\u12"`, `[1,]`, `{"a":1,}`, " \t\n1\r", `"\/"`, "\"\xff\"", `1e+`, `[[[]]]`, `{"":{}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if got, want := Valid(doc), json.Valid(doc); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json.Valid = %v", doc, got, want)
		}
	})
}

func TestValidDepth(t *testing.T) {
	for _, n := range []int{maxDepth, maxDepth + 1} {
		doc := append(bytes.Repeat([]byte("["), n), bytes.Repeat([]byte("]"), n)...)
		if got, want := Valid(doc), json.Valid(doc); got != want {
			t.Errorf("depth %d: Valid = %v, encoding/json.Valid = %v", n, got, want)
		}
	}
}

// BenchmarkMembers reads a 7 KB push delivery's envelope; BenchmarkJSONValid is the
// encoding/json validation it replaced.
func BenchmarkMembers(b *testing.B) {
	doc := benchDoc(b)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := Members(doc, "action", "installation", "hook"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONValid(b *testing.B) {
	doc := benchDoc(b)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if !json.Valid(doc) {
			b.Fatal("invalid")
		}
	}
}

func benchDoc(b *testing.B) []byte {
	shared, err := apicheck.SharedDir()
	if err != nil {
		b.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(shared, "corpus", "github", "push.json"))
	if err != nil {
		b.Fatal(err)
	}
	return doc
}

// TestNotPlainFindsTheFirst holds notPlain's lowest mark to the plain table on words mixing
// plain bytes with every kind of byte that is not.
func TestNotPlainFindsTheFirst(t *testing.T) {
	alphabet := []byte{'a', ' ', 0x7f, 0x80, 0xff, '!', '#', '[', ']', '"', '\\', 0, 0x1f, '\n', 0x21, 0x5b, 0x5d}
	rng := rand.New(rand.NewPCG(1, 2))
	var w [8]byte
	for range 200000 {
		for i := range w {
			w[i] = alphabet[rng.IntN(len(alphabet))]
		}
		first := 8
		for i, c := range w {
			if !plain[c] {
				first = i
				break
			}
		}
		got := 8
		if m := notPlain(binary.LittleEndian.Uint64(w[:])); m != 0 {
			got = bits.TrailingZeros64(m) / 8
		}
		if got != first {
			t.Fatalf("%q: notPlain marks byte %d first, want %d", w, got, first)
		}
	}
}
