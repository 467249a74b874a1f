package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestKeepHeadersDropsCredentials(t *testing.T) {
	h := http.Header{
		"Authorization":          {"Basic dXNlcjpwYXNz"},
		"Proxy-Authorization":    {"Bearer x"},
		"Cookie":                 {"session=1"},
		"X-Gitlab-Token":         {"glpat"},
		"X-Hook-SECRET":          {"s"},
		"x-password-hint":        {"p"},
		"authorization":          {"lower-case, as a non-canonical map may hold it"},
		"X-Github-Event":         {"push"},
		"X-Hub-Signature-256":    {"sha256=abc"},
		"Content-Type":           {"application/json"},
		"X-Gitlab-Event-Uuid":    {"u"},
		"X-Tok":                  {"kept: not the word token"},
		"X-Request-Id":           {"r1", "r2"},
		"X-Event-Key":            {"repo:refs_changed"},
		"X-Gitlab-Instance":      {"https://gitlab.example.com"},
		"X-Atlassian-Webhook-Id": {"x"},
	}
	got := keepHeaders(h)
	var kept []string
	for k := range got {
		kept = append(kept, k)
	}
	slices.Sort(kept)
	want := []string{"Content-Type", "X-Atlassian-Webhook-Id", "X-Event-Key", "X-Github-Event", "X-Gitlab-Event-Uuid",
		"X-Gitlab-Instance", "X-Hub-Signature-256", "X-Request-Id", "X-Tok"}
	if !slices.Equal(kept, want) {
		t.Errorf("kept %v\nwant %v", kept, want)
	}
	if !slices.Equal(got["X-Request-Id"], []string{"r1", "r2"}) {
		t.Errorf("values of a kept header: %v", got["X-Request-Id"])
	}
}

func TestWriteAcceptedIsEncodingJSON(t *testing.T) {
	for _, a := range []Accepted{
		{DeliveryID: "dlv_01JDXYZ0ABCDEFGHJKMNPQRSTV", Duplicate: false},
		{DeliveryID: "dlv_x-y_z", Duplicate: true},
		{DeliveryID: `odd"<id>`, Duplicate: true},
		{DeliveryID: strings.Repeat("a", 100)},
	} {
		rec := httptest.NewRecorder()
		writeAccepted(rec, a)
		var want bytes.Buffer
		_ = json.NewEncoder(&want).Encode(a)
		if rec.Code != http.StatusAccepted || rec.Body.String() != want.String() || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%+v: %d %q %q, want 202 %q application/json", a, rec.Code, rec.Body, rec.Header().Get("Content-Type"), want.String())
		}
	}
}

func TestKeepHeadersWithoutCredentialsKeepsAll(t *testing.T) {
	h := http.Header{"X-Github-Event": {"push"}, "Content-Type": {"application/json"}, "X-Tok": {"t"}}
	got := keepHeaders(h)
	if len(got) != len(h) {
		t.Fatalf("kept %v, want every header of %v", got, h)
	}
	for k, v := range h {
		if !slices.Equal(got[k], v) {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
}

// TestWriteAcceptedOverHTTP checks the answer as a client gets it from net/http, which adds
// the Content-Length writeAccepted leaves to it.
func TestWriteAcceptedOverHTTP(t *testing.T) {
	a := Accepted{DeliveryID: "dlv_01JDXYZ0ABCDEFGHJKMNPQRSTV"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeAccepted(w, a) }))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var want bytes.Buffer
	_ = json.NewEncoder(&want).Encode(a)
	body := new(bytes.Buffer)
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted || resp.ContentLength != int64(want.Len()) || body.String() != want.String() ||
		resp.Header.Get("Content-Type") != "application/json" || len(resp.TransferEncoding) != 0 {
		t.Errorf("got %d, length %d, %q, %q, %v; want 202, length %d, %q, application/json, not chunked",
			resp.StatusCode, resp.ContentLength, body, resp.Header.Get("Content-Type"), resp.TransferEncoding, want.Len(), want.String())
	}
}

// TestContainsFoldAsEqualFoldWindows holds containsFold's first-letter shortcut to the plain
// scan of EqualFold windows it replaced, on ASCII and non-ASCII names alike.
func TestContainsFoldAsEqualFoldWindows(t *testing.T) {
	plain := func(s, sub string) bool {
		for i := 0; i+len(sub) <= len(s); i++ {
			if strings.EqualFold(s[i:i+len(sub)], sub) {
				return true
			}
		}
		return false
	}
	names := []string{"", "t", "token", "X-Gitlab-Token", "X-TOKEN-Y", "tokenx", "xtoke", "To\u212aen", "\u017fecret",
		"X-Hook-SECRET", "x-password-hint", "PassWord", "Tok", "tokeN", "\xfftoken", "t\x00ken", "T\x20OKEN", "sECRET!"}
	for _, s := range names {
		for _, sub := range []string{"token", "secret", "password"} {
			if got, want := containsFold(s, sub), plain(s, sub); got != want {
				t.Errorf("containsFold(%q, %q) = %v, want %v", s, sub, got, want)
			}
		}
	}
}

// The webhook listener's body reader fails past the limit as http.MaxBytesReader does, so
// the handler answers 413 whichever listener read the body.
func TestLimitedBytesIsMaxBytesReader(t *testing.T) {
	body := []byte(strings.Repeat("x", 100))
	for _, limit := range []int64{0, 99, 100, 101} {
		fast, fastErr := readBody(&limitedBytes{b: body, limit: limit}, int64(len(body)), nil)
		std, stdErr := readBody(http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(bytes.NewReader(body)), limit), int64(len(body)), nil)
		var fm, sm *http.MaxBytesError
		if errors.As(fastErr, &fm) != errors.As(stdErr, &sm) || (fastErr == nil) != (stdErr == nil) {
			t.Errorf("limit %d: error %v, net/http's %v", limit, fastErr, stdErr)
		}
		if fastErr == nil && !bytes.Equal(fast, std) {
			t.Errorf("limit %d: read %d bytes, net/http's %d", limit, len(fast), len(std))
		}
	}
}
