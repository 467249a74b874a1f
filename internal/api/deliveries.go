package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/events"
	"github.com/forgeway/forgeway/internal/problem"
	"github.com/forgeway/forgeway/internal/store"
)

var deliveryStatuses = []string{store.DeliveryReceived, store.DeliveryProcessed, store.DeliveryIgnored, store.DeliveryFailed}

func deliveryResource(d store.Delivery, full bool) Delivery {
	out := Delivery{ID: d.ID, IntegrationID: d.IntegrationID, Kind: d.Kind, HostID: d.HostID, Event: d.Event,
		Action: d.Action, Status: d.Status, Reason: d.Reason, Error: d.Error, Test: d.Test, EventIDs: d.EventIDs, ReceivedAt: d.ReceivedAt}
	if out.EventIDs == nil {
		out.EventIDs = []string{}
	}
	if !d.ProcessedAt.IsZero() {
		t := d.ProcessedAt
		out.ProcessedAt = &t
	}
	if full {
		out.Headers = d.Headers
		if json.Valid(d.Body) {
			out.Body = d.Body
		} else {
			out.BodyText = string(d.Body)
		}
	}
	return out
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	p, ok := page(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := store.DeliveryFilter{IntegrationID: q.Get("integration"), Status: q.Get("status"), Page: p}
	if f.Status != "" && !contains(deliveryStatuses, f.Status) {
		problem.Send(w, http.StatusBadRequest, "invalid-parameter", "Unknown delivery status", "status="+f.Status, fmt.Sprintf("Use one of %v.", deliveryStatuses))
		return
	}
	if !s.checkIntegrationParam(w, r, f.IntegrationID) {
		return
	}
	items, next, err := s.st.ListDeliveries(r.Context(), f)
	if err != nil {
		s.fail(w, r, "list deliveries", err)
		return
	}
	out := List[Delivery]{Items: make([]Delivery, 0, len(items)), NextCursor: next}
	for _, d := range items {
		out.Items = append(out.Items, deliveryResource(d, false))
	}
	writeJSON(w, http.StatusOK, out)
}

// checkIntegrationParam enforces that project tokens name an integration of their project.
func (s *Server) checkIntegrationParam(w http.ResponseWriter, r *http.Request, id string) bool {
	if id == "" {
		if tokenFrom(r.Context()).Admin {
			return true
		}
		problem.Send(w, http.StatusBadRequest, "invalid-parameter", "A project token must name the integration", "add ?integration=<id>", "")
		return false
	}
	rec, err := s.st.GetIntegration(r.Context(), id)
	if err != nil || !visible(r.Context(), rec) {
		problem.Send(w, http.StatusNotFound, "not-found", "Integration not found", "no integration "+id, "")
		return false
	}
	return true
}

func (s *Server) loadDelivery(w http.ResponseWriter, r *http.Request) (store.Delivery, bool) {
	d, err := s.st.GetDelivery(r.Context(), r.PathValue("id"))
	if err == nil {
		var rec store.Integration
		if rec, err = s.st.GetIntegration(r.Context(), d.IntegrationID); err == nil && !visible(r.Context(), rec) {
			err = store.ErrNotFound
		} else if errors.Is(err, store.ErrNotFound) && tokenFrom(r.Context()).Admin {
			err = nil // the integration was deleted; admins still see its history
		}
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			problem.Send(w, http.StatusNotFound, "not-found", "Delivery not found", "no delivery "+r.PathValue("id"), "")
		} else {
			s.fail(w, r, "load delivery", err)
		}
		return d, false
	}
	return d, true
}

func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) {
	d, ok := s.loadDelivery(w, r)
	if !ok {
		return
	}
	out := deliveryResource(d, true)
	if len(d.EventIDs) > 0 {
		evs, err := s.st.ListEvents(r.Context(), store.EventFilter{Limit: 1000, DeliveryID: d.ID})
		if err == nil {
			for _, e := range evs {
				out.Events = append(out.Events, e.Document)
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// deliveryBody serves the stored body exactly as the host sent it (the bytes that were
// verified), with the delivery's content type.
func (s *Server) deliveryBody(w http.ResponseWriter, r *http.Request) {
	d, ok := s.loadDelivery(w, r)
	if !ok {
		return
	}
	ct := "application/octet-stream"
	for k, v := range d.Headers {
		if strings.EqualFold(k, "Content-Type") && len(v) > 0 {
			ct = v[0]
		}
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", "attachment")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(d.Body)
}

func (s *Server) replayDelivery(w http.ResponseWriter, r *http.Request) {
	d, ok := s.loadDelivery(w, r)
	if !ok {
		return
	}
	j, err := events.Replay(r.Context(), s.st, d.ID)
	if err != nil {
		s.fail(w, r, "replay delivery", err)
		return
	}
	s.notify()
	accepted(w, j)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// eventFilter reads the event query parameters.
func (s *Server) eventFilter(w http.ResponseWriter, r *http.Request) (store.EventFilter, bool) {
	q := r.URL.Query()
	f := store.EventFilter{Type: q.Get("type"), RepositoryID: q.Get("repository"), IntegrationID: q.Get("integration"), Limit: 100}
	// A reconnecting EventSource repeats its URL and adds Last-Event-ID: the header, when
	// present, is where the client really is.
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = q.Get("after")
	}
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 0 {
			problem.Send(w, http.StatusBadRequest, "invalid-parameter", "after must be a cursor returned by this API", "after="+after, "Use next_cursor from the last page, or the id: of the last server-sent event.")
			return f, false
		}
		f.AfterSeq = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			problem.Send(w, http.StatusBadRequest, "invalid-parameter", "limit must be a number from 1 to 1000", "limit="+v, "")
			return f, false
		}
		f.Limit = n
	}
	if !s.checkIntegrationParam(w, r, f.IntegrationID) {
		return f, false
	}
	return f, true
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	f, ok := s.eventFilter(w, r)
	if !ok {
		return
	}
	evs, err := s.st.ListEvents(r.Context(), f)
	if err != nil {
		s.fail(w, r, "list events", err)
		return
	}
	out := List[json.RawMessage]{Items: make([]json.RawMessage, 0, len(evs)), NextCursor: strconv.FormatInt(f.AfterSeq, 10)}
	for _, e := range evs {
		out.Items = append(out.Items, e.Document)
		out.NextCursor = strconv.FormatInt(e.Seq, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// streamEvents serves the event log as server-sent events from the cursor on: each event's
// SSE id is its log position, so a client that reconnects with Last-Event-ID misses nothing.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	f, ok := s.eventFilter(w, r)
	if !ok {
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		problem.Send(w, http.StatusInternalServerError, "internal", "Streaming is not supported by this connection", "", "")
		return
	}
	wake, stop := s.broker.Subscribe()
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": forgeway event stream\n\n")
	flusher.Flush()
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		for {
			evs, err := s.st.ListEvents(r.Context(), f)
			if err != nil {
				return
			}
			for _, e := range evs {
				fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, e.Document)
				f.AfterSeq = e.Seq
			}
			flusher.Flush()
			if len(evs) < f.Limit {
				break
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		case <-poll.C:
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			flusher.Flush()
		}
	}
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		problem.Send(w, http.StatusBadRequest, "invalid-parameter", "A job id is a number", "id="+r.PathValue("id"), "")
		return
	}
	j, err := s.st.GetJob(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		problem.Send(w, http.StatusNotFound, "not-found", "Job not found", fmt.Sprintf("no job %d", id), "")
		return
	}
	if err != nil {
		s.fail(w, r, "load job", err)
		return
	}
	writeJSON(w, http.StatusOK, jobResource(j))
}

var jobStates = []string{store.JobAvailable, store.JobRunning, store.JobCompleted, store.JobRetryable, store.JobDead, store.JobCancelled}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	p, ok := page(w, r)
	if !ok {
		return
	}
	f := store.JobFilter{State: r.URL.Query().Get("state"), Kind: r.URL.Query().Get("kind"), Page: p}
	if f.State != "" && !contains(jobStates, f.State) {
		problem.Send(w, http.StatusBadRequest, "invalid-parameter", "Unknown job state", "state="+f.State, fmt.Sprintf("Use one of %v.", jobStates))
		return
	}
	items, next, err := s.st.ListJobs(r.Context(), f)
	if err != nil {
		s.fail(w, r, "list jobs", err)
		return
	}
	out := List[Job]{Items: make([]Job, 0, len(items)), NextCursor: next}
	for _, j := range items {
		out.Items = append(out.Items, jobResource(j))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) retryJob(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		problem.Send(w, http.StatusBadRequest, "invalid-parameter", "A job id is a number", "id="+r.PathValue("id"), "")
		return
	}
	j, err := s.st.GetJob(r.Context(), id)
	if err != nil {
		s.fail(w, r, "load job", err)
		return
	}
	if j.State != store.JobDead && j.State != store.JobCancelled && j.State != store.JobCompleted {
		problem.Send(w, http.StatusConflict, "job-not-finished", "Only finished jobs can be retried", "the job is "+j.State, "")
		return
	}
	if err := s.st.RetryJob(r.Context(), id); err != nil {
		s.fail(w, r, "retry job", err)
		return
	}
	s.notify()
	j, _ = s.st.GetJob(r.Context(), id)
	accepted(w, j)
}
