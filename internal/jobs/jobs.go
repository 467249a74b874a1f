// Package jobs is Forgeway's durable work queue runtime on top of store.Store: a Runner that
// claims jobs of registered kinds, runs their handlers under a renewed lease and records the
// outcome (retry with backoff, dead, completed), and a Scheduler that inserts periodic jobs
// exactly once per slot across any number of replicas. It also owns the cron syntax used for
// schedules (ParseSchedule, ValidateSchedule).
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
	"unicode/utf8"

	"github.com/forgeway/forgeway/internal/store"
)

// Handler runs one attempt of a job. Returning nil completes the job; an error fails the
// attempt (see Permanent and RetryAt). ctx is cancelled when the lease is lost, the kind's
// timeout passes or the runner shuts down after its grace period; handlers must return
// promptly then.
type Handler func(ctx context.Context, j *Job) error

// Job is the job a handler runs.
type Job struct {
	store.Job
	st    store.Store
	owner string
}

// Decode unmarshals the job's args into v.
func (j *Job) Decode(v any) error {
	if err := json.Unmarshal(j.Args, v); err != nil {
		return fmt.Errorf("decode args of %s job %d: %w", j.Kind, j.ID, err)
	}
	return nil
}

// Progress stores v, marshalled to JSON, as the job's progress (the API shows it). It fails
// with store.ErrLeaseLost when this attempt no longer holds the job.
func (j *Job) Progress(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode progress of %s job %d: %w", j.Kind, j.ID, err)
	}
	if err := j.st.SetJobProgress(ctx, j.ID, j.owner, b); err != nil {
		return err
	}
	j.Job.Progress = b
	return nil
}

// permanentError marks an error that retrying will not fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that the job is made dead at once instead of retried (bad input, a
// resource that no longer exists). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// retryAtError asks for the next attempt at a given time.
type retryAtError struct {
	at  time.Time
	err error
}

func (e *retryAtError) Error() string { return e.err.Error() }
func (e *retryAtError) Unwrap() error { return e.err }

// RetryAt wraps err so that the next attempt runs at t rather than after the usual backoff
// (a host's rate limit resets at t). The attempt still counts. RetryAt(t, nil) is nil.
func RetryAt(t time.Time, err error) error {
	if err == nil {
		return nil
	}
	return &retryAtError{at: t, err: err}
}

// Observer is told about every finished attempt, for metrics. outcome is one of the
// Outcome constants; wait is how long the job waited past its RunAt before it started, run
// how long the handler ran. Implementations must be safe for concurrent use and fast.
type Observer interface {
	JobFinished(kind, outcome string, wait, run time.Duration)
}

// Outcomes reported to Observer.JobFinished.
const (
	OutcomeCompleted = "completed"  // the handler succeeded
	OutcomeRetry     = "retry"      // the attempt failed and the job will run again
	OutcomeDead      = "dead"       // the attempt failed and it was the last one, or Permanent
	OutcomeLeaseLost = "lease_lost" // another worker took the job over; the result was dropped
	OutcomeError     = "error"      // the outcome could not be recorded (the store failed)
)

// maxLastError bounds the error text stored with a failed job.
const maxLastError = 2048

// truncateError cuts an error text to maxLastError bytes on a rune boundary.
func truncateError(s string) string {
	if len(s) <= maxLastError {
		return s
	}
	const marker = "…"
	cut := maxLastError - len(marker)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + marker
}

// Backoff is the default delay before attempt+1 after a failed attempt: 1s after the first,
// doubling, capped at 1h, then spread by ±25% so that jobs failing together do not retry
// together.
func Backoff(attempt int) time.Duration {
	d := time.Hour
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 12 { // later attempts: 2^12 s > 1 h
		d = min(time.Second<<(attempt-1), time.Hour)
	}
	jitter := 0.75 + rand.Float64()/2 // [0.75, 1.25)
	return time.Duration(float64(d) * jitter)
}

// failure is what FailJob needs to know about a failed attempt.
type failure struct {
	msg     string
	retryAt time.Time
	dead    bool
}

// classify turns a handler's error into a failure.
func classify(err error, attempt, kindMax int, now time.Time, backoff func(int) time.Duration) failure {
	f := failure{msg: truncateError(err.Error()), retryAt: now.Add(backoff(attempt))}
	var pe *permanentError
	var ra *retryAtError
	switch {
	case errors.As(err, &pe):
		f.dead = true
	case errors.As(err, &ra):
		f.retryAt = ra.at
	}
	if kindMax > 0 && attempt >= kindMax {
		f.dead = true
	}
	return f
}
