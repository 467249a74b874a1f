package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/api"
)

// rawHTTP sends one request as written over a new connection and returns the answer.
func rawHTTP(t *testing.T, base, request string) *http.Response {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	// Written beside the read: a server that refuses a request early answers and closes
	// while the rest of it is still being sent, and the write then fails.
	go func() { _, _ = io.WriteString(conn, request) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func problemType(t *testing.T, resp *http.Response) string {
	t.Helper()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%d answer is %q, not problem+json: %s", resp.StatusCode, ct, raw)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Errorf("problem body %q: %v", raw, err)
	}
	s, _ := p["type"].(string)
	return s[strings.LastIndex(s, "/")+1:]
}

// The webhook listener serves the webhook endpoints and nothing else, refuses what is not a
// delivery with a problem, and stores a delivery as the main listener does: the same headers,
// the same body, chunked or not.
func TestWebhookListener(t *testing.T) {
	e := start(t, engines(t)[0])
	id := e.githubTokenIntegration(nil)
	path := "/webhooks/github/" + id
	ping := corpusFile(t, "github", "ping.json")

	t.Run("only webhooks", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			status       int
			slug         string
		}{
			{"GET", path, http.StatusMethodNotAllowed, "method-not-allowed"},
			{"PUT", "/webhooks/github", http.StatusMethodNotAllowed, "method-not-allowed"},
			{"GET", "/api/v1/integrations", http.StatusNotFound, "not-found"},
			{"POST", "/api/v1/integrations", http.StatusNotFound, "not-found"},
			{"GET", "/metrics", http.StatusNotFound, "not-found"},
			{"POST", "/webhooks/", http.StatusNotFound, "not-found"},
			{"POST", "/webhooks/github/" + id + "/extra", http.StatusNotFound, "not-found"},
			{"POST", "/webhooks/github/", http.StatusNotFound, "not-found"},
		} {
			req, _ := http.NewRequest(c.method, e.WebhookURL+c.path, nil)
			req.Header.Set("Authorization", "Bearer "+e.Token) // an admin token opens nothing here
			resp, err := e.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status {
				t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.status)
			}
			if got := problemType(t, resp); got != c.slug {
				t.Errorf("%s %s: problem %q, want %q", c.method, c.path, got, c.slug)
			}
			if c.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "POST" {
				t.Errorf("%s %s: Allow %q, want POST", c.method, c.path, resp.Header.Get("Allow"))
			}
			resp.Body.Close()
		}
		resp, err := e.HTTP.Get(e.WebhookURL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(raw) != "ok\n" {
			t.Errorf("GET /healthz: %d %q", resp.StatusCode, raw)
		}
	})

	t.Run("refused before the handler", func(t *testing.T) {
		huge := strings.Repeat("x", 20<<10)
		resp := rawHTTP(t, e.WebhookURL, "POST "+path+" HTTP/1.1\r\nHost: x\r\nX-Padding: "+huge+"\r\nContent-Length: 2\r\n\r\n{}")
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || problemType(t, resp) != "headers-too-large" {
			t.Errorf("20 KB header: %d", resp.StatusCode)
		}
		// Chunked, so the size is only known while reading: still 413, and nothing kept.
		chunk := strings.Repeat(" ", 1<<20)
		var b strings.Builder
		b.WriteString("POST " + path + " HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: ping\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range 26 {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(chunk), chunk)
		}
		b.WriteString("0\r\n\r\n")
		resp = rawHTTP(t, e.WebhookURL, b.String())
		if resp.StatusCode != http.StatusRequestEntityTooLarge || problemType(t, resp) != "delivery-too-large" {
			t.Errorf("26 MiB chunked body: %d", resp.StatusCode)
		}
		resp = rawHTTP(t, e.WebhookURL, "NOT HTTP AT ALL\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest || problemType(t, resp) != "bad-request" {
			t.Errorf("garbage: %d", resp.StatusCode)
		}
		if n := len(e.deliveries(id)); n != 0 {
			t.Fatalf("%d deliveries stored after only refused requests", n)
		}
	})

	t.Run("stored as by the main listener", func(t *testing.T) {
		stored := map[string]api.Delivery{}
		for _, l := range e.listeners() {
			status, out := e.postTo(l.url, path, delivery{event: "ping", id: newID(), body: ping, signature: sign(hookSecret, ping),
				extra: map[string]string{"X-Request-Id": "r-1", "x-lower-case-header": "v"}})
			if status != http.StatusAccepted || out["duplicate"] != false {
				t.Fatalf("%s: %d %v", l.name, status, out)
			}
			stored[l.name] = e.waitDelivery(out["delivery_id"].(string))
		}
		m, w := stored["main listener"], stored["webhook listener"]
		keys := func(h map[string][]string) []string {
			var k []string
			for name := range h {
				if name != "X-Github-Delivery" && name != "X-Hub-Signature-256" {
					k = append(k, name+"="+strings.Join(h[name], ","))
				}
			}
			slices.Sort(k)
			return k
		}
		if !slices.Equal(keys(m.Headers), keys(w.Headers)) {
			t.Errorf("stored headers differ:\nmain    %v\nwebhook %v", keys(m.Headers), keys(w.Headers))
		}
		if _, ok := w.Headers["Host"]; ok {
			t.Error("the webhook listener stored the Host header; net/http does not")
		}
		if w.Status != "processed" || len(w.Events) != 1 || !bytes.Equal(compactJSON(t, w.Body), compactJSON(t, ping)) {
			t.Errorf("webhook listener's delivery: %s, %d events", w.Status, len(w.Events))
		}

		// A chunked delivery is read whole, verified and stored byte for byte.
		did := newID()
		var b strings.Builder
		fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: ping\r\nX-GitHub-Delivery: %s\r\nX-Hub-Signature-256: %s\r\nTransfer-Encoding: chunked\r\n\r\n", path, did, sign(hookSecret, ping))
		for rest := ping; len(rest) > 0; {
			n := min(len(rest), 1000)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		b.WriteString("0\r\n\r\n")
		resp := rawHTTP(t, e.WebhookURL, b.String())
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusAccepted || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("chunked delivery: %d %q %v %v", resp.StatusCode, resp.Header.Get("Content-Type"), out, err)
		}
		d := e.waitDelivery(out["delivery_id"].(string))
		if !bytes.Equal(compactJSON(t, d.Body), compactJSON(t, ping)) || d.Headers["X-Github-Delivery"][0] != did {
			t.Errorf("chunked delivery stored as %s, headers %v", d.Body, d.Headers)
		}
	})
}
