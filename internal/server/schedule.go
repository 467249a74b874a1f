package server

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/forgeway/forgeway/internal/catalog"
	"github.com/forgeway/forgeway/internal/jobs"
	"github.com/forgeway/forgeway/internal/store"
)

// scheduleTick is how often the scheduler looks for due slots.
const scheduleTick = 20 * time.Second

// schedule enqueues each integration's periodic work — discovery on the integration's own
// cron expression, hook reconciliation on the server's — exactly once per slot however many
// replicas run: each slot is claimed with a key that only one transaction can write.
func (a *App) schedule(ctx context.Context) error {
	reconcile, err := jobs.ParseSchedule(a.Config.ReconcileSchedule)
	if err != nil {
		return err
	}
	prune, err := jobs.ParseSchedule(pruneSchedule)
	if err != nil {
		return err
	}
	t := time.NewTicker(scheduleTick)
	defer t.Stop()
	for {
		if err := a.scheduleOnce(ctx, reconcile, prune); err != nil && ctx.Err() == nil {
			a.Log.Warn("scheduler pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *App) scheduleOnce(ctx context.Context, reconcile, prune jobs.Schedule) error {
	recs, err := a.Store.ListIntegrations(ctx)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	if a.Config.Retention > 0 {
		if err := a.claimSlot(ctx, "prune", "all", time.Time{}, prune, now, store.NewJob{Kind: JobPrune, UniqueKey: "prune", MaxAttempts: 3}); err != nil {
			return err
		}
	}
	for _, rec := range recs {
		if rec.Status == store.StatusSuspended {
			continue
		}
		sched, err := jobs.ParseSchedule(rec.Schedule)
		if err != nil {
			a.Log.Warn("integration has an invalid schedule", "integration", rec.ID, "schedule", rec.Schedule, "err", err)
			continue
		}
		if err := a.claimSlot(ctx, "discover", rec.ID, rec.CreatedAt, sched, now, catalog.DiscoverJob(rec.ID)); err != nil {
			return err
		}
		if err := a.claimSlot(ctx, "reconcile", rec.ID, rec.CreatedAt, reconcile, now, catalog.ReconcileJob(rec.ID)); err != nil {
			return err
		}
	}
	return nil
}

// claimSlot inserts job when the schedule's next slot after the last one claimed has come.
// A slot missed while no replica ran is run once, not once per missed slot.
func (a *App) claimSlot(ctx context.Context, name, scope string, since time.Time, sched jobs.Schedule, now time.Time, job store.NewJob) error {
	lastKey := "schedule/" + name + "/" + scope
	var last claimed
	last.At = since
	if raw, err := a.Store.GetKV(ctx, lastKey); err == nil {
		_ = json.Unmarshal(raw, &last)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	slot := sched.Next(last.At)
	if slot.After(now) {
		return nil
	}
	inserted := false
	err := a.Store.Tx(ctx, func(tx store.Tx) error {
		ok, err := tx.PutKVIfAbsent(ctx, slotKey(name, scope, slot), []byte("1"))
		if err != nil || !ok {
			return err
		}
		// The next slot is counted from now, so slots missed during an outage give one run.
		raw, _ := json.Marshal(claimed{Slot: slot, At: now})
		if err := tx.PutKV(ctx, lastKey, raw); err != nil {
			return err
		}
		// The previous slot's marker is no longer needed to keep that slot single.
		if !last.Slot.IsZero() {
			if err := tx.DeleteKV(ctx, slotKey(name, scope, last.Slot)); err != nil {
				return err
			}
		}
		_, inserted, err = tx.InsertJob(ctx, job)
		return err
	})
	if inserted {
		a.Runner.Notify()
	}
	return err
}

// claimed is the last slot a schedule claimed for an integration, and when.
type claimed struct {
	Slot time.Time `json:"slot"`
	At   time.Time `json:"at"`
}

func slotKey(name, integrationID string, slot time.Time) string {
	return "periodic/" + name + "/" + integrationID + "/" + slot.UTC().Format(time.RFC3339)
}
