package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/secrets"
	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/store/storetest"
)

// consumer is a subscriber's endpoint: it verifies every request and answers what answer
// says for it.
type consumer struct {
	t      *testing.T
	secret string
	srv    *httptest.Server
	answer func(id string, n int) (status int, delay time.Duration)

	mu       sync.Mutex
	received []received
	tries    map[string]int
}

type received struct {
	id, repo string
	at       time.Time
	status   int
}

func newConsumer(t *testing.T) *consumer {
	c := &consumer{t: t, tries: map[string]int{}, answer: func(string, int) (int, time.Duration) { return 204, 0 }}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *consumer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get(HeaderID)
	if ct := r.Header.Get("Content-Type"); ct != ContentType {
		c.t.Errorf("content type %q", ct)
	}
	c.mu.Lock()
	secret := c.secret
	c.mu.Unlock()
	if err := Verify(secret, id, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		c.t.Errorf("delivery %s does not verify: %v", id, err)
	}
	var doc struct {
		ID         string `json:"id"`
		Repository string `json:"repo"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.ID != id {
		c.t.Errorf("body %s for webhook-id %s", body, id)
	}
	c.mu.Lock()
	c.tries[id]++
	status, delay := c.answer(id, c.tries[id])
	c.received = append(c.received, received{id: id, repo: doc.Repository, at: time.Now(), status: status})
	c.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "answer body")
}

func (c *consumer) got() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.received)
}

type fixture struct {
	st  store.Store
	svc *Service
	c   *consumer
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	st := storetest.SQLite(t)
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	o.Store, o.Keys = st, keys
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Owner == "" {
		o.Owner = "test"
	}
	if o.Poll == 0 {
		o.Poll = 10 * time.Millisecond
	}
	return &fixture{st: st, svc: New(o), c: newConsumer(t)}
}

// subscribe creates a subscription to the fixture's consumer.
func (f *fixture) subscribe(t *testing.T, spec Spec) store.Subscription {
	t.Helper()
	spec.URL = f.c.srv.URL + "/hooks?key=x"
	sub, secret, err := f.svc.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	f.c.mu.Lock()
	f.c.secret = secret
	f.c.mu.Unlock()
	return sub
}

// emit appends events: id@repo ("" repo: an event of no repository).
func (f *fixture) emit(t *testing.T, typ string, specs ...string) {
	t.Helper()
	var evs []store.Event
	for _, s := range specs {
		id, repo, _ := strings.Cut(s, "@")
		doc := fmt.Sprintf(`{"specversion":"1.0","id":%q,"type":%q,"repo":%q}`, id, typ, repo)
		evs = append(evs, store.Event{ID: id, IntegrationID: "int_a", RepositoryID: repo, Type: typ, Time: time.Now(), Document: json.RawMessage(doc)})
	}
	if err := f.st.AppendEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
}

// drain runs rounds until cond holds.
func (f *fixture) drain(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; consumer got %+v", what, f.c.got())
		}
		if _, err := f.svc.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (f *fixture) attempts(t *testing.T, sub string) map[string]store.SubscriptionAttempt {
	t.Helper()
	items, _, err := f.st.ListSubscriptionAttempts(t.Context(), store.SubscriptionAttemptFilter{SubscriptionID: sub})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.SubscriptionAttempt{}
	for _, a := range items {
		out[a.EventID] = a
	}
	return out
}

func ids(rs []received) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.id)
	}
	return out
}

func TestDeliversSignedMatchingEventsInOrderPerRepository(t *testing.T) {
	f := newFixture(t, Options{Workers: 4})
	f.emit(t, "dev.forgeway.push", "before@r1") // before the subscription: not sent
	sub := f.subscribe(t, Spec{EventTypes: []string{"dev.forgeway.push", "dev.forgeway.pull_request."}})
	f.emit(t, "dev.forgeway.push", "a1@r1", "b1@r2", "a2@r1", "b2@r2", "a3@r1", "org@")
	f.emit(t, "dev.forgeway.pull_request.opened", "a4@r1")
	f.emit(t, "dev.forgeway.ref.created", "skipped@r1") // filtered out
	f.drain(t, "8 deliveries", func() bool { return len(f.c.got()) >= 7 })
	got := f.c.got()
	byRepo := map[string][]string{}
	for _, r := range got {
		byRepo[r.repo] = append(byRepo[r.repo], r.id)
	}
	if !slices.Equal(byRepo["r1"], []string{"a1", "a2", "a3", "a4"}) || !slices.Equal(byRepo["r2"], []string{"b1", "b2"}) || !slices.Equal(byRepo[""], []string{"org"}) {
		t.Fatalf("deliveries per repository: %v", byRepo)
	}
	as := f.attempts(t, sub.ID)
	if len(as) != 7 {
		t.Fatalf("%d attempts, want 7", len(as))
	}
	for id, a := range as {
		if a.Status != store.AttemptDelivered || a.Tries != 1 || a.ResponseStatus != 204 {
			t.Errorf("attempt of %s: %+v", id, a)
		}
	}
	// Nothing is sent twice by later rounds.
	for range 3 {
		if _, err := f.svc.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.c.got()); n != 7 {
		t.Fatalf("%d deliveries after more rounds, want 7", n)
	}
}

func TestFailedHeadHoldsItsRepositoryOnly(t *testing.T) {
	f := newFixture(t, Options{Schedule: []time.Duration{150 * time.Millisecond}})
	f.c.answer = func(id string, n int) (int, time.Duration) {
		if id == "a1" && n == 1 {
			return 500, 0
		}
		return 200, 0
	}
	sub := f.subscribe(t, Spec{})
	f.emit(t, "dev.forgeway.push", "a1@r1", "a2@r1", "b1@r2")
	f.drain(t, "a1's first try and b1", func() bool {
		g := ids(f.c.got())
		return slices.Contains(g, "a1") && slices.Contains(g, "b1")
	})
	if g := ids(f.c.got()); slices.Contains(g, "a2") {
		t.Fatalf("a2 was sent while a1 was pending: %v", g)
	}
	a1 := f.attempts(t, sub.ID)["a1"]
	if a1.Status != store.AttemptPending || a1.ResponseStatus != 500 || !strings.Contains(a1.Error, "HTTP 500: answer body") {
		t.Fatalf("a1 after a failed try: %+v", a1)
	}
	if strings.Contains(a1.Error, "key=x") {
		t.Errorf("the error names the URL's query: %s", a1.Error)
	}
	f.drain(t, "a2", func() bool { return slices.Contains(ids(f.c.got()), "a2") })
	got := f.c.got()
	var first, retry time.Time
	for _, r := range got {
		if r.id == "a1" && first.IsZero() {
			first = r.at
		} else if r.id == "a1" {
			retry = r.at
		}
	}
	if retry.Sub(first) < 150*time.Millisecond {
		t.Errorf("retried after %s, the schedule says 150ms", retry.Sub(first))
	}
	if want := []string{"a1", "a1", "a2"}; !slices.Equal(filter(ids(got), "a"), want) {
		t.Errorf("r1 deliveries %v, want %v", filter(ids(got), "a"), want)
	}
}

func filter(list []string, prefix string) []string {
	var out []string
	for _, v := range list {
		if strings.HasPrefix(v, prefix) {
			out = append(out, v)
		}
	}
	return out
}

func TestRetriesOnScheduleThenDeadLettersAndRedelivers(t *testing.T) {
	schedule := []time.Duration{20 * time.Millisecond, 60 * time.Millisecond}
	f := newFixture(t, Options{Schedule: schedule, Timeout: 100 * time.Millisecond})
	down := true
	var mu sync.Mutex
	f.c.answer = func(id string, n int) (int, time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !down || id != "a1":
			return 200, 0
		case n == 2:
			return 200, 300 * time.Millisecond // answers too late: a timeout
		}
		return 503, 0
	}
	sub := f.subscribe(t, Spec{})
	f.emit(t, "dev.forgeway.push", "a1@r1", "a2@r1")
	f.drain(t, "a1 dead-lettered", func() bool { return f.attempts(t, sub.ID)["a1"].Status == store.AttemptDead })
	a1 := f.attempts(t, sub.ID)["a1"]
	if a1.Tries != len(schedule)+1 || a1.ResponseStatus != 503 {
		t.Fatalf("dead attempt: %+v", a1)
	}
	var tries []received
	for _, r := range f.c.got() {
		if r.id == "a1" {
			tries = append(tries, r)
		}
	}
	if len(tries) != 3 {
		t.Fatalf("a1 tried %d times, want 3 (one, then one per scheduled retry)", len(tries))
	}
	for i, d := range schedule {
		// The second try timed out: its retry is counted from the try's end.
		if gap := tries[i+1].at.Sub(tries[i].at); gap < d {
			t.Errorf("retry %d came %s after the try before, the schedule says %s", i+1, gap, d)
		}
	}
	// The dead letter no longer holds the repository's next event.
	f.drain(t, "a2 delivered", func() bool { return f.attempts(t, sub.ID)["a2"].Status == store.AttemptDelivered })

	// The timed-out try was recorded as such.
	items, _, err := f.st.ListSubscriptionAttempts(t.Context(), store.SubscriptionAttemptFilter{SubscriptionID: sub.ID, Status: store.AttemptDead})
	if err != nil || len(items) != 1 || items[0].EventID != "a1" {
		t.Fatalf("dead attempts: %+v %v", items, err)
	}

	// Redelivered by hand once the consumer is back: sent again and delivered.
	mu.Lock()
	down = false
	mu.Unlock()
	if _, err := f.svc.Redeliver(t.Context(), sub.ID, a1.N); err != nil {
		t.Fatal(err)
	}
	f.drain(t, "a1 redelivered", func() bool { return f.attempts(t, sub.ID)["a1"].Status == store.AttemptDelivered })
	if a := f.attempts(t, sub.ID)["a1"]; a.Tries != 1 || a.Error != "" {
		t.Errorf("redelivered attempt: %+v", a)
	}
	if _, err := f.svc.Redeliver(t.Context(), sub.ID, 999999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("redeliver missing: %v", err)
	}
}

func TestTimeoutIsAFailedTry(t *testing.T) {
	f := newFixture(t, Options{Timeout: 50 * time.Millisecond, Schedule: []time.Duration{time.Hour}})
	f.c.answer = func(string, int) (int, time.Duration) { return 200, time.Second }
	sub := f.subscribe(t, Spec{})
	f.emit(t, "dev.forgeway.push", "slow@r1")
	start := time.Now()
	f.drain(t, "the try recorded", func() bool {
		return f.attempts(t, sub.ID)["slow"].Tries == 1 && f.attempts(t, sub.ID)["slow"].LeaseOwner == ""
	})
	a := f.attempts(t, sub.ID)["slow"]
	if a.Status != store.AttemptPending || !strings.Contains(a.Error, "no answer within 50ms") || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("timed-out try after %s: %+v", time.Since(start), a)
	}
	if d := time.Until(a.NextAt); d < 50*time.Minute {
		t.Errorf("next try in %s, want about an hour", d)
	}
}

func TestDisabledSubscriptionWaitsAndResumes(t *testing.T) {
	f := newFixture(t, Options{})
	sub := f.subscribe(t, Spec{Disabled: true})
	f.emit(t, "dev.forgeway.push", "a1@r1")
	for range 3 {
		if _, err := f.svc.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.c.got()); n != 0 {
		t.Fatalf("a disabled subscription got %d deliveries", n)
	}
	on := false
	if _, _, err := f.svc.Update(t.Context(), sub.ID, Patch{Disabled: &on}); err != nil {
		t.Fatal(err)
	}
	f.drain(t, "delivery after enabling", func() bool { return len(f.c.got()) == 1 })
}

func TestCreateAndUpdateRefuseBadInput(t *testing.T) {
	f := newFixture(t, Options{})
	ok := "https://consumer.example/hook"
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"not http", Spec{URL: "ftp://consumer.example/x"}, "http or https"},
		{"relative", Spec{URL: "/hook"}, "http or https"},
		{"no host", Spec{URL: "https:///hook"}, "no host"},
		{"userinfo", Spec{URL: "https://user:pass@consumer.example/hook"}, "user name or password"},
		{"fragment", Spec{URL: ok + "#x"}, "fragment"},
		{"unknown type", Spec{URL: ok, EventTypes: []string{"dev.forgeway.pushed"}}, "unknown event type filter"},
		{"unknown prefix", Spec{URL: ok, EventTypes: []string{"dev.forgeway.issue."}}, "unknown event type filter"},
		{"other namespace", Spec{URL: ok, EventTypes: []string{"com.github.push"}}, "unknown event type filter"},
		{"empty type", Spec{URL: ok, EventTypes: []string{" "}}, "empty"},
		{"unknown integration", Spec{URL: ok, IntegrationIDs: []string{"int_nope"}}, "no integration int_nope"},
		{"bad secret", Spec{URL: ok, Secret: "hunter2hunter2"}, "whsec_"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.svc.Create(t.Context(), tc.spec)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Create: %v, want ErrInvalid saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "user:pass") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
	subs, err := f.st.ListSubscriptions(t.Context())
	if err != nil || len(subs) != 0 {
		t.Fatalf("bad input created %d subscriptions (%v)", len(subs), err)
	}
	// Good filters are accepted and normalized; the given secret is kept, sealed.
	sub, secret, err := f.svc.Create(t.Context(), Spec{URL: ok, Secret: vecSecret, EventTypes: []string{"dev.forgeway.", "dev.forgeway.pull_request.merged", "dev.forgeway.push", "dev.forgeway.push"}, RepositoryIDs: []string{" 42 "}})
	if err != nil || secret != vecSecret {
		t.Fatalf("Create: %v (secret returned %v)", err, secret == vecSecret)
	}
	if len(sub.EventTypes) != 3 || sub.RepositoryIDs[0] != "42" || strings.Contains(string(sub.SecretEnc), vecSecret) {
		t.Errorf("stored: %+v", sub)
	}
	bad := "http://a@b/"
	if _, _, err := f.svc.Update(t.Context(), sub.ID, Patch{URL: &bad}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Update with a bad URL: %v", err)
	}
	rotate := ""
	got, newSecret, err := f.svc.Update(t.Context(), sub.ID, Patch{RotateSecret: &rotate})
	if err != nil || newSecret == "" || newSecret == vecSecret || ValidateSecret(newSecret) != nil {
		t.Fatalf("rotate: %v %q", err, newSecret)
	}
	if got.URL != ok {
		t.Errorf("rotation changed the URL: %s", got.URL)
	}
	if _, _, err := f.svc.Update(t.Context(), "sub_nope", Patch{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update missing: %v", err)
	}
}

func TestMatchesAndLane(t *testing.T) {
	ev := store.Event{ID: "e", IntegrationID: "int_a", RepositoryID: "42", Type: "dev.forgeway.pull_request.opened"}
	tests := []struct {
		name string
		sub  store.Subscription
		want bool
	}{
		{"no filters", store.Subscription{}, true},
		{"exact type", store.Subscription{EventTypes: []string{"dev.forgeway.pull_request.opened"}}, true},
		{"prefix", store.Subscription{EventTypes: []string{"dev.forgeway.push", "dev.forgeway.pull_request."}}, true},
		{"other type", store.Subscription{EventTypes: []string{"dev.forgeway.push"}}, false},
		{"not a prefix without the dot", store.Subscription{EventTypes: []string{"dev.forgeway.pull_request"}}, false},
		{"integration", store.Subscription{IntegrationIDs: []string{"int_b", "int_a"}}, true},
		{"other integration", store.Subscription{IntegrationIDs: []string{"int_b"}}, false},
		{"repository", store.Subscription{RepositoryIDs: []string{"42"}}, true},
		{"other repository", store.Subscription{RepositoryIDs: []string{"43"}}, false},
		{"all must hold", store.Subscription{EventTypes: []string{"dev.forgeway."}, RepositoryIDs: []string{"43"}}, false},
	}
	for _, tc := range tests {
		if got := Matches(tc.sub, ev); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
	other := ev
	other.IntegrationID = "int_b"
	if Lane(ev) == Lane(other) {
		t.Error("the same host id on two integrations shares a lane")
	}
	a, b := store.Event{ID: "x", IntegrationID: "int_a"}, store.Event{ID: "y", IntegrationID: "int_a"}
	if Lane(a) == Lane(b) {
		t.Error("events of no repository share a lane")
	}
}

// Two replicas running on one store deliver every event once, in order per repository.
func TestReplicasDeliverEachEventOnce(t *testing.T) {
	f := newFixture(t, Options{Owner: "replica-a", Workers: 2})
	other := New(Options{Store: f.st, Keys: f.svc.keys, Owner: "replica-b", Workers: 2, Poll: 10 * time.Millisecond})
	f.subscribe(t, Spec{})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, s := range []*Service{f.svc, other} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Run(ctx) }()
	}
	var want []string
	for i := range 20 {
		id := fmt.Sprintf("e%02d@r%d", i, i%3)
		f.emit(t, "dev.forgeway.push", id)
		want = append(want, id)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(f.c.got()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // room for a duplicate to show
	cancel()
	wg.Wait()
	got := f.c.got()
	if len(got) != len(want) {
		t.Fatalf("%d deliveries, want %d: %v", len(got), len(want), ids(got))
	}
	byRepo := map[string][]string{}
	for _, r := range got {
		byRepo[r.repo] = append(byRepo[r.repo], r.id)
	}
	for repo, list := range byRepo {
		if !slices.IsSorted(list) {
			t.Errorf("%s delivered out of order: %v", repo, list)
		}
	}
}
