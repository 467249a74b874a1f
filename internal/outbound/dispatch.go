package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/store"
)

// Limits of the dispatcher's work per round.
const (
	fanOutBatch   = 500 // events matched per subscription per round
	maxErrorText  = 512 // bytes of a failure kept with the attempt
	pruneInterval = time.Hour
)

// ContentType is the type of every POST: the event's CloudEvents document (structured mode).
const ContentType = "application/cloudevents+json"

// Run delivers until ctx ends: it matches new events to subscriptions, then sends due
// attempts, whenever the broker or Wake signals and at least every Poll. Several replicas
// may run it on one store.
func (s *Service) Run(ctx context.Context) error {
	var wake <-chan struct{}
	if s.o.Broker != nil {
		ch, stop := s.o.Broker.Subscribe()
		defer stop()
		wake = ch
	}
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	var lastPrune time.Time
	for {
		if s.o.Retention > 0 && s.o.Now().Sub(lastPrune) > pruneInterval {
			lastPrune = s.o.Now()
			if n, err := s.st.PruneSubscriptionAttempts(ctx, lastPrune.Add(-s.o.Retention)); err != nil && ctx.Err() == nil {
				s.log.Warn("could not prune subscription attempts", "err", err)
			} else if n > 0 {
				s.log.Info("pruned subscription attempts", "count", n)
			}
		}
		for ctx.Err() == nil {
			busy, err := s.Tick(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("subscription delivery round failed", "err", err)
			}
			if !busy || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-s.wake:
		case <-t.C:
		}
	}
}

// Tick runs one round: queue attempts for new events, then claim and send up to Workers due
// attempts at once. busy reports whether there may be more to do at once.
func (s *Service) Tick(ctx context.Context) (busy bool, err error) {
	more, err := s.fanOut(ctx)
	if err != nil {
		return false, err
	}
	lease := s.o.Timeout + 30*time.Second
	atts, err := s.st.ClaimSubscriptionAttempts(ctx, s.o.Owner, s.o.Workers, lease)
	if err != nil {
		return false, fmt.Errorf("claim attempts: %w", err)
	}
	var wg sync.WaitGroup
	for _, a := range atts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.try(ctx, a)
		}()
	}
	wg.Wait()
	return more || len(atts) == s.o.Workers, nil
}

// fanOut queues an attempt for every event after each enabled subscription's cursor that
// passes its filters, and moves the cursor. Replicas doing it at once queue nothing twice.
func (s *Service) fanOut(ctx context.Context) (more bool, err error) {
	subs, err := s.st.ListSubscriptions(ctx)
	if err != nil {
		return false, fmt.Errorf("list subscriptions: %w", err)
	}
	for _, sub := range subs {
		if sub.Disabled {
			continue
		}
		evs, err := s.st.ListEvents(ctx, store.EventFilter{AfterSeq: sub.Cursor, Limit: fanOutBatch})
		if err != nil {
			return false, fmt.Errorf("read events for subscription %s: %w", sub.ID, err)
		}
		if len(evs) == 0 {
			continue
		}
		var atts []store.NewSubscriptionAttempt
		for _, ev := range evs {
			if Matches(sub, ev) {
				atts = append(atts, store.NewSubscriptionAttempt{EventSeq: ev.Seq, EventID: ev.ID, EventType: ev.Type, Lane: Lane(ev)})
			}
		}
		_, err = s.st.EnqueueSubscriptionAttempts(ctx, sub.ID, atts, evs[len(evs)-1].Seq)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return false, err
		}
		more = more || len(evs) == fanOutBatch
	}
	return more, nil
}

// try sends one attempt and records the outcome.
func (s *Service) try(ctx context.Context, a store.SubscriptionAttempt) {
	status, sendErr := s.send(ctx, a)
	if ctx.Err() != nil {
		// Shutting down: the lease runs out and another try (here or on a replica) follows.
		return
	}
	out := store.AttemptOutcome{ResponseStatus: status}
	var perm *permanentError
	switch {
	case sendErr == nil:
		out.Delivered = true
	case errors.As(sendErr, &perm):
		out.Dead, out.Error = true, truncate(sendErr.Error())
	default:
		out.Error = truncate(sendErr.Error())
		if a.Tries > len(s.o.Schedule) {
			out.Dead = true
		} else {
			out.NextAt = s.o.Now().Add(s.o.Schedule[a.Tries-1])
		}
	}
	if err := s.st.FinishSubscriptionAttempt(context.WithoutCancel(ctx), a.N, s.o.Owner, out); err != nil {
		s.log.Warn("could not record a subscription attempt", "subscription", a.SubscriptionID, "attempt", a.N, "err", err)
		return
	}
	switch {
	case out.Dead:
		s.log.Warn("subscription attempt dead-lettered", "subscription", a.SubscriptionID, "attempt", a.N, "event", a.EventID, "tries", a.Tries, "err", out.Error)
	case !out.Delivered:
		s.log.Info("subscription attempt failed; will retry", "subscription", a.SubscriptionID, "attempt", a.N, "event", a.EventID, "tries", a.Tries, "next", out.NextAt, "err", out.Error)
	}
}

// permanentError is a failure no retry can fix (the event left the log, the subscription's
// secret cannot be opened).
type permanentError struct{ error }

func (e *permanentError) Unwrap() error { return e.error }

// send POSTs the attempt's event, signed; nil means the consumer answered 2xx.
func (s *Service) send(ctx context.Context, a store.SubscriptionAttempt) (int, error) {
	sub, err := s.st.GetSubscription(ctx, a.SubscriptionID)
	if err != nil {
		return 0, fmt.Errorf("load subscription: %w", err)
	}
	evs, err := s.st.ListEvents(ctx, store.EventFilter{AfterSeq: a.EventSeq - 1, Limit: 1})
	if err != nil {
		return 0, fmt.Errorf("load event %s: %w", a.EventID, err)
	}
	if len(evs) == 0 || evs[0].ID != a.EventID {
		return 0, &permanentError{fmt.Errorf("event %s is no longer in the log (pruned)", a.EventID)}
	}
	secret, err := s.keys.Open(sub.SecretEnc)
	if err != nil {
		return 0, &permanentError{fmt.Errorf("open the subscription's signing secret: %w", err)}
	}
	body := []byte(evs[0].Document)
	at := s.o.Now()
	sig, err := Sign(string(secret), a.EventID, at, body)
	if err != nil {
		return 0, &permanentError{fmt.Errorf("sign: %w", err)}
	}
	rctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		return 0, &permanentError{fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "Forgeway-Webhooks/1")
	req.Header.Set(HeaderID, a.EventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := s.o.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("POST %s: no answer within %s", redact(sub.URL), s.o.Timeout)
		}
		return 0, fmt.Errorf("POST %s: %w", redact(sub.URL), forge.StripURL(err))
	}
	defer resp.Body.Close()
	// Read a little of the answer so the connection can be reused; the rest is dropped.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("POST %s: HTTP %d", redact(sub.URL), resp.StatusCode)
		if len(bytes.TrimSpace(snippet)) > 0 {
			msg += ": " + string(bytes.ToValidUTF8(bytes.TrimSpace(snippet), []byte("?")))
		}
		return resp.StatusCode, errors.New(msg)
	}
	return resp.StatusCode, nil
}

// redact names a URL in errors and logs without its query (which may carry a consumer's key).
func redact(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i] + "?…"
	}
	return raw
}

func truncate(s string) string {
	if len(s) <= maxErrorText {
		return s
	}
	return string(bytes.ToValidUTF8([]byte(s[:maxErrorText]), nil)) + "…"
}
