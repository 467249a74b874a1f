package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/store"
)

func mkSubscription(t *testing.T, st store.Store, mod func(s *store.Subscription)) store.Subscription {
	t.Helper()
	s := store.Subscription{Name: "consumer", URL: "https://consumer.example/hook", SecretEnc: []byte("sealed")}
	if mod != nil {
		mod(&s)
	}
	ok(t, st.CreateSubscription(t.Context(), &s), "create subscription")
	return s
}

// appendEvent appends one event and returns it with its seq.
func appendEvent(t *testing.T, st store.Store, id, repo string) store.Event {
	t.Helper()
	ev := []store.Event{{ID: id, IntegrationID: "int_a", RepositoryID: repo, DeliveryID: "dlv_1", Type: "dev.forgeway.push",
		Time: ts("2026-04-02T10:00:00Z"), Document: json.RawMessage(`{"id":"` + id + `"}`)}}
	ok(t, st.AppendEvents(t.Context(), ev), "append event "+id)
	return ev[0]
}

func newAttempt(ev store.Event, lane string) store.NewSubscriptionAttempt {
	return store.NewSubscriptionAttempt{EventSeq: ev.Seq, EventID: ev.ID, EventType: ev.Type, Lane: lane}
}

func claimN(t *testing.T, st store.Store, owner string, n int, lease time.Duration) []store.SubscriptionAttempt {
	t.Helper()
	as, err := st.ClaimSubscriptionAttempts(t.Context(), owner, n, lease)
	ok(t, err, "claim attempts")
	return as
}

func attemptEvents(as []store.SubscriptionAttempt) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.EventID)
	}
	slices.Sort(out)
	return out
}

func testSubscriptions(t *testing.T, st store.Store) {
	ctx := t.Context()
	_, err := st.GetSubscription(ctx, "sub_missing")
	wantErr(t, err, store.ErrNotFound, "get missing")
	e1 := appendEvent(t, st, "e1", "r1")

	a := mkSubscription(t, st, func(s *store.Subscription) {
		s.EventTypes = []string{"dev.forgeway.push", "dev.forgeway.pull_request."}
		s.IntegrationIDs = []string{"int_a"}
	})
	if !idPattern("sub").MatchString(a.ID) {
		t.Errorf("id %q", a.ID)
	}
	if a.Cursor != e1.Seq {
		t.Errorf("new subscription's cursor %d, want the log's end %d", a.Cursor, e1.Seq)
	}
	wantUTC(t, "subscription", a.CreatedAt, a.UpdatedAt)
	got, err := st.GetSubscription(ctx, a.ID)
	ok(t, err, "get")
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("get (-want +got):\n%s", diff)
	}

	b := mkSubscription(t, st, nil)
	got, err = st.GetSubscription(ctx, b.ID)
	ok(t, err, "get b")
	if got.EventTypes != nil || got.RepositoryIDs != nil || got.Disabled {
		t.Errorf("empty filters came back as %+v", got)
	}

	b.Name, b.URL, b.SecretEnc, b.Disabled = "renamed", "http://other.example/x", []byte("sealed-2"), true
	b.RepositoryIDs = []string{"42"}
	ok(t, st.UpdateSubscription(ctx, &b), "update")
	got, err = st.GetSubscription(ctx, b.ID)
	ok(t, err, "get updated")
	if diff := cmp.Diff(b, got); diff != "" {
		t.Errorf("updated (-want +got):\n%s", diff)
	}
	list, err := st.ListSubscriptions(ctx)
	ok(t, err, "list")
	if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Errorf("list: %+v", list)
	}

	missing := store.Subscription{ID: "sub_missing", URL: "http://x"}
	wantErr(t, st.UpdateSubscription(ctx, &missing), store.ErrNotFound, "update missing")
	wantErr(t, st.DeleteSubscription(ctx, "sub_missing"), store.ErrNotFound, "delete missing")

	// Deleting a subscription deletes its attempts.
	e2 := appendEvent(t, st, "e2", "r1")
	_, err = st.EnqueueSubscriptionAttempts(ctx, a.ID, []store.NewSubscriptionAttempt{newAttempt(e2, "l")}, e2.Seq)
	ok(t, err, "enqueue")
	ok(t, st.DeleteSubscription(ctx, a.ID), "delete")
	_, err = st.GetSubscription(ctx, a.ID)
	wantErr(t, err, store.ErrNotFound, "get deleted")
	items, _, err := st.ListSubscriptionAttempts(ctx, store.SubscriptionAttemptFilter{SubscriptionID: a.ID})
	ok(t, err, "list attempts of deleted")
	if len(items) != 0 {
		t.Errorf("%d attempts left after delete", len(items))
	}
	_, err = st.EnqueueSubscriptionAttempts(ctx, a.ID, []store.NewSubscriptionAttempt{newAttempt(e2, "l")}, e2.Seq)
	wantErr(t, err, store.ErrNotFound, "enqueue for a deleted subscription")

	// Subscriptions' secrets are rewritten with the others on key rotation.
	n, err := st.RewriteSecrets(ctx, func(old []byte) ([]byte, error) { return append([]byte("v2:"), old...), nil })
	ok(t, err, "rewrite secrets")
	got, err = st.GetSubscription(ctx, b.ID)
	ok(t, err, "get rewritten")
	if n != 1 || string(got.SecretEnc) != "v2:sealed-2" {
		t.Errorf("rewrite: %d values, secret %q", n, got.SecretEnc)
	}
}

func testSubscriptionEnqueue(t *testing.T, st store.Store) {
	ctx := t.Context()
	s := mkSubscription(t, st, nil)
	e1, e2, e3 := appendEvent(t, st, "e1", "r1"), appendEvent(t, st, "e2", "r1"), appendEvent(t, st, "e3", "r2")
	n, err := st.EnqueueSubscriptionAttempts(ctx, s.ID, []store.NewSubscriptionAttempt{newAttempt(e1, "a"), newAttempt(e2, "a")}, e2.Seq)
	ok(t, err, "enqueue")
	if n != 2 {
		t.Errorf("queued %d, want 2", n)
	}
	// Another replica queuing the same events (and one more) writes only the new one.
	n, err = st.EnqueueSubscriptionAttempts(ctx, s.ID, []store.NewSubscriptionAttempt{newAttempt(e1, "a"), newAttempt(e2, "a"), newAttempt(e3, "b")}, e3.Seq)
	ok(t, err, "enqueue again")
	if n != 1 {
		t.Errorf("queued %d on the second call, want 1", n)
	}
	// A late caller never moves the cursor back.
	_, err = st.EnqueueSubscriptionAttempts(ctx, s.ID, nil, e1.Seq)
	ok(t, err, "enqueue stale")
	got, err := st.GetSubscription(ctx, s.ID)
	ok(t, err, "get")
	if got.Cursor != e3.Seq {
		t.Errorf("cursor %d, want %d", got.Cursor, e3.Seq)
	}
	items, next, err := st.ListSubscriptionAttempts(ctx, store.SubscriptionAttemptFilter{SubscriptionID: s.ID})
	ok(t, err, "list")
	if next != "" || len(items) != 3 || items[0].EventID != "e3" || items[2].EventID != "e1" {
		t.Fatalf("attempts newest first: %+v (next %q)", items, next)
	}
	for _, a := range items {
		if a.Status != store.AttemptPending || a.Tries != 0 || a.NextAt.IsZero() || a.SubscriptionID != s.ID {
			t.Errorf("queued attempt: %+v", a)
		}
		wantUTC(t, "attempt", a.NextAt, a.CreatedAt, a.UpdatedAt)
	}
	// Pages, the status filter, and a bad cursor.
	page, next, err := st.ListSubscriptionAttempts(ctx, store.SubscriptionAttemptFilter{SubscriptionID: s.ID, Page: store.Page{Limit: 2}})
	ok(t, err, "page 1")
	rest, last, err := st.ListSubscriptionAttempts(ctx, store.SubscriptionAttemptFilter{SubscriptionID: s.ID, Page: store.Page{Limit: 2, After: next}})
	ok(t, err, "page 2")
	if len(page) != 2 || next == "" || len(rest) != 1 || last != "" || rest[0].EventID != "e1" {
		t.Errorf("pages: %d %q %d %q", len(page), next, len(rest), last)
	}
	dead, _, err := st.ListSubscriptionAttempts(ctx, store.SubscriptionAttemptFilter{SubscriptionID: s.ID, Status: store.AttemptDead})
	ok(t, err, "list dead")
	if len(dead) != 0 {
		t.Errorf("%d dead attempts, want 0", len(dead))
	}
	_, _, err = st.ListSubscriptionAttempts(ctx, store.SubscriptionAttemptFilter{SubscriptionID: s.ID, Page: store.Page{After: "!!"}})
	wantErr(t, err, store.ErrBadCursor, "bad cursor")
	got1, err := st.GetSubscriptionAttempt(ctx, s.ID, items[2].N)
	ok(t, err, "get attempt")
	if got1.EventID != "e1" {
		t.Errorf("get attempt: %+v", got1)
	}
	_, err = st.GetSubscriptionAttempt(ctx, "sub_other", items[2].N)
	wantErr(t, err, store.ErrNotFound, "attempt of another subscription")
}

func testSubscriptionClaimOrder(t *testing.T, st store.Store) {
	ctx := t.Context()
	s := mkSubscription(t, st, nil)
	e1, e2, e3 := appendEvent(t, st, "e1", "r1"), appendEvent(t, st, "e2", "r1"), appendEvent(t, st, "e3", "r2")
	_, err := st.EnqueueSubscriptionAttempts(ctx, s.ID, []store.NewSubscriptionAttempt{
		newAttempt(e1, "int_a/r1"), newAttempt(e2, "int_a/r1"), newAttempt(e3, "int_a/r2")}, e3.Seq)
	ok(t, err, "enqueue")

	// Only the first of each lane can be claimed.
	got := claimN(t, st, "w1", 10, time.Minute)
	if diff := cmp.Diff([]string{"e1", "e3"}, attemptEvents(got)); diff != "" {
		t.Fatalf("claimed (-want +got):\n%s", diff)
	}
	for _, a := range got {
		if a.Tries != 1 || a.LeaseOwner != "w1" || !a.LeaseUntil.After(time.Now()) {
			t.Errorf("claimed attempt: %+v", a)
		}
	}
	// Leased attempts block their lanes for everyone.
	if again := claimN(t, st, "w2", 10, time.Minute); len(again) != 0 {
		t.Fatalf("claimed while leased: %v", attemptEvents(again))
	}
	byEvent := map[string]store.SubscriptionAttempt{}
	for _, a := range got {
		byEvent[a.EventID] = a
	}
	// Another owner cannot finish it.
	wantErr(t, st.FinishSubscriptionAttempt(ctx, byEvent["e1"].N, "w2", store.AttemptOutcome{Delivered: true}), store.ErrLeaseLost, "finish by another owner")
	wantErr(t, st.FinishSubscriptionAttempt(ctx, 999999, "w1", store.AttemptOutcome{Delivered: true}), store.ErrNotFound, "finish missing")

	// A failed try scheduled later keeps its lane blocked until then.
	ok(t, st.FinishSubscriptionAttempt(ctx, byEvent["e1"].N, "w1", store.AttemptOutcome{NextAt: time.Now().Add(time.Hour), ResponseStatus: 500, Error: "HTTP 500"}), "finish failed")
	if again := claimN(t, st, "w2", 10, time.Minute); len(again) != 0 {
		t.Fatalf("claimed past a failed head: %v", attemptEvents(again))
	}
	a1, err := st.GetSubscriptionAttempt(ctx, s.ID, byEvent["e1"].N)
	ok(t, err, "get failed")
	if a1.Status != store.AttemptPending || a1.ResponseStatus != 500 || a1.Error != "HTTP 500" || a1.LeaseOwner != "" || a1.Tries != 1 {
		t.Errorf("failed attempt: %+v", a1)
	}
	// Redelivering makes it due now with its tries reset; it goes out again before e2.
	a1, err = st.RedeliverSubscriptionAttempt(ctx, s.ID, a1.N)
	ok(t, err, "redeliver")
	if a1.Tries != 0 || a1.Status != store.AttemptPending {
		t.Errorf("redelivered: %+v", a1)
	}
	got = claimN(t, st, "w2", 10, time.Minute)
	if diff := cmp.Diff([]string{"e1"}, attemptEvents(got)); diff != "" {
		t.Fatalf("claimed after redeliver (-want +got):\n%s", diff)
	}
	// Dead-lettered: the lane moves on.
	ok(t, st.FinishSubscriptionAttempt(ctx, got[0].N, "w2", store.AttemptOutcome{Dead: true, Error: "gave up"}), "finish dead")
	got = claimN(t, st, "w2", 10, time.Minute)
	if diff := cmp.Diff([]string{"e2"}, attemptEvents(got)); diff != "" {
		t.Fatalf("claimed after dead letter (-want +got):\n%s", diff)
	}
	ok(t, st.FinishSubscriptionAttempt(ctx, got[0].N, "w2", store.AttemptOutcome{Delivered: true, ResponseStatus: 204}), "finish delivered")
	a2, err := st.GetSubscriptionAttempt(ctx, s.ID, got[0].N)
	ok(t, err, "get delivered")
	if a2.Status != store.AttemptDelivered || a2.DeliveredAt.IsZero() || a2.ResponseStatus != 204 {
		t.Errorf("delivered attempt: %+v", a2)
	}
	wantUTC(t, "delivered", a2.DeliveredAt)
	wantErr(t, st.FinishSubscriptionAttempt(ctx, got[0].N, "w2", store.AttemptOutcome{Delivered: true}), store.ErrLeaseLost, "finish twice")
	_, err = st.RedeliverSubscriptionAttempt(ctx, "sub_other", a2.N)
	wantErr(t, err, store.ErrNotFound, "redeliver through another subscription")

	// A disabled subscription's attempts wait.
	s.Disabled = true
	ok(t, st.UpdateSubscription(ctx, &s), "disable")
	_, err = st.RedeliverSubscriptionAttempt(ctx, s.ID, a2.N)
	ok(t, err, "redeliver delivered")
	if again := claimN(t, st, "w3", 10, time.Minute); len(again) != 0 {
		t.Fatalf("claimed for a disabled subscription: %v", attemptEvents(again))
	}
	s.Disabled = false
	ok(t, st.UpdateSubscription(ctx, &s), "enable")
	if again := claimN(t, st, "w3", 10, time.Minute); len(again) != 1 || again[0].EventID != "e2" {
		t.Fatalf("claimed after enabling: %v", attemptEvents(again))
	}
}

func testSubscriptionLeaseTakeover(t *testing.T, st store.Store) {
	ctx := t.Context()
	s := mkSubscription(t, st, nil)
	e1 := appendEvent(t, st, "e1", "r1")
	_, err := st.EnqueueSubscriptionAttempts(ctx, s.ID, []store.NewSubscriptionAttempt{newAttempt(e1, "l")}, e1.Seq)
	ok(t, err, "enqueue")
	first := claimN(t, st, "dead-worker", 1, 20*time.Millisecond)
	if len(first) != 1 {
		t.Fatalf("claimed %d", len(first))
	}
	time.Sleep(40 * time.Millisecond)
	second := claimN(t, st, "w2", 1, time.Minute)
	if len(second) != 1 || second[0].N != first[0].N || second[0].Tries != 2 {
		t.Fatalf("takeover after the lease expired: %+v", second)
	}
	wantErr(t, st.FinishSubscriptionAttempt(ctx, first[0].N, "dead-worker", store.AttemptOutcome{Delivered: true}), store.ErrLeaseLost, "finish by the old owner")
	ok(t, st.FinishSubscriptionAttempt(ctx, first[0].N, "w2", store.AttemptOutcome{Delivered: true}), "finish by the new owner")
}

func testSubscriptionClaimConcurrent(t *testing.T, st store.Store) {
	ctx := t.Context()
	s := mkSubscription(t, st, nil)
	const lanes, perLane = 8, 3
	var atts []store.NewSubscriptionAttempt
	var last int64
	for i := range lanes * perLane {
		ev := appendEvent(t, st, fmt.Sprintf("e%02d", i), "r")
		atts = append(atts, newAttempt(ev, fmt.Sprintf("lane-%d", i%lanes)))
		last = ev.Seq
	}
	_, err := st.EnqueueSubscriptionAttempts(ctx, s.ID, atts, last)
	ok(t, err, "enqueue")
	// Workers claim and deliver until nothing is left; every attempt is delivered once,
	// and within a lane in event order.
	var (
		mu        sync.Mutex
		delivered = map[string][]int64{}
		count     = map[int64]int{}
		wg        sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("w%d", w)
			idle := 0
			for idle < 20 {
				got, err := st.ClaimSubscriptionAttempts(ctx, owner, 3, time.Minute)
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				if len(got) == 0 {
					idle++
					time.Sleep(5 * time.Millisecond)
					continue
				}
				idle = 0
				for _, a := range got {
					mu.Lock()
					delivered[a.Lane] = append(delivered[a.Lane], a.EventSeq)
					count[a.N]++
					mu.Unlock()
					if err := st.FinishSubscriptionAttempt(ctx, a.N, owner, store.AttemptOutcome{Delivered: true}); err != nil {
						t.Errorf("finish: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(count) != lanes*perLane {
		t.Errorf("%d attempts delivered, want %d", len(count), lanes*perLane)
	}
	for n, c := range count {
		if c != 1 {
			t.Errorf("attempt %d delivered %d times", n, c)
		}
	}
	for lane, seqs := range delivered {
		if !slices.IsSorted(seqs) {
			t.Errorf("lane %s delivered out of order: %v", lane, seqs)
		}
	}
}

func testSubscriptionPrune(t *testing.T, st store.Store) {
	ctx := t.Context()
	s := mkSubscription(t, st, nil)
	e1, e2 := appendEvent(t, st, "e1", "r1"), appendEvent(t, st, "e2", "r2")
	_, err := st.EnqueueSubscriptionAttempts(ctx, s.ID, []store.NewSubscriptionAttempt{newAttempt(e1, "a"), newAttempt(e2, "b")}, e2.Seq)
	ok(t, err, "enqueue")
	got := claimN(t, st, "w", 1, time.Minute)
	ok(t, st.FinishSubscriptionAttempt(ctx, got[0].N, "w", store.AttemptOutcome{Delivered: true}), "finish")
	n, err := st.PruneSubscriptionAttempts(ctx, time.Now().Add(-time.Hour))
	ok(t, err, "prune old")
	if n != 0 {
		t.Errorf("pruned %d recent attempts", n)
	}
	n, err = st.PruneSubscriptionAttempts(ctx, time.Now().Add(time.Hour))
	ok(t, err, "prune")
	items, _, err := st.ListSubscriptionAttempts(ctx, store.SubscriptionAttemptFilter{SubscriptionID: s.ID})
	ok(t, err, "list")
	// The pending attempt stays whatever its age.
	if n != 1 || len(items) != 1 || items[0].Status != store.AttemptPending {
		t.Errorf("pruned %d, left %+v", n, items)
	}
}
