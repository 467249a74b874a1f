package server

import (
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/jobs"
	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/store/storetest"
)

// claimSlot runs a schedule's slot once, however many replicas ask, and a long outage gives
// one run, not one per missed slot.
func TestClaimSlot(t *testing.T) {
	st := storetest.SQLite(t)
	replica := func() *App {
		return &App{Store: st, Runner: jobs.NewRunner(st, jobs.RunnerOptions{Owner: "r"})}
	}
	a, b := replica(), replica()
	hourly, err := jobs.ParseSchedule("0 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 11, 20, 10, 30, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return time.Date(2026, 11, 20, h, m, 0, 0, time.UTC) }
	claim := func(app *App, now time.Time) {
		t.Helper()
		if err := app.claimSlot(t.Context(), "discover", "int_x", since, hourly, now, store.NewJob{Kind: "k", Args: map[string]string{}}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int64 {
		t.Helper()
		s, err := st.JobStats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return s[store.JobAvailable]
	}
	claim(a, at(10, 50)) // before the first slot (11:00)
	if n := count(); n != 0 {
		t.Fatalf("%d jobs before the first slot", n)
	}
	claim(a, at(11, 5))
	claim(b, at(11, 5)) // another replica, same slot
	claim(a, at(11, 6))
	if n := count(); n != 1 {
		t.Fatalf("%d jobs for the 11:00 slot, want 1", n)
	}
	claim(b, at(11, 40)) // next slot is 12:00
	if n := count(); n != 1 {
		t.Fatalf("%d jobs before 12:00", n)
	}
	claim(a, at(15, 10)) // 12:00, 13:00, 14:00 and 15:00 were all missed: one run
	claim(b, at(15, 11))
	if n := count(); n != 2 {
		t.Fatalf("%d jobs after an outage, want 2", n)
	}
}
