package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

// SchedulerOptions configures a Scheduler. Zero values take the defaults shown.
type SchedulerOptions struct {
	// Logger receives failures to insert periodic jobs. Default slog.Default().
	Logger *slog.Logger
	// OnInsert, when set, is called after a periodic job was inserted (wire it to
	// Runner.Notify so that the job starts at once).
	OnInsert func(name string, job store.Job)
}

// Scheduler inserts periodic jobs. Every replica may run one on the same store: each slot of
// each schedule inserts its job exactly once, through a marker written with PutKVIfAbsent
// in the transaction that inserts the job. Slots missed while no replica ran are made up by
// one run on start, not one per missed slot.
type Scheduler struct {
	st   store.Store
	log  *slog.Logger
	opts SchedulerOptions

	mu      sync.Mutex
	entries map[string]*schedEntry
	changed chan struct{}
}

type schedEntry struct {
	name   string
	sched  Schedule
	newJob func() store.NewJob
	next   time.Time // owned by Run; zero until Run has looked at the entry
}

// lastRun is the value of periodic/<name>/last: the last slot fired and the one before it,
// whose marker is kept so that a replica with a slow clock does not fire it again.
type lastRun struct {
	Slot time.Time `json:"slot"`
	Prev time.Time `json:"prev,omitzero"`
}

// NewScheduler returns a Scheduler on st; add schedules, then call Run.
func NewScheduler(st store.Store, opts SchedulerOptions) *Scheduler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Scheduler{
		st:      st,
		log:     opts.Logger,
		opts:    opts,
		entries: map[string]*schedEntry{},
		changed: make(chan struct{}, 1),
	}
}

// Add schedules newJob's job under name with spec (see ParseSchedule). newJob is called
// once per slot, by the replica that inserts it. Add may be called while Run runs. It fails when
// spec is invalid or name is taken.
func (s *Scheduler) Add(name, spec string, newJob func() store.NewJob) error {
	if name == "" || newJob == nil {
		return errors.New("add periodic job: a name and a job maker are required")
	}
	sched, err := ParseSchedule(spec)
	if err != nil {
		return fmt.Errorf("add periodic job %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.entries[name]; dup {
		return fmt.Errorf("add periodic job %s: the name is taken", name)
	}
	s.entries[name] = &schedEntry{name: name, sched: sched, newJob: newJob}
	s.signal()
	return nil
}

// Remove unschedules name; a slot being inserted at that moment may still be.
func (s *Scheduler) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, name)
	s.signal()
}

func (s *Scheduler) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *Scheduler) snapshot() []*schedEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*schedEntry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e)
	}
	return out
}

// retryDelay is how soon a slot whose insert failed is tried again.
const retryDelay = 5 * time.Second

// maxSleep bounds the scheduler's sleep, so that a clock jump is noticed.
const maxSleep = time.Minute

// Run inserts due periodic jobs until ctx ends, then returns nil.
func (s *Scheduler) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		wake := now.Add(maxSleep)
		for _, e := range s.snapshot() {
			if e.next.IsZero() {
				e.next = s.firstSlot(ctx, e, now)
			}
			if !e.next.After(now) {
				// Fire only the latest due slot: a process that slept through several
				// slots runs once, as a fresh start does.
				slot := e.sched.latest(now)
				if slot.IsZero() || slot.Before(e.next) {
					slot = e.next
				}
				if err := s.fire(ctx, e, slot); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					// The slot stays due and is tried again shortly.
					s.log.Error("insert periodic job; will try again", "name", e.name, "slot", slot, "err", err)
					wake = earliest(wake, now.Add(retryDelay))
					continue
				}
				e.next = e.sched.Next(slot)
			}
			if !e.next.IsZero() {
				wake = earliest(wake, e.next)
			}
		}
		timer.Reset(time.Until(wake))
		select {
		case <-ctx.Done():
			return nil
		case <-s.changed:
		case <-timer.C:
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func markerKey(name string, slot time.Time) string {
	return "periodic/" + name + "/" + slot.UTC().Format(time.RFC3339)
}

func lastKey(name string) string { return "periodic/" + name + "/last" }

// firstSlot is an entry's first slot to fire: the next one after now or, when a slot was
// missed since the last run any replica recorded, the latest missed one (due at once).
func (s *Scheduler) firstSlot(ctx context.Context, e *schedEntry, now time.Time) time.Time {
	next := e.sched.Next(now)
	b, err := s.st.GetKV(ctx, lastKey(e.name))
	if errors.Is(err, store.ErrNotFound) {
		return next // never ran: nothing was missed
	}
	var last lastRun
	if err == nil {
		err = json.Unmarshal(b, &last)
	}
	if err != nil {
		s.log.Warn("read last run of periodic job; missed slots are not made up", "name", e.name, "err", err)
		return next
	}
	if missed := e.sched.Next(last.Slot); !missed.IsZero() && !missed.After(now) {
		return missed
	}
	return next
}

// fireTimeout bounds one slot's transaction.
const fireTimeout = 30 * time.Second

// fire inserts e's job for slot unless a replica did already. A fire that has begun is not
// cut short by Run's context ending (shutdown): it commits or fails on its own, so that a
// slot's newJob is not called for a transaction that shutdown then rolls back.
func (s *Scheduler) fire(ctx context.Context, e *schedEntry, slot time.Time) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fireTimeout)
	defer cancel()
	slot = slot.UTC()
	var (
		job      store.Job
		inserted bool
	)
	err := s.st.Tx(ctx, func(tx store.Tx) error {
		wrote, err := tx.PutKVIfAbsent(ctx, markerKey(e.name, slot), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
		if err != nil || !wrote {
			return err
		}
		if job, _, err = tx.InsertJob(ctx, e.newJob()); err != nil {
			return err
		}
		inserted = true
		// Record the slot, and drop the marker two slots back: markers only need to
		// outlive the clock skew between replicas.
		var last lastRun
		b, err := tx.GetKV(ctx, lastKey(e.name))
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(b, &last); err != nil {
				last = lastRun{}
			}
		}
		if !last.Slot.IsZero() && !last.Slot.Before(slot) {
			return nil // a later slot is recorded already
		}
		if !last.Prev.IsZero() {
			if err := tx.DeleteKV(ctx, markerKey(e.name, last.Prev)); err != nil {
				return err
			}
		}
		b, err = json.Marshal(lastRun{Slot: slot, Prev: last.Slot})
		if err != nil {
			return err
		}
		return tx.PutKV(ctx, lastKey(e.name), b)
	})
	if err != nil {
		return fmt.Errorf("periodic job %s at %s: %w", e.name, slot.Format(time.RFC3339), err)
	}
	if inserted {
		s.log.Debug("inserted periodic job", "name", e.name, "slot", slot, "job", job.ID)
		if s.opts.OnInsert != nil {
			s.opts.OnInsert(e.name, job)
		}
	}
	return nil
}
