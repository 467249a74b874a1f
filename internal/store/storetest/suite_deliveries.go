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

// jobsOfKind lists every job of a kind (all states).
func jobsOfKind(t *testing.T, st store.Store, kind string) []store.Job {
	t.Helper()
	var out []store.Job
	after := ""
	for {
		items, next, err := st.ListJobs(t.Context(), store.JobFilter{Kind: kind, Page: store.Page{After: after, Limit: 500}})
		ok(t, err, "list jobs")
		out = append(out, items...)
		if next == "" {
			return out
		}
		after = next
	}
}

// deliveryIDOf decodes the args InsertDelivery gives a delivery's default job when it is
// the only delivery of its group commit.
func deliveryIDOf(t *testing.T, j store.Job) string {
	t.Helper()
	ids := deliveryIDsOf(t, j)
	if len(ids) != 1 {
		t.Fatalf("job %d args %s: want one delivery", j.ID, j.Args)
	}
	return ids[0]
}

// deliveryIDsOf decodes the deliveries a default processing job is for.
func deliveryIDsOf(t *testing.T, j store.Job) []string {
	t.Helper()
	var args store.DeliveryJobArgs
	if err := json.Unmarshal(j.Args, &args); err != nil {
		t.Fatalf("job %d args %s: %v", j.ID, j.Args, err)
	}
	return args.IDs()
}

// testInsertDeliveryWithOutcome stores a delivery whose outcome is already set (an import, a
// test fixture): every field comes back as given, not as the defaults of one just received.
func testInsertDeliveryWithOutcome(t *testing.T, st store.Store) {
	ctx := t.Context()
	d := store.Delivery{
		IntegrationID: "int_a", Kind: "github", HostID: "guid-outcome", Event: "push", Action: "opened",
		Headers: map[string][]string{"X-Github-Event": {"push"}}, Body: []byte(`{"ref":"refs/heads/main"}`),
		Status: store.DeliveryFailed, Reason: "a reason", Error: "an error", Attempts: 3,
		EventIDs: []string{"evt_1", "evt_2"}, ReceivedAt: ts("2026-04-01T12:00:00.000001Z"),
		ProcessedAt: ts("2026-04-01T12:00:01.000002Z"),
	}
	want := d
	inserted, err := st.InsertDelivery(ctx, &d, store.NewJob{Kind: "process-delivery"})
	ok(t, err, "insert")
	if !inserted {
		t.Fatal("a new delivery was reported as a duplicate")
	}
	want.ID = d.ID
	got, err := st.GetDelivery(ctx, d.ID)
	ok(t, err, "get")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("get (-want +got):\n%s", diff)
	}
}

func testInsertDelivery(t *testing.T, st store.Store) {
	ctx := t.Context()
	recv := ts("2026-04-01T12:00:00.000001Z")
	d := store.Delivery{
		IntegrationID: "int_a", Kind: "github", HostID: "guid-1", Event: "push", Action: "",
		Headers: map[string][]string{"X-Github-Event": {"push"}}, Body: []byte(`{"ref":"refs/heads/main"}`),
		Test: true, ReceivedAt: recv,
	}
	want := d
	inserted, err := st.InsertDelivery(ctx, &d, store.NewJob{Kind: "process-delivery"})
	ok(t, err, "insert")
	if !inserted {
		t.Fatal("a new delivery was reported as a duplicate")
	}
	if !idPattern("dlv").MatchString(d.ID) {
		t.Errorf("delivery id %q", d.ID)
	}
	want.ID, want.Status = d.ID, store.DeliveryReceived
	got, err := st.GetDelivery(ctx, d.ID)
	ok(t, err, "get")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("get (-want +got):\n%s", diff)
	}
	wantUTC(t, "delivery", got.ReceivedAt)
	jobs := jobsOfKind(t, st, "process-delivery")
	if len(jobs) != 1 || deliveryIDOf(t, jobs[0]) != d.ID || jobs[0].State != store.JobAvailable {
		t.Fatalf("jobs = %+v, want one available job with delivery_id %s", jobs, d.ID)
	}

	// The host delivers it again: nothing is written, and the caller learns the stored id.
	again := store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: "guid-1", Event: "push", Body: []byte(`{}`)}
	inserted, err = st.InsertDelivery(ctx, &again, store.NewJob{Kind: "process-delivery"})
	ok(t, err, "insert duplicate")
	if inserted {
		t.Error("a duplicate was inserted")
	}
	if again.ID != d.ID {
		t.Errorf("duplicate's id = %q, want the stored %q", again.ID, d.ID)
	}
	if n := len(jobsOfKind(t, st, "process-delivery")); n != 1 {
		t.Errorf("%d jobs after a duplicate, want 1", n)
	}

	// The same host id on another integration or kind is another delivery.
	for _, other := range []store.Delivery{
		{IntegrationID: "int_b", Kind: "github", HostID: "guid-1"},
		{IntegrationID: "int_a", Kind: "gitea", HostID: "guid-1"},
		{IntegrationID: "int_a", Kind: "github"}, // no host id: never a duplicate
		{IntegrationID: "int_a", Kind: "github"},
	} {
		inserted, err := st.InsertDelivery(ctx, &other, store.NewJob{Kind: "process-delivery"})
		ok(t, err, "insert other")
		if !inserted {
			t.Errorf("delivery %+v reported as a duplicate", other)
		}
	}

	// Explicit args and job options are kept.
	x := store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: "guid-x"}
	runAt := ts("2030-01-01T00:00:00Z")
	_, err = st.InsertDelivery(ctx, &x, store.NewJob{Kind: "custom", Args: map[string]int{"n": 1}, MaxAttempts: 3, RunAt: runAt})
	ok(t, err, "insert with args")
	jobs = jobsOfKind(t, st, "custom")
	if len(jobs) != 1 || string(jobs[0].Args) != `{"n":1}` || jobs[0].MaxAttempts != 3 || !jobs[0].RunAt.Equal(runAt) {
		t.Errorf("custom job = %+v", jobs)
	}
	if _, err := st.InsertDelivery(ctx, &store.Delivery{Kind: "github", HostID: "no-kind"}, store.NewJob{}); err == nil {
		t.Error("a delivery whose job has no kind was accepted")
	}
	_, err = st.GetDelivery(ctx, "dlv_missing")
	wantErr(t, err, store.ErrNotFound, "get missing delivery")
}

func testInsertDeliveryConcurrentDuplicates(t *testing.T, st store.Store) {
	ctx := t.Context()
	const n = 20
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		inserted int
		idsSeen  = map[string]bool{}
		errs     []error
	)
	for range n {
		wg.Go(func() {
			d := store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: "same-guid", Body: []byte("{}")}
			ins, err := st.InsertDelivery(ctx, &d, store.NewJob{Kind: "process"})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if ins {
				inserted++
			}
			idsSeen[d.ID] = true
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if inserted != 1 {
		t.Errorf("%d callers inserted, want exactly 1", inserted)
	}
	if len(idsSeen) != 1 {
		t.Errorf("callers were told %d different ids, want the one stored", len(idsSeen))
	}
	if jobs := jobsOfKind(t, st, "process"); len(jobs) != 1 {
		t.Errorf("%d jobs, want exactly 1", len(jobs))
	}
	items, _, err := st.ListDeliveries(ctx, store.DeliveryFilter{})
	ok(t, err, "list")
	if len(items) != 1 {
		t.Errorf("%d deliveries stored, want 1", len(items))
	}
}

// testInsertDeliveryUniqueJob: deliveries whose processing job has a unique key, committed
// together or not, are all stored and leave one pending job of that key.
func testInsertDeliveryUniqueJob(t *testing.T, st store.Store) {
	const n = 10
	ids := insertDistinct(t, st, n, func(i int) store.NewJob {
		return store.NewJob{Kind: "reindex", UniqueKey: "reindex/int_a", Args: map[string]int{"n": i}}
	})
	if len(ids) != n {
		t.Errorf("%d distinct ids, want %d", len(ids), n)
	}
	jobs := jobsOfKind(t, st, "reindex")
	if len(jobs) != 1 {
		t.Fatalf("%d jobs, want the one pending job of the key", len(jobs))
	}
	if jobs[0].UniqueKey != "reindex/int_a" || jobs[0].State != store.JobAvailable {
		t.Errorf("job = key %q state %q, want key reindex/int_a, available", jobs[0].UniqueKey, jobs[0].State)
	}
}

// insertDistinct inserts n deliveries with distinct host ids concurrently, the i-th with
// job(i), and returns the ids they were given. Any error, or one taken for a duplicate, fails
// the test.
func insertDistinct(t *testing.T, st store.Store, n int, job func(i int) store.NewJob) map[string]bool {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		got  = map[string]bool{}
	)
	for i := range n {
		wg.Go(func() {
			d := store.Delivery{IntegrationID: "int_a", Kind: "github", HostID: fmt.Sprint("guid-", i), Body: []byte("{}")}
			ins, err := st.InsertDelivery(t.Context(), &d, job(i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case !ins:
				errs = append(errs, fmt.Errorf("delivery %d reported as a duplicate", i))
			default:
				got[d.ID] = true
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors, first: %v", len(errs), errs[0])
	}
	return got
}

func testInsertDeliveryConcurrentDistinct(t *testing.T, st store.Store) {
	ctx := t.Context()
	const n = 500
	got := insertDistinct(t, st, n, func(int) store.NewJob { return store.NewJob{Kind: "process"} })
	if len(got) != n {
		t.Fatalf("%d distinct ids, want %d", len(got), n)
	}
	// Every acknowledged delivery is readable, each in exactly one job (deliveries committed
	// together share theirs).
	perDelivery := map[string]int{}
	jobs := jobsOfKind(t, st, "process")
	for _, j := range jobs {
		for _, id := range deliveryIDsOf(t, j) {
			perDelivery[id]++
		}
	}
	if len(jobs) >= n {
		t.Errorf("%d jobs for %d deliveries inserted concurrently: none shared", len(jobs), n)
	}
	for id := range got {
		if _, err := st.GetDelivery(ctx, id); err != nil {
			t.Errorf("acknowledged delivery %s: %v", id, err)
		}
		if perDelivery[id] != 1 {
			t.Errorf("delivery %s has %d jobs, want 1", id, perDelivery[id])
		}
	}
	if len(perDelivery) != n {
		t.Errorf("jobs reference %d deliveries, want %d", len(perDelivery), n)
	}
}

func testDeliveryList(t *testing.T, st store.Store) {
	ctx := t.Context()
	base := ts("2026-04-01T00:00:00Z")
	var all []string // newest first
	for i := range 12 {
		integ := "int_a"
		if i%3 == 0 {
			integ = "int_b"
		}
		// Pairs share a timestamp so that the id breaks ties.
		d := store.Delivery{IntegrationID: integ, Kind: "github", HostID: fmt.Sprint(i), ReceivedAt: base.Add(time.Duration(i/2) * time.Minute)}
		_, err := st.InsertDelivery(ctx, &d, store.NewJob{Kind: "p"})
		ok(t, err, "insert")
		all = append(all, d.ID)
	}
	// Expected order: received_at descending, then id descending.
	want := slices.Clone(all)
	slices.SortFunc(want, func(a, b string) int {
		ia, ib := slices.Index(all, a)/2, slices.Index(all, b)/2
		if ia != ib {
			return ib - ia
		}
		if a > b {
			return -1
		}
		return 1
	})
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		items, next, err := st.ListDeliveries(ctx, store.DeliveryFilter{Page: store.Page{After: after, Limit: 5}})
		ok(t, err, "page")
		for _, d := range items {
			got = append(got, d.ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("newest first over pages (-want +got):\n%s", diff)
	}

	items, _, err := st.ListDeliveries(ctx, store.DeliveryFilter{IntegrationID: "int_b"})
	ok(t, err, "filter by integration")
	if len(items) != 4 {
		t.Errorf("int_b has %d deliveries, want 4", len(items))
	}

	d, err := st.GetDelivery(ctx, all[0])
	ok(t, err, "get")
	d.Status, d.Reason, d.EventIDs = store.DeliveryIgnored, "test ping", []string{"e1", "e2"}
	ok(t, st.FinishDelivery(ctx, &d), "finish")
	if d.Attempts != 1 || d.ProcessedAt.IsZero() {
		t.Errorf("after finish: attempts %d processed %v", d.Attempts, d.ProcessedAt)
	}
	d.Status, d.Reason, d.Error = store.DeliveryFailed, "", "normalize: bad payload"
	ok(t, st.FinishDelivery(ctx, &d), "finish again")
	got2, err := st.GetDelivery(ctx, d.ID)
	ok(t, err, "get finished")
	if got2.Status != store.DeliveryFailed || got2.Error != "normalize: bad payload" || got2.Attempts != 2 ||
		!slices.Equal(got2.EventIDs, []string{"e1", "e2"}) || got2.ProcessedAt.IsZero() {
		t.Errorf("finished delivery = %+v", got2)
	}
	items, _, err = st.ListDeliveries(ctx, store.DeliveryFilter{Status: store.DeliveryFailed})
	ok(t, err, "filter by status")
	if len(items) != 1 || items[0].ID != d.ID {
		t.Errorf("failed deliveries = %d, want just %s", len(items), d.ID)
	}
	missing := store.Delivery{ID: "dlv_missing", Status: store.DeliveryProcessed}
	wantErr(t, st.FinishDelivery(ctx, &missing), store.ErrNotFound, "finish a missing delivery")
	// A well-formed cursor of another list is refused, not read as a position in this one.
	for range 2 {
		_, _, err := st.InsertJob(ctx, store.NewJob{Kind: "other"})
		ok(t, err, "insert job")
	}
	_, jobsCursor, err := st.ListJobs(ctx, store.JobFilter{Kind: "other", Page: store.Page{Limit: 1}})
	ok(t, err, "list jobs")
	_, _, err = st.ListDeliveries(ctx, store.DeliveryFilter{Page: store.Page{After: jobsCursor}})
	wantErr(t, err, store.ErrBadCursor, "a jobs cursor given to the deliveries list")
}

func testEvents(t *testing.T, st store.Store) {
	ctx := t.Context()
	at := ts("2026-04-02T10:00:00Z")
	ev := func(id string) store.Event {
		return store.Event{ID: id, IntegrationID: "int_a", RepositoryID: "r1", DeliveryID: "dlv_1", Type: "dev.forgeway.push",
			Time: at, Document: json.RawMessage(`{"id":"` + id + `"}`)}
	}
	first := []store.Event{ev("e1"), ev("e2")}
	ok(t, st.AppendEvents(ctx, first), "append")
	if first[0].Seq <= 0 || first[1].Seq <= first[0].Seq {
		t.Fatalf("seqs %d, %d: want increasing and positive", first[0].Seq, first[1].Seq)
	}
	// Reprocessing the delivery appends the same ids again, and a new one.
	second := []store.Event{ev("e2"), ev("e3"), ev("e1")}
	ok(t, st.AppendEvents(ctx, second), "append again")
	if second[0].Seq != 0 || second[2].Seq != 0 {
		t.Errorf("skipped events got seqs %d, %d; want 0", second[0].Seq, second[2].Seq)
	}
	if second[1].Seq <= first[1].Seq {
		t.Errorf("new event seq %d, want > %d", second[1].Seq, first[1].Seq)
	}
	ok(t, st.AppendEvents(ctx, nil), "append nothing")
	got, err := st.ListEvents(ctx, store.EventFilter{})
	ok(t, err, "list")
	want := []store.Event{first[0], first[1], second[1]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	for _, e := range got {
		wantUTC(t, "event", e.Time)
	}
}

func testEventFilters(t *testing.T, st store.Store) {
	ctx := t.Context()
	var evs []store.Event
	types := []string{
		"dev.forgeway.push", "dev.forgeway.pull_request.opened", "dev.forgeway.pull_request.merged",
		"dev.forgeway.pull_request_review.submitted", "dev.forgeway.ref.created",
	}
	for i := range 25 {
		evs = append(evs, store.Event{ID: fmt.Sprint("e", i), Type: types[i%len(types)], RepositoryID: fmt.Sprint("r", i%2),
			IntegrationID: fmt.Sprint("int_", i%3), DeliveryID: fmt.Sprint("dlv_", i/4), Document: json.RawMessage(`{}`)})
	}
	ok(t, st.AppendEvents(ctx, evs), "append")
	seq := func(es []store.Event) []int64 {
		var out []int64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	pick := func(keep func(e store.Event) bool) []int64 {
		var out []store.Event
		for _, e := range evs {
			if keep(e) {
				out = append(out, e)
			}
		}
		return seq(out)
	}
	for _, tc := range []struct {
		name string
		f    store.EventFilter
		want []int64
	}{
		{"all", store.EventFilter{}, seq(evs)},
		{"after", store.EventFilter{AfterSeq: evs[19].Seq}, seq(evs[20:])},
		{"limit", store.EventFilter{AfterSeq: evs[2].Seq, Limit: 4}, seq(evs[3:7])},
		{"exact type", store.EventFilter{Type: "dev.forgeway.pull_request.opened"}, pick(func(e store.Event) bool { return e.Type == types[1] })},
		{"prefix", store.EventFilter{Type: "dev.forgeway.pull_request."}, pick(func(e store.Event) bool { return e.Type == types[1] || e.Type == types[2] })},
		{"exact type is not a prefix", store.EventFilter{Type: "dev.forgeway.pull_request"}, nil},
		{"repository", store.EventFilter{RepositoryID: "r1"}, pick(func(e store.Event) bool { return e.RepositoryID == "r1" })},
		{"prefix and repository", store.EventFilter{Type: "dev.forgeway.ref.", RepositoryID: "r0"},
			pick(func(e store.Event) bool { return e.Type == types[4] && e.RepositoryID == "r0" })},
		{"integration", store.EventFilter{IntegrationID: "int_1"}, pick(func(e store.Event) bool { return e.IntegrationID == "int_1" })},
		{"delivery", store.EventFilter{DeliveryID: "dlv_2"}, seq(evs[8:12])},
		{"integration and delivery", store.EventFilter{IntegrationID: "int_0", DeliveryID: "dlv_2"},
			pick(func(e store.Event) bool { return e.IntegrationID == "int_0" && e.DeliveryID == "dlv_2" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.ListEvents(ctx, tc.f)
			ok(t, err, "list")
			if diff := cmp.Diff(tc.want, seq(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// The default limit is 100 and the maximum 1000.
	var many []store.Event
	for i := range 1100 {
		many = append(many, store.Event{ID: fmt.Sprint("m", i), Type: "t", Document: json.RawMessage(`{}`)})
	}
	ok(t, st.AppendEvents(ctx, many), "append many")
	got, err := st.ListEvents(ctx, store.EventFilter{Type: "t"})
	ok(t, err, "default limit")
	if len(got) != 100 {
		t.Errorf("default limit gave %d events, want 100", len(got))
	}
	got, err = st.ListEvents(ctx, store.EventFilter{Type: "t", Limit: 5000})
	ok(t, err, "max limit")
	if len(got) != 1000 {
		t.Errorf("limit 5000 gave %d events, want the maximum 1000", len(got))
	}
}

// testGetDeliveries checks that GetDeliveries returns the deliveries named, whole and in the
// order named, leaving out ids with no delivery, across more ids than one statement takes.
func testGetDeliveries(t *testing.T, st store.Store) {
	ctx := t.Context()
	var ids []string
	for i := range 70 {
		d := store.Delivery{
			IntegrationID: "int_a", Kind: "github", HostID: fmt.Sprintf("guid-get-%d", i), Event: "push",
			Headers: map[string][]string{"X-Github-Event": {"push"}}, Body: []byte(fmt.Sprintf(`{"n":%d}`, i)),
			ReceivedAt: ts("2026-04-01T12:00:00Z").Add(time.Duration(i) * time.Millisecond),
		}
		_, err := st.InsertDelivery(ctx, &d, store.NewJob{Kind: "process-delivery"})
		ok(t, err, "insert")
		ids = append(ids, d.ID)
	}
	// Newest first, with a missing id and a repeated one among them.
	ask := slices.Clone(ids)
	slices.Reverse(ask)
	ask = slices.Insert(ask, 3, "dlv_missing")
	ask = append(ask, ask[0])
	got, err := st.GetDeliveries(ctx, ask)
	ok(t, err, "get deliveries")
	if len(got) != len(ids) {
		t.Fatalf("got %d deliveries, want %d", len(got), len(ids))
	}
	for i, d := range got {
		want, err := st.GetDelivery(ctx, ids[len(ids)-1-i])
		ok(t, err, "get delivery")
		if diff := cmp.Diff(want, d); diff != "" {
			t.Fatalf("delivery %d (-GetDelivery +GetDeliveries):\n%s", i, diff)
		}
	}
	if got, err := st.GetDeliveries(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("no ids: %v, %v", got, err)
	}
}
