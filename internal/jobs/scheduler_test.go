package jobs_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/jobs"
	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/store/storetest"
)

// runScheduler runs s until stop is called (or the test ends).
func runScheduler(t *testing.T, s *jobs.Scheduler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Scheduler.Run returned %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("Scheduler.Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func countJobs(t *testing.T, st store.Store, kind string) int {
	t.Helper()
	items, _, err := st.ListJobs(context.Background(), store.JobFilter{Kind: kind, Page: store.Page{Limit: 500}})
	if err != nil {
		t.Fatalf("list jobs: %v", err)
	}
	return len(items)
}

// slotsBetween counts the whole seconds s with from < s <= to.
func slotsBetween(from, to time.Time) int {
	return int(to.Truncate(time.Second).Sub(from.Truncate(time.Second)) / time.Second)
}

func TestSchedulersInsertOneJobPerSlot(t *testing.T) {
	t.Parallel()
	eachPair(t, func(t *testing.T, sa, sb store.Store) {
		var made, notified atomic.Int32
		newJob := func() store.NewJob {
			made.Add(1)
			return store.NewJob{Kind: "tick"}
		}
		var schedulers []*jobs.Scheduler
		for _, st := range []store.Store{sa, sb, sa} { // three replicas
			s := jobs.NewScheduler(st, jobs.SchedulerOptions{Logger: quiet(), OnInsert: func(name string, j store.Job) {
				if name != "tick" || j.Kind != "tick" {
					t.Errorf("OnInsert(%q, %q)", name, j.Kind)
				}
				notified.Add(1)
			}})
			if err := s.Add("tick", "@every 1s", newJob); err != nil {
				t.Fatal(err)
			}
			schedulers = append(schedulers, s)
		}
		from := time.Now()
		var stops []func()
		for _, s := range schedulers {
			stops = append(stops, runScheduler(t, s))
		}
		time.Sleep(2600 * time.Millisecond)
		for _, stop := range stops {
			stop()
		}
		to := time.Now()
		got := countJobs(t, sa, "tick")
		// Slots well before the stop must have fired; none can have fired twice.
		lo, hi := slotsBetween(from, to.Add(-400*time.Millisecond)), slotsBetween(from, to)
		if got < lo || got > hi {
			t.Errorf("%d jobs for %d-%d slots: a slot fired twice or not at all", got, lo, hi)
		}
		if lo < 2 {
			t.Errorf("the test window held only %d slots", lo)
		}
		if int(made.Load()) != got || int(notified.Load()) != got {
			t.Errorf("newJob called %d times, OnInsert %d times, for %d jobs", made.Load(), notified.Load(), got)
		}
	})
}

func TestSchedulerMakesUpMissedSlotsOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st store.Store) {
		// The last run any replica recorded was an hour ago: 59 slots were missed.
		last, _ := json.Marshal(map[string]time.Time{"slot": time.Now().UTC().Truncate(time.Minute).Add(-time.Hour)})
		if err := st.PutKV(context.Background(), "periodic/sweep/last", last); err != nil {
			t.Fatal(err)
		}
		s := jobs.NewScheduler(st, jobs.SchedulerOptions{Logger: quiet()})
		if err := s.Add("sweep", "@every 1m", func() store.NewJob { return store.NewJob{Kind: "sweep"} }); err != nil {
			t.Fatal(err)
		}
		// The fresh schedule has never run: nothing was missed, nothing runs on start.
		if err := s.Add("fresh", "@every 1m", func() store.NewJob { return store.NewJob{Kind: "fresh"} }); err != nil {
			t.Fatal(err)
		}
		stop := runScheduler(t, s)
		waitFor(t, 5*time.Second, "the make-up run", func() bool { return countJobs(t, st, "sweep") > 0 })
		time.Sleep(300 * time.Millisecond)
		stop()
		// A minute boundary during the test would add one legitimate slot.
		if n := countJobs(t, st, "sweep"); n != 1 && n != 2 {
			t.Errorf("%d sweep jobs after missing 59 slots, want one make-up run", n)
		}
		b, err := st.GetKV(context.Background(), "periodic/sweep/last")
		if err != nil {
			t.Fatal(err)
		}
		var rec struct{ Slot time.Time }
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		if want := time.Now().UTC().Truncate(time.Minute); rec.Slot.Before(want.Add(-time.Minute)) {
			t.Errorf("last slot %v, want the latest one (%v)", rec.Slot, want)
		}
		if n := countJobs(t, st, "fresh"); n > 1 {
			t.Errorf("a schedule that never ran fired %d times on start", n)
		}
	})
}

func TestSchedulerAddErrors(t *testing.T) {
	t.Parallel()
	s := jobs.NewScheduler(nil, jobs.SchedulerOptions{Logger: quiet()})
	mk := func() store.NewJob { return store.NewJob{Kind: "x"} }
	if err := s.Add("a", "* * * 13 *", mk); err == nil || !strings.Contains(err.Error(), "month field") {
		t.Errorf("bad spec: %v, want an error naming the month field", err)
	}
	if err := s.Add("a", "@hourly", mk); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("a", "@daily", mk); err == nil {
		t.Error("a taken name was accepted")
	}
	s.Remove("a")
	if err := s.Add("a", "@daily", mk); err != nil {
		t.Errorf("re-adding a removed name: %v", err)
	}
	if err := s.Add("", "@daily", mk); err == nil {
		t.Error("an empty name was accepted")
	}
}
