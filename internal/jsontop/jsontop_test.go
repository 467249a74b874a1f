package jsontop

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
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
