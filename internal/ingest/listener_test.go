package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
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

// lockedBuffer is a log sink the listener's goroutines write while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveBareListener serves a webhook listener whose handler has nothing but a logger (what
// it logs is returned), on a loopback port, until stop.
func serveBareListener(t *testing.T, readTimeout time.Duration) (ln net.Listener, logs *lockedBuffer, stop func()) {
	t.Helper()
	logs = &lockedBuffer{}
	h := &Handler{log: slog.New(slog.NewTextHandler(logs, nil))}
	l := h.NewListener(context.Background(), ListenerOptions{MaxBodyBytes: 1 << 20, ReadTimeout: readTimeout})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- l.Serve(ln) }()
	return ln, logs, func() {
		t.Helper()
		if err := l.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-served
	}
}

// TestRefusedRequestEchoesNoHeader sends the webhook listener header blocks it cannot parse,
// holding a GitLab webhook token: fasthttp's own errors quote the block, or the line they
// refused, and neither the answer nor the log may carry the token.
func TestRefusedRequestEchoesNoHeader(t *testing.T) {
	const secret = "glwh-s3cr3t-token-value"
	ln, logs, stop := serveBareListener(t, 5*time.Second)

	var answers []string
	for _, block := range []string{
		"X-Gitlab-Token: " + secret + "\r\nNot a header line\r\n", // the block is quoted
		"X-Gitlab-Token " + secret + "\r\n",                       // the refused line is
	} {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(conn, "POST /webhooks/gitlab/x HTTP/1.1\r\nHost: h\r\n"+block+"\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("answer %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), answer)
		}
		answers = append(answers, string(answer))
	}
	stop()
	for _, a := range answers {
		if strings.Contains(a, secret) || !strings.Contains(a, "missing colon") {
			t.Errorf("the answer quotes the token or says nothing of the error: %s", a)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the log quotes the token: %s", logs.String())
	}
}

// TestTimedOutConnectionGetsNoAnswer holds connections open past the read timeout, one
// that never sends a byte (as a client's spare connection does) and one that stops within
// its header block: each must be closed without an answer, as net/http closes them, since a
// client that takes the first for idle would read an answer as that of its next request.
func TestTimedOutConnectionGetsNoAnswer(t *testing.T) {
	ln, logs, stop := serveBareListener(t, 200*time.Millisecond)
	for name, sent := range map[string]string{
		"nothing":      "",
		"half a block": "POST /webhooks/github/x HTTP/1.1\r\nHost: h\r\nX-GitHub-Eve",
	} {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(conn, sent)
		start := time.Now()
		got, err := io.ReadAll(conn)
		conn.Close()
		if len(got) != 0 {
			t.Errorf("%s sent: the server answered %q", name, got)
		}
		if err != nil || time.Since(start) > 5*time.Second {
			t.Errorf("%s sent: the connection was not closed at the timeout (%v after %v)", name, err, time.Since(start))
		}
	}
	// The listener still serves: a request that is not a webhook gets its answer.
	resp, err := http.Get("http://" + ln.Addr().String() + "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("after the timeouts: %d", resp.StatusCode)
	}
	stop()
	if logs.String() != "" {
		t.Errorf("timeouts were logged: %s", logs.String())
	}
}

func TestCutQuoted(t *testing.T) {
	for in, want := range map[string]string{
		`missing colon: "X-Token s\"e\\c"`: `missing colon: "…"`,
		`a "x" b "y" c`:                    `a "…" b "…" c`,
		`no quotes`:                        `no quotes`,
		`open "rest`:                       `open "…"`,
	} {
		if got := cutQuoted(in); got != want {
			t.Errorf("cutQuoted(%q) = %q, want %q", in, got, want)
		}
	}
}
