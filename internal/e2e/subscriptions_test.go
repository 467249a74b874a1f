package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/outbound"
	"github.com/forgeway/forgeway/internal/server"
	"github.com/forgeway/forgeway/internal/testserver"
)

// startWithOutbound is testserver.Start with subscription delivery tuned (a short retry
// schedule), which flags do not reach.
func startWithOutbound(t *testing.T, dsn string, oo outbound.Options) *env {
	t.Helper()
	return &env{testserver.StartWith(t, dsn, server.Options{Outbound: oo})}
}

// subscriber is a consumer's endpoint: it verifies each delivery's Standard Webhooks
// signature and records the event ids it accepted, in arrival order.
type subscriber struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	secret   string
	first    string // the first event id seen: its first try is answered 500
	tries    map[string]int
	accepted []string
}

func newSubscriber(t *testing.T) *subscriber {
	s := &subscriber{t: t, tries: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get("webhook-id")
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Header.Get("Content-Type") != "application/cloudevents+json" {
			t.Errorf("delivery %s: content type %q", id, r.Header.Get("Content-Type"))
		}
		if err := outbound.Verify(s.secret, id, r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("delivery %s: %v", id, err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil || doc["id"] != id || doc["specversion"] != "1.0" {
			t.Errorf("delivery %s: body is not its CloudEvent: %s", id, body)
		}
		s.tries[id]++
		if s.first == "" {
			s.first = id
		}
		if id == s.first && s.tries[id] == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		s.accepted = append(s.accepted, id)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *subscriber) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted)
}

// pushTo posts the corpus push for a repository host id and returns its delivery id.
func (e *env) pushTo(t *testing.T, integration string, repoID int) string {
	t.Helper()
	var payload map[string]any
	if err := json.Unmarshal(corpusFile(t, "github", "push.json"), &payload); err != nil {
		t.Fatal(err)
	}
	payload["repository"].(map[string]any)["id"] = repoID
	body, _ := json.Marshal(payload)
	status, out := e.post("/webhooks/github/"+integration, delivery{event: "push", id: newID(), body: body, signature: sign(hookSecret, body)})
	if status != http.StatusAccepted {
		t.Fatalf("post push: %d %v", status, out)
	}
	return out["delivery_id"].(string)
}

// logOrder is the event ids of a repository in the event log, in log order.
func (e *env) logOrder(t *testing.T, integration string, repoID int) []string {
	t.Helper()
	var evs api.List[map[string]any]
	e.MustCall("GET", fmt.Sprintf("/api/v1/events?integration=%s&repository=%d&limit=1000", integration, repoID), nil, &evs, 200)
	var out []string
	for _, ev := range evs.Items {
		out = append(out, ev["id"].(string))
	}
	return out
}

func TestSubscriptionsEndToEnd(t *testing.T) {
	eachEngine(t, func(t *testing.T, eng engine) {
		e := startWithOutbound(t, eng.dsn(t), outbound.Options{Schedule: []time.Duration{200 * time.Millisecond, 200 * time.Millisecond}, Timeout: 2 * time.Second})
		integration := e.githubTokenIntegration(nil)
		consumer := newSubscriber(t)

		// Bad input is refused with a problem and creates nothing.
		bad := []struct {
			name   string
			body   map[string]any
			status int
		}{
			{"not http", map[string]any{"url": "ftp://consumer.example/x"}, 422},
			{"not a URL", map[string]any{"url": "::"}, 422},
			{"credentials in the URL", map[string]any{"url": "https://u:p@consumer.example/x"}, 422},
			{"unknown event type", map[string]any{"url": consumer.srv.URL, "event_types": []string{"dev.forgeway.nope"}}, 422},
			{"unknown integration", map[string]any{"url": consumer.srv.URL, "integration_ids": []string{"int_nope"}}, 422},
			{"secret not whsec_", map[string]any{"url": consumer.srv.URL, "secret": "hunter2"}, 422},
			{"unknown field", map[string]any{"url": consumer.srv.URL, "filter": "x"}, 400},
			{"filters not a list", map[string]any{"url": consumer.srv.URL, "event_types": "dev.forgeway.push"}, 400},
		}
		for _, tc := range bad {
			raw, _ := json.Marshal(tc.body)
			status, h, pb := e.raw("POST", "/api/v1/subscriptions", "application/json", e.Token, raw, nil)
			if status != tc.status || h.Get("Content-Type") != "application/problem+json" || pb["title"] == nil {
				t.Errorf("%s: %d %q %v, want %d problem+json", tc.name, status, h.Get("Content-Type"), pb, tc.status)
			}
		}
		var subs api.List[api.Subscription]
		e.MustCall("GET", "/api/v1/subscriptions", nil, &subs, 200)
		if len(subs.Items) != 0 {
			t.Fatalf("bad input created %d subscriptions", len(subs.Items))
		}
		status, _, _ := e.raw("POST", "/api/v1/subscriptions/sub_nope/attempts/1/redeliver", "", e.Token, nil, nil)
		if status != http.StatusNotFound {
			t.Errorf("redeliver on a missing subscription: %d", status)
		}
		status, _, _ = e.raw("POST", "/api/v1/subscriptions/sub_nope/attempts/x/redeliver", "", e.Token, nil, nil)
		if status != http.StatusBadRequest {
			t.Errorf("redeliver attempt x: %d", status)
		}

		// Subscribe; the secret is generated and shown once.
		var sub api.Subscription
		e.MustCall("POST", "/api/v1/subscriptions", map[string]any{"name": "consumer", "url": consumer.srv.URL + "/hook",
			"event_types": []string{"dev.forgeway."}, "integration_ids": []string{integration}}, &sub, http.StatusCreated)
		if err := outbound.ValidateSecret(sub.Secret); err != nil {
			t.Fatalf("created subscription's secret: %v", err)
		}
		consumer.mu.Lock()
		consumer.secret = sub.Secret
		consumer.mu.Unlock()
		var got api.Subscription
		e.MustCall("GET", "/api/v1/subscriptions/"+sub.ID, nil, &got, 200)
		if got.Secret != "" || got.URL != consumer.srv.URL+"/hook" {
			t.Errorf("GET shows %+v (the secret must not be shown again)", got)
		}

		// Deliveries to two repositories reach the consumer signed, in log order per repository.
		first := e.waitDelivery(e.pushTo(t, integration, 1001))
		if len(first.EventIDs) != 1 {
			t.Fatalf("first delivery: %+v", first)
		}
		// The consumer refuses the first event once: it is retried on the schedule.
		for i := range 6 {
			e.pushTo(t, integration, 1001+i%2)
		}
		want := 7
		testserver.Eventually(t, 30*time.Second, "7 events at the consumer", func() bool { return len(consumer.got()) >= want })
		consumer.mu.Lock()
		firstSent := consumer.first
		consumer.mu.Unlock()
		if firstSent != first.EventIDs[0] {
			t.Errorf("the first event sent was %s, want %s", firstSent, first.EventIDs[0])
		}
		time.Sleep(300 * time.Millisecond) // room for a duplicate to show
		accepted := consumer.got()
		if len(accepted) != want {
			t.Fatalf("consumer accepted %d deliveries, want %d: %v", len(accepted), want, accepted)
		}
		for _, repo := range []int{1001, 1002} {
			order := e.logOrder(t, integration, repo)
			var seen []string
			for _, id := range accepted {
				if slices.Contains(order, id) {
					seen = append(seen, id)
				}
			}
			if !slices.Equal(seen, order) {
				t.Errorf("repository %d: consumer got %v, the log's order is %v", repo, seen, order)
			}
		}

		// The attempts show the retry. An attempt is recorded as delivered only after the
		// consumer has answered, so the last one may still be on its way to the store.
		var atts api.List[api.SubscriptionAttempt]
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(25 * time.Millisecond) {
			e.MustCall("GET", "/api/v1/subscriptions/"+sub.ID+"/attempts", nil, &atts, 200)
			if !slices.ContainsFunc(atts.Items, func(a api.SubscriptionAttempt) bool { return a.Status != "delivered" }) || time.Now().After(deadline) {
				break
			}
		}
		if len(atts.Items) != want {
			t.Fatalf("%d attempts, want %d", len(atts.Items), want)
		}
		var retried api.SubscriptionAttempt
		for _, a := range atts.Items {
			if a.Status != "delivered" || a.DeliveredAt == nil {
				t.Errorf("attempt %+v", a)
			}
			if a.EventID == first.EventIDs[0] {
				retried = a
			}
		}
		if retried.Tries != 2 {
			t.Errorf("the refused event's attempt: %+v, want 2 tries", retried)
		}

		// Redelivery by hand sends it once more.
		var again api.SubscriptionAttempt
		e.MustCall("POST", fmt.Sprintf("/api/v1/subscriptions/%s/attempts/%d/redeliver", sub.ID, retried.N), nil, &again, http.StatusAccepted)
		if again.Status != "pending" || again.Tries != 0 {
			t.Errorf("redelivered attempt: %+v", again)
		}
		testserver.Eventually(t, 20*time.Second, "the redelivery", func() bool { return len(consumer.got()) == want+1 })
		if last := consumer.got()[want]; last != first.EventIDs[0] {
			t.Errorf("redelivered %s, want %s", last, first.EventIDs[0])
		}

		// Filters apply: another integration's events are not sent.
		other := e.githubTokenIntegration(map[string]any{"name": "other"})
		e.waitDelivery(e.pushTo(t, other, 1001))
		time.Sleep(500 * time.Millisecond)
		if n := len(consumer.got()); n != want+1 {
			t.Errorf("an event of another integration reached the consumer (%d deliveries)", n)
		}

		// Patch: pause; a bad patch changes nothing; delete.
		var patched api.Subscription
		e.MustCall("PATCH", "/api/v1/subscriptions/"+sub.ID, map[string]any{"disabled": true}, &patched, 200)
		if !patched.Disabled || patched.Secret != "" {
			t.Errorf("patched: %+v", patched)
		}
		status, _, _ = e.raw("PATCH", "/api/v1/subscriptions/"+sub.ID, "application/json", e.Token, []byte(`{"url":"gopher://x"}`), nil)
		if status != 422 {
			t.Errorf("bad patch: %d", status)
		}
		e.MustCall("GET", "/api/v1/subscriptions/"+sub.ID, nil, &got, 200)
		if got.URL != consumer.srv.URL+"/hook" {
			t.Errorf("a refused patch changed the URL to %s", got.URL)
		}
		e.MustCall("DELETE", "/api/v1/subscriptions/"+sub.ID, nil, nil, http.StatusNoContent)
		e.MustCall("GET", "/api/v1/subscriptions/"+sub.ID, nil, nil, http.StatusNotFound)
	})
}

// The answer that shows a secret is kept sealed for Idempotency-Key replays, and replayed.
func TestSubscriptionSecretReplayedUnderIdempotencyKey(t *testing.T) {
	e := start(t, engines(t)[0])
	body := []byte(`{"url":"https://consumer.example/hook"}`)
	h := map[string]string{"Idempotency-Key": "create-sub-1"}
	s1, _, first := e.raw("POST", "/api/v1/subscriptions", "application/json", e.Token, body, h)
	s2, hdr, second := e.raw("POST", "/api/v1/subscriptions", "application/json", e.Token, body, h)
	if s1 != 201 || s2 != 201 || first["secret"] == nil || first["secret"] != second["secret"] || hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %d %v", s1, s2, hdr)
	}
	secret := first["secret"].(string)
	var subs api.List[api.Subscription]
	e.MustCall("GET", "/api/v1/subscriptions", nil, &subs, 200)
	if len(subs.Items) != 1 {
		t.Fatalf("%d subscriptions after a replay, want 1", len(subs.Items))
	}
	// The saved answer (kept per token) does not hold the secret in the clear.
	saved, answer := e.savedAnswer("POST /api/v1/subscriptions", "create-sub-1")
	if !answer.Sealed || bytes.Contains(answer.Body, []byte(secret)) || strings.Contains(string(saved), secret) {
		t.Error("the kept answer holds the secret in the clear")
	}
}
