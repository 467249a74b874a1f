package ingest

import (
	"bufio"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// parseHeader reads a raw request's header block as the listener's server does.
func parseHeader(t *testing.T, raw string) *fasthttp.RequestHeader {
	t.Helper()
	var rh fasthttp.RequestHeader
	if err := rh.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return &rh
}

func TestHeaderCopiesAllButHost(t *testing.T) {
	var names headerNames
	long := strings.Repeat("v", 3000) // past the copy's stack buffer
	h := names.header(parseHeader(t, "POST /webhooks/github HTTP/1.1\r\n"+
		"Host: forgeway.example\r\n"+
		"x-github-event: push\r\n"+
		"X-Request-Id: r1\r\n"+
		"Content-Type: application/json\r\n"+
		"X-Request-Id: r2\r\n"+
		"X-Empty:\r\n"+
		"X-Long: "+long+"\r\n"+
		"X-Hub-Signature-256: sha256=abc\r\n\r\n"))
	want := http.Header{
		"X-Github-Event":      {"push"}, // canonical, as net/http gives it
		"X-Request-Id":        {"r1", "r2"},
		"Content-Type":        {"application/json"},
		"X-Empty":             {""},
		"X-Long":              {long},
		"X-Hub-Signature-256": {"sha256=abc"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("header = %q\nwant %q", h, want)
	}
	// A repeated name appended to its own copy: the value after it is intact.
	if got := h.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q after a repeated X-Request-Id", got)
	}
}

func TestHeaderNamesAreKeptOnceAndBounded(t *testing.T) {
	var names headerNames
	raw := "POST /webhooks/github HTTP/1.1\r\nHost: h\r\nX-Github-Delivery: %d\r\n\r\n"
	first := names.header(parseHeader(t, fmt.Sprintf(raw, 1)))
	second := names.header(parseHeader(t, fmt.Sprintf(raw, 2)))
	key := func(h http.Header) string {
		for k := range h {
			return k
		}
		return ""
	}
	if a, b := key(first), key(second); a != "X-Github-Delivery" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Errorf("the name of two deliveries' header is not one string: %q at %p, %q at %p", a, unsafe.StringData(a), b, unsafe.StringData(b))
	}
	if second.Get("X-Github-Delivery") != "2" {
		t.Errorf("second delivery's value = %q", second.Get("X-Github-Delivery"))
	}
	for i := range 2 * maxHeaderNames {
		name := fmt.Sprintf("X-Random-%d", i)
		if got := names.name([]byte(name)); got != name {
			t.Fatalf("name(%q) = %q", name, got)
		}
	}
	if n := len(*names.m.Load()); n != maxHeaderNames {
		t.Errorf("%d names kept, want the bound %d", n, maxHeaderNames)
	}
}
