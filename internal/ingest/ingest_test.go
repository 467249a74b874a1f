package ingest

import (
	"bytes"
	"encoding/json"
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
