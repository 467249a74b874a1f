package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/events"
)

func event(seq int) events.CloudEvent {
	return events.CloudEvent{
		SpecVersion: "1.0", ID: fmt.Sprintf("evt_%d", seq), Type: "dev.forgeway.push", Subject: "refs/heads/main",
		Time: fmt.Sprintf("2026-03-04T05:06:0%dZ", seq), ForgewayRepo: "acme/one", Source: "/integrations/int_1",
		Data: json.RawMessage(`{"integration_id":"int_1"}`),
	}
}

func writeSSE(w http.ResponseWriter, seq int) {
	raw, _ := json.Marshal(event(seq))
	fmt.Fprintf(w, "id: %d\nevent: dev.forgeway.push\ndata: %s\n\n", seq, raw)
	w.(http.Flusher).Flush()
}

func TestEventsFollowResumesWithLastEventID(t *testing.T) {
	f := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	conn := 0
	f.on("GET /api/v1/events/stream", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conn++
		n := conn
		mu.Unlock()
		if r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("Accept = %q", r.Header.Get("Accept"))
		}
		if r.URL.Query().Get("type") != "dev.forgeway.push" {
			t.Errorf("connection %d: type filter lost: %s", n, r.URL.RawQuery)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		switch n {
		case 1:
			if r.URL.Query().Get("after") != "0" || r.Header.Get("Last-Event-ID") != "" {
				t.Errorf("first connection: after=%q Last-Event-ID=%q", r.URL.Query().Get("after"), r.Header.Get("Last-Event-ID"))
			}
			fmt.Fprint(w, ": forgeway event stream\n\n")
			writeSSE(w, 1)
			writeSSE(w, 2)
			// The connection drops.
		case 2:
			if _, ok := r.URL.Query()["after"]; ok || r.Header.Get("Last-Event-ID") != "2" {
				t.Errorf("reconnect: query %q, Last-Event-ID %q; want no after and Last-Event-ID 2", r.URL.RawQuery, r.Header.Get("Last-Event-ID"))
			}
			fmt.Fprint(w, ": keepalive\n\n")
			writeSSE(w, 3)
		default:
			if r.Header.Get("Last-Event-ID") != "3" {
				t.Errorf("second reconnect: Last-Event-ID %q, want 3", r.Header.Get("Last-Event-ID"))
			}
			cancel() // the user stops following
			<-r.Context().Done()
		}
	})
	r := runWith(t, f.srv.URL, runOpts{ctx: ctx}, "events", "list", "--follow", "--after", "0", "--type", "dev.forgeway.push")
	wantCode(t, r, 0)
	want := []string{
		"2026-03-04T05:06:01Z  dev.forgeway.push  acme/one  refs/heads/main  evt_1",
		"2026-03-04T05:06:02Z  dev.forgeway.push  acme/one  refs/heads/main  evt_2",
		"2026-03-04T05:06:03Z  dev.forgeway.push  acme/one  refs/heads/main  evt_3",
	}
	if diff := cmp.Diff(want, lines(r.stdout)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if strings.Count(r.stderr, "reconnecting") != 2 {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestEventsStreamJSONLines(t *testing.T) {
	f := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	conn := 0
	f.on("GET /api/v1/events/stream", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conn++
		n := conn
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		if n == 1 {
			writeSSE(w, 1)
			writeSSE(w, 2)
			return
		}
		cancel() // the client read the whole first stream before reconnecting
		<-r.Context().Done()
	})
	r := runWith(t, f.srv.URL, runOpts{ctx: ctx}, "--json", "events", "stream")
	wantCode(t, r, 0)
	ls := lines(r.stdout)
	if len(ls) != 2 {
		t.Fatalf("stdout = %q", r.stdout)
	}
	for i, l := range ls {
		var ce events.CloudEvent
		if err := json.Unmarshal([]byte(l), &ce); err != nil || ce.ID != fmt.Sprintf("evt_%d", i+1) {
			t.Errorf("line %d = %q (%v)", i, l, err)
		}
	}
}

func TestEventsFollowStopsOnRefusal(t *testing.T) {
	f := newFake(t)
	f.on("GET /api/v1/events/stream", func(w http.ResponseWriter, r *http.Request) {
		sendProblem(w, 400, "after must be a cursor returned by this API", "after=x", "")
	})
	r := run(t, f.srv.URL, "events", "stream", "--after", "x")
	wantCode(t, r, 1)
	if r.stderr != "error: after must be a cursor returned by this API: after=x\n" {
		t.Errorf("stderr = %q", r.stderr)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests; a refusal must not be retried", n)
	}
}

func TestEventsFollowFailsWhenNeverConnected(t *testing.T) {
	r := run(t, "http://127.0.0.1:1", "events", "stream")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "not reachable") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestEventsListReadsEveryPage(t *testing.T) {
	f := newFake(t)
	total := 2*eventsPage + 5
	f.on("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		after, _ := strconv.Atoi(q.Get("after"))
		limit, _ := strconv.Atoi(q.Get("limit"))
		if q.Get("repository") != "rep_1" {
			t.Errorf("query = %s", r.URL.RawQuery)
		}
		out := api.List[json.RawMessage]{Items: []json.RawMessage{}, NextCursor: strconv.Itoa(after)}
		for s := after + 1; s <= total && len(out.Items) < limit; s++ {
			raw, _ := json.Marshal(events.CloudEvent{ID: fmt.Sprintf("evt_%d", s), Type: "dev.forgeway.push"})
			out.Items = append(out.Items, raw)
			out.NextCursor = strconv.Itoa(s)
		}
		writeTestJSON(w, 200, out)
	})
	r := run(t, f.srv.URL, "--json", "events", "list", "--repository", "rep_1")
	wantCode(t, r, 0)
	var got api.List[events.CloudEvent]
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Items) != total || got.Items[total-1].ID != fmt.Sprintf("evt_%d", total) || got.NextCursor != strconv.Itoa(total) {
		t.Errorf("got %d events, last cursor %q", len(got.Items), got.NextCursor)
	}
	if n := len(f.requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}

	r = run(t, f.srv.URL, "events", "list", "--repository", "rep_1", "--after", "10", "--limit", "2")
	wantCode(t, r, 0)
	want := []string{
		"TIME  TYPE               REPOSITORY  SUBJECT  ID",
		"-     dev.forgeway.push  -           -        evt_11",
		"-     dev.forgeway.push  -           -        evt_12",
	}
	if diff := cmp.Diff(want, lines(r.stdout)); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	if r.stderr != "Next: --after 12\n" {
		t.Errorf("stderr = %q", r.stderr)
	}

	// Nothing after the end of the log: an empty table and no cursor advice.
	r = run(t, f.srv.URL, "events", "list", "--repository", "rep_1", "--after", strconv.Itoa(total))
	wantCode(t, r, 0)
	if r.stdout != "TIME  TYPE  REPOSITORY  SUBJECT  ID\n" || r.stderr != "" {
		t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
	}
}

func TestReadSSE(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []sseEvent
	}{
		{"comments and keepalives", ": hello\n\n: keepalive\n\n", nil},
		{"one event", "id: 1\nevent: e\ndata: {\"a\":1}\n\n", []sseEvent{{id: "1", event: "e", data: `{"a":1}`}}},
		{"multi-line data and CRLF", "id: 2\r\ndata: a\r\ndata: b\r\n\r\n", []sseEvent{{id: "2", data: "a\nb"}}},
		{"no space after colon", "id:3\ndata:x\n\n", []sseEvent{{id: "3", data: "x"}}},
		{"id without data", "id: 4\n\n", []sseEvent{{id: "4"}}},
		{"unfinished event is dropped", "id: 5\ndata: x\n", nil},
		{"unknown fields ignored", "retry: 100\nfoo: bar\ndata: y\n\n", []sseEvent{{data: "y"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []sseEvent
			lines := 0
			err := readSSE(strings.NewReader(tt.in), func() { lines++ }, func(ev sseEvent) error {
				got = append(got, ev)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(sseEvent{})); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if lines == 0 {
				t.Errorf("onLine never called")
			}
		})
	}
	stop := errors.New("stop")
	err := readSSE(strings.NewReader("data: a\n\ndata: b\n\n"), func() {}, func(sseEvent) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("emit error not returned: %v", err)
	}
}

func TestEventsFollowReconnectsAfterSilence(t *testing.T) {
	f := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	conn := 0
	f.on("GET /api/v1/events/stream", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conn++
		n := conn
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		if n == 1 {
			writeSSE(w, 1)
			<-r.Context().Done() // silent, connection kept open: the client must give up on it
			return
		}
		if r.Header.Get("Last-Event-ID") != "1" {
			t.Errorf("Last-Event-ID = %q", r.Header.Get("Last-Event-ID"))
		}
		cancel()
		<-r.Context().Done()
	})
	vars := map[string]string{"FORGEWAY_URL": f.srv.URL, "FORGEWAY_TOKEN": testToken}
	var out, errOut strings.Builder
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string { return vars[k] },
		httpClient: &http.Client{}, poll: time.Millisecond, reconnect: func(int) time.Duration { return time.Millisecond }, idle: 100 * time.Millisecond}
	if code := e.run(ctx, []string{"events", "stream"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "no data for 100ms") {
		t.Errorf("stderr = %q", errOut.String())
	}
	if !strings.Contains(out.String(), "evt_1") {
		t.Errorf("stdout = %q", out.String())
	}
}
