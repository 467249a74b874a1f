package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/events"
)

// eventsPage is how many events a list request asks for (the API's maximum).
const eventsPage = 1000

// maxEventLine bounds one line of the event stream (an event is one data line).
const maxEventLine = 16 << 20

type eventFlags struct {
	after, typ, repository, integration string
	limit                               int
	follow                              bool
}

func (o *eventFlags) register(c *cobra.Command, followFlag bool) {
	fl := c.Flags()
	fl.StringVar(&o.after, "after", "", "start after this cursor (next_cursor of a list, or the id of a streamed event)")
	fl.StringVar(&o.typ, "type", "", "only events of this type, e.g. dev.forgeway.push")
	fl.StringVar(&o.repository, "repository", "", "only events of this repository")
	fl.StringVar(&o.integration, "integration", "", "only events of this integration (required with a project token)")
	if followFlag {
		fl.IntVar(&o.limit, "limit", 0, "fetch at most this many events (default: all)")
		fl.BoolVar(&o.follow, "follow", false, "keep printing new events as they arrive (server-sent events), resuming after interruptions")
	}
}

func (o *eventFlags) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"after": o.after, "type": o.typ, "repository": o.repository, "integration": o.integration} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func (e *env) eventsCommand() *cobra.Command {
	var lo eventFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "Read the event log (from its start, or after --after)",
		Args:  cobra.NoArgs,
	}
	lo.register(list, true)
	list.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		if lo.limit < 0 {
			return usagef("--limit must be positive")
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		if lo.follow {
			if lo.limit > 0 {
				return usagef("--limit and --follow are exclusive")
			}
			return e.follow(ctx, cl, lo.query())
		}
		return e.listEvents(ctx, cl, lo)
	})

	var so eventFlags
	stream := &cobra.Command{
		Use:   "stream",
		Short: "Follow the event log as it grows (same as list --follow)",
		Args:  cobra.NoArgs,
	}
	so.register(stream, false)
	stream.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		return e.follow(ctx, cl, so.query())
	})
	return e.group("events", "The normalized event log: list and follow", list, stream)
}

// listEvents reads the log page after page until it is exhausted (or --limit events).
func (e *env) listEvents(ctx context.Context, cl *client, o eventFlags) error {
	q := o.query()
	size := eventsPage
	if o.limit > 0 {
		size = min(o.limit, eventsPage)
	}
	out := api.List[json.RawMessage]{Items: []json.RawMessage{}, NextCursor: o.after}
	for {
		q.Set("limit", strconv.Itoa(size))
		if out.NextCursor != "" {
			q.Set("after", out.NextCursor)
		}
		var page api.List[json.RawMessage]
		if _, err := cl.get(ctx, "/events", q, &page); err != nil {
			return fmt.Errorf("list events: %w", err)
		}
		out.Items = append(out.Items, page.Items...)
		moved := page.NextCursor != out.NextCursor
		out.NextCursor = page.NextCursor
		if len(page.Items) < size || !moved {
			break
		}
		if o.limit > 0 {
			if len(out.Items) >= o.limit {
				break
			}
			size = min(o.limit-len(out.Items), eventsPage)
		}
	}
	if e.json {
		return printJSON(e.stdout, out)
	}
	t := newTable(e.stdout, "TIME", "TYPE", "REPOSITORY", "SUBJECT", "ID")
	for _, raw := range out.Items {
		t.row(eventCells(raw)...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(out.Items) > 0 && out.NextCursor != "" {
		// Where to pick up next time (e.g. a periodic export).
		fmt.Fprintf(e.stderr, "Next: --after %s\n", out.NextCursor)
	}
	return nil
}

// eventCells are an event's columns: time, type, repository, subject, id.
func eventCells(raw json.RawMessage) []string {
	var ce events.CloudEvent
	if err := json.Unmarshal(raw, &ce); err != nil {
		return []string{"", "(unreadable event)", "", "", ""}
	}
	return []string{ce.Time, ce.Type, ce.ForgewayRepo, ce.Subject, ce.ID}
}

// follow prints the event stream, one line per event, until ctx ends. A dropped connection is
// resumed with Last-Event-ID so no event is missed or repeated; only a refused request (4xx)
// or a server that never answered ends it with an error.
func (e *env) follow(ctx context.Context, cl *client, q url.Values) error {
	last := ""
	failures := 0
	everConnected := false
	for {
		connected, err := e.streamOnce(ctx, cl, q, &last)
		if ctx.Err() != nil {
			return nil // interrupted by the user: a normal end
		}
		var ae *apiError
		if errors.As(err, &ae) && ae.status < 500 {
			return fmt.Errorf("follow events: %w", err)
		}
		everConnected = everConnected || connected
		if !everConnected {
			return fmt.Errorf("follow events: %w", err)
		}
		if connected {
			failures = 0
		}
		failures++
		why := "the server closed the stream"
		if err != nil {
			why = err.Error()
		}
		d := e.reconnect(failures)
		fmt.Fprintf(e.stderr, "event stream interrupted (%s); reconnecting in %s\n", why, d)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}

// streamOnce reads the stream over one connection, updating *last with each event's id.
// connected reports whether the server accepted the stream.
func (e *env) streamOnce(ctx context.Context, cl *client, q url.Values, last *string) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q = cloneValues(q)
	if *last != "" {
		q.Del("after") // the query would win over Last-Event-ID on the server
	}
	req, err := cl.newRequest(ctx, http.MethodGet, "/events/stream", q, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	}
	// The request timeout bounds the wait for the answer's headers, not the stream.
	var header *time.Timer
	if cl.timeout > 0 {
		header = time.AfterFunc(cl.timeout, cancel)
	}
	resp, err := cl.http.Do(req)
	if header != nil && !header.Stop() {
		// The timer fired: the request (and any stream it started) is cancelled.
		if err == nil {
			resp.Body.Close()
		}
		err = context.DeadlineExceeded
	}
	if err != nil {
		return false, cl.transportError(ctx, http.MethodGet, "/events/stream", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return false, cl.answerError(resp, raw)
	}
	// A stream silent for longer than the keepalive interval allows is dead: reconnect.
	var idle atomic.Bool
	watchdog := time.AfterFunc(e.idle, func() { idle.Store(true); cancel() })
	defer watchdog.Stop()
	err = readSSE(resp.Body, func() { watchdog.Reset(e.idle) }, func(ev sseEvent) error {
		if ev.id != "" {
			*last = ev.id
		}
		if ev.data == "" {
			return nil
		}
		if e.json {
			return printRaw(e.stdout, []byte(ev.data))
		}
		_, err := fmt.Fprintln(e.stdout, strings.Join(flatCells(eventCells(json.RawMessage(ev.data))), "  "))
		return err
	})
	if idle.Load() {
		return true, fmt.Errorf("no data for %s", e.idle)
	}
	return true, err
}

func flatCells(cells []string) []string {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	return cells
}

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	id, event, data string
}

// readSSE parses a text/event-stream body (the WHATWG format: fields, comments, events ended
// by a blank line), calling onLine for every line read and emit for every event. It returns
// nil at the end of the stream.
func readSSE(r io.Reader, onLine func(), emit func(sseEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	var ev sseEvent
	var data []string
	hasID := false
	for sc.Scan() {
		onLine()
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			if len(data) > 0 || hasID {
				ev.data = strings.Join(data, "\n")
				if err := emit(ev); err != nil {
					return err
				}
			}
			ev, data, hasID = sseEvent{}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // comment (keepalive)
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			if !strings.ContainsRune(value, 0) {
				ev.id, hasID = value, true
			}
		case "event":
			ev.event = value
		case "data":
			data = append(data, value)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read event stream: %w", err)
	}
	return nil
}
