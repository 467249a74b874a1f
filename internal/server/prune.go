package server

import (
	"context"
	"time"

	"github.com/forgeway/forgeway/internal/jobs"
)

// JobPrune deletes what the retention no longer keeps (store.Prune), once a day.
const JobPrune = "maintenance.prune"

// pruneSchedule is when the daily prune runs (UTC).
const pruneSchedule = "37 3 * * *"

func (a *App) runPrune(ctx context.Context, j *jobs.Job) error {
	res, err := a.Store.Prune(ctx, time.Now().Add(-a.Config.Retention))
	if err != nil {
		return err
	}
	_ = j.Progress(ctx, res)
	a.Log.Info("pruned old records", "retention", a.Config.Retention, "deliveries", res.Deliveries, "events", res.Events, "jobs", res.Jobs, "cache_entries", res.CacheEntries)
	return nil
}
