package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

// RunnerOptions configures a Runner. Zero values take the defaults shown.
type RunnerOptions struct {
	// Owner names this runner in job leases; it must differ between replicas.
	// Default: the host name and a random suffix.
	Owner string
	// Workers is how many jobs run at once. Default 4.
	Workers int
	// Poll is how often the queue is checked when Notify is not called. Default 1s.
	Poll time.Duration
	// Lease is how long a claimed job is held without renewal; it is renewed every Lease/3
	// while the handler runs, and a job whose runner died runs again after it. Default 30s.
	Lease time.Duration
	// Grace is how long in-flight jobs may run on after Run's context ends before their
	// contexts are cancelled. Default 10s.
	Grace time.Duration
	// Backoff gives the delay before the next attempt after attempt failed. Default Backoff.
	Backoff func(attempt int) time.Duration
	// Logger receives failures and lease losses. Default slog.Default().
	Logger *slog.Logger
	// Observer is told about every finished attempt. Optional.
	Observer Observer
}

// KindOptions configures one job kind.
type KindOptions struct {
	// MaxAttempts caps the attempts of this kind's jobs below the job's own MaxAttempts.
	// 0: the job's own (set at insert, 25 by default).
	MaxAttempts int
	// Timeout bounds one attempt. 0: no bound but the lease and shutdown.
	Timeout time.Duration
}

type kindEntry struct {
	h    Handler
	opts KindOptions
}

// Runner runs jobs of its registered kinds from a store.Store. Any number of runners, in one
// process or many, may share a store: each job runs once at a time, under a lease.
type Runner struct {
	st   store.Store
	opts RunnerOptions
	log  *slog.Logger

	mu      sync.Mutex
	kinds   map[string]kindEntry
	running bool

	wake chan struct{}
}

// NewRunner returns a Runner on st; register kinds, then call Run.
func NewRunner(st store.Store, opts RunnerOptions) *Runner {
	if opts.Owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		opts.Owner = host + "-" + hex.EncodeToString(b[:])
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Second
	}
	if opts.Backoff == nil {
		opts.Backoff = Backoff
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Runner{
		st:    st,
		opts:  opts,
		log:   opts.Logger.With("owner", opts.Owner),
		kinds: map[string]kindEntry{},
		wake:  make(chan struct{}, 1),
	}
}

// Owner returns the name this runner leases jobs under.
func (r *Runner) Owner() string { return r.opts.Owner }

// Register makes the runner claim jobs of kind and run them with h. It may be called while
// Run runs. It panics when kind is empty, h is nil or kind is registered already: those are
// programming errors.
func (r *Runner) Register(kind string, h Handler, o KindOptions) {
	if kind == "" || h == nil {
		panic("jobs: Register needs a kind and a handler")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.kinds[kind]; dup {
		panic("jobs: kind " + kind + " registered twice")
	}
	r.kinds[kind] = kindEntry{h: h, opts: o}
	r.Notify()
}

// Notify makes the runner look for due jobs now instead of at its next poll; call it after
// inserting jobs. It never blocks.
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Runner) registered() ([]string, map[string]kindEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kinds := make([]string, 0, len(r.kinds))
	m := make(map[string]kindEntry, len(r.kinds))
	for k, e := range r.kinds {
		kinds = append(kinds, k)
		m[k] = e
	}
	sort.Strings(kinds)
	return kinds, m
}

// execution is one attempt in flight.
type execution struct {
	job    store.Job
	cancel context.CancelFunc
	// dropped is set when the attempt must not record its outcome: its lease was lost, or
	// this runner claimed the job again after the lease ran out.
	dropped atomic.Bool
}

// finished is sent by an execution when it ends.
type finished struct {
	exec *execution
}

// Run claims and runs jobs until ctx ends; in-flight jobs then get the Grace period to finish
// before their contexts are cancelled, and Run returns once they all returned. It returns
// nil after a shutdown, or an error when the runner is already running.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return errors.New("jobs: runner is already running")
	}
	r.running = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
	}()

	// Job bookkeeping, and what handlers write, is redone if a power failure loses it: it
	// need not wait for the disk (a delivery's own commit, made by ingest, always does).
	ctx = store.WithRelaxedDurability(ctx)
	// Handlers do not stop when ctx ends, only when the grace period has passed too.
	base, cancelAll := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelAll()
	// One slot per attempt in flight (never more than Workers), so that a finishing
	// attempt never waits for the loop.
	done := make(chan finished, r.opts.Workers)
	inflight := map[int64]*execution{}
	ticker := time.NewTicker(r.opts.Poll)
	defer ticker.Stop()

	claimNow, backlog := true, false
	running := 0 // attempts started and not finished, including dropped ones
	for {
		if free := r.opts.Workers - running; claimNow && free > 0 {
			n := r.claim(ctx, base, free, inflight, done)
			running += n
			backlog = n == free
			claimNow = false
		}
		select {
		case <-ctx.Done():
			r.drain(running, done, cancelAll)
			return nil
		case <-r.wake:
			claimNow = true
		case <-ticker.C:
			claimNow = true
		case f := <-done:
			// Collect every attempt that has finished, so that one claim refills their slots.
			for more := true; more; {
				running--
				if inflight[f.exec.job.ID] == f.exec {
					delete(inflight, f.exec.job.ID)
				}
				select {
				case f = <-done:
				default:
					more = false
				}
			}
			// A full claim suggests more jobs are waiting: take the next at once.
			claimNow = claimNow || backlog
		}
	}
}

// claim leases up to n jobs and starts them; it returns how many it claimed.
func (r *Runner) claim(ctx, base context.Context, n int, inflight map[int64]*execution, done chan<- finished) int {
	kinds, entries := r.registered()
	if len(kinds) == 0 {
		return 0 // an empty list would claim every kind
	}
	claimed, err := r.st.ClaimJobs(ctx, r.opts.Owner, kinds, n, r.opts.Lease)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("claim jobs", "err", err)
		}
		return 0
	}
	for _, j := range claimed {
		if old := inflight[j.ID]; old != nil {
			// Our own attempt outlived its lease and we claimed the job again: the old
			// attempt's result must not count.
			old.dropped.Store(true)
			old.cancel()
		}
		hctx, cancel := context.WithCancel(base)
		e := &execution{job: j, cancel: cancel}
		inflight[j.ID] = e
		go func() {
			defer cancel()
			r.execute(hctx, e, entries[j.Kind])
			done <- finished{exec: e}
		}()
	}
	return len(claimed)
}

// drain waits for in-flight jobs, cancelling them once the grace period has passed.
func (r *Runner) drain(running int, done <-chan finished, cancelAll context.CancelFunc) {
	if running == 0 {
		return
	}
	r.log.Info("stopping: waiting for running jobs", "jobs", running, "grace", r.opts.Grace)
	grace := time.NewTimer(r.opts.Grace)
	defer grace.Stop()
	for pending := running; pending > 0; {
		select {
		case <-done:
			pending--
		case <-grace.C:
			r.log.Warn("grace period over: cancelling running jobs", "jobs", pending)
			cancelAll()
		}
	}
}

// storeTimeout bounds the store calls that record an attempt's outcome, which run on a
// context of their own so that a shutdown does not lose them.
const storeTimeout = 10 * time.Second

// execute runs one attempt: the handler under a renewed lease, then the outcome.
func (r *Runner) execute(ctx context.Context, e *execution, k kindEntry) {
	sj := e.job
	log := r.log.With("job", sj.ID, "kind", sj.Kind, "attempt", sj.Attempt)
	hctx := ctx
	if k.opts.Timeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, k.opts.Timeout)
		defer cancel()
	}
	hctx, cancelHandler := context.WithCancel(hctx)
	defer cancelHandler()

	keeperDone := make(chan struct{})
	stopKeeper := make(chan struct{})
	go func() {
		defer close(keeperDone)
		r.keepLease(ctx, e, cancelHandler, stopKeeper, log)
	}()

	start := time.Now()
	err := r.call(hctx, k.h, &Job{Job: sj, st: r.st, owner: r.opts.Owner}, log)
	run := time.Since(start)
	close(stopKeeper)
	<-keeperDone
	wait := max(start.Sub(sj.RunAt), 0)

	if e.dropped.Load() {
		log.Warn("job lease lost; its result is dropped", "err", err)
		r.observe(sj.Kind, OutcomeLeaseLost, wait, run)
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	outcome := OutcomeCompleted
	if err == nil {
		err = r.st.CompleteJob(sctx, sj.ID, r.opts.Owner)
	} else {
		f := classify(err, sj.Attempt, k.opts.MaxAttempts, time.Now(), r.opts.Backoff)
		if ctx.Err() != nil && !f.dead {
			// Cancelled by a shutdown: another runner may take it at once.
			f.retryAt = time.Now()
		}
		outcome = OutcomeRetry
		if f.dead || sj.Attempt >= sj.MaxAttempts {
			outcome = OutcomeDead
		}
		log.Warn("job failed", "err", err, "outcome", outcome, "retry_at", f.retryAt)
		err = r.st.FailJob(sctx, sj.ID, r.opts.Owner, f.msg, f.retryAt, f.dead)
	}
	switch {
	case errors.Is(err, store.ErrLeaseLost):
		log.Warn("job lease lost before its outcome was recorded; the result is dropped")
		outcome = OutcomeLeaseLost
	case err != nil:
		log.Error("record job outcome", "err", err)
		outcome = OutcomeError
	}
	r.observe(sj.Kind, outcome, wait, run)
}

// call runs the handler, turning a panic into an error; the stack goes to the log only.
func (r *Runner) call(ctx context.Context, h Handler, j *Job, log *slog.Logger) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("job handler panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return h(ctx, j)
}

// keepLease renews the lease every Lease/3 until stop is closed. When the lease is lost, or
// cannot be renewed before it runs out, the attempt is dropped and its handler cancelled.
func (r *Runner) keepLease(ctx context.Context, e *execution, cancelHandler context.CancelFunc, stop <-chan struct{}, log *slog.Logger) {
	lease := r.opts.Lease
	validUntil := e.job.LeaseUntil
	if validUntil.IsZero() || validUntil.After(time.Now().Add(lease)) {
		validUntil = time.Now().Add(lease)
	}
	t := time.NewTicker(lease / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		sent := time.Now()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lease/3)
		err := r.st.ExtendLease(cctx, e.job.ID, r.opts.Owner, lease)
		cancel()
		switch {
		case err == nil:
			validUntil = sent.Add(lease)
			continue
		case errors.Is(err, store.ErrLeaseLost), errors.Is(err, store.ErrNotFound):
			log.Warn("job lease lost: cancelling its handler")
		case time.Now().Before(validUntil):
			log.Warn("renew job lease; will try again", "err", err)
			continue
		default:
			log.Error("job lease ran out before it could be renewed: cancelling its handler", "err", err)
		}
		e.dropped.Store(true)
		cancelHandler()
		return
	}
}

func (r *Runner) observe(kind, outcome string, wait, run time.Duration) {
	if r.opts.Observer != nil {
		r.opts.Observer.JobFinished(kind, outcome, wait, run)
	}
}
