package sqlstore

import (
	"encoding/json"
	"strings"
	"testing"
)

// headerCases are the shapes headersJSON must encode as encoding/json does: escapes of every
// kind, invalid UTF-8, nil and empty values, many keys (more than its key array holds).
var headerCases = []map[string][]string{
	nil,
	{},
	{"X-Github-Event": {"push"}, "Content-Type": {"application/json"}, "User-Agent": {"GitHub-Hookshot/abc"}},
	{"A": nil, "B": {}, "C": {""}},
	{"Quote\"Back\\slash": {"<script>&amp;</script>", "tab\tnl\nret\rbs\bff\f", "\x00\x01\x1f\x7f"}},
	{"Utf8": {"héllo wörld ✓ 😀", "line\u2028para\u2029end", "bad\xffbyte\xc3", "\xe2\x82"}},
	func() map[string][]string {
		m := map[string][]string{}
		for i := range 40 {
			m[strings.Repeat("k", i+1)] = []string{strings.Repeat("v", i)}
		}
		return m
	}(),
}

func TestHeadersJSONIsEncodingJSON(t *testing.T) {
	for _, h := range headerCases {
		checkHeadersJSON(t, h)
	}
}

func FuzzHeadersJSON(f *testing.F) {
	f.Add("X-Hub-Signature-256", "sha256=abc", "<&>\u2028\xff")
	f.Fuzz(func(t *testing.T, k, v1, v2 string) {
		checkHeadersJSON(t, map[string][]string{k: {v1, v2}, v1: {k}, "Fixed": nil})
	})
}

func checkHeadersJSON(t *testing.T, h map[string][]string) {
	t.Helper()
	want, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if got := headersJSON(h); got != string(want) {
		t.Errorf("headersJSON(%q)\n got %s\nwant %s", h, got, want)
	}
}
