package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/jobs"
	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/store/storetest"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// start runs r until the test ends (or stop is called) and checks Run's result.
func start(t *testing.T, r *jobs.Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func getJob(t *testing.T, st store.Store, id int64) store.Job {
	t.Helper()
	j, err := st.GetJob(context.Background(), id)
	if err != nil {
		t.Fatalf("get job %d: %v", id, err)
	}
	return j
}

func insert(t *testing.T, st store.Store, nj store.NewJob) store.Job {
	t.Helper()
	j, _, err := st.InsertJob(context.Background(), nj)
	if err != nil {
		t.Fatalf("insert job: %v", err)
	}
	return j
}

// recorder is an Observer that keeps the outcomes.
type recorder struct {
	mu       sync.Mutex
	outcomes []string
}

func (r *recorder) JobFinished(kind, outcome string, wait, run time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes = append(r.outcomes, kind+":"+outcome)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.outcomes...)
}

func opts(owner string, obs jobs.Observer) jobs.RunnerOptions {
	return jobs.RunnerOptions{Owner: owner, Workers: 4, Poll: 10 * time.Millisecond, Lease: 30 * time.Second,
		Grace: time.Second, Logger: quiet(), Observer: obs}
}

func TestRetriesWithBackoffThenDead(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st store.Store) {
		var (
			mu     sync.Mutex
			starts []time.Time
		)
		rec := &recorder{}
		o := opts("w1", rec)
		var backoffAttempts []int
		o.Backoff = func(attempt int) time.Duration {
			mu.Lock()
			defer mu.Unlock()
			backoffAttempts = append(backoffAttempts, attempt)
			return 150 * time.Millisecond
		}
		r := jobs.NewRunner(st, o)
		r.Register("flaky", func(ctx context.Context, j *jobs.Job) error {
			mu.Lock()
			defer mu.Unlock()
			starts = append(starts, time.Now())
			return fmt.Errorf("host said 502 (attempt %d)", j.Attempt)
		}, jobs.KindOptions{})
		j := insert(t, st, store.NewJob{Kind: "flaky", MaxAttempts: 3})
		start(t, r)
		waitFor(t, 10*time.Second, "the job to die", func() bool { return getJob(t, st, j.ID).State == store.JobDead })

		got := getJob(t, st, j.ID)
		if got.Attempt != 3 || got.LastError != "host said 502 (attempt 3)" {
			t.Errorf("dead job = %+v, want 3 attempts and the last error", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(starts) != 3 {
			t.Fatalf("%d attempts ran, want 3", len(starts))
		}
		for i := 1; i < len(starts); i++ {
			if gap := starts[i].Sub(starts[i-1]); gap < 150*time.Millisecond {
				t.Errorf("attempt %d started %v after the previous one, want at least the 150ms backoff", i+1, gap)
			}
		}
		if fmt.Sprint(backoffAttempts[:2]) != "[1 2]" {
			t.Errorf("backoff asked for attempts %v, want [1 2 …]", backoffAttempts)
		}
		waitFor(t, time.Second, "observer", func() bool { return len(rec.get()) == 3 })
		if got := fmt.Sprint(rec.get()); got != "[flaky:retry flaky:retry flaky:dead]" {
			t.Errorf("outcomes %s", got)
		}
	})
}

func TestPermanentErrorKillsAtOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st store.Store) {
		rec := &recorder{}
		r := jobs.NewRunner(st, opts("w1", rec))
		var runs atomic.Int32
		r.Register("p", func(ctx context.Context, j *jobs.Job) error {
			runs.Add(1)
			return fmt.Errorf("sync: %w", jobs.Permanent(errors.New("repository deleted on the host")))
		}, jobs.KindOptions{})
		j := insert(t, st, store.NewJob{Kind: "p"})
		start(t, r)
		waitFor(t, 5*time.Second, "the job to die", func() bool { return getJob(t, st, j.ID).State == store.JobDead })
		time.Sleep(50 * time.Millisecond)
		if n := runs.Load(); n != 1 {
			t.Errorf("ran %d times, want 1", n)
		}
		if got := getJob(t, st, j.ID); got.LastError != "sync: repository deleted on the host" {
			t.Errorf("last error %q", got.LastError)
		}
		waitFor(t, time.Second, "observer", func() bool { return fmt.Sprint(rec.get()) == "[p:dead]" })
	})
}

func TestRetryAtWaitsForTheGivenTime(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st store.Store) {
		o := opts("w1", nil)
		o.Backoff = func(int) time.Duration { return 0 }
		r := jobs.NewRunner(st, o)
		var (
			mu      sync.Mutex
			resetAt time.Time
			second  time.Time
		)
		r.Register("rl", func(ctx context.Context, j *jobs.Job) error {
			mu.Lock()
			defer mu.Unlock()
			if j.Attempt == 1 {
				resetAt = time.Now().Add(400 * time.Millisecond)
				return jobs.RetryAt(resetAt, errors.New("rate limited until reset"))
			}
			second = time.Now()
			return nil
		}, jobs.KindOptions{})
		j := insert(t, st, store.NewJob{Kind: "rl"})
		start(t, r)
		waitFor(t, 5*time.Second, "completion", func() bool { return getJob(t, st, j.ID).State == store.JobCompleted })
		mu.Lock()
		defer mu.Unlock()
		if second.Before(resetAt) {
			t.Errorf("second attempt at %v, before the reset %v", second, resetAt)
		}
		if got := getJob(t, st, j.ID); got.Attempt != 2 {
			t.Errorf("attempts %d, want 2", got.Attempt)
		}
	})
}

func TestPanicIsAnError(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st store.Store) {
		o := opts("w1", nil)
		o.Backoff = func(int) time.Duration { return time.Hour }
		r := jobs.NewRunner(st, o)
		r.Register("boom", func(ctx context.Context, j *jobs.Job) error {
			panic(fmt.Sprintf("kaboom in job %d", j.ID))
		}, jobs.KindOptions{})
		j := insert(t, st, store.NewJob{Kind: "boom"})
		start(t, r)
		waitFor(t, 5*time.Second, "the failure", func() bool { return getJob(t, st, j.ID).State == store.JobRetryable })
		got := getJob(t, st, j.ID)
		if got.LastError != fmt.Sprintf("panic: kaboom in job %d", j.ID) {
			t.Errorf("last error %q, want the panic", got.LastError)
		}
		if strings.Contains(got.LastError, "goroutine") || strings.Contains(got.LastError, ".go:") {
			t.Errorf("the stack leaked into last_error: %q", got.LastError)
		}
		if until := time.Until(got.RunAt); until < 30*time.Minute {
			t.Errorf("retry in %v, want the backoff (1h)", until)
		}
	})
}

func TestKindTimeoutAndMaxAttempts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st store.Store) {
		o := opts("w1", nil)
		o.Backoff = func(int) time.Duration { return 10 * time.Millisecond }
		r := jobs.NewRunner(st, o)
		var runs atomic.Int32
		r.Register("hang", func(ctx context.Context, j *jobs.Job) error {
			runs.Add(1)
			<-ctx.Done()
			return ctx.Err()
		}, jobs.KindOptions{MaxAttempts: 2, Timeout: 50 * time.Millisecond})
		j := insert(t, st, store.NewJob{Kind: "hang"}) // the job itself allows 25
		start(t, r)
		waitFor(t, 5*time.Second, "the job to die", func() bool { return getJob(t, st, j.ID).State == store.JobDead })
		got := getJob(t, st, j.ID)
		if got.Attempt != 2 || !strings.Contains(got.LastError, "deadline exceeded") {
			t.Errorf("job = %+v, want dead after 2 timed-out attempts", got)
		}
		if n := runs.Load(); n != 2 {
			t.Errorf("ran %d times, want 2", n)
		}
	})
}

func TestDecodeAndProgress(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st store.Store) {
		r := jobs.NewRunner(st, opts("w1", nil))
		var decoded atomic.Int64
		r.Register("index", func(ctx context.Context, j *jobs.Job) error {
			var args struct{ N int64 }
			if err := j.Decode(&args); err != nil {
				return err
			}
			decoded.Store(args.N)
			return j.Progress(ctx, map[string]int{"commits": 42})
		}, jobs.KindOptions{})
		j := insert(t, st, store.NewJob{Kind: "index", Args: map[string]int{"n": 7}})
		start(t, r)
		waitFor(t, 5*time.Second, "completion", func() bool { return getJob(t, st, j.ID).State == store.JobCompleted })
		if decoded.Load() != 7 {
			t.Errorf("decoded n=%d, want 7", decoded.Load())
		}
		var p map[string]int
		if err := json.Unmarshal(getJob(t, st, j.ID).Progress, &p); err != nil || p["commits"] != 42 {
			t.Errorf("progress %v, %v", p, err)
		}
	})
}

func TestNotifyWakesThePoller(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st store.Store) {
		o := opts("w1", nil)
		o.Poll = time.Hour
		r := jobs.NewRunner(st, o)
		ran := make(chan struct{}, 1)
		r.Register("n", func(ctx context.Context, j *jobs.Job) error { ran <- struct{}{}; return nil }, jobs.KindOptions{})
		start(t, r)
		time.Sleep(100 * time.Millisecond) // the first poll finds nothing
		insert(t, st, store.NewJob{Kind: "n"})
		select {
		case <-ran:
			t.Fatal("the job ran without Notify: the test proves nothing")
		case <-time.After(200 * time.Millisecond):
		}
		r.Notify()
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatal("Notify did not wake the runner")
		}
	})
}

func TestOnlyRegisteredKindsAreClaimed(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st store.Store) {
		r := jobs.NewRunner(st, opts("w1", nil))
		r.Register("mine", func(ctx context.Context, j *jobs.Job) error { return nil }, jobs.KindOptions{})
		other := insert(t, st, store.NewJob{Kind: "theirs"})
		mine := insert(t, st, store.NewJob{Kind: "mine"})
		start(t, r)
		waitFor(t, 5*time.Second, "my job", func() bool { return getJob(t, st, mine.ID).State == store.JobCompleted })
		if got := getJob(t, st, other.ID); got.State != store.JobAvailable || got.Attempt != 0 {
			t.Errorf("unregistered kind's job = %+v, want untouched", got)
		}
	})
}

func TestShutdownGrace(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st store.Store) {
		o := opts("w1", nil)
		o.Grace = 300 * time.Millisecond
		r := jobs.NewRunner(st, o)
		started := make(chan string, 2)
		r.Register("quick", func(ctx context.Context, j *jobs.Job) error {
			started <- "quick"
			time.Sleep(100 * time.Millisecond) // finishes within the grace period
			return nil
		}, jobs.KindOptions{})
		r.Register("slow", func(ctx context.Context, j *jobs.Job) error {
			started <- "slow"
			<-ctx.Done() // only the end of the grace period stops it
			return ctx.Err()
		}, jobs.KindOptions{})
		quick := insert(t, st, store.NewJob{Kind: "quick"})
		slow := insert(t, st, store.NewJob{Kind: "slow"})
		stop := start(t, r)
		<-started
		<-started
		t0 := time.Now()
		stop()
		if took := time.Since(t0); took < 250*time.Millisecond || took > 5*time.Second {
			t.Errorf("shutdown took %v, want about the 300ms grace", took)
		}
		if got := getJob(t, st, quick.ID); got.State != store.JobCompleted {
			t.Errorf("quick job = %s, want completed within the grace period", got.State)
		}
		got := getJob(t, st, slow.ID)
		if got.State != store.JobRetryable || time.Until(got.RunAt) > time.Second {
			t.Errorf("interrupted job = %+v, want retryable now", got)
		}
	})
}

// partitioned is a store that fails once cut, as if the network between this worker and
// the database broke: its handler runs on, but nothing it asks of the store arrives.
type partitioned struct {
	store.Store
	cut atomic.Bool
}

var errPartition = errors.New("connection refused")

func (p *partitioned) ExtendLease(ctx context.Context, id int64, owner string, lease time.Duration) error {
	if p.cut.Load() {
		return errPartition
	}
	return p.Store.ExtendLease(ctx, id, owner, lease)
}

func (p *partitioned) ClaimJobs(ctx context.Context, owner string, kinds []string, n int, lease time.Duration) ([]store.Job, error) {
	if p.cut.Load() {
		return nil, errPartition
	}
	return p.Store.ClaimJobs(ctx, owner, kinds, n, lease)
}

func (p *partitioned) CompleteJob(ctx context.Context, id int64, owner string) error {
	if p.cut.Load() {
		return errPartition
	}
	return p.Store.CompleteJob(ctx, id, owner)
}

func TestHandlerOutlivingItsLeaseIsTakenOver(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st store.Store) {
		pa := &partitioned{Store: st}
		recA := &recorder{}
		oa := opts("worker-a", recA)
		// Long enough that a renewal (every Lease/3) delayed by a loaded CI machine still
		// lands before the lease runs out: with 300 ms, one stall of 200 ms under -race let
		// worker a's lease lapse while connected and a claimed its own job again.
		oa.Lease = 1500 * time.Millisecond
		a := jobs.NewRunner(pa, oa)
		aStarted, aCancelled := make(chan struct{}), make(chan struct{})
		a.Register("sync", func(ctx context.Context, j *jobs.Job) error {
			close(aStarted)
			<-ctx.Done()
			close(aCancelled)
			return nil // claims success: it must be dropped
		}, jobs.KindOptions{})
		b := jobs.NewRunner(st, opts("worker-b", nil))
		var bRuns atomic.Int32
		var bAttempt atomic.Int64
		b.Register("sync", func(ctx context.Context, j *jobs.Job) error {
			bRuns.Add(1)
			bAttempt.Store(int64(j.Attempt))
			return nil
		}, jobs.KindOptions{})

		j := insert(t, st, store.NewJob{Kind: "sync"})
		start(t, a)
		<-aStarted
		// Renewals work while connected: the job is not taken over meanwhile.
		start(t, b)
		time.Sleep(2 * oa.Lease) // past the first lease: only renewals keep it
		if bRuns.Load() != 0 {
			t.Fatal("the job was taken over while its lease was renewed")
		}
		pa.cut.Store(true)
		select {
		case <-aCancelled:
		case <-time.After(5 * time.Second):
			t.Fatal("the handler was not cancelled when its lease ran out")
		}
		waitFor(t, 5*time.Second, "worker b to finish the job", func() bool { return getJob(t, st, j.ID).State == store.JobCompleted })
		got := getJob(t, st, j.ID)
		if got.LeaseOwner != "worker-b" || got.Attempt != 2 || bAttempt.Load() != 2 || bRuns.Load() != 1 {
			t.Errorf("job = %+v (b ran %d times), want completed by worker-b on attempt 2", got, bRuns.Load())
		}
		waitFor(t, time.Second, "a's outcome", func() bool { return fmt.Sprint(recA.get()) == "[sync:lease_lost]" })
	})
}

func TestCrashedWorkersJobIsTakenOver(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st store.Store) {
		j := insert(t, st, store.NewJob{Kind: "mirror"})
		// A worker claims the job and dies: nobody renews or completes it.
		claimed, err := st.ClaimJobs(context.Background(), "crashed", []string{"mirror"}, 1, 200*time.Millisecond)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim: %v %v", claimed, err)
		}
		r := jobs.NewRunner(st, opts("survivor", nil))
		attempts := make(chan int, 2)
		r.Register("mirror", func(ctx context.Context, j *jobs.Job) error { attempts <- j.Attempt; return nil }, jobs.KindOptions{})
		start(t, r)
		select {
		case a := <-attempts:
			if a != 2 {
				t.Errorf("took over at attempt %d, want 2", a)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the crashed worker's job was never taken over")
		}
		waitFor(t, 5*time.Second, "completion", func() bool { return getJob(t, st, j.ID).State == store.JobCompleted })
		if err := st.CompleteJob(context.Background(), j.ID, "crashed"); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("the crashed worker completing late: %v, want ErrLeaseLost", err)
		}
	})
}

// eachPair runs fn, in parallel subtests, with two stores on one database: one *DB twice on
// SQLite (one process), two *DB on PostgreSQL (two replicas).
func eachPair(t *testing.T, fn func(t *testing.T, a, b store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		db := storetest.SQLite(t)
		fn(t, db, db)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := storetest.PostgresDSN(t)
		fn(t, storetest.OpenPostgres(t, dsn), storetest.OpenPostgres(t, dsn))
	})
}

func TestTwoRunnersRunEachJobOnce(t *testing.T) {
	t.Parallel()
	eachPair(t, func(t *testing.T, sa, sb store.Store) {
		const n = 300
		var (
			mu    sync.Mutex
			runs  = map[int64]int{}
			owner = map[string]int{}
		)
		handler := func(name string) jobs.Handler {
			return func(ctx context.Context, j *jobs.Job) error {
				mu.Lock()
				defer mu.Unlock()
				runs[j.ID]++
				owner[name]++
				return nil
			}
		}
		a := jobs.NewRunner(sa, opts("replica-a", nil))
		a.Register("work", handler("a"), jobs.KindOptions{})
		b := jobs.NewRunner(sb, opts("replica-b", nil))
		b.Register("work", handler("b"), jobs.KindOptions{})
		start(t, a)
		start(t, b)
		for batch := range 3 {
			err := sa.Tx(context.Background(), func(tx store.Tx) error {
				for i := range n / 3 {
					if _, _, err := tx.InsertJob(context.Background(), store.NewJob{Kind: "work", Args: batch*n/3 + i}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("insert jobs: %v", err)
			}
			a.Notify()
			b.Notify()
		}
		waitFor(t, 60*time.Second, "all jobs to complete", func() bool {
			stats, err := sa.JobStats(context.Background())
			return err == nil && stats[store.JobCompleted] == n
		})
		mu.Lock()
		defer mu.Unlock()
		if len(runs) != n {
			t.Errorf("%d distinct jobs ran, want %d", len(runs), n)
		}
		for id, c := range runs {
			if c != 1 {
				t.Errorf("job %d ran %d times", id, c)
			}
		}
		t.Logf("runs per replica: %v", owner)
	})
}
