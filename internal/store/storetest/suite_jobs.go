package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

// mustClaim claims and fails the test on an error.
func mustClaim(t *testing.T, st store.Store, owner string, kinds []string, n int, lease time.Duration) []store.Job {
	t.Helper()
	jobs, err := st.ClaimJobs(t.Context(), owner, kinds, n, lease)
	ok(t, err, "claim")
	return jobs
}

func jobIDs(js []store.Job) []int64 {
	var out []int64
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

func testJobInsertAndGet(t *testing.T, st store.Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Second)
	j, inserted, err := st.InsertJob(ctx, store.NewJob{Kind: "sync", Args: map[string]string{"repo": "rep_1"}})
	ok(t, err, "insert")
	if !inserted || j.ID == 0 {
		t.Fatalf("inserted=%v id=%d", inserted, j.ID)
	}
	if j.State != store.JobAvailable || j.Attempt != 0 || j.MaxAttempts != 25 || string(j.Args) != `{"repo":"rep_1"}` {
		t.Errorf("new job = %+v, want available, attempt 0, 25 attempts, the args", j)
	}
	if j.RunAt.Before(before) || j.RunAt.After(time.Now().Add(time.Second)) || j.CreatedAt.IsZero() {
		t.Errorf("RunAt %v CreatedAt %v, want now", j.RunAt, j.CreatedAt)
	}
	got, err := st.GetJob(ctx, j.ID)
	ok(t, err, "get")
	if got.ID != j.ID || got.Kind != "sync" || string(got.Args) != string(j.Args) || !got.RunAt.Equal(j.RunAt) {
		t.Errorf("get = %+v, want %+v", got, j)
	}
	wantUTC(t, "job", got.RunAt, got.CreatedAt)
	_, err = st.GetJob(ctx, j.ID+1000)
	wantErr(t, err, store.ErrNotFound, "get missing job")
	if _, _, err := st.InsertJob(ctx, store.NewJob{}); err == nil {
		t.Error("a job without a kind was inserted")
	}
	wantErr(t, st.CompleteJob(ctx, j.ID+1000, "w"), store.ErrNotFound, "complete missing job")
	wantErr(t, st.CompleteJob(ctx, j.ID, "w"), store.ErrLeaseLost, "complete a job nobody claimed")
}

func testJobClaimOrder(t *testing.T, st store.Store) {
	ctx := t.Context()
	now := time.Now()
	mk := func(kind string, runAt time.Time) store.Job {
		j, _, err := st.InsertJob(ctx, store.NewJob{Kind: kind, RunAt: runAt})
		ok(t, err, "insert")
		return j
	}
	later := mk("a", now.Add(-1*time.Minute))
	oldest := mk("a", now.Add(-3*time.Minute))
	future := mk("a", now.Add(time.Hour))
	otherKind := mk("b", now.Add(-2*time.Minute))
	middle := mk("a", now.Add(-2*time.Minute))

	got := mustClaim(t, st, "w1", []string{"a"}, 2, time.Minute)
	if fmt.Sprint(jobIDs(got)) != fmt.Sprint([]int64{oldest.ID, middle.ID}) {
		t.Errorf("claimed %v, want the two oldest of kind a [%d %d]", jobIDs(got), oldest.ID, middle.ID)
	}
	for _, j := range got {
		if j.State != store.JobRunning || j.Attempt != 1 || j.LeaseOwner != "w1" || !j.LeaseUntil.After(now) {
			t.Errorf("claimed job = %+v, want running, attempt 1, leased to w1", j)
		}
	}
	got = mustClaim(t, st, "w1", []string{"a"}, 10, time.Minute)
	if fmt.Sprint(jobIDs(got)) != fmt.Sprint([]int64{later.ID}) {
		t.Errorf("second claim %v, want [%d] (not the future job %d)", jobIDs(got), later.ID, future.ID)
	}
	got = mustClaim(t, st, "w1", nil, 10, time.Minute)
	if fmt.Sprint(jobIDs(got)) != fmt.Sprint([]int64{otherKind.ID}) {
		t.Errorf("claim of all kinds %v, want [%d]", jobIDs(got), otherKind.ID)
	}
	if got := mustClaim(t, st, "w1", nil, 10, time.Minute); len(got) != 0 {
		t.Errorf("claimed %v from an empty queue", jobIDs(got))
	}
	if got := mustClaim(t, st, "w1", nil, 0, time.Minute); len(got) != 0 {
		t.Errorf("claim of 0 returned %v", jobIDs(got))
	}
}

func testJobClaimConcurrent(t *testing.T, st store.Store) {
	ctx := t.Context()
	const jobs, claimers = 200, 6
	for i := range jobs {
		_, _, err := st.InsertJob(ctx, store.NewJob{Kind: "c", Args: i})
		ok(t, err, "insert")
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		claims = map[int64][]string{}
		errs   []error
	)
	for w := range claimers {
		owner := fmt.Sprint("w", w)
		wg.Go(func() {
			for {
				got, err := st.ClaimJobs(ctx, owner, []string{"c"}, 7, time.Minute)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, j := range got {
					claims[j.ID] = append(claims[j.ID], owner)
				}
				mu.Unlock()
				for _, j := range got {
					if err := st.CompleteJob(ctx, j.ID, owner); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors, first: %v", len(errs), errs[0])
	}
	if len(claims) != jobs {
		t.Errorf("%d jobs claimed, want %d", len(claims), jobs)
	}
	for id, owners := range claims {
		if len(owners) != 1 {
			t.Errorf("job %d claimed %d times: %v", id, len(owners), owners)
		}
	}
	stats, err := st.JobStats(ctx)
	ok(t, err, "stats")
	if stats[store.JobCompleted] != jobs {
		t.Errorf("stats = %v, want %d completed", stats, jobs)
	}
}

func testJobLeaseTakeover(t *testing.T, st store.Store) {
	ctx := t.Context()
	j, _, err := st.InsertJob(ctx, store.NewJob{Kind: "slow"})
	ok(t, err, "insert")
	first := mustClaim(t, st, "dead-worker", nil, 1, 150*time.Millisecond)
	if len(first) != 1 {
		t.Fatalf("claimed %d jobs", len(first))
	}
	ok(t, st.ExtendLease(ctx, j.ID, "dead-worker", 150*time.Millisecond), "extend while held")
	ok(t, st.SetJobProgress(ctx, j.ID, "dead-worker", json.RawMessage(`{"done":1}`)), "progress while held")
	if got := mustClaim(t, st, "w2", nil, 1, time.Minute); len(got) != 0 {
		t.Fatalf("claimed a job whose lease holds: %v", jobIDs(got))
	}
	time.Sleep(250 * time.Millisecond) // the worker died: its lease runs out

	got := mustClaim(t, st, "w2", nil, 1, time.Minute)
	if len(got) != 1 || got[0].ID != j.ID {
		t.Fatalf("re-claim = %v, want [%d]", jobIDs(got), j.ID)
	}
	if got[0].Attempt != 2 || got[0].LeaseOwner != "w2" || string(got[0].Progress) != `{"done":1}` {
		t.Errorf("re-claimed job = %+v, want attempt 2, owner w2, the progress kept", got[0])
	}
	wantErr(t, st.CompleteJob(ctx, j.ID, "dead-worker"), store.ErrLeaseLost, "complete after takeover")
	wantErr(t, st.FailJob(ctx, j.ID, "dead-worker", "x", time.Time{}, false), store.ErrLeaseLost, "fail after takeover")
	wantErr(t, st.ExtendLease(ctx, j.ID, "dead-worker", time.Minute), store.ErrLeaseLost, "extend after takeover")
	wantErr(t, st.SetJobProgress(ctx, j.ID, "dead-worker", json.RawMessage(`{}`)), store.ErrLeaseLost, "progress after takeover")
	ok(t, st.SetJobProgress(ctx, j.ID, "w2", json.RawMessage(`{"done":2}`)), "progress by the new owner")
	ok(t, st.CompleteJob(ctx, j.ID, "w2"), "complete by the new owner")
	done, err := st.GetJob(ctx, j.ID)
	ok(t, err, "get")
	if done.State != store.JobCompleted || done.FinishedAt.IsZero() || string(done.Progress) != `{"done":2}` {
		t.Errorf("completed job = %+v", done)
	}
	wantErr(t, st.CompleteJob(ctx, j.ID, "w2"), store.ErrLeaseLost, "complete twice")
}

func testJobLeaseExpiredLastAttempt(t *testing.T, st store.Store) {
	ctx := t.Context()
	j, _, err := st.InsertJob(ctx, store.NewJob{Kind: "crashy", MaxAttempts: 1})
	ok(t, err, "insert")
	if got := mustClaim(t, st, "w1", nil, 1, 50*time.Millisecond); len(got) != 1 {
		t.Fatal("not claimed")
	}
	time.Sleep(120 * time.Millisecond)
	if got := mustClaim(t, st, "w2", nil, 1, time.Minute); len(got) != 0 {
		t.Errorf("a job whose last attempt's worker died was claimed again: %+v", got)
	}
	dead, err := st.GetJob(ctx, j.ID)
	ok(t, err, "get")
	if dead.State != store.JobDead || dead.LastError == "" {
		t.Errorf("job = %+v, want dead with a reason", dead)
	}
}

func testJobFail(t *testing.T, st store.Store) {
	ctx := t.Context()
	j, _, err := st.InsertJob(ctx, store.NewJob{Kind: "f", MaxAttempts: 2})
	ok(t, err, "insert")
	mustClaim(t, st, "w", nil, 1, time.Minute)
	retryAt := time.Now().Add(200 * time.Millisecond)
	ok(t, st.FailJob(ctx, j.ID, "w", "host said 502", retryAt, false), "fail")
	got, err := st.GetJob(ctx, j.ID)
	ok(t, err, "get")
	if got.State != store.JobRetryable || got.LastError != "host said 502" || !got.RunAt.Equal(retryAt.UTC().Truncate(time.Microsecond)) {
		t.Errorf("after a failure: %+v, want retryable at %v", got, retryAt)
	}
	if c := mustClaim(t, st, "w", nil, 1, time.Minute); len(c) != 0 {
		t.Errorf("claimed a retryable job before its time: %v", jobIDs(c))
	}
	time.Sleep(time.Until(retryAt) + 20*time.Millisecond)
	c := mustClaim(t, st, "w", nil, 1, time.Minute)
	if len(c) != 1 || c[0].Attempt != 2 {
		t.Fatalf("retry claim = %+v, want the job at attempt 2", c)
	}
	ok(t, st.FailJob(ctx, j.ID, "w", "again", time.Now(), false), "fail the last attempt")
	got, err = st.GetJob(ctx, j.ID)
	ok(t, err, "get")
	if got.State != store.JobDead || got.LastError != "again" || got.FinishedAt.IsZero() {
		t.Errorf("after the last attempt: %+v, want dead", got)
	}

	p, _, err := st.InsertJob(ctx, store.NewJob{Kind: "f"})
	ok(t, err, "insert")
	mustClaim(t, st, "w", nil, 1, time.Minute)
	ok(t, st.FailJob(ctx, p.ID, "w", "bad request", time.Now(), true), "fail permanently")
	got, err = st.GetJob(ctx, p.ID)
	ok(t, err, "get")
	if got.State != store.JobDead || got.Attempt != 1 {
		t.Errorf("after a permanent failure: %+v, want dead at attempt 1", got)
	}
}

func testJobUniqueKey(t *testing.T, st store.Store) {
	ctx := t.Context()
	a, inserted, err := st.InsertJob(ctx, store.NewJob{Kind: "sync", UniqueKey: "sync/rep_1", Args: 1})
	ok(t, err, "insert a")
	if !inserted {
		t.Fatal("first job not inserted")
	}
	b, inserted, err := st.InsertJob(ctx, store.NewJob{Kind: "sync", UniqueKey: "sync/rep_1", Args: 2})
	ok(t, err, "insert b")
	if inserted || b.ID != a.ID {
		t.Errorf("pending duplicate: inserted=%v id=%d, want the existing job %d", inserted, b.ID, a.ID)
	}
	other, inserted, err := st.InsertJob(ctx, store.NewJob{Kind: "sync", UniqueKey: "sync/rep_2"})
	ok(t, err, "insert other key")
	if !inserted || other.ID == a.ID {
		t.Error("another key was coalesced")
	}
	for range 2 {
		if _, inserted, err := st.InsertJob(ctx, store.NewJob{Kind: "sync"}); err != nil || !inserted {
			t.Errorf("jobs without a key must never coalesce: inserted=%v err=%v", inserted, err)
		}
	}

	// While a runs, a push arrives: it must cause another sync.
	claimed := mustClaim(t, st, "w", []string{"sync"}, 1, time.Minute)
	if len(claimed) != 1 || claimed[0].ID != a.ID {
		t.Fatalf("claimed %v, want [%d]", jobIDs(claimed), a.ID)
	}
	c, inserted, err := st.InsertJob(ctx, store.NewJob{Kind: "sync", UniqueKey: "sync/rep_1", Args: 3})
	ok(t, err, "insert while running")
	if !inserted || c.ID == a.ID {
		t.Fatalf("a running job blocked a new pending one: inserted=%v id=%d", inserted, c.ID)
	}
	d, inserted, err := st.InsertJob(ctx, store.NewJob{Kind: "sync", UniqueKey: "sync/rep_1"})
	ok(t, err, "insert again")
	if inserted || d.ID != c.ID {
		t.Errorf("second insert while c pending: inserted=%v id=%d, want %d", inserted, d.ID, c.ID)
	}

	// a fails: c does the same work, so a is not queued beside it.
	ok(t, st.FailJob(ctx, a.ID, "w", "timeout", time.Now(), false), "fail a")
	got, err := st.GetJob(ctx, a.ID)
	ok(t, err, "get a")
	if got.State != store.JobCancelled || !strings.Contains(got.LastError, "timeout") {
		t.Errorf("a = %+v, want cancelled (superseded) with its error", got)
	}
	// Once c completes, the key is free again.
	mustClaim(t, st, "w", []string{"sync"}, 10, time.Minute)
	ok(t, st.CompleteJob(ctx, c.ID, "w"), "complete c")
	_, inserted, err = st.InsertJob(ctx, store.NewJob{Kind: "sync", UniqueKey: "sync/rep_1"})
	ok(t, err, "insert after completion")
	if !inserted {
		t.Error("a completed job still holds its key")
	}
}

func testJobRetry(t *testing.T, st store.Store) {
	ctx := t.Context()
	j, _, err := st.InsertJob(ctx, store.NewJob{Kind: "r", MaxAttempts: 1, UniqueKey: "r/1"})
	ok(t, err, "insert")
	wantErr(t, st.RetryJob(ctx, j.ID), store.ErrConflict, "retry an available job")
	mustClaim(t, st, "w", nil, 1, time.Minute)
	wantErr(t, st.RetryJob(ctx, j.ID), store.ErrConflict, "retry a running job")
	ok(t, st.FailJob(ctx, j.ID, "w", "broken", time.Now(), false), "fail")
	ok(t, st.RetryJob(ctx, j.ID), "retry dead job")
	got, err := st.GetJob(ctx, j.ID)
	ok(t, err, "get")
	if got.State != store.JobAvailable || got.Attempt != 1 || got.MaxAttempts != 2 || got.RunAt.After(time.Now().Add(time.Second)) {
		t.Errorf("retried job = %+v, want available now, attempt 1, max 2", got)
	}
	c := mustClaim(t, st, "w", nil, 1, time.Minute)
	if len(c) != 1 || c[0].Attempt != 2 {
		t.Fatalf("claim after retry = %+v", c)
	}
	ok(t, st.CompleteJob(ctx, j.ID, "w"), "complete")
	// A pending job holding its key blocks the retry.
	_, _, err = st.InsertJob(ctx, store.NewJob{Kind: "r", UniqueKey: "r/1"})
	ok(t, err, "insert same key")
	wantErr(t, st.RetryJob(ctx, j.ID), store.ErrConflict, "retry while the key is pending")
	wantErr(t, st.RetryJob(ctx, j.ID+1000), store.ErrNotFound, "retry a missing job")
}

func testJobListAndStats(t *testing.T, st store.Store) {
	ctx := t.Context()
	var all []int64
	for i := range 12 {
		kind := "x"
		if i%4 == 0 {
			kind = "y"
		}
		j, _, err := st.InsertJob(ctx, store.NewJob{Kind: kind})
		ok(t, err, "insert")
		all = append(all, j.ID)
	}
	var got []int64
	after := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		items, next, err := st.ListJobs(ctx, store.JobFilter{Page: store.Page{After: after, Limit: 5}})
		ok(t, err, "page")
		got = append(got, jobIDs(items)...)
		if next == "" {
			break
		}
		after = next
	}
	for i := range all {
		if i >= len(got) || got[i] != all[len(all)-1-i] {
			t.Fatalf("paged ids %v, want newest first %v", got, all)
		}
	}
	if len(got) != len(all) {
		t.Fatalf("paged %d jobs, want %d", len(got), len(all))
	}
	items, _, err := st.ListJobs(ctx, store.JobFilter{Kind: "y"})
	ok(t, err, "filter kind")
	if len(items) != 3 {
		t.Errorf("%d jobs of kind y, want 3", len(items))
	}
	claimed := mustClaim(t, st, "w", []string{"y"}, 2, time.Minute)
	ok(t, st.CompleteJob(ctx, claimed[0].ID, "w"), "complete")
	items, _, err = st.ListJobs(ctx, store.JobFilter{State: store.JobRunning})
	ok(t, err, "filter state")
	if len(items) != 1 || items[0].ID != claimed[1].ID {
		t.Errorf("running jobs %v, want [%d]", jobIDs(items), claimed[1].ID)
	}
	stats, err := st.JobStats(ctx)
	ok(t, err, "stats")
	want := store.JobStats{store.JobAvailable: 10, store.JobRunning: 1, store.JobCompleted: 1}
	for _, s := range []string{store.JobAvailable, store.JobRunning, store.JobCompleted, store.JobRetryable, store.JobDead, store.JobCancelled} {
		if stats[s] != want[s] {
			t.Errorf("stats[%s] = %d, want %d (stats %v)", s, stats[s], want[s], stats)
		}
	}
	if _, _, err := st.ListJobs(ctx, store.JobFilter{Page: store.Page{After: "!!"}}); err == nil {
		t.Error("a bad cursor was accepted")
	}
	// The processing kind is listed another way (it is left out of the kind index).
	var processing []int64
	for range 2 {
		j, _, err := st.InsertJob(ctx, store.NewJob{Kind: store.JobProcessDelivery})
		ok(t, err, "insert")
		processing = append([]int64{j.ID}, processing...)
	}
	items, _, err = st.ListJobs(ctx, store.JobFilter{Kind: store.JobProcessDelivery})
	ok(t, err, "filter the processing kind")
	if got := jobIDs(items); !slices.Equal(got, processing) {
		t.Errorf("processing jobs %v, want %v", got, processing)
	}
}

// testJobIDsNeverGoBack: pruning finished jobs keeps the newest, so that a job inserted after
// every other was pruned still gets a new id (SQLite numbers rows from the largest present).
func testJobIDsNeverGoBack(t *testing.T, st store.Store) {
	ctx := t.Context()
	var last int64
	for round := range 3 {
		j, _, err := st.InsertJob(ctx, store.NewJob{Kind: "once"})
		ok(t, err, "insert")
		if j.ID <= last {
			t.Fatalf("round %d: job id %d after %d", round, j.ID, last)
		}
		last = j.ID
		claimed := mustClaim(t, st, "w", []string{"once"}, 1, time.Minute)
		ok(t, st.CompleteJob(ctx, claimed[0].ID, "w"), "complete")
		res, err := st.Prune(ctx, time.Now().Add(time.Hour))
		ok(t, err, "prune")
		if want := int64(min(round, 1)); res.Jobs != want {
			t.Errorf("round %d: pruned %d jobs, want %d (all but the newest)", round, res.Jobs, want)
		}
		if _, err := st.GetJob(ctx, j.ID); err != nil {
			t.Errorf("round %d: the newest job was pruned: %v", round, err)
		}
	}
}
